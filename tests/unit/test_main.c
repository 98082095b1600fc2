/*
 * Host tests of app/src/main.c (its main() compiled as app_main) with the real mqtt_app.c,
 * against the fake modem library, sockets, MQTT library, LTE link and k_sleep().
 *
 * What users depend on: the device resolves and connects to the configured broker and port over
 * TLS, serves the session until the socket or the keepalive fails, always releases what it
 * resolved, retries LTE with the configured delay, and reconnects with a doubling delay that is
 * capped and starts over once a session reached the broker. main() never returns on its own:
 * the fake k_sleep() leaves it through longjmp() after a given number of sleeps.
 *
 * Built twice (CMakeLists.txt): as configured in fakes/autoconf.h, and as
 * test_main_provisioning with provisioning compiled in, port 1883 and peer verification 1.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <fake_log.h>
#include <fake_modem.h>
#include <fake_mqtt.h>
#include <fake_net.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/socket.h>

int app_main(void);

#if defined(TEST_VARIANT)
#define PORT "1883"
#else
#define PORT "8883"
#endif

#define IMEI_RESPONSE "352656100000000\r\nOK\r\n"

#if defined(CONFIG_PROVISION_CERTIFICATES)
static int provision_answer;

/* provision.c is not linked here: main.c only reads the result of the init hook. */
int provision_result(void)
{
	return provision_answer;
}
#endif

struct run {
	bool returned;
	int ret;
};

static int setup(void **state)
{
	(void)state;
	fake_net_reset();
	fake_mqtt_reset();
	fake_modem_reset();
	fake_log_reset();
	fake_modem_set_at_response(IMEI_RESPONSE, 0);
#if defined(CONFIG_PROVISION_CERTIFICATES)
	provision_answer = 0;
#endif
	return 0;
}

/* Run main() until it returns or has slept @p sleeps times. */
static struct run run_main(unsigned int sleeps)
{
	struct run run = {0};

	fake_net_sleep_budget(sleeps);
	if (setjmp(*fake_net_escape()) == 0) {
		run.ret = app_main();
		run.returned = true;
	}
	return run;
}

static void assert_sleeps(const int64_t *expected, size_t count)
{
	int64_t got[32];

	assert_int_equal(fake_net_sleeps(got, 32), count);
	for (size_t i = 0; i < count; i++) {
		assert_int_equal(got[i], expected[i]);
	}
}

/* A session that reaches the broker (CONNACK on the first input), then the peer hangs up. */
static void script_reached_session(void)
{
	fake_net_push_poll(1, ZSOCK_POLLIN, 0);
	fake_mqtt_connack_on_next_input(0);
}

static void test_connects_to_the_configured_broker_and_port(void **state)
{
	struct run run;

	(void)state;
	fake_mqtt_set_results(0, -EAGAIN, 45000);
	script_reached_session();

	run = run_main(1);

	assert_false(run.returned);
	assert_string_equal(fake_net_last_host(), "broker.provguard.test");
	assert_string_equal(fake_net_last_service(), PORT);
	assert_int_equal(fake_mqtt_connect_calls(), 1);
	assert_int_equal(fake_mqtt_connect_broker_checked(), 1);
	/* The session polls the socket the library opened, for the keepalive time left. */
	assert_int_equal(fake_net_last_poll_fd(), FAKE_MQTT_SOCKET);
	assert_int_equal(fake_net_last_poll_timeout(), 45000);
	assert_int_equal(fake_mqtt_input_calls(), 1);
	assert_int_equal(fake_mqtt_subscribe_calls(), 1);
	/* Ended by the hang-up: aborted, the resolved address released. */
	assert_int_equal(fake_mqtt_abort_calls(), 1);
	assert_int_equal(fake_net_getaddrinfo_calls(), 1);
	assert_int_equal(fake_net_freeaddrinfo_calls(), 1);
	assert_true(fake_log_contains(LOG_LEVEL_INF, "Connecting to broker.provguard.test:" PORT
						     " as nrf-352656100000000"));
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Socket closed (revents 0x10)"));
	assert_string_equal(fake_modem_last_at_command(), "AT+CGSN");
}

/* Failed attempts double the delay from 2 s; a session that reached the broker starts over. */
static void test_backoff_doubles_and_resets_after_reaching_the_broker(void **state)
{
	const int64_t expected[] = {2000, 4000, 8000, 2000, 4000};

	(void)state;
	fake_mqtt_push_connect_result(-ECONNREFUSED);
	fake_mqtt_push_connect_result(-ECONNREFUSED);
	fake_mqtt_push_connect_result(-ECONNREFUSED);
	fake_mqtt_push_connect_result(0);
	fake_mqtt_push_connect_result(-ECONNREFUSED);
	script_reached_session();

	(void)run_main(5);

	assert_sleeps(expected, 5);
	assert_int_equal(fake_mqtt_connect_calls(), 5);
	/* One session was established: only it is aborted; every resolution is released. */
	assert_int_equal(fake_mqtt_abort_calls(), 1);
	assert_int_equal(fake_net_freeaddrinfo_calls(), 5);
	assert_true(fake_log_contains(LOG_LEVEL_INF, "Reconnecting in 8 s"));
}

