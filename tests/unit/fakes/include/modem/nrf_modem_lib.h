/*
 * Fake of modem/nrf_modem_lib.h.
 *
 * Mirrors include/modem/nrf_modem_lib.h (nrfconnect/sdk-nrf, NCS v3.4.1): int
 * nrf_modem_lib_init(void), struct nrf_modem_lib_init_cb and NRF_MODEM_LIB_ON_INIT(name,
 * _callback, _context), which declares `static void _callback(int ret, void *ctx)` and registers
 * it as nrf_modem_hook_<name>. The fake nrf_modem_lib_init() (fakes/src/fake_modem.c) does not
 * walk a linker section: tests call the registered hook through its nrf_modem_hook_<name> object.
 */

#ifndef FAKE_NRF_MODEM_LIB_H_
#define FAKE_NRF_MODEM_LIB_H_

#include <zephyr/kernel.h>
#include <zephyr/sys/iterable_sections.h>

struct nrf_modem_lib_init_cb {
	void (*callback)(int ret, void *ctx);
	void *context;
};

int nrf_modem_lib_init(void);
int nrf_modem_lib_shutdown(void);

#define NRF_MODEM_LIB_ON_INIT(name, _callback, _context)                                           \
	static void _callback(int ret, void *ctx);                                                 \
	STRUCT_SECTION_ITERABLE(nrf_modem_lib_init_cb, nrf_modem_hook_##name) = {                  \
		.callback = _callback,                                                             \
		.context = _context,                                                               \
	};

#endif /* FAKE_NRF_MODEM_LIB_H_ */
