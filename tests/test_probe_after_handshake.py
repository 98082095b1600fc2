"""What `provguard probe` reports when the TLS session is up and the broker then misbehaves: no
CONNACK, a closed connection, something else than a CONNACK, a CONNACK in pieces, a refusal.

A broker that misbehaves on purpose cannot be Mosquitto: this is a small TLS server in a thread
(Python's ssl, certificates generated here). Found by `make mutation MODULE=probe`: mutants of the
CONNACK reading and of these reports passed every other test. Expected texts come from MQTT 3.1.1
(CONNACK return codes, section 3.2.2.3) and from the certificates made here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from provguard.probe import Endpoint, ProbeCredentials, ProbeResult, connect_packet, probe
from tests import factories as f

CLIENT_ID = "dev-1"
SERVER_NAME = "broker.test"
CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"  # one of the nRF91's suites


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    server_cert: x509.Certificate
    server_chain: Path
    server_key: Path
    device_cert_pem: bytes
    device_key: f.PrivateKey


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, server_key, device_key = f.ec_key(), f.ec_key(), f.ec_key()
    ca = f.make_cert("probe test CA", ca_key, ca=True)
    server = f.make_cert(SERVER_NAME, server_key, issuer=(ca, ca_key), dns_names=(SERVER_NAME,))
    device = f.make_cert(CLIENT_ID, device_key, issuer=(ca, ca_key))
    (directory / "server.pem").write_bytes(f.cert_pem(server))
    (directory / "server.key").write_bytes(f.key_pem(server_key))
    return Pki(
        f.cert_pem(ca),
        server,
        directory / "server.pem",
        directory / "server.key",
        f.cert_pem(device),
        device_key,
    )


Behaviour = Callable[[ssl.SSLSocket], None]


@dataclass
class Broker:
    port: int
    received: list[bytes]


@contextlib.contextmanager
def broker(pki: Pki, behaviour: Behaviour) -> Iterator[Broker]:
    """A TLS server for one connection: handshake, read the CONNECT, then `behaviour`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_chain, pki.server_key)
    context.load_verify_locations(cadata=pki.ca_pem.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_ciphers(CIPHER)
    listener = socket.create_server(("127.0.0.1", 0))
    state = Broker(listener.getsockname()[1], [])

    def serve() -> None:
        raw, _ = listener.accept()
        with raw, context.wrap_socket(raw, server_side=True) as tls:
            expected = len(connect_packet(CLIENT_ID))
            data = b""
            while len(data) < expected:
                chunk = tls.recv(expected - len(data))
                if not chunk:
                    break
                data += chunk
            state.received.append(data)
            behaviour(tls)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        listener.close()
        thread.join(timeout=10)


def run_probe(pki: Pki, port: int, timeout: float = 5.0) -> ProbeResult:
    credentials = ProbeCredentials(pki.ca_pem, "ca.pem", pki.device_cert_pem, pki.device_key)
    return probe(
        Endpoint("127.0.0.1", port),
        credentials,
        client_id=CLIENT_ID,
        server_name=SERVER_NAME,
        timeout=timeout,
    )


def session_line(pki: Pki) -> str:
    until = pki.server_cert.not_valid_after_utc
    expires = f"{until:%b} {until.day:>2} {until:%H:%M:%S %Y} GMT"  # OpenSSL's notAfter text
    return (
        f"TLSv1.2 {CIPHER} with the client certificate; broker certificate "
        f"commonName={SERVER_NAME} verified against ca.pem and valid for '{SERVER_NAME}', "
        f"until {expires}"
    )


def connack(code: int) -> Behaviour:
    def answer(tls: ssl.SSLSocket) -> None:
        tls.sendall(bytes([0x20, 0x02, 0x00, code]))
        time.sleep(0.2)

    return answer


def test_a_connack_arriving_byte_by_byte_is_read_whole(pki: Pki) -> None:
    def in_pieces(tls: ssl.SSLSocket) -> None:
        for byte in b"\x20\x02\x00\x00":
            tls.sendall(bytes([byte]))
            time.sleep(0.05)
        time.sleep(0.2)

    with broker(pki, in_pieces) as server:
        result = run_probe(pki, server.port)
    assert server.received == [connect_packet(CLIENT_ID)]
    assert result == ProbeResult(
        True,
        "done",
        "the broker accepts this device",
        (
            f"TCP connected to 127.0.0.1:{server.port}",
            session_line(pki),
            f"MQTT 3.1.1 CONNECT as client id '{CLIENT_ID}': CONNACK 0, accepted",
        ),
    )


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (5, "not authorized: the broker accepted the TLS session but not this client (check its "
            "ACL or policy for this client id or certificate identity)"),
        (2, "client identifier rejected"),
        (6, "a return code MQTT 3.1.1 does not define"),
    ],
)  # fmt: skip
def test_a_refusing_connack_is_reported_with_its_code(pki: Pki, code: int, reason: str) -> None:
    with broker(pki, connack(code)) as server:
        result = run_probe(pki, server.port)
    assert (result.ok, result.stage, result.reason) == (False, "mqtt", f"CONNACK {code}: {reason}")
    assert result.steps == (f"TCP connected to 127.0.0.1:{server.port}", session_line(pki))


