/*
 * Host tests of app/src/provision.c and credentials.c against the fake modem.
 *
 * What users depend on: the first boot stores the three credentials, later boots write nothing
 * (no flash wear), a changed certificate is the only thing written, an online modem makes the
 * write fail cleanly, a failed write is reported and completed on the next boot, nothing is ever
 * deleted, and every step is logged with the sec_tag and type. Every error branch is reached
 * through what the modem does (refused content, a key it keeps, a write lost after it was
 * accepted, a failing compare or listing) and with modem tracing compiled in no credential is
 * written while traces are on.
 *
 * Built twice (CMakeLists.txt): sec_tag 24 without tracing, and sec_tag 2147483647 (the highest
 * user tag) with CONFIG_NRF_MODEM_LIB_TRACE and trace level 5.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <certificates.h>
#include <fake_log.h>
#include <zephyr/logging/log.h>
#include <fake_modem.h>
#include <modem/nrf_modem_lib.h>
#include <modem/nrf_modem_lib_trace.h>
#include <zephyr/toolchain.h>

#include "credentials.h"
#include "provision.h"

#define TAG     ((nrf_sec_tag_t)CONFIG_MQTT_TLS_SEC_TAG)
#define TAG_STR STRINGIFY(CONFIG_MQTT_TLS_SEC_TAG)

#define CA   MODEM_KEY_MGMT_CRED_TYPE_CA_CHAIN
#define CERT MODEM_KEY_MGMT_CRED_TYPE_PUBLIC_CERT
#define KEY  MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT
#define CRED(t, s)                                                                                 \
	{                                                                                          \
		.type = (t), .data = (s), .len = sizeof(s) - 1                                     \
	}

static const char ca_v1[] = "-----BEGIN CERTIFICATE-----\nQ0EgdjE=\n-----END CERTIFICATE-----\n";
static const char ca_v2[] = "-----BEGIN CERTIFICATE-----\nQ0EgdjI=\n-----END CERTIFICATE-----\n";
static const char cert_v1[] = "-----BEGIN CERTIFICATE-----\nZGV2IHYx\n-----END CERTIFICATE-----\n";
static const char cert_v2[] = "-----BEGIN CERTIFICATE-----\nZGV2IHYy\n-----END CERTIFICATE-----\n";
static const char key_v1[] = "-----BEGIN PRIVATE KEY-----\nS0VZIHYx\n-----END PRIVATE KEY-----\n";
static const char key_v2[] = "-----BEGIN PRIVATE KEY-----\nS0VZIHYy\n-----END PRIVATE KEY-----\n";

static const struct provguard_credential set_v1[] = {
	CRED(PROVGUARD_CRED_CA_CHAIN, ca_v1),
	CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v1),
	CRED(PROVGUARD_CRED_PRIVATE_KEY, key_v1),
};

extern struct nrf_modem_lib_init_cb nrf_modem_hook_provguard_provision;

static int setup(void **state)
{
	(void)state;
	fake_modem_reset();
	fake_log_reset();
#if defined(CONFIG_NRF_MODEM_LIB_TRACE)
	/* What nrf_modem_lib_init() set from Kconfig before the init hooks run. */
	fake_modem_set_trace_level(CONFIG_NRF_MODEM_LIB_TRACE_LEVEL);
#endif
	return 0;
}

/*
 * Whatever happened, provisioning never deletes a credential; with tracing compiled in no write
 * happened while traces were on, and the level is back to the configured one (every test).
 */
static int teardown(void **state)
{
	(void)state;
	assert_int_equal(fake_modem_delete_calls(), 0);
#if defined(CONFIG_NRF_MODEM_LIB_TRACE)
	assert_int_equal(fake_modem_writes_traced(), 0);
#else
	assert_int_equal(fake_modem_trace_level_set_calls(), 0);
#endif
	return 0;
}

static void assert_stored(enum modem_key_mgmt_cred_type type, const char *expected)
{
	size_t len = 0;
	const char *data = fake_modem_get(TAG, type, &len);

	assert_non_null(data);
	assert_int_equal(len, strlen(expected));
	assert_memory_equal(data, expected, len);
}

static void assert_absent(enum modem_key_mgmt_cred_type type)
{
	size_t len = 0;

	assert_null(fake_modem_get(TAG, type, &len));
}

static int boot(const struct provguard_credential *creds, size_t count,
		struct provision_stats *stats)
{
	fake_modem_reboot();
	fake_log_reset();
	return provision_credentials(TAG, creds, count, stats);
}

