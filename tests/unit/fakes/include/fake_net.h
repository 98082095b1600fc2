/*
 * Test control of the fake sockets, kernel sleep and LTE link (fake_net.c), for main.c.
 *
 * k_sleep() records every delay; after the configured number of sleeps it longjmp()s to
 * fake_net_escape(), which is how a test leaves main()'s endless reconnect loop.
 */

#ifndef FAKE_NET_H_
#define FAKE_NET_H_

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void fake_net_reset(void);

/** zsock_getaddrinfo() returns @p err; with @p no_result it sets *res to NULL (and returns err). */
void fake_net_set_getaddrinfo(int err, bool no_result);
unsigned int fake_net_getaddrinfo_calls(void);
unsigned int fake_net_freeaddrinfo_calls(void);
const char *fake_net_last_host(void);
const char *fake_net_last_service(void);
/** The address zsock_getaddrinfo() hands out (what the client must use as broker). */
const void *fake_net_broker_address(void);

/** Queue one zsock_poll() answer: return value, revents, and errno when it returns < 0. */
void fake_net_push_poll(int ret, short revents, int err);
unsigned int fake_net_poll_calls(void);
int fake_net_last_poll_fd(void);
int fake_net_last_poll_timeout(void);

/** Queue one lte_lc_connect() result; an empty queue connects (0). */
void fake_net_push_lte_result(int err);
unsigned int fake_net_lte_calls(void);

/** After @p count sleeps k_sleep() longjmp()s to the escape buffer. */
void fake_net_sleep_budget(unsigned int count);
jmp_buf *fake_net_escape(void);
/** Delays passed to k_sleep(), in milliseconds; returns how many (at most @p max). */
size_t fake_net_sleeps(int64_t *ms, size_t max);

#endif /* FAKE_NET_H_ */
