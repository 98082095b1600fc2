"""Provisioning under refusals, hangs, lost ports, Ctrl-C, hostile AT interfaces and credentials
written by other tools: the simulator (`provguard.modemsim`) on real pseudo-terminals."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provguard import at
from provguard.cli import main
from provguard.credentials import Slot
from provguard.errors import EXIT_PROBLEMS, EXIT_UNUSABLE
from provguard.modemsim import Faults, ModemSim, ModemState
from provguard.provision import (
    KeyPolicy,
    Outcome,
    ProvisionReport,
    key_digests,
    provision,
    same_certificates,
)
from provguard.transport import SerialTransport
from tests import factories
from tests.modem_standin import assert_no_key_material, sha256_hex

TAG = 24
TIMEOUT = 0.25


def _pem_cert(cert: x509.Certificate) -> bytes:
    return factories.cert_pem(cert)


@pytest.fixture(scope="module")
def pair_sets() -> tuple[dict[Slot, bytes], dict[Slot, bytes]]:
    """(old, new): two complete credential sets (CA, client certificate, its key)."""
    sets = []
    for name in ("old", "new"):
        ca_key = factories.ec_key()
        ca = factories.make_cert(f"{name} CA", ca_key, ca=True)
        key = factories.ec_key()
        cert = factories.make_cert(f"{name} device", key, issuer=(ca, ca_key))
        sets.append(
            {Slot.CA: _pem_cert(ca), Slot.CERT: _pem_cert(cert), Slot.KEY: factories.key_pem(key)}
        )
    return sets[0], sets[1]


def _state_holding(contents: dict[Slot, bytes]) -> ModemState:
    state = ModemState.create()
    for slot, content in contents.items():
        state.store[(TAG, slot.modem_type)] = content
    return state


def _pair_belongs_together(modem: ModemSim) -> bool:
    """The client certificate at TAG is for the private key at TAG (public halves compared)."""
    cert_pem = modem.store.get((TAG, 1))
    public = modem.public_key(TAG)
    if cert_pem is None or public is None:
        return False
    certified = x509.load_pem_x509_certificate(cert_pem).public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return certified.public_bytes(der, spki) == public.public_bytes(der, spki)


class _InterruptAtWrite:
    """A transport that is Ctrl-C'd while waiting for the answer to write `k`."""

    def __init__(self, inner: SerialTransport, k: int):
        self.inner = inner
        self.k = k
        self.writes = 0

    def send(self, command: at.AtCommand) -> at.Response:
        if command.summary.startswith("AT%CMNG=0"):
            self.writes += 1
            if self.writes == self.k:
                self.inner.send(command)
                raise KeyboardInterrupt
        return self.inner.send(command)


FAULTS: dict[str, Callable[[int], Faults]] = {
    "refused 515": lambda k: Faults(refuse_write={k: 515}),
    "refused 527": lambda k: Faults(refuse_write={k: 527}),
    "hangs after the write": lambda k: Faults(hang_at_write=k),
    "hangs, write lost": lambda k: Faults(hang_at_write=k, write_reaches_modem=False),
    "port lost after the write": lambda k: Faults(drop_at_write=k),
    "port lost, write lost": lambda k: Faults(drop_at_write=k, write_reaches_modem=False),
    "Ctrl-C": lambda k: Faults(),
}


def _run(
    state: ModemState,
    contents: dict[Slot, bytes],
    policy: KeyPolicy,
    faults: Faults,
    interrupt_at: int | None = None,
) -> tuple[ProvisionReport, ModemSim]:
    opaque = policy is KeyPolicy.IF_MISSING  # the firmware if-missing exists for
    with (
        ModemSim(state, cfun=1, faults=faults, opaque_key_digest=opaque) as modem,
        SerialTransport(modem.port, timeout=TIMEOUT) as port,
    ):
        transport = port if interrupt_at is None else _InterruptAtWrite(port, interrupt_at)
        report = provision(transport, contents, TAG, key_policy=policy)
    return report, modem


@pytest.mark.parametrize("policy", list(KeyPolicy))
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_no_interruption_point_leaves_a_mismatched_pair_reported_as_success(
    pair_sets: tuple[dict[Slot, bytes], dict[Slot, bytes]], policy: KeyPolicy, fault: str, k: int
) -> None:
    old, new = pair_sets
    state = _state_holding(old)
    interrupt_at = k if fault == "Ctrl-C" else None
    first, modem = _run(state, new, policy, FAULTS[fault](k), interrupt_at)
    # all three slots differ, so write k happens and its fault strikes: never a success
    assert not first.ok
    assert first.interrupted is (fault == "Ctrl-C")
    if first.restored or not first.went_offline:
        assert modem.cfun == 1 or modem.silent or modem.dropped
    second, modem = _run(state, new, policy, Faults())
    assert second.ok, second.error
    assert _pair_belongs_together(modem)
    assert modem.stored()[(TAG, 1)] == sha256_hex(new[Slot.CERT])
    assert modem.stored()[(TAG, 0)] == sha256_hex(new[Slot.CA])
    assert modem.cfun == 1
    third, _ = _run(state, new, policy, Faults())
    assert third.ok
    assert third.count(Outcome.WRITTEN) == 0


