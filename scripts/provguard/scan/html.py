"""`provguard scan --format html -o report.html`: one self-contained page for a person.

The page has the verdict on top, the findings as a table, what was read of each input (coverage)
and what was not (unchecked), and for each input a flash map: an inline SVG of its partitions
(partitions.yml) or the ranges the image decodes to (ELF segments, HEX runs), with a marker at
each finding whose tooltip (SVG `<title>`) gives its address. Nothing is loaded from anywhere:
the styles are inline, there is no script, and a Content-Security-Policy forbids any fetch.

Every name that comes from an input (file, member, section, symbol, allowlist entry) goes through
`report.escape` (control characters and undecodable bytes as `\\xNN`, as in the text report) and
then `html.escape`; no key material is ever on the page: keys are named by fingerprint.
"""

from __future__ import annotations

import bisect
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provguard import __version__
from provguard.scan.model import AddressRange, Coverage, Finding, Kind, ScanResult, Verdict
from provguard.scan.report import escape

WIDTH = 960  # of the flash map, in SVG user units
GAP = 14  # width of a gap between two parts of the address space that are far apart
ROW = 22


def _h(text: object) -> str:
    """Input-derived text, safe in HTML element content and attribute values."""
    return html.escape(escape(str(text)), quote=True)


def _hex(value: int | None) -> str:
    return "" if value is None else f"0x{value:08X}"


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.6em 0 .4em; }
.verdict { font-size: 2em; font-weight: 700; padding: .3em .6em; border-radius: 6px;
  display: inline-block; margin: .2em 0 .4em; }
