"""The device certificate's profile and the check that a certificate is the device CA's, each
found by a mutant no test killed. Expected values come from the RFCs' rules as the test states
them and from cryptography's own verification, never from provguard.enroll."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from provguard.enroll import DeviceCa, issue_certificate, issued_by
from tests import factories

AT = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
CA_NAME = "provguard test device CA"


def device_ca(
    key: ec.EllipticCurvePrivateKey | None = None, *, ski: bytes | None = None
) -> DeviceCa:
    """A device CA valid around AT; `ski`: its Subject Key Identifier, when it has one."""
    key = key or factories.ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(factories.name(CA_NAME))
        .issuer_name(factories.name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(AT - dt.timedelta(days=30))
        .not_valid_after(AT + dt.timedelta(days=100))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if ski is not None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return DeviceCa(cert, key, "dca.pem", "dca.key", "SHA256:test")


def rsa_device_ca() -> DeviceCa:
    key = factories.rsa_key()
    cert = factories.make_cert(CA_NAME, key, ca=True)
    return DeviceCa(cert, key, "dca.pem", "dca.key", "SHA256:test")


def csr_for(key: ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(factories.name("352656100000001"))
        .sign(key, hashes.SHA256())
    )


def key_id(public: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bit string (the uncompressed
    point of an EC key)."""
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return hashlib.sha1(point).digest()  # noqa: S324 - the identifier RFC 5280 defines


def test_the_device_certificate_has_the_client_profile() -> None:
    ca = device_ca()
    device_key = factories.ec_key()
    cert = issue_certificate(ca, csr_for(device_key), 4711, days=30, at_time=AT)
    ca.key.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
    )
    assert cert.serial_number == 4711
    assert cert.subject == factories.name("352656100000001")
    assert cert.issuer == ca.cert.subject
    # whole seconds (X.509 time has no fraction), five minutes back for a clock slightly behind
    start = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc) - dt.timedelta(minutes=5)
    assert cert.not_valid_before_utc == start
    assert cert.not_valid_after_utc == start + dt.timedelta(minutes=5, days=30)
    extensions = {e.oid: e for e in cert.extensions}
    basic = extensions[x509.BasicConstraints.oid]
    assert (basic.critical, basic.value.ca, basic.value.path_length) == (True, False, None)
    usage = extensions[x509.KeyUsage.oid]
    assert usage.critical
    assert usage.value == x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=True,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    eku = extensions[x509.ExtendedKeyUsage.oid]
    assert (eku.critical, list(eku.value)) == (False, [ExtendedKeyUsageOID.CLIENT_AUTH])
    ski = extensions[x509.SubjectKeyIdentifier.oid]
    assert (ski.critical, ski.value.digest) == (False, key_id(device_key.public_key()))
    aki = extensions[x509.AuthorityKeyIdentifier.oid]
    assert aki.critical is False
    # a CA without an SKI is identified by its key, computed the same way
    assert aki.value.key_identifier == key_id(ca.key.public_key())
    assert len(cert.extensions) == 5


def test_the_authority_key_identifier_is_the_cas_own_subject_key_identifier() -> None:
    """A CA whose SKI is not the SHA-1 of its key (RFC 7093 allows others): the device
    certificate names the CA by that SKI, or a verifier matching AKI to SKI finds no issuer."""
    ca = device_ca(ski=b"\x01\x02\x03\x04\x05\x06\x07\x08")
    cert = issue_certificate(ca, csr_for(factories.ec_key()), 1, days=30, at_time=AT)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == b"\x01\x02\x03\x04\x05\x06\x07\x08"


def test_the_certificate_ends_no_later_than_the_ca() -> None:
    ca = device_ca()
    cert = issue_certificate(ca, csr_for(factories.ec_key()), 1, days=3650, at_time=AT)
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def forged(ca: DeviceCa, key: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:
    """A certificate that names the device CA as its issuer, signed by another key."""
    impostor = factories.ec_key()
    return factories.make_cert("352656100000001", key or factories.ec_key(), issuer=(
        factories.make_cert(CA_NAME, impostor, ca=True), impostor))  # fmt: skip


@pytest.mark.parametrize("make_ca", [device_ca, rsa_device_ca], ids=["ec", "rsa"])
def test_only_a_certificate_the_ca_signed_is_its(make_ca: object) -> None:
    ca = make_ca()  # type: ignore[operator]
    mine = factories.make_cert("352656100000001", factories.ec_key(), issuer=(ca.cert, ca.key))
    assert issued_by(mine, ca)
    impostor = forged(ca)
    assert impostor.issuer == ca.cert.subject
    assert not issued_by(impostor, ca)
    elsewhere = factories.make_cert("352656100000001", factories.ec_key())  # self-signed
    assert not issued_by(elsewhere, ca)
    # a bit of the signed contents changed after signing: one in the subject's public key
    point = mine.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    der = factories.cert_der(mine)
    changed = x509.load_der_x509_certificate(
        der.replace(point, point[:40] + bytes([point[40] ^ 1]) + point[41:])
    )
    assert changed.tbs_certificate_bytes != mine.tbs_certificate_bytes
    assert not issued_by(changed, ca)
