"""AT command building, quoting and parsing (pure), and the `provguard at` command."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from provguard import at
from provguard.at import AtCommand
from provguard.cli import main
from provguard.errors import EXIT_PROBLEMS, EXIT_UNUSABLE, InputError
from provguard.transport import SerialTransport
from tests import factories
from tests.modem_standin import ModemStandIn, assert_no_key_material, sha256_hex

CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


# -- building and quoting -------------------------------------------------------------------


def test_write_command_quotes_the_content_exactly() -> None:
    command = at.cmng_write(24, 0, CERT)
    assert command.text == f'AT%CMNG=0,24,0,"{CERT.decode()}"'


def test_write_command_summary_and_repr_never_show_content() -> None:
    key = factories.key_pem(factories.ec_key())
    command = at.cmng_write(7, 2, key)
    assert_no_key_material(command.summary, key)
    assert_no_key_material(repr(command), key)
    assert_no_key_material(str(command), key)
    assert "private key" in command.summary
    assert f"{len(key)} bytes" in command.summary


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'-----BEGIN CERTIFICATE-----\n"\n', "double quote at byte 28"),
        (b"-----BEGIN CERTIFICATE-----\r\nMIIB\r\n", "byte 0x0d"),
        ("-----BEGIN CERTIFICATE-----\né\n".encode(), "byte 0xc3"),
        (b"", "empty"),
    ],
)
def test_write_command_refuses_content_the_at_host_would_mangle(content: bytes, why: str) -> None:
    with pytest.raises(InputError, match=why):
        at.cmng_write(24, 1, content, what="client.pem")


def test_write_command_refuses_what_does_not_fit_the_at_host_buffer() -> None:
    fits = b"A" * (at.MAX_COMMAND_LENGTH - len('AT%CMNG=0,24,0,""'))
    assert len(at.cmng_write(24, 0, fits).text) == at.MAX_COMMAND_LENGTH
    with pytest.raises(at.CommandTooLongError, match="4096 bytes, more than the 4095") as info:
        at.cmng_write(24, 0, fits + b"A")
    assert info.value.exit_code == EXIT_PROBLEMS


def test_sec_tag_outside_user_range_is_refused() -> None:
    with pytest.raises(InputError, match="2147483648 is outside"):
        at.cmng_list(2147483648)


def test_plain_commands() -> None:
    assert at.cmng_list(24).text == "AT%CMNG=1,24"
    assert at.cmng_list(24, 2).text == "AT%CMNG=1,24,2"
    assert at.cmng_delete(24, 1).text == "AT%CMNG=3,24,1"
    assert at.cfun_set(4).text == "AT+CFUN=4"


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "ok", "code"),
    [
        ("OK", True, None),
        ("ERROR", False, None),
        ("+CME ERROR: 518", False, 518),
        ("+CME ERROR:527", False, 527),
        ('%CMNG: 24,0,"AB"', None, None),
        ("+CFUN: 1", None, None),
    ],
)
def test_final_result(line: str, ok: bool | None, code: int | None) -> None:
    final = at.final_result(line)
    if ok is None:
        assert final is None
    else:
        assert final is not None
        assert (final.ok, final.code) == (ok, code)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (513, "not found"),
        (514, "no access"),
        (515, "memory full"),
        (518, "not allowed while the modem is online"),
        (519, "already exists"),
        (527, "invalid content"),
        (528, "power-off warning"),
        (600, "error code 600"),
    ],
)
def test_cme_codes_are_named(code: int, words: str) -> None:
    error = at.ModemError(at.cmng_list(24), at.Final(False, code, f"+CME ERROR: {code}"))
    assert words in str(error)
    assert str(error).startswith("AT%CMNG=1,24: the modem refused it: +CME ERROR")
    assert error.exit_code == EXIT_PROBLEMS


def test_bare_error_says_why_it_has_no_code() -> None:
    error = at.ModemError(at.CFUN_READ, at.Final(False, None, "ERROR"))
    assert "extended error codes are off" in str(error)


def test_parse_list_tolerates_spaces_case_and_urcs() -> None:
    sha = "ab" * 32
    response = at.parse_response(
        f'%CMNG: 24, 0, "{sha}"\r\n+CEREG: 2\r\n%CMNG: 24,2,"{sha.upper()}"\r\n'
        "%CMNG: 16842753,1\r\nOK\r\n"
    )
    assert at.parse_cmng_list(response) == [
        at.ListedCredential(24, 0, sha.upper()),
        at.ListedCredential(24, 2, sha.upper()),
        at.ListedCredential(16842753, 1, None),
    ]


def test_parse_list_refuses_a_garbled_line() -> None:
    response = at.parse_response('%CMNG: 24,0,"not-a-digest"\r\nOK\r\n')
    with pytest.raises(at.UnexpectedResponseError):
        at.parse_cmng_list(response)


def test_parse_cfun() -> None:
    assert at.parse_cfun(at.parse_response("+CFUN: 4\r\nOK\r\n")) == 4
    with pytest.raises(at.UnexpectedResponseError):
        at.parse_cfun(at.parse_response("OK\r\n"))


# -- the stand-in answers as the AT reference says (what the provisioning tests rely on) ------


def test_standin_answers_bare_error_until_cmee_and_refuses_writes_online() -> None:
    modem = ModemStandIn(cfun=1)
    write = f'AT%CMNG=0,24,0,"{CERT.decode()}"'
    assert modem.answer(write) == "ERROR\r\n"
    assert modem.answer("AT+CMEE=1") == "OK\r\n"
    assert modem.answer(write) == "+CME ERROR: 518\r\n"
    assert modem.answer("AT+CFUN=4") == "OK\r\n"
    assert modem.answer("AT+CFUN?") == "+CFUN: 4\r\nOK\r\n"
    assert modem.answer(write) == "OK\r\n"
    assert modem.store[(24, 0)] == CERT
    digest = at.content_digest(CERT)
    assert digest == digest.upper()
    assert len(digest) == 64
    assert modem.answer("AT%CMNG=1,24") == f'%CMNG: 24,0,"{digest}"\r\nOK\r\n'
    assert modem.answer("AT%CMNG=2,24,0") == f'%CMNG: 24,0,"{digest}","{CERT.decode()}"\r\nOK\r\n'
    assert modem.answer("AT%CMNG=2,24,1") == "+CME ERROR: 513\r\n"
    assert modem.answer("AT+CGSN") == "352656100000000\r\nOK\r\n"


def test_standin_private_keys_cannot_be_read_back() -> None:
    modem = ModemStandIn(cfun=4, cmee=1)
    key = factories.key_pem(factories.ec_key())
    assert modem.answer(f'AT%CMNG=0,9,2,"{key.decode()}"') == "OK\r\n"
    assert modem.answer("AT%CMNG=2,9,2") == "+CME ERROR: 514\r\n"


def test_multi_line_quoted_content_travels_whole_over_the_pty() -> None:
    with ModemStandIn(cfun=4) as modem, SerialTransport(modem.port, timeout=5) as port:
        assert port.send(at.CMEE_ON).final.ok
        response = port.send(at.cmng_write(3, 1, CERT))
        assert response.final.ok
        assert modem.store == {(3, 1): CERT}
        listed = at.parse_cmng_list(port.send(at.cmng_list()))
        assert listed == [at.ListedCredential(3, 1, at.content_digest(CERT))]


# -- provguard at ------------------------------------------------------------------------------


@pytest.fixture
def device_files(tmp_path: Path) -> dict[str, Path]:
    return factories.write_credential_files(tmp_path, factories.device_pki())


def _cred_args(files: dict[str, Path]) -> list[str]:
    return ["--ca", str(files["ca"]), "--cert", str(files["cert"]), "--key", str(files["key"])]


def _commands(text: str, eol: str = "\r\n") -> list[str]:
    """Split printed output into commands the way the AT host does: `eol` outside quotes ends
    one."""
    commands, current, quoted = [], "", False
    for char in text:
        current += char
        if char == '"':
            quoted = not quoted
        if not quoted and current.endswith(eol):
            commands.append(current[: -len(eol)])
            current = ""
    assert not current, "output does not end with a complete command"
    return commands


def _key_body(files: dict[str, Path]) -> str:
    return files["key"].read_text().splitlines()[1]


def test_at_prints_the_sequence_without_the_key_by_default(
    device_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["at", *_cred_args(device_files), "--sec-tag", "42"]) == 0
    out, err = capsys.readouterr()
    ca = device_files["ca"].read_text()
    cert = device_files["cert"].read_text()
    assert _commands(out) == [
        "AT+CMEE=1",
        "AT+CFUN=4",
        f'AT%CMNG=0,42,0,"{ca}"',
        f'AT%CMNG=0,42,1,"{cert}"',
        "AT+CFUN=1",
    ]
    assert "private key" in err
    assert "--include-key" in err
    assert_no_key_material(out + err, device_files["key"].read_bytes())


def test_at_include_key_and_restore_mode(
    device_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["at", *_cred_args(device_files), "--include-key", "--restore-mode", "none"]
    assert main(args) == 0
    commands = _commands(capsys.readouterr().out)
    key = device_files["key"].read_text()
    assert sha256_hex(commands[-1]) == sha256_hex(f'AT%CMNG=0,24,2,"{key}"')
    assert "AT+CFUN=1" not in commands


def test_at_output_file_is_created_private_even_if_it_existed(
    device_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "provision.at"
    target.write_text("old\n")
    target.chmod(0o644)
    args = ["at", *_cred_args(device_files), "--include-key", "-o", str(target), "--force"]
    assert main(args) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    out, err = capsys.readouterr()
    assert out == ""
    assert_no_key_material(err, device_files["key"].read_bytes())
    key_in_file = _key_body(device_files) in target.read_text()
    assert key_in_file, "--include-key -o FILE must put the key in FILE"


def test_at_output_refuses_to_overwrite_without_force(
    device_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "notes.at"
    target.write_text("my notes\n")
    target.chmod(0o644)
    assert main(["at", *_cred_args(device_files), "--include-key", "-o", str(target)]) == 2
    assert target.read_text() == "my notes\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    err = capsys.readouterr().err
    assert f"{target}: exists: refusing to overwrite it; add --force" in err


def test_at_output_new_file_is_0600(device_files: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "new.at"
    old_umask = os.umask(0)
    try:
        assert main(["at", *_cred_args(device_files), "--include-key", "-o", str(target)]) == 0
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def _special_paths(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.at"
    os.mkfifo(fifo, 0o644)
    regular = tmp_path / "regular.at"
    regular.write_text("keep\n")
    link = tmp_path / "link.at"
    link.symlink_to(regular)
    return {"fifo": fifo, "device": Path("/dev/null"), "symlink": link}


@pytest.mark.parametrize("kind", ["fifo", "device", "symlink"])
@pytest.mark.parametrize("force", [False, True])
def test_at_output_writes_only_regular_files(
    device_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    force: bool,
) -> None:
    target = _special_paths(tmp_path)[kind]
    before = os.lstat(target)
    args = ["at", *_cred_args(device_files), "--include-key", "-o", str(target)]
    assert main([*args, "--force"] if force else args) == 2  # no hang on a FIFO nobody reads
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert (tmp_path / "regular.at").read_text() == "keep\n"
    err = capsys.readouterr().err
    assert ("not a regular file" if force else "refusing to overwrite") in err
    assert_no_key_material(err, device_files["key"].read_bytes())


def test_at_output_refuses_a_fifo_someone_reads(
    device_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "read.at"
    os.mkfifo(fifo, 0o644)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        args = ["at", *_cred_args(device_files), "--include-key", "-o", str(fifo), "--force"]
        assert main(args) == 2
        assert os.read(reader, 4096) == b""  # nothing was sent into it
    finally:
        os.close(reader)
    assert stat.S_IMODE(os.lstat(fifo).st_mode) == 0o644
    assert "not a regular file (a device, FIFO or socket)" in capsys.readouterr().err


def test_at_refuses_to_send_the_key_into_a_redirected_file(
    device_files: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "redirected.at"
    with target.open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "provguard", "at", *_cred_args(device_files), "--include-key"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "scripts")},
        )
    assert result.returncode == EXIT_UNUSABLE
    assert "use -o FILE" in result.stderr
    assert_no_key_material(target.read_text(), device_files["key"].read_bytes())


def test_at_refuses_bad_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = factories.device_pki()
    (tmp_path / "device.pem").write_bytes(factories.cert_pem(pki.device_cert))
    (tmp_path / "other.key").write_bytes(factories.key_pem(factories.ec_key()))
    args = ["at", "--cert", str(tmp_path / "device.pem"), "--key", str(tmp_path / "other.key")]
    assert main(args) == EXIT_PROBLEMS
    assert "AT%CMNG" not in capsys.readouterr().out


@pytest.mark.parametrize("eol", ["crlf", "cr", "lf"])
def test_printed_sequence_provisions_the_standin(
    device_files: dict[str, Path], capsys: pytest.CaptureFixture[str], eol: str
) -> None:
    """The output, sent byte for byte to an AT host with the matching termination, leaves
    exactly the checked content in the modem."""
    assert main(["at", *_cred_args(device_files), "--include-key", "--eol", eol]) == 0
    out = capsys.readouterr().out
    commands = _commands(out, at.LINE_ENDINGS[eol])
    assert len(commands) == 6
    with (
        ModemStandIn(cfun=1, termination=eol) as modem,
        SerialTransport(modem.port, timeout=5, line_ending=at.LINE_ENDINGS[eol]) as port,
    ):
        for text in commands:
            assert port.send(AtCommand(text, text.split('"', 1)[0])).final.ok
        assert modem.cfun == 1
        assert modem.stored() == {
            (24, 0): sha256_hex(device_files["ca"].read_bytes()),
            (24, 1): sha256_hex(device_files["cert"].read_bytes()),
            (24, 2): sha256_hex(device_files["key"].read_bytes()),
        }
