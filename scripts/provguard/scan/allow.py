"""The allowlist: findings that are meant to be there, named so that the entry survives rebuilds.

Format (one entry per line, `#` starts a comment)::

    # MCUboot's image-decryption key lives in the bootloader on purpose
    key SHA256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    symbol enc_priv_key
    symbol mcuboot_*          # a wildcard: refused unless --force-allow-wildcard

`key` matches the fingerprint printed for a finding (the SHA-256 of the key's public key info, or
of a certificate); `symbol` matches the ELF symbol a finding lies in, and the same flash bytes in
the Intel HEX of that build (the engine resolves the symbol through the ELF next to the HEX). A
symbol pattern with shell wildcards (`*`, `?`, `[`) would allow every private key that happens
to lie in a matching symbol, so it is refused unless the user forces it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from provguard.errors import InputError
from provguard.scan.model import Finding

_FINGERPRINT = re.compile(r"SHA256:[0-9a-f]{64}")


_WILDCARD = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SymbolRange:
    """Flash bytes of an allowed symbol, resolved through an ELF, for the HEX of that build."""

    name: str
    start: int
    end: int
    elf: str  # the ELF it was resolved through
    offsets: bool = False  # start/end are file offsets (a raw .bin), not flash addresses


@dataclass(frozen=True)
class Allowlist:
    keys: frozenset[str]
    symbols: tuple[str, ...]
    #: per HEX/BIN file: the allowed symbols' flash ranges (see `resolve_symbols`)
    ranges: tuple[tuple[str, tuple[SymbolRange, ...]], ...] = ()

    def entry_for(self, finding: Finding) -> str | None:
        """The entry that allows `finding` ("key SHA256:…", "symbol NAME"), or None."""
        if finding.key in self.keys:
            return f"key {finding.key}"
        if finding.symbol is not None:
            for pattern in self.symbols:
                if fnmatch.fnmatchcase(finding.symbol, pattern):
                    return f"symbol {pattern}"
        for path, ranges in self.ranges:
            if path != finding.path:
                continue
            for item in ranges:
                where = finding.file_offset if item.offsets else finding.address
                if where is not None and item.start <= where < item.end:
                    return f"symbol {item.name} (resolved through {item.elf})"
        return None


def parse_allowlist(text: str, path: str, *, force_wildcard: bool = False) -> Allowlist:
    keys: set[str] = set()
    symbols: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(
                "expected `key SHA256:<64 hex>` or `symbol NAME`", path=path, line=number
            )
        what, value = parts
        if what == "key":
            if not _FINGERPRINT.fullmatch(value.lower().replace("sha256:", "SHA256:", 1)):
                raise InputError(
                    "a key entry needs a fingerprint SHA256:<64 hex digits>", path=path, line=number
                )
            keys.add("SHA256:" + value[7:].lower())
        elif what == "symbol":
            if _WILDCARD.search(value) and not force_wildcard:
                raise InputError(
                    f"`symbol {value}` is a wildcard: it would allow every private key in a "
                    "matching symbol; name each symbol, or pass --force-allow-wildcard",
                    path=path,
                    line=number,
                )
            symbols.append(value)
        else:
            raise InputError(
                f"unknown entry {what!r}: use `key` or `symbol`", path=path, line=number
            )
    return Allowlist(frozenset(keys), tuple(symbols))


def load_allowlist(path: Path, *, force_wildcard: bool = False) -> Allowlist:
    try:
        if path.exists() and not path.is_file():
            raise InputError("not a regular file (FIFO, device or directory)", path=path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such allowlist file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the allowlist: {exc}", path=path) from None
    return parse_allowlist(text, str(path), force_wildcard=force_wildcard)
