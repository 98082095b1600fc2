"""The enrollment state machine against an in-process modem with %KEYGEN (tests/keygen_fake.py).

Expected values come from the fake modem's own state (its keys' public halves, its store's
digests) and from cryptography, never from the code under test.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import ExtendedKeyUsageOID

from provguard import at, enroll
from provguard.errors import InputError
from provguard.ledger import Ledger, Outcome
from tests import factories
from tests.keygen_fake import FakeModem, SimModem

TAG = 42

#: The state machine runs against the in-process fake and against the shipped simulator.
MODEMS = {"fake": FakeModem, "sim": SimModem}


@pytest.fixture(params=sorted(MODEMS))
def make_modem(request: pytest.FixtureRequest) -> type[FakeModem] | type[SimModem]:
    return MODEMS[request.param]


def spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Pki:
    def __init__(self, tmp: Path):
        self.dca_key = factories.ec_key()
        self.dca_cert = factories.make_cert("provguard test device CA", self.dca_key, ca=True)
        self.root_key = factories.ec_key()
        self.root_cert = factories.make_cert("broker root", self.root_key, ca=True)
        self.dca_cert_path = tmp / "dca.pem"
        self.dca_key_path = tmp / "dca.key"
        self.root_path = tmp / "root.pem"
        self.dca_cert_path.write_bytes(factories.cert_pem(self.dca_cert))
        self.dca_key_path.write_bytes(factories.key_pem(self.dca_key))
        self.root_path.write_bytes(factories.cert_pem(self.root_cert))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as opened:
        yield opened  # type: ignore[misc]


def job(
    pki: Pki, *, rotate: bool = False, subject: str = enroll.DEFAULT_SUBJECT
) -> enroll.EnrollJob:
    now = dt.datetime.now(dt.timezone.utc)
    return enroll.EnrollJob(
        device_ca=enroll.load_device_ca(pki.dca_cert_path, pki.dca_key_path, at_time=now),
        broker_root=enroll.load_broker_root(pki.root_path),
        sec_tag=TAG,
        subject=enroll.SubjectTemplate(subject),
        days=365,
        station="station-a",
        rotate=rotate,
    )


def run(modem: FakeModem, pki: Pki, ledger: Ledger, **kw: object) -> enroll.DeviceResult:
    return enroll.enroll_device(modem, job(pki, **kw), ledger, port=modem.port)  # type: ignore[arg-type]


def client_cert(modem: FakeModem) -> x509.Certificate:
    return x509.load_pem_x509_certificate(modem.store[(TAG, 1)])


def assert_no_key_bytes(modem: FakeModem, *blobs: bytes) -> None:
    for secret in modem.key_secrets():
        for blob in blobs:
            assert secret not in blob, "key material found (not shown)"


def test_first_enrollment_generates_the_key_in_the_modem_and_signs_its_csr(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger, tmp_path: Path
) -> None:
    modem = make_modem()
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.ENROLLED, result.error
    assert result.exit_code == 0
    cert = client_cert(modem)
    # The certificate is for the key the modem generated, signed by the device CA.
    assert spki(cert.public_key()) == spki(modem.public_key(TAG))  # type: ignore[arg-type]
    pki.dca_key.public_key().verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
    )
    assert cert.issuer == pki.dca_cert.subject
    assert cert.subject.rfc4514_string() == f"CN=nrf-{modem.imei}"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(modem.public_key(TAG))
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert (
        aki.key_identifier
        == x509.SubjectKeyIdentifier.from_public_key(pki.dca_key.public_key()).digest
    )
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days == 365
    # The broker root, exactly as the file holds it.
    assert modem.store[(TAG, 0)] == pki.root_path.read_bytes()
    assert modem.cfun == 1  # restored
    assert "AT+CFUN=4" in modem.received
    assert modem.received[-1] == "AT+CFUN=1"
    # The ledger knows the device and the certificate, never a key.
    (attempt,) = ledger.attempts()
    assert attempt.imei == modem.imei
    assert attempt.outcome == "enrolled"
    assert attempt.modem_firmware == "mfw_nrf9160_1.3.5"
    assert int(attempt.cert_serial or "0", 16) == cert.serial_number
    assert attempt.cert_pem == modem.store[(TAG, 1)].decode()
    assert attempt.key_sha == modem.key_sha(TAG)
    assert attempt.ended_at is not None
    assert_no_key_bytes(modem, (tmp_path / "ledger.sqlite").read_bytes())


def test_a_second_run_writes_nothing(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger
) -> None:
    modem = make_modem()
    assert run(modem, pki, ledger).outcome is Outcome.ENROLLED
    before = dict(modem.slots())
    writes = len(modem.writes())
    again = run(modem, pki, ledger)
    assert again.outcome is Outcome.ALREADY_ENROLLED, again.error
    assert again.exit_code == 0
    assert again.written == ()
    assert len(modem.writes()) == writes  # no %KEYGEN, no %CMNG write or delete
    assert modem.slots() == before
    assert modem.cfun == 1
    latest = ledger.attempts()[-1]
    assert latest.outcome == "already_enrolled"
    assert latest.cert_fingerprint == ledger.attempts()[0].cert_fingerprint


def test_rotate_makes_a_new_key_and_certificate(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger
) -> None:
    modem = make_modem()
    run(modem, pki, ledger)
    old_key = spki(modem.public_key(TAG))
    old_serial = client_cert(modem).serial_number
    result = run(modem, pki, ledger, rotate=True)
    assert result.outcome is Outcome.ENROLLED, result.error
    assert spki(modem.public_key(TAG)) != old_key
    cert = client_cert(modem)
    assert spki(cert.public_key()) == spki(modem.public_key(TAG))  # type: ignore[arg-type]
    assert cert.serial_number != old_serial
    assert "AT%CMNG=3,42,2" in modem.received  # the key the user asked to rotate, nothing else
    assert not any(c.startswith("AT%CMNG=3,42,0") for c in modem.received)


@pytest.mark.parametrize(
    ("cut", "occurrence", "verdict", "rotated"),
    [
        ("AT%CMNG=3,42,2", 1, "lost-after", True),  # old key deleted, then the port went away
        ("AT%KEYGEN", 2, "lost-after", True),  # the new key made, its CSR never received
        ("AT%CMNG=1,42", 2, "lost", True),  # the new key made, its digest never listed
        ("AT%KEYGEN", 1, "lost", False),  # nothing reached the modem: the old pair stays
    ],
)
def test_an_interrupted_rotation_and_a_plain_rerun(
    pki: Pki,
    make_modem: type[FakeModem] | type[SimModem],
    ledger: Ledger,
    cut: str,
    occurrence: int,
    verdict: str,
    rotated: bool,
) -> None:
    modem = make_modem()
    run(modem, pki, ledger)
    old_key = spki(modem.public_key(TAG))
    seen = {"n": 0}

    def fault(line: str) -> str | None:
        if line.startswith(cut):
            seen["n"] += 1
            return verdict if seen["n"] == occurrence else None
        return None

    modem.fault = fault
    assert run(modem, pki, ledger, rotate=True).outcome is Outcome.REFUSED
    assert seen["n"] == occurrence
    modem.fault = None
    modem.cfun = 1
    result = run(modem, pki, ledger)  # the same line without --rotate
    expected = Outcome.ENROLLED if rotated else Outcome.ALREADY_ENROLLED
    assert result.outcome is expected, result.error
    assert (spki(modem.public_key(TAG)) != old_key) is rotated
    assert spki(client_cert(modem).public_key()) == spki(modem.public_key(TAG))  # type: ignore[arg-type]
    assert run(modem, pki, ledger).written == ()


def test_a_modem_left_offline_by_a_stopped_attempt_gets_its_first_mode_back(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger
) -> None:
    modem = make_modem(cfun=21)  # LTE on, as the application had it
    modem.fault = lambda line: "lost" if line.startswith(("AT%CMNG=0,42,1", "AT+CFUN=21")) else None
    first = run(modem, pki, ledger)
    assert first.restore_error is not None
    assert modem.cfun == 4  # left offline: the port was gone
    modem.fault = None  # the same port back, the device not reset
    second = run(modem, pki, ledger)
    assert second.outcome is Outcome.ENROLLED, second.error
    assert second.initial_mode == 4
    assert second.restore_mode == 21
    assert second.mode_from_attempt == first.attempt_id
    assert modem.cfun == 21
    third = run(modem, pki, ledger)
    assert (third.initial_mode, third.restore_mode, third.mode_from_attempt) == (21, 21, None)
    # A modem someone put offline on purpose after a clean run stays offline.
    modem.cfun = 4
    fourth = run(modem, pki, ledger)
    assert fourth.restore_mode == 4
    assert modem.cfun == 4


def test_a_key_the_ledger_did_not_generate_is_left_alone(pki: Pki, ledger: Ledger) -> None:
    modem = FakeModem()
    modem.put_foreign_key(TAG)
    key_before = modem.key_sha(TAG)
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.REFUSED
    assert result.exit_code == 1
    assert "did not generate" in (result.error or "")
    assert modem.writes() == []
    assert modem.key_sha(TAG) == key_before
    assert modem.cfun == 1


def test_a_port_lost_before_the_certificate_write_is_completed_without_a_second_key(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger
) -> None:
    modem = make_modem()
    modem.fault = lambda line: "lost" if line.startswith("AT%CMNG=0,42,1") else None
    first = run(modem, pki, ledger)
    assert first.outcome is Outcome.REFUSED
    assert "went away" in (first.error or "")
    key = spki(modem.public_key(TAG))
    modem.fault = None
    modem.cfun = 1  # the device was power-cycled
    second = run(modem, pki, ledger)
    assert second.outcome is Outcome.ENROLLED, second.error
    assert sum(1 for c in modem.received if c.startswith("AT%KEYGEN")) == 1
    assert spki(modem.public_key(TAG)) == key
    assert spki(client_cert(modem).public_key()) == key  # type: ignore[arg-type]


def test_a_port_lost_after_the_certificate_reached_the_modem_is_found_done(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger
) -> None:
    modem = make_modem()
    modem.fault = lambda line: "lost-after" if line.startswith("AT%CMNG=0,42,1") else None
    first = run(modem, pki, ledger)
    assert first.outcome is Outcome.REFUSED
    cert_before = modem.store[(TAG, 1)]
    modem.fault = None
    second = run(modem, pki, ledger)
    assert second.outcome is Outcome.ENROLLED  # the broker root was still missing
    assert second.written == ("broker root CA",)
    assert modem.store[(TAG, 1)] == cert_before
    third = run(modem, pki, ledger)
    assert third.outcome is Outcome.ALREADY_ENROLLED
    assert third.written == ()


# Every command of a first enrollment, by prefix and occurrence; each is cut in the three ways a
# port fails: no answer, gone before the command reached the modem, gone after it was applied.
COMMANDS = [
    ("AT+CMEE=1", 1),
    ("AT+CGSN", 1),
    ("AT+CGMR", 1),
    ("AT+CFUN?", 1),
    ("AT+CFUN=4", 1),
    ("AT%CMNG=1,42", 1),
    ("AT%KEYGEN", 1),
    ("AT%CMNG=1,42", 2),
    ("AT%CMNG=0,42,1", 1),
    ("AT%CMNG=0,42,0", 1),
    ("AT%CMNG=1,42", 3),
    ("AT+CFUN=1", 1),
]


@pytest.mark.parametrize("verdict", ["timeout", "lost", "lost-after"])
@pytest.mark.parametrize(("cut", "occurrence"), COMMANDS)
def test_every_interruption_point_ends_enrolled_on_the_rerun(
    pki: Pki,
    make_modem: type[FakeModem] | type[SimModem],
    ledger: Ledger,
    cut: str,
    occurrence: int,
    verdict: str,
) -> None:
    modem = make_modem()
    seen = {"n": 0}

    def fault(line: str) -> str | None:
        if line.startswith(cut):
            seen["n"] += 1
            if seen["n"] == occurrence:
                return verdict
        return None

    modem.fault = fault
    first = run(modem, pki, ledger)
    assert seen["n"] >= occurrence, "the cut point was never reached"
    assert first.outcome is not Outcome.ENROLLED or cut == "AT+CFUN=1"
    if cut == "AT+CFUN=1":
        assert first.restore_error is not None
        assert first.exit_code == 1
    modem.fault = None
    modem.cfun = 1  # power-cycled
    second = run(modem, pki, ledger)
    assert second.outcome in (Outcome.ENROLLED, Outcome.ALREADY_ENROLLED), second.error
    cert = client_cert(modem)
    assert spki(cert.public_key()) == spki(modem.public_key(TAG))  # type: ignore[arg-type]
    assert modem.store[(TAG, 0)] == pki.root_path.read_bytes()
    assert modem.cfun == 1
    assert run(modem, pki, ledger).written == ()
    # One certificate issued, and the ledger's latest word on the device is that certificate.
    assert {a.cert_serial for a in ledger.attempts() if a.cert_serial} == {
        format(cert.serial_number, "x")
    }
    assert ledger.attempts()[-1].outcome == "already_enrolled"


def test_a_refused_keygen_is_explained(pki: Pki, ledger: Ledger) -> None:
    modem = SimModem()
    modem.sim.faults.keygen_fails = True
    result = run(modem, pki, ledger)  # type: ignore[arg-type]
    assert result.outcome is Outcome.REFUSED
    assert result.exit_code == 1
    assert "+CME ERROR: 523 (the modem failed to generate the key)" in (result.error or "")
    assert modem.cfun == 1
    online = SimModem()
    online.sim.ignore_offline = True  # an application switches it back on
    result = run(online, pki, ledger)  # type: ignore[arg-type]
    assert "+CME ERROR: 518 (not allowed while the modem is active" in (result.error or "")


def test_a_csr_with_another_subject_is_refused(pki: Pki, ledger: Ledger) -> None:
    modem = FakeModem(keygen_subject_override="CN=someone-else")
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.REFUSED
    assert "someone-else" in (result.error or "")
    assert (TAG, 1) not in modem.store
    assert modem.cfun == 1


def test_a_refused_write_is_explained(pki: Pki, ledger: Ledger) -> None:
    modem = FakeModem(reject_write={1: 515})
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.REFUSED
    assert "+CME ERROR: 515" in (result.error or "")
    assert "memory full" in (result.error or "")
    assert modem.cfun == 1
    assert ledger.attempts()[-1].outcome == "refused"


def test_the_same_root_with_crlf_line_ends_is_not_rewritten(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger
) -> None:
    modem = make_modem()
    modem.cfun = 4
    modem.store[(TAG, 0)] = pki.root_path.read_bytes().replace(b"\n", b"\r\n")
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.ENROLLED
    assert result.written == ("client certificate",)
    assert modem.store[(TAG, 0)].count(b"\r\n") > 3


def test_a_modem_found_powered_off_is_left_powered_off(
    pki: Pki, make_modem: type[FakeModem] | type[SimModem], ledger: Ledger
) -> None:
    modem = make_modem(cfun=0)
    assert run(modem, pki, ledger).outcome is Outcome.ENROLLED
    assert modem.cfun == 0
    assert modem.received[-1] == "AT+CFUN=0"


def test_subject_template(pki: Pki, ledger: Ledger) -> None:
    modem = FakeModem()
    result = run(modem, pki, ledger, subject="O=Acme Sensors,CN=acme-{imei}")
    assert result.outcome is Outcome.ENROLLED, result.error
    cert = client_cert(modem)
    assert {a.value for a in cert.subject} == {"Acme Sensors", f"acme-{modem.imei}"}
    assert any(
        c == f'AT%KEYGEN=42,2,0,"O=Acme Sensors,CN=acme-{modem.imei}"' for c in modem.received
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("CN=nrf-{serial}", "only the placeholder"),
        ("X=1,CN=a", "is not one of"),
        ('CN="a"', "without quotes"),
        ("O=acme", "a CN"),
    ],
)
def test_bad_subject_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        enroll.SubjectTemplate(template)


def test_device_ca_checks(pki: Pki, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    other = tmp_path / "other.key"
    other.write_bytes(factories.key_pem(factories.ec_key()))
    with pytest.raises(InputError, match="does not belong"):
        enroll.load_device_ca(pki.dca_cert_path, other, at_time=now)
    leaf_key = factories.ec_key()
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(factories.cert_pem(factories.make_cert("leaf", leaf_key)))
    leaf_key_path = tmp_path / "leaf.key"
    leaf_key_path.write_bytes(factories.key_pem(leaf_key))
    with pytest.raises(InputError, match="not a CA"):
        enroll.load_device_ca(leaf, leaf_key_path, at_time=now)
    with pytest.raises(InputError, match="expired"):
        enroll.load_device_ca(
            pki.dca_cert_path, pki.dca_key_path, at_time=now + dt.timedelta(days=400)
        )


def test_an_encrypted_or_rsa_device_ca(pki: Pki, tmp_path: Path, ledger: Ledger) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    locked = tmp_path / "locked.key"
    locked.write_bytes(factories.key_pem(pki.dca_key, password=b"factory pass"))
    with pytest.raises(InputError, match="--device-ca-key-pass-env"):
        enroll.load_device_ca(pki.dca_cert_path, locked, at_time=now)
    with pytest.raises(InputError, match="password is wrong"):
        enroll.load_device_ca(pki.dca_cert_path, locked, at_time=now, password=b"nope")
    with pytest.raises(InputError, match="not encrypted"):
        enroll.load_device_ca(pki.dca_cert_path, pki.dca_key_path, at_time=now, password=b"x")
    opened = enroll.load_device_ca(pki.dca_cert_path, locked, at_time=now, password=b"factory pass")
    assert (
        opened.fingerprint
        == enroll.load_device_ca(pki.dca_cert_path, pki.dca_key_path, at_time=now).fingerprint
    )
    # An RSA device CA signs EC device certificates as well.
    rsa_key = factories.rsa_key()
    rsa_cert = factories.make_cert("RSA device CA", rsa_key, ca=True)
    pki.dca_cert_path.write_bytes(factories.cert_pem(rsa_cert))
    pki.dca_key_path.write_bytes(factories.key_pem(rsa_key))
    modem = FakeModem()
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.ENROLLED, result.error
    cert = client_cert(modem)
    rsa_key.public_key().verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        cert.signature_hash_algorithm,  # type: ignore[arg-type]
    )


def test_a_device_that_is_not_an_nrf91_is_unusable(pki: Pki, ledger: Ledger) -> None:
    modem = FakeModem(knows_cmee=False)
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.UNUSABLE
    assert result.exit_code == 2
    assert modem.writes() == []


def test_keygen_answer_parsing() -> None:
    bad = at.Response(('%KEYGEN: "not base64!.abc"',), at.Final(ok=True))
    with pytest.raises(enroll.CsrError, match="base64url"):
        enroll.parse_keygen(bad, TAG)
    missing = at.Response(("something else",), at.Final(ok=True))
    with pytest.raises(enroll.CsrError, match="no %KEYGEN"):
        enroll.parse_keygen(missing, TAG)
    garbage = at.Response(('%KEYGEN: "AAAA.AAAA"',), at.Final(ok=True))
    with pytest.raises(enroll.CsrError, match="PKCS#10"):
        enroll.parse_keygen(garbage, TAG)


def _keygen_answer(modem: FakeModem, tag: int = TAG) -> at.Response:
    modem.cfun = 4
    return modem.send(enroll.keygen(tag, f"CN=nrf-{modem.imei}"))


def test_the_attestation_must_name_the_csr_and_the_tag() -> None:
    answer = enroll.parse_keygen(_keygen_answer(FakeModem()), TAG)
    assert answer.device_uuid == "50363953-3234-4723-80b9-1503d88271bf"
    assert answer.csr.is_signature_valid
    with pytest.raises(enroll.CsrError, match="not the CSR's"):
        enroll.parse_keygen(_keygen_answer(FakeModem(attest_other_digest=True)), TAG)
    with pytest.raises(enroll.CsrError, match="names sec_tag 7, not 42"):
        enroll.parse_keygen(_keygen_answer(FakeModem(), tag=7), TAG)
    line = _keygen_answer(FakeModem()).lines[0]
    no_cose = at.Response((line.split(".")[0] + '.AAAA"',), at.Final(ok=True))
    with pytest.raises(enroll.CsrError, match="COSE_Sign1"):
        enroll.parse_keygen(no_cose, TAG)


def test_a_csr_of_older_firmware_with_null_ecdsa_parameters_is_accepted(
    pki: Pki, ledger: Ledger
) -> None:
    modem = FakeModem(legacy_csr=True)
    raw = _keygen_answer(FakeModem(legacy_csr=True)).lines[0]
    der = base64.urlsafe_b64decode(raw.split('"')[1].split(".")[0] + "==")
    with pytest.raises(ValueError, match="asn1"):  # what cryptography alone makes of it
        x509.load_der_x509_csr(der)
    result = run(modem, pki, ledger)
    assert result.outcome is Outcome.ENROLLED, result.error
    assert spki(client_cert(modem).public_key()) == spki(modem.public_key(TAG))  # type: ignore[arg-type]


def test_the_device_uuid_of_the_attestation_is_recorded(pki: Pki, ledger: Ledger) -> None:
    modem = SimModem()
    assert run(modem, pki, ledger).outcome is Outcome.ENROLLED  # type: ignore[arg-type]
    assert ledger.attempts()[-1].device_uuid == modem.sim.state.device_id


def test_an_unexpected_failure_is_unusable_never_success(pki: Pki, ledger: Ledger) -> None:
    modem = FakeModem()

    class Broken:
        def send(self, command: at.AtCommand) -> at.Response:
            if command.text.startswith("AT%KEYGEN"):
                raise RuntimeError("secret-looking input")
            return modem.send(command)

    result = enroll.enroll_device(Broken(), job(pki), ledger, port="p")
    assert result.outcome is Outcome.UNUSABLE
    assert result.exit_code == 2
    assert result.error == "internal error (RuntimeError)"
    assert modem.cfun == 1
    assert ledger.attempts()[-1].outcome == "unusable"
