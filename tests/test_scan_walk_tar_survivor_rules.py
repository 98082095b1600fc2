"""What a directory walk and a tar read report, at the places the other rules leave open: every
entry's path and shown (escaped) name whatever its state, the exact reason when a file is opened
too late (replaced, or the descriptor fails), a tty never made the scan's controlling terminal,
bounded reads of option files and of a file's format, names escaped only where they must be, and
a tar's parts (extended headers, bytes after its end) reported only for a tar read to its end.

Every tree, tar, zip and gzip stream is built here, so the expected names, offsets and sizes come
from what the test wrote.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from provguard.errors import InputError
from provguard.scan import walk as walk_module
from provguard.scan.archive import (
    ArchiveLimits,
    Chunk,
    Event,
    Location,
    Outcome,
    State,
    _tar_stated,
    archive_format,
    escape_name,
    file_format,
    read_archive,
)
from provguard.scan.walk import (
    Entry,
    EntryState,
    FileId,
    Unreadable,
    classify,
    open_file,
    read_small_file,
    walk,
)

MiB = 1024 * 1024


def events_of(data: bytes, name: str, limits: ArchiveLimits | None = None) -> list[Event]:
    return list(read_archive(io.BytesIO(data), name, limits))


def summary(events: list[Event]) -> list[tuple[str, str, str, int, str | None]]:
    """Every outcome as (display, kind, state, size, reason), in order."""
    return [
        (e.location.display, e.kind, e.state.value, e.size, e.reason)
        for e in events
        if isinstance(e, Outcome)
    ]


def plain_tar(*members: tuple[str, bytes], fmt: int = tarfile.USTAR_FORMAT, **pax: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, pax_headers=pax or None) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def first_data_offset(tar: bytes) -> int:
    """Where the first member's data starts, as tarfile (random access) finds it."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        return t.getmembers()[0].offset_data


# --- the walk: each entry's path and shown name, whatever its state ---------------------------


def test_classify_keeps_the_path_and_its_escaped_name_in_every_state(tmp_path: Path) -> None:
    """The path is what the scan opens later; the shown name is what a report prints, with its
    control character escaped; both are kept for files not read too."""
    regular = tmp_path / "regular"
    regular.write_bytes(b"x")
    directory = tmp_path / "dir\x01"
    directory.mkdir()
    fifo = tmp_path / "pipe\x01"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling\x01"
    dangling.symlink_to(tmp_path / "nowhere")
    missing = tmp_path / "missing\x01"
    under_a_file = regular / "child\x01"  # a file is not a directory: stat fails with ENOTDIR

    def shown(path: Path) -> str:
        return str(path).replace("\x01", "\\x01")

    info = directory.stat()
    assert classify(directory) == Entry(
        directory,
        shown(directory),
        EntryState.DIRECTORY,
        id=FileId(info.st_dev, info.st_ino),
    )
    assert classify(fifo) == Entry(
        fifo, shown(fifo), EntryState.UNCHECKED, "a FIFO (named pipe): not read"
    )
    assert classify(dangling) == Entry(
        dangling, shown(dangling), EntryState.UNCHECKED, "broken symlink"
    )
    assert classify(missing) == Entry(
        missing, shown(missing), EntryState.UNCHECKED, "no such file or directory"
    )
    assert classify(under_a_file) == Entry(
        under_a_file,
        shown(under_a_file),
        EntryState.UNCHECKED,
        f"cannot stat: {os.strerror(errno.ENOTDIR)}",
    )


def test_the_walk_keeps_the_shown_name_of_links_it_does_not_follow(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "loop\x03").symlink_to(".")  # the root itself: a loop
    (root / "out\x02").symlink_to(outside)  # leaves the tree
    (root / "twin\x04").symlink_to("sub")  # the directory already walked as "sub"
    target = os.path.realpath(outside)
    assert list(walk(root)) == [  # sorted by name: loop, out, sub (entered, empty), twin
        Entry(
            root / "loop\x03",
            f"{root}/loop\\x03",
            EntryState.UNCHECKED,
            "symlink loop (to a parent)",
        ),
        Entry(
            root / "out\x02",
            f"{root}/out\\x02",
            EntryState.UNCHECKED,
            f"symlink leaves the scanned tree (to {target}): not followed",
        ),
        Entry(root / "twin\x04", f"{root}/twin\\x04", EntryState.SAME, same_as=f"{root}/sub"),
    ]


# --- open_file: a file replaced after the walk, a failing descriptor, a tty -------------------


def test_a_file_replaced_by_another_after_the_walk_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "image.bin"
    path.write_bytes(b"walked")
    entry = classify(path)
    other = tmp_path / "other.bin"
    other.write_bytes(b"swapped in")
    os.replace(other, path)  # same path, another inode
    assert open_file(entry) == Unreadable("replaced by another file after the walk: not read")


