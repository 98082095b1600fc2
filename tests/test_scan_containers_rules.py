"""The rules of scan/archive.py and scan/walk.py at their exact edges: every limit one byte (or
one member, one level) below and above, each reason a user reads written out in full, names
escaped at the edges of every escaped range, and what an --exclude pattern matches.

The archives are built here with zipfile, tarfile, gzip/lzma/bz2 and byte by byte (tests/
containers.py), so the expected sizes, counts and names come from how the test made them.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from provguard.errors import InputError
from provguard.scan.archive import (
    ArchiveLimits,
    Chunk,
    Event,
    Location,
    Outcome,
    State,
    archive_format,
    escape_name,
    file_format,
    read_archive,
    windows,
)
from provguard.scan.walk import (
    EntryState,
    Unreadable,
    WalkOptions,
    classify,
    open_file,
    read_small_file,
    special_kind,
    walk,
)
from tests import containers as c


def events_of(data: bytes, name: str, limits: ArchiveLimits | None = None) -> list[Event]:
    return list(read_archive(io.BytesIO(data), name, limits))


def outcome(events: list[Event], display: str, kind: str = "file") -> Outcome:
    return c.outcomes(events)[(display, kind)]


def summary(events: list[Event]) -> list[tuple[str, str, str, int, str | None]]:
    """Every outcome as (display, kind, state, size, reason), in order."""
    return [
        (e.location.display, e.kind, e.state.value, e.size, e.reason)
        for e in events
        if isinstance(e, Outcome)
    ]


def plain_tar(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def a_zip(*members: tuple[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buffer.getvalue()


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


# --- limits at their edges --------------------------------------------------------------------


def test_a_member_of_exactly_the_member_limit_is_read_and_one_byte_more_is_not() -> None:
    limits = ArchiveLimits(max_member_bytes=5000)
    data = plain_tar(("at.bin", b"a" * 5000), ("over.bin", b"b" * 5001), ("far.bin", b"c" * 9000))
    events = events_of(data, "t.tar", limits)
    assert summary(events) == [
        ("t.tar!at.bin", "file", "read in full", 5000, None),
        ("t.tar!over.bin", "file", "unchecked", 5001, "member larger than the limit of 5000 bytes"),
        # reading stops one byte past the limit: enough to know it is exceeded
        ("t.tar!far.bin", "file", "unchecked", 5001, "member larger than the limit of 5000 bytes"),
        ("t.tar", "archive", "read in full", 3, None),
    ]


def test_the_member_limit_holds_across_windows() -> None:
    limits = ArchiveLimits(max_member_bytes=3000, window_bytes=1000, overlap_bytes=10)
    data = plain_tar(("at.bin", os.urandom(3000)), ("over.bin", os.urandom(3500)))
    events = events_of(data, "t.tar", limits)
    assert outcome(events, "t.tar!at.bin").state is State.READ
    over = outcome(events, "t.tar!over.bin")
    assert (over.state, over.size) == (State.UNCHECKED, 3001)
    fresh = [
        len(e.data) - e.fresh
        for e in events
        if isinstance(e, Chunk) and e.location.members == ("over.bin",)
    ]
    assert fresh == [1000, 1000, 1000, 1]


def test_the_total_limit_reached_exactly_reads_every_member() -> None:
    members = [(f"m{i}.bin", os.urandom(10_000)) for i in range(4)]
    exact = events_of(plain_tar(*members[:3]), "t.tar", ArchiveLimits(max_total_bytes=30_000))
    assert [s[2] for s in summary(exact)] == ["read in full"] * 4
    short = events_of(plain_tar(*members[:3]), "t.tar", ArchiveLimits(max_total_bytes=29_999))
    assert summary(short)[2] == (
        "t.tar!m2.bin",
        "file",
        "unchecked",
        10_000,
        "the input's decompressed total passed the limit of 29999 bytes",
    )
    assert summary(short)[:2] == [
        ("t.tar!m0.bin", "file", "read in full", 10_000, None),
        ("t.tar!m1.bin", "file", "read in full", 10_000, None),
    ]
    rest = events_of(plain_tar(*members), "t.tar", ArchiveLimits(max_total_bytes=30_000))
    assert outcome(rest, "t.tar", "archive").format == "tar"
    assert summary(rest)[3:] == [
        (
            "t.tar",
            "archive",
            "unchecked",
            3,
            "the input's decompressed total reached the limit of 30000 bytes: the remaining"
            " members are not read",
        )
    ]


def test_the_member_count_limit_reached_exactly_reads_every_member() -> None:
    five = plain_tar(*[(f"e{i}", b"x") for i in range(5)])
    six = plain_tar(*[(f"e{i}", b"x") for i in range(6)])
    limits = ArchiveLimits(max_members=5)
    assert summary(events_of(five, "t.tar", limits))[-1] == (
        "t.tar",
        "archive",
        "read in full",
        5,
        None,
    )
    events = events_of(six, "t.tar", limits)
    assert summary(events)[-1] == (
        "t.tar",
        "archive",
        "unchecked",
        5,
        "more than 5 members: the rest are not read",
    )
    assert sum(isinstance(e, Outcome) and e.kind == "file" for e in events) == 5
    zip_five = a_zip(*[(f"e{i}", b"x") for i in range(5)])
    zip_six = a_zip(*[(f"e{i}", b"x") for i in range(6)])
    assert summary(events_of(zip_five, "z.zip", limits))[-1] == (
        "z.zip",
        "archive",
        "read in full",
        5,
        None,
    )
    assert summary(events_of(zip_six, "z.zip", limits)) == [
        (
            "z.zip",
            "archive",
            "unchecked",
            0,
            "the central directory lists 6 members, more than the limit of 5: not read",
        )
    ]


def _padded_deflate_zip(size: int, compressed_size: int) -> bytes:
    """One deflated member of `size` zeros whose compressed data is padded with bytes after the
    end of the deflate stream to exactly `compressed_size` (the central directory says so)."""
    stream = deflated(bytes(size))
    assert len(stream) <= compressed_size
    data = stream + bytes(compressed_size - len(stream))
    entry = c.RawEntry(b"z.bin", data, size, zlib.crc32(bytes(size)), method=8)
    return c.raw_zip([entry])


def test_the_compression_ratio_limit_at_its_edge() -> None:
    limits = ArchiveLimits(max_ratio=100, ratio_grace_bytes=1000)
    at = events_of(_padded_deflate_zip(100_000, 1000), "r.zip", limits)
    assert outcome(at, "r.zip!z.bin").state is State.READ  # 100:1 is not above 100:1
    above = events_of(_padded_deflate_zip(100_000, 999), "r.zip", limits)
    assert summary(above)[0] == (
        "r.zip!z.bin",
        "file",
        "unchecked",
        100_000,
        "compression ratio above 100:1 (100000 bytes from 999): a compression bomb",
    )


def test_the_ratio_grace_at_its_edge() -> None:
    data = _padded_deflate_zip(50_000, 500)  # 100:1
    grace = ArchiveLimits(max_ratio=2, ratio_grace_bytes=50_000)
    assert outcome(events_of(data, "g.zip", grace), "g.zip!z.bin").state is State.READ
    past = ArchiveLimits(max_ratio=2, ratio_grace_bytes=49_999)
    assert outcome(events_of(data, "g.zip", past), "g.zip!z.bin").reason == (
        "compression ratio above 2:1 (50000 bytes from 500): a compression bomb"
    )
    # a stored member is 1:1, which a ratio limit of 1 allows, even with no grace at all
    stored = a_zip(("s.bin", os.urandom(4000)))
    tight = ArchiveLimits(max_ratio=1, ratio_grace_bytes=0)
    assert outcome(events_of(stored, "s.zip", tight), "s.zip!s.bin").state is State.READ


def test_the_ratio_of_a_compressed_tar_stops_what_follows() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        for name, size in (("zeros.bin", 2 * c.MiB), ("after.bin", 10)):
            info = tarfile.TarInfo(name)
            info.size = size
            t.addfile(info, io.BytesIO(bytes(size)))
    limits = ArchiveLimits(ratio_grace_bytes=c.MiB)
    events = events_of(buffer.getvalue(), "b.tgz", limits)
    zeros = outcome(events, "b.tgz!zeros.bin")
    assert zeros.state is State.UNCHECKED
    assert (zeros.reason or "").startswith("compression ratio above 100:1 (")
    assert summary(events)[-1] == (
        "b.tgz",
        "archive",
        "unchecked",
        1,
        "stopped after an unchecked member: the rest is not read",
    )
    # in a plain tar an unchecked member does not stop the rest: nothing after it is compressed
    plain = plain_tar(("big.bin", bytes(3000)), ("after.bin", b"a"))
    events = events_of(plain, "p.tar", ArchiveLimits(max_member_bytes=2000))
    assert [s[2] for s in summary(events)] == ["unchecked", "read in full", "read in full"]


def _nested(levels: int, payload: bytes) -> bytes:
    data, name = payload, "k.bin"
    for level in range(levels):
        data, name = a_zip((name, data)), f"l{level}.zip"
    return data


def test_nesting_exactly_at_the_depth_limit_is_read() -> None:
    data = _nested(3, b"payload")  # top.zip!l1.zip!l0.zip!k.bin: two archives inside the top
    read = events_of(data, "top.zip", ArchiveLimits(max_depth=2))
    assert outcome(read, "top.zip!l1.zip!l0.zip!k.bin").state is State.READ
    cut = events_of(data, "top.zip", ArchiveLimits(max_depth=1))
    assert outcome(cut, "top.zip!l1.zip!l0.zip", "archive").reason == (
        "archive nested deeper than 1 levels: its members are not read, only its raw bytes"
    )
    assert outcome(cut, "top.zip!l1.zip!l0.zip", "archive").format == "nested"
    assert outcome(cut, "top.zip!l1.zip!l0.zip", "archive").size == 0
    assert outcome(cut, "top.zip!l1.zip!l0.zip").state is State.READ  # its raw bytes
    none = events_of(data, "top.zip", ArchiveLimits(max_depth=0))
    assert outcome(none, "top.zip!l1.zip", "archive").reason == (
        "archive nested deeper than 0 levels: its members are not read, only its raw bytes"
    )


def test_limits_are_validated_one_by_one() -> None:
    for name in ("max_total_bytes", "max_member_bytes", "max_members", "max_ratio"):
        with pytest.raises(ValueError, match=f"archive limit {name} must be positive"):
            ArchiveLimits(**{name: 0})  # type: ignore[arg-type]
        ArchiveLimits(**{name: 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window_bytes must be positive"):
        ArchiveLimits(window_bytes=0, overlap_bytes=0)
    ArchiveLimits(window_bytes=1, overlap_bytes=0)
    for name in ("max_depth", "ratio_grace_bytes", "spool_memory_bytes"):
        with pytest.raises(ValueError, match="must not be negative"):
            ArchiveLimits(**{name: -1})  # type: ignore[arg-type]
        ArchiveLimits(**{name: 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlap_bytes must be smaller"):
        ArchiveLimits(overlap_bytes=-1)
    ArchiveLimits(window_bytes=100, overlap_bytes=99)


def test_the_documented_defaults() -> None:
    limits = ArchiveLimits()
    assert (limits.max_total_bytes, limits.max_member_bytes) == (4 * 2**30, 2**30)
    assert (limits.max_members, limits.max_depth, limits.max_ratio) == (10_000, 4, 100)
    assert (limits.ratio_grace_bytes, limits.window_bytes) == (8 * 2**20, 16 * 2**20)
    assert (limits.overlap_bytes, limits.spool_memory_bytes) == (64 * 2**10, 8 * 2**20)


# --- windows at their edges -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "chunks"),
    [(1000, [(0, 0, 1000, True)]), (1001, [(0, 0, 1000, False), (900, 100, 101, False)])],
)
def test_a_member_of_exactly_one_window_is_one_whole_chunk(
    size: int, chunks: list[tuple[int, int, int, bool]]
) -> None:
    data = os.urandom(size)
    limits = ArchiveLimits(window_bytes=1000, overlap_bytes=100)
    events = events_of(plain_tar(("m.bin", data)), "t.tar", limits)
    got = [e for e in events if isinstance(e, Chunk)]
    assert [(e.offset, e.fresh, len(e.data), e.whole) for e in got] == chunks
    assert b"".join(e.data[e.fresh :] for e in got) == data
    assert outcome(events, "t.tar!m.bin").size == size
    plain = list(windows(io.BytesIO(data), Location("f"), limits))
    assert [(e.offset, e.fresh, len(e.data), e.whole) for e in plain] == chunks


def test_windows_without_overlap_and_of_nothing() -> None:
    limits = ArchiveLimits(window_bytes=10, overlap_bytes=0)
    data = bytes(range(25))
    got = list(windows(io.BytesIO(data), Location("f"), limits))
    assert [(e.offset, e.data, e.fresh) for e in got] == [
        (0, data[:10], 0),
        (10, data[10:20], 0),
        (20, data[20:], 0),
    ]
    assert list(windows(io.BytesIO(b""), Location("f"), limits)) == []
    big = os.urandom(3 * c.MiB)  # past the 1 MiB a single read asks for
    (one,) = windows(io.BytesIO(big), Location("f"))
    assert one.whole
    assert one.data == big


# --- zip entries ------------------------------------------------------------------------------


def test_entry_kinds_by_their_mode_and_flags() -> None:
    entries = [
        c.stored(b"dir/", b"", external_attr=0o040755 << 16),
        c.stored(b"link", b"target", external_attr=0o120777 << 16),
        c.stored(b"regular.bin", b"data", external_attr=0o100644 << 16),
        c.stored(b"dos.bin", b"data"),  # made on DOS: no Unix mode at all
        c.stored(b"socketish", b"data", external_attr=0o140755 << 16),  # not a symlink
        c.RawEntry(b"locked.bin", os.urandom(24), 12, 0, flags=0x1),
    ]
    events = events_of(c.raw_zip(entries), "e.zip")
    assert summary(events)[:6] == [
        ("e.zip!dir/", "directory", "stated", 0, "directory entry"),
        ("e.zip!link", "symlink", "stated", 0, "symlink (not followed)"),
        ("e.zip!regular.bin", "file", "read in full", 4, None),
        ("e.zip!dos.bin", "file", "read in full", 4, None),
        ("e.zip!socketish", "file", "read in full", 4, None),
        ("e.zip!locked.bin", "file", "unchecked", 0, "encrypted zip member: not read"),
    ]
    assert summary(events)[-1] == ("e.zip", "archive", "read in full", 6, None)
    assert {e.format for e in events if isinstance(e, Outcome)} == {"zip"}


def test_a_member_that_shares_another_members_data_is_not_read_twice() -> None:
    data = os.urandom(100)
    entry = c.stored(b"a.bin", data)
    events = events_of(c.raw_zip([entry], copies=3), "o.zip")
    members = [s for s in summary(events) if s[0] == "o.zip!a.bin"]
    reason = "its data overlaps another member's (a zip bomb's shape): not read"
    assert members == [
        ("o.zip!a.bin", "file", "read in full", 100, None),
        ("o.zip!a.bin", "file", "unchecked", 0, reason),
        ("o.zip!a.bin", "file", "unchecked", 0, reason),
    ]


def test_members_side_by_side_do_not_overlap() -> None:
    """Each member's data ends where the next local header starts: none overlaps the next."""
    events = events_of(a_zip(("a", b"1" * 50), ("b", b"2" * 50), ("c", b"")), "s.zip")
    assert [s[2] for s in summary(events)] == ["read in full"] * 5  # 3 + headers + archive


