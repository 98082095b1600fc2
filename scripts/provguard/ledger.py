"""The enrollment ledger: every attempt and result, in SQLite (one station) or PostgreSQL (a line).

One row per attempt in `attempts` (IMEI, station, port, sec_tag, device CA fingerprint, modem
firmware, the CSR, the SHA-256 the modem lists for the key it generated, the certificate's serial,
fingerprint and PEM, start and end times, outcome and error). Never a private key: enrollment never
has one, the key is born in the modem and stays there.

Shared between stations:
- serials: `serials` holds one row per issued serial with UNIQUE(device CA, serial); a serial is
  159 random bits (RFC 5280 / CA/B Forum: at least 64 bits of entropy), reserved by inserting it,
  and drawn again on the (astronomically rare) conflict. Unique in the ledger by construction, and
  unique even across ledgers that were reset, by chance;
- concurrency: `locks` has the IMEI as primary key; a station enrolling a device holds its row.
  A lock whose lease ran out, or that a dead process on the same host left, is taken over, so a
  crash or power cut never blocks a device for ever;
- crash recovery: an attempt that stopped mid-device keeps its step, the time it sent %KEYGEN,
  the CSR, the key's listed digest, the certificate it signed and the functional mode it found
  (`in_progress`); the re-run finds them, completes the device without a new key and gives the
  modem its mode back.

Durability: every write is committed before the call returns. On SQLite the writes of all
workers waiting at that moment share one commit (one fsync), each in its own savepoint.

Schema: `schema_version` holds the applied version; `MIGRATIONS` are applied in order in one
transaction under a lock (PostgreSQL advisory lock, SQLite's write lock), so two stations starting
at once migrate once. A ledger newer than this provguard is refused rather than misread.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography import x509
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from provguard.errors import InputError, ProblemsFoundError

DEFAULT_URL = "sqlite:///provguard-ledger.sqlite"
#: How long a station's claim on a device lasts without renewal (renewed at every step).
LOCK_LEASE = dt.timedelta(minutes=5)
SERIAL_ATTEMPTS = 8

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", String(40), nullable=False),
)

device_cas = Table(
    "device_cas",
    metadata,
    Column("fingerprint", String(80), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("pem", Text, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("imei", String(20), index=True),
    Column("station", String(200), nullable=False),
    Column("port", Text, nullable=False),
    Column("sec_tag", BigInteger, nullable=False),
    Column("device_ca_fingerprint", String(80), nullable=False),
    Column("modem_firmware", Text),
    Column("subject", Text),
    Column("step", String(40), nullable=False),
    Column("keygen_sent_at", String(40)),
    Column("initial_mode", Integer),
    Column("device_uuid", String(36)),
    Column("left_offline", Boolean),
    Column("csr_pem", Text),
    Column("key_sha", String(64)),
    Column("cert_serial", String(42)),
    Column("cert_fingerprint", String(80)),
    Column("cert_pem", Text),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40)),
    Column("outcome", String(20), nullable=False),
    Column("error", Text),
)

serials = Table(
    "serials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_ca_fingerprint", String(80), nullable=False),
    Column("serial", String(42), nullable=False),
    Column("attempt_id", Integer, nullable=False),
    Column("reserved_at", String(40), nullable=False),
    UniqueConstraint("device_ca_fingerprint", "serial", name="serial_unique_per_ca"),
)

locks = Table(
    "locks",
    metadata,
    Column("imei", String(20), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("station", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("attempt_id", Integer, nullable=False),
    Column("expires_at", String(40), nullable=False),
)


def _migration_1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[device_cas, attempts, serials, locks])


#: Ordered migrations: (version reached, what brings the previous version there).
MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = ((1, _migration_1),)
SCHEMA_VERSION = MIGRATIONS[-1][0]


class Outcome(enum.Enum):
    IN_PROGRESS = "in_progress"
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"
    REFUSED = "refused"
    UNUSABLE = "unusable"
    INTERRUPTED = "interrupted"


class LedgerError(InputError):
    """The ledger cannot be opened or used (exit 2)."""


class DeviceBusyError(ProblemsFoundError):
    """Another station (or process) is enrolling this IMEI right now."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def timestamp() -> str:
    """Now, as the ledger writes times (ISO 8601, UTC, milliseconds)."""
    return _iso(now())