static void test_first_boot_writes_the_three_credentials(void **state)
{
	struct provision_stats stats;
	enum modem_key_mgmt_cred_type order[8];

	(void)state;
	assert_int_equal(boot(set_v1, 3, &stats), 0);

	assert_int_equal(fake_modem_writes_stored(), 3);
	assert_int_equal(stats.written, 3);
	assert_int_equal(stats.unchanged, 0);
	assert_stored(CA, ca_v1);
	assert_stored(CERT, cert_v1);
	assert_stored(KEY, key_v1);

	/* The key goes in before the certificate that marks the pair complete. */
	assert_int_equal(fake_modem_write_log(order, 8), 3);
	assert_int_equal(order[0], CA);
	assert_int_equal(order[1], KEY);
	assert_int_equal(order[2], CERT);
}

static void test_next_boot_writes_nothing(void **state)
{
	struct provision_stats stats;

	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_int_equal(boot(set_v1, 3, &stats), 0);

	assert_int_equal(fake_modem_write_calls(), 0);
	assert_int_equal(stats.written, 0);
	assert_int_equal(stats.unchanged, 3);
	assert_true(fake_log_contains(LOG_LEVEL_INF,
				      "sec_tag " TAG_STR " type 0 (CA certificate): unchanged"));
}

static void test_changed_ca_certificate_writes_only_it(void **state)
{
	const struct provguard_credential set_new_ca[] = {
		CRED(PROVGUARD_CRED_CA_CHAIN, ca_v2),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v1),
		CRED(PROVGUARD_CRED_PRIVATE_KEY, key_v1),
	};
	struct provision_stats stats;

	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_int_equal(boot(set_new_ca, 3, &stats), 0);

	assert_int_equal(fake_modem_write_calls(), 1);
	assert_int_equal(stats.written, 1);
	assert_int_equal(stats.unchanged, 2);
	assert_true(fake_log_contains(LOG_LEVEL_INF, "type 0 (CA certificate): differs"));
	assert_int_equal(fake_log_count(LOG_LEVEL_ERR), 0);
	assert_stored(CA, ca_v2);
	assert_stored(CERT, cert_v1);
	assert_stored(KEY, key_v1);
}

/* The key cannot be read back: a new client certificate rewrites the pair, key first. */
static void test_changed_client_certificate_rewrites_the_pair(void **state)
{
	const struct provguard_credential set_v2[] = {
		CRED(PROVGUARD_CRED_CA_CHAIN, ca_v1),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v2),
		CRED(PROVGUARD_CRED_PRIVATE_KEY, key_v2),
	};
	enum modem_key_mgmt_cred_type order[8];

	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_int_equal(boot(set_v2, 3, NULL), 0);

	assert_int_equal(fake_modem_write_log(order, 8), 2);
	assert_int_equal(order[0], KEY);
	assert_int_equal(order[1], CERT);
	assert_stored(CA, ca_v1);
	assert_stored(CERT, cert_v2);
	assert_stored(KEY, key_v2);
}

/* CFUN=1: the modem refuses writes with CME 518; nothing changes and the error says why. */
static void test_online_modem_fails_cleanly(void **state)
{
	(void)state;
	fake_modem_set_online(true);

	assert_int_equal(boot(set_v1, 3, NULL), -EPERM);

	assert_int_equal(fake_modem_writes_stored(), 0);
	assert_absent(CA);
	assert_absent(CERT);
	assert_absent(KEY);
	assert_true(fake_log_contains(LOG_LEVEL_ERR,
				      "sec_tag " TAG_STR " type 0 (CA certificate): write "
				      "refused, the modem is not offline"));
	/* The key write was refused, so its certificate was not attempted. */
	assert_int_equal(fake_modem_write_calls(), 2);
}

/* An online modem keeps the working set it had: a refused update loses nothing. */
static void test_online_modem_keeps_the_working_set(void **state)
{
	const struct provguard_credential set_new_ca[] = {
		CRED(PROVGUARD_CRED_CA_CHAIN, ca_v2),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v1),
		CRED(PROVGUARD_CRED_PRIVATE_KEY, key_v1),
	};

	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);
	fake_modem_set_online(true);

	assert_int_equal(boot(set_new_ca, 3, NULL), -EPERM);
	assert_stored(CA, ca_v1);
	assert_stored(CERT, cert_v1);
	assert_stored(KEY, key_v1);
}