def test_an_unreadable_central_directory_is_unchecked() -> None:
    data = bytearray(a_zip(("a", b"1")))
    central = data.index(b"PK\x01\x02")
    data[central : central + 4] = b"XX\x01\x02"
    assert summary(events_of(bytes(data), "d.zip")) == [
        (
            "d.zip",
            "archive",
            "unchecked",
            0,
            "unreadable zip central directory: corrupt (BadZipFile)",
        )
    ]


def test_a_deflated_member_is_read_and_its_crc_checked() -> None:
    data = os.urandom(500) + bytes(3000)
    good = c.RawEntry(b"good.bin", deflated(data), len(data), zlib.crc32(data), method=8)
    bad = c.RawEntry(b"bad.bin", deflated(data), len(data), zlib.crc32(data) ^ 0x80, method=8)
    events = events_of(c.raw_zip([good, bad]), "c.zip")
    assert summary(events)[:2] == [
        ("c.zip!good.bin", "file", "read in full", 3500, None),
        ("c.zip!bad.bin", "file", "unchecked", 3500, "bad CRC-32: the member's data is corrupt"),
    ]


# --- compressed streams -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("app.hex.gz", "app.hex"),
        ("APP.HEX.GZ", "APP.HEX"),
        ("dir/app.hex.gz", "app.hex"),
        (".gz", "(decompressed)"),
        ("app.hex", "(decompressed)"),
        ("image.bin.lzma", "image.bin"),
        ("image.bin.xz", "image.bin"),
        ("image.bin.bz2", "image.bin"),
    ],
)
def test_a_compressed_files_member_is_named_without_its_suffix(name: str, member: str) -> None:
    suffix = name.lower().rsplit(".", 1)[-1]
    compress = {"xz": lzma.compress, "lzma": lzma.compress, "bz2": bz2.compress}.get(
        suffix, gzip.compress
    )
    fmt = {"xz": "xz", "lzma": "xz", "bz2": "bzip2"}.get(suffix, "gzip")
    data = compress(b"firmware " * 100)
    events = list(read_archive(io.BytesIO(data), name))
    assert summary(events) == [
        (f"{name}!{member}", "file", "read in full", 900, None),
        (name, "archive", "read in full", 1, None),
    ]
    assert {e.format for e in events if isinstance(e, Outcome)} == {fmt}