@dataclass(frozen=True)
class Attempt:
    """One row of `attempts` (what `ledger show` and `export` read)."""

    id: int
    imei: str | None
    station: str
    port: str
    sec_tag: int
    device_ca_fingerprint: str
    modem_firmware: str | None
    subject: str | None
    step: str
    keygen_sent_at: str | None
    initial_mode: int | None
    device_uuid: str | None
    left_offline: bool | None
    csr_pem: str | None = field(repr=False)
    key_sha: str | None
    cert_serial: str | None
    cert_fingerprint: str | None
    cert_pem: str | None = field(repr=False)
    started_at: str
    ended_at: str | None
    outcome: str
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "imei": self.imei,
            "station": self.station,
            "port": self.port,
            "sec_tag": self.sec_tag,
            "device_ca_fingerprint": self.device_ca_fingerprint,
            "modem_firmware": self.modem_firmware,
            "subject": self.subject,
            "step": self.step,
            "keygen_sent_at": self.keygen_sent_at,
            "initial_mode": self.initial_mode,
            "device_uuid": self.device_uuid,
            "left_offline": self.left_offline,
            "key_sha": self.key_sha,
            "cert_serial": self.cert_serial,
            "cert_fingerprint": self.cert_fingerprint,
            "cert_pem": self.cert_pem,
            "csr_pem": self.csr_pem,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "error": self.error,
        }


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(unparsable ledger URL)"


#: Connections kept per ledger: one per enrolling worker; more are opened when needed.
POOL_SIZE = 16


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise LedgerError(
            "not a database URL: use sqlite:///FILE or postgresql://USER@HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise LedgerError("the ledger must be a file: sqlite:///FILE", path=url)
        engine = create_engine(
            parsed,
            connect_args={"timeout": 60, "check_same_thread": False},
            pool_size=POOL_SIZE,
            max_overflow=-1,
        )
        _serialise_sqlite_writers(engine)
        return engine
    if backend == "postgresql":
        # the driver as written: what SQLAlchemy picks for a bare postgresql:// differs by
        # version (psycopg2 up to 2.0, psycopg 3 from 2.1), and the ledger uses psycopg 3
        driver = parsed.drivername.partition("+")[2]
        if driver not in ("", "psycopg"):
            raise LedgerError(
                f"the ledger uses psycopg 3, not {driver}: use postgresql:// or postgresql+psycopg://"
            )
        parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=-1)
    raise LedgerError(f"unsupported ledger database {backend!r}: use sqlite or postgresql")


def _serialise_sqlite_writers(engine: Engine) -> None:
    """SQLite upgrades a reader to a writer lazily and then fails with 'database is locked' when
    two threads do so at once; BEGIN IMMEDIATE takes the write lock up front and waits for it
    (the recipe of SQLAlchemy's pysqlite documentation)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Reads never need the write lock; writes (the group committer's thread, migrations)
        # take it up front so that two processes on one file never deadlock upgrading.
        writer = conn.get_execution_options().get("provguard_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


_T = TypeVar("_T")


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes (on SQLite: BEGIN IMMEDIATE, see _serialise_sqlite_writers)."""
    with engine.connect() as conn:
        conn.execution_options(provguard_write=True)
        with conn.begin():
            yield conn