static void test_failed_key_write_is_reported_and_next_boot_completes(void **state)
{
	struct provision_stats stats;
	enum modem_key_mgmt_cred_type order[8];

	(void)state;
	fake_modem_fail_next_write(KEY, -ENOMEM);

	assert_int_equal(boot(set_v1, 3, &stats), -ENOMEM);
	assert_true(fake_log_contains(LOG_LEVEL_ERR,
				      "sec_tag " TAG_STR " type 2 (private key): write "
				      "failed: -12"));
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "provisioning incomplete (-12)"));
	assert_int_equal(stats.written, 1);
	assert_stored(CA, ca_v1);
	assert_absent(KEY);
	assert_absent(CERT);

	assert_int_equal(boot(set_v1, 3, &stats), 0);
	assert_int_equal(fake_modem_write_log(order, 8), 2);
	assert_int_equal(order[0], KEY);
	assert_int_equal(order[1], CERT);
	assert_stored(CA, ca_v1);
	assert_stored(CERT, cert_v1);
	assert_stored(KEY, key_v1);
}

/* Key stored but certificate write failed: the next boot sees an old/missing certificate. */
static void test_failed_certificate_write_is_completed_next_boot(void **state)
{
	(void)state;
	fake_modem_fail_next_write(CERT, -ECANCELED);

	assert_int_equal(boot(set_v1, 3, NULL), -ECANCELED);
	assert_stored(KEY, key_v1);
	assert_absent(CERT);

	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_stored(CERT, cert_v1);
	assert_stored(KEY, key_v1);
}

/* A certificate stored without its key (written by another tool): only the key is written. */
static void test_missing_key_is_written_alone(void **state)
{
	enum modem_key_mgmt_cred_type order[8];

	(void)state;
	fake_modem_put(TAG, CA, ca_v1, strlen(ca_v1));
	fake_modem_put(TAG, CERT, cert_v1, strlen(cert_v1));

	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_int_equal(fake_modem_write_log(order, 8), 1);
	assert_int_equal(order[0], KEY);
}

/* Tools such as nrfcredstore store PEM without the final newline: that is the same content. */
static void test_trailing_newline_difference_is_not_a_change(void **state)
{
	(void)state;
	fake_modem_put(TAG, CA, ca_v1, strlen(ca_v1) - 1);
	fake_modem_put(TAG, CERT, cert_v1, strlen(cert_v1) - 1);
	fake_modem_put(TAG, KEY, key_v1, strlen(key_v1) - 1);

	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_int_equal(fake_modem_write_calls(), 0);
}

static void test_corrupted_write_is_detected(void **state)
{
	(void)state;
	fake_modem_corrupt_next_write(CA);

	assert_int_equal(boot(set_v1, 1, NULL), -EIO);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "read-back after write does not match"));

	/* The next boot notices the difference and writes it again. */
	assert_int_equal(boot(set_v1, 1, NULL), 0);
	assert_stored(CA, ca_v1);
}

static void test_ca_only_table_touches_nothing_else(void **state)
{
	(void)state;
	assert_int_equal(boot(set_v1, 1, NULL), 0);
	assert_int_equal(fake_modem_writes_stored(), 1);
	assert_absent(CERT);
	assert_absent(KEY);
}

static void test_malformed_table_is_refused(void **state)
{
	const struct provguard_credential swapped[] = {
		CRED(PROVGUARD_CRED_CA_CHAIN, ca_v1),
		CRED(PROVGUARD_CRED_PRIVATE_KEY, key_v1),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v1),
	};
	const struct provguard_credential two_certs[] = {
		CRED(PROVGUARD_CRED_CA_CHAIN, ca_v1),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v1),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v2),
	};

	struct provision_stats stats = {.written = 7U, .unchanged = 7U};

	(void)state;
	assert_int_equal(boot(swapped, 3, &stats), -EINVAL);
	assert_int_equal(fake_modem_write_calls(), 0);
	assert_int_equal(stats.written, 0);
	assert_int_equal(stats.unchanged, 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "malformed credential table (3 entries)"));
	assert_int_equal(boot(set_v1, 2, NULL), -EINVAL);
	assert_int_equal(fake_modem_write_calls(), 0);
	assert_int_equal(boot(NULL, 1, NULL), -EINVAL);
	assert_int_equal(fake_modem_write_calls(), 0);
	/* The first entry must be the CA; the third must be the key. */
	assert_int_equal(boot(&set_v1[1], 1, NULL), -EINVAL);
	assert_int_equal(boot(two_certs, 3, NULL), -EINVAL);
	assert_int_equal(fake_modem_write_calls(), 0);
}

