/*
 * Copyright (c) 2026 provguard contributors
 *
 * SPDX-License-Identifier: Apache-2.0
 */

/** @file mqtt_app.h
 *
 * @brief The MQTT side of the application: client configuration, events and reconnect backoff.
 *
 * Kept apart from main.c so that it can be tested on the host against fakes of the Zephyr MQTT
 * library and the modem library.
 */

#ifndef PROVGUARD_MQTT_APP_H_
#define PROVGUARD_MQTT_APP_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zephyr/net/mqtt.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Size of a client id buffer: "nrf-" and a 15-digit IMEI, or CONFIG_MQTT_CLIENT_ID. */
#define MQTT_APP_CLIENT_ID_SIZE 64

/**
 * @brief Configure @p client for MQTT 3.1.1 over TLS to CONFIG_MQTT_BROKER_HOSTNAME.
 *
 * Secure transport, the sec_tag list {CONFIG_MQTT_TLS_SEC_TAG}, peer verification
 * CONFIG_MQTT_TLS_PEER_VERIFY, the broker hostname for SNI and certificate verification, and
 * TLS session caching when CONFIG_MQTT_TLS_SESSION_CACHING is enabled.
 *
 * @param client Client to initialise; must stay valid while connected.
 * @param broker Resolved broker address (a struct sockaddr), kept until the session ends.
 * @param client_id NUL-terminated client id, kept until the session ends.
 */
void mqtt_app_client_setup(struct mqtt_client *client, const void *broker, const char *client_id);

/**
 * @brief MQTT event handler: subscribes after CONNACK and echoes what arrives.
 *
 * Messages on CONFIG_MQTT_SUB_TOPIC are acknowledged (QoS 1) and published again, at QoS 1, on
 * CONFIG_MQTT_PUB_TOPIC.
 */
void mqtt_app_evt_handler(struct mqtt_client *client, const struct mqtt_evt *evt);

/** @brief Whether the broker accepted the connection and it has not ended since. */
bool mqtt_app_is_connected(void);

/**
 * @brief Delay before reconnect attempt number @p attempt (0 for the first retry), in seconds.
 *
 * Doubles from CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S up to CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S.
 */
uint32_t mqtt_app_backoff_s(unsigned int attempt);

/**
 * @brief Client id: CONFIG_MQTT_CLIENT_ID when set, otherwise "nrf-<IMEI>" read from the modem.
 *
 * @retval 0 On success.
 * @retval -ENOMEM @p buf is too small.
 * @retval -EIO The modem did not return an IMEI.
 * @return Another negative errno from the AT interface.
 */
int mqtt_app_client_id(char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* PROVGUARD_MQTT_APP_H_ */
