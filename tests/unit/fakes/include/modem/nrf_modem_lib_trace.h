/*
 * Fake of modem/nrf_modem_lib_trace.h.
 *
 * Mirrors include/modem/nrf_modem_lib_trace.h (nrfconnect/sdk-nrf, NCS v3.4.1): the trace levels
 * with their upstream values and
 *   int nrf_modem_lib_trace_level_set(enum nrf_modem_lib_trace_level trace_level);
 * ("Zero on success, non-zero otherwise"). Upstream has no getter for the current level; the
 * level the application configured is CONFIG_NRF_MODEM_LIB_TRACE_LEVEL (lib/nrf_modem_lib/
 * Kconfig.modemlib, only defined with CONFIG_NRF_MODEM_LIB_TRACE_LEVEL_OVERRIDE).
 * The fake (fakes/src/fake_modem.c) records every level set and fails on request.
 */

#ifndef FAKE_NRF_MODEM_LIB_TRACE_H_
#define FAKE_NRF_MODEM_LIB_TRACE_H_

#include <zephyr/kernel.h>

enum nrf_modem_lib_trace_level {
	NRF_MODEM_LIB_TRACE_LEVEL_OFF = 0,
	NRF_MODEM_LIB_TRACE_LEVEL_COREDUMP_ONLY = 1,
	NRF_MODEM_LIB_TRACE_LEVEL_FULL = 2,
	NRF_MODEM_LIB_TRACE_LEVEL_IP_ONLY = 4,
	NRF_MODEM_LIB_TRACE_LEVEL_LTE_AND_IP = 5,
};

int nrf_modem_lib_trace_level_set(enum nrf_modem_lib_trace_level trace_level);

#endif /* FAKE_NRF_MODEM_LIB_TRACE_H_ */