.verdict.fail { background: #fde2e1; color: #a1130b; border: 2px solid #a1130b; }
.verdict.unchecked { background: #fff3cd; color: #7a5200; border: 2px solid #b07a00; }
.verdict.clean { background: #e3f6e5; color: #1b6b2a; border: 2px solid #1b6b2a; }
table { border-collapse: collapse; margin: .3em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f2f2f4; }
td { overflow-wrap: break-word; }
td.path { min-width: 10em; overflow-wrap: anywhere; }
td.mono, span.mono { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
td.addr { white-space: nowrap; word-break: normal; }
.legend span { display: inline-block; width: 1em; height: .8em; margin: 0 .3em 0 1em;
  border: 1px solid #555; vertical-align: middle; }
tr.fail td:first-child { border-left: 4px solid #a1130b; }
tr.allowed { color: #666; }
.map { margin: .3em 0 1em; }
.map text { font: 11px system-ui, sans-serif; }
.muted { color: #666; }
"""


def write_html(result: ScanResult, fail_on: Kind) -> str:
    verdict = result.verdict(fail_on)
    title, css = {
        Verdict.FAIL: ("FAIL", "fail"),
        Verdict.NOT_CLEAN: ("NOT CLEAN (unchecked)", "unchecked"),
        Verdict.CLEAN: ("clean", "clean"),
    }[verdict]
    keys = sum(1 for f in result.findings if f.kind is Kind.PRIVATE_KEY)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>provguard scan: {title}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>provguard scan</h1>",
        f'<div class="verdict {css}" id="verdict">{title}</div>',
        f"<p>{len(result.coverage)} file(s) and archive member(s), "
        f"{sum(c.size for c in result.coverage)} bytes; "
        f"{keys} private key(s), {len(result.findings) - keys} certificate(s), "
        f"{len(result.allowed)} allowed, {len(result.unchecked)} part(s) unchecked; "
        f"fails on {fail_on.value}.</p>",
    ]
    parts += _findings_table(result, fail_on)
    parts += _unchecked_list(result)
    parts += _coverage_table(result)
    parts += _maps(result, fail_on)
    parts.append(f'<p class="muted">provguard {html.escape(__version__)}</p></body></html>')
    return "\n".join(parts) + "\n"


def _findings_table(result: ScanResult, fail_on: Kind) -> list[str]:
    rows = [(f, "FAIL" if f.kind.rank >= fail_on.rank else "note") for f in result.findings]
    rows += [(f, "allowed") for f in result.allowed]
    out = [f"<h2>Findings ({len(result.findings)}, {len(result.allowed)} allowed)</h2>"]
    if not rows:
        return [*out, "<p>No private key or certificate was found.</p>"]
    out.append('<table id="findings"><thead><tr>')
    out += [
        f"<th>{h}</th>"
        for h in (
            "status",
            "file",
            "partition",
            "address",
            "file offset",
            "section / symbol",
            "kind",
            "encoding",
            "key fingerprint",
            "known from",
            "allowed by",
        )
    ]
    out.append("</tr></thead><tbody>")
    for finding, status in rows:
        where = " / ".join(_h(x) for x in (finding.section, finding.symbol) if x)
        out.append(
            f'<tr class="{status.lower()}"><td>{status}</td>'
            f'<td class="path">{_h(finding.path)}</td>'
            f"<td>{_h(finding.partition or '')}</td>"
            f'<td class="mono addr">{_hex(finding.address)}</td>'
            f'<td class="mono">{"" if finding.file_offset is None else finding.file_offset}</td>'
            f"<td>{where}</td><td>{finding.kind.value}</td><td>{_h(finding.encoding)}</td>"
            f'<td class="mono">{_h(finding.key)}</td><td>{_h(finding.known or "")}</td>'
            f"<td>{_h(finding.allowed_by or '')}</td></tr>"
        )
    out.append("</tbody></table>")
    return out


def _unchecked_list(result: ScanResult) -> list[str]:
    if not result.unchecked:
        return []
    out = [f"<h2>Unchecked ({len(result.unchecked)})</h2>", '<ul id="unchecked">']
    for item in result.unchecked:
        where = f" (line {item.line})" if item.line is not None else ""
        where += f" (offset {item.offset})" if item.offset is not None else ""
        out.append(f"<li><b>{_h(item.path)}</b>: {_h(item.reason)}{where}</li>")
    out.append("</ul>")
    return out


def _coverage_table(result: ScanResult) -> list[str]:
    out = ["<h2>Coverage</h2>", '<table id="coverage"><thead><tr>']
    out += [
        f"<th>{h}</th>"
        for h in ("input", "state", "format", "bytes", "searched", "flash ranges", "notes")
    ]
    out.append("</tr></thead><tbody>")
    for item in result.coverage:
        ranges = ", ".join(
            f"{_hex(r.start)}-{_hex(r.end)}" + (f" {_h(r.label)}" if r.label else "")
            for r in item.ranges[:12]
        )
        if len(item.ranges) > 12:
            ranges += f", +{len(item.ranges) - 12} more"
        notes = [*(_h(n) for n in item.notes), *(_h(u.reason) for u in item.unchecked)]
        if item.members:
            notes.append(f"{len(item.members)} member(s)")
        out.append(
            f'<tr><td class="path">{_h(item.path)}</td><td class="addr">{item.state.value}</td>'
            f"<td>{_h(item.format)}</td>"
            f"<td>{item.size}</td><td>{item.examined}</td>"
            f'<td class="mono">{ranges}</td><td>{"; ".join(notes)}</td></tr>'
        )
    out.append("</tbody></table>")
    return out


# --- flash maps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    """Addresses to x: the parts of the address space that hold something, side by side, each
    at least a sliver wide, with a fixed gap where nothing is (flash and UICR are far apart)."""

    starts: tuple[int, ...]  # cluster start addresses
    ends: tuple[int, ...]
    xs: tuple[float, ...]  # x of each cluster's start
    widths: tuple[float, ...]

    @classmethod
    def of(cls, intervals: Iterable[tuple[int, int]]) -> _Scale:
        merged: list[list[int]] = []
        for start, end in sorted(intervals):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, max(end, start + 1)])
        # parts closer than 1/16 of the whole are shown as one, gap included
        span = sum(b - a for a, b in merged) or 1
        clusters: list[list[int]] = []
        for start, end in merged:
            if clusters and start - clusters[-1][1] <= span // 16:
                clusters[-1][1] = end
            else:
                clusters.append([start, end])
        usable = WIDTH - GAP * (len(clusters) - 1)
        total = sum(b - a for a, b in clusters)
        floor = usable * 0.04
        raw = [max(floor, usable * (b - a) / total) for a, b in clusters]
        fix = usable / sum(raw)
        widths = [w * fix for w in raw]
        xs, x = [], 0.0
        for w in widths:
            xs.append(x)
            x += w + GAP
        return cls(
            tuple(a for a, _ in clusters),
            tuple(b for _, b in clusters),
            tuple(xs),
            tuple(widths),
        )

    def x(self, address: int) -> float:
        i = max(0, bisect.bisect_right(self.starts, address) - 1)
        start, end = self.starts[i], self.ends[i]
        inside = min(max(address, start), end)
        return self.xs[i] + self.widths[i] * (inside - start) / max(1, end - start)


def _maps(result: ScanResult, fail_on: Kind) -> list[str]:
    by_path: dict[str, list[tuple[Finding, str]]] = {}
    for f in result.findings:
        by_path.setdefault(f.path, []).append(
            (f, "FAIL" if f.kind.rank >= fail_on.rank else "note")
        )
    for f in result.allowed:
        by_path.setdefault(f.path, []).append((f, "allowed"))
    out = [
        "<h2>Flash maps</h2>",
        '<p class="legend muted">'
        '<span style="background:#dfe7f5"></span>partition (partitions.yml)'
        '<span style="background:#e6efe1"></span>decoded bytes (segments, HEX runs, file)'
        '<span style="background:#c4170c"></span>finding (hover for its address)'
        '<span style="background:#888"></span>allowed</p>',
    ]
    drawn = 0
    for item in result.coverage:
        svg = _map(item, by_path.get(item.path, []))
        if svg:
            out += [f'<h3 class="map-title">{_h(item.path)}</h3>', svg]
            drawn += 1
    if not drawn:
        return [out[0], "<p>No input decodes to flash addresses.</p>"]  # and no legend
    return out


def _map(item: Coverage, findings: Sequence[tuple[Finding, str]]) -> str | None:
    """The SVG of one input, or None when it has no address to show."""
    ranges = list(item.ranges)
    partitions = list(item.partitions)
    placed = [(f, s) for f, s in findings if f.address is not None]
    offsets = False
    if not ranges and not partitions:
        placed = [(f, s) for f, s in findings if f.file_offset is not None]
        if not placed:
            return None  # a text or key file with nothing in it: no map to draw
        ranges = [AddressRange(0, max(item.size, 1), "file offsets")]
        offsets = True
    intervals = [(r.start, r.end) for r in (*ranges, *partitions)]
    intervals += [(_at(f, offsets), _at(f, offsets) + max(1, f.length)) for f, _ in placed]
    scale = _Scale.of(intervals)
    rows = (1 if partitions else 0) + 1
    height = 30 + rows * (ROW + 8) + 34
    out = [
        f'<svg class="map" xmlns="http://www.w3.org/2000/svg" width="{WIDTH + 100}" '
        f'height="{height}" viewBox="-10 0 {WIDTH + 100} {height}" role="img" '
        f'aria-label="flash map of {_h(item.path)}">'
    ]
    y = 26
    if partitions:
        for r in partitions:
            out.append(_box(scale, r, y, "#dfe7f5", "#5b79a8", f"partition {r.label or ''}"))
        y += ROW + 8
    for r in ranges:
        what = "file offsets" if offsets else f"decoded {r.label or 'range'}"
        out.append(_box(scale, r, y, "#e6efe1", "#6b8f5a", what))
    label_room = 80  # an address label is about this wide
    free = 0.0  # where the next label may start without overlapping the last one
    for i, (start, end) in enumerate(zip(scale.starts, scale.ends, strict=True)):
        x, width = scale.xs[i], scale.widths[i]
        if x >= free:
            out.append(f'<text x="{x:.1f}" y="{height - 4}" class="muted">{_hex(start)}</text>')
            free = x + label_room
        if i:
            out.append(
                f'<text x="{x - GAP / 2:.1f}" y="{y + ROW - 6}" text-anchor="middle">≈</text>'
            )
        if x + width - label_room >= free:
            # the next part's own x, not x + width + GAP again: summed in another order, that
            # can exceed it by a rounding step and hide the next part's start address
            free = scale.xs[i + 1] if i + 1 < len(scale.xs) else x + width + GAP
            out.append(
                f'<text x="{x + width:.1f}" y="{height - 4}" text-anchor="end" '
                f'class="muted">{_hex(end)}</text>'
            )
    for finding, status in placed:
        at = _at(finding, offsets)
        x = scale.x(at)
        colour = {"FAIL": "#c4170c", "note": "#d98a00", "allowed": "#888"}[status]
        where = f"file offset {at}" if offsets else _hex(at)
        extra = ", ".join(str(v) for v in (finding.partition, finding.section, finding.symbol) if v)
        tip = f"{where}: {status} {finding.kind.value} {finding.encoding}" + (
            f" ({extra})" if extra else ""
        )
        out.append(
            f'<g class="marker" data-address="{at}"><title>{_h(tip)}</title>'
            f'<path d="M{x - 6:.1f},4 L{x + 6:.1f},4 L{x:.1f},16 Z" fill="{colour}"/>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="16" y2="{y + ROW}" stroke="{colour}" '
            f'stroke-width="2"/></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _at(finding: Finding, offsets: bool) -> int:
    value = finding.file_offset if offsets else finding.address
    return value or 0


def _box(scale: _Scale, r: AddressRange, y: int, fill: str, stroke: str, what: str) -> str:
    x0, x1 = scale.x(r.start), scale.x(r.end)
    width = max(1.0, x1 - x0)
    label = _h(r.label or "")
    tip = _h(f"{what}: {_hex(r.start)}-{_hex(r.end)} ({r.end - r.start} bytes)")
    text = (
        f'<text x="{x0 + 3:.1f}" y="{y + ROW - 7}">{label}</text>'
        if label and width > 7 * len(r.label or "") + 6
        else ""
    )
    return (
        f'<g class="range"><title>{tip}</title>'
        f'<rect x="{x0:.1f}" y="{y}" width="{width:.1f}" height="{ROW}" fill="{fill}" '
        f'stroke="{stroke}"/>{text}</g>'
    )
