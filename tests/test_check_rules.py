"""The numeric rules of `provguard check` at their edges, and the exact line a user reads for each.

Found by `make mutation MODULE=credentials`: mutants that moved a rule by one (`<` for `<=`) or
dropped the file, line or text of a diagnosis passed every other test. The expected lines are
written out here from the README's table of codes and the nRF91 facts (sec_tag user range
0-2^31-1, the 20 decryptable test tags from 2^31, nRF Cloud's tag 16842753, RSA 1024-4096 with a
warning below 2048, expiry warning 30 days ahead), never read from provguard's constants.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from provguard.credentials import CheckReport, CredentialFile, CredentialSet, Slot, check
from tests import factories as f

UTC = dt.timezone.utc
START = dt.datetime(2030, 1, 1, tzinfo=UTC)
END = dt.datetime(2031, 1, 1, tzinfo=UTC)
INSIDE = dt.datetime(2030, 6, 1, tzinfo=UTC)
SECOND = dt.timedelta(seconds=1)


def lines(report: CheckReport, code_prefix: str) -> list[str]:
    """What the user reads for every problem whose code starts with `code_prefix`."""
    return [str(p) for p in report.problems if p.code.startswith(code_prefix)]


@pytest.fixture(scope="module")
def pki() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A root and a device certificate valid exactly from START to END."""
    ca_key, device_key = f.ec_key(), f.ec_key()
    ca = f.make_cert("Root CA", ca_key, ca=True, not_before=START, not_after=END)
    device = f.make_cert(
        "device-1", device_key, issuer=(ca, ca_key), not_before=START, not_after=END
    )
    return ca, device, device_key


def credential_set(
    ca: x509.Certificate | None = None,
    cert: x509.Certificate | None = None,
    key: f.PrivateKey | None = None,
) -> CredentialSet:
    return CredentialSet(
        CredentialFile(Slot.CA, "ca.pem", f.cert_pem(ca)) if ca else None,
        CredentialFile(Slot.CERT, "client.pem", f.cert_pem(cert)) if cert else None,
        CredentialFile(Slot.KEY, "client.key", f.key_pem(key)) if key else None,
    )


# -- sec_tag ----------------------------------------------------------------------------------

DECRYPTABLE = (
    "sec_tag {tag} is in 2147483648-2147483667: on nRF91x1 modems TLS traffic on these tags "
    "can be decrypted from modem traces"
)
CLOUD = (
    "sec_tag 16842753 is nRF Cloud's (CONFIG_NRF_CLOUD_SEC_TAG): writing it replaces the "
    "device's nRF Cloud credentials"
)


@pytest.mark.parametrize(
    ("tag", "allow", "expected"),
    [
        (0, {}, []),
        (2**31 - 1, {}, []),
        (16842752, {}, []),
        (16842754, {}, []),
        (-1, {}, ["error: sec_tag -1 is outside the user range 0-2147483647 [sec-tag-range]"]),
        (
            2**31 + 20,
            {"allow_decryptable_tag": True},
            ["error: sec_tag 2147483668 is outside the user range 0-2147483647 [sec-tag-range]"],
        ),
        (
            2**31,
            {},
            [
                "error: "
                + DECRYPTABLE.format(tag=2**31)
                + "; use a tag in 0-2147483647, or --allow-decryptable-tag for a test"
                " [sec-tag-decryptable]"
            ],
        ),
        (
            2**31 + 19,
            {"allow_decryptable_tag": True},
            [
                "warning: "
                + DECRYPTABLE.format(tag=2**31 + 19)
                + "; allowed for testing only [sec-tag-decryptable]"
            ],
        ),
        (
            16842753,
            {},
            [
                f"error: {CLOUD}; pick another tag, or pass --allow-nrf-cloud-tag if you mean it"
                " [sec-tag-nrf-cloud]"
            ],
        ),
        (
            16842753,
            {"allow_nrf_cloud_tag": True},
            [f"warning: {CLOUD}; allowed by --allow-nrf-cloud-tag [sec-tag-nrf-cloud]"],
        ),
    ],
)
def test_sec_tag_rules_at_their_edges(
    pki: tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey],
    tag: int,
    allow: dict[str, bool],
    expected: list[str],
) -> None:
    ca, device, key = pki
    report = check(
        credential_set(ca, device, key),
        tag,
        allow_nrf_cloud_tag=allow.get("allow_nrf_cloud_tag", False),
        allow_decryptable_tag=allow.get("allow_decryptable_tag", False),
        now=INSIDE,
    )
    assert lines(report, "sec-tag") == expected
    assert report.ok is not any(line.startswith("error") for line in expected)


