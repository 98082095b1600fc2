/*
 * Fake of nrf_socket.h: only the security tag type.
 * Mirrors nrf_modem/include/nrf_socket.h (nrfconnect/sdk-nrfxlib, as in NCS v3.4.1):
 *   typedef uint32_t nrf_sec_tag_t;
 */

#ifndef FAKE_NRF_SOCKET_H_
#define FAKE_NRF_SOCKET_H_

#include <stdint.h>

typedef uint32_t nrf_sec_tag_t;

#endif /* FAKE_NRF_SOCKET_H_ */