class _GroupCommitter:
    """SQLite makes every commit durable with an fsync, one writer at a time: with 16 workers
    each waiting for its own, the ledger, not the modems, would set the pace. One thread runs
    the writes of every worker that are waiting, each in its own savepoint (so one failing
    leaves the others), commits them with a single fsync, then answers each worker. A worker
    continues only once its write is on disk, as with a commit of its own."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._queue: queue.Queue[tuple[Callable[[Connection], Any], Future[Any]] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._loop, name="ledger-writer", daemon=True)
        self._thread.start()

    def run(self, work: Callable[[Connection], _T]) -> _T:
        future: Future[_T] = Future()
        self._queue.put((work, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 64:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Callable[[Connection], Any], Future[Any]]]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with _writing(self._engine) as conn:
                for work, future in batch:
                    try:
                        with conn.begin_nested():
                            outcomes.append((future, work(conn), None))
                    except Exception as exc:  # handed to the worker that asked
                        outcomes.append((future, None, exc))
        except Exception as exc:  # the commit itself failed: nobody's write is done
            for _, future in batch:
                future.set_exception(exc)
            return
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


class Ledger:
    """The ledger at `url`; `Ledger.open(url)` creates or migrates the schema first."""

    def __init__(self, engine: Engine, url: str):
        self.engine = engine
        self.url = url
        self._owner_prefix = f"{socket.gethostname()}:{os.getpid()}"
        self._committer = _GroupCommitter(engine) if engine.dialect.name == "sqlite" else None

    @classmethod
    def open(cls, url: str = DEFAULT_URL) -> Ledger:
        engine = _engine(url)
        ledger = cls(engine, url)
        try:
            ledger.migrate()
        except BaseException as exc:  # a ledger not opened leaves no writer thread behind
            ledger.close()
            if isinstance(exc, sa_exc.OperationalError):
                raise LedgerError(
                    f"cannot open the ledger: {_db_reason(exc)}", path=describe_url(url)
                ) from None
            raise
        return ledger

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction for reading (SQLite: deferred, so readers never wait for writers)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa_exc.OperationalError as exc:
            raise LedgerError(
                f"the ledger failed: {_db_reason(exc)}", path=describe_url(self.url)
            ) from None

    def _write(self, work: Callable[[Connection], _T]) -> _T:
        """Run `work` in a transaction that is committed (durably) before this returns."""
        try:
            if self._committer is not None:
                return self._committer.run(work)
            with _writing(self.engine) as conn:
                return work(conn)
        except sa_exc.OperationalError as exc:
            raise LedgerError(
                f"the ledger failed: {_db_reason(exc)}", path=describe_url(self.url)
            ) from None

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema to SCHEMA_VERSION; return the version found before."""
        with _writing(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7261100)"))
            if not inspect(conn).has_table("schema_version"):
                schema_version.create(conn)
            found = conn.execute(select(schema_version.c.version)).scalars().all()
            current = max(found, default=0)
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger has schema version {current}, newer than this provguard "
                    f"understands ({SCHEMA_VERSION}): upgrade provguard",
                    path=describe_url(self.url),
                )
            for version, step in MIGRATIONS:
                if version > current:
                    step(conn)
                    conn.execute(
                        insert(schema_version).values(version=version, applied_at=_iso(now()))
                    )
            return current

    def version(self) -> int:
        with self._tx() as conn:
            return int(max(conn.execute(select(schema_version.c.version)).scalars().all()))

    # -- recording an enrollment ---------------------------------------------------------------

    def record_device_ca(self, cert: x509.Certificate, fingerprint: str, pem: str) -> None:
        def work(conn: Connection) -> None:
            known = conn.execute(
                select(device_cas.c.fingerprint).where(device_cas.c.fingerprint == fingerprint)
            ).first()
            if known is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(device_cas).values(
                                fingerprint=fingerprint,
                                subject=cert.subject.rfc4514_string(),
                                pem=pem,
                            )
                        )
                except sa_exc.IntegrityError:
                    pass  # another station recorded it at the same moment

        self._write(work)

    def begin(self, *, station: str, port: str, sec_tag: int, device_ca_fingerprint: str) -> int:
        def work(conn: Connection) -> int:
            result = conn.execute(
                insert(attempts).values(
                    station=station,
                    port=port,
                    sec_tag=sec_tag,
                    device_ca_fingerprint=device_ca_fingerprint,
                    step="started",
                    started_at=_iso(now()),
                    outcome=Outcome.IN_PROGRESS.value,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

        return self._write(work)

    def note(self, attempt_id: int, **values: Any) -> None:
        """Record what is known so far about an attempt (step, IMEI, firmware, CSR, certificate)."""
        allowed = set(attempts.c.keys()) - {"id", "started_at", "outcome", "ended_at"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not ledger columns: {sorted(unknown)}")

        def work(conn: Connection) -> None:
            conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(**values))
            conn.execute(
                update(locks)
                .where(locks.c.attempt_id == attempt_id)
                .values(expires_at=_iso(now() + LOCK_LEASE))
            )

        self._write(work)

    def finish(
        self,
        attempt_id: int,
        outcome: Outcome,
        error: str | None = None,
        *,
        left_offline: bool = False,
    ) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(
                    outcome=outcome.value,
                    error=error,
                    ended_at=_iso(now()),
                    left_offline=left_offline,
                )
            )
            conn.execute(delete_lock(attempt_id))

        self._write(work)

    def acquire(
        self, imei: str, *, station: str, attempt_id: int, record: dict[str, Any] | None = None
    ) -> None:
        """Claim `imei` for this attempt, or raise DeviceBusyError naming who holds it; `record`
        goes into the attempt's row in the same transaction (claimed or not)."""
        owner = f"{self._owner_prefix}:{uuid.uuid4().hex[:8]}"
        row = {
            "imei": imei,
            "owner": owner,
            "station": station,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "attempt_id": attempt_id,
            "expires_at": _iso(now() + LOCK_LEASE),
        }

        def work(conn: Connection) -> str | None:
            """None when claimed, else why not (raised outside, so `record` stays)."""
            if record:
                conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(**record))
            try:
                with conn.begin_nested():
                    conn.execute(insert(locks).values(**row))
                return None
            except sa_exc.IntegrityError:
                pass
            held = conn.execute(select(locks).where(locks.c.imei == imei)).mappings().first()
            if held is None:  # released in between: try once more
                conn.execute(insert(locks).values(**row))
                return None
            if not _stale(held):
                return (
                    f"IMEI {imei} is being enrolled by station {held['station']!r} "
                    f"(host {held['host']}, attempt {held['attempt_id']}) right now"
                )
            taken = conn.execute(
                update(locks)
                .where(locks.c.imei == imei, locks.c.owner == held["owner"])
                .values(**row)
            )
            if taken.rowcount != 1:
                return f"IMEI {imei} was claimed by another station just now"
            conn.execute(
                update(attempts)
                .where(
                    attempts.c.id == held["attempt_id"],
                    attempts.c.outcome == Outcome.IN_PROGRESS.value,
                )
                .values(error="stopped mid-device (lock taken over by a later run)")
            )
            return None

        busy = self._write(work)
        if busy is not None:
            raise DeviceBusyError(busy)

    def issue(
        self,
        attempt_id: int,
        device_ca_fingerprint: str,
        sign: Callable[[int], tuple[str, str]],
    ) -> int:
        """Reserve a fresh serial, let `sign(serial)` make the certificate (fingerprint, PEM)
        and record it on the attempt, all in one transaction; return the serial."""

        def work(conn: Connection) -> int:
            serial = self._reserve(conn, device_ca_fingerprint, attempt_id)
            fingerprint, pem = sign(serial)
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(
                    step="sign",
                    cert_serial=format(serial, "x"),
                    cert_fingerprint=fingerprint,
                    cert_pem=pem,
                )
            )
            return serial

        return self._write(work)

    def reserve_serial(self, device_ca_fingerprint: str, attempt_id: int) -> int:
        """A fresh certificate serial, unique for this device CA across every station."""
        return self._write(lambda conn: self._reserve(conn, device_ca_fingerprint, attempt_id))

    def _reserve(self, conn: Connection, device_ca_fingerprint: str, attempt_id: int) -> int:
        for _ in range(SERIAL_ATTEMPTS):
            serial = x509.random_serial_number()
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(serials).values(
                            device_ca_fingerprint=device_ca_fingerprint,
                            serial=format(serial, "x"),
                            attempt_id=attempt_id,
                            reserved_at=_iso(now()),
                        )
                    )
                return serial
            except sa_exc.IntegrityError:
                continue
        raise LedgerError("could not reserve a unique certificate serial", path=self.url)

    # -- what earlier attempts left ----------------------------------------------------------

    def _latest(self, *conditions: ColumnElement[bool]) -> Attempt | None:
        """The newest attempt meeting every condition, if any."""
        with self._tx() as conn:
            row = (
                conn.execute(select(attempts).where(*conditions).order_by(attempts.c.id.desc()))
                .mappings()
                .first()
            )
        return None if row is None else Attempt(**row)

    def issued(self, imei: str, sec_tag: int, cert_fingerprint: str) -> Attempt | None:
        """The attempt that issued this certificate to this device and tag, if any."""
        return self._latest(
            attempts.c.imei == imei,
            attempts.c.sec_tag == sec_tag,
            attempts.c.cert_fingerprint == cert_fingerprint,
        )

    def generated_key(self, imei: str, sec_tag: int, key_sha: str) -> Attempt | None:
        """The latest attempt whose %KEYGEN left the key the modem lists with `key_sha`."""
        return self._latest(
            attempts.c.imei == imei,
            attempts.c.sec_tag == sec_tag,
            attempts.c.key_sha == key_sha,
            attempts.c.csr_pem.is_not(None),
        )

    def left_offline(self, imei: str, *, before: int) -> Attempt | None:
        """The previous attempt on this device, if it took the modem offline and did not give
        its mode back (it stopped mid-device, or restoring failed)."""
        previous = self._latest(
            attempts.c.imei == imei,
            attempts.c.id < before,
            attempts.c.initial_mode.is_not(None),
        )
        return previous if previous is not None and previous.left_offline else None

    def unconfirmed_keygen(self, imei: str, sec_tag: int, *, before: int) -> Attempt | None:
        """The latest earlier attempt on this device and tag, if it sent %KEYGEN and stopped
        before the modem's digest of the new key was recorded (so the key it left is unknown)."""
        previous = self._latest(
            attempts.c.imei == imei,
            attempts.c.sec_tag == sec_tag,
            attempts.c.id < before,
            attempts.c.keygen_sent_at.is_not(None),
        )
        return previous if previous is not None and previous.key_sha is None else None

    def enrolled(self, imei: str, sec_tag: int, device_ca_fingerprint: str) -> Attempt | None:
        """The latest attempt that left this device enrolled at this tag by this device CA."""
        return self._latest(
            attempts.c.imei == imei,
            attempts.c.sec_tag == sec_tag,
            attempts.c.device_ca_fingerprint == device_ca_fingerprint,
            attempts.c.outcome.in_((Outcome.ENROLLED.value, Outcome.ALREADY_ENROLLED.value)),
        )

    def attempts(self, *, imei: str | None = None) -> list[Attempt]:
        query = select(attempts).order_by(attempts.c.id)
        if imei is not None:
            query = query.where(attempts.c.imei == imei)
        with self._tx() as conn:
            return [Attempt(**row) for row in conn.execute(query).mappings()]

    def device_ca_pems(self) -> dict[str, str]:
        with self._tx() as conn:
            return {
                row.fingerprint: row.pem
                for row in conn.execute(select(device_cas.c.fingerprint, device_cas.c.pem))
            }


