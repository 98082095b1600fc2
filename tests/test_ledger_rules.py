"""Rules of the ledger the factory relies on, each found by a mutant no test killed: a claim by a
live station is never taken (nor is its process disturbed), a lease ends at its expiry, lookups
are per device and per sec_tag, each device CA is recorded once, and an export takes each
device's latest enrolled certificate."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from provguard import ledger as ledger_module
from provguard.ledger import DeviceBusyError, Ledger, Outcome, latest_per_device, locks
from tests import factories

IMEI = "352656100000001"
OTHER_IMEI = "352656100000002"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as opened:
        yield opened


def claimed_by(ledger: Ledger, **holder: object) -> int:
    """An attempt that holds IMEI's claim, its row then set to `holder`; a second attempt's id."""
    first = ledger.begin(station="a", port="p1", sec_tag=1, device_ca_fingerprint="f")
    ledger.acquire(IMEI, station="a", attempt_id=first)
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(locks).where(locks.c.imei == IMEI).values(**holder))
    return ledger.begin(station="b", port="p2", sec_tag=1, device_ca_fingerprint="f")


def test_a_claim_of_a_live_station_on_this_host_holds_and_its_process_is_not_signalled(
    ledger: Ledger,
) -> None:
    station = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        second = claimed_by(ledger, pid=station.pid, host=socket.gethostname())
        with pytest.raises(DeviceBusyError, match="station 'a'"):
            ledger.acquire(IMEI, station="b", attempt_id=second)
        # still running a second later: a signal (SIGHUP ends it) would have been seen by then
        with pytest.raises(subprocess.TimeoutExpired):
            station.wait(timeout=1)
    finally:
        station.kill()
        station.wait()


def test_a_claim_whose_process_may_not_be_signalled_holds(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's live process: kill(pid, 0) is refused, which proves it exists."""
    second = claimed_by(ledger, pid=os.getpid() + 1, host=socket.gethostname())

    def refused(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(ledger_module.os, "kill", refused)
    with pytest.raises(DeviceBusyError):
        ledger.acquire(IMEI, station="b", attempt_id=second)


def test_a_lease_is_over_at_the_moment_it_expires(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    second = claimed_by(ledger, host="elsewhere", pid=1, expires_at=at.isoformat())
    monkeypatch.setattr(ledger_module, "now", lambda: at - dt.timedelta(microseconds=1))
    with pytest.raises(DeviceBusyError):
        ledger.acquire(IMEI, station="b", attempt_id=second)
    monkeypatch.setattr(ledger_module, "now", lambda: at)
    ledger.acquire(IMEI, station="b", attempt_id=second)
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(locks.c.station)).scalars().all() == ["b"]


def attempt_with(ledger: Ledger, *, imei: str, sec_tag: int, **values: object) -> int:
    attempt = ledger.begin(station="s", port="p", sec_tag=sec_tag, device_ca_fingerprint="f")
    ledger.note(attempt, imei=imei, **values)
    return attempt


def test_a_generated_key_is_looked_up_for_this_device_and_this_tag_only(ledger: Ledger) -> None:
    mine = attempt_with(ledger, imei=IMEI, sec_tag=7, key_sha="AB" * 32, csr_pem="csr")
    attempt_with(ledger, imei=IMEI, sec_tag=8, key_sha="CD" * 32, csr_pem="csr")
    attempt_with(ledger, imei=OTHER_IMEI, sec_tag=7, key_sha="EF" * 32, csr_pem="csr")
    attempt_with(ledger, imei=IMEI, sec_tag=9, key_sha="12" * 32)  # no CSR: keygen not confirmed
    found = ledger.generated_key(IMEI, 7, "AB" * 32)
    assert found is not None
    assert found.id == mine
    # the same key digest on another device or tag is not this device's key
    assert ledger.generated_key(OTHER_IMEI, 7, "AB" * 32) is None
    assert ledger.generated_key(IMEI, 8, "AB" * 32) is None
    assert ledger.generated_key(IMEI, 9, "12" * 32) is None


def test_an_issued_certificate_is_looked_up_for_this_device_and_this_tag_only(
    ledger: Ledger,
) -> None:
    mine = attempt_with(ledger, imei=IMEI, sec_tag=7, cert_fingerprint="SHA256:aa")
    attempt_with(ledger, imei=IMEI, sec_tag=8, cert_fingerprint="SHA256:bb")
    attempt_with(ledger, imei=OTHER_IMEI, sec_tag=7, cert_fingerprint="SHA256:cc")
    found = ledger.issued(IMEI, 7, "SHA256:aa")
    assert found is not None
    assert found.id == mine
    assert ledger.issued(OTHER_IMEI, 7, "SHA256:aa") is None
    assert ledger.issued(IMEI, 8, "SHA256:aa") is None


def test_each_device_ca_is_recorded_once(ledger: Ledger) -> None:
    first = factories.make_cert("device CA one", factories.ec_key(), ca=True)
    second = factories.make_cert("device CA two", factories.ec_key(), ca=True)
    for cert, fingerprint in ((first, "SHA256:one"), (second, "SHA256:two"), (first, "SHA256:one")):
        ledger.record_device_ca(cert, fingerprint, factories.cert_pem(cert).decode())
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ledger_module.device_cas.c.fingerprint, ledger_module.device_cas.c.subject)
        ).all()
    assert sorted(map(tuple, rows)) == [
        ("SHA256:one", "CN=device CA one"),
        ("SHA256:two", "CN=device CA two"),
    ]


def test_the_export_takes_each_devices_latest_enrolled_certificate(ledger: Ledger) -> None:
    def attempt(imei: str | None, cert: str | None, outcome: Outcome) -> int:
        number = ledger.begin(station="s", port="p", sec_tag=1, device_ca_fingerprint="f")
        ledger.note(number, imei=imei, cert_pem=cert)
        ledger.finish(number, outcome)
        return number

    attempt(IMEI, None, Outcome.REFUSED)  # a device's failed first try comes first
    attempt(None, "orphan", Outcome.ENROLLED)  # no IMEI: belongs to no device
    old = attempt(IMEI, "old", Outcome.ENROLLED)
    attempt(IMEI, "issued, never written", Outcome.REFUSED)  # not what the device holds
    attempt(OTHER_IMEI, None, Outcome.ENROLLED)  # no certificate: nothing to export
    other = attempt(OTHER_IMEI, "other", Outcome.ALREADY_ENROLLED)
    new = attempt(IMEI, "new", Outcome.ENROLLED)
    attempt(IMEI, "refused later", Outcome.REFUSED)
    chosen = latest_per_device(ledger.attempts())
    assert [(a.id, a.imei, a.cert_pem) for a in chosen] == [
        (other, OTHER_IMEI, "other"),
        (new, IMEI, "new"),
    ]
    assert old < other < new


def test_a_database_error_is_its_first_line_or_its_type() -> None:
    def error(text: str) -> sa.exc.OperationalError:
        return sa.exc.OperationalError("SELECT 1", {}, ConnectionError(text))

    assert ledger_module._db_reason(error("  could not connect\nDETAIL: more  ")) == (
        "could not connect"
    )
    assert ledger_module._db_reason(error("")) == "ConnectionError"


def test_a_ledger_url_is_shown_without_its_password() -> None:
    shown = ledger_module.describe_url("postgresql://station:hunter2@db.example/ledger")
    assert shown == "postgresql://station:***@db.example/ledger"
    assert ledger_module.describe_url("not a url at all") == "(unparsable ledger URL)"
