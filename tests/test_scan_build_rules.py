"""Which build files the scan looks for next to what it was given, rule by rule.

`find_partitions`: the partitions.yml of the build directory a scanned file is in (up to three
directories above it) or that a scanned directory holds (up to three levels below it), each once
whatever the order or overlap of the scanned paths, and a damaged or oversized one named.
`resolve_allowlist`: an allowed symbol resolved through every ELF next to an Intel HEX (`.hex`,
`.ihex`) by flash address, and next to a raw `.bin` by file offset (the ELF's lowest load
address is file offset 0).

Expected directories and sizes are the ones the test made; symbol addresses come from
arm-none-eabi-nm (tests/images.py), never from the code under test.
"""

from __future__ import annotations

import locale
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provguard.errors import InputError
from provguard.scan import build
from provguard.scan.allow import Allowlist, SymbolRange, load_allowlist
from tests import images

LAYOUT = "app:\n  address: 0x8000\n  size: 0x1000\n"


def partitions(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "partitions.yml").write_text(LAYOUT)
    return directory


def found(*paths: Path) -> list[str]:
    """The build directories find_partitions names, in its order."""
    return [directory for directory, _ in build.find_partitions(paths)]


# --- above a scanned file or directory ---------------------------------------------------------


def test_a_file_finds_the_partitions_yml_up_to_three_directories_above_its_own(
    tmp_path: Path,
) -> None:
    top = partitions(tmp_path / "build")
    image = top / "a" / "b" / "c" / "zephyr.hex"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"")
    assert found(image) == [str(top)]
    deeper = top / "a" / "b" / "c" / "d" / "zephyr.hex"
    deeper.parent.mkdir()
    deeper.write_bytes(b"")
    assert found(deeper) == []  # four directories above its own: not this build's


def test_a_directory_finds_the_partitions_yml_up_to_three_directories_above_it(
    tmp_path: Path,
) -> None:
    top = partitions(tmp_path / "build")
    scanned = top / "a" / "b" / "c"
    scanned.mkdir(parents=True)
    assert found(scanned) == [str(top)]
    (scanned / "d").mkdir()
    assert found(scanned / "d") == []  # four directories above it: not this build's


def test_a_directory_finds_its_own_partitions_yml_once(tmp_path: Path) -> None:
    top = partitions(tmp_path / "build")
    assert found(top) == [str(top)]
    assert found(top, top / "partitions.yml") == [str(top)]


# --- below a scanned directory ----------------------------------------------------------------


def test_a_directory_finds_builds_up_to_three_levels_below_it_in_name_order(
    tmp_path: Path,
) -> None:
    scanned = tmp_path / "release"
    one = partitions(scanned / "x")
    three = partitions(scanned / "y" / "2" / "3")
    partitions(scanned / "z" / "2" / "3" / "4")  # four levels down: not looked for
    assert found(scanned) == [str(one), str(three)]


def test_overlapping_directories_name_each_build_once(tmp_path: Path) -> None:
    scanned = tmp_path / "release"
    inner = partitions(scanned / "a" / "b")
    assert found(scanned, scanned / "a") == [str(inner)]
    assert found(scanned / "a", scanned) == [str(inner)]
    assert found(scanned / "a", scanned / "a" / "b") == [str(inner)]


def test_files_of_one_build_name_it_once(tmp_path: Path) -> None:
    top = partitions(tmp_path / "build")
    files = []
    for name in ("merged.hex", "zephyr.bin"):
        (top / name).write_bytes(b"")
        files.append(top / name)
    assert found(*files) == [str(top)]


@pytest.mark.parametrize("root", [True, False], ids=["filesystem-root", "other-directory"])
def test_the_filesystem_root_is_searched_as_deep_as_any_other_directory(
    root: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a walk over a made-up tree (one directory per level, a layout file at every level) that,
    # like the real top-down os.walk, descends only into the directories left in `dirs`; the
    # file name is one no real directory holds, so nothing real is found beside the walk
    name = "provguard-test-partitions.yml"
    levels = [f"level{n}" for n in range(1, build.DEPTH + 2)]  # one level more than looked for

    def walk(top: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[str]]]:
        def visit(directory: str, depth: int) -> Iterator[tuple[str, list[str], list[str]]]:
            dirs = levels[depth : depth + 1]
            yield directory, dirs, [name]
            for d in dirs:
                yield from visit(os.path.join(directory, d), depth + 1)

        return visit(os.fspath(top), 0)

    monkeypatch.setattr(build, "PARTITIONS", name)
    monkeypatch.setattr(build.os, "walk", walk)
    scanned = Path(os.sep) if root else tmp_path
    expected = [str(Path(scanned, *levels[:n], name)) for n in range(build.DEPTH + 1)]
    assert [str(p) for p in build._candidates([scanned])] == expected


# --- a partitions.yml that cannot be used -----------------------------------------------------


def test_a_damaged_partitions_yml_is_named_by_its_path(tmp_path: Path) -> None:
    top = tmp_path / "build"
    top.mkdir()
    (top / "partitions.yml").write_text("- app\n")
    with pytest.raises(InputError) as caught:
        build.find_partitions([top])
    path = top / "partitions.yml"
    assert str(caught.value) == f"{path}: not a partitions.yml: expected a mapping of partitions"


