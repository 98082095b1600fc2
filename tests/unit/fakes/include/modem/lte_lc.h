/*
 * Fake of modem/lte_lc.h: only the call provguard uses.
 * Mirrors include/modem/lte_lc.h (nrfconnect/sdk-nrf, NCS v3.4.1): int lte_lc_connect(void);
 */

#ifndef FAKE_LTE_LC_H_
#define FAKE_LTE_LC_H_

int lte_lc_connect(void);

#endif /* FAKE_LTE_LC_H_ */
