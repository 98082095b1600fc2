"""The engine's rules for large files read as raw bytes in windows: each window (and each span of a
file split across workers) owns the hits that start in it, so a key across a window or span edge is
reported once, at its file offset and flash address; a text file's line numbers count from the
file's first byte whatever span is read; the coverage says exactly which bytes were searched.

Windows and size limits are made small here (the real ones are 16 MiB and 256 MiB) so the files
stay small: `engine.windows` is given a small default window, `engine.WINDOW` / `MAX_DECODE` are
lowered. Offsets, addresses and line numbers are computed from where the test put each key.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from intelhex import IntelHex

from provguard.scan import engine
from provguard.scan.allow import parse_allowlist
from provguard.scan.known import KnownIndex
from provguard.scan.model import (
    AddressRange,
    Coverage,
    Image,
    Region,
    ScanResult,
    Segment,
    Unchecked,
)
from provguard.scan.readers import HEX_TEXT, Options
from tests import factories as f
from tests.factories import spki_fingerprint as fingerprint
from tests.images import mcuboot_image

W = 512  # the window used by these tests
BASE = 0x10000


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> int:
    original = engine.windows

    def windows(size: int, window: int = W) -> Iterator[tuple[int, int]]:
        return original(size, window)

    monkeypatch.setattr(engine, "windows", windows)
    return W


def run(path: Path, span: tuple[int, int] | None, **options: object) -> ScanResult:
    [task] = engine.plan([path]).tasks
    ctx = engine.Context(KnownIndex([]), options.pop("allow", None), Options(**options))  # type: ignore[arg-type]
    return engine.scan_task(engine.Task(task.entry, span), ctx)


def offsets(result: ScanResult) -> list[int | None]:
    return [x.file_offset for x in result.findings]


def test_windows_cover_every_byte_once() -> None:
    assert list(engine.windows(10, 4)) == [(0, 4), (4, 4), (8, 2)]
    assert list(engine.windows(8, 4)) == [(0, 4), (4, 4)]
    assert list(engine.windows(3, 4)) == [(0, 3)]
    assert list(engine.windows(0, 4)) == []


def test_each_span_owns_the_keys_that_start_in_it(tmp_path: Path, small_windows: int) -> None:
    """A raw file read as three spans: a key at offset 0, across a span edge, across a window
    edge inside a span, across the end of a span and at the very end of the file is each
    reported once, by the span it starts in, at its offset and flash address."""
    der = f.key_der(f.ec_key())
    size = 10 * small_windows - 120
    edges = [0, 2 * small_windows, 7 * small_windows, size]
    at = {
        0: (0, edges[1] - 60),  # offset 0; across the first span's end
        1: (edges[1] + small_windows - 50, edges[2] - 40),  # across a window edge; the span's end
        2: (edges[2] + small_windows - 30, size - len(der)),  # across a window edge; file's end
    }
    data = bytearray(size)
    for pair in at.values():
        for offset in pair:
            data[offset : offset + len(der)] = der
    path = tmp_path / "flash_dump.bin"
    path.write_bytes(bytes(data))
    for i, (start, stop) in enumerate(pairwise(edges)):
        result = run(path, (start, stop), base_address=BASE)
        assert offsets(result) == list(at[i]), (start, stop)
        assert [x.address for x in result.findings] == [BASE + o for o in at[i]]
        assert {(x.path, x.length, x.section, x.line) for x in result.findings} == {
            (str(path), len(der), None, None)
        }
        assert result.coverage == (
            Coverage(
                str(path),
                "raw",
                stop - start,
                stop - start,
                ranges=(AddressRange(BASE + start, BASE + stop),),
                findings=2,
            ),
        )
    whole = run(path, (0, size), base_address=BASE)
    assert offsets(whole) == [o for pair in at.values() for o in pair]
    [cover] = whole.coverage
    assert (cover.size, cover.examined, cover.unchecked) == (size, size, ())
    assert cover.ranges == (AddressRange(BASE, BASE + size),)


def test_an_allowed_key_in_a_span_is_allowed(tmp_path: Path, small_windows: int) -> None:
    allowed, other = f.ec_key(), f.ec_key()
    data = bytearray(6 * small_windows)
    first, second = 2 * small_windows + 10, 3 * small_windows - 20
    data[first : first + 200] = f.key_der(allowed).ljust(200, b"\0")
    data[second : second + 200] = f.key_der(other).ljust(200, b"\0")
    path = tmp_path / "flash_dump.bin"
    path.write_bytes(bytes(data))
    allow = parse_allowlist(f"key {fingerprint(allowed)}\n", "allow.txt")
    result = run(path, (small_windows, 5 * small_windows), allow=allow)
    assert [(x.file_offset, x.key) for x in result.findings] == [(second, fingerprint(other))]
    assert [(x.file_offset, x.allowed_by) for x in result.allowed] == [
        (first, f"key {fingerprint(allowed)}")
    ]
    assert result.coverage[0].findings == 1


def text_with_keys(count: int, every: int) -> tuple[bytes, list[int]]:
    """Text lines (the first one empty) with a PEM key after every `every` lines; the keys'
    offsets."""
    out, at = b"\n", []
    for n in range(1, count + 1):
        out += b"# filler line %d of the configuration dump\n" % n
        if n % every == 0:
            at.append(len(out))
            out += f.key_pem(f.ec_key())
    return out, at


def test_line_numbers_count_from_the_start_of_the_file_in_every_span(
    tmp_path: Path, small_windows: int
) -> None:
    """A text file read as two spans, each of several windows: every key's line is its line in
    the whole file (CR LF / CR / LF counted once; here LF)."""
    text, at = text_with_keys(160, 9)
    path = tmp_path / "provision.log"
    path.write_bytes(text)
    cut = 5 * small_windows
    assert text[cut : cut + 1] != b"\n"
    assert at[0] < cut
    assert len(text) - cut > 3 * small_windows
    expected = {o: text.count(b"\n", 0, o) + 1 for o in at}
    found: dict[int | None, int | None] = {}
    for span in ((0, cut), (cut, len(text))):
        result = run(path, span, lines=True)
        found |= {x.file_offset: x.line for x in result.findings}
        assert result.coverage == (
            Coverage(
                str(path),
                "text",
                span[1] - span[0],
                span[1] - span[0],
                findings=len(result.findings),
            ),
        )
    assert found == expected


def test_a_large_structured_file_is_searched_raw_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over MAX_DECODE an MCUboot image is not decoded: its bytes are searched raw (a key in its
    payload found at its file offset), and the coverage says its structure was not decoded; a
    later span of it says nothing (the first span does)."""
    monkeypatch.setattr(engine, "MAX_DECODE", 1 << 20)
    monkeypatch.setattr(engine, "WINDOW", 1 << 19)
    der = f.key_der(f.ec_key())
    payload = bytearray((1 << 20) + 4096)
    payload[700_000 : 700_000 + len(der)] = der
    image = mcuboot_image(bytes(payload))
    key_at = image.index(der)
    path = tmp_path / "zephyr.signed.bin"
    path.write_bytes(image)
    result = run(path, None)
    assert offsets(result) == [key_at]
    [cover] = result.coverage
    assert cover.unchecked == (
        Unchecked(
            str(path),
            "mcuboot structure not decoded: the file is larger than 1 MiB; "
            "searched as raw bytes only",
        ),
    )
    assert (cover.format, cover.size, cover.examined) == ("raw", len(image), len(image))
    later = run(path, (1 << 19, len(image)))
    assert offsets(later) == [key_at]
    assert later.coverage[0].unchecked == ()


