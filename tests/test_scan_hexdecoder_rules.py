"""The Intel HEX decoder (scan/hexfile.py, `HexDecoder`): where each record's data lands and how
each damaged line is named, through the fast column-wise path and the careful line-by-line one.

Records are written here byte by byte, with their checksums computed here; decoded data is
compared with `intelhex` (the reference reader) where it can read the file, and otherwise with
addresses and bytes worked out from the records the test wrote. Problems are named by the line
the test put them on.
"""

from __future__ import annotations

import io
import random

import pytest
from intelhex import IntelHex

from provguard.scan.hexfile import (
    HexDecoder,
    HexImage,
    HexProblem,
    _full_records,
    _u16,
    read_intel_hex,
)

EOF = b":00000001FF\n"
NO_EOF = HexProblem(None, "no end-of-file record: the file may be truncated", True)


def record(kind: int, address: int, data: bytes, *, count: int | None = None) -> bytes:
    """One record line; `count` overrides the byte count (the checksum stays right)."""
    size = len(data) if count is None else count
    body = bytes([size, address >> 8, address & 0xFF, kind]) + data
    return b":" + (body + bytes([-sum(body) & 0xFF])).hex().upper().encode() + b"\n"


def bad_checksum(line: bytes) -> bytes:
    """`line` (a record) with its checksum off by one."""
    checksum = int(line[-3:-1], 16)
    return line[:-3] + f"{(checksum + 1) & 0xFF:02X}".encode() + b"\n"


def data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def oracle(text: bytes) -> list[tuple[int, bytes]]:
    """Contiguous runs of data as intelhex reads them."""
    ih = IntelHex()
    ih.loadhex(io.StringIO(text.decode()))
    return [(a, ih.tobinstr(start=a, end=b - 1)) for a, b in ih.segments()]


def decoded(image: HexImage) -> list[tuple[int, bytes]]:
    return [(s.address, s.data) for s in image.segments]


def read(text: bytes) -> HexImage:
    return read_intel_hex(text, "t.hex")


# --- data records in unusual orders: every byte where intelhex puts it ---------------------------


ORDERS = {
    # a run extended upwards, then a record far below it at the address the run's length is
    "upwards-then-below": [(0x1000, 2), (0x1002, 32), (0x0020, 8)],
    # a run extended upwards, then a record below its start, not touching it
    "upwards-then-gap-below": [(0x1000, 2), (0x1002, 32), (0x0FE2, 8)],
    # a record after a gap as long as itself: not the piece below the run
    "gap-as-long-as-the-record": [(0x1000, 8), (0x1010, 16)],
    # records in reverse order, then one right after the highest: not part of the reversed run
    "reverse-then-above": [(0x1010, 8), (0x1008, 8), (0x1018, 8)],
    # the same with more pieces and a longer record on top
    "reverse-three-then-above": [(0x1010, 8), (0x1008, 8), (0x1000, 8), (0x1018, 24)],
}


@pytest.mark.parametrize("order", list(ORDERS), ids=list(ORDERS))
def test_short_records_in_any_order_are_where_intelhex_puts_them(order: str) -> None:
    text = b"".join(
        record(0, address, data(i, size)) for i, (address, size) in enumerate(ORDERS[order])
    )
    text += EOF
    image = read(text)
    assert image.problems == ()
    assert decoded(image) == oracle(text)


def test_a_reversed_range_stays_in_order_when_a_later_chunk_is_read_again() -> None:
    # A reversed range and a record-by-record range in the first chunk; the second chunk extends
    # the second range downwards, then a bad checksum sends it to the careful path: the first
    # range must still be put in address order.
    first = record(0, 0x1008, data(1, 8)) + record(0, 0x1000, data(2, 8))
    first += record(0, 0x2000, data(3, 8))
    second = record(0, 0x1FF8, data(4, 8)) + bad_checksum(record(0, 0x3000, data(5, 8))) + EOF
    decoder = HexDecoder()
    decoder.feed(first)
    decoder.feed(second)
    image = decoder.finish()
    assert image.problems == (HexProblem(5, "Intel HEX record checksum mismatch", True),)
    assert decoded(image) == [
        (0x1000, data(2, 8) + data(1, 8)),
        (0x1FF8, data(4, 8) + data(3, 8)),
    ]


def test_a_block_of_full_records_extended_downwards_then_a_bad_record() -> None:
    # Two full records are one block on the fast path, the short record below extends it
    # downwards; the bad record on line 4 makes the chunk read again line by line.
    text = record(0, 0x1000, data(1, 16)) + record(0, 0x1010, data(2, 16))
    text += record(0, 0x0FF8, data(3, 8)) + bad_checksum(record(0, 0x2000, data(4, 16))) + EOF
    image = read(text)
    assert image.problems == (HexProblem(4, "Intel HEX record checksum mismatch", True),)
    assert decoded(image) == [(0x0FF8, data(3, 8) + data(1, 16) + data(2, 16))]


