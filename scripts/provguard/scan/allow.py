"""The allowlist: findings that are meant to be there, named so that the entry survives rebuilds.

Format (one entry per line, `#` starts a comment)::

    # MCUboot's image-decryption key lives in the bootloader on purpose
    key SHA256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    symbol enc_priv_key
    symbol mcuboot_*          # shell-style wildcards are allowed in symbol names

`key` matches the fingerprint printed for a finding (the SHA-256 of the key's public key info, or
of a certificate); `symbol` matches the ELF symbol a finding lies in.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from provguard.errors import InputError
from provguard.scan.model import Finding

_FINGERPRINT = re.compile(r"SHA256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Allowlist:
    keys: frozenset[str]
    symbols: tuple[str, ...]

    def allows(self, finding: Finding) -> bool:
        if finding.key in self.keys:
            return True
        return finding.symbol is not None and any(
            fnmatch.fnmatchcase(finding.symbol, pattern) for pattern in self.symbols
        )


def parse_allowlist(text: str, path: str) -> Allowlist:
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
            symbols.append(value)
        else:
            raise InputError(
                f"unknown entry {what!r}: use `key` or `symbol`", path=path, line=number
            )
    return Allowlist(frozenset(keys), tuple(symbols))


def load_allowlist(path: Path) -> Allowlist:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such allowlist file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the allowlist: {exc}", path=path) from None
    return parse_allowlist(text, str(path))
