/*
 * Copyright (c) 2026 provguard contributors
 *
 * SPDX-License-Identifier: Apache-2.0
 */

/*
 * The only translation unit that includes certificates.h. It is compiled into the image only for
 * development builds (CONFIG_PROVISION_CERTIFICATES=y); without that option it holds no credential
 * byte, and the release leak scan proves it.
 */

#include <stddef.h>
#include <stdint.h>

#include <zephyr/toolchain.h>

#include "credentials.h"

#if defined(CONFIG_PROVISION_CERTIFICATES)

/* Generated into the build directory by `provguard render` (see cmake/provguard.cmake). */
#include <certificates.h>

#if !defined(PROVGUARD_CERTIFICATES_SEC_TAG) || !defined(CA_CERTIFICATE)
#error "certificates.h must define PROVGUARD_CERTIFICATES_SEC_TAG and CA_CERTIFICATE"
#endif

#if defined(CLIENT_CERTIFICATE) != defined(PRIVATE_KEY)
#error "certificates.h must define both CLIENT_CERTIFICATE and PRIVATE_KEY, or neither"
#endif

/* 16842753 is nRF Cloud's default tag: its credentials would be overwritten. */
BUILD_ASSERT(PROVGUARD_CERTIFICATES_SEC_TAG != 16842753,
	     "certificates.h uses nRF Cloud's sec_tag 16842753");
BUILD_ASSERT(PROVGUARD_CERTIFICATES_SEC_TAG >= 0 && PROVGUARD_CERTIFICATES_SEC_TAG <= 2147483647,
	     "certificates.h sec_tag is outside the modem's user range 0..2147483647");

#if defined(CONFIG_MQTT_TLS_SEC_TAG)
/* Always checked in a Zephyr build; a standalone compile may leave the Kconfig value out. */
BUILD_ASSERT(PROVGUARD_CERTIFICATES_SEC_TAG == CONFIG_MQTT_TLS_SEC_TAG,
	     "certificates.h was rendered for another sec_tag than CONFIG_MQTT_TLS_SEC_TAG");
#endif

static const char ca_certificate[] = CA_CERTIFICATE;
BUILD_ASSERT(sizeof(ca_certificate) - 1 <= PROVGUARD_CREDENTIAL_MAX_LEN,
	     "CA certificate chain is larger than the modem accepts");

#if defined(CLIENT_CERTIFICATE)
static const char client_certificate[] = CLIENT_CERTIFICATE;
BUILD_ASSERT(sizeof(client_certificate) - 1 <= PROVGUARD_CREDENTIAL_MAX_LEN,
	     "client certificate is larger than the modem accepts");

static const char private_key[] = PRIVATE_KEY;
BUILD_ASSERT(sizeof(private_key) - 1 <= PROVGUARD_CREDENTIAL_MAX_LEN,
	     "private key is larger than the modem accepts");
#endif

static const struct provguard_credential credential_table[] = {
	{
		.type = PROVGUARD_CRED_CA_CHAIN,
		.data = ca_certificate,
		.len = sizeof(ca_certificate) - 1,
	},
#if defined(CLIENT_CERTIFICATE)
	{
		.type = PROVGUARD_CRED_CLIENT_CERT,
		.data = client_certificate,
		.len = sizeof(client_certificate) - 1,
	},
	{
		.type = PROVGUARD_CRED_PRIVATE_KEY,
		.data = private_key,
		.len = sizeof(private_key) - 1,
	},
#endif
};

size_t provguard_credentials(const struct provguard_credential **table)
{
	*table = credential_table;
	return sizeof(credential_table) / sizeof(credential_table[0]);
}

int64_t provguard_credentials_sec_tag(void)
{
	return PROVGUARD_CERTIFICATES_SEC_TAG;
}

#else /* !CONFIG_PROVISION_CERTIFICATES */

size_t provguard_credentials(const struct provguard_credential **table)
{
	*table = NULL;
	return 0;
}

int64_t provguard_credentials_sec_tag(void)
{
	return -1;
}

#endif /* CONFIG_PROVISION_CERTIFICATES */
