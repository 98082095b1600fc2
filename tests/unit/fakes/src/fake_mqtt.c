/*
 * Fake Zephyr MQTT library: records what the application asks for and plays scripted answers.
 * Signatures as in the fake zephyr/net/mqtt.h (Zephyr 4.x as pinned by NCS v3.4.1). Like the
 * real library, a successful mqtt_connect() opens the transport socket, and mqtt_input() calls
 * the client's event callback (here: a CONNACK when one is armed).
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <fake_mqtt.h>
#include <zephyr/net/mqtt.h>

static uint8_t incoming[256];
static size_t incoming_len;
static size_t incoming_pos;
static unsigned int subscribe_calls;
static unsigned int publish_calls;
static unsigned int ack_calls;
static uint16_t last_ack_id;
static struct fake_mqtt_call last_subscribe;
static struct fake_mqtt_call last_publish;
static int connect_results[16];
static size_t connect_len;
static size_t connect_pos;
static unsigned int connect_calls;
static unsigned int abort_calls;
static unsigned int input_calls;
static unsigned int disconnect_calls;
static int input_result;
static int live_result;
static int connack_result;
static bool connack_armed;
static int connect_broker_ok;
static int keepalive_ms;
static int publish_result;
static int subscribe_result;
static int ack_result;
static int readall_result;

#define MUTEX_READY ((void *)0x6d757478)

/* The topic as sent: its bytes (NUL-terminated here for the tests) and its exact length. */
static void copy_topic(struct fake_mqtt_call *call, const struct mqtt_utf8 *topic)
{
	size_t n = topic->size < sizeof(call->topic) - 1 ? topic->size : sizeof(call->topic) - 1;

	memcpy(call->topic, topic->utf8, n);
	call->topic[n] = '\0';
	call->topic_len = topic->size;
}

void fake_mqtt_reset(void)
{
	incoming_len = 0;
	incoming_pos = 0;
	subscribe_calls = 0;
	publish_calls = 0;
	ack_calls = 0;
	last_ack_id = 0;
	memset(&last_subscribe, 0, sizeof(last_subscribe));
	memset(&last_publish, 0, sizeof(last_publish));
	connect_len = 0;
	connect_pos = 0;
	connect_calls = 0;
	abort_calls = 0;
	input_calls = 0;
	disconnect_calls = 0;
	input_result = 0;
	live_result = -EAGAIN;
	connack_result = 0;
	connack_armed = false;
	connect_broker_ok = 0;
	keepalive_ms = -1;
	publish_result = 0;
	subscribe_result = 0;
	ack_result = 0;
	readall_result = 0;
}

void fake_mqtt_push_connect_result(int err)
{
	if (connect_len < sizeof(connect_results) / sizeof(connect_results[0])) {
		connect_results[connect_len++] = err;
	}
}

void fake_mqtt_connack_on_next_input(int result)
{
	connack_armed = true;
	connack_result = result;
}

void fake_mqtt_set_results(int input, int live, int keepalive_left_ms)
{
	input_result = input;
	live_result = live;
	keepalive_ms = keepalive_left_ms;
}

void fake_mqtt_set_send_results(int subscribe, int publish, int ack, int readall)
{
	subscribe_result = subscribe;
	publish_result = publish;
	ack_result = ack;
	readall_result = readall;
}

unsigned int fake_mqtt_connect_calls(void)
{
	return connect_calls;
}

int fake_mqtt_connect_broker_checked(void)
{
	return connect_broker_ok;
}

unsigned int fake_mqtt_abort_calls(void)
{
	return abort_calls;
}

unsigned int fake_mqtt_input_calls(void)
{
	return input_calls;
}

unsigned int fake_mqtt_disconnect_calls(void)
{
	return disconnect_calls;
}

void fake_mqtt_set_incoming_payload(const void *data, size_t len)
{
	if (len > sizeof(incoming)) {
		len = sizeof(incoming);
	}
	memcpy(incoming, data, len);
	incoming_len = len;
	incoming_pos = 0;
}

size_t fake_mqtt_payload_bytes_read(void)
{
	return incoming_pos;
}

unsigned int fake_mqtt_subscribe_calls(void)
{
	return subscribe_calls;
}

const struct fake_mqtt_call *fake_mqtt_last_subscribe(void)
{
	return &last_subscribe;
}