def test_a_structured_file_over_a_window_but_under_max_decode_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "WINDOW", 4096)
    image = mcuboot_image(bytes(3 * 4096))
    path = tmp_path / "zephyr.signed.bin"
    path.write_bytes(image)
    [cover] = run(path, None).coverage
    assert cover.format == "mcuboot"
    assert cover.unchecked == ()


@pytest.mark.parametrize(("head", "fmt"), [(b"\0", "raw"), (b"#", "text")], ids=["raw", "text"])
def test_a_plain_file_over_a_window_is_never_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, head: bytes, fmt: str
) -> None:
    """A raw or text file over WINDOW is searched window by window: nothing but its head is ever
    handed to the format readers, and it is said to be raw (a NUL in the head, here only its
    first byte) or text, with no structure left undecoded."""
    monkeypatch.setattr(engine, "WINDOW", 4096)
    seen: list[int] = []
    read_bytes = engine.read_bytes

    def spy(data: bytes, *args: object, **kwargs: object) -> object:
        seen.append(len(data))
        return read_bytes(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "read_bytes", spy)
    pem = f.key_pem(f.ec_key())
    body = bytearray(b"x" * (12 * 4096))
    key_at = 5 * 4096 + 100
    body[key_at : key_at + len(pem)] = pem
    body[: len(head)] = head
    path = tmp_path / "dump.dat"
    path.write_bytes(bytes(body))
    result = run(path, None)
    assert seen
    assert max(seen) <= 4096  # the head parallel._plain also judges by
    assert offsets(result) == [key_at]
    [cover] = result.coverage
    ranges = () if fmt == "text" else (AddressRange(0, len(body)),)
    assert cover == Coverage(str(path), fmt, len(body), len(body), ranges=ranges, findings=1)


