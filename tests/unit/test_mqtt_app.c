/*
 * Host tests of app/src/mqtt_app.c against the fake MQTT library and modem.
 *
 * Built twice (see CMakeLists.txt): with tests/unit/fakes/autoconf.h as it is, and as
 * test_mqtt_app_variant with another sec_tag, peer verification, hostname, client id and session
 * caching (against the older MQTT header that has mqtt_sec_config.session_cache), so a value
 * that is not taken from Kconfig fails one of the two.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <fake_log.h>
#include <zephyr/logging/log.h>
#include <fake_modem.h>
#include <fake_mqtt.h>
#include <zephyr/net/mqtt.h>
#include <zephyr/net/socket.h>

#include "mqtt_app.h"

static struct mqtt_client client;
static const int broker_placeholder = 1;

static int setup(void **state)
{
	(void)state;
	fake_mqtt_reset();
	fake_modem_reset();
	fake_log_reset();
	mqtt_app_client_setup(&client, &broker_placeholder, "client-under-test");
	return 0;
}

static void deliver(enum mqtt_evt_type type, int result)
{
	struct mqtt_evt evt = {.type = type, .result = result};

	mqtt_app_evt_handler(&client, &evt);
}

static void deliver_publish(const char *payload, size_t len, uint8_t qos, uint16_t id)
{
	struct mqtt_evt evt = {.type = MQTT_EVT_PUBLISH, .result = 0};

	evt.param.publish.message.topic.topic.utf8 = (const uint8_t *)CONFIG_MQTT_SUB_TOPIC;
	evt.param.publish.message.topic.topic.size = strlen(CONFIG_MQTT_SUB_TOPIC);
	evt.param.publish.message.topic.qos = qos;
	evt.param.publish.message.payload.len = (uint32_t)len;
	evt.param.publish.message_id = id;
	fake_mqtt_set_incoming_payload(payload, len);
	mqtt_app_evt_handler(&client, &evt);
}

static void test_client_uses_tls_settings_from_kconfig(void **state)
{
	const struct mqtt_sec_config *tls = &client.transport.tls.config;

	(void)state;
	assert_int_equal(client.transport.type, MQTT_TRANSPORT_SECURE);
	assert_int_equal(tls->sec_tag_count, 1);
	assert_non_null(tls->sec_tag_list);
	assert_int_equal(tls->sec_tag_list[0], CONFIG_MQTT_TLS_SEC_TAG);
	assert_int_equal(tls->peer_verify, CONFIG_MQTT_TLS_PEER_VERIFY);
	assert_non_null(tls->hostname);
	assert_string_equal(tls->hostname, CONFIG_MQTT_BROKER_HOSTNAME);
	assert_null(tls->cipher_list);
	assert_int_equal(tls->cipher_count, 0);
#if defined(TEST_VARIANT)
	assert_int_equal(tls->sec_tag_list[0], 1234);
	assert_int_equal(tls->peer_verify, ZSOCK_TLS_PEER_VERIFY_OPTIONAL);
	assert_string_equal(tls->hostname, "mqtt.variant.test");
	assert_int_equal(tls->session_cache, ZSOCK_TLS_SESSION_CACHE_ENABLED);
#else
	/* The pinned header has no session_cache: caching off writes nothing (compile-checked). */
	assert_int_equal(tls->sec_tag_list[0], 24);
	assert_int_equal(tls->peer_verify, ZSOCK_TLS_PEER_VERIFY_REQUIRED);
	assert_string_equal(tls->hostname, "broker.provguard.test");
#endif
	assert_int_equal(tls->cert_nocopy, ZSOCK_TLS_CERT_NOCOPY_NONE);
}

static void test_client_is_mqtt_3_1_1_with_given_identity(void **state)
{
	(void)state;
	assert_int_equal(client.protocol_version, MQTT_VERSION_3_1_1);
	assert_ptr_equal(client.broker, &broker_placeholder);
	assert_int_equal(client.client_id.size, strlen("client-under-test"));
	assert_memory_equal(client.client_id.utf8, "client-under-test", client.client_id.size);
	assert_null(client.user_name);
	assert_null(client.password);
	assert_ptr_equal(client.evt_cb, mqtt_app_evt_handler);
	assert_non_null(client.rx_buf);
	assert_non_null(client.tx_buf);
	assert_int_equal(client.rx_buf_size, CONFIG_MQTT_MESSAGE_BUFFER_SIZE);
	assert_int_equal(client.tx_buf_size, CONFIG_MQTT_MESSAGE_BUFFER_SIZE);
}

