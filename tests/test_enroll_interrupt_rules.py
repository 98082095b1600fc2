"""Ctrl-C (KeyboardInterrupt) in the middle of one device, in-process: the modem gets its mode
back, the ledger says interrupted, and the exception carries what was done for the CLI to report
(the CLI's own test sends SIGINT to a child process, which a mutation run cannot attribute)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provguard import enroll
from provguard.ledger import Ledger, Outcome
from tests.keygen_fake import FakeModem
from tests.test_enroll import Pki, job


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as opened:
        yield opened


def test_ctrl_c_mid_device_restores_the_mode_and_carries_the_result(
    tmp_path: Path, ledger: Ledger
) -> None:
    modem = FakeModem()

    def ctrl_c(line: str) -> None:
        if line.startswith("AT%KEYGEN"):
            raise KeyboardInterrupt

    modem.fault = ctrl_c  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt) as stopped:
        enroll.enroll_device(modem, job(Pki(tmp_path)), ledger, port=modem.port)  # type: ignore[arg-type]
    assert isinstance(stopped.value, enroll.EnrollInterrupted)
    assert str(stopped.value) == "interrupted"
    result = stopped.value.result
    assert (result.outcome, result.error, result.port) == (
        Outcome.INTERRUPTED,
        "interrupted",
        modem.port,
    )
    assert result.imei == modem.imei
    assert modem.cfun == 1  # the mode it was found in
    [attempt] = ledger.attempts()
    assert (attempt.id, attempt.outcome) == (result.attempt_id, "interrupted")
