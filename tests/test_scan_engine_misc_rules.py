"""The scan engine's small rules, one behaviour each: which ELF symbol names a hit, which
partition holds an address, which byte order of UTF-16 text is kept, what an empty or unreadable
input reports, how an allowlist moves findings aside, which hits a window owns, how the spans of
a split file are joined into one coverage, and the package's lazy names.

Every expected value comes from the inputs built here (offsets planted, sizes written,
fingerprints computed with `cryptography`), never from the scan's own output.
"""

from __future__ import annotations

import importlib
import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import provguard.scan
from provguard.scan import engine, parallel
from provguard.scan.allow import parse_allowlist
from provguard.scan.engine import Hit, Task
from provguard.scan.known import KnownIndex, key_material
from provguard.scan.model import (
    AddressRange,
    Coverage,
    Finding,
    Image,
    Kind,
    Region,
    ScanResult,
    Segment,
    Symbol,
    Unchecked,
    symbol_at,
)
from provguard.scan.readers import READERS, Options, read_bytes
from provguard.scan.walk import Entry, EntryState
from tests import factories as f
from tests.factories import spki_fingerprint as fingerprint

PAD = b"\xff" * 64
NO_KNOWN = KnownIndex(())
HEAD = 512  # how much of a file's start is looked at to tell Intel HEX (hexfile.HEAD)


# --- symbols -----------------------------------------------------------------------------------


def test_a_segment_orders_its_symbols_by_offset_then_the_larger_first() -> None:
    small, large, first = Symbol("small", 8, 2), Symbol("large", 8, 6), Symbol("first", 0, 4)
    segment = Segment(0, bytes(16), symbols=(small, large, first))
    assert segment.symbols == (first, large, small)
    # both start at 8: the smaller one (inside the larger) names its bytes, the larger the rest
    assert segment.symbol_at(9) == "small"
    assert segment.symbol_at(11) == "large"
    assert segment.symbol_at(0) == "first"


def test_a_hit_is_named_by_the_symbols_it_overlaps_and_no_other() -> None:
    data = Symbol("data", 10, 4)  # [10, 14)
    segment = Segment(0, bytes(32), symbols=(data,))
    assert segment.symbol_at(10, 1) == "data"
    assert segment.symbol_at(13) == "data"
    assert segment.symbol_at(9) is None  # one byte, ending where `data` starts
    assert segment.symbol_at(9, 2) == "data"  # [9, 11) reaches into it
    assert segment.symbol_at(14) is None  # where `data` ends
    assert symbol_at(segment.symbols, (10,), 9) is None  # the default length is one byte
    assert symbol_at(segment.symbols, (10,), 9, 0) is None  # an empty hit is one byte too
    assert symbol_at(segment.symbols, (10,), 14, 4) is None


def test_a_sizeless_label_names_a_hit_only_at_its_own_byte() -> None:
    label = Symbol("__data_start", 3, 0)
    assert symbol_at((label,), (3,), 3) == "__data_start"
    assert symbol_at((label,), (3,), 4) is None
    assert symbol_at((), (), 0) is None  # nothing there is None, not an empty name


# --- UTF-16 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "at", "skew", "ascii"),
    [
        (b"A\x00", 0, 0, 1),  # little-endian 'A'
        (b"\x00A", 0, 1, 1),  # big-endian 'A'
        (b"A\x00", 0, 1, 0),  # read big-endian it is U+4100
        (b"\x00A", 0, 0, 0),
        (b"\xffA\x00", 1, 0, 1),
        (b"\xff\x00A", 1, 1, 1),
        (b"A\x00\xff", 0, 0, 1),
        (b"\x00A\xff", 0, 1, 1),
        (b"\xff\xff", 0, 0, 0),  # a whole character at the very start
        (b"A\x01", 0, 0, 0),  # U+0141 is no ASCII
        (b"\x01\x00", 0, 0, 0),  # a control character is no text
        (b"\x1f\x00", 0, 0, 0),
        (b"\x00\x00", 0, 0, 0),  # NUL is no text
        (b"\x7f\x00", 0, 0, 0),  # DEL is no text
        (b"\x80\x00", 0, 0, 0),
        (b" \x00", 0, 0, 1),  # the first printable character
        (b"~\x00", 0, 0, 1),  # the last
        (b"\t\x00", 0, 0, 1),  # and the three that lay out text
        (b"\n\x00", 0, 0, 1),
        (b"\r\x00", 0, 0, 1),
        (b"\x0b\x00", 0, 0, 0),  # a vertical tab does not
        (b"\xff" * 10, -2, 0, 1),  # before the data
        (b"\xff\xff\xff", 2, 0, 1),  # half a character at the end
        (b"\xff\xff", 2, 0, 1),  # past the end
    ],
)
def test_a_utf16_character_is_text_or_outside_the_data(
    data: bytes, at: int, skew: int, ascii: int
) -> None:
    assert engine._text_char(data, at, skew) == ascii


