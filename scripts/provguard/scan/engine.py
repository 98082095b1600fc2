"""The scan itself: images in, findings and coverage out.

Reading files happens at the edge (`plan` picks them through `walk`, `scan_task` reads one: an
archive as a stream, a HEX as it is read, a large raw file in windows, anything else whole);
`scan_images` and the searches are pure. Every input ends in one state (see `model`): whatever a
reader could not decode is `Unchecked`, and so is any input that cannot be read at all (special
file, permission, internal error), so a scan never says "clean" about bytes it did not search.
"""

from __future__ import annotations

import binascii
import bisect
import dataclasses
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from provguard.errors import InputError
from provguard.scan.allow import Allowlist
from provguard.scan.archive import Chunk, Location, Outcome, file_format, read_archive
from provguard.scan.archive import State as ArchiveState
from provguard.scan.detectors import (
    DETECTORS,
    MAX_OBJECT,
    Candidates,
    Detection,
    Detector,
    candidates,
    detect,
)
from provguard.scan.hexfile import (
    HEAD,
    lines_of_addresses,
    looks_like_hex,
    read_intel_hex_stream,
)
from provguard.scan.known import KnownIndex
from provguard.scan.model import (
    AddressRange,
    Coverage,
    Finding,
    Image,
    Kind,
    Region,
    ScanResult,
    Segment,
    Unchecked,
    symbol_at,
)
from provguard.scan.readers import (
    HEX_SUFFIXES,
    HEX_TEXT,
    IMAGE_SUFFIXES,
    Options,
    hex_image,
    read_bytes,
)
from provguard.scan.walk import (
    Entry,
    EntryState,
    FileId,
    Unreadable,
    WalkOptions,
    classify,
    open_file,
    walk,
)

#: Files up to this size are read into memory and decoded by format; larger ones are searched
#: as raw bytes in windows (a structure that large is reported as not decoded).
MAX_DECODE = 256 << 20
WINDOW = 16 << 20
#: Intel HEX text decoded as it is read up to this size (its data, held to be searched as one
#: whole, is about a third of it); a larger HEX is searched as raw text, its records unchecked.
MAX_HEX_TEXT = 3 * MAX_DECODE
#: Windows overlap by at least the longest object looked for, so nothing is lost between them.
MIN_OVERLAP = 4 * MAX_OBJECT
#: ... and each is read with this much of the one before it, whose hits it does not own: the tail
#: of a key that starts before the window is then seen as that key's, not as what is left of a
#: damaged one (`detectors.salvaged_keys`: a key's core is at most 32 bytes in).
LEAD = 64


@dataclass(frozen=True)
class Hit:
    """Something found in one segment, before it becomes a `Finding` with addresses."""

    start: int
    end: int
    kind: Kind
    encoding: str
    key: str  # fingerprint
    known: str | None = None  # the --key/--cert/--from file, when it was given
    algorithm: str | None = None

    @property
    def fragment(self) -> bool:
        return self.encoding.startswith("fragment")

    def inside(self, other: Hit) -> bool:
        """Whether this is part of `other`: the same key or certificate, within its bytes."""
        same = other.kind is self.kind and other.key == self.key
        return same and other.start <= self.start and self.end <= other.end


_UTF16 = {
    "UTF-16LE": (b"-\x00-\x00-\x00-\x00-\x00B\x00E\x00G\x00I\x00N\x00", 0),
    "UTF-16BE": (b"\x00-\x00-\x00-\x00-\x00-\x00B\x00E\x00G\x00I\x00N", 1),
}


#: Bytes written in C source as literals, which is how a key file gets into a build as a header:
#: `xxd -i`, Zephyr's `generate_inc_file_for_target` (`0x30, 0x81, ...`) or a string of `\x`
#: escapes. Each kind: (name, one literal, what may come between two, the expression that numbers
#: the literals of a run: a comment matches it with no digits). A comment may sit between two
#: array elements (`/* 0x000010 */`, an offset some tools write).
_BETWEEN = rb"[ \t\r\n]*,(?:[ \t\r\n]|/\*[^*]{0,80}\*/|//[^\n]{0,80}\n)*"
_BYTE = rb"0[xX][0-9a-fA-F]{1,2}(?![0-9a-fA-F])"
_ESCAPE = rb"\\x[0-9a-fA-F]{2}"
#: A whole Ed25519 key is 48 bytes, a fragment of a known key 32: a shorter run holds neither.
MIN_LITERALS = 32
_LITERALS = (
    (
        "a C byte array",
        _BYTE,
        _BETWEEN,
        re.compile(rb"/\*[^*]{0,80}\*/|//[^\n]{0,80}\n|0[xX]([0-9a-fA-F]{1,2})"),
    ),
    # a string may be cut into several, one per line: "\x30\x81" "\x87..."
    (
        "hex escapes in a C string",
        _ESCAPE,
        rb'(?:"[ \t\r\n]*")?',
        re.compile(rb"\\x([0-9a-fA-F]{2})"),
    ),
)
#: A run is found by its first MIN_LITERALS literals and then followed a bounded number at a time:
#: one regular expression over a whole array of megabytes would keep a backtracking state per
#: literal (gigabytes).
_RUNS = tuple(
    (
        name,
        re.compile(literal + rb"(?:" + between + literal + rb"){%d}" % (MIN_LITERALS - 1)),
        re.compile(rb"(?:" + between + literal + rb"){1,4096}"),
        token,
    )
    for name, literal, between, token in _LITERALS
)
_COMMENT = re.compile(rb"/\*[^*]{0,80}\*/|//[^\n]{0,80}\n")
_ONE_DIGIT = re.compile(rb"0[xX]([0-9a-fA-F])(?![0-9a-fA-F])")
_NOT_HEX = bytes(c for c in range(256) if c not in b"0123456789abcdefABCDEF")


