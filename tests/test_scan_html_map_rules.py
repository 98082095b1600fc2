"""`provguard scan --format html`: the flash map of each input, read as a person sees it.

Each test builds `ScanResult` values, renders the page with `write_html` and parses each map (one
inline SVG per line of the page) with `xml.etree`. The map is 960 units wide; the parts of the
address space that hold something are drawn side by side in proportion to their size, 14 units
apart when they are far from each other (farther than 1/16 of their total size), each at least
4% of the width. The tests pick sizes that give whole-unit widths, derive every box, label and
marker position from the addresses they built, and check the tooltips (`<title>`) word for word.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest

from provguard.scan.html import write_html
from provguard.scan.model import AddressRange, Coverage, Finding, Kind, ScanResult

SVG = "{http://www.w3.org/2000/svg}"
WIDTH = 960.0  # the map's drawing width
GAP = 14.0  # between two far-apart parts
ROW = 22  # height of a row of boxes
KEY = "SHA256:" + "5a" * 32  # a fingerprint: findings never carry key material
PARTITION_FILL, PARTITION_STROKE = "#dfe7f5", "#5b79a8"
DECODED_FILL, DECODED_STROKE = "#e6efe1", "#6b8f5a"
COLOURS = {"FAIL": "#c4170c", "note": "#d98a00", "allowed": "#888"}


def _hex(value: int) -> str:
    return "0x" + format(value, "X").rjust(8, "0")


def finding(
    path: str,
    address: int | None,
    *,
    kind: Kind = Kind.PRIVATE_KEY,
    encoding: str = "PEM",
    length: int = 1,
    offset: int | None = None,
    section: str | None = None,
    symbol: str | None = None,
    partition: str | None = None,
) -> Finding:
    return Finding(
        path=path,
        kind=kind,
        encoding=encoding,
        address=address,
        length=length,
        section=section,
        symbol=symbol,
        key=KEY,
        file_offset=offset,
        partition=partition,
    )


def coverage(
    path: str,
    size: int,
    ranges: tuple[AddressRange, ...] = (),
    partitions: tuple[AddressRange, ...] = (),
    findings: int = 0,
) -> Coverage:
    return Coverage(
        path=path,
        format="elf",
        size=size,
        examined=size,
        ranges=ranges,
        partitions=partitions,
        findings=findings,
    )


def page(
    items: tuple[Coverage, ...],
    findings: tuple[Finding, ...] = (),
    allowed: tuple[Finding, ...] = (),
    fail_on: Kind = Kind.PRIVATE_KEY,
) -> str:
    return write_html(ScanResult(findings=findings, allowed=allowed, coverage=items), fail_on)


def map_lines(html: str) -> list[str]:
    """The lines of the page's "Flash maps" part, up to the version line at its end."""
    lines = html.split("\n")
    start = lines.index("<h2>Flash maps</h2>")
    end = next(i for i, line in enumerate(lines) if line.startswith('<p class="muted">provguard'))
    return lines[start:end]


def svg_of(html: str, path: str) -> ET.Element:
    """The map drawn under the heading that names `path`: one line that is one SVG document."""
    lines = map_lines(html)
    line = lines[lines.index(f'<h3 class="map-title">{path}</h3>') + 1]
    # the page is ours, built in the test; junk around the element or an unclosed one fails here
    root = ET.fromstring(line)  # noqa: S314
    assert root.tag == SVG + "svg"
    for element in root.iter():  # no stray text between the drawn elements
        if element.tag not in (SVG + "text", SVG + "title"):
            assert (element.text or "").strip() == ""
        assert (element.tail or "").strip() == ""
    return root


@dataclass(frozen=True)
class Box:
    title: str
    x: float
    y: float
    width: float
    height: float
    fill: str
    stroke: str
    label: str | None  # the text drawn inside the box
    label_at: tuple[float, float] | None


