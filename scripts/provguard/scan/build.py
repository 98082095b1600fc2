"""What the scan knows about an NCS build directory (sysbuild, the default since NCS 2.7).

A sysbuild build directory holds what ships at its top: `merged.hex` (every image: MCUboot, the
application, and any other domain, as flashed) and `dfu_application.zip` (the update); each image
has its own `<image>/zephyr/zephyr.elf`, `.hex`, `.bin` and, when signed, `zephyr.signed.hex`/
`.bin`. The partition manager writes the flash layout to `partitions.yml` at the top (and
`partitions_<domain>.yml` for other domains); a finding in a HEX or ELF is named after the
partition holding its address (`mcuboot`, `app`, `settings_storage`, ...).

`resolve_allowlist` gives an allowlist's `symbol NAME` entries their flash bytes through each
ELF of the build, so the same key in the build's Intel HEX and raw images (which carry no
symbols) is allowed too: a HEX or .bin file resolves through the ELF files in its own directory,
and a HEX at the top of a build (merged.hex) through every `*/zephyr/zephyr.elf` below it. A .bin
maps to flash from the ELF's lowest load address (as objcopy writes it), after the MCUboot
header when it is a signed image. Archive members (dfu_application.zip) are not resolved: their
own findings of the key fail unless allowed by `key SHA256:...`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from provguard.errors import InputError
from provguard.scan.allow import Allowlist, SymbolRange
from provguard.scan.elf import elf_layout
from provguard.scan.mcuboot import is_mcuboot
from provguard.scan.model import AddressRange, Region
from provguard.scan.walk import read_small_file

PARTITIONS = "partitions.yml"
#: How deep below a scanned directory a build directory (with its partitions.yml) is looked for.
DEPTH = 3
MAX_ELF = 256 << 20


def _candidates(paths: Sequence[Path]) -> Iterator[Path]:
    """partitions*.yml files of the build directories the scanned paths are in or hold."""
    seen: set[str] = set()
    for path in paths:
        start = path if path.is_dir() else path.parent
        for directory in [start, *list(start.parents)[:DEPTH]]:  # a file inside a build dir
            found = directory / PARTITIONS
            if str(found) not in seen and found.is_file():
                seen.add(str(found))
                yield found
        if path.is_dir():
            root_depth = str(path).rstrip(os.sep).count(os.sep)
            for root, dirs, names in os.walk(path):
                dirs.sort()
                if root.count(os.sep) - root_depth >= DEPTH:
                    dirs.clear()
                if PARTITIONS in names and str(Path(root, PARTITIONS)) not in seen:
                    seen.add(str(Path(root, PARTITIONS)))
                    yield Path(root, PARTITIONS)


def parse_partitions(text: bytes, source: str) -> tuple[AddressRange, ...]:
    """The partitions of a partition manager `partitions.yml`: name, address, end_address (or
    size). Entries without an address (placeholders) are left out."""
    import yaml  # noqa: PLC0415 - only a build directory has one; not every scan pays for it

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not a partitions.yml: {str(exc).splitlines()[0]}", path=source) from None
    if not isinstance(document, dict):
        raise InputError("not a partitions.yml: expected a mapping of partitions", path=source)
    out = []
    for name, entry in document.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), int):
            continue
        start = entry["address"]
        end = entry.get("end_address")
        if not isinstance(end, int):
            size = entry.get("size")
            if not isinstance(size, int):
                continue
            end = start + size
        if end > start:
            out.append(AddressRange(start, end, str(name)))
    return tuple(sorted(out, key=lambda r: (r.start, r.end)))


def find_partitions(
    paths: Sequence[Path],
) -> tuple[tuple[str, tuple[AddressRange, ...]], ...]:
    """(build directory, partitions) for each partitions.yml found; a damaged one is an error
    (the report would otherwise name no partition without saying why)."""
    out = []
    for found in _candidates(paths):
        layout = parse_partitions(read_small_file(found, what="partitions.yml"), str(found))
        if layout:
            out.append((str(found.parent), layout))
    return tuple(out)


def elves_for(hex_path: Path) -> list[Path]:
    """The ELF files a HEX file of a build is resolved through (see the module doc)."""
    directory = hex_path.parent
    out = sorted(directory.glob("*.elf"))
    if not out:
        out = sorted(directory.glob("*/zephyr/zephyr.elf"))
    return [p for p in out if p.is_file()]


def symbol_ranges(elf: Path, patterns: Sequence[str]) -> tuple[SymbolRange, ...]:
    """Flash bytes ([LMA, LMA + size)) of the symbols named by `patterns` in `elf`."""
    if elf.stat().st_size > MAX_ELF:
        return ()
    layout = elf_layout(elf.read_bytes())
    out = []
    for region in layout.regions:
        if region.address is None:
            continue
        for symbol in region.symbols:
            if symbol.size and any(fnmatch.fnmatchcase(symbol.name, p) for p in patterns):
                start = region.address + symbol.offset
                out.append(SymbolRange(symbol.name, start, start + symbol.size, str(elf)))
    return tuple(out)


def _bin_shift(path: Path, elf: Path) -> int | None:
    """How a raw image's file offsets map to the ELF's flash addresses: `offset = address -
    shift`. objcopy -O binary starts at the lowest load address; a signed image (MCUboot header)
    is its header size later. None when the ELF says nothing."""
    layout = elf_layout(elf.read_bytes()) if elf.stat().st_size <= MAX_ELF else None
    regions: Sequence[Region] = layout.regions if layout else ()
    # sections when there are any: the first PT_LOAD may also map the ELF header itself
    sections = [r for r in regions if not (r.section or "").startswith("PT_LOAD")] or regions
    loaded = [r.address for r in sections if r.address is not None]
    if not loaded:
        return None
    with open(path, "rb") as handle:
        head = handle.read(12)
    header = 0
    if is_mcuboot(head):
        header = int.from_bytes(head[8:10], "little")  # hdr_size
    return min(loaded) - header


def resolve_allowlist(allow: Allowlist | None, files: Sequence[Path]) -> Allowlist | None:
    """`allow` with the flash ranges of its symbol entries for each Intel HEX file in `files`
    (matched by address), and for each raw .bin next to an ELF (matched by file offset)."""
    if allow is None or not allow.symbols:
        return allow
    ranges = []
    cache: dict[Path, tuple[SymbolRange, ...]] = {}
    for path in files:
        name = str(path).lower()
        if not name.endswith((".hex", ".ihex", ".bin")):
            continue
        found: list[SymbolRange] = []
        for elf in elves_for(path):
            try:
                if elf not in cache:
                    cache[elf] = symbol_ranges(elf, allow.symbols)
                if not name.endswith(".bin"):
                    found += cache[elf]
                    continue
                shift = _bin_shift(path, elf) if cache[elf] else None
            except OSError:
                continue
            if shift is not None:
                found += [
                    dataclasses.replace(r, start=r.start - shift, end=r.end - shift, offsets=True)
                    for r in cache[elf]
                ]
        if found:
            ranges.append((str(path), tuple(found)))
    return Allowlist(allow.keys, allow.symbols, tuple(ranges))