/* The delay is capped at CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S (60 s here). */
static void test_backoff_is_capped(void **state)
{
	const int64_t expected[] = {2000, 4000, 8000, 16000, 32000, 60000, 60000};

	(void)state;
	for (int i = 0; i < 7; i++) {
		fake_mqtt_push_connect_result(-ETIMEDOUT);
	}

	(void)run_main(7);

	assert_sleeps(expected, 7);
}

/* A session that never got CONNACK does not reset the backoff. */
static void test_session_without_connack_keeps_backing_off(void **state)
{
	const int64_t expected[] = {2000, 4000};

	(void)state;
	fake_net_push_poll(1, ZSOCK_POLLIN, 0);
	fake_mqtt_connack_on_next_input(-ECONNREFUSED);

	(void)run_main(2);

	assert_sleeps(expected, 2);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Broker refused the connection"));
}

static void test_lte_is_retried_with_the_configured_delay(void **state)
{
	const int64_t expected[] = {30000, 30000, 2000};

	(void)state;
	fake_net_push_lte_result(-EIO);
	fake_net_push_lte_result(-ETIMEDOUT);

	(void)run_main(3);

	assert_int_equal(fake_net_lte_calls(), 3);
	assert_sleeps(expected, 3);
	assert_true(
		fake_log_contains(LOG_LEVEL_ERR, "LTE connection failed (-110), retrying in 30 s"));
	assert_int_equal(fake_mqtt_connect_calls(), 1);
}

static void test_modem_library_failure_stops_before_lte(void **state)
{
	struct run run;

	(void)state;
	fake_modem_set_lib_init_result(-EFAULT);

	run = run_main(1);

	assert_true(run.returned);
	assert_int_equal(run.ret, -EFAULT);
	assert_int_equal(fake_net_lte_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Modem library init failed: -14"));
}

/* Without a configured client id, a modem without a 15-digit IMEI stops the application. */
static void test_no_imei_stops_before_lte(void **state)
{
	struct run run;

	(void)state;
	fake_modem_set_at_response("3526561000000001\r\nOK\r\n", 0);

	run = run_main(1);

	assert_true(run.returned);
	assert_int_equal(run.ret, -EIO);
	assert_int_equal(fake_net_lte_calls(), 0);
	assert_int_equal(fake_modem_lib_init_calls(), 1);
}

static void test_resolve_failure_backs_off_without_connecting(void **state)
{
	const int64_t expected[] = {2000, 4000};

	(void)state;
	fake_net_set_getaddrinfo(-EAGAIN, false);

	(void)run_main(2);

	assert_int_equal(fake_mqtt_connect_calls(), 0);
	assert_int_equal(fake_net_freeaddrinfo_calls(), 0);
	assert_sleeps(expected, 2);
	assert_true(
		fake_log_contains(LOG_LEVEL_ERR, "Resolving broker.provguard.test failed: -11"));
}

/* getaddrinfo() answering 0 without a result is a failure too, not a NULL dereference. */
static void test_empty_resolution_is_a_failure(void **state)
{
	(void)state;
	fake_net_set_getaddrinfo(0, true);

	(void)run_main(1);

	assert_int_equal(fake_mqtt_connect_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Resolving broker.provguard.test failed: 0"));
}

static void test_refused_connect_releases_the_address_without_abort(void **state)
{
	(void)state;
	fake_mqtt_push_connect_result(-ECONNREFUSED);

	(void)run_main(1);

	assert_int_equal(fake_mqtt_abort_calls(), 0);
	assert_int_equal(fake_net_freeaddrinfo_calls(), 1);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Connecting to broker.provguard.test failed: "
						     "-111"));
}

static void test_poll_error_ends_the_session(void **state)
{
	(void)state;
	fake_net_push_poll(-1, 0, EBADF);

	(void)run_main(1);

	assert_true(fake_log_contains(LOG_LEVEL_ERR, "poll failed: -9"));
	assert_int_equal(fake_mqtt_input_calls(), 0);
	assert_int_equal(fake_mqtt_abort_calls(), 1);
	assert_int_equal(fake_net_freeaddrinfo_calls(), 1);
}

