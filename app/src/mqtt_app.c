/*
 * Copyright (c) 2026 provguard contributors
 *
 * SPDX-License-Identifier: Apache-2.0
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/mqtt.h>
#include <zephyr/net/socket.h>
#include <nrf_modem_at.h>

#include "mqtt_app.h"

LOG_MODULE_REGISTER(mqtt_app, CONFIG_PROVGUARD_APP_LOG_LEVEL);

BUILD_ASSERT(CONFIG_MQTT_TLS_PEER_VERIFY >= ZSOCK_TLS_PEER_VERIFY_NONE &&
		     CONFIG_MQTT_TLS_PEER_VERIFY <= ZSOCK_TLS_PEER_VERIFY_REQUIRED,
	     "CONFIG_MQTT_TLS_PEER_VERIFY must be 0 (none), 1 (optional) or 2 (required)");
BUILD_ASSERT(CONFIG_MQTT_TLS_SEC_TAG != 16842753,
	     "CONFIG_MQTT_TLS_SEC_TAG is nRF Cloud's sec_tag, not this application's");
BUILD_ASSERT(CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S >= 1 &&
		     CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S <= CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S,
	     "reconnect backoff needs 1 <= MIN <= MAX");

#define IMEI_LEN 15

static uint8_t rx_buffer[CONFIG_MQTT_MESSAGE_BUFFER_SIZE];
static uint8_t tx_buffer[CONFIG_MQTT_MESSAGE_BUFFER_SIZE];
static uint8_t payload_buffer[CONFIG_MQTT_PAYLOAD_BUFFER_SIZE];

static const sec_tag_t sec_tag_list[] = {CONFIG_MQTT_TLS_SEC_TAG};

static uint16_t next_message_id = 1U;
static bool connected;

static uint16_t message_id(void)
{
	uint16_t id = next_message_id++;

	if (next_message_id == 0U) {
		/* 0 is not a valid packet identifier. */
		next_message_id = 1U;
	}
	return id;
}

void mqtt_app_client_setup(struct mqtt_client *client, const void *broker, const char *client_id)
{
	struct mqtt_sec_config *tls_config;

	mqtt_client_init(client);

	client->broker = broker;
	client->evt_cb = mqtt_app_evt_handler;
	client->client_id.utf8 = (const uint8_t *)client_id;
	client->client_id.size = strlen(client_id);
	client->user_name = NULL;
	client->password = NULL;
	client->protocol_version = MQTT_VERSION_3_1_1;

	client->rx_buf = rx_buffer;
	client->rx_buf_size = sizeof(rx_buffer);
	client->tx_buf = tx_buffer;
	client->tx_buf_size = sizeof(tx_buffer);

	client->transport.type = MQTT_TRANSPORT_SECURE;
	tls_config = &client->transport.tls.config;
	tls_config->peer_verify = CONFIG_MQTT_TLS_PEER_VERIFY;
	tls_config->cipher_count = 0;
	tls_config->cipher_list = NULL;
	tls_config->sec_tag_count = ARRAY_SIZE(sec_tag_list);
	tls_config->sec_tag_list = sec_tag_list;
	tls_config->hostname = CONFIG_MQTT_BROKER_HOSTNAME;
	tls_config->cert_nocopy = ZSOCK_TLS_CERT_NOCOPY_NONE;
#if defined(CONFIG_MQTT_TLS_SESSION_CACHING)
	/*
	 * A compile error on this line ("has no member named 'session_cache'") means the Zephyr of
	 * this SDK no longer has the field: caching cannot be asked for through the MQTT library,
	 * turn CONFIG_MQTT_TLS_SESSION_CACHING off. Never silently ignored.
	 */
	tls_config->session_cache = ZSOCK_TLS_SESSION_CACHE_ENABLED;
#endif

	connected = false;
}

static int subscribe(struct mqtt_client *client)
{
	struct mqtt_topic topic = {
		.topic =
			{
				.utf8 = (const uint8_t *)CONFIG_MQTT_SUB_TOPIC,
				.size = sizeof(CONFIG_MQTT_SUB_TOPIC) - 1,
			},
		.qos = MQTT_QOS_1_AT_LEAST_ONCE,
	};
	const struct mqtt_subscription_list list = {
		.list = &topic,
		.list_count = 1,
		.message_id = message_id(),
	};
	int err;

	LOG_INF("Subscribing to %s", CONFIG_MQTT_SUB_TOPIC);
	err = mqtt_subscribe(client, &list);
	if (err) {
		LOG_ERR("Subscribing to %s failed: %d", CONFIG_MQTT_SUB_TOPIC, err);
	}
	return err;
}

static int publish(struct mqtt_client *client, const uint8_t *data, size_t len)
{
	struct mqtt_publish_param param = {0};
	int err;

	param.message.topic.topic.utf8 = (const uint8_t *)CONFIG_MQTT_PUB_TOPIC;
	param.message.topic.topic.size = sizeof(CONFIG_MQTT_PUB_TOPIC) - 1;
	param.message.topic.qos = MQTT_QOS_1_AT_LEAST_ONCE;
	param.message_id = message_id();
	param.message.payload.data = (uint8_t *)data;
	param.message.payload.len = (uint32_t)len;

	err = mqtt_publish(client, &param);
	if (err) {
		LOG_ERR("Publishing to %s failed: %d", CONFIG_MQTT_PUB_TOPIC, err);
	} else {
		LOG_INF("Echoed %u bytes to %s", (unsigned int)len, CONFIG_MQTT_PUB_TOPIC);
	}
	return err;
}

