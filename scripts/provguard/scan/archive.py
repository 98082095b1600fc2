"""Archives read as streams, in bounded memory: zip, tar, tar.gz/.xz/.bz2, .gz/.xz/.bz2, nested.

How to use it::

    limits = ArchiveLimits()                       # documented defaults, every one configurable
    fmt = archive_format(head, tail, name)         # "zip", "tar", "gzip", "xz", "bzip2" or None
    with open(path, "rb") as stream:
        for event in read_archive(stream, str(path), limits):
            if isinstance(event, Chunk):           # bytes of one member, in windows
                search(event.data)                 # report hits that end after event.fresh only
            elif isinstance(event, Outcome):       # how one member (or archive) ended
                record(event.location.display, event.state, event.reason)

`read_archive` yields, for every member, zero or more `Chunk`s and then exactly one `Outcome`;
for every archive (the input itself and each nested one) one `Outcome` of kind "archive" at its end.
Nothing is ever raised for bad archive content: corrupt, encrypted, oversized or suspicious
members end as `State.UNCHECKED` with a reason; only I/O errors of the outer stream propagate.

Windows: a member is read `window_bytes` at a time and never held whole in memory when larger.
Each chunk after the first starts with the last `overlap_bytes` of the previous one, so a needle of
up to `overlap_bytes` that crosses a window edge is wholly inside one chunk. A hit that ends at or
before `chunk.fresh` was already in the previous chunk: skip it to avoid reporting it twice. A
member no larger than one window arrives as one chunk with `whole` true, so a caller can parse it
as a file (HEX, ELF, MCUboot) rather than search it raw.

Nested archives (a member that is itself an archive, by its magic or its name) are searched twice:
as the member's raw bytes, and member by member, named `outer.zip!inner.tar!m.bin`. Their bytes
are spooled to a temporary file (in memory up to `spool_memory_bytes`), never held whole if large.

Zips are found by their end record wherever they start, as `unzip` reads them. A zip's own
structures (local headers with their extra fields, the central directory with entry comments, the
end record) are searched as one part, `(zip headers and central directory)`. Bytes of the file
that no member covers are searched as parts of their own, named in parentheses: `(bytes 0x0-0x1f00
before the zip)` (a firmware image the zip was appended to), `(bytes ... between zip members)`
(unchecked when they hold a local header the central directory does not list: a hidden member),
`(zip comment)`; likewise `(bytes after the end of the tar, from +0x...)` when a tar's
end-of-archive blocks are followed by anything but zeros, and `(tar extended headers and
padding)` for PAX records, GNU long names and padding that is not zeros (tarfile reads past
them); an extended header above `MAX_EXTENDED_HEADER` (1 MiB) leaves the tar unchecked.
Formats recognised but not read (7z, rar, zstd, lz4, lzip, cab, squashfs, .Z: `UNSUPPORTED`) end
as an unchecked archive.

Member names are escaped (`escape_name`): control characters, and bytes that are not valid in
the name's encoding, are shown as `\\xNN`, so a report line can never be forged by a name.
"""

from __future__ import annotations

import bz2
import dataclasses
import enum
import gzip
import io
import lzma
import os
import re
import struct
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import IO, BinaryIO, TypeGuard, cast

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: Errors a damaged compressed stream or archive raises while it is read.
DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
    OSError,
    UnicodeError,
)

#: Suffixes that make a member a nested archive even without its magic at byte 0.
ARCHIVE_SUFFIXES = (
    ".zip",
    ".tar",
    ".tgz",
    ".tar.gz",
    ".gz",
    ".txz",
    ".tar.xz",
    ".xz",
    ".tbz2",
    ".tar.bz2",
    ".bz2",
)

_TAIL = 22 + 0xFFFF  # the end record and the longest zip comment