def test_an_opened_file_is_read_through_a_blocking_descriptor(tmp_path: Path) -> None:
    """The descriptor is opened without blocking (so a FIFO cannot hang the scan) and made
    blocking again once it is known to be a regular file: a read returns data, never None."""
    path = tmp_path / "image.bin"
    path.write_bytes(b"0123456789")
    opened = open_file(classify(path))
    assert not isinstance(opened, Unreadable)
    with opened:
        assert os.get_blocking(opened.fileno()) is True
        assert opened.read() == b"0123456789"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd")
def test_a_descriptor_that_cannot_be_examined_is_closed_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "image.bin"
    path.write_bytes(b"x")
    entry = classify(path)
    before = set(os.listdir("/proc/self/fd"))

    def failing(fd: int) -> os.stat_result:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fstat", failing)
        result = open_file(entry)
    assert result == Unreadable(f"cannot open: {os.strerror(errno.EIO)}")
    assert set(os.listdir("/proc/self/fd")) == before  # the descriptor was closed


_TTY_CHILD = """
import json, os
from pathlib import Path
from provguard.scan.walk import Entry, EntryState, FileId, open_file

def controlling_tty():
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True

master, slave = os.openpty()
name = os.ttyname(slave)
os.close(slave)
before = controlling_tty()
# a path the walk saw as a regular file, replaced by a terminal before it is opened
result = open_file(Entry(Path(name), name, EntryState.FILE, size=1, id=FileId(0, 0)))
print(json.dumps({"before": before, "reason": result.reason, "after": controlling_tty()}))
"""


@pytest.mark.skipif(not os.path.exists("/dev/ptmx"), reason="no pseudo-terminals")
def test_opening_a_terminal_never_makes_it_the_scans_controlling_terminal() -> None:
    """A session leader without a controlling terminal that opens a tty without O_NOCTTY takes
    it as its terminal (a later Ctrl-C or hang-up on it would reach the scan): run in a new
    session, the scan opens a path replaced by a pty, refuses it, and still has no terminal."""
    done = subprocess.run(
        [sys.executable, "-c", _TTY_CHILD],
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "before": False,
        "reason": "a character device (replaced after the walk): not read",
        "after": False,
    }


def test_every_file_is_opened_without_taking_a_terminal_and_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flags the test above depends on, seen in this process (mutmut maps tests to code by
    tracing its own process, not the child's): O_NOCTTY, and O_NONBLOCK (a FIFO put in a file's
    place after the walk must not hang the open)."""
    path = tmp_path / "app.bin"
    path.write_bytes(b"data")
    opened: list[int] = []
    real_open = os.open

    def watched(name: object, flags: int, *args: object) -> int:
        opened.append(flags)
        return real_open(name, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(walk_module.os, "open", watched)
    [entry] = [e for e in walk_module.walk(tmp_path) if e.state is EntryState.FILE]
    result = walk_module.open_file(entry)
    assert not isinstance(result, walk_module.Unreadable)
    result.close()
    [flags] = opened
    assert flags & os.O_NOCTTY == os.O_NOCTTY
    assert flags & os.O_NONBLOCK == os.O_NONBLOCK
    assert flags & os.O_ACCMODE == os.O_RDONLY


# --- bounded reads ------------------------------------------------------------------------------


def test_an_option_file_that_grows_after_its_size_was_checked_is_read_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size check before the read cannot be relied on (the file may grow): the read itself
    takes at most limit + 1 bytes, so a file grown to 64 MiB costs no 64 MiB of memory."""
    limit = 16
    path = tmp_path / "client.key"
    path.write_bytes(b"tiny")
    real = walk_module.open_file

    def growing(entry: Entry) -> object:
        opened = real(entry)
        os.truncate(entry.path, 64 * MiB)  # sparse: no disk used
        return opened

    monkeypatch.setattr(walk_module, "open_file", growing)
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as raised:
            read_small_file(path, limit, what="key")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(raised.value) == f"{path}: key too large (limit {limit} bytes)"
    assert peak < MiB


def test_the_format_of_a_large_file_is_found_from_its_head_and_tail_only(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        out.truncate(64 * MiB)  # sparse zeros: no format
    with path.open("rb") as stream:
        tracemalloc.start()
        try:
            assert file_format(stream, "big.bin") is None
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 2 * MiB  # the head (512 bytes) and the tail (64 KiB + 22) only


def test_a_zip_with_the_longest_comment_appended_to_an_image_is_a_zip() -> None:
    """The end record of a zip whose comment is 0xFFFF bytes long starts exactly 64 KiB + 22
    bytes before the end: the very first byte the tail read takes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.bin", b"app")
        z.comment = b"c" * 0xFFFF
    stream = io.BytesIO(b"\xff" * 4096 + buffer.getvalue())  # an image, then the zip
    assert file_format(stream, "update.bin") == "zip"


def test_a_v7_tar_named_tar_is_a_tar_whatever_length_of_head_is_given() -> None:
    """`archive_format` takes the file's first bytes, 512 or more: the header is the first 512."""
    v7 = bytearray(plain_tar(("a.txt", b"abc")))
    v7[257:265] = bytes(8)  # no magic, no version: a pre-POSIX header
    header = bytes(v7[:148]) + b" " * 8 + bytes(v7[156:512])
    v7[148:156] = b"%06o\0 " % sum(header)
    assert len(v7) > 512
    assert archive_format(bytes(v7), b"", "t.tar") == "tar"
    assert archive_format(bytes(v7[:512]), b"", "t.tar") == "tar"


# --- names: escaped only where they must be -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a b\n", "a b\\x0a"),  # a space stays a space, even beside an escaped character
        ("!\x1f", "!\\x1f"),  # the first printable character after the controls
        ("\xa0\x7f", "\xa0\\x7f"),  # NO-BREAK SPACE follows the C1 controls: shown as it is
        ("\ue000\n", "\ue000\\x0a"),  # the first private-use character after the surrogates
    ],
)
def test_characters_next_to_the_escaped_ranges_are_shown_as_they_are(name: str, shown: str) -> None:
    assert escape_name(name) == shown