def test_a_compressed_member_of_a_zip_is_named_from_the_member() -> None:
    data = a_zip(("fw/app.hex.gz", gzip.compress(b"x" * 10)))
    events = events_of(data, "r.zip")
    assert outcome(events, "r.zip!fw/app.hex.gz!app.hex").state is State.READ
    assert outcome(events, "r.zip!fw/app.hex.gz", "archive").format == "gzip"


@pytest.mark.parametrize(
    ("compress", "fmt"),
    [
        (gzip.compress, "gzip"),
        (lzma.compress, "xz"),
        (lambda data: bz2.compress(data, 1), "bzip2"),  # 100 kB blocks: the first one is whole
    ],
)
def test_a_truncated_compressed_file_is_unchecked_with_the_reason(
    compress: object, fmt: str
) -> None:
    whole: bytes = compress(os.urandom(300_000))  # type: ignore[operator]
    events = list(read_archive(io.BytesIO(whole[: len(whole) // 2]), "f.bin.x"))
    assert summary(events) == [
        (
            "f.bin.x!(decompressed)",
            "file",
            "unchecked",
            0,
            "truncated: the compressed stream ends early",
        ),
        ("f.bin.x", "archive", "read in full", 1, None),
    ]
    assert {e.format for e in events if isinstance(e, Outcome)} == {fmt}


@pytest.mark.parametrize(
    ("compress", "name", "reason"),
    [
        (lzma.compress, "f.xz", "corrupt LZMA/xz stream"),
        (lambda data: bz2.compress(data, 1), "f.bz2", "corrupt bzip2 stream"),
    ],
)
def test_corrupt_compressed_streams_name_their_damage(
    compress: object, name: str, reason: str
) -> None:
    data = bytearray(compress(os.urandom(300_000)))  # type: ignore[operator]
    data[len(data) // 2] ^= 0xFF
    events = list(read_archive(io.BytesIO(bytes(data)), name))
    assert summary(events) == [
        (f"{name}!f", "file", "unchecked", 0, reason),
        (name, "archive", "read in full", 1, None),
    ]


def test_a_damaged_gzip_header_is_an_unchecked_archive() -> None:
    data = bytearray(gzip.compress(b"x" * 1000))
    data[2] = 99  # compression method: only 8 (deflate) exists
    assert summary(list(read_archive(io.BytesIO(bytes(data)), "f.gz"))) == [
        ("f.gz", "archive", "unchecked", 0, "corrupt (BadGzipFile)")
    ]


# --- tar entries ------------------------------------------------------------------------------


def test_tar_entries_without_data_are_stated_with_their_reason() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, kind, link in (
            ("d", tarfile.DIRTYPE, ""),
            ("s", tarfile.SYMTYPE, "../x\nfake"),
            ("h", tarfile.LNKTYPE, "d/f"),
            ("c", tarfile.CHRTYPE, ""),
            ("b", tarfile.BLKTYPE, ""),
            ("p", tarfile.FIFOTYPE, ""),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            t.addfile(info)
    events = events_of(buffer.getvalue(), "t.tar")
    assert {e.format for e in events if isinstance(e, Outcome)} == {"tar"}
    assert summary(events) == [
        ("t.tar!d", "directory", "stated", 0, "directory entry"),
        ("t.tar!s", "symlink", "stated", 0, "symlink to ../x\\x0afake (not followed)"),
        ("t.tar!h", "hardlink", "stated", 0, "hard link to d/f (its data is that member's)"),
        ("t.tar!c", "device", "stated", 0, "device node entry"),
        ("t.tar!b", "device", "stated", 0, "device node entry"),
        ("t.tar!p", "fifo", "stated", 0, "FIFO entry"),
        ("t.tar", "archive", "read in full", 6, None),
    ]


def test_a_tar_without_its_end_marker_is_unchecked() -> None:
    whole = plain_tar(("a.bin", b"a" * 600))
    cut = whole[: 512 + 1024]  # the header and the data's two blocks: no end-of-archive blocks
    events = events_of(cut, "t.tar")
    assert summary(events) == [
        ("t.tar!a.bin", "file", "read in full", 600, None),
        (
            "t.tar",
            "archive",
            "unchecked",
            1,
            "truncated or damaged: the tar ends without its end-of-archive marker",
        ),
    ]


def test_a_tar_recognised_by_its_name_only() -> None:
    """A v7 tar (no "ustar" magic) is a tar when its name says so and its header is valid."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
    v7 = bytearray(buffer.getvalue())
    v7[257:265] = bytes(8)  # no magic, no version: a pre-POSIX header
    header = bytes(v7[:148]) + b" " * 8 + bytes(v7[156:512])
    v7[148:156] = b"%06o\0 " % sum(header)
    assert archive_format(bytes(v7[:512]), b"", "old.TAR") == "tar"
    assert archive_format(bytes(v7[:512]), b"", "old.bin") is None
    assert archive_format(bytes(512), b"", "zeros.tar") is None
    assert archive_format(bytes(v7[:511]), b"", "short.tar") is None
    stream = io.BytesIO(bytes(v7))
    events = list(read_archive(stream, "old.tar", fmt=file_format(stream, "old.tar")))
    assert outcome(events, "old.tar!a.txt").state is State.READ
    nested = events_of(a_zip(("old.tar", bytes(v7))), "r.zip")  # named by the member
    assert outcome(nested, "r.zip!old.tar!a.txt").state is State.READ
    assert outcome(nested, "r.zip!old.tar", "archive").state is State.READ


# --- formats ----------------------------------------------------------------------------------


def test_formats_by_their_magic() -> None:
    assert archive_format(b"PK\x03\x04" + bytes(100)) == "zip"
    assert archive_format(b"PK\x05\x06" + bytes(18)) == "zip"  # an empty zip
    assert archive_format(b"\x1f\x8b" + bytes(10)) == "gzip"
    assert archive_format(b"\xfd7zXZ\x00" + bytes(10)) == "xz"
    assert archive_format(b"BZh9" + bytes(10)) == "bzip2"
    assert archive_format(b"BZh1" + bytes(10)) == "bzip2"
    assert archive_format(b"BZh0" + bytes(10)) is None  # block size 0 does not exist
    assert archive_format(b"BZhx" + bytes(10)) is None
    assert archive_format(b"\x1f\x9d" + bytes(10)) == "compress (.Z)"
    assert archive_format(b"hsqs" + bytes(10)) == "squashfs"
    assert archive_format(b"MSCF\0\0\0\0" + bytes(10)) == "cab"
    assert archive_format(b"LZIP\x01" + bytes(10)) == "lzip"
    assert archive_format(bytes(257) + b"ustar" + bytes(250)) == "tar"


def test_file_format_keeps_the_position_and_finds_the_end_record() -> None:
    data = os.urandom(100_000) + a_zip(("a", b"b"))
    stream = io.BytesIO(data)
    stream.seek(1234)
    assert file_format(stream) == "zip"
    assert stream.tell() == 1234


def test_unread_formats_and_non_archives_are_unchecked_archives() -> None:
    events = list(read_archive(io.BytesIO(b"\x1f\x9d" + os.urandom(100)), "a.Z"))
    assert summary(events) == [
        (
            "a.Z",
            "archive",
            "unchecked",
            0,
            "compress (.Z) archive: this format is not read, its content is not checked",
        )
    ]
    (only,) = [e for e in events if isinstance(e, Outcome)]
    assert only.format == "compress (.Z)"
    (plain,) = list(read_archive(io.BytesIO(b"just text"), "t.txt"))
    assert isinstance(plain, Outcome)
    assert (plain.kind, plain.format, plain.state, plain.reason) == (
        "archive",
        "unknown",
        State.UNCHECKED,
        "not an archive",
    )


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("\x00", "\\x00"),
        ("\x1f", "\\x1f"),
        (" ~", " ~"),
        ("\x7f", "\\x7f"),
        ("\x80", "\\x80"),
        ("\x9f", "\\x9f"),
        ("\xa0\xff", "\xa0\xff"),
        ("\u2027\u2028\u2029\u202a", "\u2027\\u2028\\u2029\\u202a"),
        ("\u061b\u061c\u061d", "\u061b\\u061c\u061d"),
        ("\u200d\u200e\u200f\u2010", "\u200d\\u200e\\u200f\u2010"),
        ("\u202e\u202f", "\\u202e\u202f"),
        ("\u2065\u2066\u2069\u206a", "\u2065\\u2066\\u2069\u206a"),
        ("\ud800", "\\ud800"),
        ("\udc7f", "\\udc7f"),
        ("\udc80\udcff", "\\x80\\xff"),
        ("\udd00\udfff", "\\udd00\\udfff"),
        ("a\\b", "a\\\\b"),
        ("\u2028\\", "\\u2028\\\\"),
    ],
)
def test_escape_name_at_the_edges_of_each_range(name: str, shown: str) -> None:
    assert escape_name(name) == shown


def test_escape_name_of_bytes_in_an_encoding() -> None:
    assert escape_name(b"caf\xe9") == "caf\\xe9"
    assert escape_name(b"caf\xe9", "latin-1") == "caf\xe9"
    assert escape_name("café".encode()) == "café"


def test_a_zip_name_without_the_utf8_flag_is_cp437() -> None:
    events = events_of(c.raw_zip([c.stored(b"\x81ber.bin", b"x")]), "n.zip")
    assert outcome(events, "n.zip!\u00fcber.bin").state is State.READ
    flagged = events_of(c.raw_zip([c.stored("über.bin".encode(), b"x", flags=0x800)]), "u.zip")
    assert outcome(flagged, "u.zip!über.bin").state is State.READ


# --- walk: --exclude ---------------------------------------------------------------------------


def _tree(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def _excluded(root: Path, *patterns: str) -> dict[str, str | None]:
    return {
        e.path.relative_to(root).as_posix(): e.reason
        for e in walk(root, WalkOptions(exclude=patterns))
        if e.state is EntryState.EXCLUDED
    }


def test_exclude_a_name_at_any_depth_and_a_path_from_the_root(tmp_path: Path) -> None:
    _tree(tmp_path, "build/a.o", "sub/build/b.o", "tmp/x", "sub/tmp/y", "A.O", "k/a.O")
    assert _excluded(tmp_path, "build/") == {
        "build": "excluded by --exclude build/",
        "sub/build": "excluded by --exclude build/",
    }
    assert _excluded(tmp_path, "tmp/*") == {"tmp/x": "excluded by --exclude tmp/*"}
    # case counts: "*.O" is not "*.o"
    assert _excluded(tmp_path, "*.O") == {
        "A.O": "excluded by --exclude *.O",
        "k/a.O": "excluded by --exclude *.O",
    }
    assert _excluded(tmp_path, "sub/*") == {
        "sub/build": "excluded by --exclude sub/*",
        "sub/tmp": "excluded by --exclude sub/*",
    }
    assert _excluded(tmp_path, "*.o", "b*") == {
        "build": "excluded by --exclude b*",
        "sub/build": "excluded by --exclude b*",
    }


def test_the_first_matching_pattern_is_named_and_escaped(tmp_path: Path) -> None:
    _tree(tmp_path, "a.bin")
    assert _excluded(tmp_path, "*.bin", "a*") == {"a.bin": "excluded by --exclude *.bin"}
    assert _excluded(tmp_path, "a*", "*.bin") == {"a.bin": "excluded by --exclude a*"}
    assert _excluded(tmp_path, "a.b\x1bin", "a.bi?") == {"a.bin": "excluded by --exclude a.bi?"}
    assert WalkOptions(exclude=("x\n*",)).excluded_by("x\ny") == "x\n*"
    assert WalkOptions().excluded_by("anything") is None


# --- walk: paths and option files --------------------------------------------------------------


def test_special_kinds_in_words() -> None:
    assert special_kind(stat.S_IFREG | 0o644) is None
    assert special_kind(stat.S_IFDIR | 0o755) is None
    assert special_kind(stat.S_IFIFO) == "a FIFO (named pipe)"
    assert special_kind(stat.S_IFSOCK) == "a socket"
    assert special_kind(stat.S_IFCHR) == "a character device"
    assert special_kind(stat.S_IFBLK) == "a block device"
    assert special_kind(stat.S_IFLNK) == "not a regular file"


def test_a_path_replaced_by_a_directory_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "app.bin"
    path.write_bytes(b"x")
    entry = classify(path)
    path.unlink()
    path.mkdir()
    opened = open_file(entry)
    assert opened == Unreadable("a directory (replaced after the walk): not read")
    path.rmdir()
    assert open_file(entry) == Unreadable("cannot open: No such file or directory")


def test_read_small_file_at_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "k.bin"
    data = os.urandom(1000)
    path.write_bytes(data)
    assert read_small_file(path, 1000) == data
    with pytest.raises(InputError) as caught:
        read_small_file(path, 999, what="--allow file")
    assert str(caught.value) == f"{path}: --allow file too large (1000 bytes, limit 999)"
    default = tmp_path / "mib"
    default.write_bytes(bytes(c.MiB))
    assert len(read_small_file(default)) == c.MiB
    default.write_bytes(bytes(c.MiB + 1))
    with pytest.raises(InputError) as caught:
        read_small_file(default)
    assert str(caught.value) == f"{default}: file too large ({c.MiB + 1} bytes, limit {c.MiB})"


def test_read_small_file_names_what_it_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_small_file(tmp_path, what="--key file")
    assert str(caught.value) == f"{tmp_path}: --key file not read: is a directory"
    with pytest.raises(InputError) as caught:
        read_small_file(tmp_path / "none")
    assert str(caught.value) == f"{tmp_path / 'none'}: file not read: no such file or directory"


def test_read_small_file_stops_at_the_limit_when_the_size_lies() -> None:
    """A /proc file states size 0 and holds more: the read itself is bounded."""
    path = Path("/proc/self/status")
    assert classify(path).size == 0
    with pytest.raises(InputError) as caught:
        read_small_file(path, 10, what="--key file")
    assert str(caught.value) == f"{path}: --key file too large (limit 10 bytes)"


def test_read_small_file_names_a_read_error() -> None:
    """/proc/self/mem is a regular file that opens and then fails to read at offset 0."""
    path = Path("/proc/self/mem")
    with pytest.raises(InputError) as caught:
        read_small_file(path, what="--key file")
    assert str(caught.value) == f"{path}: cannot read: Input/output error"
    assert caught.value.path == str(path)


def test_read_small_file_names_a_file_that_cannot_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"x")

    def vanished(target: object, flags: int, *args: object) -> int:
        raise FileNotFoundError(2, "No such file or directory")  # removed after it was seen

    monkeypatch.setattr(os, "open", vanished)
    with pytest.raises(InputError) as caught:
        read_small_file(path, what="--allow file")
    assert str(caught.value) == (
        f"{path}: --allow file not read: cannot open: No such file or directory"
    )
    assert caught.value.path == str(path)


def test_an_os_error_without_a_message_is_named_by_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    real = os.scandir

    def scandir(path: os.PathLike[str] | str) -> object:
        if Path(path).name == "d":
            raise OSError  # no errno, no strerror
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    (entry,) = walk(tmp_path)
    assert (entry.state, entry.reason) == (EntryState.UNCHECKED, "cannot list: OSError")


# --- parts that are no member: their format, their ratio, their names -------------------------

#: A part's bytes are searched as they are (1:1): no ratio limit can call them a bomb, even one
#: that allows no grace and no compression at all.
NO_GRACE = ArchiveLimits(max_ratio=1, ratio_grace_bytes=0)


def test_bytes_after_a_tar_are_a_tar_part_named_by_their_offset() -> None:
    tar = plain_tar(("a.txt", b"a"))  # header, one data block, end-of-archive: 10240 bytes
    assert len(tar) == 10240
    # counted from the end of the first end-of-archive block (header + data + that block)
    start = 3 * 512
    for zeros in (0, 100, 3 * c.MiB + 5):  # more zeros than one 1 MiB read
        data = tar + bytes(zeros) + b"K" * 7
        events = events_of(data, "t.tar", NO_GRACE)
        name = f"t.tar!(bytes after the end of the tar, from +0x{len(tar) - start + zeros:x})"
        assert summary(events)[1:] == [
            (name, "file", "read in full", 7, None),
            ("t.tar", "archive", "read in full", 1, None),
        ]
        assert {e.format for e in events if isinstance(e, Outcome)} == {"tar"}


def test_tar_extended_headers_are_a_tar_part() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        info.pax_headers = {"comment": "x" * 3000}
        t.addfile(info, io.BytesIO(b"a"))
    events = events_of(buffer.getvalue(), "p.tar", NO_GRACE)
    part = outcome(events, "p.tar!(tar extended headers and padding)")
    assert (part.format, part.state, part.reason) == ("tar", State.READ, None)
    assert part.size >= 3000


def test_a_zip_gap_is_a_zip_part_and_a_hidden_member_is_named() -> None:
    gap = os.urandom(3000)  # bytes no entry covers, put between the two members
    fixed = c.raw_zip([c.stored(b"a", b"1"), c.stored(b"b", b"2")])
    second = fixed.index(b"PK\x03\x04", 4)
    # the second entry and the central directory move 3000 bytes on: their offsets follow
    body = fixed[: fixed.index(b"PK\x01\x02")]
    body = body[:second] + gap + body[second:]
    central = bytearray(fixed[fixed.index(b"PK\x01\x02") : fixed.index(b"PK\x05\x06")])
    second_record = central.index(b"PK\x01\x02", 4)
    struct.pack_into("<I", central, second_record + 42, second + len(gap))
    end = bytearray(fixed[fixed.index(b"PK\x05\x06") :])
    struct.pack_into("<I", end, 16, len(body))
    whole = bytes(body + central + end)
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        assert z.read("b") == b"2"  # zipfile agrees the zip is sound
    name = f"g.zip!(bytes 0x{second:x}-0x{second + len(gap):x} between zip members)"
    events = events_of(whole, "g.zip", NO_GRACE)
    assert c.outcomes(events)[(name, "file")] == Outcome(
        Location("g.zip", (name.split("!", 1)[1],)), "file", "zip", State.READ, 3000
    )
    # a local header in the gap, across the first 1 MiB read of it: a hidden member
    hidden = bytearray(os.urandom(c.MiB + 100))
    hidden[c.MiB - 2 : c.MiB + 2] = b"PK\x03\x04"
    for at in range(len(hidden) - 3):  # no other signature by chance
        if hidden[at : at + 4] == b"PK\x03\x04" and at != c.MiB - 2:
            hidden[at] = 0
    body = fixed[: fixed.index(b"PK\x01\x02")]
    body = body[:second] + bytes(hidden) + body[second:]
    struct.pack_into("<I", central, second_record + 42, second + len(hidden))
    struct.pack_into("<I", end, 16, len(body))
    events = events_of(bytes(body + central + end), "h.zip", NO_GRACE)
    name = f"h.zip!(bytes 0x{second:x}-0x{second + len(hidden):x} between zip members)"
    part = c.outcomes(events)[(name, "file")]
    assert (part.format, part.state, part.size) == ("zip", State.UNCHECKED, len(hidden))
    assert part.reason == (
        "holds a zip local header that the central directory does not list"
        " (a hidden member, not read)"
    )


def test_extended_headers_beyond_what_is_kept_leave_the_part_unchecked() -> None:
    """GNU long-name headers may follow each other (tarfile keeps the last): five of 1 MB each,
    under the 1 MiB limit one by one, are more than the 2 MiB of header bytes kept."""
    blocks = bytearray()
    for _ in range(5):
        name = b"n" * 1_000_000 + b"\0"
        info = tarfile.TarInfo("././@LongLink")
        info.type = tarfile.GNUTYPE_LONGNAME
        info.size = len(name)
        blocks += info.tobuf(tarfile.GNU_FORMAT)
        blocks += name + bytes(-len(name) % 512)
    member = tarfile.TarInfo("short")
    member.size = 1
    blocks += member.tobuf(tarfile.GNU_FORMAT) + b"a" + bytes(511) + bytes(1024)
    events = events_of(bytes(blocks), "l.tar", NO_GRACE)
    part = outcome(events, "l.tar!(tar extended headers and padding)")
    assert (part.state, part.reason) == (State.UNCHECKED, "some header bytes were not kept")
    assert outcome(events, f"l.tar!{'n' * 1_000_000}").state is State.READ
    assert outcome(events, "l.tar", "archive").state is State.READ


def test_windows_are_not_bounded_by_the_member_or_total_limits() -> None:
    """`windows` reads a plain file the caller already bounded: only the window sizes apply."""
    limits = ArchiveLimits(
        max_member_bytes=10, max_total_bytes=10, max_ratio=1, window_bytes=100, overlap_bytes=0
    )
    data = os.urandom(1000)
    got = list(windows(io.BytesIO(data), Location("f"), limits))
    assert b"".join(e.data for e in got) == data
    assert len(got) == 10


def test_a_v7_tar_name_that_is_not_utf8_is_still_a_tar() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo(b"k\xff.bin".decode("utf-8", "surrogateescape"))
        info.size = 1
        t.addfile(info, io.BytesIO(b"k"))
    v7 = bytearray(buffer.getvalue())
    v7[257:265] = bytes(8)  # no magic: found by the name ".tar" and a valid header only
    header = bytes(v7[:148]) + b" " * 8 + bytes(v7[156:512])
    v7[148:156] = b"%06o\0 " % sum(header)
    assert archive_format(bytes(v7[:512]), b"", "x.tar") == "tar"
    events = events_of(gzip.compress(bytes(v7)), "x.tgz")
    assert outcome(events, "x.tgz!k\\xff.bin").state is State.READ
    assert outcome(events, "x.tgz", "archive").format == "tar.gz"


# --- tar streams that end badly, and what follows a tar -----------------------------------------


def test_a_compressed_tar_cut_inside_a_header_names_the_members_read() -> None:
    tar = plain_tar(("m0", os.urandom(30_000)), ("m1", os.urandom(1000)))
    second_header = 512 + 30_208  # m0's header, then its data padded to 512-byte blocks
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip, never finished: no end marker
    data = compressor.compress(tar[: second_header + 100]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    events = events_of(data, "c.tgz")
    assert [e.format for e in events if isinstance(e, Outcome)] == ["tar", "tar.gz"]
    assert summary(events) == [
        ("c.tgz!m0", "file", "read in full", 30_000, None),
        (
            "c.tgz",
            "archive",
            "unchecked",
            1,
            "truncated: the compressed stream ends early after 1 members: the rest is not read",
        ),
    ]


def test_damage_after_the_last_member_of_a_compressed_tar_is_named() -> None:
    data = bytearray(gzip.compress(plain_tar(("m0", b"a" * 100), ("m1", b"b" * 100))))
    data[-8] ^= 1  # the gzip trailer's CRC-32: known only once the stream is read to its end
    assert summary(events_of(bytes(data), "c.tgz"))[-1] == (
        "c.tgz",
        "archive",
        "unchecked",
        2,
        "bad CRC-32: the member's data is corrupt after the last member",
    )


def test_an_archive_appended_to_a_tar_is_read_too() -> None:
    tar = plain_tar(("a.txt", b"a"))
    events = events_of(tar + gzip.compress(b"appended"), "t.tar")
    part = f"t.tar!(bytes after the end of the tar, from +0x{len(tar) - 3 * 512:x})"
    assert outcome(events, f"{part}!(decompressed)").size == len(b"appended")
    assert outcome(events, part, "archive").state is State.READ
    # a zip's end record at the end of the file makes it a zip, as unzip reads it; the tar
    # before it is read as the bytes before the zip
    events = events_of(tar + a_zip(("inner.bin", b"inner data")), "t.tar")
    assert outcome(events, "t.tar!inner.bin").state is State.READ
    before = f"t.tar!(bytes 0x0-0x{len(tar):x} before the zip)"
    assert outcome(events, f"{before}!a.txt").state is State.READ


def test_the_member_count_limit_of_a_tar_names_its_format() -> None:
    data = gzip.compress(plain_tar(*[(f"e{i}", b"x") for i in range(3)]))
    (last,) = [e for e in events_of(data, "c.tgz", ArchiveLimits(max_members=2)) if
               isinstance(e, Outcome) and e.kind == "archive"]  # fmt: skip
    assert (last.format, last.size, last.reason) == (
        "tar.gz",
        2,
        "more than 2 members: the rest are not read",
    )


def test_an_ordinary_compressed_tar_is_no_bomb_however_little_grace() -> None:
    """Hex text compresses about 2:1: far from 100:1, whatever the bytes read so far."""
    text = os.urandom(400_000).hex().encode()
    limits = ArchiveLimits(ratio_grace_bytes=0)
    for name, mode in (("t.tgz", "w:gz"), ("t.txz", "w:xz"), ("t.tbz", "w:bz2")):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as t:  # type: ignore[call-overload]
            info = tarfile.TarInfo("hex.txt")
            info.size = len(text)
            t.addfile(info, io.BytesIO(text))
        events = events_of(buffer.getvalue(), name, limits)
        assert outcome(events, f"{name}!hex.txt").state is State.READ, name
        compressed = {"t.tgz": gzip.compress, "t.txz": lzma.compress, "t.tbz": bz2.compress}
        single = compressed[name](text)
        one = events_of(single, "hex.txt.x", limits)
        assert outcome(one, "hex.txt.x!(decompressed)").state is State.READ, name


# --- where a zip entry ends: data descriptors -------------------------------------------------


def _descriptor_zip(
    entries: list[tuple[bytes, bytes, bool, bytes]], gap: bytes, flags: int = 0x08
) -> tuple[bytes, list[tuple[int, int]]]:
    """A zip of stored entries, each followed by a data descriptor (flag 0x08) and then `gap`
    (bytes no entry covers). An entry is (name, data, signed, local extra): a descriptor with
    its optional PK\\x07\\x08 signature when `signed`, with 8-byte sizes when the local extra
    holds a zip64 field (tag 1). Returns the zip and where each gap is."""
    body = bytearray()
    central = bytearray()
    gaps = []
    for name, data, signed, extra in entries:
        offset = len(body)
        crc = zlib.crc32(data)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, flags, 0, 0, 0x21, 0, 0, 0, len(name),
                            len(extra))  # fmt: skip
        body += name + extra + data
        sizes = "QQ" if _zip64_field(extra) else "II"
        body += (b"PK\x07\x08" if signed else b"") + struct.pack(
            f"<I{sizes}", crc, len(data), len(data)
        )
        gaps.append((len(body), len(body) + len(gap)))
        body += gap
        record = (0x02014B50, 0x031E, 45, flags, 0, 0, 0x21, crc, len(data), len(data))
        central += struct.pack("<IHHHHHHIIIHHHHHII", *record, len(name), 0, 0, 0, 0, 0, offset)
        central += name
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(body), 0
    )
    return bytes(body + central + end), gaps


def _zip64_field(extra: bytes) -> bool:
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == 1:
            return True
        at += 4 + length
    return False


VENDOR = struct.pack("<HH", 0xCAFE, 5) + b"vend!"
ZIP64 = struct.pack("<HHQQ", 1, 16, 0, 0)


@pytest.mark.parametrize(
    "extra",
    [b"", VENDOR, ZIP64, VENDOR + ZIP64, VENDOR + VENDOR + ZIP64, struct.pack("<HH", 1, 0)],
    ids=["none", "vendor", "zip64", "vendor-zip64", "two-vendors-zip64", "empty-zip64"],
)
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_data_descriptor_ends_its_entry_exactly(extra: bytes, signed: bool) -> None:
    """The bytes after each descriptor are a gap of their own, starting where it ends."""
    entries = [(b"a.bin", b"A" * 40, signed, extra), (b"b.bin", b"B" * 40, signed, extra)]
    data, gaps = _descriptor_zip(entries, b"GAP")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("b.bin") == b"B" * 40  # zipfile reads the entries
    events = events_of(data, "d.zip")
    parts = [
        (e.location.members[-1], e.state, e.size)
        for e in events
        if isinstance(e, Outcome) and e.location.members and "between" in e.location.members[-1]
    ]
    assert parts == [
        (f"(bytes 0x{start:x}-0x{stop:x} between zip members)", State.READ, 3)
        for start, stop in gaps
    ]
    assert outcome(events, "d.zip!b.bin").state is State.READ


# --- zip names, entry formats, the headers part -------------------------------------------------


def _zip_with(entries: list[c.RawEntry], comments: dict[int, bytes]) -> bytes:
    """`c.raw_zip`, with an entry comment added to the central records named in `comments`."""
    data = bytearray(c.raw_zip(entries))
    start = data.index(b"PK\x01\x02")
    body, central, end = data[:start], bytearray(), bytearray(data[data.index(b"PK\x05\x06") :])
    at = start
    for index, entry in enumerate(entries):
        record = bytearray(data[at : at + 46 + len(entry.name)])
        comment = comments.get(index, b"")
        struct.pack_into("<H", record, 32, len(comment))
        central += record + comment
        at += 46 + len(entry.name)
    struct.pack_into("<I", end, 12, len(central))
    return bytes(body + central + end)


def test_each_zip_name_is_decoded_by_its_own_flag() -> None:
    entries = [
        c.stored(b"\x81ber-cp437.bin", b"1"),
        c.stored("€-utf8.bin".encode(), b"2", flags=0x800),
        c.stored(b"fw\xff.bin", b"3", flags=0x800),  # flagged UTF-8, and it is not
        c.RawEntry(b"\x81-locked.bin", os.urandom(24), 12, 0, flags=0x1),  # encrypted, cp437
    ]
    for data in (c.raw_zip(entries), _zip_with(entries, {0: b"c" * 40_000})):
        names = [
            (e.location.members[-1], e.state.value)
            for e in events_of(data, "n.zip")
            if isinstance(e, Outcome) and e.kind == "file" and e.location.members[-1][0] != "("
        ]
        assert names == [
            ("\u00fcber-cp437.bin", "read in full"),
            ("€-utf8.bin", "read in full"),
            ("fw\ufffd.bin", "read in full"),
            ("\u00fc-locked.bin", "unchecked"),
        ]


def test_zip_member_outcomes_name_the_zip_format() -> None:
    entries = [
        c.stored(b"ok.bin", b"data"),
        c.RawEntry(b"method.bin", os.urandom(20), 40, 0, method=93),  # Zstandard: not read
        c.RawEntry(b"crc.bin", b"data", 4, zlib.crc32(b"data") ^ 1),
    ]
    events = events_of(c.raw_zip(entries), "f.zip")
    assert [(s[0], s[2], s[3], s[4]) for s in summary(events)[:3]] == [
        ("f.zip!ok.bin", "read in full", 4, None),
        ("f.zip!method.bin", "unchecked", 0, "compression method not supported"),
        ("f.zip!crc.bin", "unchecked", 4, "bad CRC-32: the member's data is corrupt"),
    ]
    assert {e.format for e in events if isinstance(e, Outcome) and e.kind == "file"} == {"zip"}


def test_the_headers_part_is_every_header_byte_once() -> None:
    names = [b"a.bin", b"bb.bin", b"ccc.bin"]
    data = c.raw_zip([c.stored(n, b"x" * 10) for n in names])
    expected = sum(30 + len(n) for n in names) + sum(46 + len(n) for n in names) + 22
    events = events_of(data, "h.zip", NO_GRACE)
    part = outcome(events, "h.zip!(zip headers and central directory)")
    assert (part.format, part.state, part.size) == ("zip", State.READ, expected)
    (chunk,) = [e for e in events if isinstance(e, Chunk) and e.location == part.location]
    assert chunk.data.startswith(b"PK\x03\x04")  # the first local header, from its first byte
    assert chunk.data.endswith(data[-22:])  # the end record


def test_entries_listed_twice_are_read_once_and_directories_share_nothing() -> None:
    entries = [
        c.stored(b"d/", b"", external_attr=0o040755 << 16),
        c.stored(b"e", b""),
        c.stored(b"a", b"data"),
    ]
    events = events_of(c.raw_zip(entries, copies=2), "t.zip")
    assert {e.format for e in events if isinstance(e, Outcome)} == {"zip"}
    reason = "its data overlaps another member's (a zip bomb's shape): not read"
    assert [(s[0], s[1], s[2], s[4]) for s in summary(events)[:6]] == [
        ("t.zip!d/", "directory", "stated", "directory entry"),
        ("t.zip!d/", "directory", "stated", "directory entry"),
        ("t.zip!e", "file", "read in full", None),
        ("t.zip!e", "file", "unchecked", reason),
        ("t.zip!a", "file", "read in full", None),
        ("t.zip!a", "file", "unchecked", reason),
    ]


def test_an_entry_whose_header_is_inside_another_entrys_data_overlaps_it() -> None:
    """A's data holds B's local header: B's bytes are A's, however long A's name is."""
    b_local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, 0, 0, 0, 1, 0) + b"b"
    a_name = b"a" * 40
    a_data = b"x" * 5 + b_local
    a = c.stored(a_name, a_data)
    data = bytearray(c.raw_zip([a]))
    start = data.index(b"PK\x01\x02")
    b_offset = 30 + len(a_name) + 5
    b_record = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, 0, 0, 0x21, 0, 0, 0, 1,
                           0, 0, 0, 0, 0, b_offset) + b"b"  # fmt: skip
    central = bytes(data[start : data.index(b"PK\x05\x06")]) + b_record
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(central), start, 0)
    whole = bytes(data[:start]) + central + end
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        assert z.read("b") == b""  # zipfile reads B from inside A
    events = events_of(whole, "o.zip")
    assert outcome(events, "o.zip!b").reason == (
        "its data overlaps another member's (a zip bomb's shape): not read"
    )
    assert outcome(events, f"o.zip!{a_name.decode()}").state is State.READ


# --- tar headers and padding kept for the search ------------------------------------------------


def _long_name_tar(length: int) -> bytes:
    """A GNU tar whose one member's name takes a long-name header of `length` bytes (the name
    and its NUL)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("n" * (length - 1))
        info.size = 1
        t.addfile(info, io.BytesIO(b"a"))
    return buffer.getvalue()


def test_an_extended_header_of_exactly_the_limit_is_read() -> None:
    events = events_of(_long_name_tar(c.MiB), "t.tar")
    assert outcome(events, f"t.tar!{'n' * (c.MiB - 1)}").state is State.READ
    assert outcome(events, "t.tar", "archive").state is State.READ
    assert summary(events_of(_long_name_tar(c.MiB + 1), "t.tar")) == [
        (
            "t.tar",
            "archive",
            "unchecked",
            0,
            f"an extended tar header of {c.MiB + 1} bytes, above the limit of {c.MiB}",
        )
    ]


def test_padding_that_is_not_zeros_is_searched_whatever_it_holds() -> None:
    data = bytearray(plain_tar(("a.txt", b"a")))
    data[513:1024] = b"X" * 511  # the rest of the data block after the member's one byte
    events = events_of(bytes(data), "p.tar")
    part = outcome(events, "p.tar!(tar extended headers and padding)")
    assert (part.state, part.size) == (State.READ, 511)


def test_headers_after_a_large_member_are_still_kept() -> None:
    """Bytes read are kept in a ring of a few MiB: after 12 MiB of member data the next
    member's PAX header is still searched, and no header byte is lost."""
    marker = b"PAX-MARKER-" + os.urandom(8).hex().encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
        big = tarfile.TarInfo("big.bin")
        big.size = 12 * c.MiB
        t.addfile(big, io.BytesIO(bytes(big.size)))
        small = tarfile.TarInfo("small.txt")
        small.size = 1
        small.pax_headers = {"comment": marker.decode()}
        t.addfile(small, io.BytesIO(b"s"))
    events = events_of(buffer.getvalue(), "r.tar")
    part = outcome(events, "r.tar!(tar extended headers and padding)")
    assert (part.state, part.reason) == (State.READ, None)
    assert c.found(events, marker) == ["r.tar!(tar extended headers and padding)"]


def test_the_ratio_grace_of_a_compressed_tar_at_its_edge() -> None:
    size = 2 * c.MiB
    data = gzip.compress(plain_tar(("zeros.bin", bytes(size))))
    at = events_of(data, "z.tgz", ArchiveLimits(ratio_grace_bytes=size))
    assert outcome(at, "z.tgz!zeros.bin").state is State.READ
    past = events_of(data, "z.tgz", ArchiveLimits(ratio_grace_bytes=size - 1))
    assert outcome(past, "z.tgz!zeros.bin").state is State.UNCHECKED


# --- single compressed streams: windows, ratio, nesting -----------------------------------------


def test_a_compressed_file_comes_in_windows() -> None:
    data = os.urandom(2500)
    limits = ArchiveLimits(window_bytes=1000, overlap_bytes=10)
    events = events_of(gzip.compress(data), "f.bin.gz", limits)
    chunks = [e for e in events if isinstance(e, Chunk)]
    assert [(e.offset, e.fresh, len(e.data)) for e in chunks] == [
        (0, 0, 1000),
        (990, 10, 1010),
        (1990, 10, 510),
    ]
    assert b"".join(e.data[e.fresh :] for e in chunks) == data


def test_the_ratio_of_a_compressed_file_at_its_grace_and_far_past_it() -> None:
    size = 2 * c.MiB
    data = gzip.compress(bytes(size))
    at = events_of(data, "z.gz", ArchiveLimits(ratio_grace_bytes=size))
    assert outcome(at, "z.gz!z").state is State.READ
    past = events_of(data, "z.gz", ArchiveLimits(ratio_grace_bytes=size - 1))
    assert outcome(past, "z.gz!z").state is State.UNCHECKED
    big = events_of(gzip.compress(bytes(6 * c.MiB)), "b.gz", ArchiveLimits(ratio_grace_bytes=c.MiB))
    reason = outcome(big, "b.gz!b").reason or ""
    assert reason.startswith("compression ratio above 100:1 (")
    assert reason.endswith("): a compression bomb")


def test_an_archive_inside_a_compressed_file_is_read() -> None:
    data = gzip.compress(a_zip(("k.bin", b"key")))
    events = events_of(data, "bundle.zip.gz")
    assert outcome(events, "bundle.zip.gz!bundle.zip!k.bin").state is State.READ
    assert outcome(events, "bundle.zip.gz!bundle.zip", "archive").format == "zip"


def test_a_compressed_tar_with_a_damaged_first_header_is_unchecked() -> None:
    """A "ustar" header whose checksum is wrong: a damaged tar, not a plain compressed file."""
    tar = bytearray(plain_tar(("a.txt", b"a")))
    tar[148:156] = b"000000\0 "  # the header checksum
    events = events_of(gzip.compress(bytes(tar)), "d.tgz")
    assert summary(events) == [
        ("d.tgz", "archive", "unchecked", 0, "corrupt or truncated tar stream")
    ]
    assert [e.format for e in events if isinstance(e, Outcome)] == ["tar.gz"]
    damaged = bytearray(gzip.compress(b"x" * 1000))
    damaged[2] = 99
    (only,) = events_of(bytes(damaged), "f.gz")
    assert isinstance(only, Outcome)
    assert only.format == "gzip"


def test_a_utf8_name_with_a_data_descriptor_is_read() -> None:
    """Flags 0x0808: the UTF-8 name flag is cleared for zipfile, the descriptor flag kept."""
    entries = [("é.bin".encode(), b"E" * 20, True, b""), (b"z.bin", b"Z" * 20, True, b"")]
    data, gaps = _descriptor_zip(entries, b"", flags=0x0808)
    assert gaps[0][0] == gaps[0][1]
    events = events_of(data, "u.zip")
    assert outcome(events, "u.zip!é.bin").size == 20
    assert outcome(events, "u.zip!z.bin").state is State.READ


def test_an_empty_member_is_read_with_size_zero() -> None:
    events = events_of(a_zip(("empty", b""), ("one", b"1")), "e.zip")
    assert summary(events)[:2] == [
        ("e.zip!empty", "file", "read in full", 0, None),
        ("e.zip!one", "file", "read in full", 1, None),
    ]
    assert next(e.location.members for e in events if isinstance(e, Chunk)) == ("one",)


def test_a_member_named_like_an_archive_is_opened_even_without_its_magic_at_byte_0() -> None:
    """A self-extracting zip (a stub, then the zip) inside a zip: found by its name."""
    inner = os.urandom(600) + a_zip(("k.bin", b"key"))
    events = events_of(a_zip(("tools/SFX.ZIP", inner)), "r.zip")
    assert outcome(events, "r.zip!tools/SFX.ZIP!k.bin").state is State.READ
    plain = events_of(a_zip(("tools/sfx.bin", inner)), "r.zip")
    assert ("r.zip!tools/sfx.bin", "archive") not in c.outcomes(plain)


# --- walk: the root, entries that vanish, order, display ----------------------------------------


def test_a_root_that_cannot_be_stated_is_one_unchecked_entry(tmp_path: Path) -> None:
    root = tmp_path / "missing\x1b"
    (entry,) = walk(root)
    assert (entry.path, entry.display, entry.state, entry.reason) == (
        root,
        f"{tmp_path}/missing\\x1b",
        EntryState.UNCHECKED,
        "cannot stat: No such file or directory",
    )


def test_an_entry_gone_before_it_is_stated_is_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gone\n.bin").write_bytes(b"x")
    (tmp_path / "kept.bin").write_bytes(b"x")
    real = os.lstat

    def lstat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        if os.path.basename(path).startswith("gone"):
            raise FileNotFoundError(2, "No such file or directory")  # removed since the listing
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", lstat)
    entries = list(walk(tmp_path))
    assert [(e.path, e.display, e.state, e.reason) for e in entries] == [
        (
            tmp_path / "gone\n.bin",
            f"{tmp_path}/gone\\x0a.bin",
            EntryState.UNCHECKED,
            "cannot stat: No such file or directory",
        ),
        (tmp_path / "kept.bin", f"{tmp_path}/kept.bin", EntryState.FILE, None),
    ]


def test_names_are_walked_in_the_order_of_their_bytes(tmp_path: Path) -> None:
    """U+E000 is EE 80 80 in UTF-8; the undecodable byte F0 sorts after it as bytes, although
    its surrogate escape (U+DCF0) sorts before it as a string."""
    for raw in (b"\xf0", "\ue000".encode(), b"a"):
        with open(os.fsencode(tmp_path) + b"/" + raw, "wb") as out:
            out.write(b"x")
    names = [os.fsencode(e.path.name) for e in walk(tmp_path)]
    assert names == [b"a", "\ue000".encode(), b"\xf0"]


def test_excluded_and_unlistable_entries_are_displayed_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path, "skip\x1b.o", "locked\x1b/f")
    real = os.scandir

    def scandir(path: os.PathLike[str] | str) -> object:
        if Path(path).name.startswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    shown = {e.display: (e.state, e.reason) for e in walk(tmp_path, WalkOptions(("*.o",)))}
    assert shown == {
        f"{tmp_path}/locked\\x1b": (EntryState.UNCHECKED, "cannot list: Permission denied"),
        f"{tmp_path}/skip\\x1b.o": (EntryState.EXCLUDED, "excluded by --exclude *.o"),
    }


def test_exclude_patterns_ending_in_x_and_slash(tmp_path: Path) -> None:
    _tree(tmp_path, "sub/X", "X", "a.X")
    assert _excluded(tmp_path, "sub/X") == {"sub/X": "excluded by --exclude sub/X"}
    assert _excluded(tmp_path, "*.X") == {"a.X": "excluded by --exclude *.X"}


def test_data_that_looks_like_a_zip64_field_is_not_the_local_extra() -> None:
    """Only the local header's own extra field says whether a descriptor has 8-byte sizes."""
    looks = struct.pack("<HH", 1, 0) + b"A" * 36  # a zip64 tag at the start of the data
    for signed in (True, False):
        data, gaps = _descriptor_zip(
            [(b"a.bin", looks, signed, b""), (b"b", b"B", signed, b"")], b"GAP"
        )
        parts = [
            e.location.members[-1]
            for e in events_of(data, "d.zip")
            if isinstance(e, Outcome) and e.location.members and "between" in e.location.members[-1]
        ]
        assert parts == [f"(bytes 0x{a:x}-0x{b:x} between zip members)" for a, b in gaps]


def test_a_local_extra_field_over_32_kib_is_part_of_its_header() -> None:
    info = zipfile.ZipInfo("x.bin")
    info.extra = struct.pack("<HH", 0xCAFE, 39_996) + os.urandom(39_996)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(info, b"data")
    events = events_of(buffer.getvalue(), "x.zip")
    parts = [e.location.members[-1] for e in events if isinstance(e, Outcome)
             and e.location.members and e.location.members[-1].startswith("(")]  # fmt: skip
    assert parts == ["(zip headers and central directory)"]
    headers = outcome(events, "x.zip!(zip headers and central directory)")
    assert headers.size == (30 + 5 + 40_000) + (46 + 5 + 40_000) + 22


def test_an_entry_that_points_at_no_local_header() -> None:
    """The central directory names an entry where there is no local header: unchecked, and the
    bytes there are searched as a gap past the 30 bytes a header would take."""
    a = c.raw_zip([c.stored(b"a", b"1")])
    start = a.index(b"PK\x01\x02")
    garbage = b"X" * 100
    body = a[:start] + garbage
    b_record = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, 0, 0, 0x21, 0, 0, 0, 1,
                           0, 0, 0, 0, 0, start) + b"b"  # fmt: skip
    central = a[start : a.index(b"PK\x05\x06")] + b_record
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(central), len(body), 0)
    events = events_of(body + central + end, "p.zip")
    assert outcome(events, "p.zip!b").state is State.UNCHECKED
    gap = f"p.zip!(bytes 0x{start + 30:x}-0x{start + 100:x} between zip members)"
    assert outcome(events, gap).size == 70
    headers = outcome(events, "p.zip!(zip headers and central directory)")
    assert headers.size == (30 + 1) + 30 + len(central) + 22


