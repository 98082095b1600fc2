/*
 * Host tests of app/src/provision.c and credentials.c against the fake modem.
 *
 * What users depend on: the first boot stores the three credentials, later boots write nothing
 * (no flash wear), a changed certificate is the only thing written, an online modem makes the
 * write fail cleanly, a failed write is reported and completed on the next boot, nothing is ever
 * deleted, and every step is logged with the sec_tag and type.
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

#include "credentials.h"
#include "provision.h"

#define TAG 24U

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
static const char key_v1[] = "placeholder key v1\n";
static const char key_v2[] = "placeholder key v2\n";

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
	return 0;
}

/* Whatever happened, provisioning never deletes a credential. */
static int teardown(void **state)
{
	(void)state;
	assert_int_equal(fake_modem_delete_calls(), 0);
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
	assert_true(
		fake_log_contains(LOG_LEVEL_INF, "sec_tag 24 type 0 (CA certificate): unchanged"));
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
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "sec_tag 24 type 0 (CA certificate): write "
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
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "sec_tag 24 type 2 (private key): write "
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

	(void)state;
	assert_int_equal(boot(swapped, 3, NULL), -EINVAL);
	assert_int_equal(boot(set_v1, 2, NULL), -EINVAL);
	assert_int_equal(boot(NULL, 1, NULL), -EINVAL);
	assert_int_equal(fake_modem_write_calls(), 0);
}

static void test_every_step_names_sec_tag_and_type(void **state)
{
	(void)state;
	assert_int_equal(boot(set_v1, 3, NULL), 0);

	assert_true(
		fake_log_contains(LOG_LEVEL_INF, "sec_tag 24 type 0 (CA certificate): missing"));
	assert_true(fake_log_contains(LOG_LEVEL_INF, "sec_tag 24 type 0 (CA certificate): written "
						     "and verified"));
	assert_true(fake_log_contains(LOG_LEVEL_INF, "sec_tag 24 type 2 (private key): writing"));
	assert_true(fake_log_contains(LOG_LEVEL_INF, "sec_tag 24 type 2 (private key): written and "
						     "listed"));
	assert_true(fake_log_contains(LOG_LEVEL_INF, "sec_tag 24 type 1 (client certificate): "
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
	};

	return cmocka_run_group_tests_name("provision", tests, NULL, NULL);
}
