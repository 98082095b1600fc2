/*
 * Fake of zephyr/net/tls_credentials.h: only the sec_tag_t type.
 * Mirrors include/zephyr/net/tls_credentials.h (zephyr, as in NCS v3.4.1): typedef int sec_tag_t;
 */

#ifndef FAKE_ZEPHYR_NET_TLS_CREDENTIALS_H_
#define FAKE_ZEPHYR_NET_TLS_CREDENTIALS_H_

typedef int sec_tag_t;

#endif /* FAKE_ZEPHYR_NET_TLS_CREDENTIALS_H_ */