def test_every_kind_of_entry_is_displayed_escaped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe\x1b")
    (tmp_path / "broken\x1b").symlink_to("missing")
    (tmp_path / "loop-a\x1b").symlink_to("loop-b\x1b")
    (tmp_path / "loop-b\x1b").symlink_to("loop-a\x1b")
    (tmp_path / "file\x1b").write_bytes(b"12345")
    os.link(tmp_path / "file\x1b", tmp_path / "hard\x1b")
    entries = {e.display: e for e in walk(tmp_path)}
    shown = {d.removeprefix(f"{tmp_path}/"): (e.state, e.reason) for d, e in entries.items()}
    assert shown == {
        "broken\\x1b": (EntryState.UNCHECKED, "broken symlink"),
        "file\\x1b": (EntryState.FILE, None),
        "hard\\x1b": (EntryState.SAME, None),
        "loop-a\\x1b": (EntryState.UNCHECKED, "symlink loop"),
        "loop-b\\x1b": (EntryState.UNCHECKED, "symlink loop"),
        "pipe\\x1b": (EntryState.UNCHECKED, "a FIFO (named pipe): not read"),
    }
    info = os.stat(tmp_path / "file\x1b")
    read = entries[f"{tmp_path}/file\\x1b"]
    assert (read.size, read.id) == (5, (info.st_dev, info.st_ino))
    assert entries[f"{tmp_path}/hard\\x1b"].same_as == f"{tmp_path}/file\\x1b"