unsigned int fake_mqtt_publish_calls(void)
{
	return publish_calls;
}

const struct fake_mqtt_call *fake_mqtt_last_publish(void)
{
	return &last_publish;
}

unsigned int fake_mqtt_ack_calls(void)
{
	return ack_calls;
}

uint16_t fake_mqtt_last_ack_id(void)
{
	return last_ack_id;
}

void mqtt_client_init(struct mqtt_client *client)
{
	memset(client, 0, sizeof(*client));
	/* Upstream initialises the client's mutex here; connect refuses a client without it. */
	client->internal.mutex.fake_opaque = MUTEX_READY;
	client->protocol_version = MQTT_VERSION_3_1_1;
	client->clean_session = 1U;
	client->keepalive = 60U;
}

int mqtt_connect(struct mqtt_client *client)
{
	int err = 0;

	connect_calls++;
	/* What the real library needs before it connects: a broker and a callback. */
	connect_broker_ok = client->internal.mutex.fake_opaque == MUTEX_READY &&
			    client->broker != NULL && client->evt_cb != NULL &&
			    client->transport.type == MQTT_TRANSPORT_SECURE &&
			    client->client_id.size > 0U;
	if (connect_pos < connect_len) {
		err = connect_results[connect_pos++];
	}
	if (err == 0) {
		client->transport.tls.sock = FAKE_MQTT_SOCKET;
	}
	return err;
}

int mqtt_publish(struct mqtt_client *client, const struct mqtt_publish_param *param)
{
	size_t len = param->message.payload.len;

	(void)client;
	publish_calls++;
	if (publish_result != 0) {
		return publish_result;
	}
	copy_topic(&last_publish, &param->message.topic.topic);
	last_publish.qos = param->message.topic.qos;
	last_publish.message_id = param->message_id;
	if (len > sizeof(last_publish.payload)) {
		len = sizeof(last_publish.payload);
	}
	memcpy(last_publish.payload, param->message.payload.data, len);
	last_publish.payload_len = len;
	return 0;
}

int mqtt_publish_qos1_ack(struct mqtt_client *client, const struct mqtt_puback_param *param)
{
	(void)client;
	ack_calls++;
	last_ack_id = param->message_id;
	return ack_result;
}

int mqtt_subscribe(struct mqtt_client *client, const struct mqtt_subscription_list *param)
{
	(void)client;
	subscribe_calls++;
	copy_topic(&last_subscribe, &param->list[0].topic);
	last_subscribe.qos = param->list[0].qos;
	last_subscribe.message_id = param->message_id;
	last_subscribe.payload_len = param->list_count;
	return subscribe_result;
}

int mqtt_ping(struct mqtt_client *client)
{
	(void)client;
	return 0;
}

int mqtt_disconnect(struct mqtt_client *client, const struct mqtt_disconnect_param *param)
{
	(void)client;
	(void)param;
	disconnect_calls++;
	return 0;
}

int mqtt_abort(struct mqtt_client *client)
{
	abort_calls++;
	client->transport.tls.sock = -1;
	return 0;
}

int mqtt_live(struct mqtt_client *client)
{
	(void)client;
	return live_result;
}

int mqtt_keepalive_time_left(const struct mqtt_client *client)
{
	(void)client;
	return keepalive_ms;
}

int mqtt_input(struct mqtt_client *client)
{
	input_calls++;
	if (connack_armed) {
		struct mqtt_evt evt = {.type = MQTT_EVT_CONNACK, .result = connack_result};

		connack_armed = false;
		client->evt_cb(client, &evt);
	}
	return input_result;
}

int mqtt_read_publish_payload(struct mqtt_client *client, void *buffer, size_t length)
{
	size_t left = incoming_len - incoming_pos;
	size_t n = length < left ? length : left;

	(void)client;
	memcpy(buffer, &incoming[incoming_pos], n);
	incoming_pos += n;
	return (int)n;
}

int mqtt_readall_publish_payload(struct mqtt_client *client, uint8_t *buffer, size_t length)
{
	if (readall_result != 0) {
		return readall_result;
	}
	if (length > incoming_len - incoming_pos) {
		return -EIO;
	}
	return mqtt_read_publish_payload(client, buffer, length) == (int)length ? 0 : -EIO;
}