/* The payload must be read completely before the next packet: too long ones are drained. */
static int read_payload(struct mqtt_client *client, uint32_t len, bool *fits)
{
	uint32_t left = len;
	int err = 0;

	*fits = len <= sizeof(payload_buffer);
	while (left > 0U) {
		uint32_t chunk = MIN(left, (uint32_t)sizeof(payload_buffer));

		err = mqtt_readall_publish_payload(client, payload_buffer, chunk);
		if (err) {
			LOG_ERR("Reading a %u-byte payload failed: %d", (unsigned int)len, err);
			return err;
		}
		left -= chunk;
	}

	if (!*fits) {
		LOG_WRN("Dropped a %u-byte payload: larger than CONFIG_MQTT_PAYLOAD_BUFFER_SIZE",
			(unsigned int)len);
	}
	return 0;
}

static void on_publish(struct mqtt_client *client, const struct mqtt_publish_param *param)
{
	uint32_t len = param->message.payload.len;
	bool fits = false;
	int err;

	LOG_INF("Received %u bytes on %.*s (QoS %u)", (unsigned int)len,
		(int)param->message.topic.topic.size, (const char *)param->message.topic.topic.utf8,
		(unsigned int)param->message.topic.qos);

	err = read_payload(client, len, &fits);
	if (err) {
		return;
	}

	if (param->message.topic.qos == MQTT_QOS_1_AT_LEAST_ONCE) {
		const struct mqtt_puback_param ack = {
			.message_id = param->message_id,
		};

		err = mqtt_publish_qos1_ack(client, &ack);
		if (err) {
			LOG_ERR("Acknowledging message %u failed: %d",
				(unsigned int)param->message_id, err);
			return;
		}
	}

	if (fits) {
		(void)publish(client, payload_buffer, len);
	}
}

void mqtt_app_evt_handler(struct mqtt_client *client, const struct mqtt_evt *evt)
{
	switch (evt->type) {
	case MQTT_EVT_CONNACK:
		if (evt->result != 0) {
			LOG_ERR("Broker refused the connection: %d", evt->result);
			break;
		}
		connected = true;
		LOG_INF("Connected to %s", CONFIG_MQTT_BROKER_HOSTNAME);
		(void)subscribe(client);
		break;
	case MQTT_EVT_DISCONNECT:
		connected = false;
		LOG_INF("Disconnected: %d", evt->result);
		break;
	case MQTT_EVT_PUBLISH:
		if (evt->result != 0) {
			LOG_ERR("Receiving a message failed: %d", evt->result);
			break;
		}
		on_publish(client, &evt->param.publish);
		break;
	case MQTT_EVT_PUBACK:
		if (evt->result != 0) {
			LOG_ERR("Message %u not acknowledged: %d",
				(unsigned int)evt->param.puback.message_id, evt->result);
			break;
		}
		LOG_DBG("Message %u acknowledged", (unsigned int)evt->param.puback.message_id);
		break;
	case MQTT_EVT_SUBACK:
		if (evt->result != 0) {
			LOG_ERR("Subscription refused: %d", evt->result);
			break;
		}
		LOG_INF("Subscribed to %s", CONFIG_MQTT_SUB_TOPIC);
		break;
	case MQTT_EVT_PINGRESP:
		LOG_DBG("Keepalive answered");
		break;
	default:
		LOG_DBG("Unhandled MQTT event %d", evt->type);
		break;
	}
}

bool mqtt_app_is_connected(void)
{
	return connected;
}

uint32_t mqtt_app_backoff_s(unsigned int attempt)
{
	uint32_t delay = CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S;

	for (unsigned int i = 0; i < attempt && delay < CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S; i++) {
		delay *= 2U;
	}

	return MIN(delay, (uint32_t)CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int mqtt_app_client_id(char *buf, size_t len)
{
	char response[64] = {0};
	int written;
	int err;

	if (sizeof(CONFIG_MQTT_CLIENT_ID) > 1) {
		if (len < sizeof(CONFIG_MQTT_CLIENT_ID)) {
			LOG_ERR("Client id buffer of %u bytes is too small", (unsigned int)len);
			return -ENOMEM;
		}
		memcpy(buf, CONFIG_MQTT_CLIENT_ID, sizeof(CONFIG_MQTT_CLIENT_ID));
		return 0;
	}

	err = nrf_modem_at_cmd(response, sizeof(response), "AT+CGSN");
	if (err) {
		LOG_ERR("Reading the IMEI failed: %d", err);
		return err < 0 ? err : -EIO;
	}

	/* An IMEI is exactly 15 digits, then the end of the line. */
	for (size_t i = 0; i < IMEI_LEN; i++) {
		if (!is_digit(response[i])) {
			LOG_ERR("The modem returned no 15-digit IMEI");
			return -EIO;
		}
	}
	if (is_digit(response[IMEI_LEN])) {
		LOG_ERR("The modem returned no 15-digit IMEI");
		return -EIO;
	}

	written = snprintf(buf, len, "nrf-%.*s", IMEI_LEN, response);
	if (written < 0 || (size_t)written >= len) {
		LOG_ERR("Client id buffer of %u bytes is too small", (unsigned int)len);
		return -ENOMEM;
	}

	return 0;
}
