"""A throwaway development PKI: one CA, a broker certificate and a device certificate.

For local tests and the demo only: every key is EC P-256 (what the nRF91 modem handles best) and
every file is created with mode 0600, never over an existing file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provguard.errors import InputError, UsageError
from provguard.hostnames import host_name, shorten

CA_DAYS = 730
LEAF_DAYS = 365
#: ub-common-name (RFC 5280, Appendix A.1): a common name holds at most 64 characters.
COMMON_NAME_MAX = 64
#: The broker certificate's common name when the host name is longer than a common name may be
#: (the subjectAltName, which TLS checks, always holds the full name).
LONG_HOST_CN = "provguard development broker"

#: File names in the output directory; `provguard check --ca ca.pem --cert client.pem
#: --key client.key` and the firmware's CERT_DIR use the same names.
FILES = {
    "ca_cert": "ca.pem",
    "ca_key": "ca.key",
    "server_cert": "server.pem",
    "server_key": "server.key",
    "client_cert": "client.pem",
    "client_key": "client.key",
}


@dataclass(frozen=True)
class DevPki:
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    server_key: ec.EllipticCurvePrivateKey
    server_cert: x509.Certificate
    client_key: ec.EllipticCurvePrivateKey
    client_cert: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provguard development PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def device_common_name(device_id: str) -> str:
    """The device id checked: it is the client certificate's CN and the MQTT client id."""
    if not device_id:
        raise UsageError("--device-id is empty: it becomes the certificate's common name")
    if not device_id.isascii() or not device_id.isprintable():
        raise UsageError(
            f"--device-id {shorten(device_id)!r}: use printable ASCII only (it becomes the "
            "MQTT client id and the certificate's common name)"
        )
    if len(device_id) > COMMON_NAME_MAX:
        raise UsageError(
            f"--device-id {shorten(device_id)!r} is {len(device_id)} characters: a certificate's "
            f"common name holds at most {COMMON_NAME_MAX}"
        )
    return device_id


def broker_host(host: str) -> str:
    """The broker host checked: an IP address, or the ASCII (IDNA) form of a DNS name."""
    if not host:
        raise UsageError("--broker-host is empty: give the name the device connects to")
    return host_name(host, what="--broker-host")


def _subject_alt_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    if host == "localhost":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    return names


def create(broker: str, device_id: str, now: dt.datetime | None = None) -> DevPki:
    """A CA, a certificate for `broker` and one for `device_id`; UsageError for unusable names."""
    host = broker_host(broker)
    device = device_common_name(device_id)
    now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    start = now - dt.timedelta(minutes=5)  # tolerate a device clock a little behind
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("provguard development CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        common_name: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_cn = host if len(host) <= COMMON_NAME_MAX else LONG_HOST_CN
    server_key, server_cert = leaf(
        server_cn, ExtendedKeyUsageOID.SERVER_AUTH, _subject_alt_names(host)
    )
    client_key, client_cert = leaf(device, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return DevPki(ca_key, ca_cert, server_key, server_cert, client_key, client_cert)


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write(pki: DevPki, directory: Path) -> list[Path]:
    """Write every file 0600 into `directory` (made 0700 if new); refuse if any already exists."""
    contents = {
        FILES["ca_cert"]: _pem_cert(pki.ca_cert),
        FILES["ca_key"]: _pem_key(pki.ca_key),
        FILES["server_cert"]: _pem_cert(pki.server_cert),
        FILES["server_key"]: _pem_key(pki.server_key),
        FILES["client_cert"]: _pem_cert(pki.client_cert),
        FILES["client_key"]: _pem_key(pki.client_key),
    }
    if directory.exists() and not directory.is_dir():
        raise InputError("exists and is not a directory", path=directory)
    existing = [name for name in contents if (directory / name).exists()]
    if existing:
        raise InputError(
            f"already holds {', '.join(existing)}: not overwriting; choose an empty directory",
            path=directory,
        )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, data in contents.items():
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        written.append(path)
    return written
