"""`provguard provision` against the modem stand-in on a pseudo-terminal, and the plan (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provguard import at
from provguard.cli import main
from provguard.credentials import Slot
from provguard.errors import EXIT_PROBLEMS, EXIT_UNUSABLE, InputError
from provguard.provision import Action, KeyPolicy, Outcome, make_plan, provision
from tests import factories
from tests.modem_standin import ModemStandIn, assert_no_key_material, sha256_hex

TAG = 24


@pytest.fixture
def pki() -> factories.DevicePki:
    return factories.device_pki()


@pytest.fixture
def files(tmp_path: Path, pki: factories.DevicePki) -> dict[str, Path]:
    return factories.write_credential_files(tmp_path, pki)


def _args(modem: ModemStandIn, files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "provision",
        "--port",
        modem.port,
        "--timeout",
        "2",
        "--ca",
        str(files["ca"]),
        "--cert",
        str(files["cert"]),
        "--key",
        str(files["key"]),
        *extra,
    ]


def _expected_store(files: dict[str, Path]) -> dict[tuple[int, int], str]:
    """Digests of what the modem must hold: content compared without ever showing a key."""
    return {
        (TAG, 0): sha256_hex(files["ca"].read_bytes()),
        (TAG, 1): sha256_hex(files["cert"].read_bytes()),
        (TAG, 2): sha256_hex(files["key"].read_bytes()),
    }


class Output:
    def __init__(self, capsys: pytest.CaptureFixture[str], key_file: Path):
        self._capsys = capsys
        self._key_file = key_file
        self._first_key = key_file.read_bytes()

    def read(self) -> tuple[str, str]:
        """stdout and stderr so far, after asserting neither holds any line of the key (the
        one in the key file now, and the one there when the test started)."""
        out, err = self._capsys.readouterr()
        assert_no_key_material(out + err, self._key_file.read_bytes())
        assert_no_key_material(out + err, self._first_key)
        return out, err


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> Output:
    return Output(capsys, files["key"])


def test_first_run_writes_everything_and_a_second_run_nothing(
    files: dict[str, Path], output: Output
) -> None:
    with ModemStandIn(cfun=1) as modem:
        assert main(_args(modem, files)) == 0
        assert modem.stored() == _expected_store(files)
        # the key before the certificate that needs it
        assert modem.writes() == ["AT%CMNG=0,24,0", "AT%CMNG=0,24,2", "AT%CMNG=0,24,1"]
        assert "AT+CFUN=4" in modem.received
        assert modem.received[-1] == "AT+CFUN=1"
        assert modem.cfun == 1
        out, _ = output.read()
        assert out.count("written ") == 3
        assert "functional mode restored to CFUN=1" in out

        first_run = len(modem.received)
        assert main(_args(modem, files)) == 0
        second = modem.received[first_run:]
        assert second == ["AT+CMEE=1", "AT+CFUN?", "AT%CMNG=1,24"]
        out, _ = output.read()
        assert out.count("unchanged") == 3
        assert "written: nothing" in out


@pytest.mark.parametrize("eol", ["cr", "lf"])
def test_each_at_host_termination_mode(files: dict[str, Path], output: Output, eol: str) -> None:
    with ModemStandIn(cfun=1, termination=eol) as modem:
        assert main([*_args(modem, files), "--eol", eol]) == 0
        assert modem.stored() == _expected_store(files)
        assert main([*_args(modem, files), "--eol", eol]) == 0
        assert len(modem.writes()) == 3
    output.read()


def test_an_echoing_at_interface_works_and_the_echo_is_never_shown(
    files: dict[str, Path], output: Output
) -> None:
    """The AT shell's command mode can echo every character, key content included."""
    with ModemStandIn(cfun=1, echo=True) as modem:
        assert main([*_args(modem, files), "--verbose"]) == 0
        assert modem.stored() == _expected_store(files)
        _, err = output.read()  # asserts that no line of the key was shown
        assert "< OK" in err
        assert main(_args(modem, files)) == 0
        assert len(modem.writes()) == 3
    out, _ = output.read()
    assert "written: nothing" in out


def test_only_the_changed_certificate_is_written(
    files: dict[str, Path], pki: factories.DevicePki, output: Output
) -> None:
    with ModemStandIn(cfun=1) as modem:
        assert main(_args(modem, files)) == 0
        renewed = factories.make_cert(
            "nrf-352656100000000", pki.device_key, issuer=(pki.ca_cert, pki.ca_key)
        )
        files["cert"].write_bytes(factories.cert_pem(renewed))
        before = len(modem.writes())
        assert main(_args(modem, files)) == 0
        assert modem.writes()[before:] == ["AT%CMNG=0,24,1"]
        assert modem.stored() == _expected_store(files)
        out, _ = output.read()
        assert "client certificate:  written" in out
        assert "CA certificate:      unchanged" in out