static void test_every_step_names_sec_tag_and_type(void **state)
{
	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);

	assert_true(fake_log_contains(LOG_LEVEL_INF,
				      "sec_tag " TAG_STR " type 0 (CA certificate): missing"));
	assert_true(fake_log_contains(LOG_LEVEL_INF,
				      "sec_tag " TAG_STR " type 0 (CA certificate): written "
				      "and verified"));
	assert_true(fake_log_contains(LOG_LEVEL_INF,
				      "sec_tag " TAG_STR " type 2 (private key): writing"));
	assert_true(fake_log_contains(LOG_LEVEL_INF,
				      "sec_tag " TAG_STR " type 2 (private key): written and "
				      "listed"));
	assert_true(fake_log_contains(LOG_LEVEL_INF,
				      "sec_tag " TAG_STR " type 1 (client certificate): "
				      "written and verified"));
	assert_int_equal(fake_log_count(LOG_LEVEL_ERR), 0);
}

/* The compiled table (credentials.c + certificates.h): CA, client certificate, key, in order. */
static void test_compiled_table_matches_certificates_h(void **state)
{
	const struct provguard_credential *table = NULL;

	(void)state;
	assert_int_equal(provguard_credentials(&table), 3);
	assert_int_equal(provguard_credentials_sec_tag(), PROVGUARD_CERTIFICATES_SEC_TAG);
	assert_int_equal(table[0].type, PROVGUARD_CRED_CA_CHAIN);
	assert_int_equal(table[0].len, strlen(CA_CERTIFICATE));
	assert_memory_equal(table[0].data, CA_CERTIFICATE, table[0].len);
	assert_int_equal(table[1].type, PROVGUARD_CRED_CLIENT_CERT);
	assert_memory_equal(table[1].data, CLIENT_CERTIFICATE, strlen(CLIENT_CERTIFICATE));
	assert_int_equal(table[2].type, PROVGUARD_CRED_PRIVATE_KEY);
	assert_int_equal(table[2].len, strlen(PRIVATE_KEY));
}

/* The modem library init hook: runs provisioning with the compiled table. */
static void test_init_hook_provisions_compiled_credentials(void **state)
{
	struct nrf_modem_lib_init_cb *hook = &nrf_modem_hook_provguard_provision;

	(void)state;
	assert_int_equal(provision_result(), -EAGAIN);

	fake_modem_reboot();
	hook->callback(0, hook->context);

	assert_int_equal(provision_result(), 0);
	assert_int_equal(fake_modem_writes_stored(), 3);
	assert_stored(CA, CA_CERTIFICATE);
	assert_stored(CERT, CLIENT_CERTIFICATE);
	assert_stored(KEY, PRIVATE_KEY);
}

static void test_init_hook_skips_a_failed_modem_init(void **state)
{
	struct nrf_modem_lib_init_cb *hook = &nrf_modem_hook_provguard_provision;

	(void)state;
	hook->callback(-EFAULT, hook->context);

	assert_int_equal(provision_result(), -EFAULT);
	assert_int_equal(fake_modem_write_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "credentials not provisioned"));
}

/* --- what the modem refuses, and writes that fail after they were accepted -------------------- */

/* CRLF content is answered with CME 527 by some modem firmware: nothing stored, said so. */
static void test_content_the_modem_refuses_is_reported(void **state)
{
	static const char ca_crlf[] =
		"-----BEGIN CERTIFICATE-----\r\nQ0EgdjE=\r\n-----END CERTIFICATE-----\r\n";
	static const char key_raw[] = "not a PEM key\n";
	const struct provguard_credential bad_ca[] = {CRED(PROVGUARD_CRED_CA_CHAIN, ca_crlf)};
	const struct provguard_credential bad_key[] = {
		CRED(PROVGUARD_CRED_CA_CHAIN, ca_v1),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v1),
		CRED(PROVGUARD_CRED_PRIVATE_KEY, key_raw),
	};

	(void)state;
	assert_int_equal(boot(bad_ca, 1, NULL), -EINVAL);
	assert_absent(CA);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "sec_tag " TAG_STR " type 0 (CA certificate): "
						     "the modem refused the content (CME 527"));

	assert_int_equal(boot(bad_key, 3, NULL), -EINVAL);
	assert_stored(CA, ca_v1);
	assert_absent(KEY);
	/* The certificate marks a stored key: it must not be written after a refused key. */
	assert_absent(CERT);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "type 2 (private key): the modem refused"));
}

