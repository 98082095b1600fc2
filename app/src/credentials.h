/*
 * Copyright (c) 2026 provguard contributors
 *
 * SPDX-License-Identifier: Apache-2.0
 */

/** @file credentials.h
 *
 * @brief The credential table compiled in for development provisioning.
 *
 * The table only exists when CONFIG_PROVISION_CERTIFICATES is enabled: it is built from the
 * certificates.h that `provguard render` generates into the build directory. Without that option
 * the translation unit compiles to an empty table and no credential byte is in the image.
 *
 * This header depends on nothing but the C library so that credentials.c can be compiled on its
 * own (the leak-scan demo cross-compiles exactly that file).
 */

#ifndef PROVGUARD_CREDENTIALS_H_
#define PROVGUARD_CREDENTIALS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Modem credential types, with the values of AT%CMNG <type> and of
 * enum modem_key_mgmt_cred_type (provision.c asserts that they agree).
 */
enum provguard_cred_type {
	PROVGUARD_CRED_CA_CHAIN = 0,
	PROVGUARD_CRED_CLIENT_CERT = 1,
	PROVGUARD_CRED_PRIVATE_KEY = 2,
};

/**
 * Largest credential, in bytes without the terminating NUL, that the modem path handles.
 *
 * The modem takes AT commands of at most 4096 bytes, and modem_key_mgmt reads a credential back
 * (AT%CMNG=2: tag, type, a 64-character SHA-256 and the quoted content) into a 4096-byte buffer
 * before comparing. 128 bytes cover that framing, so a credential that passes this limit can be
 * both written and compared.
 */
#define PROVGUARD_CREDENTIAL_MAX_LEN (4096 - 128)

/** One credential to store in the modem under the application's sec_tag. */
struct provguard_credential {
	/** Modem credential type. */
	enum provguard_cred_type type;
	/** PEM content, LF line endings. */
	const char *data;
	/** Length of @p data in bytes, without a terminating NUL. */
	size_t len;
};

/**
 * @brief Get the credential table compiled into this image.
 *
 * @param[out] table Set to the first entry, or NULL when there is none.
 *
 * @return Number of entries: 0 when provisioning is disabled, otherwise 1 (CA certificate only)
 *         or 3 (CA certificate, client certificate, private key), in that order.
 */
size_t provguard_credentials(const struct provguard_credential **table);

/**
 * @brief The sec_tag the credential table was rendered for (certificates.h), or -1 without table.
 */
int64_t provguard_credentials_sec_tag(void);

#ifdef __cplusplus
}
#endif

#endif /* PROVGUARD_CREDENTIALS_H_ */
