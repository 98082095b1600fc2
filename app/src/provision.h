/*
 * Copyright (c) 2026 provguard contributors
 *
 * SPDX-License-Identifier: Apache-2.0
 */

/** @file provision.h
 *
 * @brief Development-only provisioning of the TLS credentials into the modem.
 *
 * Runs from the modem library's init hook, while the modem is initialised but still offline
 * (CFUN=0) and before the application starts the LTE link.
 */

#ifndef PROVGUARD_PROVISION_H_
#define PROVGUARD_PROVISION_H_

#include <stddef.h>
#include <stdint.h>

#include "credentials.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a provisioning run did. */
struct provision_stats {
	/** Credentials written (and verified) in this run. */
	unsigned int written;
	/** Credentials the modem already held with the same content. */
	unsigned int unchanged;
};

/**
 * @brief Make the modem hold exactly the given credentials under @p sec_tag.
 *
 * Each credential is compared with what the modem holds and written only when it differs or is
 * missing. Nothing is ever deleted: AT%CMNG=0 replaces a credential in place and a refused write
 * leaves the old one. The private key cannot be read back, so the key and its client certificate
 * are handled as a pair: the key is written first and the certificate last, and the certificate is
 * written only after its key was stored. A matching certificate in the modem therefore means its
 * key was stored too, and an interrupted or failed pair is completed on the next run.
 *
 * @param sec_tag Security tag to store the credentials under.
 * @param creds Credentials: a CA chain, optionally followed by a client certificate and a key.
 * @param count Number of entries in @p creds.
 * @param[out] stats What was done; may be NULL.
 *
 * With CONFIG_NRF_MODEM_LIB_TRACE, modem trace output is turned off before the first credential
 * operation and set back to CONFIG_NRF_MODEM_LIB_TRACE_LEVEL after the last one, on every path;
 * when it cannot be turned off nothing is written.
 *
 * @retval 0 The modem holds every credential.
 * @retval -EINVAL The table is malformed, or the modem refused the content (CME 527).
 * @retval -EPERM The modem refused a write because it is not offline (CME 518).
 * @retval -EALREADY The modem keeps the private key it holds under @p sec_tag (CME 519).
 * @retval -EIO A written credential did not read back as written (or is not listed), or the
 *              trace level could not be changed and the trace call gave no errno.
 * @return Another negative errno from modem_key_mgmt on other failures (the first one seen).
 */
int provision_credentials(uint32_t sec_tag, const struct provguard_credential *creds, size_t count,
			  struct provision_stats *stats);

/**
 * @brief Result of the provisioning run done at modem initialisation.
 *
 * @retval -EAGAIN The modem library has not been initialised yet.
 * @return Otherwise what provision_credentials() returned, or the modem library's init error.
 */
int provision_result(void);

#ifdef __cplusplus
}
#endif

#endif /* PROVGUARD_PROVISION_H_ */
