"""Intel HEX address records through both ways the reader decodes (scan/hexfile.py): the data of
every record is where `intelhex`, the reference reader, puts it.

The records are written here byte by byte (with their checksums) so that every address record
type appears: extended segment (02, base = value * 16), extended linear (04, base = value <<
16), start records (03, 05, no data), short records and records out of address order, which
the fast column-wise path hands to the careful line-by-line one.
"""

from __future__ import annotations

import io
import random

import pytest
from intelhex import IntelHex

from provguard.scan.hexfile import HexDecoder, parse_intel_hex


def record(kind: int, address: int, data: bytes) -> bytes:
    body = bytes([len(data), address >> 8, address & 0xFF, kind]) + data
    return b":" + (body + bytes([-sum(body) & 0xFF])).hex().upper().encode() + b"\n"


def oracle(text: bytes) -> list[tuple[int, bytes]]:
    """Contiguous runs of data as intelhex reads them."""
    ih = IntelHex()
    ih.loadhex(io.StringIO(text.decode()))
    return [(a, ih.tobinstr(start=a, end=b - 1)) for a, b in ih.segments()]


def ours(text: bytes) -> list[tuple[int, bytes]]:
    """The reader's segments, merged where one ends where the next begins."""
    runs: list[tuple[int, bytes]] = []
    for segment in sorted(parse_intel_hex(text, "t.hex"), key=lambda s: s.address):
        if runs and runs[-1][0] + len(runs[-1][1]) == segment.address:
            runs[-1] = (runs[-1][0], runs[-1][1] + segment.data)
        else:
            runs.append((segment.address, segment.data))
    return runs


def data_records(r: random.Random, start: int, size: int, width: int = 16) -> bytes:
    return b"".join(
        record(0, (start + i) & 0xFFFF, r.randbytes(min(width, size - i)))
        for i in range(0, size, width)
    )


def test_extended_linear_addresses_are_where_intelhex_puts_them() -> None:
    r = random.Random(1)
    text = b"".join(
        [
            record(4, 0, bytes([0x00, 0x00])),
            data_records(r, 0x0000, 256),
            record(4, 0, bytes([0x00, 0xFF])),  # 0x00FF0000: beyond 64 KiB
            data_records(r, 0xFF00, 256),  # runs up to the top of the 64 KiB page
            record(4, 0, bytes([0x10, 0x00])),  # 0x10000000 (UICR)
            data_records(r, 0x1000, 48),
            record(5, 0, bytes([0x00, 0x00, 0x01, 0x00])),
            record(1, 0, b""),
        ]
    )
    assert HexDecoder()._fast(text)  # the column-wise path
    assert ours(text) == oracle(text)


def test_extended_segment_addresses_are_where_intelhex_puts_them() -> None:
    r = random.Random(2)
    text = b"".join(
        [
            record(2, 0, bytes([0x10, 0x00])),  # base 0x10000
            data_records(r, 0x0100, 64),
            record(2, 0, bytes([0x00, 0x21])),  # base 0x210: not a multiple of 64 KiB
            data_records(r, 0x0000, 40, width=13),  # short records
            record(3, 0, bytes([0x00, 0x00, 0x01, 0x00])),
            record(1, 0, b""),
        ]
    )
    assert ours(text) == oracle(text)


@pytest.mark.parametrize("kind", [2, 4])
def test_records_out_of_order_across_address_records(kind: int) -> None:
    r = random.Random(3)
    base = bytes([0x00, 0x01]) if kind == 4 else bytes([0x10, 0x00])
    zero = bytes([0x00, 0x00])
    text = b"".join(
        [
            record(kind, 0, base),
            data_records(r, 0x0200, 32),
            record(kind, 0, zero),
            data_records(r, 0x0100, 32),
            record(kind, 0, base),
            data_records(r, 0x0000, 32),  # before the first run of the same base
            data_records(r, 0x0220, 16),  # right after it: one run
            record(1, 0, b""),
        ]
    )
    assert ours(text) == oracle(text)
