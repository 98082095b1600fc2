/*
 * Fake of nrf_modem_at.h.
 * Mirrors nrf_modem/include/nrf_modem_at.h (nrfconnect/sdk-nrfxlib, as in NCS v3.4.1):
 *   int nrf_modem_at_cmd(void *buf, size_t len, const char *fmt, ...);
 * Returns 0 on OK, a positive value for an ERROR/CME response, a negative errno otherwise.
 */

#ifndef FAKE_NRF_MODEM_AT_H_
#define FAKE_NRF_MODEM_AT_H_

#include <stddef.h>

int nrf_modem_at_cmd(void *buf, size_t len, const char *fmt, ...);

#endif /* FAKE_NRF_MODEM_AT_H_ */
