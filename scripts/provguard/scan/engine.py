"""The scan itself: images in, findings and coverage out.

Reading files happens at the edge (`read_path`); `scan_images` is pure. Every input ends in one
state (see `model`): whatever a reader could not decode is `Unchecked`, and so is any input that
cannot be read at all (special file, permission, internal error), so a scan never says "clean"
about bytes it did not search.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from provguard.errors import InputError
from provguard.scan.allow import Allowlist
from provguard.scan.detectors import DETECTORS, MAX_OBJECT, Detection, Detector
from provguard.scan.hexfile import lines_of_addresses
from provguard.scan.known import KnownIndex
from provguard.scan.model import (
    AddressRange,
    Coverage,
    FileWindows,
    Finding,
    Image,
    Kind,
    Region,
    ScanResult,
    Segment,
    Unchecked,
    symbol_at,
)
from provguard.scan.readers import IMAGE_SUFFIXES, Options, read_bytes

#: Files up to this size are read into memory and decoded by format; larger ones are searched
#: as raw bytes in windows (a structure that large is reported as not decoded).
MAX_DECODE = 256 << 20
WINDOW = 16 << 20
#: Windows overlap by at least the longest object looked for, so nothing is lost between them.
MIN_OVERLAP = 4 * MAX_OBJECT


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


def scan_segment(
    data: bytes, known: KnownIndex, detectors: Sequence[Detector] = DETECTORS
) -> list[Hit]:
    """Known credentials and always-on detections in one segment, one hit per object; text
    stored as UTF-16 (a PEM block written by a Windows tool) is searched as its characters."""
    hits = _search(data, known, detectors)
    for name, (marker, skew) in _UTF16.items():
        position = data.find(marker)
        covered = -1
        while position >= 0:
            if position >= covered:
                window = data[position + skew : position + 2 * MAX_OBJECT]
                narrow = window[0::2]
                base = position + skew
                hits += [
                    dataclasses.replace(
                        h,
                        start=base + 2 * h.start,
                        end=base + 2 * h.end,
                        encoding=f"{name} {h.encoding}",
                    )
                    for h in _search(narrow, known, detectors)
                ]
                covered = position + 2 * MAX_OBJECT - 2 * MAX_OBJECT // 4
            position = data.find(marker, position + 1)
    return _merge(hits)


def _search(data: bytes, known: KnownIndex, detectors: Sequence[Detector]) -> list[Hit]:
    hits = [
        Hit(m.start, m.end, m.material.kind, m.encoding, m.material.fingerprint, m.material.source)
        for m in known.search(data)
    ]
    for detector in detectors:
        hits += [_from_detection(d, known.sources) for d in detector.find(data)]
    return hits


def _from_detection(d: Detection, sources: dict[str, str]) -> Hit:
    """A detection; a key or certificate given with --key/--cert is named as known."""
    return Hit(d.start, d.end, d.kind, d.encoding, d.key, sources.get(d.key), d.algorithm)


def _merge(hits: list[Hit]) -> list[Hit]:
    """One hit per object: drop those inside a larger one of the same key, keep what we knew."""
    # A fragment that holds a whole encoding of the same key is that encoding plus coincidence.
    whole = [h for h in hits if not h.fragment]
    hits = [h for h in hits if not h.fragment or not any(w.inside(h) for w in whole)]
    hits.sort(key=lambda h: (h.start, h.start - h.end, h.known is None, h.fragment))
    kept: list[Hit] = []
    for hit in hits:
        container = next((i for i, k in enumerate(kept) if hit.inside(k)), None)
        if container is None:
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


def segment_findings(
    image: Image,
    segment: Segment,
    known: KnownIndex,
    detectors: Sequence[Detector] = DETECTORS,
    *,
    lines: bool = False,
    keep: int | None = None,
    lines_before: int = 0,
) -> list[Finding]:
    """Findings of one segment. `keep`: only hits starting before this offset (a window's own
    bytes; the overlap belongs to the next window)."""
    findings = []
    text = image.format in ("text", "intel-hex") and (
        image.format == "text" or segment.section == "Intel HEX text"
    )
    for hit in scan_segment(segment.data, known, detectors):
        if keep is not None and hit.start >= keep:
            continue
        length = hit.end - hit.start
        region = _region_at(segment.regions, hit.start) if segment.regions else None
        if region is not None:
            address = None if region.address is None else region.address + hit.start - region.start
            section = region.section
            starts = tuple(s.offset for s in region.symbols)
            symbol = symbol_at(region.symbols, starts, hit.start - region.start, length)
        elif segment.regions:  # bytes no header describes (ELF header, padding)
            address, section, symbol = None, segment.section, None
        else:
            address = None if segment.address is None else segment.address + hit.start
            section = segment.section
            symbol = segment.symbol_at(hit.start, length)
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
                line=lines_before + _line_breaks(segment.data, hit.start) + 1
                if lines and text
                else None,
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
    if image.windows is not None:
        findings += _window_findings(image, image.windows, known, detectors, lines=lines)
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
    spec: FileWindows,
    known: KnownIndex,
    detectors: Sequence[Detector],
    *,
    lines: bool,
    span: tuple[int, int] | None = None,
) -> list[Finding]:
    overlap = max(MIN_OVERLAP, 2 * known.longest if hasattr(known, "longest") else 0)
    first, stop = span if span is not None else (0, spec.size)
    findings: list[Finding] = []
    newlines = 0
    with open(spec.path, "rb") as handle:
        for start, own in windows(stop - first):
            offset = first + start
            handle.seek(offset)
            data = handle.read(own + overlap)
            segment = Segment(spec.address + offset, data, file_offset=offset)
            findings += segment_findings(
                image,
                segment,
                known,
                detectors,
                lines=lines,
                keep=own if offset + own < spec.size else None,
                lines_before=newlines,
            )
            if lines and image.format == "text":
                newlines += _line_breaks(data, own)
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
    if image.windows is not None and image.format != "text":
        out.append(AddressRange(image.windows.address, image.windows.address + image.windows.size))
    return tuple(out)


def coverage_of(image: Image, findings: int, partitions: tuple[AddressRange, ...] = ()) -> Coverage:
    examined = sum(len(s.data) for s in image.segments)
    if image.windows is not None:
        examined += image.windows.size
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


# --- files -----------------------------------------------------------------------------------


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """Files named, and every file under directories named, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files += [Path(root, n) for n in sorted(names)]
        elif path.exists() or path.is_symlink():
            files.append(path)
        else:
            raise InputError("no such file or directory", path=path)
    return files


