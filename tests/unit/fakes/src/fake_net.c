/*
 * Fake sockets (zsock_getaddrinfo, zsock_freeaddrinfo, zsock_poll), k_sleep() and
 * lte_lc_connect() for the host tests of main.c.
 *
 * Mirrors the signatures of include/zephyr/net/socket.h, include/zephyr/kernel.h (Zephyr 4.x as
 * pinned by NCS v3.4.1) and include/modem/lte_lc.h (nrfconnect/sdk-nrf v3.4.1). zsock_poll()
 * sets errno and returns -1 on failure, as upstream; a script that ran out reports the peer
 * hanging up (ZSOCK_POLLHUP), so no test can spin forever.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <fake_net.h>
#include <modem/lte_lc.h>
#include <zephyr/kernel.h>
#include <zephyr/net/socket.h>

#define QUEUE 16

struct poll_answer {
	int ret;
	short revents;
	int err;
};

static int gai_err;
static bool gai_no_result;
static unsigned int gai_calls;
static unsigned int free_calls;
static char last_host[128];
static char last_service[16];
static int broker_storage;
static struct zsock_addrinfo result;

static struct poll_answer polls[QUEUE];
static size_t poll_len;
static size_t poll_pos;
static unsigned int poll_calls;
static int last_fd;
static int last_timeout;

static int lte_results[QUEUE];
static size_t lte_len;
static size_t lte_pos;
static unsigned int lte_calls;

static unsigned int sleep_budget;
static int64_t sleeps[64];
static size_t sleep_count;
static jmp_buf escape;

void fake_net_reset(void)
{
	gai_err = 0;
	gai_no_result = false;
	gai_calls = 0;
	free_calls = 0;
	last_host[0] = '\0';
	last_service[0] = '\0';
	poll_len = 0;
	poll_pos = 0;
	poll_calls = 0;
	last_fd = -1;
	last_timeout = 0;
	lte_len = 0;
	lte_pos = 0;
	lte_calls = 0;
	sleep_budget = 1;
	sleep_count = 0;
}

void fake_net_set_getaddrinfo(int err, bool no_result)
{
	gai_err = err;
	gai_no_result = no_result;
}

unsigned int fake_net_getaddrinfo_calls(void)
{
	return gai_calls;
}

unsigned int fake_net_freeaddrinfo_calls(void)
{
	return free_calls;
}

const char *fake_net_last_host(void)
{
	return last_host;
}

const char *fake_net_last_service(void)
{
	return last_service;
}

const void *fake_net_broker_address(void)
{
	return &broker_storage;
}

void fake_net_push_poll(int ret, short revents, int err)
{
	if (poll_len < QUEUE) {
		polls[poll_len++] =
			(struct poll_answer){.ret = ret, .revents = revents, .err = err};
	}
}

unsigned int fake_net_poll_calls(void)
{
	return poll_calls;
}

int fake_net_last_poll_fd(void)
{
	return last_fd;
}

int fake_net_last_poll_timeout(void)
{
	return last_timeout;
}

void fake_net_push_lte_result(int err)
{
	if (lte_len < QUEUE) {
		lte_results[lte_len++] = err;
	}
}

unsigned int fake_net_lte_calls(void)
{
	return lte_calls;
}

void fake_net_sleep_budget(unsigned int count)
{
	sleep_budget = count;
}

jmp_buf *fake_net_escape(void)
{
	return &escape;
}

size_t fake_net_sleeps(int64_t *ms, size_t max)
{
	size_t n = sleep_count < max ? sleep_count : max;

	memcpy(ms, sleeps, n * sizeof(ms[0]));
	return n;
}

int zsock_getaddrinfo(const char *host, const char *service, const struct zsock_addrinfo *hints,
		      struct zsock_addrinfo **res)
{
	(void)hints;
	gai_calls++;
	snprintf(last_host, sizeof(last_host), "%s", host);
	snprintf(last_service, sizeof(last_service), "%s", service != NULL ? service : "");
	if (gai_err != 0 || gai_no_result) {
		*res = NULL;
		return gai_err;
	}
	memset(&result, 0, sizeof(result));
	result.ai_addr = (struct sockaddr *)&broker_storage;
	result.ai_addrlen = sizeof(broker_storage);
	*res = &result;
	return 0;
}

void zsock_freeaddrinfo(struct zsock_addrinfo *ai)
{
	if (ai != &result) {
		fprintf(stderr, "fake_net: freeaddrinfo of a pointer getaddrinfo did not return\n");
		return;
	}
	free_calls++;
}

int zsock_poll(struct zsock_pollfd *fds, int nfds, int timeout)
{
	struct poll_answer answer = {.ret = 1, .revents = ZSOCK_POLLHUP, .err = 0};

	poll_calls++;
	last_timeout = timeout;
	if (poll_pos < poll_len) {
		answer = polls[poll_pos++];
	}
	if (nfds < 1) {
		/* Nothing to watch: upstream sleeps for the timeout and reports no event. */
		last_fd = -1;
		return 0;
	}
	last_fd = fds[0].fd;
	fds[0].revents = answer.revents;
	if (answer.ret < 0) {
		errno = answer.err;
		return -1;
	}
	return answer.ret;
}

int lte_lc_connect(void)
{
	lte_calls++;
	if (lte_pos < lte_len) {
		return lte_results[lte_pos++];
	}
	return 0;
}

int32_t k_sleep(k_timeout_t timeout)
{
	if (sleep_count < sizeof(sleeps) / sizeof(sleeps[0])) {
		sleeps[sleep_count] = timeout.ticks;
	}
	sleep_count++;
	if (sleep_count >= sleep_budget) {
		longjmp(escape, 1);
	}
	return 0;
}
