"""The scan itself: images in, findings out. Reading files happens in `scan_paths` only."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from provguard.errors import InputError
from provguard.scan.allow import Allowlist
from provguard.scan.detectors import DETECTORS, Detection, Detector
from provguard.scan.hexfile import lines_of_addresses
from provguard.scan.known import KnownIndex, Match
from provguard.scan.model import Finding, Image, Kind, Scanned, ScanResult, Segment, Unchecked
from provguard.scan.readers import IMAGE_SUFFIXES, Options, read_bytes


def scan_segment(
    segment: Segment, known: KnownIndex, detectors: Sequence[Detector] = DETECTORS
) -> list[tuple[int, int, Kind, str, str, str | None, str | None]]:
    """(start, end, kind, encoding, fingerprint, known source, algorithm) within the segment."""
    found: list[tuple[int, int, Kind, str, str, str | None, str | None]] = []
    for match in known.search(segment.data):
        found.append(_from_match(match))
    for detector in detectors:
        for detection in detector.find(segment.data):
            found.append(_from_detection(detection, known.sources))
    return _merge(found)


def _from_match(match: Match) -> tuple[int, int, Kind, str, str, str | None, str | None]:
    material = match.material
    return (
        match.start,
        match.end,
        material.kind,
        match.encoding,
        material.fingerprint,
        material.source,
        None,
    )


def _from_detection(
    d: Detection, sources: dict[str, str]
) -> tuple[int, int, Kind, str, str, str | None, str | None]:
    """A detection; a key or certificate given with --key/--cert is named as known."""
    return (d.start, d.end, d.kind, d.encoding, d.key, sources.get(d.key), d.algorithm)


def _merge(
    found: list[tuple[int, int, Kind, str, str, str | None, str | None]],
) -> list[tuple[int, int, Kind, str, str, str | None, str | None]]:
    """One finding per object: drop those inside a larger one of the same key, keep what we knew."""
    # A fragment that holds a whole encoding of the same key is that encoding plus coincidence.
    complete = [f for f in found if not f[3].startswith("fragment")]
    found = [
        f
        for f in found
        if not f[3].startswith("fragment")
        or not any(c[4] == f[4] and f[0] <= c[0] and c[1] <= f[1] for c in complete)
    ]
    found.sort(key=lambda f: (f[0], -(f[1] - f[0]), f[5] is None, f[3].startswith("fragment")))
    kept: list[tuple[int, int, Kind, str, str, str | None, str | None]] = []
    for item in found:
        start, end, kind, _, key, source, algorithm = item
        for index, other in enumerate(kept):
            if other[2] is kind and other[4] == key and other[0] <= start and end <= other[1]:
                if other[5] is None and source is not None:  # the container was found unknown
                    kept[index] = (*other[:5], source, other[6] or algorithm)
                elif other[6] is None and algorithm is not None:
                    kept[index] = (*other[:6], algorithm)
                break
        else:
            kept.append(item)
    return kept


def scan_image(
    image: Image,
    known: KnownIndex,
    detectors: Sequence[Detector] = DETECTORS,
    *,
    lines: bool = False,
) -> list[Finding]:
    """Findings of one image; `lines` also names the line of each (HEX record, or text line of
    a raw file such as a source or key file), for SARIF regions."""
    findings: list[Finding] = []
    for segment in image.segments:
        for start, end, kind, encoding, key, source, algorithm in scan_segment(
            segment, known, detectors
        ):
            address = segment.address + start
            findings.append(
                Finding(
                    path=image.path,
                    kind=kind,
                    encoding=encoding if algorithm is None else f"{encoding} ({algorithm})",
                    address=address,
                    length=end - start,
                    section=segment.section,
                    symbol=segment.symbol_at(start, end - start),
                    key=key,
                    known=source,
                    file_offset=None
                    if segment.file_offset is None
                    else segment.file_offset + start,
                    line=segment.data.count(b"\n", 0, start) + 1
                    if lines and image.format == "raw"
                    else None,
                )
            )
    if lines and image.hex_text is not None and findings:
        where = lines_of_addresses(image.hex_text, [f.address for f in findings])
        findings = [dataclasses.replace(f, line=where.get(f.address)) for f in findings]
    return findings


def scan_images(
    images: Iterable[Image],
    known: KnownIndex,
    allow: Allowlist | None = None,
    *,
    lines: bool = False,
) -> ScanResult:
    findings: list[Finding] = []
    allowed: list[Finding] = []
    unchecked: list[Unchecked] = []
    scanned: list[Scanned] = []
    for image in images:
        scanned.append(Scanned(image.path, image.format, image.size))
        unchecked += [Unchecked(image.path, reason) for reason in image.unchecked]
        for finding in scan_image(image, known, lines=lines):
            (allowed if allow is not None and allow.allows(finding) else findings).append(finding)
    return ScanResult(tuple(findings), tuple(allowed), tuple(unchecked), tuple(scanned))


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """Files named, and image files (by suffix) under directories named, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files += [
                    Path(root, n) for n in sorted(names) if n.lower().endswith(IMAGE_SUFFIXES)
                ]
        elif path.exists():
            files.append(path)
        else:
            raise InputError("no such file or directory", path=path)
    return files


def read_images(path: Path, options: Options) -> list[Image]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    return read_bytes(data, str(path), options)


def scan_paths(
    paths: Sequence[Path],
    known: KnownIndex,
    allow: Allowlist | None = None,
    options: Options | None = None,
) -> ScanResult:
    files = collect_files(paths)
    if not files:
        raise InputError(
            "no image files found (looked for " + ", ".join(IMAGE_SUFFIXES) + ")",
            path=", ".join(str(p) for p in paths),
        )
    options = options or Options()
    # one file at a time: a build tree's images are not all held in memory together
    results = [
        scan_images(read_images(f, options), known, allow, lines=options.lines) for f in files
    ]
    return ScanResult(
        tuple(x for r in results for x in r.findings),
        tuple(x for r in results for x in r.allowed),
        tuple(x for r in results for x in r.unchecked),
        tuple(x for r in results for x in r.scanned),
    )