def test_a_damaged_hex_searched_as_text_numbers_lines_across_windows(
    tmp_path: Path, small_windows: int
) -> None:
    """A HEX file with a PEM key pasted between its records is damaged: its text is searched
    window by window, and the key's line is its line in the file, windows before it counted."""
    ih = IntelHex()
    ih.frombytes(bytes(range(256)) * 8)
    buffer = io.StringIO()
    ih.write_hex_file(buffer)
    records = buffer.getvalue().encode().splitlines(keepends=True)
    pem = f.key_pem(f.ec_key())
    text = b"".join(records[:60]) + pem + b"".join(records[60:])
    key_at = len(b"".join(records[:60]))
    assert key_at > 2 * small_windows
    path = tmp_path / "merged.hex"
    path.write_bytes(text)
    result = run(path, None, lines=True)
    [found] = [x for x in result.findings if x.section == HEX_TEXT]
    assert (found.file_offset, found.line) == (key_at, 61)


def test_coverage_ranges_are_the_sections_else_the_loads_else_the_segments() -> None:
    """An ELF's searched flash ranges are its allocated sections (with their names); a segment
    with only a PT_LOAD is its PT_LOAD; a plain segment is its own bytes; a text file has none."""
    elf = Segment(
        0,
        bytes(0x300),
        regions=(
            Region(0, 0x300, "PT_LOAD[0]", 0x8000),
            Region(0x40, 0x140, ".text", 0x8040),
            Region(0x140, 0x200, ".rodata", 0x8140),
            Region(0x200, 0x300, ".comment", None),
        ),
    )
    load_only = Segment(None, bytes(0x100), regions=(Region(0x10, 0x100, "PT_LOAD[1]", 0x2000),))
    plain = Segment(0x9000, bytes(0x80), section="app")
    image = Image("fw.elf", "elf", 0x480, (elf, load_only, plain))
    assert engine.coverage_of(image, 0).ranges == (
        AddressRange(0x8040, 0x8040 + 0x100, ".text"),
        AddressRange(0x8140, 0x8140 + 0xC0, ".rodata"),
        AddressRange(0x2000, 0x2000 + 0xF0, "PT_LOAD[1]"),
        AddressRange(0x9000, 0x9000 + 0x80, "app"),
    )
    text = Image("notes.txt", "text", 0x80, (Segment(0, bytes(0x80)),))
    assert engine.coverage_of(text, 0).ranges == ()


def test_a_hit_is_named_after_the_smallest_region_holding_it() -> None:
    der = f.key_der(f.ec_key())
    data = bytearray(0x400)
    data[0x220 : 0x220 + len(der)] = der
    segment = Segment(
        0,
        bytes(data),
        regions=(
            Region(0, 0x400, "PT_LOAD[0]", 0x8000),
            Region(0x200, 0x300, ".rodata", 0x8200),
        ),
    )
    image = Image("fw.elf", "elf", 0x400, (segment,))
    [found] = engine.segment_findings(image, segment, KnownIndex([]))
    assert (found.section, found.address) == (".rodata", 0x8200 + 0x20)


def test_a_window_holds_its_own_bytes_and_the_overlap_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_windows: int
) -> None:
    """However large the file, each window searched holds at most its own bytes, the overlap
    and a lead-in of the window before (so memory does not grow with the file), and a key across
    its edge is still found, once."""
    overlap = 256
    monkeypatch.setattr(engine, "MIN_OVERLAP", overlap)
    held: list[int] = []
    segment_findings = engine.segment_findings

    def spy(image: Image, segment: Segment, *args: object, **kwargs: object) -> object:
        held.append(len(segment.data))
        return segment_findings(image, segment, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "segment_findings", spy)
    der = f.key_der(f.ec_key())
    assert len(der) < overlap
    data = bytearray(20 * small_windows)
    key_at = 3 * small_windows - 20
    data[key_at : key_at + len(der)] = der
    path = tmp_path / "flash_dump.bin"
    path.write_bytes(bytes(data))
    result = run(path, (0, len(data)))
    assert offsets(result) == [key_at]
    assert len(held) == 20
    assert held[0] == small_windows + overlap  # nothing before the first
    assert max(held) == 64 + small_windows + overlap