def test_an_oversized_partitions_yml_is_named_as_such(tmp_path: Path) -> None:
    top = tmp_path / "build"
    top.mkdir()
    limit = 1024 * 1024
    text = LAYOUT + "#" * (limit - len(LAYOUT)) + "\n"
    (top / "partitions.yml").write_text(text)
    with pytest.raises(InputError) as caught:
        build.find_partitions([top])
    path = top / "partitions.yml"
    assert str(caught.value) == (
        f"{path}: partitions.yml too large ({len(text)} bytes, limit {limit})"
    )


# --- an allowed symbol resolved through the ELF next to a HEX or raw image --------------------

needs_toolchain = pytest.mark.skipif(
    not images.HAVE_TOOLCHAIN and not os.environ.get("CI"), reason="needs arm-none-eabi-gcc"
)

ORIGIN = 0x8000  # where .rodata, the only loaded section, is linked: file offset 0 of a .bin
BLOBS_C = "const unsigned char allowed_blob[32] = {1};\n"
LINKER_SCRIPT = f"SECTIONS\n{{\n\t.rodata {ORIGIN:#x} : {{ KEEP(*(.rodata*)) }}\n}}\n"
SIZE = 32


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """An ELF with `allowed_blob`, and the blob's flash address (from nm)."""
    path = images.link_elf(tmp_path_factory.mktemp("elf"), BLOBS_C, LINKER_SCRIPT)
    return path, images.flash_addresses(path)["allowed_blob"]


def test_no_allowlist_or_no_symbol_entry_is_returned_as_it_is(tmp_path: Path) -> None:
    image = tmp_path / "merged.hex"
    image.write_bytes(b"")
    assert build.resolve_allowlist(None, [image]) is None
    keys_only = Allowlist(frozenset({"SHA256:" + "0" * 64}), ())
    assert build.resolve_allowlist(keys_only, [image]) is keys_only


@needs_toolchain
def test_every_elf_next_to_an_image_resolves_the_symbol_by_address_or_offset(
    elf: tuple[Path, int], tmp_path: Path
) -> None:
    """A HEX (any case of `.hex`/`.ihex`) gets the flash range through each ELF; a raw .bin the
    file offsets (address - ORIGIN) through each ELF; other files nothing."""
    source, address = elf
    out = tmp_path / "zephyr"
    out.mkdir()
    elves = [out / "zephyr.elf", out / "zephyr_pre0.elf"]
    for path in elves:
        path.write_bytes(source.read_bytes())
    names = ["zephyr.hex", "ZEPHYR.IHEX", "zephyr.ihex", "zephyr.bin", "zephyr.map"]
    files = [out / name for name in names]
    for path in files:
        path.write_bytes(bytes(64))
    allow = Allowlist(frozenset(), ("allowed_blob",))
    resolved = build.resolve_allowlist(allow, files)
    assert resolved is not None
    flash = tuple(
        SymbolRange("allowed_blob", address, address + SIZE, str(path)) for path in sorted(elves)
    )
    offset = address - ORIGIN
    raw = tuple(
        SymbolRange("allowed_blob", offset, offset + SIZE, str(path), offsets=True)
        for path in sorted(elves)
    )
    assert resolved == Allowlist(
        frozenset(),
        ("allowed_blob",),
        (
            (str(files[0]), flash),
            (str(files[1]), flash),
            (str(files[2]), flash),
            (str(files[3]), raw),
        ),
    )


@needs_toolchain
@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs Linux /proc")
def test_an_elf_that_cannot_be_read_leaves_the_next_one_resolved(
    elf: tuple[Path, int], tmp_path: Path
) -> None:
    """An ELF whose read fails (an I/O error: here a link to /proc/self/mem, which cannot be
    read at offset 0, since root reads any file) is skipped; the ELF after it still resolves."""
    source, address = elf
    broken = tmp_path / "a_broken.elf"
    broken.symlink_to("/proc/self/mem")
    with pytest.raises(OSError, match="Input/output error"):
        broken.read_bytes()
    good = tmp_path / "zephyr.elf"
    good.write_bytes(source.read_bytes())
    image = tmp_path / "zephyr.hex"
    image.write_bytes(b"")
    resolved = build.resolve_allowlist(Allowlist(frozenset(), ("allowed_blob",)), [image])
    assert resolved is not None
    assert resolved.ranges == (
        (str(image), (SymbolRange("allowed_blob", address, address + SIZE, str(good)),)),
    )


# --- the allowlist file's encoding ------------------------------------------------------------


@pytest.mark.skipif(bool(sys.flags.utf8_mode), reason="UTF-8 mode ignores the locale")
def test_an_allowlist_is_read_as_utf8_under_an_ascii_locale_in_this_process(
    tmp_path: Path,
) -> None:
    """The locale set while provguard runs (here C: ASCII) does not change how the allowlist
    is read (tests/test_scan_allow_build_rules.py checks a fresh interpreter started so)."""
    path = tmp_path / "allow.txt"
    path.write_text("# Schl\u00fcssel des Bootloaders\nsymbol enc_priv_key\n", encoding="utf-8")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        with pytest.raises(UnicodeDecodeError):
            path.read_text(encoding=None)  # what the locale alone would give
        allow = load_allowlist(path)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    assert allow == Allowlist(frozenset(), ("enc_priv_key",))
