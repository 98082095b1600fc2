"""What `provguard check` says about a certificate whose signature does not verify, for each kind of
damage: the exact sentence a user reads, so they know whether to download the file again or ask
for another certificate.

Found by `make mutation MODULE=credentials`: mutants of `_signature_damage` and
`_check_self_signature` (the range test of ECDSA's r and s, the RSA digest comparison, the
inner/outer algorithm test) passed every other test. Each damaged certificate is rebuilt here from
its three DER parts with a changed signature or algorithm; the curve orders are the published ones
(SEC 2), confirmed in the test by `cryptography` refusing them as a private value.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from provguard.credentials import CheckReport, CredentialFile, CredentialSet, Slot, check
from tests import factories as f

#: SEC 2 (v2, 2010) group orders n of secp256r1 and secp384r1.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
    "581A0DB248B0A77AECEC196ACCC52973",
    16,
)
ORDERS = {"secp256r1": P256_ORDER, "secp384r1": P384_ORDER}
#: Made once when the module is imported, not in every process that runs a test.
RSA_2048 = f.rsa_key(2048)

ECDSA_SHA256 = bytes.fromhex("2a8648ce3d040302")  # 1.2.840.10045.4.3.2
ECDSA_SHA384 = bytes.fromhex("2a8648ce3d040303")  # 1.2.840.10045.4.3.3

ROOT_INTRO = "the root's self-signature does not verify, so this is not the genuine certificate: "
ROOT_ADVICE = (
    ". The modem does not check a root's signature and would accept it, but a genuine root always "
    "verifies: download it again from its publisher"
)
OUT_OF_RANGE = "the signature value (signatureValue) is damaged: r or s is out of range"
EITHER = (
    "either the signature bytes (signatureValue) or the signed part (tbsCertificate) was altered"
)
NOT_ECDSA = "the signature value (signatureValue) is damaged: it is no valid ECDSA (r, s) encoding"
NOT_PKCS1 = (
    "the signature value (the last field, signatureValue) is damaged: it is no valid RSA PKCS#1 "
    "v1.5 signature"
)
TBS_CHANGED = (
    "the signature itself is intact, but the signed part (tbsCertificate: subject, validity, "
    "public key or extensions) was changed after signing"
)
NO_MATCH = "the signature does not match the signed content"


# --- DER, by hand: a certificate is SEQUENCE { tbsCertificate, signatureAlgorithm, BIT STRING } --


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _elements(der: bytes) -> list[bytes]:
    """The encoded elements inside the outer SEQUENCE of `der`."""

    def header(at: int) -> tuple[int, int]:  # (content start, content end)
        first = der[at + 1]
        if first < 0x80:
            return at + 2, at + 2 + first
        count = first & 0x7F
        size = int.from_bytes(der[at + 2 : at + 2 + count], "big")
        return at + 2 + count, at + 2 + count + size

    start, end = header(0)
    found = []
    while start < end:
        _, stop = header(start)
        found.append(der[start:stop])
        start = stop
    return found


def with_signature(
    cert: x509.Certificate, signature: bytes, *, algorithm: bytes | None = None
) -> bytes:
    tbs, alg, _ = _elements(f.cert_der(cert))
    return _tlv(0x30, tbs + (algorithm or alg) + _tlv(0x03, b"\x00" + signature))


def ecdsa_value(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        return _tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))

    return _tlv(0x30, integer(r) + integer(s))


def ca_report(der: bytes, name: str = "ca.der") -> CheckReport:
    return check(CredentialSet(CredentialFile(Slot.CA, name, der), None, None), 24)


def said(report: CheckReport, code: str) -> list[str]:
    return [str(p) for p in report.problems if p.code == code]


def root_error(cn: str, damage: str, name: str = "ca.der") -> str:
    return f"{name}: error: CN={cn}: {ROOT_INTRO}{damage}{ROOT_ADVICE} [ca-signature-invalid]"


@pytest.fixture(scope="module")
def ec_roots() -> dict[str, x509.Certificate]:
    return {
        "secp256r1": f.make_cert("P-256 root", f.ec_key(ec.SECP256R1()), ca=True),
        "secp384r1": f.make_cert("P-384 root", f.ec_key(ec.SECP384R1()), ca=True),
        "secp256k1": f.make_cert("k1 root", f.ec_key(ec.SECP256K1()), ca=True),
    }


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=lambda c: c.name)
def test_the_curve_orders_are_the_groups_orders(curve: ec.EllipticCurve) -> None:
    order = ORDERS[curve.name]
    ec.derive_private_key(order - 1, curve)  # the largest private value
    with pytest.raises(ValueError, match="out of range"):
        ec.derive_private_key(order, curve)


# --- ECDSA roots ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("curve", "r", "s", "damage"),
    [
        ("secp256r1", 0, 5, OUT_OF_RANGE),
        ("secp256r1", 5, 0, OUT_OF_RANGE),
        ("secp256r1", P256_ORDER, 5, OUT_OF_RANGE),
        ("secp256r1", 5, P256_ORDER, OUT_OF_RANGE),
        ("secp256r1", 1, 1, EITHER),
        ("secp256r1", P256_ORDER - 1, P256_ORDER - 1, EITHER),
        ("secp384r1", P384_ORDER, 5, OUT_OF_RANGE),
        ("secp384r1", 5, P384_ORDER, OUT_OF_RANGE),
        ("secp384r1", P384_ORDER - 1, P384_ORDER - 1, EITHER),
        ("secp384r1", P256_ORDER, P256_ORDER, EITHER),  # in range on P-384
        # No order known for this curve: the range is not judged.
        ("secp256k1", 0, 0, EITHER),
    ],
    ids=[
        "r0", "s0", "r=n", "s=n", "r=s=1", "r=s=n-1",
        "p384-r=n", "p384-s=n", "p384-n-1", "p384-p256n", "k1-zero",
    ],
)  # fmt: skip
def test_an_ecdsa_root_with_a_changed_signature_says_which_kind(
    ec_roots: dict[str, x509.Certificate], curve: str, r: int, s: int, damage: str
) -> None:
    root = ec_roots[curve]
    report = ca_report(with_signature(root, ecdsa_value(r, s)))
    cn = root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert said(report, "ca-signature-invalid") == [root_error(str(cn), damage)]
    assert not report.ok


def test_an_ecdsa_signature_that_is_no_r_s_pair_is_named_as_such(
    ec_roots: dict[str, x509.Certificate],
) -> None:
    report = ca_report(with_signature(ec_roots["secp256r1"], b"\x01\x02\x03"))
    assert said(report, "ca-signature-invalid") == [root_error("P-256 root", NOT_ECDSA)]


def test_a_changed_outer_signature_algorithm_is_told_from_a_changed_signature(
    ec_roots: dict[str, x509.Certificate],
) -> None:
    root = ec_roots["secp256r1"]
    _, algorithm, _ = _elements(f.cert_der(root))
    assert ECDSA_SHA256 in algorithm
    signature = root.signature  # untouched
    der = with_signature(root, signature, algorithm=algorithm.replace(ECDSA_SHA256, ECDSA_SHA384))
    assert said(ca_report(der, "ca.pem.der"), "ca-signature-invalid") == [
        "ca.pem.der: error: CN=P-256 root: the signature algorithm inside the signed part "
        "(tbsCertificate) differs from the one beside the signature (signatureAlgorithm): RFC "
        "5280 requires them equal, so the certificate was altered; download it again from its "
        "publisher [ca-signature-invalid]"
    ]


def test_an_intact_root_says_nothing_about_its_signature(
    ec_roots: dict[str, x509.Certificate],
) -> None:
    root = ec_roots["secp384r1"]
    report = ca_report(with_signature(root, root.signature))
    assert [p.code for p in report.problems if "signature" in p.code] == []


# --- RSA roots ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_root() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    return f.make_cert("RSA root", RSA_2048, ca=True), RSA_2048


def _pkcs1_signature(key: rsa.RSAPrivateKey, digest_info: bytes) -> bytes:
    """Raw RSA over an EMSA-PKCS1-v1_5 block (RFC 8017 9.2) holding `digest_info`."""
    size = key.key_size // 8
    block = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    numbers = key.private_numbers()
    value = pow(int.from_bytes(block, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(size, "big")


#: DigestInfo prefixes (RFC 8017 9.2 note 1): SHA-256 and, for a wrong one, SHA3-256.
SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
SHA3_256_INFO = bytes.fromhex("3031300d060960864801650304020805000420")


def test_an_rsa_signature_made_over_this_content_verifies_when_built_by_hand(
    rsa_root: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    """The hand-made signature of the next tests is right when its DigestInfo is."""
    root, key = rsa_root
    digest = hashlib.sha256(root.tbs_certificate_bytes).digest()
    report = ca_report(with_signature(root, _pkcs1_signature(key, SHA256_INFO + digest)))
    assert said(report, "ca-signature-invalid") == []


def test_an_rsa_signature_over_the_right_digest_in_a_wrong_digest_info(
    rsa_root: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    root, key = rsa_root
    digest = hashlib.sha256(root.tbs_certificate_bytes).digest()
    report = ca_report(with_signature(root, _pkcs1_signature(key, SHA3_256_INFO + digest)))
    assert said(report, "ca-signature-invalid") == [root_error("RSA root", NO_MATCH)]


def test_an_rsa_signature_over_other_content_says_the_signed_part_changed(
    rsa_root: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    root, key = rsa_root
    digest = hashlib.sha256(root.tbs_certificate_bytes + b"x").digest()
    report = ca_report(with_signature(root, _pkcs1_signature(key, SHA256_INFO + digest)))
    assert said(report, "ca-signature-invalid") == [root_error("RSA root", TBS_CHANGED)]


@pytest.mark.parametrize(
    "signature",
    [b"\x01" * 256, b"\x00" * 255 + b"\x07", b"\xff" * 257],
    ids=["ones", "small", "longer-than-modulus"],
)
def test_an_rsa_signature_value_that_is_no_pkcs1_block(
    rsa_root: tuple[x509.Certificate, rsa.RSAPrivateKey], signature: bytes
) -> None:
    root, _ = rsa_root
    report = ca_report(with_signature(root, signature))
    assert said(report, "ca-signature-invalid") == [root_error("RSA root", NOT_PKCS1)]


# --- roots the modem cannot use, and roots whose signature cannot be checked ------------------


def test_an_ed25519_root_with_a_zeroed_signature_has_no_finer_diagnosis() -> None:
    root = f.make_cert("Edwards root", ed25519.Ed25519PrivateKey.generate(), ca=True)
    report = ca_report(with_signature(root, b"\x00" * 64))
    assert said(report, "ca-signature-invalid") == [root_error("Edwards root", NO_MATCH)]


def _self_named(public_key: object, signer: f.PrivateKey) -> x509.Certificate:
    """A certificate naming itself as issuer, for `public_key`, but signed by `signer`."""
    return (
        x509.CertificateBuilder()
        .subject_name(f.name("Odd root"))
        .issuer_name(f.name("Odd root"))
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(1)
        .not_valid_before(f.NOW - dt.timedelta(days=1))
        .not_valid_after(f.NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("public_key", "signer", "exception"),
    [
        (lambda: x25519.X25519PrivateKey.generate().public_key(), f.ec_key, "TypeError"),
        (lambda: f.ec_key().public_key(), lambda: RSA_2048, "ValueError"),
    ],
    ids=["x25519-key", "ec-key-rsa-signature"],
)
def test_a_self_signature_that_cannot_be_checked_is_a_warning_naming_why(
    public_key: object, signer: object, exception: str
) -> None:
    root = _self_named(public_key(), signer())  # type: ignore[operator]
    report = ca_report(f.cert_pem(root), "odd.pem")
    assert said(report, "ca-signature-unchecked") == [
        f"odd.pem:1: warning: CN=Odd root: the self-signature could not be checked ({exception}) "
        "[ca-signature-unchecked]"
    ]
    assert said(report, "ca-signature-invalid") == []


# --- a client certificate whose issuer's signature fails -----------------------------------


def client_report(ca: x509.Certificate | list[x509.Certificate], cert: bytes) -> CheckReport:
    cas = ca if isinstance(ca, list) else [ca]
    return check(
        CredentialSet(
            CredentialFile(Slot.CA, "ca.pem", b"".join(f.cert_pem(c) for c in cas)),
            CredentialFile(Slot.CERT, "client.der", cert),
            None,
        ),
        24,
    )


def client_error(cause: str) -> str:
    return (
        "client.der: error: CN=device names CN=Device CA as issuer, but the signature does not "
        f"verify with that CA's key: {cause} [cert-signature-invalid]"
    )


@pytest.fixture(scope="module")
def device_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = f.ec_key()
    return f.make_cert("Device CA", key, ca=True), key


@pytest.mark.parametrize(
    ("r", "s", "cause"),
    [(0, 1, OUT_OF_RANGE), (1, P256_ORDER, OUT_OF_RANGE), (2, 3, EITHER)],
    ids=["r0", "s=n", "in-range"],
)
def test_a_client_certificate_with_a_changed_signature_says_which_kind(
    device_ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], r: int, s: int, cause: str
) -> None:
    ca, ca_key = device_ca
    device = f.make_cert("device", f.ec_key(), issuer=(ca, ca_key))
    report = client_report(ca, with_signature(device, ecdsa_value(r, s)))
    assert said(report, "cert-signature-invalid") == [client_error(cause)]
    assert not report.ok


def test_an_rsa_ca_and_a_client_certificate_changed_after_signing() -> None:
    ca_key = RSA_2048
    ca = f.make_cert("Device CA", ca_key, ca=True)
    device = f.make_cert("device", f.ec_key(), issuer=(ca, ca_key))
    digest = hashlib.sha256(device.tbs_certificate_bytes + b"changed").digest()
    report = client_report(
        ca, with_signature(device, _pkcs1_signature(ca_key, SHA256_INFO + digest))
    )
    assert said(report, "cert-signature-invalid") == [client_error(TBS_CHANGED)]


def test_the_second_ca_of_the_same_name_that_really_issued_it_is_accepted(
    device_ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    ca, ca_key = device_ca
    namesake = f.make_cert("Device CA", f.ec_key(), ca=True)
    device = f.make_cert("device", f.ec_key(), issuer=(ca, ca_key))
    report = client_report([namesake, ca], f.cert_der(device))
    assert said(report, "cert-signature-invalid") == []
    assert said(report, "cert-other-issuer") == []
    # Only the first one tried: the one that did not sign it.
    report = client_report([namesake], f.cert_der(device))
    assert said(report, "cert-signature-invalid") == [client_error(EITHER)]


def test_a_pem_root_names_the_line_of_its_block(ec_roots: dict[str, x509.Certificate]) -> None:
    root = ec_roots["secp256r1"]
    damaged = x509.load_der_x509_certificate(with_signature(root, ecdsa_value(0, 1)))
    report = ca_report(f.cert_pem(root) + f.cert_pem(damaged), "roots.pem")
    second = f.cert_pem(root).count(b"\n") + 1  # the BEGIN line of the second block
    assert said(report, "ca-signature-invalid") == [
        f"roots.pem:{second}: error: CN=P-256 root: {ROOT_INTRO}{OUT_OF_RANGE}{ROOT_ADVICE} "
        "[ca-signature-invalid]"
    ]
    _, algorithm, _ = _elements(f.cert_der(root))
    swapped = with_signature(
        root, root.signature, algorithm=algorithm.replace(ECDSA_SHA256, ECDSA_SHA384)
    )
    report = ca_report(f.cert_pem(x509.load_der_x509_certificate(swapped)), "ca.pem")
    (line,) = said(report, "ca-signature-invalid")
    assert line.startswith("ca.pem:1: error: CN=P-256 root: the signature algorithm inside")