/* A tag holding a key the modem keeps (CME 519): reported, nothing deleted, old pair intact. */
static void test_a_key_the_modem_keeps_is_reported(void **state)
{
	const struct provguard_credential set_v2[] = {
		CRED(PROVGUARD_CRED_CA_CHAIN, ca_v1),
		CRED(PROVGUARD_CRED_CLIENT_CERT, cert_v2),
		CRED(PROVGUARD_CRED_PRIVATE_KEY, key_v2),
	};
	struct provision_stats stats;

	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);
	fake_modem_refuse_second_key(true);

	assert_int_equal(boot(set_v2, 3, &stats), -EALREADY);
	assert_stored(CERT, cert_v1);
	assert_stored(KEY, key_v1);
	assert_int_equal(stats.written, 0);
	assert_int_equal(stats.unchanged, 1);
	assert_true(fake_log_contains(LOG_LEVEL_ERR,
				      "type 2 (private key): the modem keeps the one "
				      "it holds (CME 519"));
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "provisioning incomplete (-114)"));
}

/* The modem said OK but the certificate is not there: -EIO, and the next boot writes it. */
static void test_lost_certificate_write_is_detected(void **state)
{
	(void)state;
	fake_modem_lose_next_write(CA);

	assert_int_equal(boot(set_v1, 1, NULL), -EIO);
	assert_absent(CA);
	assert_true(fake_log_contains(LOG_LEVEL_ERR,
				      "type 0 (CA certificate): read-back after write "
				      "does not match: -2"));

	assert_int_equal(boot(set_v1, 1, NULL), 0);
	assert_stored(CA, ca_v1);
}

/* The key write was accepted and lost: not listed, so its certificate is not written. */
static void test_lost_key_write_is_detected(void **state)
{
	struct provision_stats stats;

	(void)state;
	fake_modem_lose_next_write(KEY);

	assert_int_equal(boot(set_v1, 3, &stats), -EIO);
	assert_true(
		fake_log_contains(LOG_LEVEL_ERR, "type 2 (private key): not listed after write"));
	assert_absent(KEY);
	assert_absent(CERT);
	assert_int_equal(stats.written, 1);

	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_stored(KEY, key_v1);
	assert_stored(CERT, cert_v1);
}

static void test_lost_client_certificate_write_is_detected(void **state)
{
	(void)state;
	fake_modem_lose_next_write(CERT);

	assert_int_equal(boot(set_v1, 3, NULL), -EIO);
	assert_stored(KEY, key_v1);
	assert_absent(CERT);
}

/* A compare that fails (e.g. the read-back buffer) stops that credential, not the other one. */
static void test_failed_ca_compare_does_not_stop_the_pair(void **state)
{
	struct provision_stats stats;

	(void)state;
	fake_modem_fail_call(FAKE_MODEM_CALL_CMP, 1, -ENOMEM);

	assert_int_equal(boot(set_v1, 3, &stats), -ENOMEM);
	assert_true(
		fake_log_contains(LOG_LEVEL_ERR, "type 0 (CA certificate): compare failed: -12"));
	assert_absent(CA);
	assert_stored(KEY, key_v1);
	assert_stored(CERT, cert_v1);
	assert_int_equal(stats.written, 2);
	assert_int_equal(stats.unchanged, 0);
}

static void test_failed_client_certificate_compare_writes_nothing_of_the_pair(void **state)
{
	(void)state;
	fake_modem_put(TAG, CA, ca_v1, strlen(ca_v1));
	/* Call 1 is the CA's compare, call 2 the client certificate's. */
	fake_modem_fail_call(FAKE_MODEM_CALL_CMP, 2, -ECANCELED);

	assert_int_equal(boot(set_v1, 3, NULL), -ECANCELED);
	assert_int_equal(fake_modem_write_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR,
				      "type 1 (client certificate): compare failed: -125"));
}