@pytest.mark.parametrize("first", [0x1230, 0x0010], ids=["mid-window", "down-to-zero"])
def test_full_records_in_reverse_order_are_read_column_wise(first: int) -> None:
    # Some tools write records from the highest address down: the block is taken whole (one
    # piece in address order), not record by record, and decodes as intelhex reads it.
    count = first // 16 + 1 if first < 0x100 else 3
    pieces = [(first - 16 * i, data(i, 16)) for i in range(count)]
    block = b"".join(record(0, address, piece) for address, piece in pieces)
    low = first - 16 * (count - 1)
    in_order = b"".join(piece for _, piece in reversed(pieces))
    assert _full_records(block) == (low, in_order)
    assert decoded(read(block + EOF)) == oracle(block + EOF) == [(low, in_order)]


def test_a_16_bit_address_as_little_endian_bytes() -> None:
    assert _u16(0) == b"\x00\x00"
    assert _u16(0x1220) == b"\x20\x12"
    assert _u16(0xFFFF) == b"\xff\xff"
    assert _u16(-16) == b""
    assert _u16(0x10000) == b""


# --- damaged lines: each named by its line, the records around them kept ------------------------


def test_a_record_whose_byte_count_disagrees_with_its_length_is_named() -> None:
    # Line 2 says 4 data bytes but holds 3 (its checksum is right for what it holds).
    text = record(0, 0x0100, data(1, 8)) + record(0, 0x0108, data(2, 3), count=4)
    text += b":0000\n" + record(0, 0x0200, data(3, 8)) + b":\n" + EOF
    image = read(text)
    message = "Intel HEX record length does not match"
    assert image.problems == (
        HexProblem(2, message, True),
        HexProblem(3, message, True),
        HexProblem(5, message, True),
    )
    assert decoded(image) == [(0x0100, data(1, 8)), (0x0200, data(3, 8))]


def test_a_record_with_bad_hex_digits_is_named() -> None:
    line = record(0, 0x0108, data(2, 8))
    text = record(0, 0x0100, data(1, 8)) + line[:5] + b"ZZ" + line[7:] + EOF
    image = read(text)
    assert image.problems == (HexProblem(2, "not an Intel HEX record (bad hex digits)", True),)
    assert decoded(image) == [(0x0100, data(1, 8))]


def test_text_lines_blank_lines_and_blank_first_line_are_counted() -> None:
    # Line 1 is empty, line 3 is a note, line 4 holds only spaces: the records after them are
    # still read, and the note is named by its line.
    text = b"\n" + record(0, 0x0100, data(1, 8)) + b"; build 7\n" + b"   \n"
    text += record(0, 0x0108, data(2, 8)) + EOF
    image = read(text)
    assert image.problems == (HexProblem(3, "not an Intel HEX record: searched as text", False),)
    assert decoded(image) == [(0x0100, data(1, 8) + data(2, 8))]


def test_records_after_the_end_of_file_record_are_named_and_not_decoded() -> None:
    # Line 2 ends the file; the two full records after it (a block the fast path would read
    # column-wise) are damage, not data.
    text = record(0, 0x0100, data(1, 8)) + EOF
    text += record(0, 0x0200, data(2, 16)) + record(0, 0x0210, data(3, 16))
    image = read(text)
    after = "record after the end-of-file record"
    assert image.problems == (HexProblem(3, after, True), HexProblem(4, after, True))
    assert decoded(image) == [(0x0100, data(1, 8))]


def test_a_bad_record_before_a_block_of_full_records_is_named() -> None:
    text = bad_checksum(record(0, 0x0100, data(1, 8)))
    text += record(0, 0x0200, data(2, 16)) + record(0, 0x0210, data(3, 16)) + EOF
    image = read(text)
    assert image.problems == (HexProblem(1, "Intel HEX record checksum mismatch", True),)
    assert decoded(image) == [(0x0200, data(2, 16) + data(3, 16))]


BAD_KINDS = {
    "unknown-type-2-bytes": (6, b"\x12\x34"),
    "unknown-type-4-bytes": (6, b"\x12\x34\x56\x78"),
    "extended-linear-3-bytes": (4, b"\x12\x34\x56"),
    "extended-segment-1-byte": (2, b"\x12"),
    "start-segment-2-bytes": (3, b"\x12\x34"),
    "start-linear-5-bytes": (5, b"\x12\x34\x56\x78\x9a"),
}


@pytest.mark.parametrize("name", list(BAD_KINDS), ids=list(BAD_KINDS))
def test_a_bad_or_unknown_record_type_is_named_and_changes_no_address(name: str) -> None:
    # Line 3 is not a record this reader knows (an unknown type, or an address or start record
    # of the wrong length): it is reported, and the data after it stays under base 0x10000.
    kind, body = BAD_KINDS[name]
    text = record(4, 0, b"\x00\x01") + record(0, 0x0000, data(1, 8)) + record(kind, 0, body)
    text += record(0, 0x0008, data(2, 8)) + EOF
    image = read(text)
    assert image.problems == (
        HexProblem(3, f"bad or unknown Intel HEX record (type {kind:02X})", True),
    )
    assert decoded(image) == [(0x10000, data(1, 8) + data(2, 8))]


def test_a_file_without_an_end_of_file_record_may_be_truncated() -> None:
    text = record(0, 0x0100, data(1, 16)) + record(0, 0x0110, data(2, 16))
    image = read(text)
    assert image.problems == (NO_EOF,)
    assert decoded(image) == oracle(text + EOF)
