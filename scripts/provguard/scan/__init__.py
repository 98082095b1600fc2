"""`provguard scan`: find every private key (and certificate) left in a firmware image.

Pure core, I/O at the edges: `walk` picks the files, `archive` streams archive members,
`readers` (with `hexfile`, `elf`, `mcuboot`) turn bytes into segments, `known` and `detectors`
search segments, `engine` merges what they find into `Finding`s and `Coverage` (see `model`: every
input ends read, found or unchecked), `parallel` runs files on worker processes, `report` writes.

The names below are imported when first used (PEP 562), not with the package: `provguard scan`
gates every build, and a scan that finds nothing never needs `cryptography`'s X.509 code, the
compression modules or the process pool (importing them all costs more than scanning a small
tree).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provguard.scan.allow import Allowlist, load_allowlist, parse_allowlist
    from provguard.scan.detectors import DETECTORS
    from provguard.scan.engine import scan_image, scan_images
    from provguard.scan.known import (
        KEY_ENCODINGS,
        KnownIndex,
        certificate_material,
        key_material,
    )
    from provguard.scan.model import (
        Coverage,
        Finding,
        Image,
        Kind,
        ScanResult,
        Segment,
        State,
        Symbol,
        Unchecked,
        Verdict,
    )
    from provguard.scan.parallel import default_jobs, scan_paths
    from provguard.scan.readers import READERS, Options, read_bytes
    from provguard.scan.report import WRITERS

#: Each public name, and the module that defines it.
_WHERE = {
    "Allowlist": "allow",
    "load_allowlist": "allow",
    "parse_allowlist": "allow",
    "DETECTORS": "detectors",
    "scan_image": "engine",
    "scan_images": "engine",
    "KEY_ENCODINGS": "known",
    "KnownIndex": "known",
    "certificate_material": "known",
    "key_material": "known",
    "Coverage": "model",
    "Finding": "model",
    "Image": "model",
    "Kind": "model",
    "ScanResult": "model",
    "Segment": "model",
    "State": "model",
    "Symbol": "model",
    "Unchecked": "model",
    "Verdict": "model",
    "default_jobs": "parallel",
    "scan_paths": "parallel",
    "READERS": "readers",
    "Options": "readers",
    "read_bytes": "readers",
    "WRITERS": "report",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:  # a submodule (`from provguard.scan import engine`) is imported as such
        raise AttributeError(f"module 'provguard.scan' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"provguard.scan.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})  # a lazy name once used is in both


__all__ = [
    "DETECTORS",
    "KEY_ENCODINGS",
    "READERS",
    "WRITERS",
    "Allowlist",
    "Coverage",
    "Finding",
    "Image",
    "Kind",
    "KnownIndex",
    "Options",
    "ScanResult",
    "Segment",
    "State",
    "Symbol",
    "Unchecked",
    "Verdict",
    "certificate_material",
    "default_jobs",
    "key_material",
    "load_allowlist",
    "parse_allowlist",
    "read_bytes",
    "scan_image",
    "scan_images",
    "scan_paths",
]
