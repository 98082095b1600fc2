"""Test credentials, generated at test time: no key is ever committed.

Shared by every test module: keys, certificates and PEM/DER encodings built with `cryptography`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_cert(
    common_name: str,
    key: PrivateKey,
    *,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    ca: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> x509.Certificate:
    """A certificate for `key`, self-signed unless `issuer` (certificate, key) is given."""
    issuer_name = issuer[0].subject if issuer else name(common_name)
    signing_key = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, algorithm)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(key: PrivateKey, *, pkcs8: bool = True, password: bytes | None = None) -> bytes:
    fmt = serialization.PrivateFormat.PKCS8
    if not pkcs8:
        fmt = serialization.PrivateFormat.TraditionalOpenSSL  # SEC1 for EC, PKCS#1 for RSA
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def key_der(key: PrivateKey, *, pkcs8: bool = True) -> bytes:
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())


def rsa_der_with_bad_coefficient(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 DER of `key` with its CRT coefficient (qInv) off by one: still the key (its public
    numbers are intact), but cryptography's checking load refuses it. Encoded by asn1crypto."""
    from asn1crypto import keys as asn1_keys  # noqa: PLC0415 - only two tests need it

    n = key.private_numbers()
    der: bytes = asn1_keys.RSAPrivateKey(
        {
            "version": 0,
            "modulus": n.public_numbers.n,
            "public_exponent": n.public_numbers.e,
            "private_exponent": n.d,
            "prime1": n.p,
            "prime2": n.q,
            "exponent1": n.dmp1,
            "exponent2": n.dmq1,
            "coefficient": n.iqmp + 1,
        }
    ).dump()
    return der


@dataclass(frozen=True)
class DevicePki:
    """A broker CA, a separate device CA, a device certificate and its key (as AWS IoT does)."""

    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    device_ca_key: ec.EllipticCurvePrivateKey
    device_ca_cert: x509.Certificate
    device_key: ec.EllipticCurvePrivateKey
    device_cert: x509.Certificate


def device_pki(*, same_ca: bool = True) -> DevicePki:
    ca_key = ec_key()
    ca_cert = make_cert("provguard test root CA", ca_key, ca=True)
    if same_ca:
        device_ca_key, device_ca_cert = ca_key, ca_cert
    else:
        device_ca_key = ec_key()
        device_ca_cert = make_cert("provguard test device CA", device_ca_key, ca=True)
    device_key = ec_key()
    device_cert = make_cert(
        "nrf-352656100000000", device_key, issuer=(device_ca_cert, device_ca_key)
    )
    return DevicePki(ca_key, ca_cert, device_ca_key, device_ca_cert, device_key, device_cert)


def secret_fragments(key: PrivateKey) -> list[str]:
    """Pieces of a key's encodings that must never appear in any output."""
    pieces: list[str] = []
    for pkcs8 in (True, False):
        der = key_der(key, pkcs8=pkcs8)
        body = base64.b64encode(der).decode()
        pieces += [body[i : i + 24] for i in range(0, len(body) - 24, 24)]
        pieces.append(der.hex()[40:80])
    if isinstance(key, ec.EllipticCurvePrivateKey):
        pieces.append(f"{key.private_numbers().private_value:064x}"[:32])
    return pieces


def assert_no_key_material(text: str, key: PrivateKey) -> None:
    leaked = [p for p in secret_fragments(key) if p in text or p.lower() in text.lower()]
    assert not leaked, "key material appeared in output"


def write_credential_files(directory: Path, pki: DevicePki) -> dict[str, Path]:
    """ca.pem, client.pem and client.key of `pki` in `directory`, keyed like the CLI options."""
    paths = {
        "ca": directory / "ca.pem",
        "cert": directory / "client.pem",
        "key": directory / "client.key",
    }
    paths["ca"].write_bytes(cert_pem(pki.ca_cert))
    paths["cert"].write_bytes(cert_pem(pki.device_cert))
    paths["key"].write_bytes(key_pem(pki.device_key))
    return paths


def spki_fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    """How provguard names a key in every report: SHA256: and the hex digest of its public key's
    DER SubjectPublicKeyInfo, computed here from `cryptography` alone."""
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + hashlib.sha256(spki).hexdigest()
