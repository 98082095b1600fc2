"""`provguard scan`: find every private key (and certificate) left in a firmware image.

Pure core, I/O at the edges: `walk` picks the files, `archive` streams archive members,
`readers` (with `hexfile`, `elf`, `mcuboot`) turn bytes into segments, `known` and `detectors`
search segments, `engine` merges what they find into `Finding`s and `Coverage` (see `model`: every
input ends read, found or unchecked), `parallel` runs files on worker processes, `report` writes.
"""

from provguard.scan.allow import Allowlist, load_allowlist, parse_allowlist
from provguard.scan.detectors import DETECTORS
from provguard.scan.engine import scan_image, scan_images
from provguard.scan.known import KEY_ENCODINGS, KnownIndex, certificate_material, key_material
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
