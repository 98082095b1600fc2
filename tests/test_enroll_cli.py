"""`provguard enroll` end to end: the shipped modem simulator on real pseudo-terminals."""

from __future__ import annotations

import base64
import csv
import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provguard import enroll
from provguard.cli import main
from provguard.commands.enroll import Reporter
from provguard.ledger import Ledger, Outcome
from provguard.modemsim import Faults, ModemSim, ModemState
from tests import factories
from tests.keygen_fake import FakeModem
from tests.postgres import postgres_server, postgres_url  # noqa: F401
from tests.test_enroll import Pki, job

TAG = 24  # the command's default


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _args(pki: Pki, *ports: str, extra: tuple[str, ...] = ()) -> list[str]:
    where = ["--port", ports[0]] if len(ports) == 1 else ["--ports", *ports]
    return [
        "enroll",
        *where,
        "--device-ca-cert",
        str(pki.dca_cert_path),
        "--device-ca-key",
        str(pki.dca_key_path),
        "--ca",
        str(pki.root_path),
        "--timeout",
        "2",
        "--station",
        "test-line",
        *extra,
    ]


def _main(argv: list[str]) -> int:
    return main(argv)


def _secrets(sims: list[ModemSim]) -> list[bytes]:
    """Every encoding of every key the simulated modems hold (compared, never printed)."""
    out: list[bytes] = []
    for sim in sims:
        for (_tag, kind), content in sim.store.items():
            if kind != 2:
                continue
            key = serialization.load_pem_private_key(content, password=None)
            der = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            out += [der, base64.b64encode(der)]
            out += [line for line in content.splitlines() if not line.startswith(b"-----")]
    return out


def _assert_no_keys(sims: list[ModemSim], *blobs: bytes) -> None:
    secrets = _secrets(sims)
    assert secrets, "the modems hold no key: nothing was checked"
    for secret in secrets:
        for blob in blobs:
            assert secret not in blob, "key material found (not shown)"


@pytest.fixture
def sims() -> Iterator[list[ModemSim]]:
    with ExitStack() as stack:
        started = [stack.enter_context(ModemSim(ModemState.create())) for _ in range(4)]
        yield started


def test_single_port_enrolls_then_writes_nothing(
    pki: Pki, workdir: Path, sims: list[ModemSim], capsys: pytest.CaptureFixture[str]
) -> None:
    sim = sims[0]
    assert _main(_args(pki, sim.port)) == 0
    out1, err1 = capsys.readouterr()
    assert f"{sim.port}: {sim.state.imei} enrolled" in out1
    assert "written: client certificate, broker root CA" in out1
    assert "functional mode restored to CFUN=1" in out1
    assert sim.cfun == 1
    cert = x509.load_pem_x509_certificate(sim.store[(TAG, 1)])
    public = sim.public_key(TAG)
    assert public is not None
    assert cert.public_key() == public
    assert cert.subject.rfc4514_string() == f"CN=nrf-{sim.state.imei}"
    keygens = [c for c in sim.received if c.startswith("AT%KEYGEN")]
    assert keygens == [f'AT%KEYGEN={TAG},2,0,"CN=nrf-{sim.state.imei}"']
    stored = sim.stored()
    received = len(sim.received)

    assert _main(_args(pki, sim.port)) == 0
    out2, err2 = capsys.readouterr()
    assert "already_enrolled" in out2
    assert "written: nothing" in out2
    assert sim.stored() == stored
    new = sim.received[received:]
    assert not [c for c in new if c.startswith(("AT%KEYGEN", "AT%CMNG=0", "AT%CMNG=3"))]

    ledger_bytes = (workdir / "provguard-ledger.sqlite").read_bytes()
    wal = workdir / "provguard-ledger.sqlite-wal"
    log = (workdir / "provguard-enroll.jsonl").read_bytes()
    _assert_no_keys(
        [sim],
        (out1 + err1 + out2 + err2).encode(),
        ledger_bytes + (wal.read_bytes() if wal.exists() else b""),
        log,
    )
    with Ledger.open("sqlite:///provguard-ledger.sqlite") as ledger:
        rows = ledger.attempts()
    assert [r.outcome for r in rows] == ["enrolled", "already_enrolled"]
    assert rows[0].modem_firmware == sim.state.firmware
    assert rows[0].cert_fingerprint == rows[1].cert_fingerprint


