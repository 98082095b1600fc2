"""When a re-run finds the certificate an interrupted attempt issued (recorded in the ledger, never
written to the modem), it writes that one only while it is valid, for the modem's key and signed
by the device CA of this run; each rule was a mutant no test killed. Expected values come from
the fake modem's state and cryptography's own verification."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard import enroll
from provguard.ledger import Ledger, Outcome
from tests.keygen_fake import FakeModem
from tests.test_enroll import TAG, Pki, client_cert, job


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as opened:
        yield opened


def interrupted_before_the_write(pki: Pki, ledger: Ledger) -> tuple[FakeModem, x509.Certificate]:
    """A modem whose first attempt issued a certificate and lost the port writing it."""
    modem = FakeModem()
    modem.fault = lambda line: "lost" if line.startswith(f"AT%CMNG=0,{TAG},1") else None
    first = enroll.enroll_device(modem, job(pki), ledger, port=modem.port)  # type: ignore[arg-type]
    assert first.outcome is Outcome.REFUSED, first.error
    [pem] = [a.cert_pem for a in ledger.attempts() if a.cert_pem]
    assert pem is not None
    modem.fault = None
    modem.cfun = 1  # power-cycled
    return modem, x509.load_pem_x509_certificate(pem.encode())


def rerun(modem: FakeModem, pki: Pki, ledger: Ledger, at: dt.datetime) -> x509.Certificate:
    result = enroll.enroll_device(
        modem,  # type: ignore[arg-type]
        job(pki),
        ledger,
        port=modem.port,
        clock=lambda: at,
    )
    assert result.outcome is Outcome.ENROLLED, result.error
    assert sum(line.startswith("AT%KEYGEN") for line in modem.received) == 1  # the same key
    return client_cert(modem)


def test_the_issued_certificate_is_written_from_its_first_second(pki: Pki, ledger: Ledger) -> None:
    modem, issued = interrupted_before_the_write(pki, ledger)
    written = rerun(modem, pki, ledger, issued.not_valid_before_utc)
    assert written.serial_number == issued.serial_number


def test_an_issued_certificate_that_has_ended_is_replaced(pki: Pki, ledger: Ledger) -> None:
    modem, issued = interrupted_before_the_write(pki, ledger)
    written = rerun(modem, pki, ledger, issued.not_valid_after_utc)  # its end is not in it
    assert written.serial_number != issued.serial_number


def test_a_certificate_of_another_device_ca_with_the_same_name_is_replaced(
    pki: Pki, ledger: Ledger, tmp_path: Path
) -> None:
    modem, issued = interrupted_before_the_write(pki, ledger)
    (tmp_path / "new").mkdir()
    renewed = Pki(tmp_path / "new")  # a new device CA key under the same name
    assert renewed.dca_cert.subject == pki.dca_cert.subject
    written = rerun(modem, renewed, ledger, issued.not_valid_before_utc)
    assert written.serial_number != issued.serial_number
    assert isinstance(renewed.dca_key, ec.EllipticCurvePrivateKey)
    assert written.signature_hash_algorithm is not None
    renewed.dca_key.public_key().verify(
        written.signature, written.tbs_certificate_bytes, ec.ECDSA(written.signature_hash_algorithm)
    )


def test_a_reused_certificate_is_recorded_for_the_attempt_that_wrote_it(
    pki: Pki, ledger: Ledger
) -> None:
    """The export takes each device's latest enrolled attempt: the re-run that wrote the
    certificate must hold it (serial, fingerprint, PEM), not only the attempt that issued it."""
    modem, issued = interrupted_before_the_write(pki, ledger)
    steps: list[str] = []
    result = enroll.enroll_device(
        modem,  # type: ignore[arg-type]
        job(pki),
        ledger,
        port=modem.port,
        progress=lambda step, detail="": steps.append(step),
    )
    assert result.outcome is Outcome.ENROLLED, result.error
    assert "write-cert" in steps
    last = ledger.attempts()[-1]
    assert last.id == result.attempt_id
    der = issued.public_bytes(serialization.Encoding.DER)
    assert (last.cert_serial, last.cert_fingerprint, last.cert_pem) == (
        format(issued.serial_number, "x"),
        "SHA256:" + hashlib.sha256(der).hexdigest(),
        issued.public_bytes(serialization.Encoding.PEM).decode(),
    )


def test_a_certificate_the_modem_then_lists_with_another_digest_fails_verification(
    pki: Pki, ledger: Ledger
) -> None:
    modem = FakeModem()
    written = []

    def garble_after_the_write(line: str) -> None:
        if line.startswith(f"AT%CMNG=0,{TAG},1"):
            written.append(line)
        elif written and line.startswith("AT%CMNG=1"):
            modem.store[(TAG, 1)] = b"not what was written"

    modem.fault = garble_after_the_write  # type: ignore[assignment]
    result = enroll.enroll_device(modem, job(pki), ledger, port=modem.port)  # type: ignore[arg-type]
    assert result.outcome is Outcome.REFUSED
    listed = hashlib.sha256(b"not what was written").hexdigest().upper()
    assert f"the client certificate is listed with SHA-256 {listed}" in (result.error or ""), (
        result.error
    )