# -- validity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (START - SECOND, [
            "ca.pem:1: error: CN=Root CA is not valid before 2030-01-01 00:00 UTC: the modem "
            "rejects it (check the clock of the machine that issued it) [ca-not-yet-valid]",
            "client.pem:1: error: CN=device-1 is not valid before 2030-01-01 00:00 UTC: the "
            "modem rejects it (check the clock of the machine that issued it) "
            "[cert-not-yet-valid]",
        ]),
        (START, []),  # valid from its first second
        (END - dt.timedelta(days=30), []),  # exactly 30 days left: not yet "soon"
        (END - dt.timedelta(days=30) + SECOND, [
            "ca.pem:1: warning: CN=Root CA expires on 2031-01-01 UTC, in 29 day(s): renew it "
            "[ca-expires-soon]",
            "client.pem:1: warning: CN=device-1 expires on 2031-01-01 UTC, in 29 day(s): "
            "renew it [cert-expires-soon]",
        ]),
        (END, [  # still valid in its last second
            "ca.pem:1: warning: CN=Root CA expires on 2031-01-01 UTC, in 0 day(s): renew it "
            "[ca-expires-soon]",
            "client.pem:1: warning: CN=device-1 expires on 2031-01-01 UTC, in 0 day(s): "
            "renew it [cert-expires-soon]",
        ]),
        (END + SECOND, [
            "ca.pem:1: error: CN=Root CA expired on 2031-01-01 UTC [ca-expired]",
            "client.pem:1: error: CN=device-1 expired on 2031-01-01 UTC [cert-expired]",
        ]),
    ],
)  # fmt: skip
def test_validity_rules_at_their_edges(
    pki: tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey],
    now: dt.datetime,
    expected: list[str],
) -> None:
    ca, device, key = pki
    report = check(credential_set(ca, device, key), 24, now=now)
    found = [
        line
        for line in (*lines(report, "ca-"), *lines(report, "cert-"))
        if "valid" in line or "expire" in line
    ]
    assert found == expected
    assert report.ok is not any(": error: " in line for line in expected)


def test_a_certificate_without_subject_is_named_as_such() -> None:
    key = f.ec_key()
    nobody = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(START)
        .not_valid_after(END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    report = check(credential_set(ca=nobody), 24, now=END + SECOND)
    assert lines(report, "ca-expired") == [
        "ca.pem:1: error: (empty subject) expired on 2031-01-01 UTC [ca-expired]"
    ]


# -- key types ---------------------------------------------------------------------------------


#: Made once when the module is imported (a module fixture is made again in every process that
#: runs a test, and mutation testing runs one per mutant).
RSA_KEYS = {bits: f.rsa_key(bits) for bits in (1024, 2040, 2048, 4096, 4104)}


@pytest.fixture(scope="module")
def rsa_keys() -> dict[int, rsa.RSAPrivateKey]:
    return RSA_KEYS


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        (1024, ["client.key: warning: the private key is RSA-1024: use 2048 bits or more "
                "[key-weak]"]),
        (2040, ["client.key: warning: the private key is RSA-2040: use 2048 bits or more "
                "[key-weak]"]),
        (2048, []),
    ],
)  # fmt: skip
def test_rsa_sizes_at_their_edges(
    rsa_keys: dict[int, rsa.RSAPrivateKey], bits: int, expected: list[str]
) -> None:
    report = check(credential_set(key=rsa_keys[bits]), 24, now=INSIDE)
    assert lines(report, "key-") == expected


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        (4096, []),
        (4104, ["ca.pem:1: error: the CA certificate's key is RSA-4104; the modem handles RSA "
                "1024-4096 [key-unsupported]"]),
    ],
)  # fmt: skip
def test_the_largest_rsa_size(
    rsa_keys: dict[int, rsa.RSAPrivateKey], bits: int, expected: list[str]
) -> None:
    """On a CA's key: a private key file of this size takes a second to validate."""
    ca = f.make_cert("Big root", rsa_keys[bits], ca=True, not_before=START, not_after=END)
    report = check(credential_set(ca=ca), 24, now=INSIDE)
    assert lines(report, "key-") == expected


