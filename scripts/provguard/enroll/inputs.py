"""What every device of a run gets, checked before any modem is touched: the device CA (its key
must belong to it, it must be a CA, valid now), the broker root as the modem gets it, the subject
template."""

from __future__ import annotations

import binascii
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provguard import at
from provguard.credentials import cert_fingerprint, public_key_der
from provguard.errors import InputError
from provguard.nrf91 import MODEM_CREDENTIAL_MAX

DEFAULT_SUBJECT = "CN=nrf-{imei}"
DEFAULT_DAYS = 3650

_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
}


@dataclass(frozen=True)
class DeviceCa:
    """The CA that signs device certificates. Its key is named by file and fingerprint only."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = field(repr=False)
    cert_path: str
    key_path: str
    fingerprint: str

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None


def _load_one_certificate(path: Path) -> x509.Certificate:
    certs = _load_certificates(path)
    if len(certs) != 1:
        raise InputError(f"holds {len(certs)} certificates; give the device CA alone", path=path)
    return certs[0]


def _load_certificates(path: Path) -> list[x509.Certificate]:
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InputError("not a PEM or DER X.509 certificate", path=path) from None
    return certs


def load_device_ca(
    cert_path: Path, key_path: Path, *, at_time: dt.datetime, password: bytes | None = None
) -> DeviceCa:
    """The device CA, refused (InputError, exit 2) unless its key matches its certificate, it is
    a CA allowed to sign certificates, and it is valid now. `password` decrypts an encrypted
    key (PKCS#8 or traditional PEM)."""
    cert = _load_one_certificate(cert_path)
    data = _read(key_path)
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except TypeError:
        if password is None:
            raise InputError(
                "the key is encrypted: name an environment variable holding its password "
                "with --device-ca-key-pass-env",
                path=key_path,
            ) from None
        raise InputError(
            "the key is not encrypted, but a password was given", path=key_path
        ) from None
    except (ValueError, binascii.Error):
        what = "or the password is wrong" if password is not None else ""
        raise InputError(f"not a PEM or DER private key {what}".strip(), path=key_path) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InputError(
            f"a {type(key).__name__.removeprefix('_')} key cannot sign device certificates "
            "here: use an EC (P-256) or RSA device CA",
            path=key_path,
        )
    if public_key_der(key.public_key()) != public_key_der(cert.public_key()):
        raise InputError(
            f"this key does not belong to the device CA certificate {cert_path} "
            f"({cert_fingerprint(cert)})",
            path=key_path,
        )
    _check_is_ca(cert, cert_path)
    if cert.not_valid_after_utc <= at_time:
        raise InputError(
            f"the device CA expired on {cert.not_valid_after_utc:%Y-%m-%d}", path=cert_path
        )
    if cert.not_valid_before_utc > at_time:
        raise InputError(
            f"the device CA is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            path=cert_path,
        )
    return DeviceCa(cert, key, str(cert_path), str(key_path), cert_fingerprint(cert))


def _check_is_ca(cert: x509.Certificate, path: Path) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise InputError(
            "not a CA certificate (basicConstraints CA:TRUE is missing): it cannot issue "
            "device certificates",
            path=path,
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise InputError(
            "the CA certificate has no keyUsage extension; it needs keyCertSign", path=path
        ) from None
    if not usage.key_cert_sign:
        raise InputError("the CA certificate's keyUsage lacks keyCertSign", path=path)


@dataclass(frozen=True)
class BrokerRoot:
    """The broker's root CA(s) as the modem gets them: canonical PEM, LF line endings."""

    path: str
    certs: tuple[x509.Certificate, ...]
    content: bytes

    @property
    def sha(self) -> str:
        return at.content_digest(self.content)


def load_broker_root(path: Path) -> BrokerRoot:
    certs = tuple(_load_certificates(path))
    content = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    if len(content) > MODEM_CREDENTIAL_MAX:
        raise InputError(
            f"{len(content)} bytes of PEM: more than the {MODEM_CREDENTIAL_MAX} the modem "
            "handles in one sec_tag slot",
            path=path,
        )
    return BrokerRoot(str(path), certs, content)


@dataclass(frozen=True)
class SubjectTemplate:
    """`CN=nrf-{imei}` style: attributes CN, O, OU, C, L, ST, comma separated; {imei} only."""

    text: str

    def __post_init__(self) -> None:
        self.render("000000000000000")  # every problem is found before any modem is touched

    def render(self, imei: str) -> tuple[str, x509.Name]:
        try:
            rendered = self.text.format(imei=imei)
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(
                f"--subject {self.text!r}: only the placeholder {{imei}} is known ({exc})"
            ) from None
        if not rendered or any(not 0x20 <= ord(c) < 0x7F or c in '"\\' for c in rendered):
            raise InputError(
                f"--subject {self.text!r}: printable ASCII without quotes or backslashes only"
            )
        attributes: list[x509.NameAttribute[str]] = []
        for part in rendered.split(","):
            name, sep, value = part.partition("=")
            oid = _ATTRIBUTES.get(name.strip())
            if not sep or oid is None or not value.strip():
                raise InputError(
                    f"--subject {self.text!r}: {part!r} is not one of "
                    f"{', '.join(_ATTRIBUTES)}=<value>"
                )
            attributes.append(x509.NameAttribute(oid, value.strip()))
        if not any(a.oid == NameOID.COMMON_NAME for a in attributes):
            raise InputError(f"--subject {self.text!r}: a CN (the device id) is required")
        return rendered, x509.Name(attributes)