def test_many_ports_one_failure_never_stops_the_others(
    pki: Pki, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refusing = Faults(refuse_write={1: 515})  # the first write (%KEYGEN): memory full
    with ExitStack() as stack:
        sims = [stack.enter_context(ModemSim(ModemState.create())) for _ in range(3)]
        bad = stack.enter_context(ModemSim(ModemState.create(), faults=refusing))
        ports = [s.port for s in sims] + [bad.port]
        assert _main(_args(pki, *ports, extra=("--format", "json"))) == 1
        report = json.loads(capsys.readouterr().out)
        outcomes = {d["port"]: d["outcome"] for d in report["devices"]}
        assert outcomes == {**{s.port: "enrolled" for s in sims}, bad.port: "refused"}
        refused = next(d for d in report["devices"] if d["port"] == bad.port)
        assert "515" in refused["error"]
        assert "memory full" in refused["error"]
        assert report["exit_code"] == 1
        assert all(s.cfun == 1 for s in [*sims, bad])
        events = [
            json.loads(line) for line in Path("provguard-enroll.jsonl").read_text().splitlines()
        ]
        assert {e["port"] for e in events} == set(ports)
        finals = [e for e in events if e["step"] == "result"]
        assert {e["port"]: e["result"]["outcome"] for e in finals} == outcomes

        # The same command again: the refused device still refuses; the done ones get 0 writes.
        before = {s.port: len(s.received) for s in sims}
        bad.faults.refuse_write.clear()
        assert _main(_args(pki, *ports, extra=("--format", "json"))) == 0
        again = json.loads(capsys.readouterr().out)
        outcomes = {d["port"]: d["outcome"] for d in again["devices"]}
        assert outcomes == {**{s.port: "already_enrolled" for s in sims}, bad.port: "enrolled"}
        for sim in sims:
            new = sim.received[before[sim.port] :]
            assert not [c for c in new if c.startswith(("AT%KEYGEN", "AT%CMNG=0", "AT%CMNG=3"))]


def test_a_port_dropped_mid_write_is_finished_by_the_rerun(
    pki: Pki, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ModemState.create()
    # Write 1 is %KEYGEN, write 2 the client certificate: it reaches NVM, then the port drops.
    with ModemSim(state, faults=Faults(drop_at_write=2)) as sim:
        assert _main(_args(pki, sim.port)) == 1
        out, _ = capsys.readouterr()
        assert "refused" in out
        key = sim.public_key(TAG)
    with ModemSim(state) as sim:  # power-cycled: online again, same NVM
        assert _main(_args(pki, sim.port)) == 0
        out, _ = capsys.readouterr()
        assert "enrolled" in out
        assert not [c for c in sim.received if c.startswith("AT%KEYGEN")]
        assert sim.public_key(TAG) == key
        cert = x509.load_pem_x509_certificate(sim.store[(TAG, 1)])
        assert cert.public_key() == key
        assert sim.cfun == 1


def test_unusable_inputs_touch_no_modem(
    pki: Pki, workdir: Path, sims: list[ModemSim], capsys: pytest.CaptureFixture[str]
) -> None:
    other = workdir / "other.key"
    other.write_bytes(factories.key_pem(factories.ec_key()))
    argv = _args(pki, sims[0].port)
    argv[argv.index("--device-ca-key") + 1] = str(other)
    assert _main(argv) == 2
    err = capsys.readouterr().err
    assert "does not belong to the device CA certificate" in err
    assert err.count("\n") == 1
    assert sims[0].received == []
    with pytest.raises(SystemExit) as exited:
        _main([*_args(pki, sims[0].port), "--timeout", "nan"])
    assert exited.value.code == 2
    assert "finite number of seconds" in capsys.readouterr().err
    # A port that does not exist, next to one that works: that one is enrolled; exit 2.
    assert _main(_args(pki, sims[1].port, str(workdir / "no-such-port"))) == 2
    out, _ = capsys.readouterr()
    assert f"{sims[1].port}: {sims[1].state.imei} enrolled" in out
    assert "cannot open the serial port" in out


def test_ports_from_file_and_glob(
    pki: Pki, workdir: Path, sims: list[ModemSim], capsys: pytest.CaptureFixture[str]
) -> None:
    listing = workdir / "ports.txt"
    listing.write_text(f"# line 1\n{sims[0].port}\n\n{sims[1].port}  # left\n")
    argv = _args(pki, "x")
    at = argv.index("--port")
    argv[at : at + 2] = ["--ports-from", str(listing)]
    assert _main(argv) == 0
    out, _ = capsys.readouterr()
    assert f"{sims[0].port}: {sims[0].state.imei} enrolled" in out
    assert f"{sims[1].port}: {sims[1].state.imei} enrolled" in out
    assert "2 device(s): 2 enrolled" in out
    links = workdir / "dev"
    links.mkdir()
    (links / "ttyNRF0").symlink_to(sims[2].port)
    (links / "ttyNRF1").symlink_to(sims[3].port)
    assert _main(_args(pki, str(links / "ttyNRF*"))) == 0
    out, _ = capsys.readouterr()
    assert f"{links / 'ttyNRF0'}: {sims[2].state.imei} enrolled" in out
    assert f"{links / 'ttyNRF1'}: {sims[3].state.imei} enrolled" in out
    assert _main(_args(pki, str(links / "nothing*"))) == 2


def test_ctrl_c_stops_between_commands_and_restores_the_mode(pki: Pki, tmp_path: Path) -> None:
    stop = threading.Event()
    modem = FakeModem()
    modem.fault = lambda line: stop.set() if line.startswith("AT%KEYGEN") else None  # type: ignore[func-returns-value]
    with Ledger.open(f"sqlite:///{tmp_path / 'l.sqlite'}") as ledger:
        result = enroll.enroll_device(modem, job(pki), ledger, port=modem.port, stop=stop)
        assert result.outcome is Outcome.INTERRUPTED
        assert modem.cfun == 1
        assert modem.received[-1] == "AT+CFUN=1"
        assert ledger.attempts()[-1].outcome == "interrupted"
        again = enroll.enroll_device(modem, job(pki), ledger, port=modem.port)
        assert again.outcome is Outcome.ENROLLED
        assert sum(1 for c in modem.received if c.startswith("AT%KEYGEN")) == 1


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_table_shows_port_imei_step_and_result() -> None:
    screen = _Tty()
    reporter = Reporter(["/dev/ttyACM0", "/dev/ttyACM1"], None, screen, "line-1")
    reporter.event("/dev/ttyACM0", "identified", "352656100000001")
    reporter.event("/dev/ttyACM0", "keygen")
    reporter.event("/dev/ttyACM1", "done", "refused")
    reporter.finish()
    last = screen.getvalue().split("\x1b[3F")[-1]
    lines = [line.replace("\x1b[K", "").split() for line in last.splitlines()]
    assert lines[0] == ["PORT", "IMEI", "STEP", "RESULT"]
    assert lines[1] == ["/dev/ttyACM0", "352656100000001", "keygen"]
    assert lines[2] == ["/dev/ttyACM1", "done", "refused"]


class _SlowSim(ModemSim):
    """A modem that takes a while per command, so that Ctrl-C lands mid-enrollment."""

    def answer(self, line: str) -> str:
        time.sleep(0.15)
        return super().answer(line)


def test_ctrl_c_in_the_cli_restores_every_modem_and_exits_130(pki: Pki, tmp_path: Path) -> None:
    with ExitStack() as stack:
        sims = [stack.enter_context(_SlowSim(ModemState.create())) for _ in range(2)]
        process = subprocess.Popen(
            [sys.executable, "-m", "provguard", *_args(pki, *(s.port for s in sims))],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not all("AT+CFUN=4" in s.received for s in sims):
            assert time.monotonic() < deadline, "enrollment never took the modems offline"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "interrupted" in err
        assert "Traceback" not in err
        for sim in sims:
            assert sim.cfun == 1  # restored
            assert sim.received[-1] == "AT+CFUN=1"
            assert f"{sim.port}: {sim.state.imei} interrupted" in out
        assert out.count("functional mode restored to CFUN=1") == 2
    with Ledger.open(f"sqlite:///{tmp_path / 'provguard-ledger.sqlite'}") as ledger:
        assert [a.outcome for a in ledger.attempts()] == ["interrupted", "interrupted"]


def test_reading_a_ledger_that_does_not_exist_creates_none(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "show"]) == 2
    assert "no ledger here" in capsys.readouterr().err
    assert not (workdir / "provguard-ledger.sqlite").exists()


def test_enroll_with_a_postgresql_ledger(
    pki: Pki,
    workdir: Path,
    sims: list[ModemSim],
    postgres_url: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    ports = [s.port for s in sims[:2]]
    assert _main(_args(pki, *ports, extra=("--ledger", postgres_url))) == 0
    capsys.readouterr()
    assert main(["ledger", "--ledger", postgres_url, "export", "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert sorted(d["imei"] for d in exported) == sorted(s.state.imei for s in sims[:2])
    for row in exported:
        sim = next(s for s in sims if s.state.imei == row["imei"])
        assert row["cert_pem"] == sim.store[(TAG, 1)].decode()
        assert row["station"] == "test-line"
    assert not (workdir / "provguard-ledger.sqlite").exists()


def test_verbose_shows_the_at_exchange_and_never_a_key(
    pki: Pki, workdir: Path, sims: list[ModemSim], capsys: pytest.CaptureFixture[str]
) -> None:
    sim = sims[0]
    assert _main([*_args(pki, sim.port), "-v"]) == 0
    out, err = capsys.readouterr()
    assert f'{sim.port} > AT%KEYGEN=24,2,0,"CN=nrf-{sim.state.imei}"' in err
    assert f'{sim.port} < %KEYGEN: "' in err
    assert f"{sim.port} > AT+CFUN=1" in err
    _assert_no_keys([sim], (out + err).encode())


class _KillerSim(ModemSim):
    """Kills the enrolling process (SIGKILL: no clean-up runs) when a command arrives."""

    victim: subprocess.Popen[str] | None = None
    at_command = "AT%CMNG=0,24,1"

    def answer(self, line: str) -> str:
        text = super().answer(line)
        if line.startswith(self.at_command) and self.victim is not None:
            self.victim.kill()
            self.victim.wait()
        return text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_station_killed_mid_device_is_completed_by_the_rerun(
    pki: Pki,
    workdir: Path,
    backend: str,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = (
        f"sqlite:///{workdir / 'ledger.sqlite'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    with _KillerSim(ModemState.create()) as sim:
        argv = _args(pki, sim.port, extra=("--ledger", url))
        process = subprocess.Popen(
            [sys.executable, "-m", "provguard", *argv],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sim.victim = process
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        assert sim.cfun == 4  # nobody restored it: the station died
        key = sim.public_key(TAG)
        with Ledger.open(url) as ledger:
            (left,) = ledger.attempts()
            assert left.outcome == "in_progress"
            assert left.csr_pem is not None
        sim.victim = None
        assert _main(argv) == 0
        out, _ = capsys.readouterr()
        assert f"{sim.port}: {sim.state.imei} enrolled" in out
        assert sim.public_key(TAG) == key  # no second key
        cert = x509.load_pem_x509_certificate(sim.store[(TAG, 1)])
        assert cert.public_key() == key
        assert sim.cfun == 1  # the mode the killed attempt found, not the offline it left
        assert "restored to CFUN=1 (found CFUN=4, as attempt" in out
        with Ledger.open(url) as ledger:
            first, second = ledger.attempts()
        assert first.outcome == "in_progress"
        assert "taken over" in (first.error or "")
        assert second.outcome == "enrolled"
        assert second.cert_serial == format(cert.serial_number, "x")


def test_nrf_cloud_export_by_the_device_uuid_the_modem_attested(
    pki: Pki, workdir: Path, sims: list[ModemSim], capsys: pytest.CaptureFixture[str]
) -> None:
    ports = [s.port for s in sims[:2]]
    assert _main(_args(pki, *ports)) == 0
    assert _main(_args(pki, *ports)) == 0  # the latest word on each device: already enrolled
    capsys.readouterr()
    assert main(["ledger", "export", "--format", "nrfcloud", "--device-id", "uuid"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r[0] for r in rows) == sorted(s.state.device_id for s in sims[:2])


@pytest.mark.parametrize(
    ("faults", "timeout", "message"),
    [
        # the flood must outrun the timeout to be named as one: 5 s, not 0.5 s, on a loaded
        # machine (in CI the simulator once sent too little in 0.5 s, and the timeout was named)
        (Faults(flood=True), "5", "without a final result code"),
        (Faults(cme_digits=5000), "0.5", "5000-digit code"),
        (Faults(silent_after=0), "0.5", "no final result code within 0.5 s"),
    ],
)
def test_a_port_that_does_not_answer_like_a_modem_is_unusable_quickly(
    pki: Pki,
    workdir: Path,
    faults: Faults,
    timeout: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ModemSim(ModemState.create(), faults=faults) as sim:
        start = time.monotonic()
        argv = _args(pki, sim.port)
        argv[argv.index("--timeout") + 1] = timeout
        assert _main(argv) == 2
        assert time.monotonic() - start < 10
    out, _ = capsys.readouterr()
    assert f"{sim.port}: - unusable" in out
    assert message in out


def test_an_encrypted_device_ca_key_with_its_password_in_the_environment(
    pki: Pki,
    workdir: Path,
    sims: list[ModemSim],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pki.dca_key_path.write_bytes(factories.key_pem(pki.dca_key, password=b"line 1 secret"))
    argv = [*_args(pki, sims[0].port), "--device-ca-key-pass-env", "DCA_PASS"]
    assert _main(argv) == 2
    assert "DCA_PASS is not set" in capsys.readouterr().err
    assert sims[0].received == []  # refused before any modem was touched
    monkeypatch.setenv("DCA_PASS", "line 1 secret")
    assert _main(argv) == 0
    out, err = capsys.readouterr()
    assert "line 1 secret" not in out + err
    assert f"{sims[0].port}: {sims[0].state.imei} enrolled" in out
