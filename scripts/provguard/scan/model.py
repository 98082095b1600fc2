"""Value objects shared by the scan's readers, engine and report writers (text, JSON, SARIF, HTML).

The gate fails closed: every input (file or archive member) ends in exactly one `State`:

- `State.FOUND`: a key or certificate was found in it (whatever else is true);
- `State.UNCHECKED`: some part of it could not be searched (`Unchecked` says which and why);
- `State.READ`: every byte of it was decoded and searched, nothing found.

`ScanResult.verdict` is "clean" only when every input is `READ` (or holds findings that do not
fail, e.g. certificates below `--fail-on`) and nothing is unchecked. `Coverage` says for each input
what was read and how: format, bytes examined, decoded flash ranges, members, partitions, notes.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field


class Kind(enum.Enum):
    """What a finding is; the order is the severity order used by `--fail-on`."""

    CERTIFICATE = "certificate"
    PRIVATE_KEY = "private-key"

    @property
    def rank(self) -> int:
        return 1 if self is Kind.PRIVATE_KEY else 0


class State(enum.Enum):
    """How one input ended."""

    READ = "read in full"
    FOUND = "found"
    UNCHECKED = "unchecked"


class Verdict(enum.Enum):
    CLEAN = "clean"
    NOT_CLEAN = "NOT CLEAN"  # nothing failing found, but something was not checked
    FAIL = "FAIL"


@dataclass(frozen=True)
class Symbol:
    """An ELF symbol, located by its offset inside the segment that holds it."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class Region:
    """A named part of a segment: `[start, end)` in segment offsets.

    `address` is the flash address of the region's first byte, or None when those bytes are not
    loaded anywhere (an ELF section that is not allocated, an ELF header).
    """

    start: int
    end: int
    section: str | None
    address: int | None
    symbols: tuple[Symbol, ...] = ()  # offsets in the region, sorted by (offset, -size)


@dataclass(frozen=True)
class Segment:
    """A contiguous run of bytes that is searched as one whole (no key is lost at a part boundary).

    `address` is the flash address of `data[0]` (HEX, ELF load address) or its file offset (raw
    images) or None when the bytes are not at a flash address; `file_offset` is where `data[0]`
    sits in the file itself when that is known. `regions` name parts of the segment (ELF
    sections, MCUboot header/payload/TLVs); a hit is named after the region that holds its start,
    and takes its flash address from it.
    """

    address: int | None
    data: bytes
    section: str | None = None
    file_offset: int | None = None
    symbols: tuple[Symbol, ...] = ()
    regions: tuple[Region, ...] = ()
    _starts: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.symbols, key=lambda s: (s.offset, -s.size)))
        object.__setattr__(self, "symbols", ordered)
        object.__setattr__(self, "_starts", tuple(s.offset for s in ordered))

    def symbol_at(self, offset: int, length: int = 1) -> str | None:
        """The symbol overlapping `[offset, offset + length)` that starts last, if any."""
        return symbol_at(self.symbols, self._starts, offset, length)


def symbol_at(
    symbols: tuple[Symbol, ...], starts: tuple[int, ...], offset: int, length: int = 1
) -> str | None:
    end = offset + max(length, 1)
    fallback = None  # a size-less label (a linker symbol such as __data_start)
    for symbol in reversed(symbols[: bisect.bisect_left(starts, end)]):
        if symbol.offset + max(symbol.size, 1) > offset:
            if symbol.size:
                return symbol.name
            fallback = fallback or symbol.name
    return fallback


@dataclass(frozen=True)
class Unchecked:
    """A part of an input that was not searched (or not decoded), and why."""

    path: str
    reason: str
    line: int | None = None  # text line (Intel HEX) of the part
    offset: int | None = None  # byte offset in the file of the part


@dataclass(frozen=True)
class AddressRange:
    """`[start, end)` of flash addresses, with what it is (section, partition, HEX run)."""

    start: int
    end: int
    label: str | None = None


@dataclass(frozen=True)
class Image:
    """One input (a file or an archive member) as readers deliver it: segments to search, and
    what could not be searched."""

    path: str
    format: str
    size: int
    segments: tuple[Segment, ...]
    unchecked: tuple[Unchecked, ...] = ()
    notes: tuple[str, ...] = ()  # how it was read ("ELF section headers missing: ...")
    members: tuple[str, ...] = ()  # archive members (each also an Image of its own)
    ranges: tuple[AddressRange, ...] = ()  # decoded flash ranges; from segments when empty
    #: Intel HEX: where to find the record line of an address (the file is re-read, not kept).
    hex_file: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Finding:
    """A private key or certificate found in an image; never carries the key itself."""

    path: str
    kind: Kind
    encoding: str
    address: int | None  # flash address (or raw-file offset + --base-address); None: not loaded
    length: int
    section: str | None
    symbol: str | None
    key: str  # "SHA256:<hex>" fingerprint of the key (public key info) or certificate
    known: str | None = None  # the --key/--cert/--from file it matched, when it was a known one
    file_offset: int | None = None  # byte offset in the file (not for archive members)
    line: int | None = None  # text line: Intel HEX record line, or line of a text file
    partition: str | None = None  # partitions.yml partition holding `address`
    allowed_by: str | None = None  # the allowlist entry ("key SHA256:…", "symbol NAME")


@dataclass(frozen=True)
class Coverage:
    """What was read of one input, and how."""

    path: str
    format: str
    size: int  # bytes of the input (decompressed size for an archive member)
    examined: int  # bytes searched (decoded data, text, derived views)
    ranges: tuple[AddressRange, ...] = ()
    members: tuple[str, ...] = ()
    unchecked: tuple[Unchecked, ...] = ()
    notes: tuple[str, ...] = ()
    partitions: tuple[AddressRange, ...] = ()  # partitions.yml layout of this build, if known
    findings: int = 0  # failing or not, allowed not counted

    @property
    def state(self) -> State:
        if self.findings:
            return State.FOUND
        if self.unchecked:
            return State.UNCHECKED
        return State.READ


@dataclass(frozen=True)
class Scanned:
    """Kept for callers of the first report layout: path, format and size of an input."""

    path: str
    format: str
    size: int


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    allowed: tuple[Finding, ...]
    coverage: tuple[Coverage, ...]
    #: paths not read on purpose: excluded with --exclude, or the same file as another path
    skipped: tuple[Unchecked, ...] = ()

    @property
    def unchecked(self) -> tuple[Unchecked, ...]:
        return tuple(u for c in self.coverage for u in c.unchecked)

    @property
    def scanned(self) -> tuple[Scanned, ...]:
        return tuple(Scanned(c.path, c.format, c.size) for c in self.coverage)

    def failing(self, fail_on: Kind) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind.rank >= fail_on.rank)

    def verdict(self, fail_on: Kind) -> Verdict:
        if self.failing(fail_on):
            return Verdict.FAIL
        if self.unchecked:
            return Verdict.NOT_CLEAN
        return Verdict.CLEAN

    def exit_code(self, fail_on: Kind) -> int:
        """0 clean, 1 a failing finding, 2 something unchecked (and nothing failing found)."""
        return {Verdict.CLEAN: 0, Verdict.FAIL: 1, Verdict.NOT_CLEAN: 2}[self.verdict(fail_on)]