@dataclass(frozen=True)
class Marker:
    address: str
    title: str
    path: str
    fill: str
    line: dict[str, str]


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str | None
    cls: str | None


def boxes(svg: ET.Element) -> list[Box]:
    out = []
    for g in svg.findall(SVG + "g"):
        if g.get("class") != "range":
            continue
        assert [c.tag for c in g][:2] == [SVG + "title", SVG + "rect"]
        rect = g.find(SVG + "rect")
        text = g.find(SVG + "text")
        assert rect is not None
        out.append(
            Box(
                title=g.findtext(SVG + "title") or "",
                x=float(rect.get("x", "nan")),
                y=float(rect.get("y", "nan")),
                width=float(rect.get("width", "nan")),
                height=float(rect.get("height", "nan")),
                fill=rect.get("fill", ""),
                stroke=rect.get("stroke", ""),
                label=None if text is None else (text.text or ""),
                label_at=None
                if text is None
                else (float(text.get("x", "nan")), float(text.get("y", "nan"))),
            )
        )
    return out


def markers(svg: ET.Element) -> list[Marker]:
    out = []
    for g in svg.findall(SVG + "g"):
        if g.get("class") != "marker":
            continue
        path, line = g.find(SVG + "path"), g.find(SVG + "line")
        assert path is not None
        assert line is not None
        out.append(
            Marker(
                address=g.get("data-address", ""),
                title=g.findtext(SVG + "title") or "",
                path=path.get("d", ""),
                fill=path.get("fill", ""),
                line=dict(line.attrib),
            )
        )
    return out


def texts(svg: ET.Element) -> list[Text]:
    """The texts drawn directly on the map (address labels, the gap sign), in order."""
    return [
        Text(
            float(t.get("x", "nan")),
            float(t.get("y", "nan")),
            t.text or "",
            t.get("text-anchor"),
            t.get("class"),
        )
        for t in svg.findall(SVG + "text")
    ]


def labels(svg: ET.Element, height: int) -> list[tuple[float, str, str | None]]:
    """The address labels under the map: (x, text, anchor)."""
    out = []
    for t in texts(svg):
        if t.text != "≈":
            assert (t.y, t.cls) == (height - 4, "muted")
            out.append((t.x, t.text, t.anchor))
    return out


def gap_signs(svg: ET.Element) -> list[tuple[float, float]]:
    return [(t.x, t.y) for t in texts(svg) if t.text == "≈" and t.anchor == "middle"]


def marker_path(x: float) -> str:
    return f"M{x - 6:.1f},4 L{x + 6:.1f},4 L{x:.1f},16 Z"


def height_of(rows: int) -> int:
    """Top margin 30, each row of boxes 22 plus 8 apart, 34 below for the address labels."""
    return 30 + rows * (ROW + 8) + 34


def check_frame(svg: ET.Element, path: str, rows: int) -> None:
    height = height_of(rows)
    assert svg.get("width") == str(int(WIDTH) + 100)
    assert svg.get("height") == str(height)
    assert svg.get("viewBox") == f"-10 0 {int(WIDTH) + 100} {height}"
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == f"flash map of {path}"
    assert svg.get("class") == "map"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "span":
            self.styles.append(dict(attrs).get("style") or "")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


# --- one input, one decoded range -------------------------------------------------------------


