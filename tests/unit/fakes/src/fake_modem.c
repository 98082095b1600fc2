/*
 * Fake nRF91 modem for host tests: modem_key_mgmt over an in-memory store, nrf_modem_at_cmd,
 * nrf_modem_lib_init and nrf_modem_lib_trace_level_set.
 *
 * Mirrors, for NCS v3.4.1: include/modem/modem_key_mgmt.h and lib/modem_key_mgmt/
 * modem_key_mgmt.c (nrfconnect/sdk-nrf), include/modem/nrf_modem_lib.h and
 * include/modem/nrf_modem_lib_trace.h (sdk-nrf), nrf_modem/include/nrf_modem_at.h
 * (nrfconnect/sdk-nrfxlib); behaviour after the nRF91 AT command reference for AT%CMNG:
 *   - a write replaces the credential in place; a refused write leaves the store as it was;
 *   - write and delete while online (CFUN=1) are CME 518 -> -EPERM;
 *   - content the modem does not take is CME 527 -> -EINVAL: CR characters (CRLF content was
 *     refused by nRF91x1 mfw 2.0.x), a double quote (the content is quoted in the command),
 *     a certificate type without a PEM certificate, a key type without a PEM private key;
 *   - a private key cannot be read back (CME 514 -> -EACCES); cmp returns 0 on match, 1 on
 *     mismatch, -ENOENT when absent, and ignores one trailing '\n' on either side;
 *   - on request: a key the modem will not replace (CME 519 -> -EALREADY), any call failing, a
 *     write accepted and then lost or corrupted (power loss while the modem writes NVM).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <fake_modem.h>
#include <modem/modem_key_mgmt.h>
#include <modem/nrf_modem_lib.h>
#include <modem/nrf_modem_lib_trace.h>
#include <nrf_modem_at.h>

#define SLOTS     16
#define CRED_SIZE 4096
#define LOG_SIZE  32
#define TYPES     (MODEM_KEY_MGMT_CRED_TYPE_IDENTITY + 1)

struct slot {
	bool used;
	nrf_sec_tag_t tag;
	enum modem_key_mgmt_cred_type type;
	char data[CRED_SIZE];
	size_t len;
};

static struct slot store[SLOTS];
static bool online;
static bool refuse_second_key;
static int fail_err[TYPES];
static bool corrupt[TYPES];
static bool lose[TYPES];
static unsigned int fail_countdown[FAKE_MODEM_CALL_COUNT];
static int fail_call_err[FAKE_MODEM_CALL_COUNT];
static unsigned int write_calls;
static unsigned int writes_stored;
static unsigned int writes_traced;
static unsigned int delete_calls;
static enum modem_key_mgmt_cred_type write_log[LOG_SIZE];
static size_t write_log_len;
static char at_response[128];
static int at_ret;
static char at_last[128];
static enum nrf_modem_lib_trace_level trace_level;
static unsigned int trace_level_set_calls;
static unsigned int lib_init_calls;
static int lib_init_result;

static struct slot *find(nrf_sec_tag_t tag, enum modem_key_mgmt_cred_type type)
{
	for (size_t i = 0; i < SLOTS; i++) {
		if (store[i].used && store[i].tag == tag && store[i].type == type) {
			return &store[i];
		}
	}
	return NULL;
}

static void put(nrf_sec_tag_t tag, enum modem_key_mgmt_cred_type type, const char *data, size_t len)
{
	struct slot *s = find(tag, type);

	for (size_t i = 0; s == NULL && i < SLOTS; i++) {
		if (!store[i].used) {
			s = &store[i];
		}
	}
	if (s == NULL || len > CRED_SIZE) {
		fprintf(stderr, "fake_modem: store full or credential too large\n");
		return;
	}
	s->used = true;
	s->tag = tag;
	s->type = type;
	memcpy(s->data, data, len);
	s->len = len;
}

/* An injected failure of this call, or 0. */
static int injected(enum fake_modem_call call)
{
	if (fail_countdown[call] == 0U) {
		return 0;
	}
	if (--fail_countdown[call] != 0U) {
		return 0;
	}
	return fail_call_err[call];
}

static bool contains(const char *data, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(&data[i], needle, n) == 0) {
			return true;
		}
	}
	return false;
}

static bool starts_with(const char *data, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(data, prefix, n) == 0;
}