@pytest.mark.parametrize("before", [0, 1, 4095, 4096, 4097, 9000])
@pytest.mark.parametrize(("codec", "skew"), [("utf-16-le", 0), ("utf-16-be", 1)])
@pytest.mark.parametrize("head", [b"", b"\x07\xfe\x01"], ids=["at-0", "after-binary"])
def test_a_utf16_text_run_reaches_from_its_first_to_its_last_text_character(
    before: int, codec: str, skew: int, head: bytes
) -> None:
    """Found from a character inside it, however far the run begins before it (the run is read
    backwards in pieces of 4096 characters), up to the data's first byte; bytes that are text
    in neither order end it."""
    tail = b"\x00\x00\xff"
    text = "x" * before + "-----BEGIN" + "\ty\r\n" * 3
    data = head + text.encode(codec) + tail
    first = len(head)
    position = first + 2 * before
    assert engine._utf16_text(data, position, skew) == (first, first + 2 * len(text))


def test_a_utf16_text_with_many_begin_lines_is_searched_once_per_byte_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each BEGIN line inside a text already searched is skipped: searching the whole text
    again for each of its PEM blocks would cost blocks x text."""
    key = f.ec_key()
    block = f.key_pem(key).decode()
    data = ("notes\n" + block * 5).encode("utf-16-le")
    searched: list[int] = []
    real = engine._search

    def counted(segment: bytes, *args: object, **kwargs: object) -> list[Hit]:
        searched.append(len(segment))
        return real(segment, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_search", counted)
    hits = engine.scan_segment(data, NO_KNOWN)
    text = len(data) // 2
    # the bytes themselves, then the text read little-endian, then (one byte on) big-endian
    assert searched == [len(data), text, text - 1]
    assert [h.start for h in hits] == [2 * (6 + i * len(block)) for i in range(5)]


def test_a_second_utf16_text_after_one_with_several_begin_lines_is_searched_too() -> None:
    """Skipping the BEGIN lines of a text already searched must not end the search: a later
    UTF-16 text, after binary bytes, is searched as well."""
    keys = [f.ec_key() for _ in range(3)]
    first = ("".join(f.key_pem(k).decode() for k in keys[:2])).encode("utf-16-le")
    second = f.key_pem(keys[2]).decode().encode("utf-16-le")
    gap = b"\xff\x01" * 16
    hits = engine.scan_segment(first + gap + second, NO_KNOWN)
    assert [h.key for h in hits] == [fingerprint(k) for k in keys]
    assert hits[2].start == len(first) + len(gap)


def _wide(start: int, order: str) -> Hit:
    return Hit(start, start + 100, Kind.PRIVATE_KEY, f"UTF-16{order} DER", "SHA256:" + "ab" * 32)


def test_of_two_byte_orders_the_one_with_text_around_is_kept_else_the_aligned_one() -> None:
    le, be = _wide(10, "LE"), _wide(11, "BE")
    assert engine._one_byte_order([(le, 0), (be, 2)]) == [be]
    assert engine._one_byte_order([(be, 0), (le, 2)]) == [le]
    assert engine._one_byte_order([(be, 1), (le, 1)]) == [le]  # a tie: the even offset
    le, be = _wide(11, "LE"), _wide(10, "BE")
    assert engine._one_byte_order([(le, 1), (be, 1)]) == [be]
    assert engine._one_byte_order([(le, 2), (be, 1)]) == [le]  # text around it comes first
    le, be = _wide(12, "LE"), _wide(12, "BE")  # not twins (the same start): both kept, LE first
    assert engine._one_byte_order([(be, 1), (le, 1)]) == [le, be]


# --- partitions --------------------------------------------------------------------------------


def test_the_smallest_partition_holding_an_address_names_it() -> None:
    app = AddressRange(0x8000, 0x9000, "app")
    primary = AddressRange(0x0, 0x10000, "mcuboot_primary")
    assert engine.partition_of((app, primary), 0x8000) == "app"  # its first byte
    assert engine.partition_of((primary, app), 0x8800) == "app"
    assert engine.partition_of((app,), 0x9000) is None  # its end is outside
    assert engine.partition_of((app,), 0x7FFF) is None
    assert engine.partition_of((app,), None) is None
    twin = AddressRange(0x8000, 0x9000, "twin")
    assert engine.partition_of((app, twin), 0x8000) == "app"  # the same size: the first named


# --- inputs that are not read, or empty ------------------------------------------------------


def test_an_input_not_read_is_unchecked_with_nothing_examined() -> None:
    cover = engine.not_read("fw/a.bin", "permission denied")
    assert cover == Coverage(
        "fw/a.bin", "not read", 0, 0, unchecked=(Unchecked("fw/a.bin", "permission denied"),)
    )
    assert (cover.format, cover.size, cover.examined) == ("not read", 0, 0)


def test_an_empty_image_file_is_unchecked_as_a_failed_build() -> None:
    reason = "empty image file (0 bytes): a failed or interrupted build?"
    image = engine._empty_image("build/zephyr.bin")
    assert image == Image(
        "build/zephyr.bin", "empty", 0, (), unchecked=(Unchecked("build/zephyr.bin", reason),)
    )
    assert (image.format, image.size) == ("empty", 0)


def test_a_hex_file_is_known_by_its_name_in_any_case_or_by_its_records() -> None:
    records = b":0400000001020304F2\n:00000001FF\n"
    stream = io.BytesIO(b"not hex at all")
    assert engine._is_hex(stream, "FW.HEX")
    assert stream.tell() == 0
    assert engine._is_hex(io.BytesIO(records), "fw.bin")
    assert not engine._is_hex(io.BytesIO(b"not hex at all"), "fw.bin")


def test_a_loose_file_is_hex_exactly_when_the_hex_reader_would_claim_it_in_an_archive() -> None:
    # the first HEAD bytes end inside a record line: it may be cut short, so it does not count
    garbage = b"x" * (HEAD - len(b":00000001FF") - 1) + b"\n"
    data = garbage + b":00000001FF\n" + b"y" * 100 + b"\n"
    assert data[HEAD - 1 : HEAD + 1] == b"F\n"
    stream = io.BytesIO(data)
    assert not engine._is_hex(stream, "fw.bin")
    assert stream.tell() == 0
    assert not any(r.claims(data, "fw.bin") for r in READERS if r.name == "intel-hex")


# --- findings, allowlist and coverage -----------------------------------------------------------


def _finding(key: str, path: str = "a.bin") -> Finding:
    return Finding(path, Kind.PRIVATE_KEY, "DER", 0x100, 121, None, None, key)


def test_an_allowlisted_finding_is_moved_aside_with_its_entry() -> None:
    allowed_key, other_key = "SHA256:" + "11" * 32, "SHA256:" + "22" * 32
    allow = parse_allowlist(f"key {allowed_key}\n", "allow.txt")
    one, two = _finding(allowed_key), _finding(other_key)
    kept, allowed = engine._allow([one, two], allow)
    assert kept == [two]
    assert allowed == [
        Finding(
            "a.bin",
            Kind.PRIVATE_KEY,
            "DER",
            0x100,
            121,
            None,
            None,
            allowed_key,
            allowed_by=f"key {allowed_key}",
        )
    ]
    assert engine._allow([one], None) == ([one], [])


def _two_keys() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey, bytes, int]:
    first, second = f.ec_key(), f.ec_key()
    data = PAD + f.key_der(first) + PAD + f.key_der(second) + PAD
    return first, second, data, len(PAD) * 2 + len(f.key_der(first))


def test_scan_images_counts_each_finding_of_an_image_and_maps_only_flash_images() -> None:
    first, second, data, at = _two_keys()
    raw = Image("a.bin", "raw", len(data), (Segment(0, data, file_offset=0),))
    layout = (AddressRange(0, len(data), "app"),)
    result = engine.scan_images([raw], NO_KNOWN, partitions=layout)
    assert [(x.key, x.address, x.partition, x.line) for x in result.findings] == [
        (fingerprint(first), len(PAD), None, None),
        (fingerprint(second), at, None, None),
    ]
    [cover] = result.coverage
    assert (cover.findings, cover.partitions, cover.examined) == (2, (), len(data))
    hexed = Image("a.hex", "intel-hex", len(data), (Segment(0, data),))
    mapped = engine.scan_images([hexed], NO_KNOWN, partitions=layout)
    assert [x.partition for x in mapped.findings] == ["app", "app"]
    assert mapped.coverage[0].partitions == layout


def test_a_text_file_gets_lines_only_when_asked() -> None:
    key = f.ec_key()
    text = b"one\ntwo\n" + f.key_pem(key) + b"end\n"
    image = Image("key.txt", "text", len(text), (Segment(None, text, file_offset=0),))
    assert [x.line for x in engine.scan_image(image, NO_KNOWN)] == [None]
    assert [x.line for x in engine.scan_images([image], NO_KNOWN).findings] == [None]
    segment = image.segments[0]
    assert [x.line for x in engine.segment_findings(image, segment, NO_KNOWN)] == [None]
    assert [x.line for x in engine.scan_image(image, NO_KNOWN, lines=True)] == [3]


def test_the_detectors_given_are_the_only_ones_used() -> None:
    _, _, data, _ = _two_keys()
    image = Image("a.bin", "raw", len(data), (Segment(0, data),))
    assert engine.scan_image(image, NO_KNOWN, ()) == []
    assert engine.segment_findings(image, image.segments[0], NO_KNOWN, ()) == []
    assert len(engine.scan_image(image, NO_KNOWN)) == 2


def test_a_window_owns_the_hits_that_start_in_it_and_end_after_its_repeated_head() -> None:
    first, second, data, at = _two_keys()
    first_end = len(PAD) + len(f.key_der(first))
    segment = Segment(0, data)
    image = Image("a.bin", "raw", len(data), (segment,))

    def keys(**kw: int) -> list[str]:
        return [x.key for x in engine.segment_findings(image, segment, NO_KNOWN, **kw)]

    both = [fingerprint(first), fingerprint(second)]
    assert keys() == both
    assert keys(keep=at) == [fingerprint(first)]  # the second starts at the window's end
    assert keys(keep=at + 1) == both
    assert keys(fresh=first_end) == [fingerprint(second)]  # the first ends in the head
    assert keys(fresh=first_end - 1) == both


def test_a_hit_in_a_region_at_no_address_has_no_address() -> None:
    key = f.ec_key()
    data = PAD + f.key_der(key) + PAD
    region = Region(0, len(data), ".comment", None)
    segment = Segment(None, data, file_offset=0, regions=(region,))
    image = Image("a.elf", "elf", len(data), (segment,))
    [found] = engine.segment_findings(image, segment, NO_KNOWN)
    assert (found.address, found.section, found.file_offset) == (None, ".comment", len(PAD))


def test_coverage_names_an_archives_members() -> None:
    image = Image("pkg.zip", "zip", 10, (), members=("a.bin", "b.hex"))
    assert engine.coverage_of(image, 0).members == ("a.bin", "b.hex")


# --- a damaged Intel HEX: records and text -----------------------------------------------------

HEX_TEXT = "Intel HEX text"
BASE = 0x8000


def record(kind: int, address: int, data: bytes) -> bytes:
    body = bytes([len(data), address >> 8, address & 0xFF, kind]) + data
    return b":" + (body + bytes([-sum(body) & 0xFF])).hex().upper().encode() + b"\n"


def spoiled(line: bytes) -> bytes:
    """The record with a wrong checksum."""
    checksum = line[-3:-1]
    return line[:-3] + (b"00" if checksum != b"00" else b"01") + b"\n"


def records(data: bytes) -> bytes:
    """`data` at BASE, 16 bytes a record: the byte at BASE + n is on line n // 16 + 1."""
    return b"".join(record(0, BASE + i, data[i : i + 16]) for i in range(0, len(data), 16))