def test_no_connack_in_time(pki: Pki) -> None:
    with broker(pki, lambda tls: time.sleep(1.5)) as server:
        result = run_probe(pki, server.port, timeout=0.5)
    assert (result.ok, result.stage, result.reason) == (
        False,
        "mqtt",
        "no CONNACK within 0.5 s after CONNECT",
    )


def test_a_broker_that_hangs_up_after_connect(pki: Pki) -> None:
    def hang_up(tls: ssl.SSLSocket) -> None:
        tls.shutdown(socket.SHUT_RDWR)  # TCP closed under the TLS session, as brokers do

    with broker(pki, hang_up) as server:
        result = run_probe(pki, server.port)
    assert (result.ok, result.stage, result.reason) == (
        False,
        "mqtt",
        "the broker closed the connection after CONNECT without a CONNACK (AWS IoT does this "
        f"when the policy does not allow iot:Connect for client id '{CLIENT_ID}')",
    )


def test_something_else_than_a_connack(pki: Pki) -> None:
    def publish(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"\x30\x02\x00\x00")
        time.sleep(0.2)

    with broker(pki, publish) as server:
        result = run_probe(pki, server.port)
    assert (result.ok, result.stage, result.reason) == (
        False,
        "mqtt",
        "the broker answered CONNECT with something else than CONNACK",
    )


def test_a_broken_tls_record_after_connect_is_a_tls_failure_at_the_mqtt_stage(pki: Pki) -> None:
    def garbage(tls: ssl.SSLSocket) -> None:
        os.write(tls.fileno(), b"this is not a TLS record\r\n")  # under the TLS layer
        time.sleep(0.2)

    with broker(pki, garbage) as server:
        result = run_probe(pki, server.port)
    assert (result.ok, result.stage, result.reason) == (
        False,
        "mqtt",
        "after CONNECT: the server did not answer in TLS (a plain MQTT port, like 1883?)",
    )


def test_a_broker_that_resets_right_after_accepting_is_still_an_acceptance(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The DISCONNECT (MQTT 3.1.1 3.14: E0 00) is a courtesy: when the broker has already reset
    # the connection, sending it fails, and the probe's verdict stays "accepted".
    disconnect = b"\xe0\x00"
    reset_asked, reset_done = threading.Event(), threading.Event()

    def accept_then_reset(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"\x20\x02\x00\x00")
        reset_asked.wait(5)
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tls.close()  # with a zero linger time: RST
        reset_done.set()

    real_sendall = ssl.SSLSocket.sendall

    def sendall_once_reset(self: ssl.SSLSocket, data: bytes, flags: int = 0) -> None:
        if data == disconnect:  # the broker resets first, for certain
            reset_asked.set()
            reset_done.wait(5)
        real_sendall(self, data, flags)

    monkeypatch.setattr(ssl.SSLSocket, "sendall", sendall_once_reset)
    with broker(pki, accept_then_reset) as server:
        result = run_probe(pki, server.port)
    assert reset_done.is_set()
    assert result == ProbeResult(
        True,
        "done",
        "the broker accepts this device",
        (
            f"TCP connected to 127.0.0.1:{server.port}",
            session_line(pki),
            f"MQTT 3.1.1 CONNECT as client id '{CLIENT_ID}': CONNACK 0, accepted",
        ),
    )


def test_the_connack_is_read_exactly_whatever_follows_it(pki: Pki) -> None:
    def split_then_more(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"\x20")  # one TLS record
        time.sleep(0.05)
        tls.sendall(b"\x02\x00\x00" + b"\xd0\x00")  # the rest, then a PINGRESP, in one record
        time.sleep(0.2)

    with broker(pki, split_then_more) as server:
        result = run_probe(pki, server.port)
    assert (result.ok, result.reason) == (True, "the broker accepts this device")


def test_a_failed_renegotiation_after_connect(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    # A TLS 1.2 broker may renegotiate after CONNECT (to ask for a client certificate late) and
    # end it with a handshake_failure alert. Python's ssl cannot make a server renegotiate, so
    # the device side's read raises what OpenSSL raises on that alert.
    real_recv = ssl.SSLSocket.recv

    def recv_after_failed_renegotiation(self: ssl.SSLSocket, size: int = 1024, *a: int) -> bytes:
        if self.server_side:
            return real_recv(self, size, *a)
        failure = ssl.SSLError(
            1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure"
        )
        failure.reason = "SSLV3_ALERT_HANDSHAKE_FAILURE"
        failure.library = "SSL"
        raise failure

    monkeypatch.setattr(ssl.SSLSocket, "recv", recv_after_failed_renegotiation)
    with broker(pki, lambda tls: time.sleep(0.2)) as server:
        result = run_probe(pki, server.port)
    assert (result.ok, result.stage, result.reason) == (
        False,
        "mqtt",
        "after CONNECT: handshake failure: the broker refused the client certificate, or shares "
        "no cipher suite or curve with what the nRF91 offers (ECDHE with AES, TLS 1.2)",
    )
