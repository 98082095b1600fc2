/*
 * Test control of the fake modem (fake_modem.c): an in-memory credential store behind the
 * modem_key_mgmt API, the AT interface, the modem library init and the trace level.
 */

#ifndef FAKE_MODEM_H_
#define FAKE_MODEM_H_

#include <stdbool.h>
#include <stddef.h>

#include <modem/modem_key_mgmt.h>
#include <modem/nrf_modem_lib_trace.h>

/** Calls of the fake that a test can make fail (fake_modem_fail_call()). */
enum fake_modem_call {
	FAKE_MODEM_CALL_WRITE,
	FAKE_MODEM_CALL_CMP,
	FAKE_MODEM_CALL_EXISTS,
	FAKE_MODEM_CALL_TRACE_LEVEL_SET,
	FAKE_MODEM_CALL_COUNT,
};

/** Forget every credential and every injected behaviour, zero the counters. */
void fake_modem_reset(void);
/** Zero the call counters and the write log, keep the stored credentials (a reboot). */
void fake_modem_reboot(void);
/** Online modem (CFUN=1): writes and deletes are refused with -EPERM, as CME 518. */
void fake_modem_set_online(bool online);
/** The @p nth next call (1 = the next one) of @p call returns @p err and changes nothing. */
void fake_modem_fail_call(enum fake_modem_call call, unsigned int nth, int err);
/** The next write of @p type fails with @p err and leaves the store unchanged. */
void fake_modem_fail_next_write(enum modem_key_mgmt_cred_type type, int err);
/** The next write of @p type is stored with its last byte altered (a corrupted write). */
void fake_modem_corrupt_next_write(enum modem_key_mgmt_cred_type type);
/** The next write of @p type returns 0 but nothing is stored (accepted, then lost). */
void fake_modem_lose_next_write(enum modem_key_mgmt_cred_type type);
/**
 * While on, writing a private key into a tag that already holds one is refused with -EALREADY
 * (CME 519 "already exists"), as the modem answers for a key it will not replace (one generated
 * in the modem with AT%KEYGEN).
 */
void fake_modem_refuse_second_key(bool refuse);
/** Put a credential in the store directly (what an earlier tool left there). */
void fake_modem_put(nrf_sec_tag_t tag, enum modem_key_mgmt_cred_type type, const char *data,
		    size_t len);
/** The stored credential, or NULL when absent. */
const char *fake_modem_get(nrf_sec_tag_t tag, enum modem_key_mgmt_cred_type type, size_t *len);
/** Calls of modem_key_mgmt_write since the last reset/reboot (refused ones included). */
unsigned int fake_modem_write_calls(void);
/** Writes that changed the store since the last reset/reboot. */
unsigned int fake_modem_writes_stored(void);
/** Types of the stored writes, in order; returns how many (at most @p max). */
size_t fake_modem_write_log(enum modem_key_mgmt_cred_type *types, size_t max);
/** Calls of modem_key_mgmt_delete or _clear since the last reset. */
unsigned int fake_modem_delete_calls(void);
/** Answer of the next AT command: response text and return value of nrf_modem_at_cmd(). */
void fake_modem_set_at_response(const char *response, int ret);
/** The last AT command sent. */
const char *fake_modem_last_at_command(void);

/** The trace level the modem has now (set at boot from Kconfig, then by the application). */
void fake_modem_set_trace_level(enum nrf_modem_lib_trace_level level);
enum nrf_modem_lib_trace_level fake_modem_trace_level(void);
/** Calls of nrf_modem_lib_trace_level_set() since the last reset/reboot, failed ones included. */
unsigned int fake_modem_trace_level_set_calls(void);
/** Write calls made while the trace level was not OFF (the content would be in the trace). */
unsigned int fake_modem_writes_traced(void);

/** Calls of nrf_modem_lib_init() since the last reset, and the value it returns. */
unsigned int fake_modem_lib_init_calls(void);
void fake_modem_set_lib_init_result(int ret);

#endif /* FAKE_MODEM_H_ */
