/*
 * Copyright (c) 2026 provguard contributors
 *
 * SPDX-License-Identifier: Apache-2.0
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <modem/modem_key_mgmt.h>
#include <modem/nrf_modem_lib.h>
#if defined(CONFIG_NRF_MODEM_LIB_TRACE)
#include <modem/nrf_modem_lib_trace.h>
#endif

#include "credentials.h"
#include "provision.h"

LOG_MODULE_REGISTER(provision, CONFIG_PROVGUARD_APP_LOG_LEVEL);

BUILD_ASSERT(CONFIG_MQTT_TLS_SEC_TAG != 16842753,
	     "CONFIG_MQTT_TLS_SEC_TAG is nRF Cloud's sec_tag: its credentials would be replaced");
BUILD_ASSERT(CONFIG_MQTT_TLS_SEC_TAG >= 0 && CONFIG_MQTT_TLS_SEC_TAG <= 2147483647,
	     "CONFIG_MQTT_TLS_SEC_TAG is outside the modem's user range 0..2147483647");

BUILD_ASSERT((int)PROVGUARD_CRED_CA_CHAIN == (int)MODEM_KEY_MGMT_CRED_TYPE_CA_CHAIN,
	     "credential type values disagree with modem_key_mgmt");
BUILD_ASSERT((int)PROVGUARD_CRED_CLIENT_CERT == (int)MODEM_KEY_MGMT_CRED_TYPE_PUBLIC_CERT,
	     "credential type values disagree with modem_key_mgmt");
BUILD_ASSERT((int)PROVGUARD_CRED_PRIVATE_KEY == (int)MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT,
	     "credential type values disagree with modem_key_mgmt");

#if defined(CONFIG_NRF_MODEM_LIB_TRACE)
/*
 * Modem traces carry the AT commands, so AT%CMNG writes put the private key into whatever
 * records the trace (UART, RTT, flash). Provisioning turns trace output off around its
 * credential operations and then sets the level back. NCS has no getter for the trace level:
 * the level to restore is the one the build configures, which only exists with
 * CONFIG_NRF_MODEM_LIB_TRACE_LEVEL_OVERRIDE.
 */
#if !defined(CONFIG_NRF_MODEM_LIB_TRACE_LEVEL)
#error "CONFIG_PROVISION_CERTIFICATES with CONFIG_NRF_MODEM_LIB_TRACE needs CONFIG_NRF_MODEM_LIB_TRACE_LEVEL_OVERRIDE=y and a trace level: provisioning turns modem traces off around the credential writes and must know which level to restore"
#endif

static int trace_off(nrf_sec_tag_t sec_tag)
{
	int err = nrf_modem_lib_trace_level_set(NRF_MODEM_LIB_TRACE_LEVEL_OFF);

	if (err) {
		LOG_ERR("sec_tag %u: turning modem traces off failed (%d): nothing written, the "
			"trace would record the credentials",
			(unsigned int)sec_tag, err);
		return err < 0 ? err : -EIO;
	}
	return 0;
}

static int trace_restore(nrf_sec_tag_t sec_tag)
{
	int err = nrf_modem_lib_trace_level_set(
		(enum nrf_modem_lib_trace_level)CONFIG_NRF_MODEM_LIB_TRACE_LEVEL);

	if (err) {
		LOG_ERR("sec_tag %u: restoring modem trace level %d failed (%d): traces stay off",
			(unsigned int)sec_tag, CONFIG_NRF_MODEM_LIB_TRACE_LEVEL, err);
		return err < 0 ? err : -EIO;
	}
	return 0;
}
#else
static int trace_off(nrf_sec_tag_t sec_tag)
{
	ARG_UNUSED(sec_tag);
	return 0;
}

static int trace_restore(nrf_sec_tag_t sec_tag)
{
	ARG_UNUSED(sec_tag);
	return 0;
}
#endif /* CONFIG_NRF_MODEM_LIB_TRACE */

static const char *type_name(enum modem_key_mgmt_cred_type type)
{
	switch (type) {
	case MODEM_KEY_MGMT_CRED_TYPE_CA_CHAIN:
		return "CA certificate";
	case MODEM_KEY_MGMT_CRED_TYPE_PUBLIC_CERT:
		return "client certificate";
	case MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT:
		return "private key";
	default:
		return "credential";
	}
}

