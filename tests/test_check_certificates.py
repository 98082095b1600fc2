"""What `provguard check` tells a user about the CA and client certificates themselves, and about
the whole set: the exact line for each rule, the 4 kB limit to the byte, and the summary lines.

Found by `make mutation MODULE=credentials`: mutants of the client-certificate checks (CA flag,
extendedKeyUsage, SHA-1 signatures, the issuer and its key identifiers, the key match), of the CA
checks (v1 roots, intermediates) and of the size limit passed every other test. Expected lines are
written out here; fingerprints are computed in the test from `cryptography`'s DER encodings.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from provguard.credentials import CheckReport, CredentialFile, CredentialSet, Slot, check
from tests import factories as f
from tests.test_check_signatures import _elements, _tlv

UTC = dt.timezone.utc
START = dt.datetime(2030, 1, 1, tzinfo=UTC)
END = dt.datetime(2031, 1, 1, tzinfo=UTC)
INSIDE = dt.datetime(2030, 6, 1, tzinfo=UTC)
DER = serialization.Encoding.DER
#: Made once when the module is imported, not in every process that runs a test.
RSA_1024, RSA_2048 = f.rsa_key(1024), f.rsa_key(2048)


def said(report: CheckReport, code: str) -> list[str]:
    return [str(p) for p in report.problems if p.code == code]


def creds(ca: bytes | None, cert: bytes | None = None, key: bytes | None = None) -> CredentialSet:
    return CredentialSet(
        CredentialFile(Slot.CA, "ca.pem", ca) if ca is not None else None,
        CredentialFile(Slot.CERT, "client.pem", cert) if cert is not None else None,
        CredentialFile(Slot.KEY, "client.key", key) if key is not None else None,
    )


def spki_fingerprint(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def build(
    subject: str,
    key: f.PrivateKey,
    *,
    issuer: tuple[str, f.PrivateKey] | None = None,
    extensions: tuple[x509.ExtensionType, ...] = (),
) -> x509.Certificate:
    issuer_name, signer = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(f.name(subject))
        .issuer_name(f.name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(END)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


CA_TRUE = x509.BasicConstraints(ca=True, path_length=None)
CA_FALSE = x509.BasicConstraints(ca=False, path_length=None)


@pytest.fixture(scope="module")
def root() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = f.ec_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return build("Root", key, extensions=(CA_TRUE, ski)), key


# --- the client certificate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        ((CA_FALSE,), {}),
        ((), {}),
        ((CA_TRUE,), {"cert-is-ca": [
            "client.pem:1: warning: CN=device is a CA certificate; the client certificate slot "
            "expects the device's own certificate [cert-is-ca]"]}),
        ((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),), {"cert-no-client-auth": [
            "client.pem:1: warning: CN=device: extendedKeyUsage lacks clientAuth: brokers that "
            "check it will refuse the device [cert-no-client-auth]"]}),
        ((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                 ExtendedKeyUsageOID.CLIENT_AUTH]),), {}),
    ],
    ids=["not-ca", "no-constraints", "ca", "server-only", "client-and-server"],
)  # fmt: skip
def test_the_client_certificates_own_rules(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    extensions: tuple[x509.ExtensionType, ...],
    expected: dict[str, list[str]],
) -> None:
    ca, ca_key = root
    key = f.ec_key()
    device = build("device", key, issuer=("Root", ca_key), extensions=extensions)
    report = check(creds(f.cert_pem(ca), f.cert_pem(device), f.key_pem(key)), 24, now=INSIDE)
    for code in ("cert-is-ca", "cert-no-client-auth"):
        assert said(report, code) == expected.get(code, [])
    others = [p for p in report.problems if p.code not in {"cert-is-ca", "cert-no-client-auth"}]
    assert others == []
    assert report.ok


def _signed_with_rsa_and(
    hash_oid_arc: int,
    algorithm: hashes.HashAlgorithm,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
) -> bytes:
    """`cert` (signed sha256WithRSAEncryption, 1.2.840.113549.1.1.11) signed again with another
    PKCS #1 algorithm 1.2.840.113549.1.1.<arc>, which cryptography's builder no longer makes."""
    sha256_rsa = bytes.fromhex("2a864886f70d01010b")
    other = sha256_rsa[:-1] + bytes([hash_oid_arc])
    tbs, alg, _ = _elements(f.cert_der(cert))
    tbs, alg = tbs.replace(sha256_rsa, other), alg.replace(sha256_rsa, other)
    signature = key.sign(tbs, padding.PKCS1v15(), algorithm)
    return _tlv(0x30, tbs + alg + _tlv(0x03, b"\x00" + signature))


