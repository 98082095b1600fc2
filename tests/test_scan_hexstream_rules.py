"""Intel HEX text read in pieces (scan/hexfile.py): cut at line ends, read from a stream block
by block, records in any order, full records checked column-wise, the HEX sniffing of a head.

Records are written here byte by byte with their checksums; decoded data is compared with what
`intelhex` (the reference reader) makes of the same records, and line numbers are counted here
as the text is written.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from intelhex import IntelHex

from provguard.cli import main
from provguard.scan import hexfile
from provguard.scan.hexfile import (
    CHUNK,
    HEAD,
    HexDecoder,
    HexProblem,
    chunks_of,
    lines_of_addresses,
    looks_like_hex,
    read_intel_hex,
    read_intel_hex_stream,
)
from tests import factories as f

TEXT_LINE = "not an Intel HEX record: searched as text"
CHECKSUM = "Intel HEX record checksum mismatch"


def record(kind: int, address: int, data: bytes, checksum: int | None = None) -> bytes:
    body = bytes([len(data), address >> 8 & 0xFF, address & 0xFF, kind]) + data
    check = -sum(body) & 0xFF if checksum is None else checksum
    return b":" + (body + bytes([check])).hex().upper().encode() + b"\n"


EOF = record(1, 0, b"")


def oracle(text: bytes) -> list[tuple[int, bytes]]:
    """Contiguous ranges of data as intelhex reads them (any line end)."""
    lf = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    ih = IntelHex()
    ih.loadhex(io.StringIO(lf.decode()))
    return [(a, ih.tobinstr(start=a, end=b - 1)) for a, b in ih.segments()]


def segments(image: hexfile.HexImage) -> list[tuple[int, bytes]]:
    return [(s.address, s.data) for s in image.segments]


def ending(text: bytes, newline: bytes) -> bytes:
    return text.replace(b"\n", newline)


NEWLINES = {"LF": b"\n", "CRLF": b"\r\n", "CR": b"\r"}


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (a loop that no longer advances)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- text cut into pieces of whole lines --------------------------------------------------------


def check_pieces(text: bytes, size: int) -> list[bytes]:
    """`chunks_of` pieces, checked against the lines of `text` (bytes.splitlines: LF, CR LF or
    CR): whole lines, none empty, at most `size` bytes unless a single line is longer, and as
    few as that allows (a piece and the line after it would not fit in `size`)."""
    pieces = list(itertools.islice(chunks_of(text, size), 4 * len(text) + 4))
    assert b"".join(pieces) == text
    assert all(pieces)
    lines = text.splitlines(keepends=True)
    ends = set(itertools.accumulate(len(line) for line in lines))
    at = 0
    for piece in pieces:
        at += len(piece)
        assert at in ends  # a piece ends where a line ends
        first = piece.splitlines(keepends=True)[0]
        assert len(piece) <= size or len(first) > size
        if at < len(text):
            following = text[at:].splitlines(keepends=True)[0]
            assert len(piece) + len(following) > size  # it could not take one more line
    return pieces


@pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES.keys())
@pytest.mark.parametrize(
    ("template", "size"),
    [
        (b"aaaa\nbb\ncccccc\nd\n", 8),
        (b"aaaa\nbb\ncccccc\nd\n", 9),
        (b"a\nb\nc\nd\ne\nf\n", 3),
        (b"ab\nxxxxxxxxxx\ncd\n", 5),  # a line longer than a piece after a short one
        (b"\nabcdefgh\nij\n", 4),  # a blank first line
        (b"ab\ncd", 5),  # fits exactly, no line end at the end
        (b"ab\ncd", 4),
        (b"ab\ncd\n", 6),
    ],
)
def test_text_is_cut_into_as_few_pieces_of_whole_lines_as_fit(
    template: bytes, size: int, newline: bytes
) -> None:
    check_pieces(ending(template, newline), size)


def test_pieces_of_whole_lines_exactly_where_lines_end() -> None:
    # The pieces of this text are worked out by hand: each takes the lines that fit in 8 bytes.
    assert check_pieces(b"aaaa\nbb\ncccccc\nd\n", 8) == [b"aaaa\nbb\n", b"cccccc\n", b"d\n"]
    assert check_pieces(b"aa\r\nbb\r\ncccc\r\nd\r\n", 8) == [b"aa\r\nbb\r\n", b"cccc\r\n", b"d\r\n"]
    assert check_pieces(b"aaaa\rbb\rcccccc\rd\r", 8) == [b"aaaa\rbb\r", b"cccccc\r", b"d\r"]
    assert check_pieces(b"ab\ncd", 5) == [b"ab\ncd"]


def records_of(start: int, data: bytes) -> tuple[list[bytes], list[int | None]]:
    """16-byte data records of `data` from `start` (a multiple of 16), with an extended linear
    address record first and wherever 64 KiB are crossed; and each line's address (None for
    an address record)."""
    lines: list[bytes] = []
    where: list[int | None] = []
    for at in range(0, len(data), 16):
        address = start + at
        if at == 0 or address & 0xFFFF == 0:
            lines.append(record(4, 0, (address >> 16).to_bytes(2, "big")))
            where.append(None)
        lines.append(record(0, address & 0xFFFF, data[at : at + 16]))
        where.append(address)
    return lines, where


@pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES.keys())
def test_a_text_longer_than_a_chunk_decodes_like_intelhex_and_names_its_lines(
    newline: bytes,
) -> None:
    # About 1.3 chunks of records, with a record whose checksum is wrong after the first cut:
    # every chunk is whole lines, so no record is damaged by the cut, and the damaged one is
    # named by its line in the file.
    r = random.Random(7)
    data = r.randbytes((CHUNK * 13 // 10) // 44 * 16)
    lines, where = records_of(0x0001_0000, data)
    damaged = len(lines) - 40
    lost = where[damaged]
    assert lost is not None
    assert len(b"".join(lines[:damaged])) > CHUNK
    line = lines[damaged]
    lines[damaged] = line[:-3] + b"%02X\n" % (int(line[-3:-1], 16) ^ 1)
    text = ending(b"".join(lines) + EOF, newline)
    image = read_intel_hex(text, "big.hex")
    assert image.problems == (HexProblem(damaged + 1, CHECKSUM, True),)
    good = b"".join(lines[:damaged] + lines[damaged + 1 :]) + EOF
    assert segments(image) == oracle(good)
    assert oracle(good) == [
        (0x0001_0000, data[: lost - 0x0001_0000]),
        (lost + 16, data[lost + 16 - 0x0001_0000 :]),
    ]


# --- a file read from a stream, block by block --------------------------------------------------


def sample_file(newline: bytes) -> tuple[bytes, bytes, list[HexProblem]]:
    """A HEX text with address records, short and full records, a line that is no record and
    a damaged record; its good records alone; and its problems, lines counted here."""
    r = random.Random(11)
    lines: list[bytes] = []
    good: list[bytes] = []
    problems: list[HexProblem] = []

    def add(line: bytes, *, ok: bool = True, problem: tuple[str, bool] | None = None) -> None:
        lines.append(line)
        if ok:
            good.append(line)
        if problem is not None:
            problems.append(HexProblem(len(lines), *problem))

    add(record(4, 0, b"\x00\x01"))
    for address in range(0x0000, 0x00C0, 16):
        add(record(0, address, r.randbytes(16)))
    add(b"; built by hand\n", ok=False, problem=(TEXT_LINE, False))
    add(record(0, 0x00C0, r.randbytes(7)))
    add(record(0, 0x0200, r.randbytes(16), checksum=0x00), ok=False, problem=(CHECKSUM, True))
    add(record(2, 0, b"\x20\x00"))  # base 0x20000
    for address in range(0x0300, 0x0100, -16):  # reverse address order
        add(record(0, address - 16, r.randbytes(16)))
    add(b"\n", ok=False)  # a blank line
    add(record(0, 0x0400, r.randbytes(32)))
    add(EOF)
    return (
        ending(b"".join(lines), newline),
        ending(b"".join(good), newline),
        problems,
    )


@pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES.keys())
def test_a_stream_read_in_blocks_of_any_size_decodes_the_same_and_names_the_same_lines(
    newline: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the block size, a CR LF split between two blocks is one line end, and the
    # decoder is only given whole lines: never more than a block and the line it ended in.
    text, good, problems = sample_file(newline)
    longest = max(len(line) for line in text.splitlines(keepends=True))
    fed: list[int] = []
    feed = HexDecoder.feed

    def counting(self: HexDecoder, chunk: bytes) -> None:
        fed.append(len(chunk))
        feed(self, chunk)

    monkeypatch.setattr(HexDecoder, "feed", counting)
    expected = oracle(good)
    for size in [*range(2, 90), 100, 160, 300, 1000]:
        fed.clear()
        image = read_intel_hex_stream(io.BytesIO(text), size)
        assert (size, segments(image)) == (size, expected)
        assert (size, list(image.problems)) == (size, problems)
        assert sum(fed) == len(text)
        assert max(fed) <= size + longest, size


@pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES.keys())
@pytest.mark.parametrize("where", ["middle", "end"])
def test_a_line_of_more_than_64_blocks_is_decoded_as_it_is(newline: bytes, where: str) -> None:
    # One line with no line end for more than 64 blocks (a blob pasted into the file) is handed
    # to the decoder as it is: it is named by its line, the records around it are decoded, and
    # nothing that is not in the file is read.
    size = 4
    r = random.Random(5)
    head = record(0, 0x0000, r.randbytes(16)) + record(0, 0x0010, r.randbytes(16))
    tail = record(0, 0x0020, r.randbytes(16)) + EOF
    if where == "middle":
        blob = b"z" * (70 * size + 3) + newline
        text = ending(head, newline) + blob + ending(tail, newline)
        good = head + tail
    else:  # the blob ends the file, its last piece read exactly when it is cut
        start = len(ending(head + tail, newline))
        blob = b"z" * (65 * size - start % size)
        text = ending(head + tail, newline) + blob
        good = head + tail
    image = read_intel_hex_stream(io.BytesIO(text), size)
    assert segments(image) == oracle(good)
    line = 3 if where == "middle" else 5
    if where == "end":
        assert list(image.problems) == [HexProblem(line, TEXT_LINE, False)]
    else:
        assert image.problems
        assert set(image.problems) == {HexProblem(line, TEXT_LINE, False)}


def test_a_key_across_the_first_chunk_cut_of_a_streamed_hex_is_found_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The scanner reads a HEX file in chunks of CHUNK bytes: a key whose records straddle the
    # first cut is decoded whole and reported at its flash address.
    key = f.ec_key()
    der = f.key_der(key)
    r = random.Random(3)
    start = 0x0002_0000
    data = bytearray(r.randbytes(CHUNK // 44 * 16 + 200 * 16))
    lines, where = records_of(start, bytes(data))
    ends = list(itertools.accumulate(len(line) for line in lines))
    cut = next(i for i, end in enumerate(ends) if end > CHUNK)  # the line the first block cuts
    first = where[cut - 2]
    assert first is not None
    address = first + 5  # from two records before the cut, not aligned
    data[address - start : address - start + len(der)] = der
    lines, _ = records_of(start, bytes(data))
    text = b"".join(lines) + EOF
    after = where[cut + 1]
    assert after is not None
    assert address + len(der) > after + 16  # the key has records on both sides of the cut
    assert text.find(lines[cut - 1]) < CHUNK < text.find(lines[cut + 1])
    path = tmp_path / "merged.hex"
    path.write_bytes(text)
    assert main(["scan", "--format", "json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert [(x["address"], x["length"], x["key"]) for x in report["findings"]] == [
        (address, len(der), "SHA256:" + hashlib.sha256(spki).hexdigest())
    ]
    assert report["unchecked"] == []


# --- records in another order -------------------------------------------------------------------


@pytest.mark.parametrize("top", [1, 2, 3, 5, 15, 16])
def test_records_written_from_the_top_address_down_decode_like_intelhex(top: int) -> None:
    # Some tools write records in reverse address order; the first (highest) record is the
    # image's short tail here.
    r = random.Random(top)
    lines = [record(0, 0x1000 + 16 * 8, r.randbytes(top))]
    lines += [record(0, 0x1000 + 16 * i, r.randbytes(16)) for i in reversed(range(8))]
    text = b"".join(lines) + EOF
    with deadline(10):
        image = read_intel_hex(text, "down.hex")
    assert image.problems == ()
    assert segments(image) == oracle(text)


def test_ranges_written_middle_first_then_low_then_high_are_in_address_order() -> None:
    r = random.Random(4)
    text = b"".join(
        record(0, start + i, r.randbytes(16))
        for start in (0x2000, 0x1000, 0x3000)
        for i in range(0, 32, 16)
    )
    text += EOF
    image = read_intel_hex(text, "t.hex")
    assert image.problems == ()
    assert segments(image) == oracle(text)


@pytest.mark.parametrize(
    "layout",
    [
        [(0x9000, 1), (0x0000, 64)],  # a one-byte value at a high address comes first
        [(0x0100, 16), (0x0000, 0x100)],  # the upper block first, then the range below it
        [(0x0100, 16), (0x0000, 0x100), (0x0110, 16)],
    ],
)
def test_ranges_written_out_of_order_decode_like_intelhex(layout: list[tuple[int, int]]) -> None:
    r = random.Random(9)
    text = b"".join(
        record(0, start + i, r.randbytes(min(16, size - i)))
        for start, size in layout
        for i in range(0, size, 16)
    )
    text += EOF
    image = read_intel_hex(text, "t.hex")
    assert image.problems == ()
    assert segments(image) == oracle(text)


def test_overlapping_records_are_reported_as_unchecked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = random.Random(6)
    text = record(0, 0x0100, r.randbytes(16)) + record(0, 0x0108, r.randbytes(16)) + EOF
    image = read_intel_hex(text, "t.hex")
    message = "Intel HEX data overlaps at address 0x00000108"
    assert image.problems == (HexProblem(None, message, True),)
    path = tmp_path / "overlap.hex"
    path.write_bytes(text)
    main(["scan", "--format", "json", str(path)])
    report = json.loads(capsys.readouterr().out)
    reason = f"{message}; the rest of the file was searched as records and as text"
    assert report["unchecked"] == [
        {"path": str(path), "reason": reason, "line": None, "offset": None}
    ]


# --- checksums of runs of full records ---------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        list(range(8)),  # a tool that writes 00 for every checksum
        [1],  # two records, the second one's checksum 00
        [7],
        [3, 4],
    ],
    ids=["all", "second-of-two", "last", "middle"],
)
def test_a_checksum_written_as_00_over_blank_data_is_reported_by_line(bad: list[int]) -> None:
    # Records of zero bytes at low addresses add up to less than 256: a checksum of 00 is wrong
    # (the right one is 0x100 minus that sum).
    count = 2 if bad == [1] else 8
    lines = [
        record(0, 16 * i, bytes(16), checksum=0x00 if i in bad else None) for i in range(count)
    ]
    assert all(
        int(lines[i][-3:-1], 16) != -sum(bytes.fromhex(lines[i][1:-3].decode())) & 0xFF for i in bad
    )
    text = b"".join(lines) + EOF
    image = read_intel_hex(text, "t.hex")
    assert list(image.problems) == [HexProblem(i + 1, CHECKSUM, True) for i in bad]
    good = b"".join(line for i, line in enumerate(lines) if i not in bad) + EOF
    assert segments(image) == oracle(good)


# --- is it Intel HEX? ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b":00000001FF\n",  # an empty image: only its end-of-file record
        b":00000001FF",  # ... without a line end
        b"\xef\xbb\xbf:00000001FF\r\n",  # ... with the BOM some Windows tools write
        b"; generated\n:00000001FF",
        b"\xef\xbb\xbf:020000040000FA\r\n:10000000" + b"00" * 16 + b"F0\r\n",
    ],
)
def test_a_short_head_with_a_record_is_intel_hex(head: bytes) -> None:
    assert looks_like_hex(head)


@pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES.keys())
def test_the_last_line_of_a_long_head_counts_when_whole_not_when_cut(newline: bytes) -> None:
    notes = b"".join(b"; note %d " % i + b"-" * 60 + b"\n" for i in range(4))
    whole = ending(notes + b":00000001FF\n", newline)
    assert len(whole) >= 256
    assert looks_like_hex(whole)  # the head ends with a line end: its last line is whole
    cut = ending(notes + b":00000001FF\n", newline) + b":1000000"
    assert looks_like_hex(cut)  # the record before the cut line counts
    # A head of HEAD bytes may end inside a line: that line does not count...
    last = b":10000000000000000000"
    padded = ending(notes, newline) + b" " * (HEAD - len(ending(notes, newline)) - len(last))
    assert len(padded + last) == HEAD
    assert not looks_like_hex(padded + last)
    # ... a shorter one is the whole file, whose last line is whole without a line end.
    assert looks_like_hex(padded[:-1] + last)


@pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES.keys())
@pytest.mark.parametrize("size", [3, 5, 7])
def test_a_record_line_of_64_blocks_less_one_is_never_cut(newline: bytes, size: int) -> None:
    # Only a line longer than 64 blocks is handed over cut: long records of 64 blocks less one
    # character, after a short record of every length that shifts where the blocks end, are
    # read whole in blocks of `size`.
    long = (64 * size - 1 - 11) // 2  # data bytes of a record 64 * size - 1 characters long
    assert len(record(0, 0, bytes(long))) == 64 * size  # with its line end
    r = random.Random(size)
    for shift in range(1, 2 * size + 1):
        text = record(0, 0x8000, r.randbytes(shift))
        text += b"".join(record(0, 0x1000 + i * long, r.randbytes(long)) for i in range(3))
        text += EOF
        image = read_intel_hex_stream(io.BytesIO(ending(text, newline)), size)
        assert (shift, image.problems) == (shift, ())
        assert segments(image) == oracle(text)


@pytest.mark.parametrize(
    "damaged",
    [b":00000004FC", record(4, 0, b"\x00\x05", checksum=0).rstrip(), b":02000004ZZ05F5"],
    ids=["no address bytes", "bad checksum", "not hex"],
)
def test_a_damaged_address_record_moves_no_line_of_the_records_after_it(damaged: bytes) -> None:
    """The decoder refuses a damaged extended address record, so the data after it stays at
    the base it had; the line of each address must follow the same rule (SARIF points there)."""
    lines = [damaged] + [record(0, at, bytes(16)).rstrip() for at in range(0, 64, 16)]
    text = b"\n".join([*lines, record(1, 0, b"").rstrip()]) + b"\n"
    # address 0x25 is in the third data record: the 4th line; 0x05_0000 + 0x25 in none
    assert lines_of_addresses(text, [0x25, 0x050025]) == {0x25: 4}
    good = [record(4, 0, b"\x00\x05").rstrip(), *lines[1:]]
    assert lines_of_addresses(b"\n".join(good) + b"\n", [0x25, 0x050025]) == {0x050025: 4}


@pytest.mark.parametrize("newline", [b"\n", b"\r"], ids=["LF", "CR"])
def test_a_head_of_512_bytes_that_ends_a_line_keeps_its_last_line(newline: bytes) -> None:
    notes = b"; " + b"-" * (HEAD - 2 - len(b":00000001FF") - 2) + newline
    head = notes + b":00000001FF" + newline
    assert len(head) == HEAD
    assert looks_like_hex(head)


def test_a_cut_head_keeps_every_line_before_its_cut_one() -> None:
    """A head of HEAD bytes: a note, a record, then text cut short. The record counts (it is
    not the cut line), the note does not make it HEX, the cut line is left out."""
    start = b"; note\n:00000001FF\n"
    tail = b"; " + b"x" * (HEAD - len(start) - 2)
    assert len(start + tail) == HEAD
    assert looks_like_hex(start + tail)
    assert not looks_like_hex(b"; note\n; another\n" + tail[: HEAD - 17])


@pytest.mark.parametrize("kind", [2, 4], ids=["segment", "linear"])
def test_a_damaged_address_record_of_either_kind_moves_no_line(kind: int) -> None:
    damaged = record(kind, 0, b"\x10\x00", checksum=0).rstrip()
    lines = [damaged, *[record(0, at, bytes(16)).rstrip() for at in range(0, 64, 16)]]
    assert lines_of_addresses(b"\n".join(lines) + b"\n", [0x25]) == {0x25: 4}


def test_a_damaged_data_record_is_not_the_line_of_its_address() -> None:
    """A data record the decoder refuses (bad checksum) holds none of the image's bytes: the
    valid record written after it at the same address is the line that does."""
    lines = [
        record(0, 0x20, bytes(16), checksum=0).rstrip(),
        record(0, 0x20, bytes(16)).rstrip(),
    ]
    assert lines_of_addresses(b"\n".join(lines) + b"\n", [0x25]) == {0x25: 2}


@pytest.mark.parametrize(
    ("before", "is_hex"),
    [
        (b"; a\n" * 5, True),  # the record is the 6th line that is not blank
        (b"; a\n" * 6, False),  # the 7th: past what is looked at
        (b"\n" * 3 + b"; a\n" * 4, True),  # the 8th line (5th not blank)
        (b"\n" * 4 + b"; a\n" * 4, False),  # the 9th line: past what is looked at
    ],
    ids=["6th", "7th", "8th line", "9th line"],
)
def test_a_file_is_hex_when_a_record_is_among_its_first_8_lines_and_6_not_blank(
    before: bytes, is_hex: bool
) -> None:
    assert looks_like_hex(before + b":00000001FF\n") is is_hex


@pytest.mark.parametrize("size", [3, 7, 64])
def test_a_line_longer_than_64_blocks_is_handed_over_cut_so_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """A file with no line end for megabytes (an absurd line) is not held whole: once the text
    waiting for a line end is over 64 blocks it goes to the decoder as it is, so no piece handed
    over is longer than 65 blocks; the line is still reported, and the records after it read."""
    fed: list[int] = []
    real = HexDecoder.feed

    def feed(self: HexDecoder, chunk: bytes) -> None:
        fed.append(len(chunk))
        real(self, chunk)

    monkeypatch.setattr(HexDecoder, "feed", feed)
    text = b"; " + b"x" * (200 * size) + b"\n" + record(0, 0, b"\x01\x02") + EOF
    image = read_intel_hex_stream(io.BytesIO(text), size)
    assert max(fed) <= 65 * size
    assert sum(fed) == len(text)
    assert image.problems
    assert {p.line for p in image.problems} == {1}
    assert segments(image) == oracle(record(0, 0, b"\x01\x02") + EOF)
