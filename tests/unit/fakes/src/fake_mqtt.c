/* Fake Zephyr MQTT library: records subscribe/publish/ack calls for the host tests. */

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

static void copy_topic(char *dst, size_t size, const struct mqtt_utf8 *topic)
{
	snprintf(dst, size, "%.*s", (int)topic->size, (const char *)topic->utf8);
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
	client->protocol_version = MQTT_VERSION_3_1_1;
	client->clean_session = 1U;
	client->keepalive = 60U;
}

int mqtt_connect(struct mqtt_client *client)
{
	(void)client;
	return 0;
}

int mqtt_publish(struct mqtt_client *client, const struct mqtt_publish_param *param)
{
	size_t len = param->message.payload.len;

	(void)client;
	publish_calls++;
	copy_topic(last_publish.topic, sizeof(last_publish.topic), &param->message.topic.topic);
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
	return 0;
}

int mqtt_subscribe(struct mqtt_client *client, const struct mqtt_subscription_list *param)
{
	(void)client;
	subscribe_calls++;
	copy_topic(last_subscribe.topic, sizeof(last_subscribe.topic), &param->list[0].topic);
	last_subscribe.qos = param->list[0].qos;
	last_subscribe.message_id = param->message_id;
	last_subscribe.payload_len = param->list_count;
	return 0;
}

int mqtt_ping(struct mqtt_client *client)
{
	(void)client;
	return 0;
}

int mqtt_disconnect(struct mqtt_client *client)
{
	(void)client;
	return 0;
}

int mqtt_abort(struct mqtt_client *client)
{
	(void)client;
	return 0;
}

int mqtt_live(struct mqtt_client *client)
{
	(void)client;
	return -EAGAIN;
}

int mqtt_keepalive_time_left(const struct mqtt_client *client)
{
	(void)client;
	return -1;
}

int mqtt_input(struct mqtt_client *client)
{
	(void)client;
	return 0;
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
	if (length > incoming_len - incoming_pos) {
		return -EIO;
	}
	return mqtt_read_publish_payload(client, buffer, length) == (int)length ? 0 : -EIO;
}
