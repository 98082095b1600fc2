/*
 * Fake of modem/modem_key_mgmt.h.
 *
 * Mirrors include/modem/modem_key_mgmt.h (nrfconnect/sdk-nrf, NCS v3.4.1): same enum and the
 * signatures of the functions provguard uses. Behaviour of the fake (fakes/src/fake_modem.c)
 * follows lib/modem_key_mgmt/modem_key_mgmt.c: cmp returns 0 on match, 1 on mismatch, -ENOENT
 * when absent and ignores one trailing '\n' on either side; a private key cannot be read back
 * (-EACCES, CME 514); write and delete return -EPERM (CME 518) while the modem is online; content
 * the modem refuses is -EINVAL (CME 527); a key the modem keeps is -EALREADY (CME 519).
 */

#ifndef FAKE_MODEM_KEY_MGMT_H_
#define FAKE_MODEM_KEY_MGMT_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nrf_socket.h>

enum modem_key_mgmt_cred_type {
	MODEM_KEY_MGMT_CRED_TYPE_CA_CHAIN,
	MODEM_KEY_MGMT_CRED_TYPE_PUBLIC_CERT,
	MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT,
	MODEM_KEY_MGMT_CRED_TYPE_PSK,
	MODEM_KEY_MGMT_CRED_TYPE_IDENTITY
};

int modem_key_mgmt_write(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type,
			 const void *buf, size_t len);
int modem_key_mgmt_delete(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type);
int modem_key_mgmt_clear(nrf_sec_tag_t sec_tag);
int modem_key_mgmt_read(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type, void *buf,
			size_t *len);
int modem_key_mgmt_cmp(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type,
		       const void *buf, size_t len);
int modem_key_mgmt_exists(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type cred_type,
			  bool *exists);

#endif /* FAKE_MODEM_KEY_MGMT_H_ */