def _kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _unreadable(path: str, reason: str) -> Image:
    return Image(path, "unreadable", 0, (), unchecked=(Unchecked(path, reason),))


def read_path(path: Path, options: Options) -> list[Image]:
    """The images of one file on disk; never raises for what is in the file, never blocks on a
    FIFO or device, never holds a file larger than `MAX_DECODE`."""
    name = str(path)
    try:
        info = path.stat()
    except OSError as exc:
        return [_unreadable(name, f"cannot read: {exc.strerror or exc}")]
    if not stat.S_ISREG(info.st_mode):
        return [_unreadable(name, f"{_kind_of(info.st_mode)}, not a regular file: not read")]
    image_name = name.lower().endswith(IMAGE_SUFFIXES)
    try:
        if info.st_size > MAX_DECODE:
            return [_large(path, info.st_size, options)]
        with open(path, "rb") as handle:
            data = handle.read(MAX_DECODE + 1)
    except OSError as exc:
        return [_unreadable(name, f"cannot read: {exc.strerror or exc}")]
    if not data and image_name:
        return [
            Image(
                name,
                "empty",
                0,
                (),
                unchecked=(
                    Unchecked(name, "empty image file (0 bytes): a failed or interrupted build?"),
                ),
            )
        ]
    return read_bytes(data, name, options)


def _large(path: Path, size: int, options: Options) -> Image:
    """A file too large to decode: searched in windows as raw bytes."""
    name = str(path)
    with open(path, "rb") as handle:
        head = handle.read(4096)
    structured = read_bytes(head, name, options)[0].format
    unchecked: tuple[Unchecked, ...] = ()
    if structured not in ("raw", "text"):
        unchecked = (
            Unchecked(
                name,
                f"{structured} structure not decoded: the file is larger than "
                f"{MAX_DECODE >> 20} MiB; searched as raw bytes only",
            ),
        )
    fmt = "text" if b"\0" not in head else "raw"
    return Image(
        name,
        fmt,
        size,
        (),
        unchecked=unchecked,
        windows=FileWindows(name, size, options.base_address),
    )


def scan_file(
    path: Path,
    known: KnownIndex,
    allow: Allowlist | None,
    options: Options,
    partitions: tuple[AddressRange, ...] = (),
) -> ScanResult:
    """One file, whatever happens: a failure is an unchecked input, never lost results."""
    try:
        images = read_path(path, options)
        return scan_images(images, known, allow, lines=options.lines, partitions=partitions)
    except MemoryError:
        reason = "out of memory while reading: not checked"
    except Exception as exc:  # one file's failure must not lose the others' results
        reason = f"internal error while reading ({type(exc).__name__}): not checked"
    name = str(path)
    failed = Coverage(name, "unreadable", 0, 0, unchecked=(Unchecked(name, reason),))
    return ScanResult((), (), (failed,))


def combine(results: Sequence[ScanResult]) -> ScanResult:
    return ScanResult(
        tuple(x for r in results for x in r.findings),
        tuple(x for r in results for x in r.allowed),
        tuple(x for r in results for x in r.coverage),
    )


def scan_paths(
    paths: Sequence[Path],
    known: KnownIndex,
    allow: Allowlist | None = None,
    options: Options | None = None,
) -> ScanResult:
    files = collect_files(paths)
    if not files:
        raise InputError("no files found", path=", ".join(str(p) for p in paths))
    options = options or Options()
    # one file at a time: a build tree's images are not all held in memory together
    return combine([scan_file(f, known, allow, options) for f in files])
