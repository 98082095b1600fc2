"""Credentials: load them as users have them, and say precisely what would fail on the device."""

from provguard.credentials.checks import (
    check,
    describe_key,
)
from provguard.credentials.loading import (
    cert_fingerprint,
    fingerprint,
    key_fingerprint,
    load_certificates,
    load_credential_set,
    load_json_bundle,
    load_private_key,
    public_key_der,
)
from provguard.credentials.model import (
    CheckReport,
    CredentialFile,
    CredentialSet,
    Problem,
    Severity,
    Slot,
)
from provguard.nrf91 import (
    DECRYPTABLE_SEC_TAGS,
    MODEM_CREDENTIAL_MAX,
    NRF_CLOUD_SEC_TAG,
    SEC_TAG_MAX,
)

__all__ = [
    "DECRYPTABLE_SEC_TAGS",
    "MODEM_CREDENTIAL_MAX",
    "NRF_CLOUD_SEC_TAG",
    "SEC_TAG_MAX",
    "CheckReport",
    "CredentialFile",
    "CredentialSet",
    "Problem",
    "Severity",
    "Slot",
    "cert_fingerprint",
    "check",
    "describe_key",
    "fingerprint",
    "key_fingerprint",
    "load_certificates",
    "load_credential_set",
    "load_json_bundle",
    "load_private_key",
    "public_key_der",
]
