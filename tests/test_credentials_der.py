"""Binary (DER) credential files and certificates or keys whose DER is damaged: what is stored,
and the sentence a user reads for each kind of damage.

Found by `make mutation MODULE=credentials`: mutants of `_parse_der`, `_key_to_pem`,
`explain_parse_error` and `certificate_damage` passed every other test, and three real faults with
them: a damaged DER file was reported as an "unknown PEM label" (the explanation provguard had
worked out was never shown), a certificate with a duplicated extension ended in a traceback, and a
damaged key was called "an unsupported key type". Expected contents come from `cryptography`'s
own encodings of the same key or certificate; each damage is made here at a known place.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provguard.credentials import (
    CheckReport,
    CredentialFile,
    CredentialSet,
    Slot,
    check,
    load_certificates,
    load_private_key,
)
from provguard.credentials.loading import explain_parse_error
from provguard.errors import InputError
from tests import factories as f

PKI = f.device_pki()
#: Made once when the module is imported, not in every process that runs a test.
RSA_2048 = f.rsa_key(2048)
PEMS = {
    Slot.CA: f.cert_pem(PKI.ca_cert),
    Slot.CERT: f.cert_pem(PKI.device_cert),
    Slot.KEY: f.key_pem(PKI.device_key),
}
NAMES = {Slot.CA: "ca.pem", Slot.CERT: "client.pem", Slot.KEY: "client.key"}
PEM, DER, NONE = (
    serialization.Encoding.PEM,
    serialization.Encoding.DER,
    serialization.NoEncryption(),
)
PKCS8, TRADITIONAL = (
    serialization.PrivateFormat.PKCS8,
    serialization.PrivateFormat.TraditionalOpenSSL,
)


def report_for(slot: Slot, data: bytes, name: str, *, for_modem_write: bool = False) -> CheckReport:
    files = [
        CredentialFile(s, name if s is slot else NAMES[s], data if s is slot else PEMS[s])
        for s in (Slot.CA, Slot.CERT, Slot.KEY)
    ]
    return check(CredentialSet(*files), 24, for_modem_write=for_modem_write)


def told(report: CheckReport, name: str) -> list[str]:
    """Every problem of one file, as printed."""
    return [str(p) for p in report.problems if p.file == name]


def pem_block(label: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"
    ).encode()


CONVERTED = "{name}: info: DER input: converted to PEM for the modem [der-converted]"


# --- DER files that are fine: stored as the PEM of the same object ----------------------------


def _sec1_without_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """RFC 5915 ECPrivateKey with only the optional parameters: version 1, the value, P-256."""
    value = key.private_numbers().private_value.to_bytes(32, "big")
    curve = bytes.fromhex("a00a06082a8648ce3d030107")  # [0] namedCurve 1.2.840.10045.3.1.7
    body = bytes.fromhex("020101") + b"\x04\x20" + value + curve
    return b"\x30" + bytes([len(body)]) + body


@pytest.mark.parametrize(
    ("kind", "der", "stored"),
    [
        ("pkcs8", f.key_der(PKI.device_key), f.key_pem(PKI.device_key)),
        ("sec1", f.key_der(PKI.device_key, pkcs8=False), f.key_pem(PKI.device_key, pkcs8=False)),
        # Neither of cryptography's own encodings gives back these bytes: stored as PKCS#8.
        ("sec1-without-public-key", _sec1_without_public_key(PKI.device_key),
         f.key_pem(PKI.device_key)),
    ],
)  # fmt: skip
def test_a_der_private_key_is_stored_as_pem_in_its_own_format(
    kind: str, der: bytes, stored: bytes
) -> None:
    report = report_for(Slot.KEY, der, "client.der")
    assert told(report, "client.der") == [CONVERTED.format(name="client.der")]
    assert report.contents[Slot.KEY] == stored
    assert report.ok


def test_a_der_rsa_key_in_pkcs1_stays_pkcs1() -> None:
    key = RSA_2048
    cert = f.make_cert("rsa device", key, issuer=(PKI.ca_cert, PKI.ca_key))
    der = key.private_bytes(DER, TRADITIONAL, NONE)
    creds = CredentialSet(
        CredentialFile(Slot.CA, "ca.pem", PEMS[Slot.CA]),
        CredentialFile(Slot.CERT, "client.pem", f.cert_pem(cert)),
        CredentialFile(Slot.KEY, "client.der", der),
    )
    report = check(creds, 24)
    assert report.contents[Slot.KEY] == key.private_bytes(PEM, TRADITIONAL, NONE)
    assert report.contents[Slot.KEY].startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert report.ok


def test_a_der_certificate_is_stored_as_its_pem() -> None:
    report = report_for(Slot.CA, f.cert_der(PKI.ca_cert), "ca.der")
    assert told(report, "ca.der") == [CONVERTED.format(name="ca.der")]
    assert report.contents[Slot.CA] == PKI.ca_cert.public_bytes(PEM)


@pytest.mark.parametrize(
    ("for_modem_write", "expected"),
    [
        (True, "client.der: error: the private key is encrypted: the firmware's write call "
               "takes no password; decrypt it with 'openssl pkey -in KEY -out KEY.plain' "
               "[key-encrypted]"),
        (False, "client.der: warning: the private key is encrypted: only AT%CMNG with its "
                "password can store it, and whether it matches the certificate cannot be checked "
                "[key-encrypted]"),
    ],
)  # fmt: skip
def test_an_encrypted_der_key_is_named_as_encrypted(for_modem_write: bool, expected: str) -> None:
    der = PKI.device_key.private_bytes(
        DER, PKCS8, serialization.BestAvailableEncryption(b"correct horse")
    )
    report = report_for(Slot.KEY, der, "client.der", for_modem_write=for_modem_write)
    assert told(report, "client.der") == [CONVERTED.format(name="client.der"), expected]


def test_an_encrypted_der_key_is_stored_as_the_same_encrypted_pem() -> None:
    der = PKI.device_key.private_bytes(
        DER, PKCS8, serialization.BestAvailableEncryption(b"correct horse")
    )
    report = report_for(Slot.KEY, der, "client.der")
    stored = report.contents[Slot.KEY]
    assert stored.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert stored.endswith(b"\n-----END ENCRYPTED PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in stored.split(b"\n"))
    assert base64.b64decode(b"".join(stored.split(b"\n")[1:-2])) == der
    key = serialization.load_pem_private_key(stored, b"correct horse")
    assert key.private_bytes(DER, PKCS8, NONE) == f.key_der(PKI.device_key)


def _inconsistent_rsa_key() -> bytes:
    """An RSA key whose CRT exponent d mod (p-1) is wrong: it would sign wrongly."""
    n = RSA_2048.private_numbers()
    bad = rsa.RSAPrivateNumbers(n.p, n.q, n.d, n.dmp1 ^ 2, n.dmq1, n.iqmp, n.public_numbers)
    damaged = bad.private_key(unsafe_skip_rsa_key_validation=True)
    return damaged.private_bytes(DER, PKCS8, NONE)


def test_an_inconsistent_rsa_key_is_refused_unless_only_searched_for() -> None:
    der = _inconsistent_rsa_key()
    report = report_for(Slot.KEY, pem_block("PRIVATE KEY", der), "client.key")
    assert told(report, "client.key") == [
        "client.key:1: error: the private key does not parse: the DER does not parse as what "
        "the PEM label says [der-invalid]"
    ]
    report = report_for(Slot.KEY, der, "client.der")
    assert told(report, "client.der") == [
        "client.der: error: binary file that is not a DER certificate or key (the DER structure "
        "is damaged in Certificate.tbs_cert (UnexpectedTag)) [der-invalid]"
    ]
    with pytest.raises(InputError):
        load_private_key(CredentialFile(Slot.KEY, "client.der", der))
    # scan looks for a known key's bytes: it skips the slow consistency check.
    searched = load_private_key(CredentialFile(Slot.KEY, "client.der", der), validate=False)
    assert isinstance(searched, rsa.RSAPrivateKey)
    assert (
        searched.private_numbers().dmp1
        == serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
        .private_numbers()
        .dmp1
    )  # type: ignore[union-attr]


def test_a_der_public_key_and_a_der_csr_are_told_apart() -> None:
    public = PKI.device_key.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    report = report_for(Slot.KEY, public, "client.der")
    assert told(report, "client.der") == [
        "client.der: error: --key: a public key, not a private key: give the private key the "
        "certificate was made for [wrong-slot]"
    ]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(f.name("device"))
        .sign(PKI.device_key, hashes.SHA256())
        .public_bytes(DER)
    )
    report = report_for(Slot.CERT, csr, "client.csr")
    assert told(report, "client.csr") == [
        "client.csr: error: --cert: a certificate signing request (CSR), not a certificate: send "
        "it to your CA and use the certificate it returns [wrong-slot]"
    ]


# --- DER files that are damaged -----------------------------------------------------------------

CA_DER = f.cert_der(PKI.ca_cert)


@pytest.mark.parametrize(
    ("der", "why"),
    [
        (CA_DER[:-10], "the DER is truncated (10 more bytes were expected)"),
        (CA_DER[:-1], "the DER is truncated (1 more bytes were expected)"),
        (CA_DER + b"\x00\x00", "the DER has extra bytes after its end (two objects joined, or "
                               "trailing garbage)"),
        # The tbsCertificate's SEQUENCE tag (0x30) made a SET (0x31).
        (CA_DER[:4] + b"\x31" + CA_DER[5:],
         "the DER structure is damaged in Certificate.tbs_cert (UnexpectedTag)"),
        (b"\x30\x03\x02\x01\x05", "the DER structure is damaged in Certificate.tbs_cert "
                                  "(UnexpectedTag)"),
    ],
    ids=["cut-10", "cut-1", "two-more", "tbs-tag", "integer"],
)  # fmt: skip
def test_a_damaged_der_file_says_what_happened_to_it(der: bytes, why: str) -> None:
    assert der[:1] == b"\x30"
    report = report_for(Slot.CA, der, "ca.der")
    assert told(report, "ca.der") == [
        f"ca.der: error: binary file that is not a DER certificate or key ({why}) [der-invalid]"
    ]
    assert Slot.CA not in report.contents
    assert not report.ok


def test_a_damaged_der_file_is_refused_by_the_loaders_with_the_same_reason() -> None:
    file = CredentialFile(Slot.CA, "ca.der", CA_DER[:-10])
    why = "binary file that is not a DER certificate or key (the DER is truncated (10 more bytes " \
          "were expected))"  # fmt: skip
    with pytest.raises(InputError) as refused:
        load_certificates(file)
    assert str(refused.value) == f"ca.der: no certificate could be read: {why}"
    with pytest.raises(InputError) as refused:
        load_private_key(CredentialFile(Slot.KEY, "ca.der", CA_DER[:-10]))
    assert str(refused.value) == f"ca.der: no private key could be read: {why}"


# --- PEM blocks whose DER is damaged ------------------------------------------------------------


def _changed(der: bytes, old: bytes, new: bytes) -> bytes:
    assert der.count(old) == 1
    return der.replace(old, new)


KEY_DER = f.key_der(PKI.device_key)
P256_OID = bytes.fromhex("06082a8648ce3d030107")
SEC1_DER = f.key_der(PKI.device_key, pkcs8=False)
EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")


@pytest.mark.parametrize(
    ("slot", "label", "der", "what"),
    [
        (Slot.CA, "CERTIFICATE", CA_DER[:-7],
         "the certificate does not parse: the DER is truncated (7 more bytes were expected)"),
        (Slot.CERT, "CERTIFICATE", f.cert_der(PKI.device_cert) + b"\x05\x00",
         "the certificate does not parse: the DER has extra bytes after its end (two objects "
         "joined, or trailing garbage)"),
        (Slot.KEY, "PRIVATE KEY", KEY_DER[:-5],
         "the private key does not parse: the DER is truncated (5 more bytes were expected)"),
        # The PKCS#8 version INTEGER (02 01 00) made an OCTET STRING.
        (Slot.KEY, "PRIVATE KEY", KEY_DER[:4] + b"\x04" + KEY_DER[5:],
         "the private key does not parse: the DER structure is damaged (unexpected tag)"),
        # secp256r1's OID with its last arc changed: a curve nobody implements.
        (Slot.KEY, "PRIVATE KEY", _changed(KEY_DER, P256_OID, P256_OID[:-1] + b"\x09"),
         "the private key does not parse: an unsupported key type or curve (Curve "
         "1.2.840.10045.3.1.9 is not supported)"),
        # id-ecPublicKey (1.2.840.10045.2.1) made 1.2.840.10045.2.9.
        (Slot.KEY, "PRIVATE KEY",
         _changed(KEY_DER, EC_PUBLIC_KEY_OID, EC_PUBLIC_KEY_OID[:-1] + b"\x09"),
         "the private key does not parse: an unsupported key type or curve (Unknown key type: "
         "1.2.840.10045.2.9)"),
        # An SEC1 key of version 4 (RFC 5915 has version 1 only): cryptography says only
        # "Invalid key".
        (Slot.KEY, "EC PRIVATE KEY", SEC1_DER[:4] + b"\x04" + SEC1_DER[5:],
         "the private key does not parse: the DER does not parse as what the PEM label says"),
    ],
    ids=["cert-cut", "cert-extra", "key-cut", "key-tag", "key-curve", "key-type", "sec1"],
)  # fmt: skip
def test_a_pem_block_whose_der_is_damaged(slot: Slot, label: str, der: bytes, what: str) -> None:
    name = NAMES[slot]
    report = report_for(slot, pem_block(label, der), name)
    assert told(report, name) == [f"{name}:1: error: {what} [der-invalid]"]
    assert slot not in report.contents


def _damaged_cert(change: str) -> bytes:
    key = f.ec_key()
    cert = f.make_cert("Root", key, ca=True, dns_names=("a.example",))
    der = f.cert_der(cert)
    if change == "issuer":  # the issuer's CN value (the first "Root") made an INTEGER
        at = der.index(b"Root") - 2
        return der[:at] + b"\x02" + der[at + 1 :]
    if change == "point":  # the EC point's "uncompressed" prefix 04 made 05, which means nothing
        at = der.index(b"\x03\x42\x00\x04") + 3
        return der[:at] + b"\x05" + der[at + 1 :]
    if change == "san":  # the first GeneralName, dNSName [2], made [10]
        at = der.index(b"\x55\x1d\x11") + 7
        assert der[at] == 0x82
        return der[:at] + b"\x8a" + der[at + 1 :]
    if change == "duplicate":  # basicConstraints' OID made subjectAltName's: SAN twice
        return _changed(der, b"\x55\x1d\x13", b"\x55\x1d\x11")
    assert change == "signature-algorithm"  # ecdsa-with-SHA256 made an unknown OID, both places
    return der.replace(bytes.fromhex("2a8648ce3d040302"), bytes.fromhex("2a8648ce3d040309"))


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ("issuer", "the subject or issuer name is damaged or unsupported (the DER structure is "
                   "damaged in issuer (UnexpectedTag))"),
        ("point", "the public key (subjectPublicKeyInfo) is damaged or unsupported (unreadable)"),
        ("san", "the extensions is damaged or unsupported (the DER structure is damaged in "
                "subject_alternative_name (UnexpectedTag))"),
        ("duplicate", "the extensions is damaged (extension 2.5.29.17 appears twice)"),
        ("signature-algorithm", "the signature algorithm is damaged or unsupported (unreadable)"),
    ],
)  # fmt: skip
def test_a_certificate_part_that_cannot_be_read_is_named(change: str, what: str) -> None:
    der = _damaged_cert(change)
    x509.load_der_x509_certificate(der)  # loads: cryptography reads these parts only when asked
    report = report_for(Slot.CA, pem_block("CERTIFICATE", der), "ca.pem")
    assert told(report, "ca.pem") == [
        f"ca.pem:1: error: the certificate does not parse: {what} [der-invalid]"
    ]
    with pytest.raises(InputError) as refused:
        load_certificates(CredentialFile(Slot.CA, "ca.pem", pem_block("CERTIFICATE", der)))
    assert str(refused.value) == f"ca.pem: no certificate could be read: {what}"


def test_a_key_file_without_any_key_says_so() -> None:
    with pytest.raises(InputError) as refused:
        load_private_key(CredentialFile(Slot.KEY, "client.key", PEMS[Slot.CA]))
    assert str(refused.value) == "client.key: no private key could be read"
    with pytest.raises(InputError) as refused:
        load_certificates(CredentialFile(Slot.CA, "ca.pem", PEMS[Slot.KEY]))
    assert str(refused.value) == "ca.pem: no certificate could be read"
    encrypted = f.key_pem(PKI.device_key, password=b"pw")
    with pytest.raises(InputError) as refused:
        load_private_key(CredentialFile(Slot.KEY, "client.key", encrypted))
    assert str(refused.value) == "client.key: the private key is encrypted; decrypt it first"


def test_the_loaders_read_every_certificate_and_the_key(tmp_path: Path) -> None:
    chain = PEMS[Slot.CERT] + PEMS[Slot.CA]
    certs = load_certificates(CredentialFile(Slot.CA, "chain.pem", chain))
    assert [c.public_bytes(DER) for c in certs] == [
        f.cert_der(PKI.device_cert),
        f.cert_der(PKI.ca_cert),
    ]
    key = load_private_key(CredentialFile(Slot.KEY, "k.der", f.key_der(PKI.device_key)))
    assert key.private_bytes(DER, PKCS8, NONE) == f.key_der(PKI.device_key)


# --- cryptography's error texts, one by one ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "told_as"),
    [
        ("error parsing asn1 value: ParseError { kind: ShortData { needed: 3 } }",
         "the DER is truncated (3 more bytes were expected)"),
        ('error parsing asn1 value: ParseError { kind: ShortData { needed: 3 }, location: '
         '["Certificate::tbs_cert", "TbsCertificate::validity"] }',
         "the DER is truncated in TbsCertificate.validity (3 more bytes were expected)"),
        ("error parsing asn1 value: ParseError { kind: ShortData }", "the DER is truncated"),
        ("ASN.1 parsing error: short data (needed at least 12 additional bytes)",
         "the DER is truncated (12 more bytes were expected)"),
        ('error parsing asn1 value: ParseError { kind: InvalidLength, location: ["Name", 0, 1] }',
         "the DER structure is damaged in Name (InvalidLength)"),
        ("error parsing asn1 value: ParseError { kind: InvalidValue, location: [0, 0] }",
         "the DER structure is damaged (InvalidValue)"),
        ("error parsing asn1 value: ParseError { kind: ExtraData }",
         "the DER has extra bytes after its end (two objects joined, or trailing garbage)"),
        ("error parsing asn1 value: ParseError { kind: InvalidSetOrdering }",
         "the DER does not parse as what the PEM label says"),
        ("Could not deserialize key data. The data may be in an incorrect format, it may be "
         "encrypted with an unsupported algorithm, or it may be an unsupported key type (e.g. EC "
         "curves with explicit parameters). Details: ASN.1 parsing error: invalid length",
         "the DER structure is damaged (invalid length)"),
        ("Could not deserialize key data. The data may be in an incorrect format, it may be "
         "encrypted with an unsupported algorithm, or it may be an unsupported key type (e.g. EC "
         "curves with explicit parameters).",
         "the DER does not parse as what the PEM label says"),
    ],
)  # fmt: skip
def test_cryptographys_value_errors_are_told_as_what_happened(text: str, told_as: str) -> None:
    assert explain_parse_error(ValueError(text)) == told_as


def test_an_unsupported_algorithm_is_named_with_cryptographys_reason() -> None:
    error = UnsupportedAlgorithm("Unknown key type: 1.3.101.121")
    assert explain_parse_error(error) == (
        "an unsupported key type or curve (Unknown key type: 1.3.101.121)"
    )
