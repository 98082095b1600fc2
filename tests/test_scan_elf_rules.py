"""How scan/elf.py names what stopped it reading an ELF: the exception's type and the first line
of its message, cut at 80 characters, so a report line stays one line. Found by
`make mutation MODULE=scan-readers`."""

from __future__ import annotations

import io
import struct

import pytest
from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from provguard.scan.elf import _reason, elf_layout
from tests import images


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (ELFError("Magic number does not match"), "ELFError: Magic number does not match"),
        (ELFParseError("first line\nsecond line"), "ELFParseError: first line"),
        (ValueError("x" * 81), "ValueError: " + "x" * 80),
        (ValueError("y" * 80), "ValueError: " + "y" * 80),
        (EOFError(), "EOFError"),
        (ValueError("\nafter an empty first line"), "ValueError"),
    ],
)
def test_a_reading_error_is_named_in_one_short_line(exc: BaseException, said: str) -> None:
    assert _reason(exc) == said


NOT_READ = "the whole file was searched as raw bytes"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    blobs = [images.Blob("banner", b"nrf91 mqtt client", string=True)]
    return images.build_firmware(tmp_path_factory.mktemp("elf"), "zephyr", blobs).elf.read_bytes()


def test_an_elf_cut_inside_its_code_names_each_load_it_lost(firmware: bytes) -> None:
    # What the headers say, read here with pyelftools from the intact file.
    elf = ELFFile(io.BytesIO(firmware))
    loads = [
        (index, s["p_offset"], s["p_filesz"])
        for index, s in enumerate(elf.iter_segments())
        if s["p_type"] == "PT_LOAD" and s["p_filesz"]
    ]
    index, offset, size = loads[0]
    loads_paddr = elf.get_segment(index)["p_paddr"]
    cut = offset + size // 2
    table_end = elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"]
    layout = elf_layout(firmware[:cut])
    lost = [
        f"truncated ELF file: program header {i} ends at byte {o + s}, the file has {cut}"
        for i, o, s in loads
        if o + s > cut
    ]
    assert list(layout.problems) == [
        *lost,
        f"truncated ELF file: section headers end at byte {table_end}, the file has {cut}; "
        + NOT_READ,
    ]
    assert list(layout.notes) == ["ELF section headers missing: named by program headers"]
    first = [r for r in layout.regions if r.section == f"PT_LOAD[{index}]"]
    assert [(r.start, r.end, r.address) for r in first] == [(offset, cut, loads_paddr)]


def test_an_elf_without_any_headers_left_says_so(firmware: bytes) -> None:
    elf = ELFFile(io.BytesIO(firmware))
    header_only = bytearray(firmware[: elf["e_ehsize"]])
    layout = elf_layout(bytes(header_only))
    table_end = elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"]
    program, sections, neither = layout.problems
    # the program header table lies past the end: pyelftools' own words name what it missed
    assert program.startswith("ELF program headers not read (ELFParseError: ")
    assert program.endswith(f"): {NOT_READ}")
    assert sections == (
        f"truncated ELF file: section headers end at byte {table_end}, the file has "
        f"{len(header_only)}; {NOT_READ}"
    )
    assert neither == f"ELF has neither section nor program headers: {NOT_READ}"
    assert layout.regions == ()
    assert layout.notes == ()


def test_a_section_reaching_past_the_end_of_the_file_is_named(firmware: bytes) -> None:
    # Elf32_Shdr: sh_offset at byte 16, sh_size at byte 20 (the ELF specification's layout).
    elf = ELFFile(io.BytesIO(firmware))
    index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".rodata")
    header = elf["e_shoff"] + index * elf["e_shentsize"]
    (offset,) = struct.unpack_from("<I", firmware, header + 16)
    damaged = bytearray(firmware)
    struct.pack_into("<I", damaged, header + 20, len(firmware) - offset + 1)  # one byte too far
    layout = elf_layout(bytes(damaged))
    assert list(layout.problems) == [
        f"truncated ELF file: section .rodata ends at byte {len(firmware) + 1}, "
        f"the file has {len(firmware)}"
    ]
    struct.pack_into("<I", damaged, header + 20, len(firmware) - offset)  # exactly to the end
    assert elf_layout(bytes(damaged)).problems == ()