static void test_connack_subscribes_at_qos1(void **state)
{
	(void)state;
	assert_false(mqtt_app_is_connected());
	deliver(MQTT_EVT_CONNACK, 0);

	assert_true(mqtt_app_is_connected());
	assert_int_equal(fake_mqtt_subscribe_calls(), 1);
	assert_string_equal(fake_mqtt_last_subscribe()->topic, "provguard/test/sub");
	assert_int_equal(fake_mqtt_last_subscribe()->topic_len, strlen("provguard/test/sub"));
	assert_int_equal(fake_mqtt_last_subscribe()->qos, MQTT_QOS_1_AT_LEAST_ONCE);
	assert_int_equal(fake_mqtt_last_subscribe()->payload_len, 1);
	assert_int_not_equal(fake_mqtt_last_subscribe()->message_id, 0);
}

static void test_refused_connack_does_not_subscribe(void **state)
{
	(void)state;
	deliver(MQTT_EVT_CONNACK, -ECONNREFUSED);

	assert_false(mqtt_app_is_connected());
	assert_int_equal(fake_mqtt_subscribe_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Broker refused the connection"));
}

static void test_qos1_message_is_acknowledged_and_echoed(void **state)
{
	const struct fake_mqtt_call *pub;

	(void)state;
	deliver(MQTT_EVT_CONNACK, 0);
	deliver_publish("hello", 5, MQTT_QOS_1_AT_LEAST_ONCE, 77);

	assert_int_equal(fake_mqtt_payload_bytes_read(), 5);
	assert_int_equal(fake_mqtt_ack_calls(), 1);
	assert_int_equal(fake_mqtt_last_ack_id(), 77);
	assert_int_equal(fake_mqtt_publish_calls(), 1);
	pub = fake_mqtt_last_publish();
	assert_string_equal(pub->topic, "provguard/test/pub");
	assert_int_equal(pub->topic_len, strlen("provguard/test/pub"));
	assert_int_equal(pub->qos, MQTT_QOS_1_AT_LEAST_ONCE);
	assert_int_equal(pub->payload_len, 5);
	assert_memory_equal(pub->payload, "hello", 5);
	assert_int_not_equal(pub->message_id, 0);
	assert_int_not_equal(pub->message_id, fake_mqtt_last_subscribe()->message_id);
}

static void test_qos0_message_is_echoed_without_ack(void **state)
{
	(void)state;
	deliver_publish("hi", 2, MQTT_QOS_0_AT_MOST_ONCE, 0);

	assert_int_equal(fake_mqtt_ack_calls(), 0);
	assert_int_equal(fake_mqtt_publish_calls(), 1);
	assert_memory_equal(fake_mqtt_last_publish()->payload, "hi", 2);
}

/* Larger than CONFIG_MQTT_PAYLOAD_BUFFER_SIZE (32): read out completely, acked, not echoed. */
static void test_oversized_message_is_drained_not_echoed(void **state)
{
	char big[40];

	(void)state;
	memset(big, 'x', sizeof(big));
	deliver_publish(big, sizeof(big), MQTT_QOS_1_AT_LEAST_ONCE, 9);

	assert_int_equal(fake_mqtt_payload_bytes_read(), sizeof(big));
	assert_int_equal(fake_mqtt_ack_calls(), 1);
	assert_int_equal(fake_mqtt_publish_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_WRN, "Dropped a 40-byte payload"));
}

static void test_disconnect_clears_connected(void **state)
{
	(void)state;
	deliver(MQTT_EVT_CONNACK, 0);
	deliver(MQTT_EVT_DISCONNECT, -ENOTCONN);

	assert_false(mqtt_app_is_connected());
}

static void test_backoff_doubles_up_to_the_cap(void **state)
{
	(void)state;
	assert_int_equal(mqtt_app_backoff_s(0), CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S);
	assert_int_equal(mqtt_app_backoff_s(1), 2 * CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S);
	assert_int_equal(mqtt_app_backoff_s(2), 4 * CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S);
	/* 2 s doubled 5 times is 64 s: capped at 60 s, and it stays there. */
	assert_int_equal(mqtt_app_backoff_s(5), CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S);
	assert_int_equal(mqtt_app_backoff_s(6), CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S);
	assert_int_equal(mqtt_app_backoff_s(1000000), CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S);
}

/* Packet identifiers run 1..65535 and wrap to 1: 0 is not a valid MQTT packet identifier. */
static void test_message_id_wraps_past_zero_to_one(void **state)
{
	uint16_t id;

	(void)state;
	fake_log_quiet(true);
	deliver(MQTT_EVT_CONNACK, 0);
	id = fake_mqtt_last_subscribe()->message_id;
	for (unsigned int i = 0; i < 70000U && id != 65535U; i++) {
		assert_int_not_equal(id, 0);
		deliver(MQTT_EVT_CONNACK, 0);
		id = fake_mqtt_last_subscribe()->message_id;
	}
	fake_log_quiet(false);
	assert_int_equal(id, 65535);

	deliver(MQTT_EVT_CONNACK, 0);
	assert_int_equal(fake_mqtt_last_subscribe()->message_id, 1);
	deliver_publish("x", 1, MQTT_QOS_0_AT_MOST_ONCE, 0);
	assert_int_equal(fake_mqtt_last_publish()->message_id, 2);
}