def test_der_and_crlf_input_is_stored_as_lf_pem_and_then_matches(
    files: dict[str, Path], pki: factories.DevicePki, tmp_path: Path, output: Output
) -> None:
    der = tmp_path / "ca.der"
    der.write_bytes(factories.cert_der(pki.ca_cert))
    crlf = tmp_path / "device-crlf.pem"
    crlf.write_bytes(files["cert"].read_bytes().replace(b"\n", b"\r\n"))
    with ModemStandIn(cfun=1) as modem:
        args = _args(modem, files)
        args[args.index(str(files["ca"]))] = str(der)
        args[args.index(str(files["cert"]))] = str(crlf)
        assert main(args) == 0
        assert modem.stored() == _expected_store(files)
        before = len(modem.writes())
        assert main(_args(modem, files)) == 0
        assert len(modem.writes()) == before
    output.read()


def test_dry_run_shows_the_plan_and_touches_nothing(files: dict[str, Path], output: Output) -> None:
    with ModemStandIn(cfun=1) as modem:
        modem.store[(TAG, 0)] = files["ca"].read_bytes()
        modem.store[(TAG, 1)] = b"-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n"
        assert main([*_args(modem, files), "--dry-run"]) == 0
        assert modem.writes() == []
        assert not any(c.startswith("AT+CFUN=") for c in modem.received)
        out, _ = output.read()
        assert "dry run" in out
        assert "CA certificate:      unchanged" in out
        old_digest = sha256_hex(modem.store[(TAG, 1)])
        assert "client certificate:  would write  " in out
        assert f"; the modem holds {old_digest}" in out
        assert "private key:         would write  " in out
        assert "; the modem holds nothing" in out
        assert "would write 2, 1 unchanged" in out


def test_an_offline_modem_is_not_switched_at_all(files: dict[str, Path], output: Output) -> None:
    with ModemStandIn(cfun=4) as modem:
        assert main(_args(modem, files)) == 0
        assert not any(c.startswith("AT+CFUN=") for c in modem.received)
        assert modem.cfun == 4
        assert modem.stored() == _expected_store(files)
    output.read()


def test_a_refused_write_reports_exactly_what_was_written(
    files: dict[str, Path], output: Output
) -> None:
    with ModemStandIn(cfun=1, reject={2: 527}) as modem:
        assert main(_args(modem, files)) == EXIT_PROBLEMS
        # the certificate is not written without its key
        assert set(modem.store) == {(TAG, 0)}
        assert modem.cfun == 1
        out, err = output.read()
    assert "private key:         FAILED" in out
    # The modem still answers after refusing one write: what was written is verified.
    assert f"CA certificate:      written      {files['ca']} (verified)" in out
    assert f"client certificate:  not written  {files['cert']}" in out
    assert "written: CA certificate; NOT written: client certificate, private key" in out
    assert "functional mode restored to CFUN=1" in out
    assert "+CME ERROR: 527 (invalid content" in err
    assert "Traceback" not in err


def test_memory_full_stops_the_run_and_names_the_rest(
    files: dict[str, Path], output: Output
) -> None:
    with ModemStandIn(cfun=1, capacity=1) as modem:
        assert main(_args(modem, files)) == EXIT_PROBLEMS
        assert set(modem.store) == {(TAG, 0)}
        assert modem.writes() == ["AT%CMNG=0,24,0", "AT%CMNG=0,24,2"]
        out, err = output.read()
    assert "private key:         FAILED" in out
    assert "client certificate:  not written" in out
    assert "NOT written: client certificate, private key" in out
    assert "memory full" in err


def test_a_modem_that_stays_online_is_named(files: dict[str, Path], output: Output) -> None:
    with ModemStandIn(cfun=1, ignore_offline=True) as modem:
        assert main(_args(modem, files)) == EXIT_PROBLEMS
        assert modem.store == {}
        _, err = output.read()
    assert "+CME ERROR: 518 (not allowed while the modem is online" in err


def test_a_modem_that_refuses_to_overwrite_gets_delete_then_write(
    files: dict[str, Path], output: Output
) -> None:
    with ModemStandIn(cfun=1, refuse_overwrite=True) as modem:
        modem.store[(TAG, 0)] = b"-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n"
        assert main(_args(modem, files)) == 0
        assert modem.stored() == _expected_store(files)
        assert "AT%CMNG=3,24,0" in modem.received
    output.read()