def delete_lock(attempt_id: int) -> Any:
    return locks.delete().where(locks.c.attempt_id == attempt_id)


def _stale(held: Any) -> bool:
    expires = dt.datetime.fromisoformat(str(held["expires_at"]))
    if expires <= now():
        return True
    if held["host"] != socket.gethostname():
        return False
    pid = int(held["pid"])
    if pid == os.getpid():
        return False  # this process, another worker: a real conflict
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # the process that held it is gone (crash, power cut of the station)
    except PermissionError:
        return False
    return False


def _db_reason(exc: sa_exc.DBAPIError) -> str:
    """The database's own one-line reason, without the SQL and parameters SQLAlchemy adds."""
    original = str(exc.orig).strip().splitlines()
    return original[0] if original else type(exc.orig).__name__


def latest_per_device(rows: Sequence[Attempt]) -> list[Attempt]:
    """The attempt that defines each (IMEI, sec_tag) now: its latest one with a certificate
    that is enrolled or already enrolled."""
    best: dict[tuple[str, int], Attempt] = {}
    for row in rows:
        if row.imei is None or row.cert_pem is None:
            continue
        if row.outcome not in (Outcome.ENROLLED.value, Outcome.ALREADY_ENROLLED.value):
            continue
        best[(row.imei, row.sec_tag)] = row
    return sorted(best.values(), key=lambda r: r.id)