def _runs(
    first: re.Pattern[bytes], more: re.Pattern[bytes], data: bytes
) -> Iterator[tuple[int, int]]:
    """[start, end) of each run of at least MIN_LITERALS literals in `data`."""
    at = 0
    while (start := first.search(data, at)) is not None:
        end = start.end()
        while (longer := more.match(data, end)) is not None:
            end = longer.end()
        yield start.start(), end
        at = end


def _spelled(run: bytes) -> bytes:
    """The bytes a run of literals spells (in C, with no object per literal: an array may hold
    megabytes): comments out, `0x0` made `0x00`, then the `0x` and all but hex digits."""
    if b"/" in run:
        run = _COMMENT.sub(b"", run)
    run = _ONE_DIGIT.sub(rb"0x0\1", run)
    # the \x of an escape goes with everything else that is no hex digit
    run = run.replace(b"0x", b"").replace(b"0X", b"")
    return bytes.fromhex(run.translate(None, _NOT_HEX).decode("ascii"))


#: What a run of each kind must hold, found by a search that starts with a fixed byte (fast): most
#: text files hold neither, and the run expressions would be tried at every `0` of them.
_LITERAL_HINTS = (re.compile(rb",[ \t\r\n]*0[xX][0-9a-fA-F]"), re.compile(rb"\\x[0-9a-fA-F]{2}\\x"))


def _literal_hits(data: bytes, known: KnownIndex, detectors: Sequence[Detector]) -> list[Hit]:
    """What is in the bytes that runs of C literals in `data` (text) spell, each hit at the
    literals that hold it: a key is in such a header in no other form."""
    hits: list[Hit] = []
    for (name, first, more, token), hint in zip(_RUNS, _LITERAL_HINTS, strict=True):
        if hint.search(data) is None:
            continue
        for start, end in _runs(first, more, data):
            found = _search(_spelled(data[start:end]), known, detectors)
            if not found:
                continue
            # where the literals of the hits' first and last bytes are, in one pass
            wanted = {i for h in found for i in (h.start, h.end - 1)}
            spans: dict[int, tuple[int, int]] = {}
            literals = (m for m in token.finditer(data, start, end) if m[1])
            for index, literal in enumerate(literals):
                if index in wanted:
                    spans[index] = literal.span()
                    if len(spans) == len(wanted):
                        break
            hits += [
                dataclasses.replace(
                    h,
                    start=spans[h.start][0],
                    end=spans[h.end - 1][1],
                    encoding=f"{h.encoding} as {name}",
                )
                for h in found
            ]
    return hits


#: A PEM file encoded in base64 once more, as a Kubernetes secret, a CI variable or a JSON field
#: holds one (`base64 -w0 key.pem`): `-----BEGIN` in base64 at each of the three byte alignments,
#: with how many characters before it its base64 quantum starts.
_BASE64_BEGIN = {b"LS0tLS1CRUdJTi": 0, b"0tLS0tQkVHSU4": 2, b"tLS0tLUJFR0lO": 3}
_BASE64_BEGIN_AT = re.compile(b"|".join(_BASE64_BEGIN))
#: Base64 text, lines of it one block (`base64` wraps at 76 characters, and a BEGIN may be cut
#: by a line break; the last line may be short): searched for a BEGIN without its line breaks.
_BASE64_BLOCK = re.compile(rb"[A-Za-z0-9+/]{16,}(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/]+)*")