static void test_keepalive_failure_ends_the_session(void **state)
{
	(void)state;
	fake_mqtt_set_results(0, -ENOTCONN, -1);
	fake_net_push_poll(0, 0, 0);

	(void)run_main(1);

	assert_int_equal(fake_net_poll_calls(), 1);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Keepalive failed: -107"));
	assert_int_equal(fake_mqtt_abort_calls(), 1);
}

/* -EAGAIN from mqtt_live() is "nothing to do": the session goes on. */
static void test_keepalive_eagain_keeps_the_session(void **state)
{
	(void)state;
	fake_mqtt_set_results(0, -EAGAIN, -1);
	fake_net_push_poll(0, 0, 0);
	fake_net_push_poll(0, 0, 0);

	(void)run_main(1);

	/* Two quiet polls, then the script's hang-up. */
	assert_int_equal(fake_net_poll_calls(), 3);
	assert_int_equal(fake_log_count(LOG_LEVEL_ERR), 1);
}

static void test_input_error_ends_the_session(void **state)
{
	(void)state;
	fake_mqtt_set_results(-ECONNRESET, -EAGAIN, -1);
	fake_net_push_poll(1, ZSOCK_POLLIN, 0);

	(void)run_main(1);

	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Connection lost: -104"));
	assert_int_equal(fake_net_poll_calls(), 1);
}

/* Without POLLIN the library is not asked for input; POLLERR and POLLNVAL end the session. */
static void test_socket_errors_end_the_session(void **state)
{
	(void)state;
	fake_net_push_poll(1, ZSOCK_POLLERR, 0);

	(void)run_main(1);

	assert_int_equal(fake_mqtt_input_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Socket closed (revents 0x8)"));

	setup(NULL);
	fake_net_push_poll(1, ZSOCK_POLLNVAL, 0);
	(void)run_main(1);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Socket closed (revents 0x20)"));
}

static void test_peer_verification_warning_follows_kconfig(void **state)
{
	(void)state;
	(void)run_main(1);

#if defined(TEST_VARIANT)
	assert_true(fake_log_contains(LOG_LEVEL_WRN, "TLS peer verification is lowered to 1"));
#else
	assert_int_equal(fake_log_count(LOG_LEVEL_WRN), 0);
#endif
}

#if defined(CONFIG_PROVISION_CERTIFICATES)
/* A failed provisioning is reported and the device still connects with what the modem holds. */
static void test_failed_provisioning_is_reported_and_connects(void **state)
{
	(void)state;
	provision_answer = -EPERM;

	(void)run_main(1);

	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Provisioning failed (-1): connecting with "
						     "what the modem holds"));
	assert_int_equal(fake_net_lte_calls(), 1);
	assert_int_equal(fake_mqtt_connect_calls(), 1);
}

static void test_successful_provisioning_is_quiet(void **state)
{
	(void)state;
	(void)run_main(1);

	assert_false(fake_log_contains(LOG_LEVEL_ERR, "Provisioning failed"));
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] =
	{ cmocka_unit_test_setup(test_connects_to_the_configured_broker_and_port, setup),
	  cmocka_unit_test_setup(test_backoff_doubles_and_resets_after_reaching_the_broker, setup),
	  cmocka_unit_test_setup(test_backoff_is_capped, setup),
	  cmocka_unit_test_setup(test_session_without_connack_keeps_backing_off, setup),
	  cmocka_unit_test_setup(test_lte_is_retried_with_the_configured_delay, setup),
	  cmocka_unit_test_setup(test_modem_library_failure_stops_before_lte, setup),
	  cmocka_unit_test_setup(test_no_imei_stops_before_lte, setup),
	  cmocka_unit_test_setup(test_resolve_failure_backs_off_without_connecting, setup),
	  cmocka_unit_test_setup(test_empty_resolution_is_a_failure, setup),
	  cmocka_unit_test_setup(test_refused_connect_releases_the_address_without_abort, setup),
	  cmocka_unit_test_setup(test_poll_error_ends_the_session, setup),
	  cmocka_unit_test_setup(test_keepalive_failure_ends_the_session, setup),
	  cmocka_unit_test_setup(test_keepalive_eagain_keeps_the_session, setup),
	  cmocka_unit_test_setup(test_input_error_ends_the_session, setup),
	  cmocka_unit_test_setup(test_socket_errors_end_the_session, setup),
	  cmocka_unit_test_setup(test_peer_verification_warning_follows_kconfig, setup),
#if defined(CONFIG_PROVISION_CERTIFICATES)
	  cmocka_unit_test_setup(test_failed_provisioning_is_reported_and_connects, setup),
	  cmocka_unit_test_setup(test_successful_provisioning_is_quiet, setup),
#endif
	};

	return cmocka_run_group_tests_name("main", tests, NULL, NULL);
}
