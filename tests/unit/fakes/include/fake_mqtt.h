/* Test control of the fake Zephyr MQTT library (fake_mqtt.c): records what the app asked for. */

#ifndef FAKE_MQTT_H_
#define FAKE_MQTT_H_

#include <stddef.h>
#include <stdint.h>

#include <zephyr/net/mqtt.h>

struct fake_mqtt_call {
	char topic[64];
	uint8_t qos;
	uint16_t message_id;
	uint8_t payload[64];
	size_t payload_len;
};

void fake_mqtt_reset(void);
/** Bytes mqtt_readall_publish_payload() hands out for the next PUBLISH. */
void fake_mqtt_set_incoming_payload(const void *data, size_t len);
/** Total bytes the application read with mqtt_readall_publish_payload(). */
size_t fake_mqtt_payload_bytes_read(void);

unsigned int fake_mqtt_subscribe_calls(void);
/** The last subscription: topic, QoS, message id; list_count in payload_len. */
const struct fake_mqtt_call *fake_mqtt_last_subscribe(void);
unsigned int fake_mqtt_publish_calls(void);
const struct fake_mqtt_call *fake_mqtt_last_publish(void);
unsigned int fake_mqtt_ack_calls(void);
uint16_t fake_mqtt_last_ack_id(void);

#endif /* FAKE_MQTT_H_ */
