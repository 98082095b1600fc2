"""A real Mosquitto broker for the probe tests: TLS on loopback, client certificates required.

`running_broker(directory, ca, server_cert, server_key)` writes a config and the broker's
credentials into `directory`, starts /usr/sbin/mosquitto on 127.0.0.1 on a free port, waits (a
bounded loop) until the port accepts connections, and always kills the process afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
STARTUP_TIMEOUT_S = 10.0


def mosquitto_path() -> str | None:
    for candidate in MOSQUITTO_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("mosquitto")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    log: Path
    pid: int

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(directory: Path, port: int, identity_as_username: bool, ciphers: str | None) -> str:
    # `ciphers` (mosquitto.conf(5)): the TLS 1.2 suites the listener accepts, OpenSSL names.
    cipher_lines = [f"ciphers {ciphers}"] if ciphers else []
    return "\n".join(
        [
            # Started as root (CI), Mosquitto would drop to the 'mosquitto' user, which
            # cannot read the test's private directory; as another user this line is ignored.
            "user root",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"listener {port} 127.0.0.1",
            f"cafile {directory / 'broker-ca.pem'}",
            f"certfile {directory / 'broker.pem'}",
            f"keyfile {directory / 'broker.key'}",
            "require_certificate true",
            # Without the certificate's identity as user name, the client is anonymous and
            # refused with CONNACK 5 (not authorized): the other outcome a probe must name.
            f"use_identity_as_username {'true' if identity_as_username else 'false'}",
            "allow_anonymous false",
            "tls_version tlsv1.2",
            *cipher_lines,
            "",
        ]
    )


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on port {port} within {STARTUP_TIMEOUT_S} s")


@contextlib.contextmanager
def running_broker(
    directory: Path,
    *,
    client_ca_pem: bytes,
    server_cert_pem: bytes,
    server_key_pem: bytes,
    identity_as_username: bool = True,
    ciphers: str | None = None,
) -> Iterator[Broker]:
    """Mosquitto trusting `client_ca_pem` for client certificates, presenting the server cert.

    `server_cert_pem` is the chain the broker sends: its certificate, then any intermediates.
    """
    executable = mosquitto_path()
    if executable is None:
        raise RuntimeError("mosquitto is not installed (.ci/install-deps installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "broker-ca.pem").write_bytes(client_ca_pem)
    (directory / "broker.pem").write_bytes(server_cert_pem)
    key = directory / "broker.key"
    key.write_bytes(server_key_pem)
    key.chmod(0o600)
    log = directory / "mosquitto.log"
    for _attempt in range(3):  # another process may take the free port before mosquitto does
        port = free_port()
        config = directory / "mosquitto.conf"
        config.write_text(_config(directory, port, identity_as_username, ciphers))
        with log.open("wb") as log_stream:
            process = subprocess.Popen(
                [executable, "-c", str(config)], stdout=log_stream, stderr=subprocess.STDOUT
            )
        try:
            try:
                _wait_for_port(process, port, log)
            except RuntimeError:
                if process.poll() is not None and "Address already in use" in log.read_text():
                    continue
                raise
            yield Broker("127.0.0.1", port, log, process.pid)
            return
        finally:
            process.kill()
            process.wait(timeout=10)
    raise RuntimeError("mosquitto could not get a free port in 3 attempts")
