"""Value objects shared by the scan's readers, detectors and report writers."""

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


@dataclass(frozen=True)
class Symbol:
    """An ELF symbol, located by its offset inside the segment that holds it."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class Segment:
    """A contiguous run of image bytes.

    `address` is the flash address of `data[0]` (HEX, ELF load address) or its file offset (raw
    images); `file_offset` is where `data[0]` sits in the file itself when that is known.
    """

    address: int
    data: bytes
    section: str | None = None
    file_offset: int | None = None
    symbols: tuple[Symbol, ...] = ()
    _starts: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.symbols, key=lambda s: (s.offset, -s.size)))
        object.__setattr__(self, "symbols", ordered)
        object.__setattr__(self, "_starts", tuple(s.offset for s in ordered))

    def symbol_at(self, offset: int, length: int = 1) -> str | None:
        """The symbol overlapping `[offset, offset + length)` that starts last, if any."""
        end = offset + max(length, 1)
        fallback = None  # a size-less label (a linker symbol such as __data_start)
        for symbol in reversed(self.symbols[: bisect.bisect_left(self._starts, end)]):
            if symbol.offset + max(symbol.size, 1) > offset:
                if symbol.size:
                    return symbol.name
                fallback = fallback or symbol.name
        return fallback


@dataclass(frozen=True)
class Image:
    """One scannable file (or archive member) as its segments."""

    path: str
    format: str
    size: int
    segments: tuple[Segment, ...]
    #: Parts that exist but cannot be checked (an encrypted MCUboot payload), with the reason.
    unchecked: tuple[str, ...] = ()
    #: For Intel HEX: the file's text, so a finding's record line can be named.
    hex_text: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Finding:
    """A private key or certificate found in an image; never carries the key itself."""

    path: str
    kind: Kind
    encoding: str
    address: int
    length: int
    section: str | None
    symbol: str | None
    key: str  # "SHA256:<hex>" fingerprint of the key (public key info) or certificate
    known: str | None = None  # the --key/--cert/--from file it matched, when it was a known one
    file_offset: int | None = None
    line: int | None = None  # Intel HEX record line holding `address`


@dataclass(frozen=True)
class Unchecked:
    path: str
    reason: str


@dataclass(frozen=True)
class Scanned:
    path: str
    format: str
    size: int


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    allowed: tuple[Finding, ...]
    unchecked: tuple[Unchecked, ...]
    scanned: tuple[Scanned, ...]

    def failing(self, fail_on: Kind) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind.rank >= fail_on.rank)
