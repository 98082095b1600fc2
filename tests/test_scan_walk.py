"""`provguard.scan.walk`: every regular file under a tree is read, whatever its name; everything
else (FIFO, socket, device, loop, symlink out of the tree, unreadable) is unchecked with its
reason, and nothing ever blocks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provguard.errors import InputError
from provguard.scan.walk import (
    Entry,
    EntryState,
    Unreadable,
    WalkOptions,
    classify,
    open_file,
    read_small_file,
    walk,
)
from tests import containers as c
from tests import factories as f


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A FIFO opened by mistake blocks forever: fail the test after 20 s instead."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("the walk blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def key() -> bytes:
    return c.Secret(f.key_pem(f.ec_key()))


def by_path(entries: list[Entry], root: Path) -> dict[str, Entry]:
    return {str(e.path.relative_to(root)): e for e in entries}


def files(entries: list[Entry], root: Path) -> set[str]:
    return {str(e.path.relative_to(root)) for e in entries if e.state is EntryState.FILE}


def test_every_file_of_a_release_tree_is_read_whatever_its_suffix(
    tmp_path: Path, key: bytes
) -> None:
    """2,000 files; keys planted in .c .h .o .txt .json .conf and a file without a suffix."""
    root = tmp_path / "release"
    expected: set[str] = set()
    for index in range(1993):
        sub = root / f"d{index % 37}" / f"e{index % 5}"
        sub.mkdir(parents=True, exist_ok=True)
        name = f"f{index}{('.c', '.h', '.bin', '.hex', '', '.map', '.cmake')[index % 7]}"
        (sub / name).write_bytes(os.urandom(64))
        expected.add(str((sub / name).relative_to(root)))
    planted = ["src/main.c", "inc/creds.h", "obj/creds.o", "notes.txt", "certs.json",
               "prj.conf", "src/KEYFILE"]  # fmt: skip
    for name in planted:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"/* data */\n" + key + b"\n")
        expected.add(name)
    assert len(expected) == 2000
    entries = list(walk(root))
    assert files(entries, root) == expected
    assert [e.state for e in entries if e.state is not EntryState.FILE] == []
    holding = set()
    for entry in entries:
        opened = open_file(entry)
        assert not isinstance(opened, Unreadable)
        with opened:
            if key in opened.read():
                holding.add(str(entry.path.relative_to(root)))
    assert holding == set(planted)
    assert [e.path for e in entries] == sorted(
        (e.path for e in entries), key=lambda p: [os.fsencode(part) for part in p.parts]
    )


def test_special_files_and_symlinks_are_unchecked_with_their_reason(
    tmp_path: Path, key: bytes
) -> None:
    root = tmp_path / "tree"
    (root / "real").mkdir(parents=True)
    (root / "real" / "k.pem").write_bytes(key)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "other.pem").write_bytes(key)
    os.mkfifo(root / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    (root / "up").symlink_to("..")  # out of the tree (its parent)
    (root / "real" / "loop").symlink_to("..")  # to an ancestor: a loop
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")  # a symlink loop: ELOOP
    (root / "broken").symlink_to("missing")
    (root / "out").symlink_to(outside)
    (root / "out.pem").symlink_to(outside / "other.pem")
    (root / "zero").symlink_to("/dev/zero")
    try:
        entries = by_path(list(walk(root)), root)
    finally:
        server.close()
    reasons = {name: e.reason for name, e in entries.items() if e.state is EntryState.UNCHECKED}
    assert reasons == {
        "pipe": "a FIFO (named pipe): not read",
        "sock": "a socket: not read",
        "up": f"symlink leaves the scanned tree (to {tmp_path}): not followed",
        "real/loop": "symlink loop (to a parent)",
        "a": "symlink loop",
        "b": "symlink loop",
        "broken": "broken symlink",
        "out": f"symlink leaves the scanned tree (to {outside}): not followed",
        "out.pem": f"symlink leaves the scanned tree (to {outside / 'other.pem'}): not followed",
        "zero": "symlink leaves the scanned tree (to /dev/zero): not followed",
    }
    assert {n for n, e in entries.items() if e.state is EntryState.FILE} == {"real/k.pem"}


def test_a_file_or_directory_reached_twice_is_read_once(tmp_path: Path, key: bytes) -> None:
    root = tmp_path / "tree"
    (root / "real").mkdir(parents=True)
    (root / "real" / "k.pem").write_bytes(key)
    (root / "alias").symlink_to("real")  # a symlinked subdirectory inside the tree
    (root / "same.pem").symlink_to("real/k.pem")
    os.link(root / "real" / "k.pem", root / "hard.pem")
    entries = list(walk(root))
    read = files(entries, root)
    assert read == {"alias/k.pem"}  # "alias" sorts first: its files are read through it
    same = {str(e.path.relative_to(root)): e.same_as for e in entries
            if e.state is EntryState.SAME}  # fmt: skip
    assert same == {
        "hard.pem": str(root / "alias" / "k.pem"),
        "real": str(root / "alias"),
        "same.pem": str(root / "alias" / "k.pem"),
    }


def test_exclude_patterns(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for name in ("a.o", "src/b.o", "src/c.c", "build/tmp/x.bin", "build/keep.hex", ".git/HEAD"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    options = WalkOptions(exclude=("*.o", "build/tmp", ".git/"))
    entries = list(walk(root, options))
    assert files(entries, root) == {"src/c.c", "build/keep.hex"}
    excluded = {str(e.path.relative_to(root)): e.reason for e in entries
                if e.state is EntryState.EXCLUDED}  # fmt: skip
    assert excluded == {
        ".git": "excluded by --exclude .git/",
        "a.o": "excluded by --exclude *.o",
        "build/tmp": "excluded by --exclude build/tmp",
        "src/b.o": "excluded by --exclude *.o",
    }


def test_names_that_are_not_utf8_are_escaped_and_still_read(tmp_path: Path, key: bytes) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    raw = os.fsencode(root) + b"/k\xff\x1b[1m.pem"
    with open(raw, "wb") as out:
        out.write(key)
    (entry,) = walk(root)
    assert entry.state is EntryState.FILE
    assert entry.display == f"{root}/k\\xff\\x1b[1m.pem"
    opened = open_file(entry)
    assert not isinstance(opened, Unreadable)
    with opened:
        assert c.digest(opened.read()) == c.digest(key)


# --- command-line paths and option files ---------------------------------------------------------


def test_classify_never_blocks_on_what_is_not_a_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "broken").symlink_to("nowhere")
    (tmp_path / "file.bin").write_bytes(b"1234")
    cases = {
        tmp_path / "pipe": "a FIFO (named pipe): not read",
        Path("/dev/zero"): "a character device: not read",
        tmp_path / "zero": "a character device: not read",
        tmp_path / "broken": "broken symlink",
        tmp_path / "missing": "no such file or directory",
    }
    for path, reason in cases.items():
        entry = classify(path)
        assert (entry.state, entry.reason) == (EntryState.UNCHECKED, reason), path
    entry = classify(tmp_path / "file.bin")
    assert (entry.state, entry.size) == (EntryState.FILE, 4)
    assert classify(tmp_path).state is EntryState.DIRECTORY


def test_open_file_refuses_a_path_swapped_after_the_walk(tmp_path: Path) -> None:
    path = tmp_path / "app.bin"
    path.write_bytes(b"data")
    entry = classify(path)
    path.unlink()
    os.mkfifo(path)  # the walk saw a file; a FIFO is there now: never opened for a blocking read
    opened = open_file(entry)
    assert isinstance(opened, Unreadable)
    assert "FIFO" in opened.reason
    path.unlink()
    (tmp_path / "keep").write_bytes(b"")  # holds the first inode, so it is not reused
    entry = classify(tmp_path / "keep")
    (tmp_path / "keep").rename(tmp_path / "kept")
    (tmp_path / "keep").write_bytes(b"other")  # another file (another inode) under that name
    opened = open_file(entry)
    assert isinstance(opened, Unreadable)
    assert "replaced" in opened.reason


def test_read_small_file_refuses_fifos_devices_and_large_files(tmp_path: Path, key: bytes) -> None:
    os.mkfifo(tmp_path / "key.pipe")
    (tmp_path / "big").write_bytes(bytes(2000))
    (tmp_path / "k.pem").write_bytes(key)
    for path, words in (
        (tmp_path / "key.pipe", "FIFO"),
        (Path("/dev/zero"), "character device"),
        (tmp_path / "big", "too large"),
        (tmp_path, "directory"),
    ):
        with pytest.raises(InputError, match=words) as caught:
            read_small_file(path, 1000, what="--key file")
        assert caught.value.path == str(path)
        assert str(caught.value).startswith(f"{path}: --key file ")
    assert c.digest(read_small_file(tmp_path / "k.pem")) == c.digest(key)


# --- permissions -------------------------------------------------------------------------------


def walk_as_nobody(root: Path) -> list[list[str | None]]:
    """`walk(root)` in a forked child that dropped to uid/gid 65534 (the venv's interpreter is
    under /root, which that user cannot execute, so the child forks rather than execs)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result = [[str(e.path), e.state.value, e.reason] for e in walk(root)]
            os.write(write_end, json.dumps(result).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result: list[list[str | None]] = json.loads(data)
    return result


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="provguard-walk-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


def test_unreadable_directory_and_file_are_unchecked(shared_tmp: Path, key: bytes) -> None:
    """Walked as an unprivileged user (root reads mode-000 paths): uid 65534 in a forked child
    when the tests run as root (CI), this process otherwise."""
    root = shared_tmp / "tree"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "k.pem").write_bytes(key)
    (root / "locked").chmod(0)
    (root / "secret.pem").write_bytes(key)
    (root / "secret.pem").chmod(0)
    (root / "open.txt").write_text("x")
    (root / "open.txt").chmod(0o644)
    root.chmod(0o755)
    if os.geteuid() == 0:
        result = {Path(str(p)).name: (s, r) for p, s, r in walk_as_nobody(root)}
    else:  # pragma: no cover - developers running the tests unprivileged
        result = {e.path.name: (e.state.value, e.reason) for e in walk(root)}
    assert result == {
        "locked": ("unchecked", "cannot list: Permission denied"),
        "open.txt": ("file", None),
        "secret.pem": ("unchecked", "cannot read: permission denied"),
    }


def test_a_listing_that_fails_midway_is_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"x")
    (tmp_path / "c").write_bytes(b"x")
    real = os.scandir

    def scandir(path: os.PathLike[str] | str) -> object:
        if Path(path).name == "b":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = {str(e.path.relative_to(tmp_path)): (e.state, e.reason) for e in walk(tmp_path)}
    assert result == {
        "a/b": (EntryState.UNCHECKED, "cannot list: Permission denied"),
        "c": (EntryState.FILE, None),
    }


def test_a_leading_slash_anchors_an_exclude_at_the_root(tmp_path: Path) -> None:
    # As in .gitignore: "/build" is the root's build directory only, "build" is any of them.
    for name in ("build/zephyr/zephyr.bin", "app/build/x.bin", "keep.bin"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    def excluded(*patterns: str) -> set[str]:
        return {
            e.path.relative_to(tmp_path).as_posix()
            for e in walk(tmp_path, WalkOptions(exclude=patterns))
            if e.state is EntryState.EXCLUDED
        }

    assert excluded("/build") == {"build"}
    assert excluded("/build/") == {"build"}
    assert excluded("/app/build") == {"app/build"}
    assert excluded("build") == {"build", "app/build"}