def test_a_file_the_os_will_not_let_us_read_is_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads every file: the OS's answer for an unreadable one is given here by os.access,
    which the walk asks with the effective ids (a set-uid run checks as whom it runs)."""
    (tmp_path / "locked\x1b.pem").write_bytes(b"x")
    (tmp_path / "open.txt").write_bytes(b"x")
    asked: list[bool] = []

    def access(path: str, mode: int, *, effective_ids: bool = False, **kwargs: object) -> bool:
        asked.append(effective_ids)
        return "locked" not in os.path.basename(path)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "supports_effective_ids", {access})
    entries = [(e.path, e.display, e.state, e.reason) for e in walk(tmp_path)]
    assert entries == [
        (
            tmp_path / "locked\x1b.pem",
            f"{tmp_path}/locked\\x1b.pem",
            EntryState.UNCHECKED,
            "cannot read: permission denied",
        ),
        (tmp_path / "open.txt", f"{tmp_path}/open.txt", EntryState.FILE, None),
    ]
    assert asked == [True, True]


def test_a_symlink_that_cannot_be_followed_names_the_os_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link\x1b").symlink_to("target")
    real = os.stat

    def stat_(path: str, *args: object, **kwargs: object) -> os.stat_result:
        if os.path.basename(path).startswith("link"):
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", stat_)
    link = next(e for e in walk(tmp_path) if e.path.name.startswith("link"))
    assert (link.path, link.display, link.state, link.reason) == (
        tmp_path / "link\x1b",
        f"{tmp_path}/link\\x1b",
        EntryState.UNCHECKED,
        "cannot follow: Permission denied",
    )


def test_classify_names_what_it_cannot_stat_or_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked\x1b").write_bytes(b"x")
    (tmp_path / "hidden").write_bytes(b"x")
    real_stat = os.stat

    def stat_(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if os.path.basename(os.fspath(path)) == "hidden":  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    asked: list[bool] = []

    def access(path: object, mode: int, *, effective_ids: bool = False, **kw: object) -> bool:
        asked.append(effective_ids)
        return False

    monkeypatch.setattr(os, "stat", stat_)
    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "supports_effective_ids", {access})
    hidden = classify(tmp_path / "hidden")
    assert (hidden.display, hidden.state, hidden.reason) == (
        f"{tmp_path}/hidden",
        EntryState.UNCHECKED,
        "cannot stat: Permission denied",
    )
    locked = classify(tmp_path / "locked\x1b")
    assert (locked.path, locked.display, locked.state, locked.reason) == (
        tmp_path / "locked\x1b",
        f"{tmp_path}/locked\\x1b",
        EntryState.UNCHECKED,
        "cannot read: permission denied",
    )
    assert asked == [True]


def test_classify_gives_a_file_its_size_and_id_and_a_directory_its_id(tmp_path: Path) -> None:
    (tmp_path / "f\x1b").write_bytes(b"abc")
    entry = classify(tmp_path / "f\x1b")
    info = os.stat(tmp_path / "f\x1b")
    assert (entry.path, entry.display, entry.state, entry.reason) == (
        tmp_path / "f\x1b",
        f"{tmp_path}/f\\x1b",
        EntryState.FILE,
        None,
    )
    assert (entry.size, entry.id) == (3, (info.st_dev, info.st_ino))
    folder = classify(tmp_path)
    top = os.stat(tmp_path)
    assert (folder.state, folder.id, folder.display) == (
        EntryState.DIRECTORY,
        (top.st_dev, top.st_ino),
        str(tmp_path),
    )
    assert classify(tmp_path / "nothing").display == f"{tmp_path}/nothing"