/* What the modem answers with CME 527 (invalid content). */
static bool content_refused(enum modem_key_mgmt_cred_type type, const char *data, size_t len)
{
	if (memchr(data, '\r', len) != NULL || memchr(data, '"', len) != NULL) {
		return true;
	}
	switch (type) {
	case MODEM_KEY_MGMT_CRED_TYPE_CA_CHAIN:
	case MODEM_KEY_MGMT_CRED_TYPE_PUBLIC_CERT:
		return !starts_with(data, len, "-----BEGIN CERTIFICATE-----\n") ||
		       !contains(data, len, "-----END CERTIFICATE-----");
	case MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT:
		return !starts_with(data, len, "-----BEGIN ") ||
		       !contains(data, len, "PRIVATE KEY-----\n") ||
		       !contains(data, len, "-----END ");
	default:
		return false;
	}
}

void fake_modem_reboot(void)
{
	write_calls = 0;
	writes_stored = 0;
	writes_traced = 0;
	write_log_len = 0;
	trace_level_set_calls = 0;
}

void fake_modem_reset(void)
{
	memset(store, 0, sizeof(store));
	memset(fail_err, 0, sizeof(fail_err));
	memset(corrupt, 0, sizeof(corrupt));
	memset(lose, 0, sizeof(lose));
	memset(fail_countdown, 0, sizeof(fail_countdown));
	memset(fail_call_err, 0, sizeof(fail_call_err));
	online = false;
	refuse_second_key = false;
	delete_calls = 0;
	at_response[0] = '\0';
	at_ret = 0;
	at_last[0] = '\0';
	trace_level = NRF_MODEM_LIB_TRACE_LEVEL_FULL;
	lib_init_calls = 0;
	lib_init_result = 0;
	fake_modem_reboot();
}

void fake_modem_set_online(bool value)
{
	online = value;
}

void fake_modem_fail_call(enum fake_modem_call call, unsigned int nth, int err)
{
	fail_countdown[call] = nth;
	fail_call_err[call] = err;
}

void fake_modem_fail_next_write(enum modem_key_mgmt_cred_type type, int err)
{
	fail_err[type] = err;
}

void fake_modem_corrupt_next_write(enum modem_key_mgmt_cred_type type)
{
	corrupt[type] = true;
}

void fake_modem_lose_next_write(enum modem_key_mgmt_cred_type type)
{
	lose[type] = true;
}

void fake_modem_refuse_second_key(bool refuse)
{
	refuse_second_key = refuse;
}

void fake_modem_put(nrf_sec_tag_t tag, enum modem_key_mgmt_cred_type type, const char *data,
		    size_t len)
{
	put(tag, type, data, len);
}

const char *fake_modem_get(nrf_sec_tag_t tag, enum modem_key_mgmt_cred_type type, size_t *len)
{
	struct slot *s = find(tag, type);

	if (s == NULL) {
		return NULL;
	}
	*len = s->len;
	return s->data;
}

unsigned int fake_modem_write_calls(void)
{
	return write_calls;
}

unsigned int fake_modem_writes_stored(void)
{
	return writes_stored;
}

size_t fake_modem_write_log(enum modem_key_mgmt_cred_type *types, size_t max)
{
	size_t n = write_log_len < max ? write_log_len : max;

	memcpy(types, write_log, n * sizeof(types[0]));
	return n;
}

unsigned int fake_modem_delete_calls(void)
{
	return delete_calls;
}

void fake_modem_set_at_response(const char *response, int ret)
{
	snprintf(at_response, sizeof(at_response), "%s", response);
	at_ret = ret;
}

const char *fake_modem_last_at_command(void)
{
	return at_last;
}

void fake_modem_set_trace_level(enum nrf_modem_lib_trace_level level)
{
	trace_level = level;
}

enum nrf_modem_lib_trace_level fake_modem_trace_level(void)
{
	return trace_level;
}

unsigned int fake_modem_trace_level_set_calls(void)
{
	return trace_level_set_calls;
}

unsigned int fake_modem_writes_traced(void)
{
	return writes_traced;
}

unsigned int fake_modem_lib_init_calls(void)
{
	return lib_init_calls;
}

void fake_modem_set_lib_init_result(int ret)
{
	lib_init_result = ret;
}

