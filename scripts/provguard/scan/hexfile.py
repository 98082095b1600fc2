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


_RECORD_LINE = re.compile(rb"[ \t]*:[0-9A-Fa-f]{10,}[ \t]*")


def looks_like_hex(head: bytes) -> bool:
    """Whether a file starts like Intel HEX: one of its first lines is a ':' record (any line
    ending, any whitespace around the record)."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    lines = [line for line in re.split(rb"\r\n|\r|\n", head)[:8] if line.strip()]
    if lines and len(head) >= 256 and not head.endswith((b"\r", b"\n")):
        lines = lines[:-1]  # the last line of a head may be cut short
    return any(_RECORD_LINE.fullmatch(line) for line in lines[:6])


@dataclass(frozen=True)
class HexProblem:
    """A line that is not a valid record, or a file-level problem (`line` None)."""

    line: int | None
    message: str
    record: bool  # True: a damaged record (data lost); False: text that is no record at all


@dataclass(frozen=True)
class HexImage:
    """What an Intel HEX file holds: the data of every record that parses, and its problems."""

    segments: tuple[HexSegment, ...]
    problems: tuple[HexProblem, ...]


def read_intel_hex(text: bytes, path: str) -> HexImage:
    """Every record that parses (any line ending, whitespace around records), in address order,
    plus each line that is not a record. Never raises for damaged input: the caller decides."""
    runs = _fast_runs(text)
    if runs is not None:
        return _merge(runs, [])
    return _careful(text)


def parse_intel_hex(text: bytes, path: str) -> list[HexSegment]:
    """Segments of a well-formed Intel HEX file; InputError naming the first bad line if not."""
    image = read_intel_hex(text, path)
    if image.problems:
        first = image.problems[0]
        raise InputError(first.message, path=path, line=first.line)
    return list(image.segments)


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


_LINES = re.compile(rb"[^\r\n]+")


def _careful(text: bytes) -> HexImage:
    """Record by record, keeping going past damage. Data is appended to one pool in file order
    with run boundaries in compact arrays: memory stays near the data size in any record order."""
    pool = bytearray()
    starts, offsets, lengths = array("Q"), array("Q"), array("Q")
    problems: list[HexProblem] = []
    base = 0
    end = -1
    eof_line = 0
    number = 1
    position = 0
    for match in _LINES.finditer(text):
        # line numbers count every line ending: \r\n, \r or \n
        gap = text[position : match.start()]
        number += gap.count(b"\n") + gap.count(b"\r") - gap.count(b"\r\n")
        position = match.start()
        line = match.group().strip()
        if not line:
            continue
        if line[:1] != b":":
            problems.append(HexProblem(number, "not an Intel HEX record: searched as text", False))
            continue
        record, message = _decode(line)
        if record is None:
            problems.append(HexProblem(number, message, True))
            continue
        if eof_line:
            problems.append(HexProblem(number, "record after the end-of-file record", True))
            continue
        kind = record[3]
        if kind == _DATA:
            address = base + (record[1] << 8 | record[2])
            if address != end or not starts:
                starts.append(address)
                offsets.append(len(pool))
                lengths.append(0)
            pool += record[4:-1]
            lengths[-1] += record[0]
            end = address + record[0]
        elif kind == _EOF:
            eof_line = number
        elif kind in (_EXT_SEGMENT, _EXT_LINEAR) and record[0] == 2:
            value = record[4] << 8 | record[5]
            base = value << 4 if kind == _EXT_SEGMENT else value << 16
        elif kind not in (_START_SEGMENT, _START_LINEAR) or record[0] != 4:
            problems.append(
                HexProblem(number, f"bad or unknown Intel HEX record (type {kind:02X})", True)
            )
    if not eof_line:
        problems.append(HexProblem(None, "no end-of-file record: the file may be truncated", True))
    runs = _runs_of_pool(pool, starts, offsets, lengths)
    del pool
    return _merge(runs, problems)


def _decode(line: bytes) -> tuple[bytes | None, str]:
    try:
        record = binascii.unhexlify(line[1:])
    except (binascii.Error, ValueError):
        return None, "not an Intel HEX record (bad hex digits)"
    if len(record) < 5 or len(record) != record[0] + 5:
        return None, "Intel HEX record length does not match"
    if sum(record) & 0xFF:
        return None, "Intel HEX record checksum mismatch"
    return record, ""


def _runs_of_pool(
    pool: bytearray, starts: array[int], offsets: array[int], lengths: array[int]
) -> list[tuple[int, list[bytes]]]:
    """Runs in address order; sorted only when the file was not (reversed, shuffled)."""
    count = len(starts)
    ascending = all(starts[i] < starts[i + 1] for i in range(count - 1))
    order: range | list[int] = (
        range(count) if ascending else sorted(range(count), key=starts.__getitem__)
    )
    view = memoryview(pool)
    runs: list[tuple[int, list[bytes]]] = []
    group: bytearray | None = None
    group_start = group_end = -1
    for i in order:
        start, length, offset = starts[i], lengths[i], offsets[i]
        if group is not None and start == group_end:
            group += view[offset : offset + length]
            group_end += length
            continue
        if group is not None:
            runs.append((group_start, [bytes(group)]))
        group = bytearray(view[offset : offset + length])
        group_start, group_end = start, start + length
    if group is not None:
        runs.append((group_start, [bytes(group)]))
    view.release()
    return runs


def _merge(runs: list[tuple[int, list[bytes]]], problems: list[HexProblem]) -> HexImage:
    """Sort runs by address and join adjacent ones; overlapping data is kept (each run is
    searched) and reported."""
    runs.sort(key=lambda run: run[0])
    merged: list[tuple[int, list[bytes], int]] = []
    for start, chunks in runs:
        length = sum(len(c) for c in chunks)
        if merged and start < merged[-1][2]:
            problems.append(
                HexProblem(None, f"Intel HEX data overlaps at address 0x{start:08X}", True)
            )
        if merged and start == merged[-1][2]:
            merged[-1][1].extend(chunks)  # in place: joining many runs stays linear
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + length)
        else:
            merged.append((start, list(chunks), start + length))
    segments = []
    while merged:  # consume from the end so each run's chunks are freed once joined
        start, chunks, _ = merged.pop()
        if chunks:
            segments.append(HexSegment(start, b"".join(chunks)))
        chunks.clear()
    segments.reverse()
    return HexImage(tuple(segments), tuple(problems))


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
