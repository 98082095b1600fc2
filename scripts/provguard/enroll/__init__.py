"""Production enrollment: the private key is born in the modem, only the certificate travels.

`provguard enroll` asks each modem for a key and a CSR (`AT%KEYGEN`), verifies the CSR and its
attestation, has the device CA sign a client certificate and writes it, with the broker's root
where it differs; every attempt goes into the ledger (`provguard.ledger`). A key the ledger did
not generate is never deleted; only `--rotate` replaces a key. Nothing here ever holds a device's
private key: the device CA's key signs and is named by fingerprint only.

Modules: `inputs` (device CA, broker root, subject template, checked before any modem is
touched), `keygen` (the AT commands and answers enrollment adds: %KEYGEN with its attestation,
%CMNG read-back, IMEI, firmware), `issue` (the device certificate) and `device` (the flow for one
device over a Transport, step by step).
"""

from provguard.enroll.device import (
    DeviceResult,
    EnrollInterrupted,
    EnrollJob,
    StopRequestedError,
    UnusableDeviceError,
    enroll_device,
    summarise,
)
from provguard.enroll.inputs import (
    DEFAULT_DAYS,
    DEFAULT_SUBJECT,
    BrokerRoot,
    DeviceCa,
    SubjectTemplate,
    load_broker_root,
    load_device_ca,
)
from provguard.enroll.issue import BACKDATE, issue_certificate, issued_by
from provguard.enroll.keygen import (
    CGMR,
    KEYGEN_CME,
    CsrError,
    KeygenAnswer,
    KeygenRefusedError,
    cmng_read,
    keygen,
    parse_cmng_read,
    parse_firmware,
    parse_imei,
    parse_keygen,
    verify_csr,
)

__all__ = [
    "BACKDATE",
    "CGMR",
    "DEFAULT_DAYS",
    "DEFAULT_SUBJECT",
    "KEYGEN_CME",
    "BrokerRoot",
    "CsrError",
    "DeviceCa",
    "DeviceResult",
    "EnrollInterrupted",
    "EnrollJob",
    "KeygenAnswer",
    "KeygenRefusedError",
    "StopRequestedError",
    "SubjectTemplate",
    "UnusableDeviceError",
    "cmng_read",
    "enroll_device",
    "issue_certificate",
    "issued_by",
    "keygen",
    "load_broker_root",
    "load_device_ca",
    "parse_cmng_read",
    "parse_firmware",
    "parse_imei",
    "parse_keygen",
    "summarise",
    "verify_csr",
]