def test_a_key_in_damaged_records_is_a_fragment_reported_unless_the_records_decode_it(
    tmp_path: Path,
) -> None:
    decoded, lost = f.ec_key(), f.ec_key()
    half = len(f.key_der(lost)) // 2
    first = spoiled(record(0, 0x9000, f.key_der(lost)[:half]))
    text = (
        records(PAD + f.key_der(decoded) + PAD)
        + first
        + spoiled(record(0, 0x9000 + half, f.key_der(lost)[half:]))
        + record(1, 0, b"")
    )
    path = tmp_path / "fw.hex"
    path.write_bytes(text)
    known = KnownIndex([key_material(decoded, "decoded.key"), key_material(lost, "lost.key")])
    [image] = read_bytes(text, str(path), Options())
    at = text.index(first) + len(":LLAAAATT")  # the digits of the lost key's first half
    line = text.count(b"\n", 0, text.index(first)) + 1
    # the digits of the decoded key's records are fragments of it too: reported once, decoded
    assert [
        (x.key, x.address, x.section, x.file_offset, x.length, x.line)
        for x in engine.scan_image(image, known)
    ] == [
        (fingerprint(decoded), BASE + len(PAD), None, None, len(f.key_der(decoded)), None),
        (fingerprint(lost), None, HEX_TEXT, at, 2 * half, None),
    ]
    assert [(x.key, x.line) for x in engine.scan_image(image, known, lines=True)] == [
        (fingerprint(decoded), len(PAD) // 16 + 1),
        (fingerprint(lost), line),
    ]


@dataclass(frozen=True)
class DamagedHex:
    """Records holding one key, then two PEM keys pasted into the text (the same key and
    another): the paste makes the HEX damaged, so its text is searched too."""

    path: Path
    text: bytes
    data: bytes  # what the records hold, from BASE
    decoded: str  # fingerprints
    other: str
    head: int  # bytes of the records before the paste
    same: bytes  # the records' key as PEM


def damaged_hex(tmp_path: Path) -> DamagedHex:
    decoded, other = f.ec_key(), f.ec_key()
    data = PAD + f.key_der(decoded) + PAD
    same = f.key_pem(decoded)
    text = records(data) + same + f.key_pem(other) + record(1, 0, b"")
    path = tmp_path / "fw.hex"
    path.write_bytes(text)
    head = len(records(data))
    return DamagedHex(path, text, data, fingerprint(decoded), fingerprint(other), head, same)


def test_a_damaged_hex_reports_the_records_key_and_every_key_in_its_text(tmp_path: Path) -> None:
    hexed = damaged_hex(tmp_path)
    [task] = engine.plan([hexed.path]).tasks
    result = engine.scan_task(task, engine.Context(NO_KNOWN, None, Options(lines=True)))
    pasted = hexed.text.count(b"\n", 0, hexed.head) + 1  # the line the paste starts on
    assert [(x.key, x.address, x.section, x.file_offset, x.line) for x in result.findings] == [
        (hexed.decoded, BASE + len(PAD), None, None, len(PAD) // 16 + 1),
        (hexed.decoded, None, HEX_TEXT, hexed.head, pasted),  # no fragment: reported too
        (
            hexed.other,
            None,
            HEX_TEXT,
            hexed.head + len(hexed.same),
            pasted + hexed.same.count(b"\n"),
        ),
    ]
    [cover] = result.coverage
    assert (cover.examined, cover.findings, cover.size) == (
        len(hexed.data) + len(hexed.text),
        3,
        len(hexed.text),
    )


def test_an_allowlist_applies_to_a_damaged_hexs_records_and_text(tmp_path: Path) -> None:
    hexed = damaged_hex(tmp_path)
    allow = parse_allowlist(f"key {hexed.decoded}\nkey {hexed.other}\n", "allow.txt")
    [task] = engine.plan([hexed.path]).tasks
    result = engine.scan_task(task, engine.Context(NO_KNOWN, allow, Options()))
    assert result.findings == ()
    assert [(x.key, x.section, x.allowed_by) for x in result.allowed] == [
        (hexed.decoded, None, f"key {hexed.decoded}"),
        (hexed.decoded, HEX_TEXT, f"key {hexed.decoded}"),
        (hexed.other, HEX_TEXT, f"key {hexed.other}"),
    ]
    [cover] = result.coverage
    assert (cover.examined, cover.findings) == (len(hexed.data) + len(hexed.text), 0)


# --- a large raw file split across workers ------------------------------------------------------


def _entry(path: Path, size: int | None) -> Entry:
    return Entry(path, str(path), EntryState.FILE, size=size)


def _span(path: str, start: int, stop: int, **kw: object) -> ScanResult:
    cover = Coverage(path, "raw", stop - start, stop - start, **kw)  # type: ignore[arg-type]
    return ScanResult((), (), (cover,))


def test_the_spans_of_a_split_file_join_into_one_coverage(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    name, base = str(path), 0x1000
    lost = Unchecked(name, "somewhere in the middle")
    found = _finding("SHA256:" + "33" * 32, name)
    aside = _finding("SHA256:" + "44" * 32, name)
    parts = [
        _span(name, 0, 100, ranges=(AddressRange(base, base + 100),)),
        ScanResult(
            (found,),
            (aside,),
            _span(
                name, 100, 250, ranges=(AddressRange(base + 100, base + 250),), findings=1
            ).coverage,
        ),
        _span(name, 250, 300, ranges=(AddressRange(base + 250, base + 300),), unchecked=(lost,)),
    ]
    entry = _entry(path, 300)
    tasks = [Task(entry, (a, b)) for a, b in ((0, 100), (100, 250), (250, 300))]
    [joined] = parallel.merge_spans(tasks, parts)
    assert joined.findings == (found,)
    assert joined.allowed == (aside,)
    assert joined.coverage == (
        Coverage(
            name,
            "raw",
            300,
            300,
            ranges=(AddressRange(base, base + 300),),
            unchecked=(lost,),
            findings=1,
        ),
    )


def test_a_split_text_file_has_no_ranges_and_one_span_joins_to_itself(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    name = str(path)
    parts = [
        ScanResult((), (), (Coverage(name, "text", 40, 40),)),
        ScanResult((), (), (Coverage(name, "text", 60, 60),)),
    ]
    joined = parallel._join_spans(_entry(path, None), parts)
    assert joined.coverage == (Coverage(name, "text", 0, 100),)  # size unknown: 0
    [alone] = parallel.merge_spans(
        [Task(_entry(path, 40), (0, 40))], [ScanResult((), (), (Coverage(name, "text", 40, 40),))]
    )
    assert alone.coverage == (Coverage(name, "text", 40, 40),)


def test_only_plain_files_are_split(tmp_path: Path) -> None:
    raw = tmp_path / "flash.bin"
    raw.write_bytes(b"\x00\xff" * 3000)
    text = tmp_path / "dump.log"
    text.write_bytes(b"a line\n" * 1000)
    archive = tmp_path / "pkg.bin"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.bin", b"\x00" * 10)
    hexed = tmp_path / "fw.hex"
    hexed.write_bytes(b"\x00\xff" * 3000)  # named HEX: decoded (and reported damaged), not split
    assert parallel._plain(raw)
    assert parallel._plain(text)
    assert not parallel._plain(archive)
    assert not parallel._plain(hexed)
    assert not parallel._plain(tmp_path / "missing.bin")


def test_an_old_tar_without_the_ustar_magic_is_known_by_its_name_and_not_split(
    tmp_path: Path,
) -> None:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo("a.bin")
        info.size = 10
        archive.addfile(info, io.BytesIO(bytes(10)))
    header = bytearray(packed.getvalue())
    header[257:265] = bytes(8)  # a pre-POSIX (v7) tar header: no magic, no version
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header[:512])
    old = tmp_path / "rootfs.tar"
    old.write_bytes(bytes(header))
    assert b"ustar" not in old.read_bytes()
    with tarfile.open(old) as archive:  # still a tar to tarfile
        assert archive.getnames() == ["a.bin"]
    assert not parallel._plain(old)


# --- the package's lazy names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "module"),
    [("scan_images", "engine"), ("Allowlist", "allow"), ("scan_paths", "parallel")],
)
def test_a_name_of_the_package_is_its_modules_own_and_kept(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    monkeypatch.delitem(vars(provguard.scan), name, raising=False)
    value = getattr(provguard.scan, name)
    assert value is getattr(importlib.import_module(f"provguard.scan.{module}"), name)
    assert vars(provguard.scan)[name] is value


def test_an_unknown_name_of_the_package_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError) as caught:
        getattr(provguard.scan, "nope")  # noqa: B009
    assert str(caught.value) == "module 'provguard.scan' has no attribute 'nope'"
