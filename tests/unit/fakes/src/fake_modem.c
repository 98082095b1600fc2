/*
 * Fake nRF91 modem for host tests: modem_key_mgmt over an in-memory store, nrf_modem_at_cmd,
 * nrf_modem_lib_init. Semantics follow lib/modem_key_mgmt/modem_key_mgmt.c (sdk-nrf v3.4.1) and
 * the AT%CMNG reference: a write replaces the credential in place, a refused write (CME 518 while
 * online -> -EPERM) leaves the store as it was, a private key cannot be read back (CME 514 ->
 * -EACCES), and cmp ignores one trailing '\n' on either side.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <fake_modem.h>
#include <modem/modem_key_mgmt.h>
#include <modem/nrf_modem_lib.h>
#include <nrf_modem_at.h>

#define SLOTS     16
#define CRED_SIZE 4096
#define LOG_SIZE  32

struct slot {
	bool used;
	nrf_sec_tag_t tag;
	enum modem_key_mgmt_cred_type type;
	char data[CRED_SIZE];
	size_t len;
};

static struct slot store[SLOTS];
static bool online;
static int fail_err[MODEM_KEY_MGMT_CRED_TYPE_IDENTITY + 1];
static bool corrupt[MODEM_KEY_MGMT_CRED_TYPE_IDENTITY + 1];
static unsigned int write_calls;
static unsigned int writes_stored;
static unsigned int delete_calls;
static enum modem_key_mgmt_cred_type write_log[LOG_SIZE];
static size_t write_log_len;
static char at_response[128];
static int at_ret;
static char at_last[128];

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

void fake_modem_reboot(void)
{
	write_calls = 0;
	writes_stored = 0;
	write_log_len = 0;
}

void fake_modem_reset(void)
{
	memset(store, 0, sizeof(store));
	memset(fail_err, 0, sizeof(fail_err));
	memset(corrupt, 0, sizeof(corrupt));
	online = false;
	delete_calls = 0;
	at_response[0] = '\0';
	at_ret = 0;
	at_last[0] = '\0';
	fake_modem_reboot();
}

void fake_modem_set_online(bool value)
{
	online = value;
}

void fake_modem_fail_next_write(enum modem_key_mgmt_cred_type type, int err)
{
	fail_err[type] = err;
}

void fake_modem_corrupt_next_write(enum modem_key_mgmt_cred_type type)
{
	corrupt[type] = true;
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

int modem_key_mgmt_write(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type,
			 const void *buf, size_t len)
{
	char copy[CRED_SIZE];

	write_calls++;
	if (buf == NULL || len == 0 || len > CRED_SIZE) {
		return -EINVAL;
	}
	if (online) {
		return -EPERM;
	}
	if (fail_err[cred_type] != 0) {
		int err = fail_err[cred_type];

		fail_err[cred_type] = 0;
		return err;
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
	if (exists == NULL) {
		return -EINVAL;
	}
	*exists = find(sec_tag, cred_type) != NULL;
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
	return 0;
}

int nrf_modem_lib_shutdown(void)
{
	return 0;
}
