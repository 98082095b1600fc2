/*
 * Fake of zephyr/net/socket.h: the calls and constants provguard uses.
 *
 * Mirrors include/zephyr/net/socket.h and include/zephyr/net/socket_poll.h of the Zephyr that
 * NCS v3.4.1 pins (Zephyr 4.x, nrfconnect/sdk-zephyr):
 *   int zsock_getaddrinfo(const char *host, const char *service,
 *                         const struct zsock_addrinfo *hints, struct zsock_addrinfo **res);
 *   void zsock_freeaddrinfo(struct zsock_addrinfo *ai);
 *   int zsock_poll(struct zsock_pollfd *fds, int nfds, int timeout);
 * struct zsock_addrinfo keeps the members provguard reads. TLS option values are the ZSOCK_TLS_*
 * names with the upstream values. The unprefixed TLS_* / POLL* spellings are compatibility
 * aliases in 4.x: they are poisoned here, so the host build fails on the line that uses one
 * instead of the build on the real SDK depending on a compatibility option.
 * The fake behaviour is in fakes/src/fake_net.c (fake_net.h).
 */

#ifndef FAKE_ZEPHYR_NET_SOCKET_H_
#define FAKE_ZEPHYR_NET_SOCKET_H_

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

typedef size_t socklen_t;

struct zsock_addrinfo {
	struct zsock_addrinfo *ai_next;
	int ai_flags;
	int ai_family;
	int ai_socktype;
	int ai_protocol;
	socklen_t ai_addrlen;
	struct sockaddr *ai_addr;
	char *ai_canonname;
};

struct zsock_pollfd {
	int fd;
	short events;
	short revents;
};

#define ZSOCK_POLLIN   1
#define ZSOCK_POLLPRI  2
#define ZSOCK_POLLOUT  4
#define ZSOCK_POLLERR  8
#define ZSOCK_POLLHUP  0x10
#define ZSOCK_POLLNVAL 0x20

#define ZSOCK_TLS_PEER_VERIFY_NONE     0
#define ZSOCK_TLS_PEER_VERIFY_OPTIONAL 1
#define ZSOCK_TLS_PEER_VERIFY_REQUIRED 2

#define ZSOCK_TLS_SESSION_CACHE_DISABLED 0
#define ZSOCK_TLS_SESSION_CACHE_ENABLED  1

#define ZSOCK_TLS_CERT_NOCOPY_NONE     0
#define ZSOCK_TLS_CERT_NOCOPY_OPTIONAL 1

/* Compatibility spellings: using one is a build error (see the comment at the top). */
#pragma GCC poison TLS_PEER_VERIFY_NONE TLS_PEER_VERIFY_OPTIONAL TLS_PEER_VERIFY_REQUIRED
#pragma GCC poison TLS_SESSION_CACHE_DISABLED TLS_SESSION_CACHE_ENABLED
#pragma GCC poison TLS_CERT_NOCOPY_NONE TLS_CERT_NOCOPY_OPTIONAL
#pragma GCC poison POLLIN POLLOUT POLLERR POLLHUP POLLNVAL

int zsock_getaddrinfo(const char *host, const char *service, const struct zsock_addrinfo *hints,
		      struct zsock_addrinfo **res);
void zsock_freeaddrinfo(struct zsock_addrinfo *ai);
int zsock_poll(struct zsock_pollfd *fds, int nfds, int timeout);

#endif /* FAKE_ZEPHYR_NET_SOCKET_H_ */
