/*
 * Stand-in for the autoconf.h a Zephyr build generates from Kconfig: the values the host tests
 * and the Cortex-M33 compile check build app/src with. Values differ from the Kconfig defaults
 * where that lets a test tell "taken from Kconfig" from "hard-coded".
 */

#ifndef FAKE_AUTOCONF_H_
#define FAKE_AUTOCONF_H_

#define CONFIG_MQTT_LIB                1
#define CONFIG_MQTT_LIB_TLS            1
#define CONFIG_MODEM_KEY_MGMT          1
#define CONFIG_NRF_MODEM_LIB           1
#define CONFIG_PROVGUARD_APP_LOG_LEVEL 4
#define CONFIG_MQTT_PUB_TOPIC          "provguard/test/pub"
#define CONFIG_MQTT_SUB_TOPIC          "provguard/test/sub"
#ifndef CONFIG_MQTT_CLIENT_ID
#define CONFIG_MQTT_CLIENT_ID ""
#endif
#ifndef CONFIG_MQTT_BROKER_HOSTNAME
#define CONFIG_MQTT_BROKER_HOSTNAME "broker.provguard.test"
#endif
#ifndef CONFIG_MQTT_BROKER_PORT
#define CONFIG_MQTT_BROKER_PORT 8883
#endif
#define CONFIG_MQTT_MESSAGE_BUFFER_SIZE 256
#define CONFIG_MQTT_PAYLOAD_BUFFER_SIZE 32
#ifndef CONFIG_MQTT_TLS_SEC_TAG
#define CONFIG_MQTT_TLS_SEC_TAG 24
#endif
#ifndef CONFIG_MQTT_TLS_PEER_VERIFY
#define CONFIG_MQTT_TLS_PEER_VERIFY 2
#endif
#define CONFIG_MQTT_RECONNECT_BACKOFF_MIN_S 2
#define CONFIG_MQTT_RECONNECT_BACKOFF_MAX_S 60
#define CONFIG_LTE_CONNECT_RETRY_DELAY_S    30

#endif /* FAKE_AUTOCONF_H_ */