/* 0: the modem holds exactly this certificate; 1: it holds another one or none; <0: error. */
static int certificate_state(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type type,
			     const struct provguard_credential *cred)
{
	int err = modem_key_mgmt_cmp(sec_tag, type, cred->data, cred->len);

	if (err == 0) {
		LOG_INF("sec_tag %u type %d (%s): unchanged", (unsigned int)sec_tag, type,
			type_name(type));
		return 0;
	}
	if (err == 1 || err == -ENOENT) {
		LOG_INF("sec_tag %u type %d (%s): %s", (unsigned int)sec_tag, type, type_name(type),
			err == 1 ? "differs" : "missing");
		return 1;
	}

	LOG_ERR("sec_tag %u type %d (%s): compare failed: %d", (unsigned int)sec_tag, type,
		type_name(type), err);
	return err;
}

static int write_credential(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type type,
			    const struct provguard_credential *cred)
{
	int err;

	LOG_INF("sec_tag %u type %d (%s): writing %u bytes", (unsigned int)sec_tag, type,
		type_name(type), (unsigned int)cred->len);

	err = modem_key_mgmt_write(sec_tag, type, cred->data, cred->len);
	if (err == -EPERM) {
		LOG_ERR("sec_tag %u type %d (%s): write refused, the modem is not offline (%d)",
			(unsigned int)sec_tag, type, type_name(type), err);
		return err;
	}
	if (err == -EINVAL) {
		LOG_ERR("sec_tag %u type %d (%s): the modem refused the content (CME 527, %d)",
			(unsigned int)sec_tag, type, type_name(type), err);
		return err;
	}
	if (err == -EALREADY) {
		LOG_ERR("sec_tag %u type %d (%s): the modem keeps the one it holds (CME 519, %d); "
			"provisioning never deletes, remove it first",
			(unsigned int)sec_tag, type, type_name(type), err);
		return err;
	}
	if (err) {
		LOG_ERR("sec_tag %u type %d (%s): write failed: %d", (unsigned int)sec_tag, type,
			type_name(type), err);
		return err;
	}

	return 0;
}

/* Write a certificate and read it back: it is known good only when the modem returns it. */
static int write_certificate(nrf_sec_tag_t sec_tag, enum modem_key_mgmt_cred_type type,
			     const struct provguard_credential *cred)
{
	int err = write_credential(sec_tag, type, cred);

	if (err) {
		return err;
	}

	err = modem_key_mgmt_cmp(sec_tag, type, cred->data, cred->len);
	if (err != 0) {
		LOG_ERR("sec_tag %u type %d (%s): read-back after write does not match: %d",
			(unsigned int)sec_tag, type, type_name(type), err);
		/* Different (1) or gone (-ENOENT): the write did not hold. */
		return (err == 1 || err == -ENOENT) ? -EIO : err;
	}

	LOG_INF("sec_tag %u type %d (%s): written and verified", (unsigned int)sec_tag, type,
		type_name(type));
	return 0;
}

/* A private key cannot be read back: after the write, check that the modem lists it. */
static int write_private_key(nrf_sec_tag_t sec_tag, const struct provguard_credential *cred)
{
	const enum modem_key_mgmt_cred_type type = MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT;
	bool exists = false;
	int err = write_credential(sec_tag, type, cred);

	if (err) {
		return err;
	}

	err = modem_key_mgmt_exists(sec_tag, type, &exists);
	if (err) {
		LOG_ERR("sec_tag %u type %d (%s): presence check after write failed: %d",
			(unsigned int)sec_tag, type, type_name(type), err);
		return err;
	}
	if (!exists) {
		LOG_ERR("sec_tag %u type %d (%s): not listed after write", (unsigned int)sec_tag,
			type, type_name(type));
		return -EIO;
	}

	LOG_INF("sec_tag %u type %d (%s): written and listed", (unsigned int)sec_tag, type,
		type_name(type));
	return 0;
}

static int provision_ca(nrf_sec_tag_t sec_tag, const struct provguard_credential *ca,
			struct provision_stats *stats)
{
	const enum modem_key_mgmt_cred_type type = MODEM_KEY_MGMT_CRED_TYPE_CA_CHAIN;
	int state = certificate_state(sec_tag, type, ca);
	int err;

	if (state <= 0) {
		stats->unchanged += (state == 0) ? 1U : 0U;
		return state;
	}

	err = write_certificate(sec_tag, type, ca);
	if (err) {
		return err;
	}

	stats->written++;
	return 0;
}

/*
 * The client certificate is the commit marker of the pair: it is written last, and only once the
 * key it belongs to is stored. So a certificate that matches means its key is stored as well.
 */
