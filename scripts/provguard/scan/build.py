"""What the scan knows about an NCS build directory (sysbuild, the default since NCS 2.7).

A sysbuild build directory holds what ships at its top: `merged.hex` (every image: MCUboot, the
application, and any other domain, as flashed) and `dfu_application.zip` (the update); each image
has its own `<image>/zephyr/zephyr.elf`, `.hex`, `.bin` and, when signed, `zephyr.signed.hex`/
`.bin`. The partition manager writes the flash layout to `partitions.yml` at the top (and
`partitions_<domain>.yml` for other domains); a finding in a HEX or ELF is named after the
partition holding its address (`mcuboot`, `app`, `settings_storage`, ...).

`resolve_allowlist` gives an allowlist's `symbol NAME` entries their flash bytes through each
ELF of the build, so the same key in the build's Intel HEX files (which carry no symbols) is
allowed too: a HEX file resolves through the ELF files in its own directory, and a HEX at the top
of a build (merged.hex) through every `*/zephyr/zephyr.elf` below it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from provguard.errors import InputError
from provguard.scan.allow import Allowlist, SymbolRange
from provguard.scan.elf import elf_layout
from provguard.scan.model import AddressRange
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


def resolve_allowlist(allow: Allowlist | None, files: Sequence[Path]) -> Allowlist | None:
    """`allow` with the flash ranges of its symbol entries for each Intel HEX file in `files`."""
    if allow is None or not allow.symbols:
        return allow
    ranges = []
    cache: dict[Path, tuple[SymbolRange, ...]] = {}
    for path in files:
        if not str(path).lower().endswith((".hex", ".ihex")):
            continue
        found: list[SymbolRange] = []
        for elf in elves_for(path):
            if elf not in cache:
                try:
                    cache[elf] = symbol_ranges(elf, allow.symbols)
                except OSError:
                    cache[elf] = ()
            found += cache[elf]
        if found:
            ranges.append((str(path), tuple(found)))
    return Allowlist(allow.keys, allow.symbols, tuple(ranges))
