"""Known keys read on several processes (`--jobs`): the same keys, in the same order, the same
first error, and no worker left behind, whatever a worker does.

MIN_FILES_PER_PROCESS is lowered so that a handful of files is split over workers; the expected
keys are computed here from the keys the test generated (fingerprint = SHA-256 of the
SubjectPublicKeyInfo DER), never from the loader.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provguard.cli import main
from provguard.errors import InputError
from provguard.scan import keyset
from provguard.scan.known import KnownMaterial
from provguard.scan.model import Kind
from tests import factories as f

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def fingerprint(key: PrivateKey) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + hashlib.sha256(spki).hexdigest()


def no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyset, "MIN_FILES_PER_PROCESS", 2)


@pytest.fixture
def key_files(tmp_path: Path) -> list[tuple[Path, PrivateKey]]:
    """Nine key files: P-256 PKCS#8 and SEC1 (read the short way), an RSA key and a P-384 key
    (read through cryptography: they cross the pipe as objects, not as a P-256 tuple)."""
    keys: list[PrivateKey] = [f.ec_key() for _ in range(7)]
    keys.insert(4, f.rsa_key())
    keys.append(f.ec_key(ec.SECP384R1()))
    out = []
    for i, key in enumerate(keys):
        path = tmp_path / f"device-{i}.pem"
        path.write_bytes(f.key_pem(key, pkcs8=i % 2 == 0))
        out.append((path, key))
    return out


def expected(files: list[tuple[Path, PrivateKey]]) -> list[tuple[str, str]]:
    return [(str(path), fingerprint(key)) for path, key in files]


def seen(materials: list[KnownMaterial]) -> list[tuple[str, str]]:
    assert all(m.kind is Kind.PRIVATE_KEY for m in materials)
    return [(m.source, m.fingerprint) for m in materials]


@pytest.mark.parametrize("jobs", [1, 2, 3, 4])
@pytest.mark.usefixtures("small_runs")
def test_a_list_read_on_several_processes_gives_every_key_in_order(
    tmp_path: Path, key_files: list[tuple[Path, PrivateKey]], jobs: int
) -> None:
    listing = tmp_path / "keys.txt"
    listing.write_text("# batch 7\n" + "".join(f"{p}\n\n" for p, _ in key_files))
    materials = keyset.load_list(listing, jobs)
    assert seen(materials) == expected(key_files)
    # a key that crossed the pipe is whole: its forms hold its scalar, as one read here does
    single = keyset.load_list(listing, 1)
    assert [m.forms for m in materials] == [m.forms for m in single]
    scalar = key_files[-2][1]
    assert isinstance(scalar, ec.EllipticCurvePrivateKey)
    secret = scalar.private_numbers().private_value.to_bytes(32, "big")
    assert any(secret in form.der for form in materials[-2].forms)
    assert no_children_left()


@pytest.mark.usefixtures("small_runs")
def test_a_key_directory_and_a_json_list_are_read_on_several_processes(
    tmp_path: Path, key_files: list[tuple[Path, PrivateKey]]
) -> None:
    by_name = sorted(key_files, key=lambda item: item[0].name)
    assert seen(keyset.load_dir(tmp_path, 3)) == expected(by_name)
    listing = tmp_path.parent / f"{tmp_path.name}-keys.json"
    listing.write_text(
        "["
        + ",".join(f'{{"key": "{p}", "id": "dev-{i}"}}' for i, (p, _) in enumerate(key_files))
        + "]"
    )
    assert seen(keyset.load_list(listing, 3)) == expected(key_files)
    assert no_children_left()


@pytest.mark.parametrize(
    ("broken", "line"),
    [
        ((7,), 8),  # in the last worker's run only
        ((1, 7), 2),  # in this process's run and in a worker's: the first in the list wins
        ((4, 7), 5),  # in two workers' runs: the earlier worker's
    ],
)
@pytest.mark.usefixtures("small_runs")
def test_the_first_bad_line_is_the_error_whichever_process_read_it(
    tmp_path: Path,
    key_files: list[tuple[Path, PrivateKey]],
    broken: tuple[int, ...],
    line: int,
) -> None:
    for index in broken:
        key_files[index][0].write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    listing = tmp_path / "keys.txt"
    listing.write_text("".join(f"{p}\n" for p, _ in key_files))
    with pytest.raises(InputError) as error:
        keyset.load_list(listing, 3)
    name = key_files[line - 1][0]
    assert str(error.value) == (
        f"{listing}:{line}: {name}: a PEM block has no matching END line (truncated?)"
    )
    assert no_children_left()


@pytest.mark.usefixtures("small_runs")
def test_a_worker_that_dies_has_its_run_read_again_here() -> None:
    parent = os.getpid()
    reader: dict[int, int] = {}

    def load(unit: int, out: list[KnownMaterial]) -> None:
        if os.getpid() != parent:
            os._exit(3)  # the worker dies before it sends anything
        reader[unit] = os.getpid()
        out.append(KnownMaterial(Kind.CERTIFICATE, f"unit {unit}", f"SHA256:{unit:064x}"))

    materials = keyset.load_all(list(range(7)), load, jobs=3)
    assert [m.source for m in materials] == [f"unit {i}" for i in range(7)]
    assert set(reader.values()) == {parent}
    assert no_children_left()


@pytest.mark.usefixtures("small_runs")
def test_a_worker_that_fails_otherwise_has_its_run_read_again_here() -> None:
    parent = os.getpid()

    def load(unit: int, out: list[KnownMaterial]) -> None:
        if os.getpid() != parent:
            raise RuntimeError("a bug in a worker")
        if unit == 5:
            raise InputError("the real reason", path="list.txt", line=unit + 1)

    with pytest.raises(InputError, match=r"^list\.txt:6: the real reason$"):
        keyset.load_all(list(range(7)), load, jobs=3)
    assert no_children_left()


@pytest.mark.usefixtures("small_runs")
def test_workers_still_reading_are_stopped_when_this_process_finds_an_error() -> None:
    parent = os.getpid()

    def load(unit: int, out: list[KnownMaterial]) -> None:
        if os.getpid() != parent:
            # a worker still reading long after this process is done; it sleeps rather than
            # spins, and ends by itself, so that a bug in stopping it leaves no busy orphan
            time.sleep(30)
        raise InputError("bad", path="list.txt", line=1)

    started = time.monotonic()

    with pytest.raises(InputError):
        keyset.load_all(list(range(6)), load, jobs=3)
    assert no_children_left()
    assert time.monotonic() - started < 20  # stopped, not waited for


def test_below_the_threshold_everything_is_read_here(tmp_path: Path) -> None:
    parent = os.getpid()
    pids = set()

    def load(unit: int, out: list[KnownMaterial]) -> None:
        pids.add(os.getpid())

    keyset.load_all(list(range(keyset.MIN_FILES_PER_PROCESS * 2 - 1)), load, jobs=8)
    assert pids == {parent}


@pytest.mark.usefixtures("small_runs")
def test_scan_finds_a_known_key_read_by_a_worker(
    tmp_path: Path, key_files: list[tuple[Path, PrivateKey]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, key = key_files[-2]  # in the last run: read by a worker
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    image = tmp_path.parent / f"{tmp_path.name}-image.bin"
    image.write_bytes(b"\xff" * 1000 + scalar[::-1] + b"\xff" * 1000)
    listing = tmp_path.parent / f"{tmp_path.name}-keys.txt"
    listing.write_text("".join(f"{p}\n" for p, _ in key_files))
    code = main(
        ["scan", str(image), "--keys-from", str(listing), "--jobs", "3", "--format", "json"]
    )
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert code == 1
    assert [(x["fileOffset"], x["length"], x["key"], x["known"]) for x in findings] == [
        (1000, 32, fingerprint(key), str(path))
    ]
    assert no_children_left()


@pytest.mark.usefixtures("small_runs")
def test_when_no_process_can_be_forked_the_runs_left_are_read_here(
    tmp_path: Path, key_files: list[tuple[Path, PrivateKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fork, forks = os.fork, []

    def fork() -> int:  # the first fork works, the second finds no process left (EAGAIN)
        if forks:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    listing = tmp_path / "keys.txt"
    listing.write_text("".join(f"{p}\n" for p, _ in key_files))
    assert seen(keyset.load_list(listing, 4)) == expected(key_files)
    assert forks == [1]
    assert no_children_left()


# --- what crosses the pipe, in this process ------------------------------------------------------


def _sent(run: list[tuple[Path, PrivateKey]], fail_at: int | None = None) -> bytes:
    """What a worker writes for `run` (send_run, called here, not in a fork), read whole."""

    def load(unit: tuple[Path, PrivateKey], out: list[KnownMaterial]) -> None:
        if unit[0] == (run[fail_at][0] if fail_at is not None else None):
            raise InputError("no private key in it", path="list.txt", line=fail_at)
        out += keyset.load_file(unit[0])

    read_end, write_end = os.pipe()
    try:
        keyset.send_run(run, load, write_end)  # nine keys: less than a pipe holds
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read()


def _received(data: bytes) -> list[KnownMaterial] | InputError | None:
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    try:
        return keyset.receive(read_end)
    finally:
        os.close(read_end)


def test_what_a_worker_sends_is_received_as_the_same_materials(
    key_files: list[tuple[Path, PrivateKey]],
) -> None:
    data = _sent(key_files)
    assert int.from_bytes(data[:8], "little") == len(data) - 8  # its length, then the pickle
    materials = _received(data)
    assert isinstance(materials, list)
    here = [m for p, _ in key_files for m in keyset.load_file(p)]
    assert [(m.kind, m.source, m.fingerprint, m.p256, m.forms) for m in materials] == [
        (m.kind, m.source, m.fingerprint, m.p256, m.forms) for m in here
    ]
    assert seen(materials) == expected(key_files)


def test_a_worker_sends_its_first_error_with_its_file_and_line(
    key_files: list[tuple[Path, PrivateKey]],
) -> None:
    error = _received(_sent(key_files, fail_at=3))
    assert isinstance(error, InputError)
    assert (error.message, error.path, error.line) == ("no private key in it", "list.txt", 3)
    assert str(error) == "list.txt:3: no private key in it"


@pytest.mark.parametrize(
    "cut",
    [
        lambda d: d[:-1],  # the worker died while writing
        lambda d: d + b"\x00",  # more than it announced
        lambda d: d[:8],  # the length alone
        lambda d: d[:7],  # not even that
        lambda d: b"",  # nothing at all
    ],
    ids=["short", "long", "length only", "cut length", "empty"],
)
def test_a_worker_s_result_that_is_not_whole_is_none(
    key_files: list[tuple[Path, PrivateKey]], cut: object
) -> None:
    data = _sent(key_files[:2])
    assert callable(cut)
    assert _received(cut(data)) is None


def _readers(tmp_path: Path, units: int, jobs: int) -> list[int]:
    """Which process read each unit (logged, by pid, to a file opened for appending), after
    checking that every unit was read exactly once and came back in order."""
    log = tmp_path / f"reads-{units}-{jobs}.log"

    def load(unit: int, out: list[KnownMaterial]) -> None:
        with open(log, "a") as handle:
            handle.write(f"{unit} {os.getpid()}\n")
        out.append(KnownMaterial(Kind.CERTIFICATE, f"unit {unit}", f"SHA256:{unit:064x}"))

    materials = keyset.load_all(list(range(units)), load, jobs=jobs)
    assert [m.source for m in materials] == [f"unit {i}" for i in range(units)]
    reads = [(int(u), int(p)) for u, p in (line.split() for line in log.read_text().splitlines())]
    assert sorted(u for u, _ in reads) == list(range(units))  # each once: none read again here
    assert no_children_left()
    return [pid for _, pid in sorted(reads)]


@pytest.mark.usefixtures("small_runs")
def test_each_file_is_read_once_and_the_runs_after_the_first_by_workers(tmp_path: Path) -> None:
    """Seven units, three jobs, at least two units each: runs of 3, 3 and 1; the first is read
    here, each other one by a worker of its own (a worker whose result were lost would have its
    run read here again, which the log would show)."""
    parent = os.getpid()
    readers = _readers(tmp_path, 7, 3)
    assert readers[:3] == [parent] * 3
    assert readers[3] == readers[4] == readers[5] != parent
    assert readers[6] not in (parent, readers[3])


@pytest.mark.usefixtures("small_runs")
@pytest.mark.parametrize(("units", "jobs", "workers"), [(3, 8, 0), (4, 8, 1), (4, 1, 0), (9, 2, 1)])
def test_as_many_workers_as_jobs_allow_with_two_units_each_at_least(
    tmp_path: Path, units: int, jobs: int, workers: int
) -> None:
    readers = _readers(tmp_path, units, jobs)
    assert len(set(readers) - {os.getpid()}) == workers


def test_key_sets_are_read_on_the_jobs_the_scan_is_given(
    tmp_path: Path, key_files: list[tuple[Path, PrivateKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--jobs` reaches the reading of --key-dir and --keys-from; without it (a caller of its
    own), and for the loaders called alone, key files are read in this process."""
    asked: list[int] = []
    real = keyset.load_all

    def spy(units, load, jobs):  # type: ignore[no-untyped-def]
        asked.append(jobs)
        return real(units, load, jobs)

    monkeypatch.setattr(keyset, "load_all", spy)
    listing = tmp_path.parent / f"{tmp_path.name}.txt"
    listing.write_text("".join(f"{p}\n" for p, _ in key_files))
    options = {"key": [], "key_dir": [tmp_path], "keys_from": [listing]}
    loaded = keyset.from_args(argparse.Namespace(**options, jobs=3))
    assert asked == [3, 3]
    assert len(loaded) == 2 * len(key_files)
    asked.clear()
    keyset.from_args(argparse.Namespace(**options))
    keyset.load_dir(tmp_path)
    keyset.load_list(listing)
    assert asked == [1, 1, 1, 1]
