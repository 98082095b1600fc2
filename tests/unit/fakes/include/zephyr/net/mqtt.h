/*
 * Fake of zephyr/net/mqtt.h for host tests and the Cortex-M33 compile check.
 *
 * Mirrors include/zephyr/net/mqtt.h of Zephyr 4.x, the line NCS v3.4.1 pins through
 * nrfconnect/sdk-zephyr (checked against zephyrproject-rtos/zephyr include/zephyr/net/mqtt.h,
 * the newest 4.x version the search index holds; the index has no copy at the v3.4.1 tag):
 * type and member names, member order and function signatures are the upstream ones, in
 * particular:
 *   - struct mqtt_sec_config has no session_cache member (older sdk-zephyr releases had one);
 *   - int mqtt_disconnect(struct mqtt_client *client, const struct mqtt_disconnect_param *param);
 * Members that upstream only declares under CONFIG_MQTT_VERSION_5_0, CONFIG_MQTT_LIB_WEBSOCKET,
 * CONFIG_MQTT_LIB_TLS_USE_ALPN, CONFIG_MQTT_LIB_CUSTOM_TRANSPORT or CONFIG_SOCKS are left out:
 * this application enables none.
 *
 * FAKE_MQTT_SEC_CONFIG_HAS_SESSION_CACHE (tests only) adds the session_cache member of the older
 * headers, so the host tests can check what the application writes there when the field exists.
 * Without it, CONFIG_MQTT_TLS_SESSION_CACHING=y must fail to compile (tests/test_firmware_build.py).
 * The fake library behind this header is fakes/src/fake_mqtt.c.
 */

#ifndef FAKE_ZEPHYR_NET_MQTT_H_
#define FAKE_ZEPHYR_NET_MQTT_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zephyr/kernel.h>
#include <zephyr/net/tls_credentials.h>

enum mqtt_evt_type {
	MQTT_EVT_CONNACK,
	MQTT_EVT_DISCONNECT,
	MQTT_EVT_PUBLISH,
	MQTT_EVT_PUBACK,
	MQTT_EVT_PUBREC,
	MQTT_EVT_PUBREL,
	MQTT_EVT_PUBCOMP,
	MQTT_EVT_SUBACK,
	MQTT_EVT_UNSUBACK,
	MQTT_EVT_PINGRESP,
};

enum mqtt_version {
	MQTT_VERSION_3_1_0 = 3,
	MQTT_VERSION_3_1_1 = 4,
};

enum mqtt_qos {
	MQTT_QOS_0_AT_MOST_ONCE = 0x00,
	MQTT_QOS_1_AT_LEAST_ONCE = 0x01,
	MQTT_QOS_2_EXACTLY_ONCE = 0x02,
};

struct mqtt_utf8 {
	const uint8_t *utf8;
	uint32_t size;
};

struct mqtt_binstr {
	uint8_t *data;
	uint32_t len;
};

struct mqtt_topic {
	struct mqtt_utf8 topic;
	uint8_t qos;
};

struct mqtt_publish_message {
	struct mqtt_topic topic;
	struct mqtt_binstr payload;
};

struct mqtt_connack_param {
	uint8_t session_present_flag;
	uint8_t return_code;
};

struct mqtt_puback_param {
	uint16_t message_id;
};

struct mqtt_suback_param {
	uint16_t message_id;
	struct mqtt_binstr return_codes;
};

struct mqtt_publish_param {
	struct mqtt_publish_message message;
	uint16_t message_id;
	uint8_t dup_flag: 1;
	uint8_t retain_flag: 1;
};

/* Empty without CONFIG_MQTT_VERSION_5_0, as upstream (a GNU C empty struct). */
struct mqtt_disconnect_param {
};

struct mqtt_subscription_list {
	struct mqtt_topic *list;
	uint16_t list_count;
	uint16_t message_id;
};

union mqtt_evt_param {
	struct mqtt_connack_param connack;
	struct mqtt_publish_param publish;
	struct mqtt_puback_param puback;
	struct mqtt_suback_param suback;
};

struct mqtt_evt {
	enum mqtt_evt_type type;
	union mqtt_evt_param param;
	int result;
};

struct mqtt_client;

typedef void (*mqtt_evt_cb_t)(struct mqtt_client *client, const struct mqtt_evt *evt);

struct mqtt_sec_config {
	int peer_verify;
	uint32_t cipher_count;
	const int *cipher_list;
	uint32_t sec_tag_count;
	const sec_tag_t *sec_tag_list;
#if defined(FAKE_MQTT_SEC_CONFIG_HAS_SESSION_CACHE)
	int session_cache;
#endif
	const char *hostname;
	int cert_nocopy;
};

enum mqtt_transport_type {
	MQTT_TRANSPORT_NON_SECURE,
#if defined(CONFIG_MQTT_LIB_TLS)
	MQTT_TRANSPORT_SECURE,
#endif
	MQTT_TRANSPORT_NUM
};

struct mqtt_transport {
	enum mqtt_transport_type type;
	union {
		struct {
			int sock;
		} tcp;
#if defined(CONFIG_MQTT_LIB_TLS)
		struct {
			int sock;
			struct mqtt_sec_config config;
		} tls;
#endif
	};
};

/* Upstream: struct sys_mutex from zephyr/sys/mutex.h; opaque here. */
struct sys_mutex {
	void *fake_opaque;
};

struct mqtt_internal {
	struct sys_mutex mutex;
	uint32_t last_activity;
	uint32_t state;
	uint32_t rx_buf_datalen;
	uint32_t remaining_payload;
};

struct mqtt_client {
	struct mqtt_internal internal;
	struct mqtt_transport transport;
	struct mqtt_utf8 client_id;
	const void *broker;
	struct mqtt_utf8 *user_name;
	struct mqtt_utf8 *password;
	struct mqtt_topic *will_topic;
	struct mqtt_utf8 *will_message;
	mqtt_evt_cb_t evt_cb;
	uint8_t *rx_buf;
	uint32_t rx_buf_size;
	uint8_t *tx_buf;
	uint32_t tx_buf_size;
	uint16_t keepalive;
	uint8_t protocol_version;
	int8_t unacked_ping;
	uint8_t will_retain: 1;
	uint8_t clean_session: 1;
	void *user_data;
};

void mqtt_client_init(struct mqtt_client *client);
int mqtt_connect(struct mqtt_client *client);
int mqtt_publish(struct mqtt_client *client, const struct mqtt_publish_param *param);
int mqtt_publish_qos1_ack(struct mqtt_client *client, const struct mqtt_puback_param *param);
int mqtt_subscribe(struct mqtt_client *client, const struct mqtt_subscription_list *param);
int mqtt_ping(struct mqtt_client *client);
int mqtt_disconnect(struct mqtt_client *client, const struct mqtt_disconnect_param *param);
int mqtt_abort(struct mqtt_client *client);
int mqtt_live(struct mqtt_client *client);
int mqtt_keepalive_time_left(const struct mqtt_client *client);
int mqtt_input(struct mqtt_client *client);
int mqtt_read_publish_payload(struct mqtt_client *client, void *buffer, size_t length);
int mqtt_readall_publish_payload(struct mqtt_client *client, uint8_t *buffer, size_t length);

#endif /* FAKE_ZEPHYR_NET_MQTT_H_ */