/* CONFIG_MQTT_PAYLOAD_BUFFER_SIZE is 32: 32 bytes are echoed, 33 are not; 0 bytes echo empty. */
static void test_payload_boundary_sizes(void **state)
{
	char data[96];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++) {
		data[i] = (char)('a' + (i % 26));
	}

	deliver_publish(data, 32, MQTT_QOS_1_AT_LEAST_ONCE, 5);
	assert_int_equal(fake_mqtt_publish_calls(), 1);
	assert_int_equal(fake_mqtt_last_publish()->payload_len, 32);
	assert_memory_equal(fake_mqtt_last_publish()->payload, data, 32);

	deliver_publish(data, 33, MQTT_QOS_1_AT_LEAST_ONCE, 6);
	assert_int_equal(fake_mqtt_publish_calls(), 1);
	assert_int_equal(fake_mqtt_ack_calls(), 2);
	assert_int_equal(fake_mqtt_payload_bytes_read(), 33);

	/* Three chunks of the 32-byte buffer: everything is read out. */
	deliver_publish(data, 96, MQTT_QOS_0_AT_MOST_ONCE, 0);
	assert_int_equal(fake_mqtt_payload_bytes_read(), 96);
	assert_int_equal(fake_mqtt_publish_calls(), 1);

	deliver_publish(data, 0, MQTT_QOS_0_AT_MOST_ONCE, 0);
	assert_int_equal(fake_mqtt_publish_calls(), 2);
	assert_int_equal(fake_mqtt_last_publish()->payload_len, 0);
}

/* A payload that cannot be read is neither acknowledged nor echoed. */
static void test_unreadable_payload_is_not_acknowledged(void **state)
{
	(void)state;
	fake_mqtt_set_send_results(0, 0, 0, -EIO);
	deliver_publish("hello", 5, MQTT_QOS_1_AT_LEAST_ONCE, 3);

	assert_int_equal(fake_mqtt_ack_calls(), 0);
	assert_int_equal(fake_mqtt_publish_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Reading a 5-byte payload failed: -5"));
}

/* A failed acknowledgement stops the echo (the broker will send the message again). */
static void test_failed_ack_is_not_echoed(void **state)
{
	(void)state;
	fake_mqtt_set_send_results(0, 0, -ENOTCONN, 0);
	deliver_publish("hello", 5, MQTT_QOS_1_AT_LEAST_ONCE, 3);

	assert_int_equal(fake_mqtt_ack_calls(), 1);
	assert_int_equal(fake_mqtt_publish_calls(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Acknowledging message 3 failed: -107"));
}

static void test_send_failures_are_logged(void **state)
{
	(void)state;
	fake_mqtt_set_send_results(-ENOMEM, -EAGAIN, 0, 0);
	deliver(MQTT_EVT_CONNACK, 0);
	assert_true(
		fake_log_contains(LOG_LEVEL_ERR, "Subscribing to provguard/test/sub failed: -12"));

	deliver_publish("hi", 2, MQTT_QOS_0_AT_MOST_ONCE, 0);
	assert_int_equal(fake_mqtt_publish_calls(), 1);
	assert_true(
		fake_log_contains(LOG_LEVEL_ERR, "Publishing to provguard/test/pub failed: -11"));
	assert_false(fake_log_contains(LOG_LEVEL_INF, "Echoed"));
}

/* Failed events are logged and change nothing; a failed PUBLISH event reads no payload. */
static void test_failed_events_are_logged(void **state)
{
	struct mqtt_evt evt = {.type = MQTT_EVT_PUBLISH, .result = -EIO};

	(void)state;
	fake_mqtt_set_incoming_payload("zz", 2);
	mqtt_app_evt_handler(&client, &evt);
	assert_int_equal(fake_mqtt_payload_bytes_read(), 0);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Receiving a message failed: -5"));

	evt.type = MQTT_EVT_PUBACK;
	evt.param.puback.message_id = 42;
	mqtt_app_evt_handler(&client, &evt);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Message 42 not acknowledged: -5"));

	evt.result = 0;
	evt.param.puback.message_id = 7;
	mqtt_app_evt_handler(&client, &evt);
	assert_true(fake_log_contains(LOG_LEVEL_DBG, "Message 7 acknowledged"));
	assert_int_equal(fake_log_count(LOG_LEVEL_ERR), 2);

	deliver(MQTT_EVT_SUBACK, -EACCES);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "Subscription refused: -13"));
	deliver(MQTT_EVT_SUBACK, 0);
	assert_true(fake_log_contains(LOG_LEVEL_INF, "Subscribed to provguard/test/sub"));
	assert_int_equal(fake_log_count(LOG_LEVEL_ERR), 3);
	assert_false(mqtt_app_is_connected());
}

#if defined(TEST_VARIANT)

static void test_client_id_from_kconfig(void **state)
{
	char id[MQTT_APP_CLIENT_ID_SIZE];
	char small[4];

	(void)state;
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), 0);
	assert_string_equal(id, "fixed-client");
	assert_string_equal(fake_modem_last_at_command(), "");
	assert_int_equal(mqtt_app_client_id(small, sizeof(small)), -ENOMEM);
	/* "fixed-client" and its NUL are 13 bytes: 13 fits, 12 does not. */
	assert_int_equal(mqtt_app_client_id(id, 13), 0);
	assert_string_equal(id, "fixed-client");
	assert_int_equal(mqtt_app_client_id(id, 12), -ENOMEM);
}