int modem_key_mgmt_write(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type,
			 const void *buf, size_t len)
{
	char copy[CRED_SIZE];
	int err;

	write_calls++;
	if (trace_level != NRF_MODEM_LIB_TRACE_LEVEL_OFF) {
		writes_traced++;
	}
	if (buf == NULL || len == 0 || len > CRED_SIZE) {
		return -EINVAL;
	}
	if (online) {
		return -EPERM;
	}
	err = injected(FAKE_MODEM_CALL_WRITE);
	if (err) {
		return err;
	}
	if (fail_err[cred_type] != 0) {
		err = fail_err[cred_type];
		fail_err[cred_type] = 0;
		return err;
	}
	if (content_refused(cred_type, buf, len)) {
		return -EINVAL;
	}
	if (refuse_second_key && cred_type == MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT &&
	    find(sec_tag, cred_type) != NULL) {
		return -EALREADY;
	}
	if (lose[cred_type]) {
		lose[cred_type] = false;
		return 0;
	}

	memcpy(copy, buf, len);
	if (corrupt[cred_type]) {
		corrupt[cred_type] = false;
		copy[len - 1] ^= 0x20;
	}
	put(sec_tag, cred_type, copy, len);
	writes_stored++;
	if (write_log_len < LOG_SIZE) {
		write_log[write_log_len++] = cred_type;
	}
	return 0;
}

int modem_key_mgmt_delete(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type)
{
	struct slot *s;

	delete_calls++;
	if (online) {
		return -EPERM;
	}
	s = find(sec_tag, cred_type);
	if (s == NULL) {
		return -ENOENT;
	}
	s->used = false;
	return 0;
}

int modem_key_mgmt_clear(nrf_sec_tag_t sec_tag)
{
	delete_calls++;
	if (online) {
		return -EPERM;
	}
	for (size_t i = 0; i < SLOTS; i++) {
		if (store[i].used && store[i].tag == sec_tag) {
			store[i].used = false;
		}
	}
	return 0;
}

int modem_key_mgmt_read(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type, void *buf,
			size_t *len)
{
	struct slot *s = find(sec_tag, cred_type);

	if (s == NULL) {
		return -ENOENT;
	}
	if (cred_type == MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT) {
		return -EACCES;
	}
	if (*len < s->len) {
		*len = s->len;
		return -ENOMEM;
	}
	memcpy(buf, s->data, s->len);
	*len = s->len;
	return 0;
}

int modem_key_mgmt_cmp(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type,
		       const void *buf, size_t len)
{
	struct slot *s = find(sec_tag, cred_type);
	size_t stored_len;
	int err = injected(FAKE_MODEM_CALL_CMP);

	if (err) {
		return err;
	}
	if (buf == NULL) {
		return -EINVAL;
	}
	if (s == NULL) {
		return -ENOENT;
	}
	if (cred_type == MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT) {
		return -EACCES;
	}

	stored_len = s->len;
	if (stored_len > 0 && s->data[stored_len - 1] == '\n') {
		stored_len--;
	}
	if (len > 0 && ((const char *)buf)[len - 1] == '\n') {
		len--;
	}
	if (stored_len != len || memcmp(s->data, buf, len) != 0) {
		return 1;
	}
	return 0;
}

int modem_key_mgmt_exists(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type,
			  bool *exists)
{
	int err = injected(FAKE_MODEM_CALL_EXISTS);

	if (err) {
		return err;
	}
	if (exists == NULL) {
		return -EINVAL;
	}
	*exists = find(sec_tag, cred_type) != NULL;
	return 0;
}

int nrf_modem_lib_trace_level_set(enum nrf_modem_lib_trace_level level)
{
	int err = injected(FAKE_MODEM_CALL_TRACE_LEVEL_SET);

	trace_level_set_calls++;
	if (err) {
		return err;
	}
	trace_level = level;
	return 0;
}

int nrf_modem_at_cmd(void *buf, size_t len, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(at_last, sizeof(at_last), fmt, args);
	va_end(args);

	if (buf != NULL && len > 0) {
		snprintf(buf, len, "%s", at_response);
	}
	return at_ret;
}

int nrf_modem_lib_init(void)
{
	lib_init_calls++;
	return lib_init_result;
}

int nrf_modem_lib_shutdown(void)
{
	return 0;
}
