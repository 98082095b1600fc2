"""`provguard scan`: find every private key (and certificate) left in a firmware image.

Pure core, I/O at the edges: `readers` turn bytes into segments, `known` and `detectors` search
segments, `engine` merges what they find into `Finding`s, `report` writes them.
"""

from provguard.scan.allow import Allowlist, load_allowlist, parse_allowlist
from provguard.scan.detectors import DETECTORS
from provguard.scan.engine import collect_files, scan_image, scan_images, scan_paths
from provguard.scan.known import KEY_ENCODINGS, KnownIndex, certificate_material, key_material
from provguard.scan.model import Finding, Image, Kind, ScanResult, Segment, Symbol
from provguard.scan.readers import READERS, Options, read_bytes
from provguard.scan.report import WRITERS

__all__ = [
    "DETECTORS",
    "KEY_ENCODINGS",
    "READERS",
    "WRITERS",
    "Allowlist",
    "Finding",
    "Image",
    "Kind",
    "KnownIndex",
    "Options",
    "ScanResult",
    "Segment",
    "Symbol",
    "certificate_material",
    "collect_files",
    "key_material",
    "load_allowlist",
    "parse_allowlist",
    "read_bytes",
    "scan_image",
    "scan_images",
    "scan_paths",
]