def test_one_range_is_drawn_across_the_map_with_a_marker_per_finding_in_its_colour() -> None:
    base, size = 0x0002_0000, 0x3C00  # 15360 bytes: 16 bytes per unit
    per_unit = size / WIDTH
    key_at, cert_at, allowed_at = base + 0x300, base + 0x1000, base + 0x3BF0
    path = "build/zephyr/zephyr.elf"
    findings = (
        finding(path, key_at, section="rodata", symbol="dev_key", partition="app", length=100),
        finding(path, cert_at, kind=Kind.CERTIFICATE, encoding="DER", length=16),
    )
    allowed = (finding(path, allowed_at, encoding="DER", section="rodata", length=16),)
    ranges = (AddressRange(base, base + size, "text"),)
    html = page((coverage(path, size, ranges, findings=2),), findings, allowed)

    # the heading, the legend that explains the colours, then the input's name and its map
    lines = map_lines(html)
    assert lines[0] == "<h2>Flash maps</h2>"
    legend = _Text()
    legend.feed(lines[1])
    assert lines[1].startswith('<p class="legend muted">')
    assert lines[1].endswith("</p>")
    assert "".join(legend.chunks) == (
        "partition (partitions.yml)decoded bytes (segments, HEX runs, file)"
        "finding (hover for its address)allowed"
    )
    assert legend.styles == [
        f"background:{PARTITION_FILL}",
        f"background:{DECODED_FILL}",
        f"background:{COLOURS['FAIL']}",
        f"background:{COLOURS['allowed']}",
    ]
    assert lines[2] == f'<h3 class="map-title">{path}</h3>'
    assert len(lines) == 4
    svg = svg_of(html, path)
    check_frame(svg, path, rows=1)

    # one box: the decoded range, the whole width, in the first row (y 26)
    assert boxes(svg) == [
        Box(
            title=f"decoded text: {_hex(base)}-{_hex(base + size)} ({size} bytes)",
            x=0.0,
            y=26,
            width=WIDTH,
            height=ROW,
            fill=DECODED_FILL,
            stroke=DECODED_STROKE,
            label="text",
            label_at=(3.0, 26 + ROW - 7),
        )
    ]
    # the first and the last address under the map, at its two ends
    assert labels(svg, height_of(1)) == [
        (0.0, _hex(base), None),
        (WIDTH, _hex(base + size), "end"),
    ]
    assert gap_signs(svg) == []

    got = markers(svg)
    expected = [
        (key_at, "FAIL", f"{_hex(key_at)}: FAIL private-key PEM (app, rodata, dev_key)"),
        (cert_at, "note", f"{_hex(cert_at)}: note certificate DER"),
        (allowed_at, "allowed", f"{_hex(allowed_at)}: allowed private-key DER (rodata)"),
    ]
    assert len(got) == len(expected)
    for marker, (at, status, title) in zip(got, expected, strict=True):
        x = (at - base) / per_unit
        assert marker.address == str(at)
        assert marker.title == title
        assert marker.path == marker_path(x)
        assert marker.fill == COLOURS[status]
        assert marker.line == {
            "x1": f"{x:.1f}",
            "x2": f"{x:.1f}",
            "y1": "16",
            "y2": str(26 + ROW),
            "stroke": COLOURS[status],
            "stroke-width": "2",
        }


def test_a_range_without_a_name_is_a_decoded_range_and_has_no_text() -> None:
    base, size = 0x1000, 960
    path = "fw.hex"
    html = page((coverage(path, size, (AddressRange(base, base + size),)),))
    svg = svg_of(html, path)
    assert boxes(svg) == [
        Box(
            title=f"decoded range: {_hex(base)}-{_hex(base + size)} ({size} bytes)",
            x=0.0,
            y=26,
            width=WIDTH,
            height=ROW,
            fill=DECODED_FILL,
            stroke=DECODED_STROKE,
            label=None,
            label_at=None,
        )
    ]
    assert markers(svg) == []


# --- partitions above the decoded ranges ------------------------------------------------------


