/* Test control of the fake Zephyr MQTT library (fake_mqtt.c): records what the app asked for. */

#ifndef FAKE_MQTT_H_
#define FAKE_MQTT_H_

#include <stddef.h>
#include <stdint.h>

#include <zephyr/net/mqtt.h>

struct fake_mqtt_call {
	char topic[64];
	/** Topic length as sent (a NUL counted in it would be a different topic for the broker). */
	size_t topic_len;
	uint8_t qos;
	uint16_t message_id;
	uint8_t payload[64];
	size_t payload_len;
};

/** The socket a successful mqtt_connect() opens. */
#define FAKE_MQTT_SOCKET 7

void fake_mqtt_reset(void);
/** Queue one mqtt_connect() result; an empty queue connects (0). */
void fake_mqtt_push_connect_result(int err);
/** The next mqtt_input() delivers a CONNACK event with @p result to the client's callback. */
void fake_mqtt_connack_on_next_input(int result);
/** What mqtt_input(), mqtt_live() and mqtt_keepalive_time_left() return from now on. */
void fake_mqtt_set_results(int input, int live, int keepalive_left_ms);
/** What mqtt_subscribe(), mqtt_publish(), mqtt_publish_qos1_ack() and the payload read return. */
void fake_mqtt_set_send_results(int subscribe, int publish, int ack, int readall);
unsigned int fake_mqtt_connect_calls(void);
/** 1 when the last mqtt_connect() got an initialised client with broker, callback, TLS and id. */
int fake_mqtt_connect_broker_checked(void);
unsigned int fake_mqtt_abort_calls(void);
unsigned int fake_mqtt_input_calls(void);
unsigned int fake_mqtt_disconnect_calls(void);
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
