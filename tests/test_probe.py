"""`provguard probe` against a real Mosquitto on loopback (client certificates required)."""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import math
import os
import pty
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provguard import probe
from provguard.cli import main
from provguard.errors import EXIT_PROBLEMS, UsageError
from tests import factories
from tests.broker import Broker, free_port, mosquitto_path, running_broker
from tests.modem_standin import assert_no_key_material

pytestmark = pytest.mark.skipif(
    mosquitto_path() is None and not os.environ.get("CI"),
    reason="mosquitto is not installed (.ci/install-deps installs it; CI never skips)",
)


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    ca_cert: x509.Certificate
    ca_key: factories.PrivateKey


def _server(
    issuer: tuple[x509.Certificate, factories.PrivateKey], expired: bool
) -> tuple[bytes, bytes]:
    """The broker's certificate for localhost and 127.0.0.1, signed by the device's CA."""
    key = factories.ec_key()
    old = factories.NOW - dt.timedelta(days=400)
    cert = factories.make_cert(
        "localhost",
        key,
        issuer=issuer,
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
        not_before=old if expired else None,
        not_after=old + dt.timedelta(days=30) if expired else None,
    )
    return factories.cert_pem(cert), factories.key_pem(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("device")
    device = factories.device_pki()
    files = Pki(
        directory / "ca.pem",
        directory / "client.pem",
        directory / "client.key",
        device.ca_cert,
        device.ca_key,
    )
    files.ca.write_bytes(factories.cert_pem(device.ca_cert))
    files.cert.write_bytes(factories.cert_pem(device.device_cert))
    files.key.write_bytes(factories.key_pem(device.device_key))
    return files


@contextlib.contextmanager
def _start(
    pki: Pki, directory: Path, *, expired: bool = False, identity_as_username: bool = True
) -> Iterator[Broker]:
    server_cert, server_key = _server((pki.ca_cert, pki.ca_key), expired)
    with running_broker(
        directory,
        client_ca_pem=pki.ca.read_bytes(),
        server_cert_pem=server_cert,
        server_key_pem=server_key,
        identity_as_username=identity_as_username,
    ) as broker:
        yield broker


@pytest.fixture(scope="module")
def broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with _start(pki, tmp_path_factory.mktemp("broker")) as running:
        yield running


def _args(endpoint: str, pki: Pki, *extra: str) -> list[str]:
    return [
        "probe",
        endpoint,
        "--ca",
        str(pki.ca),
        "--cert",
        str(pki.cert),
        "--key",
        str(pki.key),
        "--timeout",
        "5",
        *extra,
    ]


def _run(capsys: pytest.CaptureFixture[str], pki: Pki, args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert_no_key_material(out + err, pki.key.read_bytes())
    assert "Traceback" not in err
    return code, out, err


def test_good_credentials_are_accepted(
    broker: Broker, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, pki, _args(broker.endpoint, pki))
    assert code == 0, err
    assert "TLSv1.2 ECDHE-ECDSA-" in out
    assert "verified against" in out
    assert "client id 'nrf-352656100000000': CONNACK 0, accepted" in out


def test_a_wrong_ca_is_an_unknown_ca(
    broker: Broker, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(
        factories.cert_pem(factories.make_cert("other CA", factories.ec_key(), ca=True))
    )
    args = _args(broker.endpoint, pki)
    args[args.index(str(pki.ca))] = str(other)
    code, _, err = _run(capsys, pki, args)
    assert code == EXIT_PROBLEMS
    assert "failed (tls): unknown CA" in err
    assert str(other) in err


def test_a_client_certificate_the_broker_does_not_trust(
    broker: Broker, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rogue_ca_key = factories.ec_key()
    rogue_ca = factories.make_cert("rogue CA", rogue_ca_key, ca=True)
    key = factories.ec_key()
    cert = factories.make_cert("nrf-rogue", key, issuer=(rogue_ca, rogue_ca_key))
    (tmp_path / "rogue.pem").write_bytes(factories.cert_pem(cert))
    (tmp_path / "rogue.key").write_bytes(factories.key_pem(key))
    args = _args(broker.endpoint, pki)
    args[args.index(str(pki.cert))] = str(tmp_path / "rogue.pem")
    args[args.index(str(pki.key))] = str(tmp_path / "rogue.key")
    code, _, err = _run(capsys, pki, args)
    assert code == EXIT_PROBLEMS
    assert "client certificate rejected: the broker does not trust its issuer" in err


def test_a_hostname_mismatch_names_what_the_certificate_is_for(
    broker: Broker, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, pki, _args(broker.endpoint, pki, "--hostname", "mqtt.example.com"))
    assert code == EXIT_PROBLEMS
    assert "hostname mismatch: the broker's certificate is not valid for 'mqtt.example.com'" in err
    assert "DNS:localhost" in err
    assert "127.0.0.1" in err


def test_the_hostname_is_checked_also_when_connecting_by_name(
    broker: Broker, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, pki, _args(f"localhost:{broker.port}", pki))
    assert code == 0, err
    assert "valid for 'localhost'" in out


def test_an_expired_client_certificate(
    broker: Broker, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = factories.ec_key()
    old = factories.NOW - dt.timedelta(days=400)
    cert = factories.make_cert(
        "nrf-old",
        key,
        issuer=(pki.ca_cert, pki.ca_key),
        not_before=old,
        not_after=old + dt.timedelta(days=30),
    )
    (tmp_path / "old.pem").write_bytes(factories.cert_pem(cert))
    (tmp_path / "old.key").write_bytes(factories.key_pem(key))
    args = _args(broker.endpoint, pki)
    args[args.index(str(pki.cert))] = str(tmp_path / "old.pem")
    args[args.index(str(pki.key))] = str(tmp_path / "old.key")
    code, _, err = _run(capsys, pki, args)
    assert code == EXIT_PROBLEMS
    assert "probing anyway" in err  # check's diagnosis comes first
    assert "client certificate rejected: the broker says it expired" in err


def test_an_expired_broker_certificate(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _start(pki, tmp_path / "expired", expired=True) as expired:
        code, _, err = _run(capsys, pki, _args(expired.endpoint, pki))
    assert code == EXIT_PROBLEMS
    assert "failed (tls): expired: the broker's certificate has expired" in err


def test_a_connack_refusal_is_named(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _start(pki, tmp_path / "strict", identity_as_username=False) as strict:
        code, out, err = _run(capsys, pki, _args(strict.endpoint, pki))
    assert code == EXIT_PROBLEMS
    assert "TLSv1.2" in out  # the TLS part succeeded
    assert "failed (mqtt): CONNACK 5: not authorized" in err


def test_connection_refused(pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, pki, _args(f"127.0.0.1:{free_port()}", pki))
    assert code == EXIT_PROBLEMS
    assert "failed (connect): connection refused by 127.0.0.1:" in err


def test_a_silent_server_times_out(pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel completes the TCP handshake; nobody ever answers
        port = listener.getsockname()[1]
        args = _args(f"127.0.0.1:{port}", pki)
        args[args.index("--timeout") + 1] = "0.3"
        # After 4 s the listener closes and resets the waiting connection: a probe that does
        # not give up on its own ends as "closed", not as the time-out this test expects.
        watchdog = threading.Timer(4.0, listener.close)
        watchdog.start()
        try:
            code, out, err = _run(capsys, pki, args)
        finally:
            watchdog.cancel()
    assert code == EXIT_PROBLEMS
    assert "TCP connected" in out
    assert "failed (tls): the TLS handshake did not complete within 0.3 s" in err


def test_the_key_never_touches_a_disk(
    broker: Broker, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if any(flag in mode for flag in "wax+"):
            written.append(str(file))
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    def guarded_os_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            written.append(str(path))
        return real_os_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    def no_temporary_files(*args: object, **kwargs: object) -> None:
        raise AssertionError("a temporary file was made")

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory"):
        monkeypatch.setattr(tempfile, name, no_temporary_files)
    assert main(_args(broker.endpoint, pki)) == 0
    assert written == []


def test_in_memory_file_is_readable_only_while_open() -> None:
    with probe.in_memory_file(b"not a real key\n") as path:
        assert path.startswith(("/proc/self/fd/", "/dev/fd/"))
        with open(path, "rb") as stream:
            assert stream.read() == b"not a real key\n"
        fd = int(path.rsplit("/", 1)[1])
        assert not stat.S_ISDIR(os.fstat(fd).st_mode)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def _encrypted_key(tmp_path: Path, pki: Pki, passphrase: bytes) -> Path:
    key = serialization.load_pem_private_key(pki.key.read_bytes(), None)
    path = tmp_path / "client-enc.key"
    path.write_bytes(factories.key_pem(key, password=passphrase))  # type: ignore[arg-type]
    return path


def test_an_encrypted_key_with_a_passphrase_file(
    broker: Broker, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encrypted = _encrypted_key(tmp_path, pki, b"correct horse")
    (tmp_path / "pass.txt").write_text("correct horse\n")
    args = _args(broker.endpoint, pki, "--key-password-file", str(tmp_path / "pass.txt"))
    args[args.index(str(pki.key))] = str(encrypted)
    code, out, err = _run(capsys, pki, args)
    assert code == 0, err
    assert "CONNACK 0, accepted" in out
    (tmp_path / "pass.txt").write_text("wrong\n")
    code, _, err = _run(capsys, pki, args)
    assert code == 2
    assert f"{encrypted}: the passphrase does not decrypt this private key" in err


def test_an_encrypted_key_without_a_terminal_never_lets_openssl_prompt(
    broker: Broker, pki: Pki, tmp_path: Path
) -> None:
    encrypted = _encrypted_key(tmp_path, pki, b"secret")
    args = _args(broker.endpoint, pki)
    args[args.index(str(pki.key))] = str(encrypted)
    result = subprocess.run(
        [sys.executable, "-m", "provguard", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no terminal to ask for its passphrase: give --key-password-file FILE" in result.stderr
    assert "PEM pass phrase" not in result.stdout + result.stderr
    assert "TCP connected" not in result.stdout


def test_an_encrypted_key_asks_on_the_terminal(broker: Broker, pki: Pki, tmp_path: Path) -> None:
    encrypted = _encrypted_key(tmp_path, pki, b"typed secret")
    args = _args(broker.endpoint, pki)
    args[args.index(str(pki.key))] = str(encrypted)
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "provguard", *args],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    ) as process:  # fmt: skip
        os.close(secondary)
        # getpass turns echo off (flushing pending input) before it reads: type after that.
        deadline = time.monotonic() + 20
        while termios.tcgetattr(primary)[3] & termios.ECHO and time.monotonic() < deadline:
            time.sleep(0.02)
        os.write(primary, b"typed secret\n")
        out, err = process.communicate(timeout=30)
    os.close(primary)
    assert b"passphrase for" in err
    assert process.returncode == 0, err
    assert b"CONNACK 0, accepted" in out


def test_sigterm_while_asking_ends_the_run_and_restores_the_terminal(
    pki: Pki, tmp_path: Path
) -> None:
    encrypted = _encrypted_key(tmp_path, pki, b"never typed")
    args = _args("127.0.0.1:1", pki)
    args[args.index(str(pki.key))] = str(encrypted)
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "provguard", *args],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    ) as process:  # fmt: skip
        os.close(secondary)
        deadline = time.monotonic() + 20
        while termios.tcgetattr(primary)[3] & termios.ECHO and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not termios.tcgetattr(primary)[3] & termios.ECHO  # asking, echo off
        process.terminate()
        process.communicate(timeout=10)
        echo = termios.tcgetattr(primary)[3] & termios.ECHO
    os.close(primary)
    assert process.returncode == 128 + signal.SIGTERM
    assert echo  # the terminal shows typing again


def test_a_key_that_does_not_match_the_certificate(
    broker: Broker, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = tmp_path / "stranger.key"
    stranger.write_bytes(factories.key_pem(factories.ec_key()))
    args = _args(broker.endpoint, pki)
    args[args.index(str(pki.key))] = str(stranger)
    code, out, err = _run(capsys, pki, args)
    assert code == EXIT_PROBLEMS
    assert "failed (credentials): the private key (public key SHA256:" in err
    assert "does not belong to the client certificate" in err
    assert "[SSL" not in err
    assert out == ""  # nothing was sent


@pytest.mark.parametrize(
    ("extra", "endpoint", "message"),
    [
        ((), "a" * 300 + ":8883", "not a valid host name"),
        ((), "a" * 64 + ".example:8883", "not a valid host name"),
        ((), "bad..name:8883", "not a valid host name"),
        (("--hostname", "b" * 300), "127.0.0.1:8883", "not a valid --hostname"),
        (("--timeout", "-1"), "127.0.0.1:8883", "not a finite number of seconds above 0"),
        (("--timeout", "nan"), "127.0.0.1:8883", "not a finite number of seconds above 0"),
        (("--timeout", "inf"), "127.0.0.1:8883", "not a finite number of seconds above 0"),
        (("--timeout", "0"), "127.0.0.1:8883", "not a finite number of seconds above 0"),
    ],
    ids=["300-chars", "long-label", "empty-label", "long-sni", "t-neg", "t-nan", "t-inf", "t-0"],
)
def test_unusable_probe_options_are_one_line_exit_2(
    pki: Pki, extra: tuple[str, ...], endpoint: str, message: str
) -> None:
    args = _args(endpoint, pki)
    args[args.index("--timeout") : args.index("--timeout") + 2] = []
    result = subprocess.run(
        [sys.executable, "-m", "provguard", *args, *extra],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1  # one line (argparse also shows the usage above it)
    assert message in errors[0]


@pytest.mark.parametrize("timeout", [-1.0, 0.0, math.nan, math.inf])
def test_probe_refuses_an_unusable_timeout(timeout: float) -> None:
    with pytest.raises(UsageError, match="finite number of seconds above 0"):
        probe.probe(
            probe.Endpoint("127.0.0.1", 1), probe.ProbeCredentials(b"", "ca"), client_id="x",
            timeout=timeout,
        )  # fmt: skip


def test_host_name_length_boundaries() -> None:
    label = "a" * 63  # the longest label (RFC 1035 2.3.4)
    longest = ".".join([label, label, label, "a" * 61])  # 253 characters: the longest name
    assert len(longest) == 253
    assert probe.host_name(longest) == longest
    assert probe.host_name(f"{label}.example") == f"{label}.example"
    for unusable in (longest + "a", "a" * 64 + ".example", "a..b", "-a.example", "a b.example"):
        with pytest.raises(UsageError, match="not a valid host name"):
            probe.host_name(unusable)


def test_an_idna_host_name_is_encoded() -> None:
    assert probe.parse_endpoint("bücher.example:8883").host == "xn--bcher-kva.example"
    assert probe.host_name("2001:db8::1") == "2001:db8::1"


def _intermediate_chain(pki: Pki) -> tuple[bytes, bytes, bytes]:
    """A broker certificate issued by an intermediate of the device's root: leaf, intermediate."""
    inter_key = factories.ec_key()
    inter = factories.make_cert(
        "provguard test intermediate", inter_key, issuer=(pki.ca_cert, pki.ca_key), ca=True
    )
    key = factories.ec_key()
    leaf = factories.make_cert(
        "localhost", key, issuer=(inter, inter_key), dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
    )  # fmt: skip
    return factories.cert_pem(leaf), factories.cert_pem(inter), factories.key_pem(key)


def test_a_broker_chain_without_its_intermediate_is_named(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf, inter, key = _intermediate_chain(pki)
    with running_broker(
        tmp_path / "full", client_ca_pem=pki.ca.read_bytes(), server_cert_pem=leaf + inter,
        server_key_pem=key,
    ) as full:  # fmt: skip
        code, _, err = _run(capsys, pki, _args(full.endpoint, pki))
    assert code == 0, err  # the complete chain verifies against the root
    with running_broker(
        tmp_path / "short", client_ca_pem=pki.ca.read_bytes(), server_cert_pem=leaf,
        server_key_pem=key,
    ) as short:  # fmt: skip
        code, _, err = _run(capsys, pki, _args(short.endpoint, pki))
    assert code == EXIT_PROBLEMS
    # OpenSSL's verify code 20 (unable to get local issuer certificate), named precisely.
    assert "failed (tls): incomplete chain: the broker's certificate is issued by" in err
    assert "CN=provguard test intermediate" in err
    assert "the broker must send its intermediate CA certificates" in err


def test_a_broker_without_a_modem_cipher_suite(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server_cert, server_key = _server((pki.ca_cert, pki.ca_key), expired=False)
    # ChaCha20-Poly1305 is a modern ECDHE-ECDSA suite the nRF91 does not offer.
    with running_broker(
        tmp_path / "chacha", client_ca_pem=pki.ca.read_bytes(), server_cert_pem=server_cert,
        server_key_pem=server_key, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305",
    ) as broker:  # fmt: skip
        code, _, err = _run(capsys, pki, _args(broker.endpoint, pki))
    assert code == EXIT_PROBLEMS
    assert "failed (tls): no cipher suite in common" in err
    assert "it chose ECDHE-ECDSA-CHACHA20-POLY1305" in err


def test_the_broker_is_killed_even_when_a_test_fails(pki: Pki, tmp_path: Path) -> None:
    pids: list[int] = []

    def failing_test() -> None:
        with _start(pki, tmp_path / "b") as broker:
            pids.append(broker.pid)
            os.kill(broker.pid, 0)  # running
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError, match="test failed"):
        failing_test()
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


# -- pure parts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("mqtt.example.com:8883", "mqtt.example.com", 8883),
        ("mqtt.example.com", "mqtt.example.com", 8883),
        ("[::1]:1884", "::1", 1884),
        ("[::1]", "::1", 8883),
    ],
)
def test_parse_endpoint(text: str, host: str, port: int) -> None:
    assert probe.parse_endpoint(text) == probe.Endpoint(host, port)


@pytest.mark.parametrize(
    "text",
    ["host:0", "host:65536", "host:99999", "host:00000100000", "host:x", ":8883", "[::1", "a:b:c"],
)
def test_parse_endpoint_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        probe.parse_endpoint(text)


def test_connect_packet_is_mqtt_311() -> None:
    packet = probe.connect_packet("dev-1", keepalive=60)
    assert packet == (
        b"\x10\x11"  # CONNECT, remaining length 17
        b"\x00\x04MQTT\x04\x02\x00\x3c"  # protocol name, level 4, clean session, keepalive 60
        b"\x00\x05dev-1"
    )
    long_id = probe.connect_packet("x" * 200)
    assert long_id[1:3] == bytes([(12 + 200) % 128 | 0x80, (12 + 200) // 128])


def test_a_client_id_that_is_not_utf8_is_a_usage_error(pki: Pki) -> None:
    args = _args("127.0.0.1:1", pki)
    result = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"provguard", *map(os.fsencode, args),
         b"--client-id", b"dev\xff"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "provguard: error: the client id is not valid UTF-8 text"


def test_parse_connack() -> None:
    assert probe.parse_connack(b"\x20\x02\x00\x05") == 5
    with pytest.raises(ValueError, match="not a CONNACK"):
        probe.parse_connack(b"\x30\x02\x00\x00")