def test_key_digest_that_is_not_comparable_is_reported_then_handled_by_policy(
    files: dict[str, Path], pki: factories.DevicePki, output: Output
) -> None:
    with ModemStandIn(cfun=1, opaque_key_digest=True) as modem:
        assert main(_args(modem, files)) == EXIT_PROBLEMS
        assert modem.stored() == _expected_store(files)
        out, err = output.read()
        assert "private key:         MISMATCH" in out
        assert "written but NOT verified: private key" in out
        assert "--key-policy if-missing" in err

        before = len(modem.writes())
        assert main([*_args(modem, files), "--key-policy", "if-missing"]) == 0
        assert modem.writes()[before:] == []
        out, _ = output.read()
        assert "private key:         kept" in out

        # A new certificate brings its key along under if-missing.
        new_key = factories.ec_key()
        new_cert = factories.make_cert("dev", new_key, issuer=(pki.ca_cert, pki.ca_key))
        files["cert"].write_bytes(factories.cert_pem(new_cert))
        files["key"].write_bytes(factories.key_pem(new_key))
        assert main([*_args(modem, files), "--key-policy", "if-missing"]) == 0
        assert modem.writes()[before:] == ["AT%CMNG=0,24,2", "AT%CMNG=0,24,1"]
        assert modem.stored() == _expected_store(files)
        out, _ = output.read()
        assert "digest is not comparable" in out


def test_a_silent_modem_times_out_without_a_traceback(
    files: dict[str, Path], output: Output
) -> None:
    with ModemStandIn(cfun=1, silent_after=3) as modem:
        args = _args(modem, files)
        args[args.index("--timeout") + 1] = "0.3"
        assert main(args) == EXIT_PROBLEMS
        out, err = output.read()
    assert "AT+CFUN=4: no final result code within 0.3 s" in err
    assert "the modem may be left offline: restoring AT+CFUN=1 failed" in err
    assert "NOT written: CA certificate, client certificate, private key" in out
    assert "Traceback" not in err


def test_a_port_nobody_answers_on(files: dict[str, Path], output: Output) -> None:
    with ModemStandIn(cfun=1, silent_after=0) as modem:
        args = _args(modem, files)
        args[args.index("--timeout") + 1] = "0.3"
        assert main(args) == EXIT_PROBLEMS
        assert modem.received == ["AT+CMEE=1"]
        out, err = output.read()
    assert "written: nothing (the run stopped before the comparison)" in out
    assert "AT+CMEE=1: no final result code within 0.3 s (is an AT host listening" in err


def test_a_port_that_goes_away_mid_run(files: dict[str, Path], output: Output) -> None:
    with ModemStandIn(cfun=1, hang_up_after=5) as modem:
        assert main(_args(modem, files)) == EXIT_PROBLEMS
        out, err = output.read()
    assert "the port went away during AT%CMNG=0,24,2" in err
    assert "written: CA certificate; NOT written: client certificate, private key" in out
    assert "Traceback" not in err


def test_a_missing_port_is_unusable_input(
    files: dict[str, Path], tmp_path: Path, output: Output
) -> None:
    missing = tmp_path / "ttyACM9"
    args = ["provision", "--port", str(missing), "--ca", str(files["ca"])]
    assert main(args) == EXIT_UNUSABLE
    _, err = output.read()
    assert f"{missing}: cannot open the serial port: No such file or directory" in err


def test_bad_credentials_are_refused_before_the_port_is_opened(
    files: dict[str, Path], output: Output
) -> None:
    files["key"].write_bytes(factories.key_pem(factories.ec_key()))  # not the certificate's key
    with ModemStandIn(cfun=1) as modem:
        assert main(_args(modem, files)) == EXIT_PROBLEMS
        assert modem.received == []
    _, err = output.read()
    assert "refused" in err


def test_verbose_shows_the_exchange_but_never_the_key(
    files: dict[str, Path], output: Output
) -> None:
    with ModemStandIn(cfun=1) as modem:
        assert main([*_args(modem, files), "--verbose"]) == 0
    _, err = output.read()
    assert "> AT+CMEE=1" in err
    assert '> AT%CMNG=0,24,2,"<private key: ' in err
    assert "< OK" in err


# -- the plan (pure) ----------------------------------------------------------------------------


def _listed(tag: int, cred_type: int, content: bytes) -> at.ListedCredential:
    return at.ListedCredential(tag, cred_type, at.content_digest(content))


