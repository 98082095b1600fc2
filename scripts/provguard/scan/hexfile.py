"""A fast, strict Intel HEX reader (the tests compare it with `intelhex`, the reference reader).

`intelhex` keeps a dict entry per byte: about 0.8 s for a 1 MiB merged.hex. This reader decodes a
record per loop step into contiguous segments, and checks every record's length and checksum.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from provguard.errors import InputError

_DATA, _EOF, _EXT_SEGMENT, _START_SEGMENT, _EXT_LINEAR, _START_LINEAR = range(6)


@dataclass(frozen=True)
class HexSegment:
    address: int
    data: bytes


def looks_like_hex(head: bytes) -> bool:
    """Whether a file starts like Intel HEX (a ':' record of hex digits)."""
    line = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0].rstrip(b"\r")
    return (
        len(line) >= 11
        and line[:1] == b":"
        and all(c in b"0123456789abcdefABCDEF" for c in line[1:])
    )


def _record(line: bytes, path: str, number: int) -> bytes:
    """The decoded bytes of one record, with its length and checksum verified."""
    if line[:1] != b":":
        raise InputError("not an Intel HEX record (no ':')", path=path, line=number)
    try:
        record = binascii.unhexlify(line[1:])
    except (binascii.Error, ValueError):
        raise InputError(
            "not an Intel HEX record (bad hex digits)", path=path, line=number
        ) from None
    if len(record) < 5 or len(record) != record[0] + 5:
        raise InputError("Intel HEX record length does not match", path=path, line=number)
    if sum(record) & 0xFF:
        raise InputError("Intel HEX record checksum mismatch", path=path, line=number)
    return record


def _base(record: bytes, path: str, number: int) -> int | None:
    """The new address base of an extended-address record; None for start-address records."""
    kind = record[3]
    if kind in (_EXT_SEGMENT, _EXT_LINEAR) and record[0] == 2:
        value = record[4] << 8 | record[5]
        return value << 4 if kind == _EXT_SEGMENT else value << 16
    if kind in (_START_SEGMENT, _START_LINEAR) and record[0] == 4:
        return None
    raise InputError(f"bad or unknown Intel HEX record (type {kind:02X})", path=path, line=number)


def parse_intel_hex(text: bytes, path: str) -> list[HexSegment]:
    """Segments of an Intel HEX file, in address order; InputError (with the line) if corrupt.

    A well-formed file takes the fast path (all digits decoded at once, records walked in the
    decoded bytes); anything unusual is parsed again line by line for a precise error.
    """
    runs = _fast_runs(text)
    if runs is None:
        runs = _checked_runs(text, path)
    return _merge(runs, path)


_LAYOUT = b":\r\n \t"


def _decode(text: bytes) -> tuple[bytes, int] | None:
    """All record bytes decoded at once, and the number of records (lines starting with ':')."""
    if text.translate(None, b"0123456789abcdefABCDEF" + _LAYOUT):
        return None
    body = text.replace(b"\r\n", b"\n").strip(b" \t\n")
    colons = body.count(b":")
    if not body.startswith(b":") or body.count(b"\n:") + 1 != colons:
        return None
    try:
        return binascii.unhexlify(body.translate(None, _LAYOUT)), colons
    except (binascii.Error, ValueError):
        return None


def _fast_runs(text: bytes) -> list[tuple[int, list[bytes]]] | None:
    """Runs of a file whose every line is one whole record, or None to take the careful path."""
    decoded = _decode(text)
    if decoded is None:
        return None
    buf, colons = decoded
    runs: list[tuple[int, list[bytes]]] = []
    chunks: list[bytes] = []
    start = end = -1
    base = 0
    i = records = eof = 0
    size = len(buf)
    while i < size:
        n = buf[i]
        stop = i + n + 5
        if stop > size or sum(buf[i:stop]) & 0xFF:
            return None
        records += 1
        kind = buf[i + 3]
        if kind == _DATA:
            address = base + (buf[i + 1] << 8 | buf[i + 2])
            if address != end:
                if chunks:
                    runs.append((start, chunks))
                chunks = []
                start = end = address
            chunks.append(buf[i + 4 : stop - 1])
            end += n
        elif kind == _EOF:
            eof = stop
            break
        elif kind in (_EXT_SEGMENT, _EXT_LINEAR) and n == 2:
            value = buf[i + 4] << 8 | buf[i + 5]
            base = value << 4 if kind == _EXT_SEGMENT else value << 16
        elif kind not in (_START_SEGMENT, _START_LINEAR) or n != 4:
            return None
        i = stop
    if eof != size or records != colons:
        return None  # no end-of-file record, data after it, or a line holding two records
    if chunks:
        runs.append((start, chunks))
    return runs


def _checked_runs(text: bytes, path: str) -> list[tuple[int, list[bytes]]]:
    """Runs of the file, record by record, with the line of the first problem."""
    runs: list[tuple[int, list[bytes]]] = []
    chunks: list[bytes] = []
    start = end = -1
    base = 0
    eof_line = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if eof_line:
            raise InputError("data after the end-of-file record", path=path, line=number)
        record = _record(line, path, number)
        kind = record[3]
        if kind == _DATA:
            address = base + (record[1] << 8 | record[2])
            if address != end:
                if chunks:
                    runs.append((start, chunks))
                chunks = []
                start = end = address
            chunks.append(record[4:-1])
            end += record[0]
        elif kind == _EOF:
            eof_line = number
        else:
            new_base = _base(record, path, number)
            base = base if new_base is None else new_base
    if chunks:
        runs.append((start, chunks))
    if not eof_line:
        raise InputError("no end-of-file record (truncated Intel HEX?)", path=path)
    return runs


def _merge(runs: list[tuple[int, list[bytes]]], path: str) -> list[HexSegment]:
    """Sort runs by address, join adjacent ones, refuse overlapping data."""
    runs.sort(key=lambda run: run[0])
    merged: list[tuple[int, list[bytes], int]] = []
    for start, chunks in runs:
        length = sum(len(c) for c in chunks)
        if merged and start < merged[-1][2]:
            raise InputError(f"Intel HEX data overlaps at address 0x{start:08X}", path=path)
        if merged and start == merged[-1][2]:
            prev_start, prev_chunks, prev_end = merged[-1]
            merged[-1] = (prev_start, prev_chunks + chunks, prev_end + length)
        else:
            merged.append((start, chunks, start + length))
    return [HexSegment(start, b"".join(chunks)) for start, chunks, _ in merged if chunks]


def lines_of_addresses(text: bytes, addresses: list[int]) -> dict[int, int]:
    """The line of the data record holding each address (to point a report at the record)."""
    wanted = sorted(set(addresses))
    found: dict[int, int] = {}
    base = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if len(line) < 11:
            continue
        kind = line[7:9]
        if kind == b"00":
            start = base + int(line[3:7], 16)
            stop = start + int(line[1:3], 16)
            for address in wanted:
                if start <= address < stop and address not in found:
                    found[address] = number
            if len(found) == len(wanted):
                break
        elif kind in (b"02", b"04"):
            value = int(line[9:13], 16)
            base = value << 4 if kind == b"02" else value << 16
    return found