static int provision_pair(nrf_sec_tag_t sec_tag, const struct provguard_credential *cert,
			  const struct provguard_credential *key, struct provision_stats *stats)
{
	const enum modem_key_mgmt_cred_type key_type = MODEM_KEY_MGMT_CRED_TYPE_PRIVATE_CERT;
	bool key_exists = false;
	int state;
	int err;

	state = certificate_state(sec_tag, MODEM_KEY_MGMT_CRED_TYPE_PUBLIC_CERT, cert);
	if (state < 0) {
		return state;
	}

	err = modem_key_mgmt_exists(sec_tag, key_type, &key_exists);
	if (err) {
		LOG_ERR("sec_tag %u type %d (%s): presence check failed: %d", (unsigned int)sec_tag,
			key_type, type_name(key_type), err);
		return err;
	}

	if (state == 0 && key_exists) {
		LOG_INF("sec_tag %u type %d (%s): present, belongs to the unchanged certificate",
			(unsigned int)sec_tag, key_type, type_name(key_type));
		stats->unchanged += 2U;
		return 0;
	}

	err = write_private_key(sec_tag, key);
	if (err) {
		return err;
	}
	stats->written++;

	if (state == 0) {
		stats->unchanged++;
		return 0;
	}

	err = write_certificate(sec_tag, MODEM_KEY_MGMT_CRED_TYPE_PUBLIC_CERT, cert);
	if (err) {
		return err;
	}
	stats->written++;

	return 0;
}

int provision_credentials(uint32_t sec_tag, const struct provguard_credential *creds, size_t count,
			  struct provision_stats *stats)
{
	struct provision_stats local = {0};
	int err;
	int pair_err = 0;
	int restore_err;

	/* Defined on every path: an early refusal did nothing. */
	if (stats != NULL) {
		*stats = local;
	}

	if (creds == NULL || (count != 1U && count != 3U) ||
	    creds[0].type != PROVGUARD_CRED_CA_CHAIN ||
	    (count == 3U && (creds[1].type != PROVGUARD_CRED_CLIENT_CERT ||
			     creds[2].type != PROVGUARD_CRED_PRIVATE_KEY))) {
		LOG_ERR("sec_tag %u: malformed credential table (%u entries)",
			(unsigned int)sec_tag, (unsigned int)count);
		return -EINVAL;
	}

	LOG_INF("sec_tag %u: provisioning %u credentials", (unsigned int)sec_tag,
		(unsigned int)count);

	err = trace_off(sec_tag);
	if (err) {
		return err;
	}

	/* The CA and the pair are independent: a failure in one does not stop the other. */
	err = provision_ca(sec_tag, &creds[0], &local);
	if (count == 3U) {
		pair_err = provision_pair(sec_tag, &creds[1], &creds[2], &local);
	}
	if (err == 0) {
		err = pair_err;
	}

	/* On every path that turned traces off, including the failed ones. */
	restore_err = trace_restore(sec_tag);
	if (err == 0) {
		err = restore_err;
	}

	if (err) {
		LOG_ERR("sec_tag %u: provisioning incomplete (%d): %u written, %u unchanged",
			(unsigned int)sec_tag, err, local.written, local.unchanged);
	} else {
		LOG_INF("sec_tag %u: provisioning done: %u written, %u unchanged",
			(unsigned int)sec_tag, local.written, local.unchanged);
	}

	if (stats != NULL) {
		*stats = local;
	}

	return err;
}

#if defined(CONFIG_PROVISION_CERTIFICATES)

static int init_result = -EAGAIN;

/*
 * Runs inside nrf_modem_lib_init(): the modem is initialised and in CFUN=0, so credential writes
 * are allowed, and the application has not started the LTE link yet.
 */
NRF_MODEM_LIB_ON_INIT(provguard_provision, on_modem_init, NULL);

static void on_modem_init(int ret, void *ctx)
{
	const struct provguard_credential *table;
	size_t count;

	ARG_UNUSED(ctx);

	if (ret != 0) {
		LOG_ERR("Modem library init returned %d: credentials not provisioned", ret);
		init_result = ret < 0 ? ret : -EIO;
		return;
	}

	LOG_WRN("Development build: provisioning credentials compiled into this image");
	count = provguard_credentials(&table);
	init_result = provision_credentials(CONFIG_MQTT_TLS_SEC_TAG, table, count, NULL);
}

int provision_result(void)
{
	return init_result;
}

#endif /* CONFIG_PROVISION_CERTIFICATES */
