"""The ledger on SQLite and on a real PostgreSQL server: schema, serials, locks, two stations,
and the exports (nRF Cloud bulk onboarding CSV, AWS IoT bulk registration JSON lines)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509

from provguard import enroll
from provguard import ledger as ledger_module
from provguard.cli import main
from provguard.ledger import (
    SCHEMA_VERSION,
    DeviceBusyError,
    Ledger,
    LedgerError,
    Outcome,
    locks,
    schema_version,
)
from tests import factories
from tests.keygen_fake import FakeModem
from tests.postgres import postgres_server, postgres_url  # noqa: F401
from tests.test_enroll import TAG, Pki, job

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger.open(ledger_url) as opened:
        yield opened


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_schema_is_versioned_and_a_newer_ledger_is_refused(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as first:
        assert first.version() == SCHEMA_VERSION
        assert first.migrate() == SCHEMA_VERSION  # opening again migrates nothing
        with first.engine.begin() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert {"schema_version", "attempts", "serials", "locks", "device_cas"} <= tables
            conn.execute(sa.insert(schema_version).values(version=99, applied_at="later"))
    with pytest.raises(LedgerError, match="schema version 99"):
        Ledger.open(ledger_url)
    assert writer_threads() == [], "a ledger refused for its schema left its writer running"


def writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "ledger-writer" and t.is_alive()]


def test_unusable_ledger_urls_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="sqlite:///FILE"):
        Ledger.open("sqlite://")
    with pytest.raises(LedgerError, match="unsupported"):
        Ledger.open("mysql://x@y/z")
    with pytest.raises(LedgerError, match="cannot open the ledger"):
        Ledger.open(f"sqlite:///{tmp_path / 'missing-dir' / 'ledger.sqlite'}")
    assert writer_threads() == [], "a ledger that could not be opened left its writer running"


def test_serials_are_unique_under_concurrency(ledger: Ledger) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(25):
            serial = ledger.reserve_serial("SHA256:ca", 1)
            with lock:
                got.append(serial)

    threads = [threading.Thread(target=reserve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == len(set(got)) == 100
    assert all(0 < s < 2**159 and s.bit_length() > 64 for s in got)
    with ledger.engine.begin() as conn:
        stored = conn.execute(sa.text("SELECT count(DISTINCT serial) FROM serials")).scalar()
    assert stored == 100


def test_a_device_cannot_be_claimed_twice_and_a_dead_claim_is_taken_over(ledger: Ledger) -> None:
    first = ledger.begin(station="a", port="p1", sec_tag=1, device_ca_fingerprint="f")
    second = ledger.begin(station="b", port="p2", sec_tag=1, device_ca_fingerprint="f")
    ledger.acquire("352656100000001", station="a", attempt_id=first)
    with pytest.raises(DeviceBusyError, match="station 'a'"):
        ledger.acquire("352656100000001", station="b", attempt_id=second)
    ledger.finish(first, Outcome.ENROLLED)
    ledger.acquire("352656100000001", station="b", attempt_id=second)  # released by finish

    # A claim left by a process that no longer exists on this host (a crashed station).
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    third = ledger.begin(station="c", port="p3", sec_tag=1, device_ca_fingerprint="f")
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.update(locks)
            .where(locks.c.imei == "352656100000001")
            .values(pid=int(dead.stdout), host=socket.gethostname())
        )
    ledger.acquire("352656100000001", station="c", attempt_id=third)

    # A claim from another host counts until its lease runs out.
    fourth = ledger.begin(station="d", port="p4", sec_tag=1, device_ca_fingerprint="f")
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(locks).values(host="elsewhere", pid=1))
    with pytest.raises(DeviceBusyError):
        ledger.acquire("352656100000001", station="d", attempt_id=fourth)
    expired = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)).isoformat()
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(locks).values(expires_at=expired))
    ledger.acquire("352656100000001", station="d", attempt_id=fourth)
    stopped = next(a for a in ledger.attempts() if a.id == second)
    assert stopped.outcome == "in_progress"
    assert "taken over" in (stopped.error or "")


def _station(
    name: str, modems: list[FakeModem], pki: Pki, url: str, results: list[enroll.DeviceResult]
) -> None:
    with Ledger.open(url) as ledger:
        base = job(pki)
        station_job = enroll.EnrollJob(**{**base.__dict__, "station": name})
        threads = []
        out: list[enroll.DeviceResult] = []

        def one(modem: FakeModem) -> None:
            out.append(enroll.enroll_device(modem, station_job, ledger, port=modem.port))

        for modem in modems:
            threads.append(threading.Thread(target=one, args=(modem,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results.extend(out)


def test_two_stations_enrolling_the_same_batch(ledger_url: str, pki: Pki) -> None:
    """Each station sees a modem for every IMEI of the batch (the same devices moved between
    stations, or clones): every IMEI ends enrolled exactly once, no serial is issued twice."""
    imeis = [f"35265610000{n:04d}" for n in range(8)]
    batch_a = [FakeModem(imei=i, port=f"A{n}") for n, i in enumerate(imeis)]
    batch_b = [FakeModem(imei=i, port=f"B{n}") for n, i in enumerate(imeis)]
    Ledger.open(ledger_url).close()  # schema first, as a station's first run does
    results: list[enroll.DeviceResult] = []
    stations = [
        threading.Thread(target=_station, args=("A", batch_a, pki, ledger_url, results)),
        threading.Thread(target=_station, args=("B", batch_b, pki, ledger_url, results)),
    ]
    for thread in stations:
        thread.start()
    for thread in stations:
        thread.join()
    assert len(results) == 16
    enrolled = [r for r in results if r.outcome is Outcome.ENROLLED]
    assert sorted(r.imei for r in enrolled) == imeis  # each IMEI exactly once
    others = [r for r in results if r.outcome is not Outcome.ENROLLED]
    assert all(r.outcome is Outcome.REFUSED for r in others), [r.error for r in others]
    assert all("right now" in (r.error or "") or "was enrolled" in (r.error or "") for r in others)
    # No modem of the losing station got a key or a certificate written.
    for modem in batch_a + batch_b:
        assert (TAG, 1) in modem.store or not any(c.startswith("AT%KEYGEN") for c in modem.received)
    with Ledger.open(ledger_url) as ledger:
        rows = ledger.attempts()
        serials = [r.cert_serial for r in rows if r.cert_serial]
        assert len(serials) == len(set(serials)) == 8
        assert sorted(r.imei for r in rows if r.outcome == "enrolled") == imeis  # type: ignore[type-var]
        assert all(r.outcome != "in_progress" for r in rows)


def _enroll_two(pki: Pki, url: str) -> list[FakeModem]:
    modems = [FakeModem(imei="352656100000011"), FakeModem(imei="352656100000029")]
    with Ledger.open(url) as ledger:
        ledger.record_device_ca(
            pki.dca_cert, job(pki).device_ca.fingerprint, job(pki).device_ca.pem
        )
        for modem in modems:
            assert enroll.enroll_device(modem, job(pki), ledger, port=modem.port).outcome is (
                Outcome.ENROLLED
            )
    return modems


def test_nrf_cloud_export(ledger_url: str, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    modems = _enroll_two(pki, ledger_url)
    code = main(
        [
            "ledger",
            "--ledger",
            ledger_url,
            "export",
            "--format",
            "nrfcloud",
            "--tags",
            "line-1|batch-7",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out)))
    # nRF Cloud ProvisionDevices CSV: no header, deviceId,subType,tags,fwTypes,"certPem"
    assert len(rows) == 2
    for row, modem in zip(rows, modems, strict=True):
        device_id, subtype, tags, fw_types, cert_pem = row
        assert device_id == f"nrf-{modem.imei}"
        assert (subtype, tags, fw_types) == ("", "line-1|batch-7", "APP|MODEM")
        assert cert_pem == modem.store[(TAG, 1)].decode()
        x509.load_pem_x509_certificate(cert_pem.encode())
    assert out.count('"-----BEGIN CERTIFICATE-----') == 2  # the PEM is quoted
    assert (
        main(
            [
                "ledger",
                "--ledger",
                ledger_url,
                "export",
                "--format",
                "nrfcloud",
                "--tags",
                "bad tag",
            ]
        )
        == 2
    )


def test_aws_and_csv_exports(
    ledger_url: str, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    modems = _enroll_two(pki, ledger_url)
    out_file = tmp_path / "aws.jsonl"
    assert (
        main(
            [
                "ledger",
                "--ledger",
                ledger_url,
                "export",
                "--format",
                "aws",
                "--output",
                str(out_file),
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [line["SerialNumber"] for line in lines] == [m.imei for m in modems]
    assert [line["ThingName"] for line in lines] == [f"nrf-{m.imei}" for m in modems]
    assert lines[0]["CertificatePem"] == modems[0].store[(TAG, 1)].decode()
    assert lines[0]["CACertificatePem"] == pki.dca_cert_path.read_text()
    # Never overwritten.
    assert (
        main(
            [
                "ledger",
                "--ledger",
                ledger_url,
                "export",
                "--format",
                "aws",
                "--output",
                str(out_file),
            ]
        )
        == 2
    )
    capsys.readouterr()
    assert main(["ledger", "--ledger", ledger_url, "export", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["imei"] for r in table] == [m.imei for m in modems]
    assert table[0]["cert_pem"] == modems[0].store[(TAG, 1)].decode()
    assert main(["ledger", "--ledger", ledger_url, "show", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [a["outcome"] for a in shown] == ["enrolled", "enrolled"]


def test_the_ledger_never_holds_a_key(pki: Pki, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    modems = _enroll_two(pki, url)
    data = (tmp_path / "l.sqlite").read_bytes()
    wal = tmp_path / "l.sqlite-wal"
    if wal.exists():
        data += wal.read_bytes()
    dca_secret = pki.dca_key.private_numbers().private_value.to_bytes(32, "big")
    assert dca_secret not in data, "device CA key material in the ledger (not shown)"
    for modem in modems:
        for secret in modem.key_secrets():
            assert secret not in data, "device key material in the ledger (not shown)"


def test_ledger_show_text(pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    modems = _enroll_two(pki, url)
    assert main(["ledger", "--ledger", url, "show"]) == 0
    out = capsys.readouterr().out
    assert modems[0].imei in out
    assert "2 attempt(s)" in out
    assert os.path.exists(tmp_path / "l.sqlite")


def test_a_later_migration_is_applied_once_in_order(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Ledger.open(ledger_url).close()  # a version-1 ledger, as stations have it
    applied: list[int] = []

    def add_column(conn: sa.Connection) -> None:
        applied.append(2)
        conn.execute(sa.text("ALTER TABLE attempts ADD COLUMN operator VARCHAR(80)"))

    monkeypatch.setattr(ledger_module, "MIGRATIONS", (*ledger_module.MIGRATIONS, (2, add_column)))
    monkeypatch.setattr(ledger_module, "SCHEMA_VERSION", 2)
    with Ledger.open(ledger_url) as upgraded:
        assert upgraded.version() == 2
        with upgraded.engine.begin() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("attempts")}
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
        assert "operator" in columns
        assert sorted(versions) == [1, 2]
    Ledger.open(ledger_url).close()
    assert applied == [2]  # not again


def test_an_unreachable_postgresql_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"postgresql://station:hunter2@/ledger?host={tmp_path / 'nowhere'}"
    assert main(["ledger", "--ledger", url, "show"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the ledger" in err
    assert "hunter2" not in err
    assert err.count("\n") == 1


def test_a_bare_postgresql_url_uses_psycopg_3_whatever_sqlalchemy_defaults_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLAlchemy 2.0 (what pip installs on Python 3.10) names psycopg2 as the driver of a bare
    postgresql://, 2.1 names psycopg: the URL the README shows must work with either."""
    url = "postgresql://station@/ledger?host=/run/postgresql"
    assert ledger_module._engine(url).dialect.driver == "psycopg"

    def default_of_sqlalchemy_2_0(self: sa.engine.URL) -> str:
        return self.drivername.partition("+")[2] or "psycopg2"

    monkeypatch.setattr(sa.engine.URL, "get_driver_name", default_of_sqlalchemy_2_0)
    engine = ledger_module._engine(url)
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    assert ledger_module._engine(
        url.replace("postgresql:", "postgresql+psycopg:")
    ).dialect.driver == ("psycopg")


