"""The engine's per-file rules: one file ends in one state whatever happens to it (unreadable,
empty, a reader that fails), line endings are counted the way editors count them, a file exactly
at a size limit is read as the limit promises, and a build directory's layout belongs to the
files under it.

Expected values come from what the test built: the bytes it wrote, the sizes it chose, the
directories it named.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from intelhex import IntelHex

from provguard.scan import engine
from provguard.scan.known import KnownIndex, key_material
from provguard.scan.model import (
    AddressRange,
    Coverage,
    Image,
    Region,
    ScanResult,
    Segment,
    Symbol,
    Unchecked,
)
from provguard.scan.readers import Options
from tests import factories as f
from tests.factories import spki_fingerprint as fingerprint
from tests.images import mcuboot_image

NO_KNOWN = KnownIndex(())
PAD = b"\xff" * 100


def context(**options: object) -> engine.Context:
    return engine.Context(NO_KNOWN, None, Options(**options))  # type: ignore[arg-type]


def only_task(path: Path) -> engine.Task:
    [task] = engine.plan([path]).tasks
    return task


def not_read(name: str, reason: str) -> ScanResult:
    return ScanResult(
        (), (), (Coverage(name, "not read", 0, 0, unchecked=(Unchecked(name, reason),)),)
    )


# --- line endings ----------------------------------------------------------------------------


def test_line_breaks_count_cr_lf_and_crlf_once_each_and_only_before_the_end() -> None:
    # a CR LF first (the first byte is a line ending), then CR, LF and a lone CR at the end
    # boundary whose LF lies after it; after the end: more of every kind, not to be counted
    head = b"\r\na\rb\nc\r"
    tail = b"\n\r\n\r\n\r\r"
    expected = len(re.findall(rb"\r\n|\r|\n", head))
    assert expected == 4
    assert engine._line_breaks(head + tail, len(head)) == expected


# --- one file, whatever happens ----------------------------------------------------------------


def test_an_empty_file_of_no_image_name_is_empty_and_not_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"")
    result = engine.scan_task(only_task(path), context())
    assert result == ScanResult((), (), (Coverage(str(path), "empty", 0, 0),))


def test_a_file_replaced_by_a_directory_after_the_walk_is_not_read_with_the_reason(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.bin"
    path.write_bytes(PAD)
    task = only_task(path)
    path.unlink()
    path.mkdir()
    result = engine.scan_task(task, context())
    assert result == not_read(str(path), "a directory (replaced after the walk): not read")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (MemoryError(), "out of memory while reading: not checked"),
        (ValueError("boom"), "internal error while reading (ValueError): not checked"),
    ],
    ids=["memory", "bug"],
)
def test_a_reader_that_fails_leaves_the_file_not_read_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, reason: str
) -> None:
    path = tmp_path / "app.bin"
    path.write_bytes(PAD + f.key_der(f.ec_key()) + PAD)

    def failing(*_: object, **__: object) -> object:
        raise error

    monkeypatch.setattr(engine, "read_bytes", failing)
    result = engine.scan_task(only_task(path), context())
    assert result == not_read(str(path), reason)


# --- size limits -------------------------------------------------------------------------------


def test_an_image_exactly_at_the_decode_limit_is_decoded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f.ec_key()
    data = mcuboot_image(PAD + f.key_der(key) + PAD)
    path = tmp_path / "app.signed"
    path.write_bytes(data)
    monkeypatch.setattr(engine, "MAX_DECODE", len(data))  # not larger than the limit
    result = engine.scan_task(only_task(path), context())
    [cover] = result.coverage
    assert cover.format != "raw"  # its structure is decoded, not searched as bytes only
    assert cover.unchecked == ()
    assert [x.key for x in result.findings] == [fingerprint(key)]


def test_a_hex_file_exactly_at_the_hex_text_limit_is_decoded_as_hex(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, base = f.ec_key(), 0x10000
    ih = IntelHex()
    ih.frombytes(PAD + f.key_der(key) + PAD, offset=base)
    path = tmp_path / "fw.hex"
    ih.write_hex_file(str(path))
    size = path.stat().st_size
    # at the HEX text limit, and over the limit for holding a file whole
    monkeypatch.setattr(engine, "MAX_HEX_TEXT", size)
    monkeypatch.setattr(engine, "MAX_DECODE", size - 1)
    result = engine.scan_task(only_task(path), context())
    assert [(x.key, x.address) for x in result.findings] == [(fingerprint(key), base + len(PAD))]
    [cover] = result.coverage
    assert (cover.format, cover.size) == ("intel-hex", size)


def test_a_file_exactly_one_window_long_is_read_whole_even_with_a_plain_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # text for more than the head that is looked at, then a NUL byte and a key: read whole, the
    # file is raw bytes (a file with a NUL is no text, its findings have no line)
    key = f.ec_key()
    head = b"a" * 5000 + b"\0"
    data = head + f.key_der(key) + b"\0"
    path = tmp_path / "blob.dat"
    path.write_bytes(data)
    monkeypatch.setattr(engine, "WINDOW", len(data))  # not larger than one window
    result = engine.scan_task(only_task(path), context(lines=True))
    assert [(x.key, x.file_offset, x.line) for x in result.findings] == [
        (fingerprint(key), len(head), None)
    ]
    [cover] = result.coverage
    assert (cover.format, cover.size, cover.examined) == ("raw", len(data), len(data))


# --- where a finding is ----------------------------------------------------------------------

AT = 200  # where the key starts in the segment


def keyed_segment_data() -> tuple[bytes, str, int]:
    key = f.ec_key()
    der = f.key_der(key)
    return b"\xff" * AT + der + PAD, fingerprint(key), len(der)


def symbols() -> tuple[Symbol, ...]:
    # a symbol that ends where the key starts, and one that starts inside the key: the key
    # overlaps only the second
    return (Symbol("header", 0, AT), Symbol("secret", AT + 4, 50))


def test_a_key_is_named_after_the_symbol_its_bytes_overlap() -> None:
    data, key, length = keyed_segment_data()
    segment = Segment(0x8000, data, section="flash", symbols=symbols())
    image = Image("fw.bin", "raw", len(data), (segment,))
    [finding] = engine.segment_findings(image, segment, NO_KNOWN)
    assert (finding.key, finding.address, finding.length, finding.section, finding.symbol) == (
        key,
        0x8000 + AT,
        length,
        "flash",
        "secret",
    )


def test_a_key_in_a_region_is_named_after_the_region_symbol_its_bytes_overlap() -> None:
    data, key, _ = keyed_segment_data()
    region = Region(0, len(data), ".rodata", 0x8000, symbols=symbols())
    segment = Segment(None, data, section="ELF file", file_offset=0, regions=(region,))
    image = Image("fw.elf", "elf", len(data), (segment,))
    [finding] = engine.segment_findings(image, segment, NO_KNOWN)
    assert (finding.key, finding.address, finding.section, finding.symbol) == (
        key,
        0x8000 + AT,
        ".rodata",
        "secret",
    )


def test_a_key_outside_every_region_has_the_segments_section_and_no_address() -> None:
    data, key, _ = keyed_segment_data()
    region = Region(0, AT // 2, ".text", 0x8000, symbols=symbols())
    segment = Segment(None, data, section="ELF file", file_offset=0, regions=(region,))
    image = Image("fw.elf", "elf", len(data), (segment,))
    [finding] = engine.segment_findings(image, segment, NO_KNOWN)
    assert (finding.key, finding.address, finding.section, finding.symbol) == (
        key,
        None,
        "ELF file",
        None,
    )
    assert finding.file_offset == AT


def test_a_key_in_decoded_bytes_says_which_byte_of_them() -> None:
    data, key, _ = keyed_segment_data()
    segment = Segment(None, data)  # no address, no file offset, no section
    image = Image("fw.bin", "raw", len(data), (segment,))
    [finding] = engine.segment_findings(image, segment, NO_KNOWN)
    assert (finding.key, finding.address, finding.file_offset, finding.section) == (
        key,
        None,
        None,
        f"byte {AT} of the decoded data",
    )


# --- UTF-16 text: one byte order ---------------------------------------------------------------

CJK = "\u4e2d"  # a character whose UTF-16 code unit is not ASCII, but one of its bytes is


@pytest.mark.parametrize(
    ("before", "after", "codec", "order"),
    [
        # big-endian text: after the key a line break, then a CJK character; read one byte off
        # (as little-endian) the character after the key is no ASCII
        ("A", "\n" + CJK, "utf-16-be", "UTF-16BE"),
        # little-endian text: each reading has one ASCII neighbour; a tie keeps little-endian
        (CJK + "A", CJK, "utf-16-le", "UTF-16LE"),
        # little-endian text with ASCII all around: both readings' neighbours are ASCII
        ("AA", "\nAA", "utf-16-le", "UTF-16LE"),
    ],
    ids=["be", "le-tie", "le-ascii"],
)
def test_utf16_text_is_reported_once_in_the_byte_order_its_neighbours_read_as_ascii(
    before: str, after: str, codec: str, order: str
) -> None:
    key = f.ec_key()
    pem = f.key_pem(key).decode().rstrip()
    data = (before + pem + after).encode(codec)
    hits = engine.scan_segment(data, NO_KNOWN)
    start = len(before.encode(codec))
    assert [(h.start, h.end, h.encoding.split()[0], h.key) for h in hits] == [
        (start, start + len(pem.encode(codec)), order, fingerprint(key))
    ]


def test_a_known_keys_headerless_base64_after_a_utf16_pem_block_is_reported_where_it_is() -> None:
    # UTF-16LE text: a certificate, then a known key's DER as bare base64 (no BEGIN line of its
    # own); the key is found only through the certificate's BEGIN marker, well after it
    key = f.ec_key()
    known = KnownIndex([key_material(key, "device.key")])
    cert = f.cert_pem(f.make_cert("other", f.ec_key())).decode().rstrip()
    b64 = base64.b64encode(f.key_der(key)).decode()
    text = cert + "\n" + b64 + "\n"
    data = text.encode("utf-16-le")
    at = len(cert) + 1  # characters before the base64, two bytes each
    hits = engine.scan_segment(data, known)
    assert [(h.start, h.end, h.kind.name, h.known) for h in hits] == [
        (0, 2 * len(cert), "CERTIFICATE", None),
        (2 * at, 2 * (at + len(b64)), "PRIVATE_KEY", "device.key"),
    ]
    assert [h.encoding.split()[0] for h in hits] == ["UTF-16LE", "UTF-16LE"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("where", ["before", "far after"])
def test_a_known_keys_headerless_base64_anywhere_in_utf16_text_with_a_begin_line_is_found(
    codec: str, where: str
) -> None:
    """The whole run of UTF-16 text holding a BEGIN line is searched: the key's base64 before
    that line, or 20,000 characters after it (more than the longest PEM object), is found, at
    its own place. Binary bytes around the text end the run."""
    key = f.ec_key()
    known = KnownIndex([key_material(key, "device.key")])
    cert = f.cert_pem(f.make_cert("other", f.ec_key())).decode().rstrip()
    b64 = base64.b64encode(f.key_der(key)).decode()
    filler = "\n".join(["# " + "x" * 62] * 313)  # 20,031 characters of comment lines
    parts = [b64, filler, cert] if where == "before" else [cert, filler, b64]
    text = "\n".join(parts) + "\n"
    binary = b"\xff\x01" * 8
    data = binary + text.encode(codec) + binary
    at = len(binary) + 2 * text.index(b64)
    hits = [h for h in engine.scan_segment(data, known) if h.kind.name == "PRIVATE_KEY"]
    order = "UTF-16LE" if codec.endswith("le") else "UTF-16BE"
    assert [(h.start, h.end, h.known, h.encoding.split()[0]) for h in hits] == [
        (at, at + 2 * len(b64), "device.key", order)
    ]


# --- build directories -------------------------------------------------------------------------


def test_a_file_takes_the_layout_of_the_deepest_build_directory_holding_it() -> None:
    outer = (AddressRange(0, 0x1000, "outer"),)
    inner = (AddressRange(0, 0x100, "inner"),)
    layouts = (("/b/app/", outer), ("/b/app/sub", inner), ("/b/other", outer))
    ctx = engine.Context(NO_KNOWN, None, Options(), layouts)
    assert ctx.partitions_for("/b/app/x.hex") == outer  # named with a trailing separator
    assert ctx.partitions_for("/b/app/sub/x.hex") == inner
    assert ctx.partitions_for("/b/elsewhere/x.hex") == ()
    assert ctx.partitions_for("/b/application.hex") == ()
