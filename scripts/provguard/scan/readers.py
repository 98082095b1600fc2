"""Readers: turn a file (or an archive member) into `Image`s made of segments.

Each reader is a small class in `READERS`, tried in order by `read_bytes`; the raw reader takes
what no other claims. Intel HEX (`hexfile`: damaged lines are reported and the text searched
too), ELF (the whole file, named by `elf`), MCUboot images (header, payload and TLVs as regions
of one segment, so a key across a boundary is found; an encrypted payload is unchecked), zip
archives (members read recursively, named `a.zip!b.bin`).

A reader never raises for damaged input: what it could not decode is an `Unchecked` part of its
image, and the bytes are searched as they are.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import ClassVar, Protocol

from provguard.scan.elf import elf_layout
from provguard.scan.hexfile import looks_like_hex, read_intel_hex
from provguard.scan.model import Image, Region, Segment, Unchecked

#: Names that say "this is a flashable image": an empty or truncated one is unchecked.
IMAGE_SUFFIXES = (".hex", ".ihex", ".elf", ".axf", ".bin", ".img", ".zip", ".signed")
HEX_SUFFIXES = (".hex", ".ihex")

# MCUboot image layout; mirrors mcu-tools/mcuboot boot/bootutil/include/bootutil/image.h
MCUBOOT_MAGIC = 0x96F3B83D
MCUBOOT_HEADER = struct.Struct("<IIHHIIBBHII")  # magic, load_addr, hdr_size, protect_tlv_size,
# img_size, flags, ver major, minor, revision, build_num, pad
IMAGE_TLV_INFO_MAGIC = 0x6907
IMAGE_TLV_PROT_INFO_MAGIC = 0x6908
IMAGE_F_ENCRYPTED = 0x04 | 0x08  # IMAGE_F_ENCRYPTED_AES128 | IMAGE_F_ENCRYPTED_AES256
MAX_ZIP_DEPTH = 4


@dataclass(frozen=True)
class Options:
    base_address: int = 0  # flash address of a raw image's first byte
    lines: bool = False  # name each finding's line (HEX record, text line) for SARIF regions


class Reader(Protocol):
    name: ClassVar[str]

    def claims(self, data: bytes, path: str) -> bool: ...

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]: ...


class HexReader:
    name: ClassVar[str] = "intel-hex"

    def claims(self, data: bytes, path: str) -> bool:
        return path.lower().endswith(HEX_SUFFIXES) or looks_like_hex(data[:512])

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        decoded = read_intel_hex(data, path)
        segments = [Segment(s.address, s.data) for s in decoded.segments]
        segments = _split_mcuboot(segments, path, file_offsets=False)
        unchecked = list(_mcuboot_unchecked(path, segments))
        notes = []
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
        if decoded.problems:
            # damaged: the text itself is searched too, so nothing in the damaged lines escapes
            segments.append(Segment(None, data, section="Intel HEX text", file_offset=0))
        if not decoded.segments and not decoded.problems:
            unchecked.append(Unchecked(path, "Intel HEX file holds no data records"))
        return [
            Image(
                path,
                self.name,
                len(data),
                tuple(segments),
                unchecked=tuple(unchecked),
                notes=tuple(notes),
                hex_file=path,
            )
        ]


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


class ZipReader:
    name: ClassVar[str] = "zip"

    def claims(self, data: bytes, path: str) -> bool:
        return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        import zipfile  # noqa: PLC0415 - 10 ms of start-up that only archives need

        if depth >= MAX_ZIP_DEPTH:
            return [_unchecked_whole(data, path, self.name, "zip archives nested too deeply")]
        members: list[Image] = []
        names: list[str] = []
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    name = f"{path}!{info.filename}"
                    names.append(info.filename)
                    if info.flag_bits & 0x1:
                        members.append(
                            Image(
                                name,
                                "encrypted zip member",
                                info.file_size,
                                (),
                                unchecked=(Unchecked(name, "the zip member is encrypted"),),
                            )
                        )
                        continue
                    try:
                        member = archive.read(info)
                    except (zipfile.BadZipFile, EOFError, NotImplementedError, OSError) as exc:
                        members.append(
                            Image(
                                name,
                                "zip member",
                                info.file_size,
                                (),
                                unchecked=(Unchecked(name, f"corrupt zip member ({exc})"),),
                            )
                        )
                        continue
                    members += read_bytes(member, name, options, depth + 1)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
            return [_unchecked_whole(data, path, self.name, f"corrupt zip archive ({exc})")]
        return [Image(path, self.name, len(data), (), members=tuple(names)), *members]


def _unchecked_whole(data: bytes, path: str, format: str, reason: str) -> Image:
    """An input whose structure was not read: its bytes are searched as they are."""
    return Image(
        path,
        format,
        len(data),
        (Segment(None, data, file_offset=0),) if data else (),
        unchecked=(Unchecked(path, f"{reason}: searched as raw bytes only"),),
    )


class McubootReader:
    name: ClassVar[str] = "mcuboot"

    def claims(self, data: bytes, path: str) -> bool:
        return len(data) >= 4 and _u32(data) == MCUBOOT_MAGIC

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        segments = _split_mcuboot(
            [Segment(options.base_address, data, file_offset=0)], path, file_offsets=True
        )
        return [
            Image(
                path,
                self.name,
                len(data),
                tuple(segments),
                unchecked=_mcuboot_unchecked(path, segments),
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
READERS: tuple[Reader, ...] = (ElfReader(), ZipReader(), McubootReader(), HexReader(), RawReader())

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


def _u32(data: bytes, offset: int = 0) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _split_mcuboot(segments: list[Segment], path: str, *, file_offsets: bool) -> list[Segment]:
    """Name the header, payload and TLV area of a segment that starts with an MCUboot header.

    The segment stays one whole (a key across a boundary is found); the parts are its regions.
    """
    out: list[Segment] = []
    for segment in segments:
        data = segment.data
        if len(data) < 4 or _u32(data) != MCUBOOT_MAGIC:
            out.append(segment)
            continue
        regions = _mcuboot_regions(data, segment.address)
        out.append(
            Segment(
                segment.address,
                data,
                section=segment.section,
                file_offset=segment.file_offset if file_offsets else None,
                regions=regions,
            )
        )
    return out


def _mcuboot_regions(data: bytes, address: int | None) -> tuple[Region, ...]:
    def at(offset: int) -> int | None:
        return None if address is None else address + offset

    if len(data) < MCUBOOT_HEADER.size:
        return (Region(0, len(data), _TRUNCATED_SECTION, at(0)),)
    fields = MCUBOOT_HEADER.unpack_from(data)
    hdr_size, img_size, flags = fields[2], fields[4], fields[5]
    payload_end = hdr_size + img_size
    if hdr_size < MCUBOOT_HEADER.size or payload_end + 4 > len(data):
        return (Region(0, len(data), _TRUNCATED_SECTION, at(0)),)
    tlv_end = payload_end
    for magic in (IMAGE_TLV_PROT_INFO_MAGIC, IMAGE_TLV_INFO_MAGIC):
        if tlv_end + 4 <= len(data) and _u16(data, tlv_end) == magic:
            tlv_end += _u16(data, tlv_end + 2)
    if tlv_end == payload_end or tlv_end > len(data):
        return (Region(0, len(data), _TRUNCATED_SECTION, at(0)),)
    encrypted = bool(flags & IMAGE_F_ENCRYPTED)
    pieces = [
        (0, hdr_size, "mcuboot header"),
        (hdr_size, payload_end, _ENCRYPTED_SECTION if encrypted else "mcuboot payload"),
        (payload_end, tlv_end, "mcuboot TLVs"),
        (tlv_end, len(data), None),
    ]
    return tuple(Region(a, b, name, at(a)) for a, b, name in pieces if b > a)


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "little")


def _mcuboot_unchecked(path: str, segments: list[Segment]) -> tuple[Unchecked, ...]:
    out = []
    for segment in segments:
        for region in segment.regions:
            where = "" if region.address is None else f" at 0x{region.address:08X}"
            size = region.end - region.start
            if region.section == _ENCRYPTED_SECTION:
                out.append(
                    Unchecked(
                        path,
                        f"MCUboot payload{where} ({size} bytes) is encrypted: cannot be checked",
                        offset=None
                        if segment.file_offset is None
                        else segment.file_offset + region.start,
                    )
                )
            elif region.section == _TRUNCATED_SECTION:
                out.append(
                    Unchecked(
                        path,
                        f"truncated MCUboot image{where}: header, payload and TLV area do not "
                        "fit; searched as raw bytes only",
                    )
                )
    return tuple(out)
