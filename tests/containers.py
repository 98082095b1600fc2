"""Containers for the scan's archive, walk and MCUboot tests, built at test time.

`raw_zip` writes a zip byte by byte (for what `zipfile` will not write: a name flagged UTF-8 that
is not, entries that share their data); `write_zip_bomb` streams one member of N zeros compressed
to about 1/1000 of it without ever holding it; `found` and `outcomes` summarise the events of
`provguard.scan.archive` the way a caller uses them.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from provguard.scan.archive import Chunk, Event, Outcome

MiB = 1024 * 1024


@dataclass(frozen=True)
class RawEntry:
    """One zip entry as bytes: `data` already compressed with `method` (0 stored, 8 deflate)."""

    name: bytes
    data: bytes
    size: int
    crc: int
    method: int = 0
    flags: int = 0
    external_attr: int = 0


def stored(name: bytes, data: bytes, *, flags: int = 0, external_attr: int = 0) -> RawEntry:
    return RawEntry(name, data, len(data), zlib.crc32(data), 0, flags, external_attr)


def raw_zip(
    entries: Iterable[RawEntry],
    *,
    copies: int = 1,
    prefix: bytes = b"",
    hidden: frozenset[int] = frozenset(),
    comment: bytes = b"",
) -> bytes:
    """A zip of `entries`; `copies` > 1 lists every entry that many times in the central
    directory, all pointing at the same local header and data (an overlapping-entry bomb); the
    entries whose index is in `hidden` are written but not listed (hidden members)."""
    body = bytearray(prefix)
    central = bytearray()
    count = 0
    for index, entry in enumerate(entries):
        offset = len(body) - len(prefix)
        body += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            entry.flags,
            entry.method,
            0,
            0x21,
            entry.crc,
            len(entry.data),
            entry.size,
            len(entry.name),
            0,
        )
        body += entry.name + entry.data
        record = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x031E,
            20,
            entry.flags,
            entry.method,
            0,
            0x21,
            entry.crc,
            len(entry.data),
            entry.size,
            len(entry.name),
            0,
            0,
            0,
            0,
            entry.external_attr,
            offset,
        )
        if index not in hidden:
            central += (record + entry.name) * copies
            count += copies
    start = len(body) - len(prefix)
    if count <= 0xFFFF:
        end = struct.pack(
            "<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), start, len(comment)
        )
        return bytes(body + central + end + comment)
    # zip64 end record and locator (APPNOTE 4.3.14, 4.3.15), then the end record with 0xFFFF
    record = struct.pack(
        "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(central), start
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, start + len(central), 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, len(central), start, 0)
    return bytes(body + central + record + locator + end)


def write_zip_bomb(path: Path, size_mib: int, name: bytes = b"zeros.bin") -> Path:
    """A zip whose one member is `size_mib` MiB of zeros, deflated to about 1 KiB per MiB.

    Each MiB is compressed once and the same full-flushed deflate block repeated, so a 1 GiB
    member is written in well under a second and never held in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = bytes(MiB)
    block = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(size_mib):
        crc = zlib.crc32(mib, crc)
    compressed = len(block) * size_mib + len(final)
    size = size_mib * MiB
    with path.open("wb") as out:
        out.write(
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, compressed, size, len(name), 0
            )
        )
        out.write(name)
        for _ in range(size_mib):
            out.write(block)
        out.write(final)
        central = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x031E,
            20,
            0,
            8,
            0,
            0x21,
            crc,
            compressed,
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        start = 30 + len(name) + compressed
        out.write(central + name)
        out.write(
            struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), start, 0)
        )
    return path


def outcomes(events: Iterable[Event]) -> dict[tuple[str, str], Outcome]:
    """Outcomes by (display path, kind); asserts each is reported once."""
    out: dict[tuple[str, str], Outcome] = {}
    for event in events:
        if isinstance(event, Outcome):
            key = (event.location.display, event.kind)
            assert key not in out, f"{key} reported twice"
            out[key] = event
    return out


def found(events: Iterable[Event], needle: bytes) -> list[str]:
    """Display paths of every occurrence of `needle`, each reported once across windows (a hit
    that ends at or before `chunk.fresh` was in the previous chunk)."""
    hits: list[str] = []
    for event in events:
        if not isinstance(event, Chunk):
            continue
        at = event.data.find(needle)
        while at >= 0:
            if at + len(needle) > event.fresh:
                hits.append(event.location.display)
            at = event.data.find(needle, at + 1)
    return hits


class Secret(bytes):
    """Key bytes that pytest cannot print: shown by digest in tracebacks and assertion diffs."""

    def __repr__(self) -> str:
        return f"<secret sha256:{digest(self)}>"


def assert_absent(key: bytes, data: bytes | str, what: str) -> None:
    """Assert `key` is not in `data` without pytest printing either on failure."""
    needle: bytes | str = key.decode() if isinstance(data, str) else key
    present = needle in data
    assert not present, f"the key's bytes are in {what}"


def digest(data: bytes) -> str:
    """How tests name key bytes in assertion messages: never the bytes themselves."""
    return hashlib.sha256(data).hexdigest()[:16]


def mcuboot(
    payload: bytes,
    flags: int = 0,
    *,
    protected: tuple[tuple[int, bytes], ...] = (),
    tlvs: tuple[tuple[int, bytes], ...] = (),
    plain: bytes | None = None,
    hdr_size: int = 0x200,
) -> bytes:
    """An MCUboot image laid out as imgtool writes it (mcu-tools/mcuboot scripts/imgtool/image.py:
    header padded to `hdr_size`, payload, protected TLV area, TLV area with a SHA256 TLV first),
    for what imgtool cannot make (LZMA1 payloads, ENC_KW). The SHA256 covers the header, `plain`
    (the payload before encryption, default `payload`) and the protected TLV area."""
    prot = b"".join(struct.pack("<HH", tag, len(value)) + value for tag, value in protected)
    prot_area = struct.pack("<HH", 0x6908, 4 + len(prot)) + prot if protected else b""
    header = struct.pack(
        "<IIHHIIBBHII", 0x96F3B83D, 0, hdr_size, len(prot_area), len(payload), flags, 1, 0, 0, 0, 0
    ).ljust(hdr_size, b"\0")
    digest = hashlib.sha256(header + (payload if plain is None else plain) + prot_area).digest()
    body = struct.pack("<HH", 0x10, 32) + digest
    body += b"".join(struct.pack("<HH", tag, len(value)) + value for tag, value in tlvs)
    return header + payload + prot_area + struct.pack("<HH", 0x6907, 4 + len(body)) + body