/* A read-back that fails (not a mismatch) is reported with its own error, not -EIO. */
static void test_failed_read_back_keeps_its_error(void **state)
{
	(void)state;
	/* Call 1: the CA is missing; call 2: the read-back after its write. */
	fake_modem_fail_call(FAKE_MODEM_CALL_CMP, 2, -ECANCELED);

	assert_int_equal(boot(set_v1, 1, NULL), -ECANCELED);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "read-back after write does not match: -125"));
}

static void test_failed_key_listing_writes_nothing_of_the_pair(void **state)
{
	(void)state;
	fake_modem_fail_call(FAKE_MODEM_CALL_EXISTS, 1, -ENOEXEC);

	assert_int_equal(boot(set_v1, 3, NULL), -ENOEXEC);
	assert_true(
		fake_log_contains(LOG_LEVEL_ERR, "type 2 (private key): presence check failed"));
	assert_stored(CA, ca_v1);
	assert_absent(KEY);
	assert_absent(CERT);
}

static void test_failed_listing_after_the_key_write_stops_the_certificate(void **state)
{
	(void)state;
	fake_modem_fail_call(FAKE_MODEM_CALL_EXISTS, 2, -ENOEXEC);

	assert_int_equal(boot(set_v1, 3, NULL), -ENOEXEC);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "presence check after write failed: -8"));
	assert_stored(KEY, key_v1);
	assert_absent(CERT);
}

/* Both parts fail: the CA's error is returned, both are logged. */
static void test_first_error_is_returned_when_both_parts_fail(void **state)
{
	(void)state;
	fake_modem_fail_next_write(CA, -ENOMEM);
	fake_modem_fail_next_write(KEY, -ECANCELED);

	assert_int_equal(boot(set_v1, 3, NULL), -ENOMEM);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "type 0 (CA certificate): write failed: -12"));
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "type 2 (private key): write failed: -125"));
}

/* A present key with a changed certificate: the key is rewritten (it cannot be compared). */
static void test_present_key_with_missing_certificate_rewrites_the_key(void **state)
{
	enum modem_key_mgmt_cred_type order[8];
	struct provision_stats stats;

	(void)state;
	fake_modem_put(TAG, CA, ca_v1, strlen(ca_v1));
	fake_modem_put(TAG, KEY, key_v2, strlen(key_v2));

	assert_int_equal(boot(set_v1, 3, &stats), 0);
	assert_int_equal(fake_modem_write_log(order, 8), 2);
	assert_int_equal(order[0], KEY);
	assert_int_equal(order[1], CERT);
	assert_stored(KEY, key_v1);
	assert_int_equal(stats.written, 2);
	assert_int_equal(stats.unchanged, 1);
}

/* Credentials under another sec_tag are neither read as ours nor touched. */
static void test_other_sec_tags_are_left_alone(void **state)
{
	const nrf_sec_tag_t other = TAG == 0U ? 1U : TAG - 1U;
	size_t len = 0;

	(void)state;
	fake_modem_put(other, CA, ca_v1, strlen(ca_v1));
	fake_modem_put(other, KEY, key_v2, strlen(key_v2));

	assert_int_equal(boot(set_v1, 3, NULL), 0);
	assert_int_equal(fake_modem_writes_stored(), 3);
	assert_non_null(fake_modem_get(other, KEY, &len));
	assert_int_equal(len, strlen(key_v2));
}

static void test_init_hook_maps_a_positive_init_result_to_eio(void **state)
{
	struct nrf_modem_lib_init_cb *hook = &nrf_modem_hook_provguard_provision;

	(void)state;
	hook->callback(1, hook->context);

	assert_int_equal(provision_result(), -EIO);
	assert_int_equal(fake_modem_write_calls(), 0);
}

/* --- modem traces --------------------------------------------------------------------------- */

#if defined(CONFIG_NRF_MODEM_LIB_TRACE)

static void test_traces_are_off_during_writes_and_restored(void **state)
{
	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);

	assert_int_equal(fake_modem_writes_stored(), 3);
	assert_int_equal(fake_modem_writes_traced(), 0);
	assert_int_equal(fake_modem_trace_level_set_calls(), 2);
	assert_int_equal(fake_modem_trace_level(), NRF_MODEM_LIB_TRACE_LEVEL_LTE_AND_IP);
}

static void test_traces_are_restored_after_a_failed_run(void **state)
{
	(void)state;
	fake_modem_set_online(true);

	assert_int_equal(boot(set_v1, 3, NULL), -EPERM);
	assert_int_equal(fake_modem_trace_level(), NRF_MODEM_LIB_TRACE_LEVEL_LTE_AND_IP);
	assert_int_equal(fake_modem_trace_level_set_calls(), 2);
}

