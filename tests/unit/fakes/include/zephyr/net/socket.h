/*
 * Fake of zephyr/net/socket.h: the calls and constants provguard uses.
 *
 * Mirrors include/zephyr/net/socket.h and include/zephyr/net/socket_poll.h (zephyr, as in
 * NCS v3.4.1):
 *   int zsock_getaddrinfo(const char *host, const char *service,
 *                         const struct zsock_addrinfo *hints, struct zsock_addrinfo **res);
 *   void zsock_freeaddrinfo(struct zsock_addrinfo *ai);
 *   int zsock_poll(struct zsock_pollfd *fds, int nfds, int timeout);
 * struct zsock_addrinfo keeps the members provguard reads; TLS option values as upstream.
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

#define TLS_PEER_VERIFY_NONE     0
#define TLS_PEER_VERIFY_OPTIONAL 1
#define TLS_PEER_VERIFY_REQUIRED 2

#define TLS_SESSION_CACHE_DISABLED 0
#define TLS_SESSION_CACHE_ENABLED  1

#define TLS_CERT_NOCOPY_NONE     0
#define TLS_CERT_NOCOPY_OPTIONAL 1

int zsock_getaddrinfo(const char *host, const char *service, const struct zsock_addrinfo *hints,
		      struct zsock_addrinfo **res);
void zsock_freeaddrinfo(struct zsock_addrinfo *ai);
int zsock_poll(struct zsock_pollfd *fds, int nfds, int timeout);

#endif /* FAKE_ZEPHYR_NET_SOCKET_H_ */
