"""`provguard probe` against a real Mosquitto on loopback (client certificates required)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

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
        code, out, err = _run(capsys, pki, args)
    assert code == EXIT_PROBLEMS
    assert "TCP connected" in out
    assert "failed (tls): the TLS handshake did not complete within 0.3 s" in err


def test_the_key_file_is_private_and_removed(
    broker: Broker, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with probe.private_client_files(b"cert\n", b"key\n") as (cert_path, key_path):
        directory = Path(key_path).parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(Path(key_path).stat().st_mode) == 0o600
        assert Path(key_path).read_bytes() == b"key\n"
        assert Path(cert_path).read_bytes() == b"cert\n"
    assert not directory.exists()
    assert main(_args(broker.endpoint, pki)) == 0
    assert list(scratch.iterdir()) == []


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


@pytest.mark.parametrize("text", ["host:0", "host:99999", "host:x", ":8883", "[::1", "a:b:c"])
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


def test_parse_connack() -> None:
    assert probe.parse_connack(b"\x20\x02\x00\x05") == 5
    with pytest.raises(ValueError, match="not a CONNACK"):
        probe.parse_connack(b"\x30\x02\x00\x00")