@pytest.mark.parametrize(
    ("arc", "algorithm", "expected"),
    [
        (5, hashes.SHA1(),  # noqa: S303 - the weak hash is what is tested
         ["client.der: warning: CN=device is signed with SHA1: brokers "
                            "increasingly refuse it [cert-weak-signature]"]),
        (4, hashes.MD5(), ["client.der: warning: CN=device is signed with MD5: brokers "  # noqa: S303
                           "increasingly refuse it [cert-weak-signature]"]),
        (14, hashes.SHA224(), []),
    ],
    ids=["sha1", "md5", "sha224"],
)  # fmt: skip
def test_a_client_certificate_signed_with_sha1_is_a_warning(
    arc: int, algorithm: hashes.HashAlgorithm, expected: list[str]
) -> None:
    ca_key = RSA_2048
    device = build("device", f.ec_key(), issuer=("Other CA", ca_key))
    der = _signed_with_rsa_and(arc, algorithm, device, ca_key)
    assert x509.load_der_x509_certificate(der).signature_hash_algorithm.name == algorithm.name  # type: ignore[union-attr]
    report = check(
        CredentialSet(None, CredentialFile(Slot.CERT, "client.der", der), None), 24, now=INSIDE
    )
    assert said(report, "cert-weak-signature") == expected
    pem = f.cert_pem(x509.load_der_x509_certificate(der))
    report = check(CredentialSet(None, CredentialFile(Slot.CERT, "c.pem", pem), None), 24)
    shown = [line.replace("client.der:", "c.pem:1:") for line in expected]
    assert said(report, "cert-weak-signature") == shown