/* If traces cannot be turned off, nothing is written: the trace would record the key. */
static void test_no_write_when_traces_cannot_be_turned_off(void **state)
{
	struct provision_stats stats = {.written = 7U, .unchanged = 7U};

	(void)state;
	fake_modem_fail_call(FAKE_MODEM_CALL_TRACE_LEVEL_SET, 1, -ENOEXEC);

	assert_int_equal(boot(set_v1, 3, &stats), -ENOEXEC);
	assert_int_equal(stats.written + stats.unchanged, 0);
	assert_int_equal(fake_modem_write_calls(), 0);
	assert_int_equal(fake_modem_trace_level_set_calls(), 1);
	assert_true(fake_log_contains(LOG_LEVEL_ERR,
				      "turning modem traces off failed (-8): nothing "
				      "written"));
}

static void test_positive_trace_error_is_eio(void **state)
{
	(void)state;
	fake_modem_fail_call(FAKE_MODEM_CALL_TRACE_LEVEL_SET, 1, 1);

	assert_int_equal(boot(set_v1, 3, NULL), -EIO);
	assert_int_equal(fake_modem_write_calls(), 0);
}

/* Credentials stored, but the level could not be restored: reported as a failure. */
static void test_failed_trace_restore_is_reported(void **state)
{
	(void)state;
	fake_modem_fail_call(FAKE_MODEM_CALL_TRACE_LEVEL_SET, 2, 1);

	assert_int_equal(boot(set_v1, 3, NULL), -EIO);
	assert_int_equal(fake_modem_writes_stored(), 3);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "restoring modem trace level 5 failed"));
}

/* The first error wins: a failed run with a failed restore reports the run's error. */
static void test_failed_run_and_restore_report_the_run_error(void **state)
{
	(void)state;
	fake_modem_set_online(true);
	fake_modem_fail_call(FAKE_MODEM_CALL_TRACE_LEVEL_SET, 2, -ENOEXEC);

	assert_int_equal(boot(set_v1, 3, NULL), -EPERM);
}

static void test_malformed_table_touches_no_trace_level(void **state)
{
	(void)state;
	assert_int_equal(boot(set_v1, 2, NULL), -EINVAL);
	assert_int_equal(fake_modem_trace_level_set_calls(), 0);
}

#endif /* CONFIG_NRF_MODEM_LIB_TRACE */

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Runs first: the hook has not run yet in this process. */
		cmocka_unit_test_setup_teardown(test_init_hook_provisions_compiled_credentials,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_hook_skips_a_failed_modem_init, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_first_boot_writes_the_three_credentials, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_next_boot_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_ca_certificate_writes_only_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_changed_client_certificate_rewrites_the_pair,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_online_modem_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_online_modem_keeps_the_working_set, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_failed_key_write_is_reported_and_next_boot_completes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_failed_certificate_write_is_completed_next_boot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_key_is_written_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailing_newline_difference_is_not_a_change,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupted_write_is_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_only_table_touches_nothing_else, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_table_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_step_names_sec_tag_and_type, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_compiled_table_matches_certificates_h, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_content_the_modem_refuses_is_reported, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_key_the_modem_keeps_is_reported, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lost_certificate_write_is_detected, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lost_key_write_is_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_client_certificate_write_is_detected,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_ca_compare_does_not_stop_the_pair,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_failed_client_certificate_compare_writes_nothing_of_the_pair, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_failed_read_back_keeps_its_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_key_listing_writes_nothing_of_the_pair,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_failed_listing_after_the_key_write_stops_the_certificate, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_first_error_is_returned_when_both_parts_fail,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_present_key_with_missing_certificate_rewrites_the_key, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_other_sec_tags_are_left_alone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_init_hook_maps_a_positive_init_result_to_eio,
						setup, teardown),
#if defined(CONFIG_NRF_MODEM_LIB_TRACE)
		cmocka_unit_test_setup_teardown(test_traces_are_off_during_writes_and_restored,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_traces_are_restored_after_a_failed_run, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_write_when_traces_cannot_be_turned_off,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_positive_trace_error_is_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_trace_restore_is_reported, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_run_and_restore_report_the_run_error,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_table_touches_no_trace_level, setup,
						teardown),
#endif
	};

	return cmocka_run_group_tests_name("provision", tests, NULL, NULL);
}