def test_plan_compares_digests_per_slot_and_ignores_other_tags() -> None:
    ca, cert, key = b"ca\n", b"cert\n", b"key\n"
    contents = {Slot.CA: ca, Slot.CERT: cert, Slot.KEY: key}
    listed = [
        _listed(TAG, 0, ca),
        _listed(TAG, 1, b"old\n"),
        _listed(TAG + 1, 2, key),  # the right key at another tag is not ours
        _listed(TAG, 4, b"identity"),
    ]
    plan = make_plan(contents, {}, listed, TAG)
    assert [s.action for s in plan.slots] == [Action.UNCHANGED, Action.REPLACE, Action.ADD]
    assert [s.slot for s in plan.writes] == [Slot.KEY, Slot.CERT]  # the key first
    assert [o.cred_type for o in plan.others] == [4]


def test_plan_if_missing_keeps_a_present_key_unless_the_certificate_changes() -> None:
    contents = {Slot.CERT: b"cert\n", Slot.KEY: b"key\n"}
    same_cert = [_listed(TAG, 1, b"cert\n"), _listed(TAG, 2, b"other form")]
    plan = make_plan(contents, {}, same_cert, TAG, key_policy=KeyPolicy.IF_MISSING)
    assert [s.action for s in plan.slots] == [Action.UNCHANGED, Action.KEEP_UNCOMPARED]
    new_cert = [_listed(TAG, 1, b"old cert\n"), _listed(TAG, 2, b"other form")]
    plan = make_plan(contents, {}, new_cert, TAG, key_policy=KeyPolicy.IF_MISSING)
    assert [s.action for s in plan.slots] == [Action.REPLACE, Action.REPLACE]
    plan = make_plan(contents, {}, [], TAG, key_policy=KeyPolicy.IF_MISSING)
    assert [s.action for s in plan.slots] == [Action.ADD, Action.ADD]


def test_plan_repr_never_holds_content() -> None:
    plan = make_plan({Slot.KEY: b"SECRET-KEY-MATERIAL\n"}, {}, [], TAG)
    assert_no_key_material(repr(plan), "SECRET-KEY-MATERIAL")


# -- the library against an in-process transport (no port at all) -------------------------------


class InProcess:
    """A `Transport` that hands each command straight to the stand-in's AT interpreter."""

    def __init__(self, modem: ModemStandIn):
        self.modem = modem
        self.sent: list[str] = []

    def send(self, command: at.AtCommand) -> at.Response:
        self.sent.append(command.summary)
        return at.parse_response(self.modem.answer(command.text))


CONTENTS = {
    Slot.CA: b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
    Slot.CERT: b"-----BEGIN CERTIFICATE-----\nDEV\n-----END CERTIFICATE-----\n",
    Slot.KEY: b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
}


def test_library_report_after_a_refusal() -> None:
    modem = ModemStandIn(cfun=21, reject={2: 515})
    report = provision(InProcess(modem), CONTENTS, 7)
    assert not report.ok
    assert report.initial_mode == 21
    assert (report.went_offline, report.restored) == (True, True)
    assert modem.cfun == 21
    assert [r.outcome for r in report.results] == [
        Outcome.WRITTEN,
        Outcome.NOT_WRITTEN,
        Outcome.FAILED,
    ]
    assert report.results[0].detail == "verified"
    assert "+CME ERROR: 515 (memory full" in (report.error or "")


def test_library_power_off_mode_is_left_alone() -> None:
    modem = ModemStandIn(cfun=0)
    transport = InProcess(modem)
    report = provision(transport, CONTENTS, 7)
    assert report.ok
    assert not report.went_offline
    assert not any(s.startswith("AT+CFUN=") for s in transport.sent)
    assert modem.stored() == {(7, t): sha256_hex(CONTENTS[s]) for s, t in _TYPES.items()}


def test_library_refuses_unquotable_content_before_sending_anything() -> None:
    transport = InProcess(ModemStandIn())
    bad = {Slot.CA: b'-----BEGIN CERTIFICATE-----\n"\n-----END CERTIFICATE-----\n'}
    with pytest.raises(InputError, match="double quote"):
        provision(transport, bad, 7, names={Slot.CA: "ca.pem"})
    assert transport.sent == []


def test_library_device_without_extended_errors_is_named() -> None:
    class NotAnAtHost(InProcess):
        def send(self, command: at.AtCommand) -> at.Response:
            self.sent.append(command.summary)
            return at.parse_response("ERROR\r\n")

    report = provision(NotAnAtHost(ModemStandIn()), CONTENTS, 7)
    assert report.results == ()
    assert "does not look like an nRF91 AT interface" in (report.error or "")


_TYPES = {Slot.CA: 0, Slot.CERT: 1, Slot.KEY: 2}