def _base64_pem_hits(data: bytes, known: KnownIndex, detectors: Sequence[Detector]) -> list[Hit]:
    """What is in PEM text that `data` holds in base64, each hit at the base64 characters that
    hold it (a block is decoded from the quantum of its first `-----BEGIN` to its end)."""
    hits: list[Hit] = []
    # Blocks are looked for only in a text with a BEGIN in base64 (the block expression tries
    # every letter of a text), its line breaks and indentation taken out (a wrapped BEGIN may be
    # cut). First a cheaper test: five dashes hold three at a base64 quantum at any alignment,
    # `LS0t`, and a PEM block has four runs of five, which one line break cannot all cut.
    if b"LS0t" not in data:
        return hits
    joined = data.translate(None, b" \t\r\n")
    if all(marker not in joined for marker in _BASE64_BEGIN):
        return hits
    for block in _BASE64_BLOCK.finditer(data):
        text = block[0].translate(None, b" \t\r\n")
        marker = _BASE64_BEGIN_AT.search(text)
        if marker is None:
            continue
        first = max(0, marker.start() - _BASE64_BEGIN[marker[0]])
        body = text[first:]
        if len(body) % 4 == 1:  # a lone last character holds no byte (and a2b_base64 refuses it)
            body = body[:-1]
        found = _search(binascii.a2b_base64(body + b"=="), known, detectors)  # padding enough
        if not found:
            continue
        # the characters that hold each hit: 4 for every 3 bytes, from the quantum it starts in
        last = len(text) - 1
        spans = [
            (first + h.start // 3 * 4, min(last, first + -(-h.end // 3) * 4 - 1)) for h in found
        ]
        where = _positions(block[0], block.start(), [i for span in spans for i in span])
        hits += [
            dataclasses.replace(
                h, start=where[a], end=where[b] + 1, encoding=f"{h.encoding} in base64"
            )
            for h, (a, b) in zip(found, spans, strict=True)
        ]
    return hits


_SPACE = re.compile(rb"[ \t\r\n]+")


def _positions(block: bytes, offset: int, wanted: list[int]) -> dict[int, int]:
    """Where in the data (`block` starting at `offset`) the non-space characters of `block`
    numbered `wanted` are, in one pass over its line breaks (no list of every character)."""
    out: dict[int, int] = {}
    targets = iter(sorted(set(wanted)))
    target = next(targets, None)
    skipped = 0  # white space before the characters counted so far
    for space in _SPACE.finditer(block):
        while target is not None and target + skipped < space.start():
            out[target] = offset + target + skipped
            target = next(targets, None)
        if target is None:
            return out
        skipped += space.end() - space.start()
    while target is not None:
        out[target] = offset + target + skipped
        target = next(targets, None)
    return out


def scan_segment(
    data: bytes, known: KnownIndex, detectors: Sequence[Detector] = DETECTORS, *, text: bool = False
) -> list[Hit]:
    """Known credentials and always-on detections in one segment, one hit per object; text
    stored as UTF-16 (a PEM block written by a Windows tool) is searched as its characters, and
    in `text` (source code, configuration) the bytes that runs of C literals spell and PEM text
    encoded in base64 are searched too."""
    found = candidates(data)
    hits = _search(data, known, detectors, found)
    if text:
        hits += _literal_hits(data, known, detectors)
        hits += _base64_pem_hits(data, known, detectors)
    # one test for both byte orders (re: bytes.find crawls through zero fill for this needle)
    if not found.utf16:
        return _merge(hits)
    wide: list[tuple[Hit, int]] = []  # (hit, how many of its neighbours read as text)
    for name, (marker, skew) in _UTF16.items():
        searched = 0  # the end of the last text searched: each run of text is searched once
        for match in re.finditer(re.escape(marker), data):
            if match.start() < searched:
                continue
            first, searched = _utf16_text(data, match.start(), skew)
            narrow = data[first + skew : searched : 2]
            for h in _search(narrow, known, detectors):
                start, end = first + 2 * h.start, first + 2 * h.end
                score = _text_char(data, start - 2, skew) + _text_char(data, end, skew)
                encoding = f"{name} {h.encoding}"
                wide.append(
                    (dataclasses.replace(h, start=start, end=end, encoding=encoding), score)
                )
    return _merge(hits + _one_byte_order(wide))


#: One character of text (printable ASCII, tab, line ends) in UTF-16, by byte order; read
#: backwards, a little-endian character looks like a big-endian one.
_TEXT_CHAR = {
    0: re.compile(rb"(?:[\t\n\r\x20-\x7e]\x00)*"),
    1: re.compile(rb"(?:\x00[\t\n\r\x20-\x7e])*"),
}


def _utf16_text(data: bytes, position: int, skew: int) -> tuple[int, int]:
    """[start, end) of the run of UTF-16 text around the character at `position`: a key's
    headerless base64 may sit anywhere in the text that holds a BEGIN line, before it or far
    after it."""
    end = _TEXT_CHAR[skew].match(data, position).end()  # type: ignore[union-attr]
    start, back = position, _TEXT_CHAR[1 - skew]
    while start > 1:
        low = start - min(start // 2, 4096) * 2  # whole characters
        chunk = data[low:start][::-1]
        start -= back.match(chunk).end()  # type: ignore[union-attr]
        if start > low:
            break
    return start, end


def _text_char(data: bytes, at: int, skew: int) -> int:
    """1 when the UTF-16 character at `at` is text as `_TEXT_CHAR` has it (or outside the
    data), else 0."""
    if at < 0 or at + 2 > len(data):
        return 1
    low, high = (data[at], data[at + 1]) if skew == 0 else (data[at + 1], data[at])
    return int(high == 0 and (0x20 <= low < 0x7F or low in b"\t\n\r"))


def _one_byte_order(wide: list[tuple[Hit, int]]) -> list[Hit]:
    """UTF-16 text reads as both byte orders one byte apart; keep the reading whose neighbouring
    characters are text in it; on a tie the one at an even offset (UTF-16 is stored 2-aligned,
    in files and in flash), then little-endian."""
    kept: list[Hit] = []
    for hit, _ in sorted(wide, key=lambda x: (-x[1], x[0].start % 2, "BE" in x[0].encoding)):
        twin = any(
            k.key == hit.key and k.kind is hit.kind and abs(k.start - hit.start) == 1 for k in kept
        )
        if not twin:
            kept.append(hit)
    return kept


def _search(
    data: bytes,
    known: KnownIndex,
    detectors: Sequence[Detector],
    found: Candidates | None = None,
) -> list[Hit]:
    hits = [
        Hit(m.start, m.end, m.material.kind, m.encoding, m.material.fingerprint, m.material.source)
        for m in known.search(data)
    ]
    hits += [_from_detection(d, known.sources) for d in detect(data, detectors, found)]
    return hits


def _from_detection(d: Detection, sources: dict[str, str]) -> Hit:
    """A detection; a key or certificate given with --key/--cert is named as known."""
    return Hit(d.start, d.end, d.kind, d.encoding, d.key, sources.get(d.key), d.algorithm)


def _merge(hits: list[Hit]) -> list[Hit]:
    """One hit per object: drop those inside a larger one of the same key, keep what we knew."""
    # Only hits of the same key can hold each other: each hit is compared with those alone (an
    # image with thousands of certificates is not thousands squared comparisons).
    # A fragment that holds a whole encoding of the same key is that encoding plus coincidence.
    whole: dict[tuple[Kind, str], list[Hit]] = {}
    for h in hits:
        if not h.fragment:
            whole.setdefault((h.kind, h.key), []).append(h)
    hits = [
        h
        for h in hits
        if not h.fragment or not any(w.inside(h) for w in whole.get((h.kind, h.key), ()))
    ]
    hits.sort(key=lambda h: (h.start, h.start - h.end, h.known is None, h.fragment))
    kept: list[Hit] = []
    # (kind, key) -> where its hits are in `kept`, and where they end: in the order of `kept`,
    # which is by start; a kept hit is inside none before it, so the ends grow too, and the
    # first that can hold a hit is found by bisection (one key thousands of times in an image)
    same: dict[tuple[Kind, str], tuple[list[int], list[int]]] = {}
    for hit in hits:
        indices, ends = same.setdefault((hit.kind, hit.key), ([], []))
        at = bisect.bisect_left(ends, hit.end)
        container = indices[at] if at < len(indices) and hit.inside(kept[indices[at]]) else None
        if container is None:
            indices.append(len(kept))
            ends.append(hit.end)
            kept.append(hit)
            continue
        other = kept[container]  # the larger object keeps what the smaller one knew
        kept[container] = dataclasses.replace(
            other, known=other.known or hit.known, algorithm=other.algorithm or hit.algorithm
        )
    return kept


# --- from hits to findings -------------------------------------------------------------------


def _region_at(regions: tuple[Region, ...], offset: int) -> Region | None:
    """The smallest region holding `offset` (a section inside its PT_LOAD segment)."""
    best = None
    for region in regions:
        if region.start <= offset < region.end and (
            best is None or region.end - region.start < best.end - best.start
        ):
            best = region
    return best


def _line_breaks(data: bytes, end: int) -> int:
    """Line endings before `end`, counting CR LF, CR and LF each once."""
    return data.count(b"\n", 0, end) + data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)


def _line_breaks_before(data: bytes, positions: Iterable[int]) -> dict[int, int]:
    """`_line_breaks(data, p)` for each of `positions`, counted in one pass over `data` (a text
    with thousands of findings is not counted from its start thousands of times)."""
    out: dict[int, int] = {}
    at = total = 0
    for end in sorted(set(positions)):
        total += (
            data.count(b"\n", at, end) + data.count(b"\r", at, end) - data.count(b"\r\n", at, end)
        )
        if 0 < at < end and data[at - 1 : at + 1] == b"\r\n":
            total -= 1  # its CR was counted before `at` as a line ending of its own
        out[end] = total
        at = end
    return out


def segment_findings(
    image: Image,
    segment: Segment,
    known: KnownIndex,
    detectors: Sequence[Detector] = DETECTORS,
    *,
    lines: bool = False,
    keep: int | None = None,
    own_from: int = 0,
    fresh: int = 0,
    lines_before: int = 0,
) -> list[Finding]:
    """Findings of one segment. `keep`: only hits starting before this offset (a window's own
    bytes; the overlap belongs to the next window); `own_from`: only hits starting at or after
    it (the lead-in belongs to the window before); `fresh`: only hits ending after it (the head
    of the window repeats the previous one)."""
    findings = []
    text = image.format == "text" or segment.section == HEX_TEXT
    hits = scan_segment(segment.data, known, detectors, text=image.format == "text")
    lines_at = _line_breaks_before(segment.data, (h.start for h in hits)) if lines and text else {}
    symbol_starts: dict[int, tuple[int, ...]] = {}  # id of a region -> its symbols' offsets
    for hit in hits:
        if (keep is not None and hit.start >= keep) or hit.start < own_from or hit.end <= fresh:
            continue
        length = hit.end - hit.start
        region = _region_at(segment.regions, hit.start) if segment.regions else None
        if region is not None:
            address = None if region.address is None else region.address + hit.start - region.start
            section = region.section
            starts = symbol_starts.get(id(region))
            if starts is None:
                starts = symbol_starts[id(region)] = tuple(s.offset for s in region.symbols)
            symbol = symbol_at(region.symbols, starts, hit.start - region.start, length)
        elif segment.regions:  # bytes no header describes (ELF header, padding)
            address, section, symbol = None, segment.section, None
        else:
            address = None if segment.address is None else segment.address + hit.start
            section = segment.section
            symbol = segment.symbol_at(hit.start, length)
        if address is None and segment.file_offset is None and segment.address is None:
            # bytes at no address and no file offset (a decompressed or decrypted payload, an
            # archive member's window): say where in them
            section = f"byte {hit.start} of {section or 'the decoded data'}"
        findings.append(
            Finding(
                path=image.path,
                kind=hit.kind,
                encoding=hit.encoding
                if hit.algorithm is None
                else f"{hit.encoding} ({hit.algorithm})",
                address=address,
                length=length,
                section=section,
                symbol=symbol,
                key=hit.key,
                known=hit.known,
                file_offset=None
                if segment.file_offset is None
                else segment.file_offset + hit.start,
                line=lines_before + lines_at[hit.start] + 1 if lines and text else None,
            )
        )
    return findings


def scan_image(
    image: Image,
    known: KnownIndex,
    detectors: Sequence[Detector] = DETECTORS,
    *,
    lines: bool = False,
) -> list[Finding]:
    """Findings of one image (in memory); `lines` also names the line of each (HEX record, or
    text line of a text file), for SARIF regions."""
    findings: list[Finding] = []
    for segment in image.segments:
        findings += segment_findings(image, segment, known, detectors, lines=lines)
    decoded = {f.key for f in findings if f.section != HEX_TEXT}
    # the text of a damaged HEX holds its records' digits: a key decoded from the records is
    # also a run of hex fragments in that text; report it once
    findings = [
        f
        for f in findings
        if not (f.section == HEX_TEXT and f.encoding.startswith("fragment") and f.key in decoded)
    ]
    hex_file = image.hex_file
    if lines and hex_file is not None and findings and os.path.isfile(hex_file):
        with open(hex_file, "rb") as handle:
            where = lines_of_addresses(
                handle.read(), [f.address for f in findings if f.address is not None and not f.line]
            )
        findings = [
            f
            if f.line is not None or f.address is None
            else dataclasses.replace(f, line=where.get(f.address))
            for f in findings
        ]
    return findings


def windows(size: int, window: int = WINDOW) -> Iterator[tuple[int, int]]:
    """(start, own bytes) of each window over `size` bytes; each window is read with an overlap
    more, so an object starting in its own bytes is whole in it."""
    start = 0
    while start < size:
        yield start, min(window, size - start)
        start += window


def _window_findings(
    image: Image,
    stream: BinaryIO,
    size: int,
    base_address: int | None,
    known: KnownIndex,
    detectors: Sequence[Detector],
    *,
    lines: bool,
    span: tuple[int, int],
    section: str | None = None,
) -> list[Finding]:
    """Findings of `[span)` of a file read window by window; each window is read with an
    overlap longer than any object looked for, and owns only the hits that start in it."""
    overlap = MIN_OVERLAP
    first, stop = span
    findings: list[Finding] = []
    newlines = 0
    if lines and (image.format == "text" or section == HEX_TEXT) and first:
        stream.seek(0)
        for _, own in windows(first):  # lines before the span (a split text file)
            newlines += _line_breaks(stream.read(own), own)
    for start, own in windows(stop - first):
        offset = first + start
        lead = min(offset, LEAD)
        stream.seek(offset - lead)
        data = stream.read(lead + own + overlap)
        address = None if base_address is None else base_address + offset - lead
        segment = Segment(address, data, section=section, file_offset=offset - lead)
        findings += segment_findings(
            image,
            segment,
            known,
            detectors,
            lines=lines,
            keep=lead + own if offset + own < size else None,
            own_from=lead,
            lines_before=newlines - _line_breaks(data, lead),
        )
        if lines and (image.format == "text" or section == HEX_TEXT):
            newlines += _line_breaks(data[lead:], own)
    return findings


# --- coverage --------------------------------------------------------------------------------


def _ranges(image: Image) -> tuple[AddressRange, ...]:
    if image.ranges:
        return image.ranges
    out = []
    for segment in image.segments:
        if segment.regions:
            out += [
                AddressRange(r.address, r.address + r.end - r.start, r.section)
                for r in segment.regions
                if r.address is not None and not (r.section or "").startswith("PT_LOAD")
            ] or [
                AddressRange(r.address, r.address + r.end - r.start, r.section)
                for r in segment.regions
                if r.address is not None
            ]
        elif segment.address is not None and image.format != "text":
            out.append(
                AddressRange(segment.address, segment.address + len(segment.data), segment.section)
            )
    return tuple(out)


def coverage_of(image: Image, findings: int, partitions: tuple[AddressRange, ...] = ()) -> Coverage:
    examined = sum(len(s.data) for s in image.segments)
    return Coverage(
        path=image.path,
        format=image.format,
        size=image.size,
        examined=examined,
        ranges=_ranges(image),
        members=image.members,
        unchecked=image.unchecked,
        notes=image.notes,
        partitions=partitions,
        findings=findings,
    )


def partition_of(partitions: tuple[AddressRange, ...], address: int | None) -> str | None:
    """The smallest partition holding `address` (app inside mcuboot_primary)."""
    if address is None:
        return None
    best = None
    for part in partitions:
        if part.start <= address < part.end and (
            best is None or part.end - part.start < best.end - best.start
        ):
            best = part
    return None if best is None else best.label


def scan_images(
    images: Iterable[Image],
    known: KnownIndex,
    allow: Allowlist | None = None,
    *,
    lines: bool = False,
    partitions: tuple[AddressRange, ...] = (),
) -> ScanResult:
    findings: list[Finding] = []
    allowed: list[Finding] = []
    coverage: list[Coverage] = []
    for image in images:
        mapped = partitions if image.format in ("intel-hex", "elf") else ()
        found = 0
        for raw in scan_image(image, known, lines=lines):
            finding = (
                dataclasses.replace(raw, partition=partition_of(mapped, raw.address))
                if mapped
                else raw
            )
            entry = allow.entry_for(finding) if allow is not None else None
            if entry is not None:
                allowed.append(dataclasses.replace(finding, allowed_by=entry))
            else:
                findings.append(finding)
                found += 1
        coverage.append(coverage_of(image, found, mapped))
    return ScanResult(tuple(findings), tuple(allowed), tuple(coverage))


# --- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every file is scanned with (inherited by worker processes, never pickled)."""

    known: KnownIndex
    allow: Allowlist | None
    options: Options
    partitions: tuple[tuple[str, tuple[AddressRange, ...]], ...] = ()  # (directory, layout)

    def partitions_for(self, path: str) -> tuple[AddressRange, ...]:
        """The partitions.yml layout of the build directory holding `path`, if any."""
        best: tuple[str, tuple[AddressRange, ...]] | None = None
        for directory, layout in self.partitions:
            inside = path.startswith(directory.rstrip(os.sep) + os.sep)
            if inside and (best is None or len(directory) > len(best[0])):
                best = (directory, layout)
        return () if best is None else best[1]


@dataclass(frozen=True)
class Task:
    """One unit of work: a file, or a span of a large raw file."""

    entry: Entry
    span: tuple[int, int] | None = None  # [start, stop) of a raw file split across workers


@dataclass(frozen=True)
class Plan:
    tasks: tuple[Task, ...]
    unreadable: tuple[Coverage, ...]  # paths that are no file to read, with the reason
    skipped: tuple[Unchecked, ...]  # excluded, or the same file as one already read


def plan(paths: Sequence[Path], exclude: tuple[str, ...] = ()) -> Plan:
    """Every file to read under `paths` (see `walk`), and what is not read and why."""
    tasks: list[Task] = []
    unreadable: list[Coverage] = []
    skipped: list[Unchecked] = []
    for item in plan_stream(paths, exclude):
        if isinstance(item, Task):
            tasks.append(item)
        elif isinstance(item, Coverage):
            unreadable.append(item)
        else:
            skipped.append(item)
    return Plan(tuple(tasks), tuple(unreadable), tuple(skipped))


def plan_stream(
    paths: Sequence[Path], exclude: tuple[str, ...] = ()
) -> Iterator[Task | Coverage | Unchecked]:
    """`plan` as the walk goes, in its order: a Task for each file to read, a Coverage for each
    path that is no file to read, an Unchecked for each one skipped. A path that does not exist
    is an error raised here, before anything is walked or read."""
    roots = [(path, classify(path)) for path in paths]
    for _, entry in roots:
        if entry.state is EntryState.UNCHECKED and entry.reason == "no such file or directory":
            raise InputError("no such file or directory", path=entry.display)
    return _planned(roots, exclude)


def _planned(
    roots: Sequence[tuple[Path, Entry]], exclude: tuple[str, ...]
) -> Iterator[Task | Coverage | Unchecked]:
    seen: set[FileId] = set()
    options = WalkOptions(exclude=exclude)
    for path, root in roots:
        entries = walk(path, options) if root.state is EntryState.DIRECTORY else (root,)
        for entry in entries:
            name = str(entry.path)
            if entry.state is EntryState.FILE:
                if entry.id is not None and entry.id in seen:
                    yield Unchecked(name, "the same file as one named before: read once")
                    continue
                if entry.id is not None:
                    seen.add(entry.id)
                yield Task(entry)
            elif entry.state is EntryState.UNCHECKED:
                reason = entry.reason or "not read"
                yield Coverage(name, "not read", 0, 0, unchecked=(Unchecked(name, reason),))
            elif entry.state is EntryState.SAME:
                yield Unchecked(name, f"the same file as {entry.same_as}: read once")
            else:
                yield Unchecked(name, entry.reason or "excluded")


def _empty_image(name: str) -> Image:
    reason = "empty image file (0 bytes): a failed or interrupted build?"
    return Image(name, "empty", 0, (), unchecked=(Unchecked(name, reason),))


def scan_task(task: Task, ctx: Context) -> ScanResult:
    """One file (or span), whatever happens: a failure is an unchecked input, never an error
    that loses the other files' results."""
    name = str(task.entry.path)
    try:
        return _scan_task(task, ctx)
    except MemoryError:
        reason = "out of memory while reading: not checked"
    except Exception as exc:  # one file's failure must not lose the others' results
        reason = f"internal error while reading ({type(exc).__name__}): not checked"
    failed = Coverage(name, "not read", 0, 0, unchecked=(Unchecked(name, reason),))
    return ScanResult((), (), (failed,))


def _not_read(name: str, reason: str) -> ScanResult:
    return ScanResult((), (), (not_read(name, reason),))


def not_read(name: str, reason: str) -> Coverage:
    """The coverage of an input that could not be read at all."""
    return Coverage(name, "not read", 0, 0, unchecked=(Unchecked(name, reason),))


def _scan_task(task: Task, ctx: Context) -> ScanResult:
    entry = task.entry
    name = str(entry.path)
    opened = open_file(entry)
    if isinstance(opened, Unreadable):
        return _not_read(name, opened.reason)
    partitions = ctx.partitions_for(name)
    with opened as stream:
        size = os.fstat(stream.fileno()).st_size
        if task.span is not None:
            return _scan_windows(stream, name, size, ctx, task.span)
        if size == 0:
            images = (
                [_empty_image(name)]
                if name.lower().endswith(IMAGE_SUFFIXES)
                else [Image(name, "empty", 0, ())]
            )
            return scan_images(images, ctx.known, ctx.allow, lines=ctx.options.lines)
        fmt = file_format(stream, name)
        if fmt is not None:
            return _scan_archive(stream, name, fmt, ctx)
        if size <= MAX_HEX_TEXT and _is_hex(stream, name):
            return _scan_hex(stream, name, size, ctx, partitions)
        if size > MAX_DECODE or (size > WINDOW and _raw_head(stream, name, ctx.options)):
            return _scan_windows(stream, name, size, ctx, (0, size))  # never held whole
        data = stream.read()
    images = read_bytes(data, name, ctx.options)
    del data
    return scan_images(images, ctx.known, ctx.allow, lines=ctx.options.lines, partitions=partitions)


def _is_hex(stream: BinaryIO, name: str) -> bool:
    head = stream.read(HEAD)
    stream.seek(0)
    return name.lower().endswith(HEX_SUFFIXES) or looks_like_hex(head)


def _scan_hex(
    stream: BinaryIO, name: str, size: int, ctx: Context, partitions: tuple[AddressRange, ...]
) -> ScanResult:
    """An Intel HEX file decoded as it is read (its text never held whole); when it is damaged,
    its text is searched too, window by window."""
    decoded = read_intel_hex_stream(stream)
    image = hex_image(decoded, name, size, ctx.options, None, hex_file=True)
    damaged = bool(decoded.problems)
    del decoded
    lines = ctx.options.lines
    result = scan_images([image], ctx.known, ctx.allow, lines=lines, partitions=partitions)
    if not damaged:
        return result
    stream.seek(0)
    text = _window_findings(
        image,
        stream,
        size,
        None,
        ctx.known,
        DETECTORS,
        lines=lines,
        span=(0, size),
        section=HEX_TEXT,
    )
    decoded_keys = {f.key for f in (*result.findings, *result.allowed)}
    # the text holds the records' digits: a key decoded from them is also a run of fragments
    text = [f for f in text if not (f.encoding.startswith("fragment") and f.key in decoded_keys)]
    kept, allowed = _allow(text, ctx.allow)
    [cover] = result.coverage
    cover = dataclasses.replace(
        cover, examined=cover.examined + size, findings=cover.findings + len(kept)
    )
    return ScanResult(result.findings + tuple(kept), result.allowed + tuple(allowed), (cover,))


def _raw_head(stream: BinaryIO, name: str, options: Options) -> bool:
    """Whether a file is plain bytes by its head (no structure to decode whole)."""
    head = stream.read(4096)
    stream.seek(0)
    return read_bytes(head, name, options)[0].format in ("raw", "text")


def _scan_windows(
    stream: BinaryIO, name: str, size: int, ctx: Context, span: tuple[int, int]
) -> ScanResult:
    """A large file (or a span of it) as raw bytes in overlapping windows."""
    head = stream.read(4096)
    fmt = read_bytes(head, name, ctx.options)[0].format
    image = Image(name, "text" if b"\0" not in head else "raw", size, ())
    unchecked: tuple[Unchecked, ...] = ()
    if fmt not in ("raw", "text") and span[0] == 0:
        unchecked = (
            Unchecked(
                name,
                f"{fmt} structure not decoded: the file is larger than {MAX_DECODE >> 20} MiB; "
                "searched as raw bytes only",
            ),
        )
    known, options = ctx.known, ctx.options
    findings = _window_findings(
        image,
        stream,
        size,
        options.base_address,
        known,
        DETECTORS,
        lines=options.lines,
        span=span,
    )
    kept, allowed = _allow(findings, ctx.allow)
    start, stop = span
    cover = Coverage(
        name,
        image.format,
        size if span == (0, size) else stop - start,
        stop - start,
        ranges=()
        if image.format == "text"
        else (AddressRange(options.base_address + start, options.base_address + stop),),
        unchecked=unchecked,
        findings=len(kept),
    )
    return ScanResult(tuple(kept), tuple(allowed), (cover,))


def _allow(findings: list[Finding], allow: Allowlist | None) -> tuple[list[Finding], list[Finding]]:
    kept, allowed = [], []
    for finding in findings:
        entry = allow.entry_for(finding) if allow is not None else None
        if entry is None:
            kept.append(finding)
        else:
            allowed.append(dataclasses.replace(finding, allowed_by=entry))
    return kept, allowed


def _scan_archive(stream: BinaryIO, name: str, fmt: str, ctx: Context) -> ScanResult:
    """An archive read as a stream (`archive`): each member parsed as a file when it fits one
    window, else searched raw window by window; every member ends in one state."""
    scan = _ArchiveScan(stream, ctx)
    for event in read_archive(stream, name, ctx.options.archive, fmt=fmt):
        if isinstance(event, Chunk):
            scan.chunk(event)
        else:
            scan.outcome(event)
    return scan.result()


class _ArchiveScan:
    """The state of one archive scan: findings so far, and the coverage of each member."""

    def __init__(self, stream: BinaryIO, ctx: Context) -> None:
        self.stream = stream
        self.ctx = ctx
        self.findings: list[Finding] = []
        self.allowed: list[Finding] = []
        self.coverage: list[Coverage] = []
        self.parsed: dict[str, Coverage] = {}  # members parsed whole, waiting for their outcome
        self.raw_found: dict[str, int] = {}
        self.children: dict[str, list[str]] = {}
        self.listed: set[str] = set()  # members already in their parent's `children`

    def chunk(self, event: Chunk) -> None:
        where = event.location.display
        ctx = self.ctx
        if event.whole:  # a member that fits one window is parsed as a file (HEX, ELF, MCUboot)
            images = read_bytes(event.data, where, ctx.options, depth=1)
            result = scan_images(images, ctx.known, ctx.allow, lines=False)
            self.findings += result.findings
            self.allowed += result.allowed
            first, *rest = result.coverage
            if first.format in ("raw", "text"):  # a member's offsets are no flash addresses
                first = dataclasses.replace(first, ranges=())
            self.parsed[where] = first
            self.coverage += rest
            return
        segment = Segment(None, event.data, section=f"member bytes from {event.offset}")
        image = Image(where, "raw", 0, (segment,))
        # a hit ending in the repeated head of the window was found in the previous one
        hits = segment_findings(image, segment, ctx.known, fresh=event.fresh)
        kept, also = _allow(hits, ctx.allow)
        self.findings += kept
        self.allowed += also
        self.raw_found[where] = self.raw_found.get(where, 0) + len(kept)

    def outcome(self, event: Outcome) -> None:
        where = event.location.display
        # a nested archive ends twice, as a member and as an archive: it is listed once
        if event.location.members and not (event.kind == "archive" and where in self.listed):
            parent = Location(event.location.file, event.location.members[:-1]).display
            self.children.setdefault(parent, []).append(event.location.members[-1])
            self.listed.add(where)
        unchecked = (
            (Unchecked(where, event.reason or "not read"),)
            if event.state is ArchiveState.UNCHECKED
            else ()
        )
        notes = (event.reason,) if event.state is ArchiveState.STATED and event.reason else ()
        if event.kind == "archive":
            self._archive(event, where, unchecked, notes)
        elif where in self.parsed:
            item = self.parsed.pop(where)
            self.coverage.append(dataclasses.replace(item, unchecked=item.unchecked + unchecked))
        else:
            self.coverage.append(
                Coverage(
                    where,
                    "raw" if event.kind == "file" else event.kind,
                    event.size,
                    event.size,
                    unchecked=unchecked,
                    notes=notes,
                    findings=self.raw_found.get(where, 0),
                )
            )

    def _archive(
        self, event: Outcome, where: str, unchecked: tuple[Unchecked, ...], notes: tuple[str, ...]
    ) -> None:
        members = tuple(self.children.get(where, ()))
        if not event.location.members:  # the file itself
            size = os.fstat(self.stream.fileno()).st_size
            cover = Coverage(where, event.format, size, 0, members=members, unchecked=unchecked)
            if unchecked:  # damaged: its bytes are still searched as they are
                raw = _raw_archive(self.stream, where, self.ctx)
                self.findings += raw.findings
                self.allowed += raw.allowed
                cover = dataclasses.replace(
                    cover,
                    examined=raw.coverage[0].examined,
                    notes=("searched as raw bytes",),
                    findings=len(raw.findings),
                )
            self.coverage.append(dataclasses.replace(cover, notes=cover.notes + notes))
            return
        nested = f"{event.format} (nested)"
        if where in self.parsed:  # also searched as the member's own bytes
            item = self.parsed[where]
            self.parsed[where] = dataclasses.replace(
                item, format=nested, members=members, unchecked=item.unchecked + unchecked
            )
            return
        index = next((i for i, c in enumerate(self.coverage) if c.path == where), None)
        if index is None:
            self.coverage.append(
                Coverage(where, nested, 0, 0, members=members, unchecked=unchecked, notes=notes)
            )
        else:
            item = self.coverage[index]
            self.coverage[index] = dataclasses.replace(
                item, format=nested, members=members, unchecked=item.unchecked + unchecked
            )

    def result(self) -> ScanResult:
        coverage = self.coverage + list(self.parsed.values())
        return ScanResult(tuple(self.findings), tuple(self.allowed), tuple(coverage))


def _raw_archive(stream: BinaryIO, name: str, ctx: Context) -> ScanResult:
    size = os.fstat(stream.fileno()).st_size
    stream.seek(0)
    return _scan_windows(stream, name, size, ctx, (0, size))


def combine(results: Sequence[ScanResult], skipped: Sequence[Unchecked] = ()) -> ScanResult:
    return ScanResult(
        tuple(x for r in results for x in r.findings),
        tuple(x for r in results for x in r.allowed),
        tuple(x for r in results for x in r.coverage),
        tuple(skipped),
    )
