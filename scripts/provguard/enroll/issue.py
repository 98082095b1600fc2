"""The device certificate the device CA signs for a CSR, and whether a certificate is its."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import ExtendedKeyUsageOID

from provguard.enroll.inputs import DeviceCa

#: Certificates start a little in the past: a device clock slightly behind still accepts them.
BACKDATE = dt.timedelta(minutes=5)


def issue_certificate(
    ca: DeviceCa,
    csr: x509.CertificateSigningRequest,
    serial: int,
    *,
    days: int,
    at_time: dt.datetime,
) -> x509.Certificate:
    """The device's client certificate: CSR subject and key, clientAuth, SKI/AKI, `days` long."""
    public = csr.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    start = at_time.replace(microsecond=0) - BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(
            min(start + BACKDATE + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def issued_by(cert: x509.Certificate, ca: DeviceCa) -> bool:
    """Signed by the device CA's key (not only naming it as issuer)."""
    if cert.issuer != ca.cert.subject:
        return False
    public = ca.key.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            public.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                ec.ECDSA(cert.signature_hash_algorithm),
            )
        else:
            assert cert.signature_hash_algorithm is not None
            public.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,
            )
    except (InvalidSignature, AssertionError, TypeError, ValueError):
        return False
    return True