#else

static void test_client_id_from_imei(void **state)
{
	char id[MQTT_APP_CLIENT_ID_SIZE];

	(void)state;
	fake_modem_set_at_response("352656100000000\r\nOK\r\n", 0);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), 0);
	assert_string_equal(fake_modem_last_at_command(), "AT+CGSN");
	assert_string_equal(id, "nrf-352656100000000");
}

static void test_client_id_errors(void **state)
{
	char id[MQTT_APP_CLIENT_ID_SIZE];
	char small[8];

	(void)state;
	fake_modem_set_at_response("ERROR\r\n", 1);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), -EIO);

	fake_modem_set_at_response("", -ESHUTDOWN);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), -ESHUTDOWN);

	fake_modem_set_at_response("3526561\r\nOK\r\n", 0);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), -EIO);

	/* 16 digits and 14 digits are not an IMEI. */
	fake_modem_set_at_response("3526561000000001\r\nOK\r\n", 0);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), -EIO);
	fake_modem_set_at_response("35265610000000\r\nOK\r\n", 0);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), -EIO);
	fake_modem_set_at_response("35265610000000a\r\nOK\r\n", 0);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), -EIO);
	fake_modem_set_at_response("x52656100000000\r\nOK\r\n", 0);
	assert_int_equal(mqtt_app_client_id(id, sizeof(id)), -EIO);
	assert_true(fake_log_contains(LOG_LEVEL_ERR, "no 15-digit IMEI"));

	fake_modem_set_at_response("352656100000000\r\nOK\r\n", 0);
	assert_int_equal(mqtt_app_client_id(small, sizeof(small)), -ENOMEM);
	/* "nrf-" + 15 digits + NUL is 20 bytes: 20 fits, 19 does not. */
	assert_int_equal(mqtt_app_client_id(id, 20), 0);
	assert_string_equal(id, "nrf-352656100000000");
	assert_int_equal(mqtt_app_client_id(id, 19), -ENOMEM);
}

#endif /* TEST_VARIANT */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_client_uses_tls_settings_from_kconfig, setup),
		cmocka_unit_test_setup(test_client_is_mqtt_3_1_1_with_given_identity, setup),
		cmocka_unit_test_setup(test_connack_subscribes_at_qos1, setup),
		cmocka_unit_test_setup(test_refused_connack_does_not_subscribe, setup),
		cmocka_unit_test_setup(test_qos1_message_is_acknowledged_and_echoed, setup),
		cmocka_unit_test_setup(test_qos0_message_is_echoed_without_ack, setup),
		cmocka_unit_test_setup(test_oversized_message_is_drained_not_echoed, setup),
		cmocka_unit_test_setup(test_disconnect_clears_connected, setup),
		cmocka_unit_test_setup(test_backoff_doubles_up_to_the_cap, setup),
		cmocka_unit_test_setup(test_message_id_wraps_past_zero_to_one, setup),
		cmocka_unit_test_setup(test_payload_boundary_sizes, setup),
		cmocka_unit_test_setup(test_unreadable_payload_is_not_acknowledged, setup),
		cmocka_unit_test_setup(test_failed_ack_is_not_echoed, setup),
		cmocka_unit_test_setup(test_send_failures_are_logged, setup),
		cmocka_unit_test_setup(test_failed_events_are_logged, setup),
#if defined(TEST_VARIANT)
		cmocka_unit_test_setup(test_client_id_from_kconfig, setup),
#else
		cmocka_unit_test_setup(test_client_id_from_imei, setup),
		cmocka_unit_test_setup(test_client_id_errors, setup),
#endif
	};

	return cmocka_run_group_tests_name("mqtt_app", tests, NULL, NULL);
}
