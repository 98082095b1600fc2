"""ELF layout for the scan: which file bytes are which section, at which flash address.

The scan searches the whole ELF file as one segment (so nothing escapes: non-loaded sections,
padding, bytes no header describes); this module only names what it finds. Sections come from
the section headers; when those are missing (`e_shoff`/`e_shnum` 0) or point outside the file,
the program headers (what a loader and `objcopy -O ihex` use) name the loaded ranges instead.
When the file cannot be parsed at all, the layout is empty and says why: the bytes are still
searched, the structure was not read.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

from provguard.scan.model import Region, Symbol


@dataclass(frozen=True)
class ElfLayout:
    regions: tuple[Region, ...]
    problems: tuple[str, ...]  # structure that could not be read: the input stays unchecked
    notes: tuple[str, ...]  # how it was read


_NOT_READ = "the whole file was searched as raw bytes"


def elf_layout(data: bytes) -> ElfLayout:
    # pyelftools is imported when an ELF is read: it is 50 ms of start-up a HEX gate skips.
    from elftools.common.exceptions import ELFError  # noqa: PLC0415
    from elftools.elf.elffile import ELFFile  # noqa: PLC0415

    errors = (ELFError, struct.error, ValueError, IndexError, AssertionError, KeyError, TypeError)
    try:
        elf = ELFFile(io.BytesIO(data))
        relocatable = elf["e_type"] == "ET_REL"
    except errors as exc:
        return ElfLayout((), (f"ELF structure not read ({_reason(exc)}): {_NOT_READ}",), ())
    problems: list[str] = []
    notes: list[str] = []
    loads: list[Region] = []
    try:
        for index, segment in enumerate(elf.iter_segments()):
            if segment["p_type"] != "PT_LOAD" or not segment["p_filesz"]:
                continue
            start, size = segment["p_offset"], segment["p_filesz"]
            if start + size > len(data):
                problems.append(
                    f"truncated ELF file: program header {index} ends at byte {start + size}, "
                    f"the file has {len(data)}"
                )
            loads.append(
                Region(start, min(start + size, len(data)), f"PT_LOAD[{index}]", segment["p_paddr"])
            )
    except errors as exc:
        problems.append(f"ELF program headers not read ({_reason(exc)}): {_NOT_READ}")
    sections: list[Region] = []
    shoff, shnum = elf["e_shoff"], elf["e_shnum"]
    table_end = shoff + shnum * elf["e_shentsize"]
    if shoff and shnum and table_end > len(data):
        problems.append(
            f"truncated ELF file: section headers end at byte {table_end}, the file has "
            f"{len(data)}; {_NOT_READ}"
        )
    if not shoff or not shnum or table_end > len(data):
        if not loads:
            problems.append(f"ELF has neither section nor program headers: {_NOT_READ}")
        else:
            notes.append("ELF section headers missing: named by program headers")
        return ElfLayout(tuple(loads), tuple(problems), tuple(notes))
    try:
        sections = _sections(elf, data, loads, relocatable, problems)
    except errors as exc:
        problems.append(f"ELF section headers not read ({_reason(exc)}): {_NOT_READ}")
        if loads:
            notes.append("named by program headers")
    return ElfLayout(tuple(sections + loads), tuple(problems), tuple(notes))


def _sections(
    elf: Any, data: bytes, loads: list[Region], relocatable: bool, problems: list[str]
) -> list[Region]:
    from elftools.elf.constants import SH_FLAGS  # noqa: PLC0415 - see elf_layout
    from elftools.elf.sections import SymbolTableSection  # noqa: PLC0415

    chosen: list[tuple[int, Any]] = []
    for index, section in enumerate(elf.iter_sections()):
        if section["sh_type"] == "SHT_NOBITS" or not section["sh_size"]:
            continue
        end = section["sh_offset"] + section["sh_size"]
        if end > len(data):
            problems.append(
                f"truncated ELF file: section {section.name} ends at byte {end}, "
                f"the file has {len(data)}"
            )
        chosen.append((index, section))
    symbols: dict[int, list[Symbol]] = {index: [] for index, _ in chosen}
    addresses = {index: section["sh_addr"] for index, section in chosen}
    symtab = elf.get_section_by_name(".symtab")
    if isinstance(symtab, SymbolTableSection):
        for sym in symtab.iter_symbols():
            shndx = sym["st_shndx"]
            kind = sym["st_info"]["type"]
            if not isinstance(shndx, int) or shndx not in symbols or not sym.name:
                continue
            if kind not in ("STT_OBJECT", "STT_FUNC", "STT_NOTYPE") or sym.name.startswith("$"):
                continue  # ARM mapping symbols ($t, $d) name no object
            value = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]
            symbols[shndx].append(Symbol(sym.name, value - addresses[shndx], sym["st_size"]))
    regions = []
    for index, section in chosen:
        offset = section["sh_offset"]
        address: int | None = None
        if section["sh_flags"] & SH_FLAGS.SHF_ALLOC and not relocatable:
            address = section["sh_addr"]
            for load in loads:  # flash address: where the loader copies it from (LMA)
                if load.start <= offset < load.end and load.address is not None:
                    address = load.address + offset - load.start
                    break
        regions.append(
            Region(
                offset,
                min(offset + section["sh_size"], len(data)),
                section.name,
                address,
                tuple(sorted(symbols[index], key=lambda s: (s.offset, -s.size))),
            )
        )
    return regions


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:80] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
