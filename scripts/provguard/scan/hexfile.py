"""A fast, strict Intel HEX reader (the tests compare it with `intelhex`, the reference reader).

`intelhex` keeps a dict entry per byte: about 0.8 s for a 1 MiB merged.hex. This reader checks
every record's length and checksum too, but handles runs of full data records column-wise with
strided slices (about 35 ms for the same file); anything unusual is read again line by line, so
an error names its line.
"""

from __future__ import annotations

import binascii
import re
import sys
from array import array
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
_HEX_DIGITS = b"0123456789abcdefABCDEF"
#: Two or more consecutive 16-byte data records (objcopy's output is almost all of these).
_FULL_RECORDS = re.compile(rb"(?::10[0-9A-Fa-f]{4}00[0-9A-Fa-f]{34}\n){2,}")
_FULL = 21  # bytes in a 16-byte data record: length, address (2), type, data (16), checksum


class _Runs:
    """Contiguous data accumulated in record order."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, list[bytes]]] = []
        self.chunks: list[bytes] = []
        self.start = self.end = -1

    def add(self, address: int, data: bytes) -> None:
        if address != self.end:
            self.close()
            self.start = self.end = address
        self.chunks.append(data)
        self.end += len(data)

    def close(self) -> None:
        if self.chunks:
            self.runs.append((self.start, self.chunks))
        self.chunks = []


def _fast_runs(text: bytes) -> list[tuple[int, list[bytes]]] | None:
    """Runs of a file whose every line is one whole record, or None to take the careful path.

    Runs of full 16-byte data records are checked and copied column-wise with strided slices
    (checksums summed in 16-bit lanes of one big integer); other records one by one.
    """
    if text.translate(None, _HEX_DIGITS + _LAYOUT):
        return None
    body = text.replace(b"\r\n", b"\n").strip(b" \t\n") + b"\n"
    colons = body.count(b":")
    if not body.startswith(b":") or body.count(b"\n:") + 1 != colons:
        return None
    runs = _Runs()
    state: tuple[int, int, bool] | None = (0, 0, False)  # base, records, end-of-file seen
    position = 0
    for match in _FULL_RECORDS.finditer(body):
        state = _records(body[position : match.start()], runs, state)
        if state is None or state[2]:
            return None
        base, records, _ = state
        full = _full_records(body[match.start() : match.end()])
        if full is None:
            return None
        runs.add(base + full[0], full[1])
        state = (base, records + len(full[1]) // 16, False)
        position = match.end()
    state = _records(body[position:], runs, state)
    if state is None or not state[2] or state[1] != colons:
        return None
    runs.close()
    return runs.runs


def _records(
    text: bytes, runs: _Runs, state: tuple[int, int, bool] | None
) -> tuple[int, int, bool] | None:
    """Walk records one by one; the new (base, records, eof) or None when anything is off."""
    if state is None or not text:
        return state
    base, records, eof = state
    try:
        buf = binascii.unhexlify(text.translate(None, _LAYOUT))
    except (binascii.Error, ValueError):
        return None
    i, size = 0, len(buf)
    while i < size:
        n = buf[i]
        stop = i + n + 5
        if eof or stop > size or sum(buf[i:stop]) & 0xFF:
            return None  # a bad checksum or length, or a record after end-of-file
        records += 1
        kind = buf[i + 3]
        if kind == _DATA:
            runs.add(base + (buf[i + 1] << 8 | buf[i + 2]), buf[i + 4 : stop - 1])
        elif kind == _EOF:
            eof = True
        elif kind in (_EXT_SEGMENT, _EXT_LINEAR) and n == 2:
            value = buf[i + 4] << 8 | buf[i + 5]
            base = value << 4 if kind == _EXT_SEGMENT else value << 16
        elif kind not in (_START_SEGMENT, _START_LINEAR) or n != 4:
            return None
        i = stop
    return base, records, eof


def _lanes(column: bytes) -> int:
    """The bytes of `column` as 16-bit little-endian lanes of one integer."""
    spread = bytearray(2 * len(column))
    spread[0::2] = column
    return int.from_bytes(spread, "little")


def _full_records(text: bytes) -> tuple[int, bytes] | None:
    """(first address, data) of consecutive full data records at consecutive addresses."""
    try:
        buf = binascii.unhexlify(text.translate(None, _LAYOUT))
    except (binascii.Error, ValueError):
        return None
    count = len(buf) // _FULL
    total = sum(_lanes(buf[column::_FULL]) for column in range(_FULL))
    if total.to_bytes(2 * count + 2, "little")[0 : 2 * count : 2] != bytes(count):
        return None  # some record's checksum is wrong
    first = buf[1] << 8 | buf[2]
    if first + 16 * count > 0x10000:
        return None  # wraps within the 64 KiB window: let the careful path judge
    addresses = bytearray(2 * count)
    addresses[0::2] = buf[2::_FULL]
    addresses[1::2] = buf[1::_FULL]
    expected = array("H", range(first, first + 16 * count, 16))
    if sys.byteorder != "little":
        expected.byteswap()
    if addresses != expected.tobytes():
        return None  # not consecutive
    data = bytearray(16 * count)
    for column in range(16):
        data[column::16] = buf[4 + column :: _FULL]
    return first, bytes(data)


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
