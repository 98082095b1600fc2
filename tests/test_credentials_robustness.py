"""Damaged credentials of every shape give problems, never an exception (no traceback for users)."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509

from provguard.credentials import CredentialFile, CredentialSet, Severity, Slot, check
from tests import factories as f

PKI = f.device_pki()


def pem(label: str, der: bytes) -> bytes:
    return (
        f"-----BEGIN {label}-----\n".encode()
        + base64.encodebytes(der)
        + (f"-----END {label}-----\n".encode())
    )


def run(slot: Slot, data: bytes):  # type: ignore[no-untyped-def]
    files = {
        Slot.CA: f.cert_pem(PKI.ca_cert),
        Slot.CERT: f.cert_pem(PKI.device_cert),
        Slot.KEY: f.key_pem(PKI.device_key),
    }
    files[slot] = data
    creds = CredentialSet(*(CredentialFile(s, f"{s.value}.pem", files[s]) for s in Slot))
    return check(creds, 24, for_modem_write=True)


def _name_ranges(cert: x509.Certificate) -> list[range]:
    """Where the certificate's issuer and subject Names sit in its DER."""
    der = f.cert_der(cert)
    ranges = []
    for name in (cert.issuer, cert.subject):
        encoded = name.public_bytes()
        start = der.index(encoded, ranges[-1].stop if ranges else 0)
        ranges.append(range(start, start + len(encoded)))
    return ranges


#: A changed byte inside a Name can leave a well-formed certificate naming another CA: nothing can
#: tell it from one really issued by that CA, so the diagnosis is that it names another issuer.
NAME_DIAGNOSES = {"ca-not-root", "cert-other-issuer"}


@pytest.mark.parametrize(
    ("slot", "label", "der", "names"),
    [
        (Slot.CA, "CERTIFICATE", f.cert_der(PKI.ca_cert), _name_ranges(PKI.ca_cert)),
        (Slot.CERT, "CERTIFICATE", f.cert_der(PKI.device_cert), _name_ranges(PKI.device_cert)),
        (Slot.KEY, "PRIVATE KEY", f.key_der(PKI.device_key), []),
    ],
    ids=["ca", "cert", "key"],
)
def test_every_flipped_byte_is_diagnosed(
    slot: Slot, label: str, der: bytes, names: list[range]
) -> None:
    assert run(slot, pem(label, der)).problems == ()  # the undamaged set has nothing to say
    for index in range(len(der)):
        damaged = bytearray(der)
        damaged[index] ^= 0xA5
        report = run(slot, pem(label, bytes(damaged)))
        found = {p.code for p in report.problems}
        if report.ok:
            # Only a Name may change into another valid one; it must then be told.
            assert any(index in r for r in names), f"byte {index}: accepted silently"
            assert found & NAME_DIAGNOSES, f"byte {index}: {found}"
        else:
            assert report.errors, index


@pytest.mark.parametrize("slot", list(Slot), ids=lambda s: s.value)
def test_every_truncation_is_an_error(slot: Slot) -> None:
    whole = {
        Slot.CA: f.cert_pem(PKI.ca_cert),
        Slot.CERT: f.cert_pem(PKI.device_cert),
        Slot.KEY: f.key_pem(PKI.device_key),
    }[slot]
    for length in range(0, len(whole) - 30, 5):
        report = run(slot, whole[:length])
        assert not report.ok, length
        assert any(p.severity is Severity.ERROR for p in report.problems)


def test_a_negative_serial_number_is_a_nonstandard_warning() -> None:
    der = bytearray(f.cert_der(PKI.device_cert))
    serial = PKI.device_cert.serial_number
    encoded = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    index = der.index(b"\x02" + bytes([len(encoded)]) + encoded) + 2
    der[index] = 0x80 | 0x5A  # the sign bit set: a negative serial number
    report = run(Slot.CERT, pem("CERTIFICATE", bytes(der)))
    warning = next(p for p in report.problems if p.code == "der-nonstandard")
    assert warning.severity is Severity.WARNING
    assert "serial number" in warning.message
