"""A throwaway PostgreSQL server for the ledger tests: Debian's postgresql 15, in a temporary
directory, reachable only through a Unix socket in that directory.

The server refuses to run as root, and CI runs as root: then a system user (`provguard-pg`) is
created if missing and initdb/pg_ctl run through `runuser -u provguard-pg --`. Started once per
test session (about 2 s); each test gets a fresh database. Without the binaries the tests are
skipped, except in CI (env CI set), where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

BIN = Path(os.environ.get("PROVGUARD_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "provguard-pg"
PORT = 5432  # only names the socket file: the server listens on no TCP address


def _missing(what: str) -> None:
    message = f"PostgreSQL for the ledger tests: {what} (Debian package postgresql)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    if subprocess.run(["id", "-u", USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", USER, "--"]


class PostgresServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.data = directory / "data"
        self.prefix = _as_server_user()

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self.prefix, *command], capture_output=True, text=True, check=False, timeout=60
        )
        if result.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{Path(command[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip()[-2000:]}\n{tail}"
            )

    def start(self) -> None:
        if self.prefix:
            shutil.chown(self.directory, user=USER)
        self._run(
            str(BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-k {self.directory} -p {PORT} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.directory}&port={PORT}"

    def create_database(self) -> str:
        name = f"ledger_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host=str(self.directory), port=PORT, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (BIN / tool).exists():
            _missing(f"{BIN / tool} not found")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _missing("runuser not found (needed to run the server as a non-root user)")
    directory = Path(tempfile.mkdtemp(prefix="provguard-pg-"))
    directory.chmod(0o755)
    server = PostgresServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database()