def test_partitions_are_a_row_above_the_ranges_and_name_themselves_only_where_the_name_fits() -> (
    None
):
    # one range of 1920 bytes: half a unit per byte; partitions inside it of chosen widths.
    # A name of n letters is drawn when its box is wider than 7 * n + 6 units.
    base = 0x0000_C000
    size = 1920
    path = "merged.hex"
    parts = [  # (offset in bytes, size in bytes, name): the box is size / 2 units wide
        (0, 40, "ab"),  # 20 units: exactly 7 * 2 + 6, too narrow
        (40, 41, "cd"),  # 20.5: wide enough
        (81, 42, "ef"),  # 21: wide enough
        (123, 30, "gh"),  # 15: too narrow
        (153, 3, None),  # 1.5 units, no name
        (156, 1, "k"),  # half a unit: drawn one unit wide, 13 units needed for its name
        (157, 1603, "app"),  # the rest
        (1760, 160, None),  # a partition without a name
    ]
    partitions = tuple(
        AddressRange(base + offset, base + offset + length, name) for offset, length, name in parts
    )
    at = base + 200
    findings = (finding(path, at, length=64, partition="app"),)
    ranges = (AddressRange(base, base + size, "flash"),)
    html = page((coverage(path, size, ranges, partitions, findings=1),), findings)
    svg = svg_of(html, path)
    check_frame(svg, path, rows=2)

    got = boxes(svg)
    assert len(got) == len(parts) + 1
    for box, (offset, length, name) in zip(got, parts, strict=False):
        x, width = offset / 2, length / 2
        fits = name is not None and width > 7 * len(name) + 6
        assert box == Box(
            title=(
                f"partition {name or ''}: {_hex(base + offset)}-{_hex(base + offset + length)}"
                f" ({length} bytes)"
            ),
            x=x,
            y=26,
            width=max(1.0, round(width, 1)),
            height=ROW,
            fill=PARTITION_FILL,
            stroke=PARTITION_STROKE,
            label=name if fits else None,
            label_at=(x + 3, 26 + ROW - 7) if fits else None,
        ), name
    # the decoded range is the second row: 8 units below the first
    assert got[-1] == Box(
        title=f"decoded flash: {_hex(base)}-{_hex(base + size)} ({size} bytes)",
        x=0.0,
        y=26 + ROW + 8,
        width=WIDTH,
        height=ROW,
        fill=DECODED_FILL,
        stroke=DECODED_STROKE,
        label="flash",
        label_at=(3.0, 26 + ROW + 8 + ROW - 7),
    )
    # the marker's line runs down to the bottom of the second row
    (marker,) = markers(svg)
    assert marker.path == marker_path((at - base) / 2)
    assert marker.line["y2"] == str(26 + ROW + 8 + ROW)
    assert marker.title == f"{_hex(at)}: FAIL private-key PEM (app)"
    assert labels(svg, height_of(2)) == [(0.0, _hex(base), None), (WIDTH, _hex(base + size), "end")]


def test_a_one_byte_range_fills_the_map() -> None:
    at = 0x00FF_8000
    path = "uicr.hex"
    svg = svg_of(page((coverage(path, 1, (AddressRange(at, at + 1, "uicr"),)),)), path)
    (box,) = boxes(svg)
    assert (box.x, box.width) == (0.0, WIDTH)
    assert box.title == f"decoded uicr: {_hex(at)}-{_hex(at + 1)} (1 bytes)"
    assert labels(svg, height_of(1)) == [(0.0, _hex(at), None), (WIDTH, _hex(at + 1), "end")]


def test_an_empty_range_is_drawn_as_a_one_byte_sliver() -> None:
    at = 0x0003_0000
    path = "empty.elf"
    svg = svg_of(page((coverage(path, 0, (AddressRange(at, at, "bss"),)),)), path)
    (box,) = boxes(svg)
    assert (box.x, box.width, box.label) == (0.0, 1.0, None)
    assert box.title == f"decoded bss: {_hex(at)}-{_hex(at)} (0 bytes)"
    assert labels(svg, height_of(1)) == [(0.0, _hex(at), None), (WIDTH, _hex(at + 1), "end")]


def test_an_empty_range_right_after_another_adds_nothing_to_the_map() -> None:
    base, size = 0x1000, 0x1E0  # 480 bytes: two units per byte
    path = "app.elf"
    ranges = (AddressRange(base, base + size, "text"), AddressRange(base + size, base + size))
    svg = svg_of(page((coverage(path, size, ranges),)), path)
    assert [(b.x, b.width) for b in boxes(svg)] == [(0.0, WIDTH), (WIDTH, 1.0)]
    assert labels(svg, height_of(1)) == [
        (0.0, _hex(base), None),
        (WIDTH, _hex(base + size), "end"),
    ]