def test_a_write_that_reached_the_modem_before_the_port_went_away_is_found_done(
    pair_sets: tuple[dict[Slot, bytes], dict[Slot, bytes]],
) -> None:
    _, new = pair_sets
    state = ModemState.create()
    first, _ = _run(state, new, KeyPolicy.COMPARE, Faults(drop_at_write=2))
    outcomes = {r.plan.slot: r for r in first.results}
    assert outcomes[Slot.KEY].outcome is Outcome.FAILED
    assert "may or may not have reached the modem" in outcomes[Slot.KEY].detail
    assert outcomes[Slot.CERT].outcome is Outcome.NOT_WRITTEN
    assert first.restore_error is not None
    assert "left offline (CFUN=4)" in first.restore_error
    second, modem = _run(state, new, KeyPolicy.COMPARE, Faults())
    outcomes = {r.plan.slot: r.outcome for r in second.results}
    assert outcomes == {
        Slot.CA: Outcome.UNCHANGED,
        Slot.KEY: Outcome.UNCHANGED,  # it had reached the modem
        Slot.CERT: Outcome.WRITTEN,
    }
    assert modem.writes() == ["AT%CMNG=0,24,1"]


# -- credentials written by other tools ---------------------------------------------------------


def _crlf(pem: bytes) -> bytes:
    return pem.replace(b"\n", b"\r\n")


def _wrap76(pem: bytes) -> bytes:
    lines = pem.strip().split(b"\n")
    body = b"".join(lines[1:-1])
    return b"\n".join([lines[0], *(body[i : i + 76] for i in range(0, len(body), 76)), lines[-1]])


def _trailing_spaces(pem: bytes) -> bytes:
    return b"\n".join(line + b"  " for line in pem.split(b"\n"))


def _sec1(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


OTHER_TOOLS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    # (certificate form, key form) as other tools store them
    "CRLF (nRF Cloud installer)": (_crlf, _crlf),
    "trimmed (nrfcredstore, Cellular Monitor)": (bytes.rstrip, bytes.rstrip),
    "76-column lines": (_wrap76, lambda k: _wrap76(k) + b"\n"),
    "trailing spaces, SEC1 key": (_trailing_spaces, _sec1),
    "SEC1 key with CRLF": (_crlf, lambda k: _crlf(_sec1(k)).rstrip()),
}


@pytest.mark.parametrize("tool", list(OTHER_TOOLS))
def test_the_same_credentials_written_by_another_tool_are_not_written_again(
    pair_sets: tuple[dict[Slot, bytes], dict[Slot, bytes]], tool: str
) -> None:
    _, new = pair_sets
    cert_form, key_form = OTHER_TOOLS[tool]
    state = ModemState.create()
    state.store[(TAG, 0)] = cert_form(new[Slot.CA])
    state.store[(TAG, 1)] = cert_form(new[Slot.CERT])
    state.store[(TAG, 2)] = key_form(new[Slot.KEY])
    assert sha256_hex(state.store[(TAG, 1)]) != sha256_hex(new[Slot.CERT])
    assert sha256_hex(state.store[(TAG, 2)]) != sha256_hex(new[Slot.KEY])
    report, modem = _run(state, new, KeyPolicy.COMPARE, Faults())
    assert report.ok, report.error
    assert modem.writes() == []
    assert not any(c.startswith("AT+CFUN=") for c in modem.received)
    assert [r.outcome for r in report.results] == [Outcome.UNCHANGED] * 3
    assert "another PEM form" in report.results[1].detail


def test_another_certificate_in_another_form_is_still_written(
    pair_sets: tuple[dict[Slot, bytes], dict[Slot, bytes]],
) -> None:
    old, new = pair_sets
    state = ModemState.create()
    state.store[(TAG, 0)] = _crlf(new[Slot.CA])
    state.store[(TAG, 1)] = _crlf(old[Slot.CERT])
    state.store[(TAG, 2)] = _crlf(old[Slot.KEY])
    report, modem = _run(state, new, KeyPolicy.COMPARE, Faults())
    assert report.ok
    assert modem.writes() == ["AT%CMNG=0,24,2", "AT%CMNG=0,24,1"]
    assert _pair_belongs_together(modem)


# -- hostile interfaces -----------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return factories.write_credential_files(tmp_path, factories.device_pki())


