"""The scan itself: images in, findings out. Reading files happens in `scan_paths` only."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provguard.errors import InputError
from provguard.scan.allow import Allowlist
from provguard.scan.detectors import DETECTORS, Detection, Detector
from provguard.scan.hexfile import lines_of_addresses
from provguard.scan.known import KnownIndex
from provguard.scan.model import Finding, Image, Kind, Scanned, ScanResult, Segment, Unchecked
from provguard.scan.readers import IMAGE_SUFFIXES, Options, read_bytes


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


def scan_segment(
    segment: Segment, known: KnownIndex, detectors: Sequence[Detector] = DETECTORS
) -> list[Hit]:
    """Known credentials and always-on detections in one segment, one hit per object."""
    hits = [
        Hit(m.start, m.end, m.material.kind, m.encoding, m.material.fingerprint, m.material.source)
        for m in known.search(segment.data)
    ]
    for detector in detectors:
        hits += [_from_detection(d, known.sources) for d in detector.find(segment.data)]
    return _merge(hits)


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
        for hit in scan_segment(segment, known, detectors):
            encoding = (
                hit.encoding if hit.algorithm is None else f"{hit.encoding} ({hit.algorithm})"
            )
            findings.append(
                Finding(
                    path=image.path,
                    kind=hit.kind,
                    encoding=encoding,
                    address=segment.address + hit.start,
                    length=hit.end - hit.start,
                    section=segment.section,
                    symbol=segment.symbol_at(hit.start, hit.end - hit.start),
                    key=hit.key,
                    known=hit.known,
                    file_offset=None
                    if segment.file_offset is None
                    else segment.file_offset + hit.start,
                    line=segment.data.count(b"\n", 0, hit.start) + 1
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
