/*
 * Copyright (c) 2026 provguard contributors
 *
 * SPDX-License-Identifier: Apache-2.0
 */

/*
 * MQTT over TLS on the nRF91 modem, after the mqtt_simple flow: modem library, (development only)
 * credential provisioning while the modem is offline, LTE link, then an MQTT 3.1.1 session that
 * echoes what arrives on CONFIG_MQTT_SUB_TOPIC to CONFIG_MQTT_PUB_TOPIC, reconnecting with a capped
 * exponential backoff.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/mqtt.h>
#include <zephyr/net/socket.h>
#include <modem/lte_lc.h>
#include <modem/nrf_modem_lib.h>

#include "mqtt_app.h"
#include "provision.h"

LOG_MODULE_REGISTER(app_main, CONFIG_PROVGUARD_APP_LOG_LEVEL);

static struct mqtt_client client;
static char client_id[MQTT_APP_CLIENT_ID_SIZE];

/* Serve one connected session until it fails; sets *reached_broker once CONNACK arrived. */
static int serve(struct mqtt_client *c, bool *reached_broker)
{
	struct zsock_pollfd fds = {
		.fd = c->transport.tls.sock,
		.events = ZSOCK_POLLIN,
	};
	int err;

	while (true) {
		err = zsock_poll(&fds, 1, mqtt_keepalive_time_left(c));
		if (err < 0) {
			LOG_ERR("poll failed: %d", -errno);
			return -errno;
		}

		err = mqtt_live(c);
		if (err && err != -EAGAIN) {
			LOG_ERR("Keepalive failed: %d", err);
			return err;
		}

		if (fds.revents & ZSOCK_POLLIN) {
			err = mqtt_input(c);
			if (err) {
				LOG_ERR("Connection lost: %d", err);
				return err;
			}
		}

		if (mqtt_app_is_connected()) {
			*reached_broker = true;
		}

		if (fds.revents & (ZSOCK_POLLERR | ZSOCK_POLLHUP | ZSOCK_POLLNVAL)) {
			LOG_ERR("Socket closed (revents 0x%x)", (unsigned int)fds.revents);
			return -ENOTCONN;
		}
	}
}

static int session(bool *reached_broker)
{
	struct zsock_addrinfo *result = NULL;
	int err;

	err = zsock_getaddrinfo(CONFIG_MQTT_BROKER_HOSTNAME, STRINGIFY(CONFIG_MQTT_BROKER_PORT),
								       NULL, &result);
	if (err || result == NULL) {
		LOG_ERR("Resolving %s failed: %d", CONFIG_MQTT_BROKER_HOSTNAME, err);
		return -EHOSTUNREACH;
	}

	mqtt_app_client_setup(&client, result->ai_addr, client_id);

	LOG_INF("Connecting to %s:%d as %s", CONFIG_MQTT_BROKER_HOSTNAME, CONFIG_MQTT_BROKER_PORT,
		client_id);
	err = mqtt_connect(&client);
	if (err) {
		LOG_ERR("Connecting to %s failed: %d", CONFIG_MQTT_BROKER_HOSTNAME, err);
	} else {
		err = serve(&client, reached_broker);
		(void)mqtt_abort(&client);
	}

	zsock_freeaddrinfo(result);
	return err;
}

int main(void)
{
	unsigned int attempt = 0;
	int err;

	LOG_INF("provguard MQTT-over-TLS application, sec_tag %d", CONFIG_MQTT_TLS_SEC_TAG);
	if (CONFIG_MQTT_TLS_PEER_VERIFY != ZSOCK_TLS_PEER_VERIFY_REQUIRED) {
		LOG_WRN("TLS peer verification is lowered to %d: the broker is not authenticated",
			CONFIG_MQTT_TLS_PEER_VERIFY);
	}

	/* Runs the init hooks, among them credential provisioning while the modem is offline. */
	err = nrf_modem_lib_init();
	if (err) {
		LOG_ERR("Modem library init failed: %d", err);
		return err;
	}

#if defined(CONFIG_PROVISION_CERTIFICATES)
	/* provision.c is only built into development images. */
	err = provision_result();
	if (err) {
		LOG_ERR("Provisioning failed (%d): connecting with what the modem holds", err);
	}
#endif

	err = mqtt_app_client_id(client_id, sizeof(client_id));
	if (err) {
		return err;
	}

	LOG_INF("Connecting to the LTE network");
	while ((err = lte_lc_connect()) != 0) {
		LOG_ERR("LTE connection failed (%d), retrying in %d s", err,
			CONFIG_LTE_CONNECT_RETRY_DELAY_S);
		k_sleep(K_SECONDS(CONFIG_LTE_CONNECT_RETRY_DELAY_S));
	}
	LOG_INF("LTE connected");

	while (true) {
		bool reached_broker = false;
		uint32_t delay;

		(void)session(&reached_broker);
		if (reached_broker) {
			attempt = 0;
		}

		delay = mqtt_app_backoff_s(attempt);
		LOG_INF("Reconnecting in %u s", (unsigned int)delay);
		k_sleep(K_SECONDS(delay));
		attempt++;
	}

	return 0;
}