# --- far apart parts side by side -------------------------------------------------------------


def test_two_far_parts_share_the_width_in_proportion_with_a_gap_sign_between() -> None:
    # 1280 and 6288 bytes: 80 : 393 of the 946 units left after one gap, that is 160 and 786
    low, low_size = 0x0001_0000, 1280
    high, high_size = 0x0008_0000, 6288
    usable = WIDTH - GAP
    low_w = usable * low_size / (low_size + high_size)
    high_w = usable * high_size / (low_size + high_size)
    assert (low_w, high_w) == (160.0, 786.0)
    high_x = low_w + GAP
    path = "zephyr.elf"
    in_low, in_high = low + 640, high + 3144
    findings = (finding(path, in_low), finding(path, in_high, length=32))
    ranges = (AddressRange(low, low + low_size, "a"), AddressRange(high, high + high_size, "b"))
    svg = svg_of(page((coverage(path, low_size + high_size, ranges, findings=2),), findings), path)

    assert [(b.x, b.width, b.title) for b in boxes(svg)] == [
        (0.0, low_w, f"decoded a: {_hex(low)}-{_hex(low + low_size)} ({low_size} bytes)"),
        (high_x, high_w, f"decoded b: {_hex(high)}-{_hex(high + high_size)} ({high_size} bytes)"),
    ]
    assert [m.path for m in markers(svg)] == [
        marker_path(low_w * 640 / low_size),
        marker_path(high_x + high_w * 3144 / high_size),
    ]
    # the low part is 160 units: room for both its addresses (each label about 80 units)
    assert labels(svg, height_of(1)) == [
        (0.0, _hex(low), None),
        (low_w, _hex(low + low_size), "end"),
        (high_x, _hex(high), None),
        (WIDTH, _hex(high + high_size), "end"),
    ]
    assert gap_signs(svg) == [(high_x - GAP / 2, 26 + ROW - 6)]


def test_a_narrow_part_shows_only_its_start_and_hides_the_next_start_it_would_overlap() -> None:
    # 320 and 7248 bytes: 40 and 906 units. The first part's end label and the second part's
    # start label would overlap its start label (about 80 units wide), so they are left out.
    low, low_size = 0x0000_0000, 320
    high, high_size = 0x0010_0000, 7248
    usable = WIDTH - GAP
    low_w = usable * low_size / (low_size + high_size)
    assert low_w == 40.0
    path = "two.elf"
    ranges = (AddressRange(low, low + low_size), AddressRange(high, high + high_size))
    svg = svg_of(page((coverage(path, low_size + high_size, ranges),)), path)
    assert labels(svg, height_of(1)) == [
        (0.0, _hex(low), None),
        (WIDTH, _hex(high + high_size), "end"),
    ]
    assert gap_signs(svg) == [(low_w + GAP / 2, 26 + ROW - 6)]