def _args(port: str, files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "provision",
        "--port",
        port,
        "--ca",
        str(files["ca"]),
        "--cert",
        str(files["cert"]),
        "--key",
        str(files["key"]),
        *extra,
    ]


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "1e9", "ten"])
def test_timeouts_that_are_not_a_usable_wait_are_usage_errors(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(_args("/dev/null", files, f"--timeout={value}"))
    assert info.value.code == EXIT_UNUSABLE
    err = capsys.readouterr().err
    assert "--timeout" in err
    assert "Traceback" not in err
    assert "internal error" not in err


def test_check_timeout_bounds() -> None:
    assert at.check_timeout(0.001) == 0.001
    assert at.check_timeout(at.MAX_TIMEOUT) == at.MAX_TIMEOUT
    for bad in (0.0, -1.0, math.nan, math.inf, at.MAX_TIMEOUT + 1):
        with pytest.raises(at.UsageError):
            at.check_timeout(bad)


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (Faults(cme_digits=5000), "with a 5000-digit code"),
        (Faults(flood=True), "more than 262144 bytes without a final result code"),
        (Faults(babble=True), "a line longer than 16384 bytes without an end"),
    ],
)
def test_a_hostile_interface_gets_a_clear_error_within_bounds(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], faults: Faults, message: str
) -> None:
    with ModemSim(cfun=1, faults=faults) as modem:
        code = main(_args(modem.port, files, "--timeout", "20"))
    err = capsys.readouterr().err
    assert code == EXIT_PROBLEMS
    assert message in err
    assert "AT+CMEE=1" in err
    assert "Traceback" not in err
    assert len(err) < 2000


def test_verbose_trace_redacts_an_echo_with_a_prefix(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with ModemSim(cfun=1, echo_prefix="ECHO: ") as modem:
        assert main([*_args(modem.port, files), "-v"]) == 0
    out, err = capsys.readouterr()
    assert_no_key_material(out + err, files["key"].read_bytes())
    assert "ECHO: AT+CFUN?" in err
    assert "<redacted" in err
    # digests stay readable in the trace
    assert f'"{sha256_hex(files["ca"].read_bytes())}"' in err


def test_key_digests_cover_the_forms_other_tools_write_and_nothing_else() -> None:
    key = factories.key_pem(factories.ec_key())
    sec1 = _sec1(key)
    same = [key, key.rstrip(), _crlf(key), _crlf(key).rstrip(), _wrap76(key), sec1, _crlf(sec1)]
    digests = key_digests(key)
    for form in same:
        assert at.content_digest(form) in digests
    other = factories.key_pem(factories.ec_key())
    assert at.content_digest(other) not in digests
    assert at.content_digest(_trailing_spaces(key)) not in digests  # documented: not recognised


def test_same_certificates_compares_decoded_certificates_in_order() -> None:
    first = _pem_cert(factories.make_cert("one", factories.ec_key()))
    second = _pem_cert(factories.make_cert("two", factories.ec_key()))
    assert same_certificates(first + second, _crlf(_wrap76(first) + b"\n" + second).decode())
    assert same_certificates(first, _trailing_spaces(first).decode())
    assert not same_certificates(first + second, (second + first).decode())
    assert not same_certificates(first, (first + second).decode())
    assert not same_certificates(first, "garbage")


def test_trace_redactor_rules() -> None:
    key = factories.key_pem(factories.ec_key()).decode()
    redactor = at.TraceRedactor()
    echoed = f'ECHO: AT%CMNG=0,24,2,"{key}"'.split("\n")
    shown = "\n".join(redactor.line(line) for line in ["  " + e for e in echoed])
    assert_no_key_material(shown, key)
    last_body_line = key.strip().split("\n")[-2]
    assert last_body_line not in shown
    redactor.reset()
    digest = "A" * 8 + "0" * 56
    assert redactor.line(f'%CMNG: 24,0,"{digest}"') == f'%CMNG: 24,0,"{digest}"'
    assert redactor.line("352656100000000") == "352656100000000"
    assert redactor.line("prompt> MIGHAgEAMBMGByqGSM49AgEG") == "prompt> <redacted: 24 chars>"


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_mid_write_says_what_was_written_and_the_mode(
    files: dict[str, Path], tmp_path: Path
) -> None:
    state = ModemState.create()
    with ModemSim(state, cfun=1, faults=Faults(hang_at_write=2)) as modem:
        process = subprocess.Popen(
            # The hung write must still be waiting when Ctrl-C comes, however loaded the machine
            # is (3 s sometimes timed out first). Ctrl-C lets the command in flight end, so the
            # test lasts the time-out.
            [sys.executable, "-m", "provguard", *_args(modem.port, files, "--timeout", "8")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while modem.write_count < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert_no_key_material(out + err, files["key"].read_bytes())
    assert (
        "provguard: interrupted: written before: CA certificate; in flight (may or may not "
        "have reached the modem): private key; modem mode: CFUN=4 (offline)"
    ) in err
    assert "run provision again to finish" in err
    with ModemSim(state, cfun=1) as modem:
        assert main(_args(modem.port, files)) == 0
        assert modem.writes() == ["AT%CMNG=0,24,1"]  # the key had reached the modem
        assert _pair_belongs_together(modem)