def test_a_weak_rsa_ca_is_named_by_its_file_and_line(
    rsa_keys: dict[int, rsa.RSAPrivateKey],
) -> None:
    ca = f.make_cert("Old Root", rsa_keys[1024], ca=True, not_before=START, not_after=END)
    report = check(credential_set(ca=ca), 24, now=INSIDE)
    assert lines(report, "key-") == [
        "ca.pem:1: warning: the CA certificate's key is RSA-1024: use 2048 bits or more [key-weak]"
    ]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (ec.generate_private_key(ec.SECP256K1()),
         "client.key: error: the private key is on curve secp256k1; the nRF91 modem's ECDSA "
         "suites use P-256 and P-384 [key-unsupported]"),
        (ed25519.Ed25519PrivateKey.generate(),
         "client.key: error: the private key is Ed25519: the nRF91 modem supports EC (P-256, "
         "P-384) and RSA keys only [key-unsupported]"),
    ],
    ids=["secp256k1", "ed25519"],
)  # fmt: skip
def test_keys_the_modem_cannot_use(key: f.PrivateKey, expected: str) -> None:
    report = check(credential_set(key=key), 24, now=INSIDE)
    assert lines(report, "key-") == [expected]
    assert not report.ok


# -- a file that holds nothing the slot can store ---------------------------------------------

#: `openssl ecparam -name prime256v1` output: the namedCurve OID 1.2.840.10045.3.1.7 in DER.
P256_PARAMETERS = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"


def test_a_ca_file_of_ec_parameters_alone_is_an_error_not_ok() -> None:
    """Before, this was 'OK: 0 errors' with an info line, and render then failed on it."""
    report = check(
        CredentialSet(CredentialFile(Slot.CA, "params.pem", P256_PARAMETERS), None, None), 24
    )
    assert lines(report, "wrong-slot") == [
        "params.pem: error: --ca: only EC PARAMETERS, no certificate: the CA certificate slot "
        "takes a certificate ('openssl ecparam -genkey' writes the key after the parameters) "
        "[wrong-slot]"
    ]
    assert report.errors


def test_ec_parameters_before_the_key_are_dropped_and_the_key_is_used(
    pki: tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    """What 'openssl ecparam -genkey' writes: parameters, then the key. That stays usable."""
    ca, device, key = pki
    key_file = CredentialFile(Slot.KEY, "client.key", P256_PARAMETERS + f.key_pem(key))
    report = check(
        CredentialSet(
            CredentialFile(Slot.CA, "ca.pem", f.cert_pem(ca)),
            CredentialFile(Slot.CERT, "client.pem", f.cert_pem(device)),
            key_file,
        ),
        24,
        now=INSIDE,
    )
    assert lines(report, "wrong-slot") == []
    assert [p.code for p in report.problems if p.code == "ec-parameters-dropped"] == [
        "ec-parameters-dropped"
    ]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (ec.generate_private_key(ec.SECP256K1()),
         "ca.pem:1: error: the CA certificate's key is on curve secp256k1; the nRF91 modem's "
         "ECDSA suites use P-256 and P-384 [key-unsupported]"),
        (ed25519.Ed25519PrivateKey.generate(),
         "ca.pem:1: error: the CA certificate's key is Ed25519: the nRF91 modem supports EC "
         "(P-256, P-384) and RSA keys only [key-unsupported]"),
    ],
    ids=["secp256k1", "ed25519"],
)  # fmt: skip
def test_a_ca_key_the_modem_cannot_use_is_named_by_its_line(
    key: f.PrivateKey, expected: str
) -> None:
    ca = f.make_cert("Odd root", key, ca=True, not_before=START, not_after=END)
    report = check(credential_set(ca=ca), 24, now=INSIDE)
    assert lines(report, "key-") == [expected]