def test_three_far_parts_follow_each_other_one_gap_apart() -> None:
    # 1 : 1 : 2 of the 932 units left after two gaps: 233, 233, 466
    sizes = (1024, 1024, 2048)
    starts = (0x0000_0000, 0x0004_0000, 0x00FF_8000)
    usable = WIDTH - 2 * GAP
    widths = [usable * s / sum(sizes) for s in sizes]
    assert widths == [233.0, 233.0, 466.0]
    xs = [0.0, widths[0] + GAP, widths[0] + GAP + widths[1] + GAP]
    path = "three.hex"
    ranges = tuple(AddressRange(a, a + s) for a, s in zip(starts, sizes, strict=True))
    findings = tuple(finding(path, a + s // 2) for a, s in zip(starts, sizes, strict=True))
    svg = svg_of(page((coverage(path, sum(sizes), ranges, findings=3),), findings), path)
    assert [(b.x, b.width) for b in boxes(svg)] == list(zip(xs, widths, strict=True))
    assert [m.path for m in markers(svg)] == [
        marker_path(x + w / 2) for x, w in zip(xs, widths, strict=True)
    ]
    assert gap_signs(svg) == [(x - GAP / 2, 26 + ROW - 6) for x in xs[1:]]
    assert labels(svg, height_of(1)) == [
        label
        for x, w, a, s in zip(xs, widths, starts, sizes, strict=True)
        for label in ((x, _hex(a), None), (x + w, _hex(a + s), "end"))
    ]


def test_a_tiny_part_is_drawn_at_least_four_percent_wide_and_the_map_still_fills_the_width() -> (
    None
):
    low, high, high_size = 0x0000_1000, 0x0010_0000, 100_000
    usable = WIDTH - GAP
    floor = usable * 0.04  # the one-byte part would be a hundredth of a unit
    big = usable * high_size / (high_size + 1)
    fix = usable / (floor + big)
    path = "tiny.elf"
    ranges = (AddressRange(low, low + 1, "x"), AddressRange(high, high + high_size))
    svg = svg_of(page((coverage(path, high_size + 1, ranges),)), path)
    got = boxes(svg)
    assert [b.x for b in got] == [0.0, round(floor * fix + GAP, 1)]
    assert [b.width for b in got] == [round(floor * fix, 1), round(big * fix, 1)]
    assert labels(svg, height_of(1))[-1] == (WIDTH, _hex(high + high_size), "end")


@pytest.mark.parametrize(
    ("gap", "parts"),
    [
        (10, 1),  # a small hole: one part
        (193, 1),  # the hole is 1/16 of the 3100 bytes held (rounded down): still one part
        (194, 2),  # one byte more: two parts with a gap sign between
    ],
)
def test_parts_closer_than_a_sixteenth_of_their_size_are_drawn_as_one(gap: int, parts: int) -> None:
    base = 0x0080_0000
    first, second = 1600, 1500
    start2 = base + first + gap
    path = "near.hex"
    ranges = (AddressRange(base, base + first), AddressRange(start2, start2 + second))
    svg = svg_of(page((coverage(path, first + second, ranges),)), path)
    end = start2 + second
    if parts == 1:  # the hole is drawn to scale
        x2 = WIDTH * (start2 - base) / (end - base)
        assert [(b.x, b.width) for b in boxes(svg)] == [
            (0.0, round(WIDTH * first / (end - base), 1)),
            (round(x2, 1), round(WIDTH - x2, 1)),
        ]
        assert gap_signs(svg) == []
        assert labels(svg, height_of(1)) == [(0.0, _hex(base), None), (WIDTH, _hex(end), "end")]
    else:
        usable = WIDTH - GAP
        w1 = usable * first / (first + second)
        assert [(b.x, b.width) for b in boxes(svg)] == [
            (0.0, round(w1, 1)),
            (round(w1 + GAP, 1), round(usable * second / (first + second), 1)),
        ]
        assert len(gap_signs(svg)) == 1


# --- findings that reach past the decoded bytes -----------------------------------------------


def test_a_finding_running_past_the_range_widens_the_map_to_its_end() -> None:
    base, size = 0x2000, 896  # the finding ends 64 bytes later: 960 bytes, one per unit
    at, length = base + size - 16, 80
    path = "past.elf"
    findings = (finding(path, at, length=length),)
    ranges = (AddressRange(base, base + size, "data"),)
    svg = svg_of(page((coverage(path, size, ranges, findings=1),), findings), path)
    assert [(b.x, b.width) for b in boxes(svg)] == [(0.0, float(size))]
    assert [m.path for m in markers(svg)] == [marker_path(float(at - base))]
    assert labels(svg, height_of(1))[-1] == (WIDTH, _hex(at + length), "end")


def test_a_one_byte_finding_on_the_last_byte_does_not_widen_the_map() -> None:
    base, size = 0x2000, 960
    for length in (0, 1):
        at = base + size - 1
        path = f"last{length}.elf"
        findings = (finding(path, at, length=length),)
        svg = svg_of(
            page((coverage(path, size, (AddressRange(base, base + size),), findings=1),), findings),
            path,
        )
        assert [m.path for m in markers(svg)] == [marker_path(float(size - 1))]
        assert labels(svg, height_of(1))[-1] == (WIDTH, _hex(base + size), "end")


# --- inputs without flash addresses -----------------------------------------------------------


def test_a_file_without_addresses_is_mapped_by_file_offset_when_something_was_found() -> None:
    size = 1920  # two bytes per unit
    path = "blob.bin"
    at, cert_at = 600, 0
    findings = (
        finding(path, None, offset=at, length=121),
        finding(path, None, kind=Kind.CERTIFICATE, encoding="DER", offset=cert_at, length=300),
    )
    html = page((coverage(path, size, findings=2),), findings)
    svg = svg_of(html, path)
    check_frame(svg, path, rows=1)
    assert boxes(svg) == [
        Box(
            title=f"file offsets: {_hex(0)}-{_hex(size)} ({size} bytes)",
            x=0.0,
            y=26,
            width=WIDTH,
            height=ROW,
            fill=DECODED_FILL,
            stroke=DECODED_STROKE,
            label="file offsets",
            label_at=(3.0, 26 + ROW - 7),
        )
    ]
    got = markers(svg)
    assert [(m.address, m.title, m.path, m.fill) for m in got] == [
        (str(at), f"file offset {at}: FAIL private-key PEM", marker_path(at / 2), COLOURS["FAIL"]),
        (
            str(cert_at),
            f"file offset {cert_at}: note certificate DER",
            marker_path(cert_at / 2),
            COLOURS["note"],
        ),
    ]
    assert labels(svg, height_of(1)) == [(0.0, _hex(0), None), (WIDTH, _hex(size), "end")]


def test_a_finding_past_the_recorded_size_of_a_file_is_drawn_at_its_offset() -> None:
    # 100 bytes of file and a 40-byte finding far behind them: two parts, 100 : 40 of 946 units
    size, at, length = 100, 4000, 40
    usable = WIDTH - GAP
    w0 = usable * size / (size + length)
    path = "grown.bin"
    findings = (finding(path, None, offset=at, length=length),)
    svg = svg_of(page((coverage(path, size, findings=1),), findings), path)
    assert labels(svg, height_of(1)) == [
        (0.0, _hex(0), None),
        (round(w0, 1), _hex(size), "end"),
        (round(w0 + GAP, 1), _hex(at), None),
        (WIDTH, _hex(at + length), "end"),
    ]
    assert len(gap_signs(svg)) == 1
    (box,) = boxes(svg)
    assert box.title == f"file offsets: {_hex(0)}-{_hex(size)} ({size} bytes)"
    assert (box.x, box.width) == (0.0, round(w0, 1))
    (marker,) = markers(svg)
    assert (marker.address, marker.path) == (str(at), marker_path(round(w0 + GAP, 1)))


@pytest.mark.parametrize("size", [0, 1])
def test_an_empty_or_one_byte_file_is_mapped_over_one_byte(size: int) -> None:
    path = "one.bin"
    findings = (finding(path, None, offset=0, length=1),)
    svg = svg_of(page((coverage(path, size, findings=1),), findings), path)
    (box,) = boxes(svg)
    assert (box.title, box.width) == (f"file offsets: {_hex(0)}-{_hex(1)} (1 bytes)", WIDTH)
    (marker,) = markers(svg)
    assert (marker.address, marker.path) == ("0", marker_path(0.0))


def test_a_finding_at_address_zero_is_marked_at_zero() -> None:
    path = "zero.hex"
    findings = (finding(path, 0, length=16),)
    svg = svg_of(page((coverage(path, 960, (AddressRange(0, 960),), findings=1),), findings), path)
    (marker,) = markers(svg)
    assert (marker.address, marker.path) == ("0", marker_path(0.0))
    assert marker.title == f"{_hex(0)}: FAIL private-key PEM"


def test_which_inputs_get_a_map() -> None:
    key_file = "keys/dev.pem"  # a text file: no address and no offset
    mapped = "fw.elf"
    none = "readme.txt"  # nothing found and nothing decoded
    findings = (finding(key_file, None), finding(mapped, 0x1100))
    allowed = (finding(mapped, 0x1200),)
    items = (
        coverage(key_file, 241, findings=1),
        coverage(none, 10),
        coverage(mapped, 960, (AddressRange(0x1000, 0x13C0),), findings=1),
    )
    html = page(items, findings, allowed)
    lines = map_lines(html)
    assert [line for line in lines if line.startswith("<h3")] == [
        f'<h3 class="map-title">{mapped}</h3>'
    ]
    assert [m.fill for m in markers(svg_of(html, mapped))] == [COLOURS["FAIL"], COLOURS["allowed"]]
    # the findings table leaves the address of the key file's finding empty
    assert '<td class="mono addr"></td>' in html
    assert f'<td class="mono addr">{_hex(0x1100)}</td>' in html


def test_without_any_map_the_page_says_so_and_shows_no_legend() -> None:
    path = "keys/dev.pem"
    findings = (finding(path, None),)
    html = page((coverage(path, 241, findings=1), coverage("b.txt", 3)), findings)
    assert map_lines(html) == [
        "<h2>Flash maps</h2>",
        "<p>No input decodes to flash addresses.</p>",
    ]


def test_maps_of_several_inputs_follow_each_other() -> None:
    items = (
        coverage("a.elf", 960, (AddressRange(0, 960),)),
        coverage("b.hex", 960, (AddressRange(0x1000, 0x13C0),)),
    )
    lines = map_lines(page(items))
    assert lines[0] == "<h2>Flash maps</h2>"
    assert lines[1].startswith('<p class="legend muted">')
    assert lines[2] == '<h3 class="map-title">a.elf</h3>'
    assert lines[4] == '<h3 class="map-title">b.hex</h3>'
    assert len(lines) == 6


def test_an_input_with_only_allowed_findings_is_mapped_with_grey_markers() -> None:
    path = "allowed.hex"
    at = 0x1000 + 480
    allowed = (finding(path, at, encoding="DER"),)
    html = page((coverage(path, 960, (AddressRange(0x1000, 0x13C0),)),), allowed=allowed)
    (marker,) = markers(svg_of(html, path))
    assert (marker.title, marker.fill, marker.path) == (
        f"{_hex(at)}: allowed private-key DER",
        COLOURS["allowed"],
        marker_path(480.0),
    )


def test_every_far_part_shows_its_start_address_after_the_end_label_of_the_part_before() -> None:
    """After a part's end label, the next part's start address is shown (it was left out when
    the end label's room, summed in another order, came out one rounding step past the next
    part's x: about 2 % of maps of 3 to 6 parts)."""
    # 1408, 1920 and 256 bytes: 366.1, 499.3 and 66.6 units; the second part is wide enough
    # for both its labels, so nothing hides the third part's start address
    sizes = (1408, 1920, 256)
    starts = (0x0000_0000, 0x0010_0000, 0x0020_0000)
    path = "parts.elf"
    ranges = tuple(AddressRange(a, a + s) for a, s in zip(starts, sizes, strict=True))
    svg = svg_of(page((coverage(path, sum(sizes), ranges),)), path)
    shown = [text for _, text, _ in labels(svg, height_of(1))]
    assert [_hex(a) for a in starts if _hex(a) not in shown] == []