@dataclass(frozen=True)
class ArchiveLimits:
    """The bounds of the work done for one input; each exceeded bound leaves a part unchecked.

    Defaults are well above any real firmware archive (an NCS dfu_application.zip is a few MiB):

    - `max_total_bytes` (4 GiB): bytes decompressed per input, nested archives included. Past it
      the member being read and every member not read yet are unchecked.
    - `max_member_bytes` (1 GiB): bytes of one member; past it the member is unchecked.
    - `max_members` (10,000): members per archive (directory entries included).
    - `max_depth` (4): archives nested in archives; deeper ones are searched as raw bytes only.
    - `max_ratio` (100) with `ratio_grace_bytes` (8 MiB): a member (zip) or stream (tar.gz, .xz,
      .bz2) that has decompressed more than `ratio_grace_bytes` and more than `max_ratio` times
      its compressed size is a compression bomb: unchecked.
    - `window_bytes` (16 MiB) and `overlap_bytes` (64 KiB): the window a member is read in and
      what consecutive windows share (the longest needle guaranteed to be found across an edge).
    - `spool_memory_bytes` (8 MiB): a nested archive is spooled to a temporary file past this.
    """

    max_total_bytes: int = 4 * GiB
    max_member_bytes: int = 1 * GiB
    max_members: int = 10_000
    max_depth: int = 4
    max_ratio: int = 100
    ratio_grace_bytes: int = 8 * MiB
    window_bytes: int = 16 * MiB
    overlap_bytes: int = 64 * KiB
    spool_memory_bytes: int = 8 * MiB

    def __post_init__(self) -> None:
        for name in (
            "max_total_bytes",
            "max_member_bytes",
            "max_members",
            "max_ratio",
            "window_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"archive limit {name} must be positive")
        if self.max_depth < 0 or self.ratio_grace_bytes < 0 or self.spool_memory_bytes < 0:
            raise ValueError("archive limits max_depth, ratio_grace_bytes must not be negative")
        if not 0 <= self.overlap_bytes < self.window_bytes:
            raise ValueError("archive limit overlap_bytes must be smaller than window_bytes")


class State(enum.Enum):
    """How a member or an archive ended."""

    READ = "read in full"  # every byte decompressed and yielded (an archive: every member listed)
    STATED = "stated"  # an entry without bytes to search (directory, symlink, device node)
    UNCHECKED = "unchecked"  # `reason` says why


@dataclass(frozen=True)
class Location:
    """Where bytes come from: a file, and the chain of (escaped) member names inside it."""

    file: str
    members: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        """`file!member!member`, as reports name archive members."""
        return "!".join((self.file, *self.members))

    def child(self, member: str) -> Location:
        return Location(self.file, (*self.members, member))


@dataclass(frozen=True)
class Chunk:
    """A window of one member's decompressed bytes.

    `data[0]` is byte `offset` of the member; `data[:fresh]` repeats the end of the previous chunk
    (0 for the first). `whole` is true when this one chunk is the entire member.
    """

    location: Location
    offset: int
    data: bytes = field(repr=False)
    fresh: int = 0
    whole: bool = False


@dataclass(frozen=True)
class Outcome:
    """How one member, or one archive (`kind` "archive"), ended.

    `kind`: "file", "directory", "symlink", "hardlink", "device", "fifo", "archive".
    `format`: for a member, the container it came from ("zip", "tar", "gzip", "xz", "bzip2");
    for kind "archive", the archive's format ("zip", "tar", "tar.gz", "tar.xz", "tar.bz2",
    "gzip", "xz", "bzip2"; "nested" for one too deep to open). `size`: bytes yielded as chunks
    (for an archive: members listed). `reason`: why it is unchecked, or what it is when stated.
    """

    location: Location
    kind: str
    format: str
    state: State
    size: int
    reason: str | None = None


Event = Chunk | Outcome


#: The characters `escape_name` writes as escapes: a name without any is returned as it is.
_ESCAPED = re.compile(
    "[\ud800-\udfff\x00-\x1f\x7f-\x9f\\\\\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
#: Line and paragraph separators, and Unicode's Bidi_Control characters (marks, embeddings,
#: overrides and isolates: what reorders a line as it is shown).
_SEPARATORS_AND_BIDI = frozenset(
    (0x2028, 0x2029, 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
)


def escape_name(name: str | bytes, encoding: str = "utf-8") -> str:
    """A member or file name safe to print: control characters, backslashes and undecodable
    bytes (or surrogate escapes) as `\\xNN`; never raises."""
    if isinstance(name, bytes):
        name = name.decode(encoding, "surrogateescape")
    if _ESCAPED.search(name) is None:  # nearly every name: nothing to escape
        return name
    out: list[str] = []
    for char in name:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that did not decode (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        elif char == "\\":
            out.append("\\\\")
        elif code in _SEPARATORS_AND_BIDI:
            out.append(f"\\u{code:04x}")  # line separators and bidi controls
        else:
            out.append(char)
    return "".join(out)


#: Containers recognised by their magic but not read: their content is compressed or packed, so
#: searching their raw bytes is not reading them. Each ends as an unchecked archive.
UNSUPPORTED = {
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x04\x22\x4d\x18": "lz4",
    b"LZIP\x01": "lzip",
    b"MSCF\0\0\0\0": "cab",
    b"hsqs": "squashfs",
    b"\x1f\x9d": "compress (.Z)",
}


def archive_format(head: bytes, tail: bytes = b"", name: str = "") -> str | None:
    """The archive format of a file from its first bytes (>= 512 for tar) and last 64 KiB + 22
    (for a zip with bytes before it), or None. `name` helps for a tar without the ustar magic.
    A format in `UNSUPPORTED` is named too: `read_archive` reports it unchecked."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or _end_record(tail) is not None:
        return "zip"
    for magic, fmt in UNSUPPORTED.items():
        if head.startswith(magic):
            return fmt
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    if head[257:262] == b"ustar":
        return "tar"
    if name.lower().endswith(".tar") and _tar_header_valid(head[:512]):
        return "tar"
    return None


def file_format(stream: BinaryIO, name: str = "") -> str | None:
    """`archive_format` of a seekable stream from its start (its position is restored)."""
    start = stream.tell()
    try:
        stream.seek(0)
        head = stream.read(512)
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - _TAIL))
        tail = stream.read(_TAIL)
    finally:
        stream.seek(start)
    return archive_format(head, tail, name)


def read_archive(
    stream: BinaryIO, name: str, limits: ArchiveLimits | None = None, *, fmt: str | None = None
) -> Iterator[Event]:
    """The events of the archive in `stream` (seekable), named `name` in locations.

    `fmt` is `file_format(stream, name)` unless given; a stream that is no archive, or one in a
    format that is recognised but not read (`UNSUPPORTED`: 7z, rar, zstd, ...), ends in one
    unchecked "archive" outcome. The stream is read from its start.
    """
    limits = limits or ArchiveLimits()
    budget = _Budget(limits)
    yield from _archive(stream, Location(name), fmt, limits, budget, depth=0)


def read_archive_file(
    path: str | os.PathLike[str], limits: ArchiveLimits | None = None
) -> Iterator[Event]:
    """`read_archive` of a file, named by its path."""
    with open(path, "rb") as stream:
        yield from read_archive(stream, escape_name(os.fspath(path)), limits)


def windows(
    stream: IO[bytes], location: Location, limits: ArchiveLimits | None = None
) -> Iterator[Chunk]:
    """A plain (not archived) stream as chunks, with the same window and overlap rules; for large
    files read from disk. Only the window sizes of `limits` apply: the caller bounds the file."""
    limits = limits or ArchiveLimits()
    unbounded = dataclasses.replace(
        limits, max_member_bytes=sys.maxsize, max_total_bytes=sys.maxsize, max_ratio=sys.maxsize
    )
    for item in _member_chunks(stream.read, location, _Budget(unbounded), lambda: 1, lambda: 0):
        if isinstance(item, Chunk):
            yield item


# ---------------------------------------------------------------------------------------------
# accounting


class _Budget:
    """What one input has used of its limits (mutable, internal)."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.total = 0

    @property
    def exhausted(self) -> bool:
        return self.total >= self.limits.max_total_bytes


class _Counting(io.RawIOBase):
    """A read-only view of a stream that counts the bytes read through it (compressed input)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


def _member_chunks(
    read: Callable[[int], bytes],
    location: Location,
    budget: _Budget,
    compressed: Callable[[], int],
    produced: Callable[[], int],
    sink: Callable[[memoryview], None] | None = None,
) -> Iterator[Chunk | str]:
    """Chunks of one member; ends with a `str` reason when a limit stops it before its end.

    `compressed()` is the compressed size the ratio is measured against and `produced()` the
    bytes decompressed from it so far. `sink` receives each chunk's new bytes (to spool a nested
    archive). At most one window, its overlap and the caller's previous chunk are in memory.
    """
    limits = budget.limits
    offset = 0  # member offset of the next new byte
    tail = b""
    carry = b""  # the byte read to learn whether a full window was the last
    while True:
        want = max(
            1,  # a member met once the budget is spent: one byte tells whether it holds any
            min(
                limits.window_bytes,
                limits.max_member_bytes - offset + 1,  # + 1: to see that it is exceeded
                limits.max_total_bytes - budget.total + 1,
            ),
        )
        buffer = bytearray(tail)
        buffer += carry
        new, carry, ended = len(carry), b"", False
        while new < want:
            piece = read(min(MiB, want - new))
            if not piece:
                ended = True
                break
            buffer += piece
            new += len(piece)
        if not ended and new == limits.window_bytes:
            carry = read(1)
            ended = not carry
        if new == 0:
            return
        budget.total += new
        data = bytes(buffer)
        del buffer
        if sink is not None:
            sink(memoryview(data)[len(tail) :])
        stop = _limit_reason(limits, offset + new, budget.total, compressed(), produced())
        whole = not tail and ended and stop is None
        yield Chunk(location, offset - len(tail), data, len(tail), whole)
        if stop is not None:
            yield stop
            return
        if ended:
            return
        offset += new
        tail = data[-limits.overlap_bytes :] if limits.overlap_bytes else b""


def _limit_reason(
    limits: ArchiveLimits, member: int, total: int, compressed: int, produced: int
) -> str | None:
    if member > limits.max_member_bytes:
        return f"member larger than the limit of {limits.max_member_bytes} bytes"
    if total > limits.max_total_bytes:
        return f"the input's decompressed total passed the limit of {limits.max_total_bytes} bytes"
    if produced > limits.ratio_grace_bytes and produced > limits.max_ratio * max(compressed, 1):
        return (
            f"compression ratio above {limits.max_ratio}:1 ({produced} bytes from {compressed}):"
            " a compression bomb"
        )
    return None


def _describe(exc: BaseException) -> str:
    """A damage reason that names no member and echoes no data."""
    text = str(exc)
    if isinstance(exc, _Refused):
        return text
    if "CRC" in text:
        return "bad CRC-32: the member's data is corrupt"
    if isinstance(exc, zlib.error):
        return "corrupt deflate stream"
    if isinstance(exc, lzma.LZMAError):
        return "corrupt LZMA/xz stream"
    if isinstance(exc, EOFError):
        return "truncated: the compressed stream ends early"
    if isinstance(exc, NotImplementedError):
        return "compression method not supported"
    if isinstance(exc, OSError) and "Invalid data stream" in text:
        return "corrupt bzip2 stream"
    if isinstance(exc, tarfile.TarError):
        return "corrupt or truncated tar stream"
    if isinstance(exc, OSError) and exc.errno is not None:
        raise exc  # a real I/O error of the input file: the caller reports it
    return f"corrupt ({type(exc).__name__})"


# ---------------------------------------------------------------------------------------------
# dispatch


def _archive(
    stream: IO[bytes],
    location: Location,
    fmt: str | None,
    limits: ArchiveLimits,
    budget: _Budget,
    depth: int,
) -> Iterator[Event]:
    if fmt is None:
        fmt = file_format(cast(BinaryIO, stream), location.members[-1] if location.members else "")
    stream.seek(0)
    if fmt == "zip":
        yield from _zip(stream, location, limits, budget, depth)
    elif fmt == "tar":
        yield from _tar(stream, location, "tar", limits, budget, depth)
    elif fmt in ("gzip", "xz", "bzip2"):
        yield from _compressed(stream, location, fmt, limits, budget, depth)
    else:
        if fmt in UNSUPPORTED.values():
            reason = f"{fmt} archive: this format is not read, its content is not checked"
        else:
            reason = "not an archive"
        yield Outcome(location, "archive", fmt or "unknown", State.UNCHECKED, 0, reason)


def _member(
    read: Callable[[int], bytes],
    location: Location,
    fmt: str,
    budget: _Budget,
    depth: int,
    compressed: Callable[[], int],
    produced: Callable[[], int],
    *,
    nested: bool = True,
) -> Iterator[Event]:
    """One member's chunks and outcome, then its contents when it is an archive itself (unless
    `nested` is false: parts made of an archive's own headers)."""
    limits = budget.limits
    spool: IO[bytes] | None = None
    size = 0
    reason: str | None = None
    head = b""

    def sink(block: memoryview) -> None:
        nonlocal spool, head
        if not head:
            head = bytes(block[:512])
            name = location.members[-1].lower()
            if nested and (archive_format(head, b"", name) or name.endswith(ARCHIVE_SUFFIXES)):
                # closed below, after the nested archive is read
                spool = tempfile.SpooledTemporaryFile(max_size=limits.spool_memory_bytes)  # noqa: SIM115
        if spool is not None:
            spool.write(block)

    try:
        for item in _member_chunks(read, location, budget, compressed, produced, sink):
            if isinstance(item, str):
                reason = item
            else:
                size = item.offset + len(item.data)
                yield item
    except DAMAGE as exc:
        reason = _describe(exc)
    state = State.READ if reason is None else State.UNCHECKED
    yield Outcome(location, "file", fmt, state, size, reason)
    if spool is None:
        return
    with spool:
        if reason is not None:
            return  # a partial archive is not opened: its bytes were searched raw
        if depth + 1 > limits.max_depth:
            yield Outcome(
                location,
                "archive",
                "nested",
                State.UNCHECKED,
                0,
                f"archive nested deeper than {limits.max_depth} levels: its members are not read, "
                "only its raw bytes",
            )
            return
        inner = cast(BinaryIO, spool)
        fmt_inner = file_format(inner, location.members[-1])
        if fmt_inner is None:
            return  # named like an archive, but is not one: its raw bytes were searched
        yield from _archive(inner, location, fmt_inner, limits, budget, depth + 1)


def _over_budget(location: Location, fmt: str, budget: _Budget, count: int) -> Outcome | None:
    if count > budget.limits.max_members:
        return Outcome(
            location,
            "archive",
            fmt,
            State.UNCHECKED,
            count - 1,
            f"more than {budget.limits.max_members} members: the rest are not read",
        )
    if budget.exhausted:
        return Outcome(
            location,
            "archive",
            fmt,
            State.UNCHECKED,
            count - 1,
            f"the input's decompressed total reached the limit of "
            f"{budget.limits.max_total_bytes} bytes: the remaining members are not read",
        )
    return None


# ---------------------------------------------------------------------------------------------
# zip


def _end_record(tail: bytes) -> int | None:
    """Offset in `tail` of a zip end record whose comment runs exactly to the end, or None."""
    at = tail.rfind(b"PK\x05\x06")
    while at >= 0:
        if at + 22 <= len(tail):
            comment = int.from_bytes(tail[at + 20 : at + 22], "little")
            if at + 22 + comment == len(tail):
                return at
        at = tail.rfind(b"PK\x05\x06", 0, at)
    return None


@dataclass(frozen=True)
class _ZipEnd:
    count: int  # members the end record (or the zip64 end record) lists
    record: int  # offset of the end record in the file
    size: int  # the file's size: the end record's comment runs to it


def _zip_end(stream: IO[bytes]) -> _ZipEnd | None:
    """Where the zip's end record is and the member count it states, if found."""
    size = stream.seek(0, os.SEEK_END)
    start = max(0, size - _TAIL)
    stream.seek(start)
    tail = stream.read(_TAIL)
    at = _end_record(tail)
    if at is None:
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        # zip64: the zip64 end record sits just before its locator
        record = start + locator - 56
        if record >= 0:
            stream.seek(record)
            zip64 = stream.read(56)
            if zip64[:4] == b"PK\x06\x06":
                count = int.from_bytes(zip64[32:40], "little")
    return _ZipEnd(count, start + at, size)


def _entry_span(stream: IO[bytes], info: zipfile.ZipInfo) -> tuple[int, int]:
    """Where an entry's local header (name and extra field included) ends, and where its data
    and data descriptor end, in the file."""
    stream.seek(info.header_offset)
    head = stream.read(30)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return info.header_offset + len(head), info.header_offset + len(head)
    name, extra = struct.unpack_from("<HH", head, 26)
    local_extra = stream.read(name + extra)[name:]
    header_end = int(info.header_offset + 30 + name + extra)
    end = header_end + int(info.compress_size)
    if info.flag_bits & 0x08:  # a data descriptor follows: optional signature, CRC and sizes
        zip64 = _has_zip64_extra(local_extra) or info.compress_size >= 0xFFFFFFFF
        stream.seek(end)
        signed = stream.read(4) == b"PK\x07\x08"
        end += (4 if signed else 0) + (20 if zip64 else 12)
    return header_end, end


def _has_zip64_extra(extra: bytes) -> bool:
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == 0x0001:
            return True
        at += 4 + length
    return False


def _outside(
    stream: IO[bytes], infos: list[zipfile.ZipInfo], start_dir: int, end: _ZipEnd
) -> list[tuple[int, int, str]]:
    """The byte ranges of the file in no member, central directory or end record, named: bytes
    before the zip, between members, the zip comment. They are searched as they are."""
    spans = sorted([(i.header_offset, _entry_span(stream, i)[1]) for i in infos])
    spans.append((min(start_dir, end.record), end.record + 22))
    first = min(start for start, _ in spans)
    gaps: list[tuple[int, int, str]] = []
    at = 0
    for start, stop in sorted(spans):
        if start > at:
            gaps.append((at, min(start, end.size), ""))
        at = max(at, stop)
    if at < end.size:
        gaps.append((at, end.size, ""))
    named = []
    for start, stop, _ in gaps:
        if start >= end.record + 22:
            label = "(zip comment)"
        elif stop <= first:
            label = f"(bytes 0x0-0x{stop:x} before the zip)"
        else:
            label = f"(bytes 0x{start:x}-0x{stop:x} between zip members)"
        if stop > start:
            named.append((start, stop, label))
    return named


def _zip_headers(
    stream: IO[bytes],
    infos: list[zipfile.ZipInfo],
    start_dir: int,
    end: _ZipEnd,
    location: Location,
    budget: _Budget,
    depth: int,
) -> Iterator[Event]:
    """The zip's own structures searched as one part: local headers (names, extra fields), the
    central directory (entry comments, extra fields) and the end record, which zipfile reads
    past and a key could be put in."""
    ranges = sorted(
        [(i.header_offset, _entry_span(stream, i)[0]) for i in infos]
        + [(min(start_dir, end.record), end.record + 22)]
    )
    with tempfile.SpooledTemporaryFile(max_size=MiB) as spool:
        at = 0
        for start, stop in ranges:
            start = max(start, at)  # noqa: PLW2901 - overlapping entries share their header
            if stop > start:
                stream.seek(start)
                spool.write(stream.read(stop - start))
            at = max(at, stop)
        spool.seek(0)
        produced = 0

        def read(size: int) -> bytes:
            nonlocal produced
            data = spool.read(size)
            produced += len(data)
            return data

        where = location.child("(zip headers and central directory)")
        yield from _member(
            read, where, "zip", budget, depth, lambda: produced, lambda: produced, nested=False
        )


def _outside_member(
    stream: IO[bytes], span: tuple[int, int, str], location: Location, budget: _Budget, depth: int
) -> Iterator[Event]:
    """Bytes outside the zip's members as a member of their own (a firmware image a zip was
    appended to, bytes between members, the comment); unchecked when they hold a local header
    that no central-directory entry names (a hidden member, its data compressed)."""
    start, stop, label = span
    where = location.child(label)
    position = start
    produced = 0
    hidden = False
    carry = b""

    def read(size: int) -> bytes:
        nonlocal position, produced, hidden, carry
        stream.seek(position)
        data = stream.read(min(size, stop - position))
        position += len(data)
        produced += len(data)
        hidden = hidden or b"PK\x03\x04" in carry + data
        carry = data[-3:]
        return data

    for event in _member(read, where, "zip", budget, depth, lambda: produced, lambda: produced):
        if hidden and _read_file(event, where):
            event = dataclasses.replace(  # noqa: PLW2901
                event,
                state=State.UNCHECKED,
                reason="holds a zip local header that the central directory does not list "
                "(a hidden member, not read)",
            )
        yield event


class _Cp437Names(io.RawIOBase):
    """A view of a zip that clears the UTF-8 name flag in the central directory and local headers.

    `zipfile` decodes a name flagged UTF-8 strictly and fails on the whole archive when one is
    not; read through this view every name decodes as cp437 (a total mapping), and the original
    bytes and flag are recovered by `raw_name`.
    """

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.utf8: list[bool] = []  # per central-directory entry, in order
        self.headers: set[int] = set()  # offsets of the local headers, once the directory is read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def read(self, size: int | None = -1) -> bytes:
        at = self.inner.tell()
        data = self.inner.read(-1 if size is None else size)
        # the central directory is read by its size; a read to the end of the file is zipfile's
        # search for the end record, which can start at an entry (a comment of the right length)
        whole = size is not None and size >= 0
        if whole and data[:4] == b"PK\x01\x02" and not self.utf8:
            return self._central(data)
        if data[:4] == b"PK\x03\x04" and len(data) == 30 and at in self.headers:
            flags = int.from_bytes(data[6:8], "little") & ~0x800
            return data[:6] + flags.to_bytes(2, "little") + data[8:]
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _central(self, data: bytes) -> bytes:
        out = bytearray(data)
        at = 0
        while at + 46 <= len(out) and out[at : at + 4] == b"PK\x01\x02":
            flags = int.from_bytes(out[at + 8 : at + 10], "little")
            self.utf8.append(bool(flags & 0x800))
            out[at + 8 : at + 10] = (flags & ~0x800).to_bytes(2, "little")
            lengths = struct.unpack_from("<HHH", out, at + 28)
            at += 46 + sum(lengths)
        return bytes(out)


def _zip_name(info: zipfile.ZipInfo, utf8: bool) -> str:
    raw = info.orig_filename.encode("cp437")
    return escape_name(raw.decode("utf-8", "replace") if utf8 else raw.decode("cp437"))


def _overlapping(infos: list[zipfile.ZipInfo]) -> set[int]:
    """Indexes of entries whose data overlaps an earlier entry's (a zip bomb's shape)."""
    order = sorted(range(len(infos)), key=lambda i: (infos[i].header_offset, i))
    bad: set[int] = set()
    end = -1
    for i in order:
        info = infos[i]
        if info.is_dir() and info.compress_size == 0:
            continue
        if info.header_offset < end:
            bad.add(i)
        name = len(info.orig_filename.encode("cp437"))
        end = max(end, info.header_offset + 30 + name + info.compress_size)
    return bad


def _zip(
    stream: IO[bytes], location: Location, limits: ArchiveLimits, budget: _Budget, depth: int
) -> Iterator[Event]:
    end = _zip_end(stream)
    if end is not None and end.count > limits.max_members:
        # zipfile would hold every entry of the central directory in memory at once
        reason = (
            f"the central directory lists {end.count} members, more than the limit of "
            f"{limits.max_members}: not read"
        )
        yield Outcome(location, "archive", "zip", State.UNCHECKED, 0, reason)
        return
    view = _Cp437Names(stream)
    try:
        archive = zipfile.ZipFile(cast(IO[bytes], view))
    except DAMAGE as exc:
        reason = f"unreadable zip central directory: {_describe(exc)}"
        yield Outcome(location, "archive", "zip", State.UNCHECKED, 0, reason)
        return
    with archive:
        infos = archive.infolist()
        view.headers = {info.header_offset for info in infos}
        utf8 = view.utf8 + [False] * (len(infos) - len(view.utf8))
        overlap = _overlapping(infos)
        stopped: Outcome | None = None
        count = 0
        for index, info in enumerate(infos):
            count += 1
            stopped = _over_budget(location, "zip", budget, count)
            if stopped is not None:
                break
            where = location.child(_zip_name(info, utf8[index]))
            mode = info.external_attr >> 16
            if info.is_dir():
                yield Outcome(where, "directory", "zip", State.STATED, 0, "directory entry")
            elif mode and (mode & 0o170000) == 0o120000:
                yield Outcome(where, "symlink", "zip", State.STATED, 0, "symlink (not followed)")
            elif info.flag_bits & 0x1:
                yield Outcome(
                    where, "file", "zip", State.UNCHECKED, 0, "encrypted zip member: not read"
                )
            elif index in overlap:
                yield Outcome(
                    where,
                    "file",
                    "zip",
                    State.UNCHECKED,
                    0,
                    "its data overlaps another member's (a zip bomb's shape): not read",
                )
            else:
                yield from _zip_member(archive, info, where, budget, depth)
        size = count - (stopped is not None)
        if stopped is not None:
            yield stopped
            return
        if end is not None:
            for span in _outside(stream, infos, archive.start_dir, end):
                yield from _outside_member(stream, span, location, budget, depth)
            yield from _zip_headers(stream, infos, archive.start_dir, end, location, budget, depth)
        yield Outcome(location, "archive", "zip", State.READ, size)


def _zip_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: Location, budget: _Budget, depth: int
) -> Iterator[Event]:
    # Python 3.12.2, 3.11.8 and later refuse a member whose data runs into the next member's
    # header, which 3.11.7 reads: read it on every Python (every byte searched), so that a zip
    # scans the same whatever the Python. A quoted-overlap bomb is still bounded here: by
    # `_overlapping` (a member whose header lies in an earlier one's data is not read) and by
    # the archive budget (total bytes, ratio).
    if getattr(info, "_end_offset", None) is not None:
        info._end_offset = None  # type: ignore[attr-defined]  # newer than the stubs
    try:
        member = archive.open(info)
    except DAMAGE as exc:
        yield Outcome(where, "file", "zip", State.UNCHECKED, 0, _describe(exc))
        return
    # zipfile checks the CRC-32 in the read that reaches the end and then drops that read's
    # bytes; the check is done here instead, after they were searched
    if hasattr(member, "_expected_crc"):
        member._expected_crc = None
    with member:
        produced = 0
        crc = 0

        def read(size: int) -> bytes:
            nonlocal produced, crc
            data = member.read(size)
            produced += len(data)
            crc = zlib.crc32(data, crc)
            return data

        for event in _member(
            read, where, "zip", budget, depth, lambda: info.compress_size, lambda: produced
        ):
            if crc != info.CRC and _read_file(event, where):
                event = dataclasses.replace(  # noqa: PLW2901
                    event, state=State.UNCHECKED, reason="bad CRC-32: the member's data is corrupt"
                )
            yield event


# ---------------------------------------------------------------------------------------------
# tar and single compressed streams

_OPENERS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "gzip": lambda f: cast(IO[bytes], gzip.GzipFile(fileobj=f, mode="rb")),
    "xz": lambda f: cast(IO[bytes], lzma.LZMAFile(f, "rb")),  # noqa: SIM115 - closed by caller
    "bzip2": lambda f: cast(IO[bytes], bz2.BZ2File(f, "rb")),
}


def _tar_header_valid(block: bytes) -> bool:
    if len(block) < 512 or not block.strip(b"\0"):
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _compressed(
    stream: IO[bytes],
    location: Location,
    fmt: str,
    limits: ArchiveLimits,
    budget: _Budget,
    depth: int,
) -> Iterator[Event]:
    """A .gz/.xz/.bz2 stream: a tar inside it, or one compressed file."""
    try:
        with _OPENERS[fmt](stream) as probe:
            head = probe.read(512)
    except DAMAGE as exc:
        yield Outcome(location, "archive", fmt, State.UNCHECKED, 0, _describe(exc))
        return
    stream.seek(0)
    if head[257:262] == b"ustar" or _tar_header_valid(head):
        yield from _tar(stream, location, fmt, limits, budget, depth)
        return
    counting = _Counting(stream)
    base = location.members[-1] if location.members else location.file
    inner = os.path.basename(base)
    for suffix in (".gz", ".xz", ".bz2", ".lzma"):
        if inner.lower().endswith(suffix) and len(inner) > len(suffix):
            inner = inner[: -len(suffix)]
            break
    else:
        inner = "(decompressed)"
    where = location.child(inner)
    try:
        with _OPENERS[fmt](cast(IO[bytes], counting)) as data:
            produced = 0

            def read(size: int) -> bytes:
                nonlocal produced
                piece = data.read(size)
                produced += len(piece)
                return piece

            yield from _member(
                read, where, fmt, budget, depth, lambda: counting.count, lambda: produced
            )
    except DAMAGE as exc:  # closing a truncated stream
        yield Outcome(where, "file", fmt, State.UNCHECKED, 0, _describe(exc))
    yield Outcome(location, "archive", fmt, State.READ, 1)


def _tar_stated(info: tarfile.TarInfo, where: Location) -> Outcome | None:
    """The outcome of an entry without data to search, or None for a regular file.

    A type flag tarfile does not know is read as a regular file, as tar(1) extracts it (POSIX:
    an unrecognised type is a regular file): its data may hold a key, so it is searched."""
    if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:
        return None
    if info.isdir():
        return Outcome(where, "directory", "tar", State.STATED, 0, "directory entry")
    if info.issym():
        reason = f"symlink to {escape_name(info.linkname)} (not followed)"
        return Outcome(where, "symlink", "tar", State.STATED, 0, reason)
    if info.islnk():
        reason = f"hard link to {escape_name(info.linkname)} (its data is that member's)"
        return Outcome(where, "hardlink", "tar", State.STATED, 0, reason)
    if info.ischr() or info.isblk():
        return Outcome(where, "device", "tar", State.STATED, 0, "device node entry")
    if info.isfifo():
        return Outcome(where, "fifo", "tar", State.STATED, 0, "FIFO entry")
    return Outcome(where, "file", "tar", State.STATED, 0, "special entry without data")


def _tar(
    stream: IO[bytes],
    location: Location,
    fmt: str,
    limits: ArchiveLimits,
    budget: _Budget,
    depth: int,
) -> Iterator[Event]:
    """A tar stream (compressed by `fmt`, or plain), member by member, never seeking."""
    kind = {"tar": "tar", "gzip": "tar.gz", "xz": "tar.xz", "bzip2": "tar.bz2"}[fmt]
    counting = _Counting(stream)
    meter = _Meter(counting)
    count = 0
    try:
        # decompressed here, not by tarfile, so a truncated stream raises instead of ending
        raw = cast(IO[bytes], counting)
        tee = _Tee(raw if fmt == "tar" else _OPENERS[fmt](raw), MAX_EXTENDED_HEADER + MiB)
        archive = tarfile.open(  # noqa: SIM115
            fileobj=cast(IO[bytes], tee), mode="r|", tarinfo=_TarInfo
        )
    except DAMAGE as exc:
        yield Outcome(location, "archive", kind, State.UNCHECKED, 0, _describe(exc))
        return

    def rest(reason: str) -> Outcome:
        return Outcome(location, "archive", kind, State.UNCHECKED, count, reason)

    ended: Outcome | None = None
    extras = _TarExtras(tee)
    with archive:
        members = iter(archive)
        while ended is None:
            try:
                info = next(members)
            except StopIteration:
                break
            except DAMAGE as exc:
                ended = rest(f"{_describe(exc)} after {count} members: the rest is not read")
                break
            count += 1
            extras.member(info, archive.offset)
            ended = _over_budget(location, kind, budget, count)
            if ended is not None:
                break
            where = location.child(escape_name(info.name))
            stated = _tar_stated(info, where)
            if stated is not None:
                yield stated
                continue
            broken = yield from _tar_member(archive, info, where, budget, depth, meter)
            if broken and fmt != "tar":
                # a bomb or damage inside a compressed stream: what follows is not trusted
                ended = rest("stopped after an unchecked member: the rest is not read")
        if ended is None and getattr(archive, "provguard_end", False):
            yield from extras.events(archive.offset, location, budget, depth)
        if ended is None:
            ended = yield from _tar_close(archive, location, budget, depth, rest)
    yield ended or Outcome(location, "archive", kind, State.READ, count)


class _Meter:
    """Bytes a compressed stream gave (members' data) for the bytes it read (the ratio)."""

    def __init__(self, counting: _Counting) -> None:
        self.counting = counting
        self.produced = 0

    def compressed(self) -> int:
        return self.counting.count


def _tar_member(
    archive: tarfile.TarFile,
    info: tarfile.TarInfo,
    where: Location,
    budget: _Budget,
    depth: int,
    meter: _Meter,
) -> Generator[Event, None, bool]:
    """A regular tar member's events; returns whether it ended unchecked."""
    member = archive.extractfile(info)
    if member is None:  # pragma: no cover - regular members always extract
        return False

    def read(size: int) -> bytes:
        piece = member.read(size)
        meter.produced += len(piece)
        return piece

    broken = False
    for event in _member(
        read, where, "tar", budget, depth, meter.compressed, lambda: meter.produced
    ):
        broken = broken or _unchecked_file(event, where)
        yield event
    return broken


def _tar_close(
    archive: tarfile.TarFile,
    location: Location,
    budget: _Budget,
    depth: int,
    rest: Callable[[str], Outcome],
) -> Generator[Event, None, Outcome | None]:
    """After the last member: why the tar is not whole (no end-of-archive marker, a damaged
    compressed stream after it), else None; what follows the marker is searched."""
    if not getattr(archive, "provguard_end", False):
        return rest("truncated or damaged: the tar ends without its end-of-archive marker")
    try:
        yield from _tar_trailing(archive, location, budget, depth)
    except DAMAGE as exc:
        return rest(f"{_describe(exc)} after the last member")
    return None


class _TarInfo(tarfile.TarInfo):
    """Marks the archive whose end-of-archive blocks were read (tarfile ends silently on a
    truncated or damaged header after the first member), and refuses an extended header (PAX,
    GNU long name) larger than `MAX_EXTENDED_HEADER`, which tarfile would read whole."""

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> _TarInfo:
        stream = cast(IO[bytes], archive.fileobj)
        block = stream.read(tarfile.BLOCKSIZE)
        try:
            info = cls.frombuf(block, archive.encoding or "utf-8", archive.errors)
        except EOFHeaderError:
            archive.provguard_end = True  # type: ignore[attr-defined]
            raise
        info.offset = stream.tell() - tarfile.BLOCKSIZE
        if info.type in _EXTENDED and info.size > MAX_EXTENDED_HEADER:
            raise _Refused(
                f"an extended tar header of {info.size} bytes, above the limit of "
                f"{MAX_EXTENDED_HEADER}"
            )
        return cast(_TarInfo, info._proc_member(archive))  # type: ignore[attr-defined]


class _Refused(tarfile.ReadError):
    """A limit refused part of an archive; the message is the reason."""


#: Extended headers tarfile reads into memory whole.
MAX_EXTENDED_HEADER = MiB
_EXTENDED = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _Tee(io.RawIOBase):
    """Passes reads through and keeps the last bytes read with their offsets, so the bytes
    tarfile passes over (padding, extended headers) can be searched too."""

    def __init__(self, inner: IO[bytes], keep: int) -> None:
        self.inner = inner
        self.keep = keep
        self.ring = bytearray()
        self.base = 0  # offset of ring[0]
        self.count = 0  # bytes read so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        self.ring += data
        if len(self.ring) > 2 * self.keep:
            drop = len(self.ring) - self.keep
            del self.ring[:drop]
            self.base += drop
        return len(data)

    def span(self, start: int, stop: int) -> bytes | None:
        """Bytes [start, stop) of the stream, or None when no longer kept."""
        if start < self.base or stop > self.count:
            return None
        return bytes(self.ring[start - self.base : stop - self.base])


class _TarExtras:
    """The bytes of a tar that are no member's data: the padding after each member's data (when
    it is not zeros) and extended headers (PAX records, GNU long names), searched as one part."""

    def __init__(self, tee: _Tee) -> None:
        self.tee = tee
        # closed by `events`, after the part is read
        self.spool = tempfile.SpooledTemporaryFile(max_size=MiB)  # noqa: SIM115
        self.lost = False
        self.data_end = 0  # where the previous member's data ends
        self.block_end = 0  # where its last block ends (the next header)

    def _keep(self, start: int, stop: int, *, zeros_too: bool) -> None:
        if stop <= start:
            return
        data = self.tee.span(start, stop)
        if data is None:
            self.lost = True
        elif zeros_too or data.strip(b"\0"):
            self.spool.write(data)

    def member(self, info: tarfile.TarInfo, next_header: int) -> None:
        """After tarfile read `info`'s headers; `next_header` is where its next header is."""
        self._keep(self.data_end, self.block_end, zeros_too=False)
        self._keep(self.block_end, info.offset_data - tarfile.BLOCKSIZE, zeros_too=True)
        has_data = next_header > info.offset_data
        self.data_end = info.offset_data + info.size if has_data else info.offset_data
        self.block_end = max(next_header, info.offset_data)

    def events(self, end: int, location: Location, budget: _Budget, depth: int) -> Iterator[Event]:
        """The part, once the end-of-archive block (at `end`) was read."""
        self._keep(self.data_end, self.block_end, zeros_too=False)
        self._keep(self.block_end, end, zeros_too=True)
        with self.spool:
            if not self.spool.tell() and not self.lost:
                return
            self.spool.seek(0)
            where = location.child("(tar extended headers and padding)")
            produced = 0

            def read(size: int) -> bytes:
                nonlocal produced
                data = self.spool.read(size)
                produced += len(data)
                return data

            # the part begins with a tar header of its own (ustar magic): it is searched, never
            # opened as a nested tar, which it is not
            for event in _member(
                read, where, "tar", budget, depth, lambda: produced, lambda: produced, nested=False
            ):
                if self.lost and _read_file(event, where):
                    event = dataclasses.replace(  # noqa: PLW2901
                        event, state=State.UNCHECKED, reason="some header bytes were not kept"
                    )
                yield event


EOFHeaderError = getattr(tarfile, "EOFHeaderError", tarfile.HeaderError)


def _tar_trailing(
    archive: tarfile.TarFile, location: Location, budget: _Budget, depth: int
) -> Iterator[Event]:
    """Bytes after a tar's end-of-archive blocks: zeros (record padding) are skipped, anything
    else is searched as a member of its own. Damage in a compressed stream raises."""
    stream = cast(IO[bytes], archive.fileobj)  # tarfile's stream: what it buffered comes first
    skipped = 0
    piece = stream.read(MiB)
    while piece and not piece.strip(b"\0"):
        skipped += len(piece)
        piece = stream.read(MiB)
    if not piece:
        return
    first = len(piece) - len(piece.lstrip(b"\0"))
    pending = piece[first:]
    where = location.child(f"(bytes after the end of the tar, from +0x{skipped + first:x})")
    produced = 0

    def read(size: int) -> bytes:
        nonlocal pending, produced
        if pending:
            data, pending = pending[:size], pending[size:]
        else:
            data = stream.read(size)
        produced += len(data)
        return data

    yield from _member(read, where, "tar", budget, depth, lambda: produced, lambda: produced)


def _read_file(event: Event, where: Location) -> TypeGuard[Outcome]:
    """Whether `event` is the outcome "read in full" of the member at `where`."""
    return (
        isinstance(event, Outcome)
        and event.location == where
        and event.kind == "file"
        and event.state is State.READ
    )


def _unchecked_file(event: Event, where: Location) -> bool:
    return (
        isinstance(event, Outcome)
        and event.location == where
        and event.kind == "file"
        and event.state is State.UNCHECKED
    )