@pytest.mark.parametrize("driver", ["psycopg2", "asyncpg", "pg8000"])
def test_a_postgresql_url_naming_another_driver_is_one_line(
    driver: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql+{driver}://station:hunter2@/ledger?host=/run/postgresql"
    with pytest.raises(LedgerError, match=f"psycopg 3, not {driver}: use postgresql://"):
        ledger_module._engine(url)
    assert main(["ledger", "--ledger", url, "show"]) == 2
    err = capsys.readouterr().err
    assert f"not {driver}" in err
    assert "hunter2" not in err
    assert err.count("\n") == 1


def test_sqlite_writes_committed_together_fail_alone(tmp_path: Path) -> None:
    """Workers' writes share one commit; one that fails is rolled back alone (savepoint) and
    its worker gets the error, while every other write is durable when its call returns."""
    with Ledger.open(f"sqlite:///{tmp_path / 'l.sqlite'}") as ledger:
        barrier = threading.Barrier(12)
        errors: list[str] = []

        def one(n: int) -> None:
            barrier.wait()
            attempt = ledger.begin(station=f"s{n}", port="p", sec_tag=n, device_ca_fingerprint="f")
            try:
                if n % 3 == 0:
                    ledger.note(attempt, no_such_column=1)
                ledger.issue(attempt, "f", lambda serial: _fail() if n % 4 == 0 else ("fp", "pem"))
            except (ValueError, RuntimeError) as exc:
                errors.append(type(exc).__name__)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rows = ledger.attempts()
        issued = sorted(r.sec_tag for r in rows if r.cert_serial)
        with ledger.engine.begin() as conn:
            reserved = conn.execute(sa.text("SELECT count(*) FROM serials")).scalar()
    assert len(rows) == 12
    # n % 3 == 0 stop at the bad note; of the others, n % 4 == 0 fail inside issue
    assert issued == [1, 2, 5, 7, 10, 11]
    assert reserved == 6  # the serials of failed issues were rolled back with them
    assert sorted(errors) == ["RuntimeError"] * 2 + ["ValueError"] * 4


def _fail() -> tuple[str, str]:
    raise RuntimeError("signing failed")


def test_nrf_cloud_exports_above_1000_devices_are_split(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    key = factories.ec_key()
    rows = []
    for n in range(1001):
        imei = f"35265610{n:07d}"
        cert = factories.make_cert(f"nrf-{imei}", key, issuer=(pki.dca_cert, pki.dca_key))
        rows.append(
            {
                "imei": imei,
                "station": "s",
                "port": "p",
                "sec_tag": TAG,
                "device_ca_fingerprint": "f",
                "step": "verify",
                "cert_serial": format(cert.serial_number, "x"),
                "cert_pem": factories.cert_pem(cert).decode(),
                "started_at": "2026-01-01T00:00:00",
                "outcome": "enrolled",
            }
        )
    with Ledger.open(url) as ledger, ledger.engine.begin() as conn:
        conn.execute(sa.insert(ledger_module.attempts), rows)
    assert main(["ledger", "--ledger", url, "export", "--format", "nrfcloud"]) == 2
    assert "at most 1000" in capsys.readouterr().err
    out = tmp_path / "onboard.csv"
    assert main(["ledger", "--ledger", url, "export", "--format", "nrfcloud", "-o", str(out)]) == 0
    assert (
        main(["ledger", "--ledger", url, "export", "--format", "nrfcloud", "--output", str(out)])
        == 2  # the parts exist: never overwritten
    )
    assert "not overwriting" in capsys.readouterr().err
    first = list(csv.reader((tmp_path / "onboard-1.csv").open()))
    second = list(csv.reader((tmp_path / "onboard-2.csv").open()))
    assert (len(first), len(second)) == (1000, 1)
    assert second[0][0] == "nrf-352656100001000"
    assert not out.exists()
