"""Readers: turn a file (or an archive member) into `Image`s made of segments.

Each reader is a small class in `READERS`, tried in order by `read_bytes`; the raw reader takes
what no other claims (a file without NUL bytes is "text": its findings get line numbers). Intel
HEX (`hexfile`: damaged lines are reported and the text searched too), ELF (the whole file,
named by `elf`), MCUboot images (`mcuboot`: header, payload and TLVs as regions of one segment,
so a key across a boundary is found; the payload decompressed or decrypted as a segment of its
own). Archives are streamed by `archive` before any reader sees them (see `engine`).

A reader never raises for damaged input: what it could not decode is an `Unchecked` part of its
image, and the bytes are searched as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from provguard.scan import mcuboot
from provguard.scan.archive import ArchiveLimits
from provguard.scan.elf import elf_layout
from provguard.scan.hexfile import HEAD, HexImage, looks_like_hex, read_intel_hex
from provguard.scan.mcuboot import McubootOptions
from provguard.scan.model import Image, Region, Segment, Unchecked

#: Names that say "this is a flashable image": an empty or truncated one is unchecked.
IMAGE_SUFFIXES = (".hex", ".ihex", ".elf", ".axf", ".bin", ".img", ".zip", ".signed")
HEX_SUFFIXES = (".hex", ".ihex")
HEX_TEXT = "Intel HEX text"  # the section name of a damaged HEX file searched as text


@dataclass(frozen=True)
class Options:
    base_address: int = 0  # flash address of a raw image's first byte
    lines: bool = False  # name each finding's line (HEX record, text line) for SARIF regions
    mcuboot: McubootOptions = field(default_factory=McubootOptions)  # --mcuboot-enc-key
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


class Reader(Protocol):
    name: ClassVar[str]

    def claims(self, data: bytes, path: str) -> bool: ...

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]: ...


class HexReader:
    name: ClassVar[str] = "intel-hex"

    def claims(self, data: bytes, path: str) -> bool:
        return path.lower().endswith(HEX_SUFFIXES) or looks_like_hex(data[:HEAD])

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        decoded = read_intel_hex(data, path)
        # damaged: the text itself is searched too, so nothing in the damaged lines escapes
        text = Segment(None, data, section=HEX_TEXT, file_offset=0) if decoded.problems else None
        return [hex_image(decoded, path, len(data), options, text, hex_file=depth == 0)]


def hex_image(
    decoded: HexImage,
    path: str,
    size: int,
    options: Options,
    text: Segment | None,
    *,
    hex_file: bool,
) -> Image:
    """The image of a decoded HEX file: its data (MCUboot images in it taken apart), a damaged
    record as an unchecked part naming its line, and `text` (the file as text) when given."""
    segments: list[Segment] = []
    unchecked: list[Unchecked] = []
    notes: list[str] = []
    for run in decoded.segments:
        found = _with_mcuboot(Segment(run.address, run.data), path, options)
        segments += found.segments
        unchecked += found.unchecked
        notes += found.notes
    text_lines = [p.line for p in decoded.problems if not p.record and p.line is not None]
    for problem in decoded.problems:
        if problem.record:
            where = f"line {problem.line}: " if problem.line is not None else ""
            unchecked.append(
                Unchecked(
                    path,
                    f"{where}{problem.message}; the rest of the file was "
                    "searched as records and as text",
                    line=problem.line,
                )
            )
    if text_lines:
        notes.append(
            f"{len(text_lines)} line(s) are not Intel HEX records (first: line "
            f"{text_lines[0]}): searched as text"
        )
    if text is not None:
        segments.append(text)
    if not decoded.segments and not decoded.problems:
        unchecked.append(Unchecked(path, "Intel HEX file holds no data records"))
    return Image(
        path,
        HexReader.name,
        size,
        tuple(segments),
        unchecked=tuple(unchecked),
        notes=tuple(notes),
        hex_file=path if hex_file else None,
    )


class ElfReader:
    name: ClassVar[str] = "elf"

    def claims(self, data: bytes, path: str) -> bool:
        return data[:4] == b"\x7fELF"

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        layout = elf_layout(data)
        segment = Segment(None, data, file_offset=0, regions=layout.regions)
        unchecked = tuple(Unchecked(path, reason) for reason in layout.problems)
        return [
            Image(path, self.name, len(data), (segment,), unchecked=unchecked, notes=layout.notes)
        ]


class McubootReader:
    name: ClassVar[str] = "mcuboot"

    def claims(self, data: bytes, path: str) -> bool:
        return mcuboot.is_mcuboot(data)

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        found = _with_mcuboot(Segment(options.base_address, data, file_offset=0), path, options)
        return [
            Image(
                path,
                self.name,
                len(data),
                found.segments,
                unchecked=found.unchecked,
                notes=found.notes,
            )
        ]


class RawReader:
    name: ClassVar[str] = "raw"

    def claims(self, data: bytes, path: str) -> bool:
        return True

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        segment = Segment(options.base_address, data, file_offset=0)
        kind = "text" if b"\0" not in data else self.name  # text: findings get lines
        return [Image(path, kind, len(data), (segment,) if data else ())]


#: Tried in order; the first that claims a file reads it.
READERS: tuple[Reader, ...] = (ElfReader(), McubootReader(), HexReader(), RawReader())

_ENCRYPTED_SECTION = "mcuboot payload (encrypted)"
_TRUNCATED_SECTION = "mcuboot image (truncated)"


def read_bytes(data: bytes, path: str, options: Options, depth: int = 0) -> list[Image]:
    """The images in `data` (one, or one per archive member plus the archive itself)."""
    if not data:
        return [Image(path, "empty", 0, ())]
    for reader in READERS:
        if reader.claims(data, path):
            return reader.read(data, path, options, depth)
    raise AssertionError("the raw reader claims everything")  # pragma: no cover


@dataclass(frozen=True)
class _Split:
    segments: tuple[Segment, ...]
    unchecked: tuple[Unchecked, ...]
    notes: tuple[str, ...]


def _with_mcuboot(segment: Segment, path: str, options: Options) -> _Split:
    """A segment that starts with an MCUboot header, taken apart by `mcuboot`: the whole is
    searched once with its parts as regions (a key across header/payload/TLVs is found), and the
    payload decompressed or decrypted is searched as a segment of its own."""
    data = segment.data
    if not mcuboot.is_mcuboot(data):
        return _Split((segment,), (), ())
    image = mcuboot.parse(data, options.mcuboot)

    def at(offset: int) -> int | None:
        return None if segment.address is None else segment.address + offset

    regions = tuple(
        Region(part.offset, part.offset + len(part.data), part.name, at(part.offset))
        for part in image.parts
    )
    out = [
        Segment(
            segment.address,
            data,
            section=segment.section if not regions else "mcuboot image",
            file_offset=segment.file_offset,
            regions=regions,
        )
    ]
    # derived bytes are at no flash address and no file offset of their own
    out += [Segment(None, d.data, section=d.name) for d in image.derived]
    where = at(0) if segment.file_offset is None else None  # in a HEX: name the flash address
    unchecked = tuple(Unchecked(path, _at_address(reason, where)) for reason in image.unchecked)
    return _Split(tuple(out), unchecked, image.notes)


def _at_address(reason: str, address: int | None) -> str:
    return reason if address is None else f"MCUboot image at 0x{address:08X}: {reason}"
