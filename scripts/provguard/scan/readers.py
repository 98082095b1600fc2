"""Readers: turn a file (or an archive member) into `Image`s made of segments.

Each reader is a small class in `READERS`, tried in order by `sniff`; the raw reader takes what no
other claims. Intel HEX (`hexfile`), ELF (pyelftools: every allocated section with contents, at its
flash load address, with its symbols), MCUboot images (header, payload and TLV area; an encrypted
payload is reported as unchecked), zip archives (members read recursively, named `a.zip!b.bin`).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import ClassVar, Protocol

from provguard.errors import InputError
from provguard.scan.hexfile import looks_like_hex, parse_intel_hex
from provguard.scan.model import Image, Segment, Symbol

#: File names a directory walk picks up (explicitly named files are read whatever their name).
IMAGE_SUFFIXES = (".hex", ".ihex", ".elf", ".axf", ".bin", ".img", ".zip", ".signed")

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
        return looks_like_hex(data[:256])

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        segments = [Segment(s.address, s.data) for s in parse_intel_hex(data, path)]
        segments = _split_mcuboot(segments, path, file_offsets=False)
        unchecked = _mcuboot_unchecked(segments)
        return [
            Image(path, self.name, len(data), tuple(segments), unchecked=unchecked, hex_text=data)
        ]


class ElfReader:
    name: ClassVar[str] = "elf"

    def claims(self, data: bytes, path: str) -> bool:
        return data[:4] == b"\x7fELF"

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        # pyelftools is imported when an ELF is read: it is 50 ms of start-up a HEX gate skips.
        from elftools.common.exceptions import ELFError  # noqa: PLC0415

        try:
            return [Image(path, self.name, len(data), tuple(_elf_segments(data, path)))]
        except (ELFError, struct.error, ValueError, IndexError, AssertionError) as exc:
            raise InputError(
                f"corrupt or truncated ELF file ({type(exc).__name__})", path=path
            ) from None


def _elf_segments(data: bytes, path: str) -> list[Segment]:
    from elftools.elf.constants import SH_FLAGS  # noqa: PLC0415 - see ElfReader.read
    from elftools.elf.elffile import ELFFile  # noqa: PLC0415
    from elftools.elf.sections import SymbolTableSection  # noqa: PLC0415

    elf = ELFFile(io.BytesIO(data))
    loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
    sections = []
    for index, section in enumerate(elf.iter_sections()):
        if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or section["sh_type"] == "SHT_NOBITS":
            continue
        if section["sh_size"] == 0:
            continue
        end = section["sh_offset"] + section["sh_size"]
        if end > len(data):
            raise InputError(
                f"truncated ELF file: section {section.name} ends at byte {end}, "
                f"the file has {len(data)}",
                path=path,
            )
        sections.append((index, section))
    symbols: dict[int, list[Symbol]] = {index: [] for index, _ in sections}
    addresses = {index: section["sh_addr"] for index, section in sections}
    symtab = elf.get_section_by_name(".symtab")
    if isinstance(symtab, SymbolTableSection):
        for sym in symtab.iter_symbols():
            shndx = sym["st_shndx"]
            if not isinstance(shndx, int) or shndx not in symbols or not sym.name:
                continue
            if sym["st_info"]["type"] not in ("STT_OBJECT", "STT_FUNC", "STT_NOTYPE"):
                continue
            value = (
                sym["st_value"] & ~1 if sym["st_info"]["type"] == "STT_FUNC" else sym["st_value"]
            )
            if sym.name.startswith("$"):  # ARM mapping symbols ($t, $d)
                continue
            symbols[shndx].append(Symbol(sym.name, value - addresses[shndx], sym["st_size"]))
    segments = []
    for index, section in sections:
        offset = section["sh_offset"]
        address = section["sh_addr"]
        for load in loads:  # flash address: where the loader copies it from (LMA)
            if load["p_offset"] <= offset < load["p_offset"] + load["p_filesz"]:
                address = load["p_paddr"] + offset - load["p_offset"]
                break
        segments.append(
            Segment(
                address,
                data[offset : offset + section["sh_size"]],
                section=section.name,
                file_offset=offset,
                symbols=tuple(symbols[index]),
            )
        )
    return segments


class ZipReader:
    name: ClassVar[str] = "zip"

    def claims(self, data: bytes, path: str) -> bool:
        return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        if depth >= MAX_ZIP_DEPTH:
            raise InputError("zip archives nested too deeply", path=path)
        import zipfile  # noqa: PLC0415 - 10 ms of start-up that only archives need

        images: list[Image] = [Image(path, self.name, len(data), ())]
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    if info.flag_bits & 0x1:
                        images.append(
                            Image(
                                f"{path}!{info.filename}",
                                "encrypted zip member",
                                info.file_size,
                                (),
                                unchecked=("the zip member is encrypted",),
                            )
                        )
                        continue
                    member = archive.read(info)
                    images += read_bytes(member, f"{path}!{info.filename}", options, depth + 1)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
            raise InputError(f"corrupt zip archive ({exc})", path=path) from None
        return images


class McubootReader:
    name: ClassVar[str] = "mcuboot"

    def claims(self, data: bytes, path: str) -> bool:
        return len(data) >= MCUBOOT_HEADER.size and _u32(data) == MCUBOOT_MAGIC

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        segments = _split_mcuboot(
            [Segment(options.base_address, data, file_offset=0)], path, file_offsets=True
        )
        return [
            Image(
                path, self.name, len(data), tuple(segments), unchecked=_mcuboot_unchecked(segments)
            )
        ]


class RawReader:
    name: ClassVar[str] = "raw"

    def claims(self, data: bytes, path: str) -> bool:
        return True

    def read(self, data: bytes, path: str, options: Options, depth: int) -> list[Image]:
        segment = Segment(options.base_address, data, file_offset=0)
        return [Image(path, self.name, len(data), (segment,) if data else ())]


#: Tried in order; the first that claims a file reads it.
READERS: tuple[Reader, ...] = (ElfReader(), ZipReader(), McubootReader(), HexReader(), RawReader())

_ENCRYPTED_SECTION = "mcuboot payload (encrypted)"


def read_bytes(data: bytes, path: str, options: Options, depth: int = 0) -> list[Image]:
    """The images in `data` (one, or one per archive member plus the archive itself)."""
    for reader in READERS:
        if reader.claims(data, path):
            return reader.read(data, path, options, depth)
    raise AssertionError("the raw reader claims everything")  # pragma: no cover


def _u32(data: bytes, offset: int = 0) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _split_mcuboot(segments: list[Segment], path: str, *, file_offsets: bool) -> list[Segment]:
    """Split a segment that starts with an MCUboot header into header, payload and TLV area."""
    out: list[Segment] = []
    for segment in segments:
        data = segment.data
        if len(data) < MCUBOOT_HEADER.size or _u32(data) != MCUBOOT_MAGIC:
            out.append(segment)
            continue
        fields = MCUBOOT_HEADER.unpack_from(data)
        hdr_size, protect_tlv_size, img_size, flags = fields[2], fields[3], fields[4], fields[5]
        payload_end = hdr_size + img_size
        if hdr_size < MCUBOOT_HEADER.size or payload_end + 4 > len(data):
            raise InputError(
                f"truncated MCUboot image: header says {payload_end} bytes of header and payload "
                f"plus TLVs, {len(data)} present",
                path=path,
            )
        tlv_end = payload_end
        for magic in (IMAGE_TLV_PROT_INFO_MAGIC, IMAGE_TLV_INFO_MAGIC):
            if (
                tlv_end + 4 <= len(data)
                and int.from_bytes(data[tlv_end : tlv_end + 2], "little") == magic
            ):
                tlv_end += int.from_bytes(data[tlv_end + 2 : tlv_end + 4], "little")
        if (
            protect_tlv_size
            and int.from_bytes(data[payload_end : payload_end + 2], "little")
            != IMAGE_TLV_PROT_INFO_MAGIC
        ):
            raise InputError("MCUboot image: protected TLV area missing", path=path)
        if tlv_end == payload_end or tlv_end > len(data):
            raise InputError("MCUboot image: no valid TLV area after the payload", path=path)
        encrypted = bool(flags & IMAGE_F_ENCRYPTED)
        pieces = [
            (0, hdr_size, "mcuboot header"),
            (hdr_size, payload_end, _ENCRYPTED_SECTION if encrypted else "mcuboot payload"),
            (payload_end, tlv_end, "mcuboot TLVs"),
            (tlv_end, len(data), None),
        ]
        for start, end, section in pieces:
            if end <= start:
                continue
            out.append(
                Segment(
                    segment.address + start,
                    data[start:end],
                    section=section,
                    file_offset=(segment.file_offset or 0) + start if file_offsets else None,
                )
            )
    return out


def _mcuboot_unchecked(segments: list[Segment]) -> tuple[str, ...]:
    return tuple(
        f"MCUboot payload at 0x{s.address:08X} ({len(s.data)} bytes) is encrypted: "
        "cannot be checked"
        for s in segments
        if s.section == _ENCRYPTED_SECTION
    )