# --- damage reasons and limits a user reads -----------------------------------------------------


def test_a_gzip_with_a_corrupt_deflate_stream_is_named_so() -> None:
    header = b"\x1f\x8b\x08\x00" + bytes(4) + b"\x00\xff"  # gzip, deflate, no flags, no name
    reserved_block = b"\x07"  # BFINAL=1, BTYPE=11: a block type deflate reserves
    events = events_of(header + reserved_block + bytes(64), "c.gz")
    assert summary(events) == [("c.gz", "archive", "unchecked", 0, "corrupt deflate stream")]
    assert [e.format for e in events if isinstance(e, Outcome)] == ["gzip"]


def test_limits_a_caller_gets_wrong_are_refused_with_the_whole_message() -> None:
    negative = "archive limits max_depth, ratio_grace_bytes must not be negative"
    with pytest.raises(ValueError, match=f"^{re.escape(negative)}$"):
        ArchiveLimits(max_depth=-1)
    overlap = "archive limit overlap_bytes must be smaller than window_bytes"
    with pytest.raises(ValueError, match=f"^{re.escape(overlap)}$"):
        ArchiveLimits(window_bytes=64, overlap_bytes=64)


# --- tar: parts that are no member --------------------------------------------------------------


def test_a_truncated_tar_reports_no_part_for_its_extended_headers() -> None:
    """A tar cut before its end-of-archive blocks is unchecked as a whole; its extended headers
    (a PAX path) are not made a part of their own."""
    name = "d/" + "n" * 120 + ".bin"  # longer than the 100 bytes of a ustar name: a PAX record
    whole = plain_tar((name, b"a" * 600), fmt=tarfile.PAX_FORMAT)
    cut = whole[: first_data_offset(whole) + 1024]  # the data's two blocks, no end blocks
    assert summary(events_of(cut, "t.tar")) == [
        (f"t.tar!{name}", "file", "read in full", 600, None),
        (
            "t.tar",
            "archive",
            "unchecked",
            1,
            "truncated or damaged: the tar ends without its end-of-archive marker",
        ),
    ]


def test_extended_headers_are_read_window_by_window() -> None:
    comment = "c" * 5000  # a global PAX record of more than four windows
    tar = plain_tar(("a.txt", b"a"), fmt=tarfile.PAX_FORMAT, comment=comment)
    window = 1024
    events = events_of(tar, "t.tar", ArchiveLimits(window_bytes=window, overlap_bytes=0))
    part = Location("t.tar", ("(tar extended headers and padding)",))
    chunks = [e for e in events if isinstance(e, Chunk) and e.location == part]
    # the part: every header block before the member's own header, padding included
    size = first_data_offset(tar) - 512
    assert [len(chunk.data) for chunk in chunks] == [window] * (size // window) + (
        [size % window] if size % window else []
    )
    assert b"".join(chunk.data for chunk in chunks) == tar[:size]
    assert (part, State.READ, size) in [
        (e.location, e.state, e.size) for e in events if isinstance(e, Outcome)
    ]


def test_bytes_after_a_tar_that_are_not_zeros_are_a_part_even_if_they_look_like_padding() -> None:
    tar = plain_tar(("a.txt", b"a"))  # header, one data block, the end-of-archive blocks
    trailing = b"X" * 7
    events = events_of(tar + trailing, "t.tar")
    start = 3 * 512  # offsets count from the end of the first end-of-archive block
    name = f"t.tar!(bytes after the end of the tar, from +0x{len(tar) - start:x})"
    assert summary(events)[1:] == [
        (name, "file", "read in full", len(trailing), None),
        ("t.tar", "archive", "read in full", 1, None),
    ]


def test_an_entry_type_without_data_that_is_no_known_kind_is_stated() -> None:
    """The fallback of `_tar_stated`: a type tarfile supports that is neither a file, a
    directory, a link, a device nor a FIFO (tarfile consumes GNU long-name headers itself, so
    only a direct call reaches it)."""
    info = tarfile.TarInfo("longname")
    info.type = tarfile.GNUTYPE_LONGNAME
    where = Location("t.tar", ("longname",))
    assert _tar_stated(info, where) == Outcome(
        where, "file", "tar", State.STATED, 0, "special entry without data"
    )