def test_a_weak_rsa_client_certificate_is_named_by_its_file_and_line(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    ca, ca_key = root
    key = RSA_1024
    device = build("device", key, issuer=("Root", ca_key))
    report = check(creds(f.cert_pem(ca), f.cert_pem(device), f.key_pem(key)), 24, now=INSIDE)
    assert said(report, "key-weak") == [
        "client.pem:1: warning: the client certificate's key is RSA-1024: use 2048 bits or more "
        "[key-weak]",
        "client.key: warning: the private key is RSA-1024: use 2048 bits or more [key-weak]",
    ]


def test_only_the_first_certificate_of_the_client_file_is_the_devices(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    ca, ca_key = root
    key = f.ec_key()
    device = build("device", key, issuer=("Root", ca_key), extensions=(CA_FALSE,))
    # The chain after it (here the root itself, a CA) is not judged as the device's certificate.
    report = check(
        creds(f.cert_pem(ca), f.cert_pem(device) + f.cert_pem(ca), f.key_pem(key)), 24, now=INSIDE
    )
    assert report.problems == ()


def test_a_key_that_does_not_belong_to_the_certificate_names_both_public_keys(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    ca, ca_key = root
    key, other = f.ec_key(), f.ec_key()
    device = build("device", key, issuer=("Root", ca_key))
    report = check(creds(f.cert_pem(ca), f.cert_pem(device), f.key_pem(other)), 24, now=INSIDE)
    assert said(report, "key-mismatch") == [
        f"client.key: error: this private key (public key {spki_fingerprint(other)}) does not "
        f"belong to the client certificate client.pem (public key {spki_fingerprint(key)}): the "
        "TLS handshake would fail [key-mismatch]"
    ]
    assert not report.ok


def test_a_certificate_from_another_issuer_says_the_broker_must_trust_it(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    ca, _ = root
    key = f.ec_key()
    device = build("device", key, issuer=("Device CA", f.ec_key()))
    report = check(creds(f.cert_pem(ca), f.cert_pem(device), f.key_pem(key)), 24, now=INSIDE)
    assert said(report, "cert-other-issuer") == [
        "client.pem:1: info: issued by CN=Device CA, not by the CA in the CA slot: normal when "
        "the broker's CA differs from the device CA (as with AWS IoT); the broker must trust "
        "that issuer [cert-other-issuer]"
    ]
    assert report.ok


# --- a client certificate naming the CA but not signed by its key --------------------------------

ANOTHER_CA = (
    "client.pem:1: error: CN=device names CN=Root as issuer, but the signature does not verify "
    "with that CA's key: it was issued by another CA with the same name (its authority key "
    "identifier does not match this CA's key): use the CA that issued it, or issue it again "
    "[cert-signature-invalid]"
)
ALTERED = (
    "client.pem:1: error: CN=device names CN=Root as issuer, but the signature does not verify "
    "with that CA's key: either the signature bytes (signatureValue) or the signed part "
    "(tbsCertificate) was altered [cert-signature-invalid]"
)


def _aki(key: ec.EllipticCurvePrivateKey) -> x509.AuthorityKeyIdentifier:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


@pytest.mark.parametrize(
    ("aki", "ca_has_ski", "expected"),
    [
        ("impostor", True, ANOTHER_CA),
        ("root", True, ALTERED),  # it names the right key: then the signature itself is wrong
        ("issuer-and-serial", True, ALTERED),  # no key identifier to compare
        ("none", True, ALTERED),
        ("impostor", False, ALTERED),  # nothing to compare it with
    ],
    ids=["other-key", "same-key", "no-key-id", "no-aki", "ca-without-ski"],
)
def test_a_certificate_from_a_namesake_ca_is_told_from_a_damaged_one(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    aki: str,
    ca_has_ski: bool,
    expected: str,
) -> None:
    ca, ca_key = root
    if not ca_has_ski:
        ca = build("Root", ca_key, extensions=(CA_TRUE,))
    impostor = f.ec_key()  # signs as "Root" without being that root
    identifiers = {
        "impostor": (_aki(impostor),),
        "root": (_aki(ca_key),),
        "issuer-and-serial": (
            x509.AuthorityKeyIdentifier(None, [x509.DirectoryName(f.name("Root"))], 1),
        ),
        "none": (),
    }[aki]
    key = f.ec_key()
    device = build("device", key, issuer=("Root", impostor), extensions=identifiers)
    report = check(creds(f.cert_pem(ca), f.cert_pem(device), f.key_pem(key)), 24, now=INSIDE)
    assert said(report, "cert-signature-invalid") == [expected]


# --- the CA slot --------------------------------------------------------------------------------


def test_an_intermediate_in_the_ca_slot_works_and_is_said(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    _, root_key = root
    intermediate = build(
        "Intermediate", f.ec_key(), issuer=("Root", root_key), extensions=(CA_TRUE,)
    )
    report = check(creds(f.cert_pem(intermediate)), 24, now=INSIDE)
    assert said(report, "ca-not-root") == [
        "ca.pem:1: info: CN=Intermediate is an intermediate CA (issued by CN=Root); the modem "
        "trusts it as an anchor, so this works, but a root is the usual choice [ca-not-root]"
    ]
    assert [p.code for p in report.problems] == ["ca-not-root"]


NOT_CA = (
    "ca.pem:1: error: CN={cn} is not a CA certificate (basicConstraints CA:TRUE missing): the CA "
    "slot needs the root CA that signed the broker's certificate, not the broker's or the "
    "device's own certificate [ca-not-ca]"
)


def _v1(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str | None = None) -> bytes:
    """An X.509 v1 certificate: a v3 one without its version [0] and extensions [3], signed
    again over the shortened tbsCertificate (cryptography's builder makes v3 only)."""
    v3 = build(subject, key, issuer=(issuer, f.ec_key()) if issuer else None)
    tbs, alg, _ = _elements(f.cert_der(v3))
    fields = _elements(tbs)
    assert fields[0][:1] == b"\xa0"  # [0] version
    body = b"".join(field for field in fields[1:] if field[:1] != b"\xa3")
    tbs = _tlv(0x30, body)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, tbs + alg + _tlv(0x03, b"\x00" + signature))


def test_a_v1_root_without_constraints_is_only_a_warning() -> None:
    der = _v1("Old root", f.ec_key())
    assert x509.load_der_x509_certificate(der).version is x509.Version.v1
    report = check(creds(f.cert_pem(x509.load_der_x509_certificate(der))), 24, now=INSIDE)
    assert said(report, "ca-v1") == [
        "ca.pem:1: warning: CN=Old root is a v1 root without basicConstraints [ca-v1]"
    ]
    assert said(report, "ca-not-ca") == []
    assert said(report, "ca-signature-invalid") == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: f.cert_pem(build("leaf", f.ec_key(), extensions=(CA_FALSE,))),  # v3, CA:FALSE
        lambda: f.cert_pem(build("leaf", f.ec_key())),  # v3 without basicConstraints
        lambda: f.cert_pem(x509.load_der_x509_certificate(_v1("leaf", f.ec_key(), "Some CA"))),
    ],
    ids=["ca-false", "v3-no-constraints", "v1-not-self-issued"],
)
def test_a_certificate_that_is_no_ca_in_the_ca_slot(make: object) -> None:
    report = check(creds(make()), 24, now=INSIDE)  # type: ignore[operator]
    assert said(report, "ca-not-ca") == [NOT_CA.format(cn="leaf")]
    assert said(report, "ca-v1") == []
    assert said(report, "ca-not-root") == []  # before, a leaf from a CA was "an intermediate CA"


# --- the modem's 4 kB limit, to the byte --------------------------------------------------------

LIMIT = 4096 - 128  # the AT host's buffer less the framing of AT%CMNG (README, nRF91 facts)


def _ca_file_of(size: int) -> bytes:
    """Normalised PEM (LF, nothing around) of three roots, padded to `size` bytes with a header
    line on the first block, which is stored as written."""
    roots = b"".join(f.cert_pem(f.make_cert(f"root {i}", f.ec_key(), ca=True)) for i in range(3))
    first_newline = roots.index(b"\n") + 1
    fixed = len(roots) + len("Comment: \n\n")
    assert fixed < size
    header = b"Comment: " + b"x" * (size - fixed) + b"\n\n"
    data = roots[:first_newline] + header + roots[first_newline:]
    assert len(data) == size
    return data


@pytest.mark.parametrize(("size", "too_large"), [(LIMIT, False), (LIMIT + 1, True)])
def test_the_size_limit_to_the_byte(size: int, too_large: bool) -> None:
    data = _ca_file_of(size)
    report = check(creds(data), 24)
    assert report.contents[Slot.CA] == data
    expected = [
        f"ca.pem: error: {size} bytes after normalisation: over the modem's 4 kB limit per "
        "credential (3968 bytes once the AT framing is counted); remove certificates the device "
        "does not need (the CA slot needs only the root that signed the broker's chain) "
        "[too-large]"
    ]
    assert said(report, "too-large") == (expected if too_large else [])
    assert report.ok is not too_large


# --- the summary lines --------------------------------------------------------------------------


def _cert_fingerprint(cert: x509.Certificate) -> str:
    return "SHA256:" + hashlib.sha256(cert.public_bytes(DER)).hexdigest()


def test_the_summaries_name_subject_key_validity_fingerprint_and_size() -> None:
    ca_key = f.ec_key(ec.SECP384R1())
    ca = build("Root 384", ca_key, extensions=(CA_TRUE,))
    second = build("Second root", RSA_2048, extensions=(CA_TRUE,))
    key = f.ec_key()
    device = build("device", key, issuer=("Root 384", ca_key))
    ca_pem = f.cert_pem(ca) + f.cert_pem(second)
    report = check(creds(ca_pem, f.cert_pem(device), f.key_pem(key)), 24, now=INSIDE)
    assert dict(report.summaries) == {
        Slot.CA: f"CN=Root 384, EC P-384, valid until 2031-01-01, {_cert_fingerprint(ca)} "
        f"(+1 more), {len(ca_pem)} bytes",
        Slot.CERT: f"CN=device, EC P-256, valid until 2031-01-01, {_cert_fingerprint(device)}, "
        f"{len(f.cert_pem(device))} bytes",
        Slot.KEY: f"EC P-256, public key {spki_fingerprint(key)}, {len(f.key_pem(key))} bytes",
    }


@pytest.mark.parametrize(
    ("key", "described"),
    [
        (lambda: RSA_2048, "RSA-2048"),
        (lambda: f.ec_key(ec.SECP256K1()), "EC secp256k1"),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
    ],
    ids=["rsa", "k1", "ed25519"],
)
def test_the_key_summary_names_the_key_type(key: object, described: str) -> None:
    private = key()  # type: ignore[operator]
    report = check(creds(None, None, f.key_pem(private)), 24)
    assert report.summaries[Slot.KEY].startswith(f"{described}, public key SHA256:")
    assert Slot.CA not in report.summaries
