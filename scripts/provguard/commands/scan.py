"""`provguard scan`: the release gate that finds every key left in a firmware image."""

from __future__ import annotations

import argparse
import gc
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from provguard.errors import InputError, UsageError
from provguard.scan import keyset
from provguard.scan.allow import load_allowlist
from provguard.scan.archive import ArchiveLimits
from provguard.scan.known import KnownIndex, KnownMaterial, bulk
from provguard.scan.mcuboot import McubootOptions, load_enc_key
from provguard.scan.model import Kind
from provguard.scan.parallel import default_jobs, scan_paths
from provguard.scan.progress import Progress
from provguard.scan.readers import Options
from provguard.scan.report import WRITERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from provguard.scan.model import ScanResult

# What a scan needs only in some runs (credential files, MCUboot keys, HTML) is imported where it
# is used: `provguard scan` gates every build, and its start-up is most of a small scan's time.

NAME = "scan"
HELP = "find private keys and certificates left in firmware images (release gate)"
DESCRIPTION = """\
Scan firmware images for private keys and certificates: Intel HEX (merged.hex, with UICR), ELF
(the whole file, naming section and symbol), raw .bin, MCUboot images (compressed payloads
decompressed, encrypted ones decrypted with --mcuboot-enc-key), and archives (zip, tar, tar.gz,
tar.xz, nested) such as dfu_application.zip. A directory is read in full: every regular file under
it, whatever its name (--exclude to skip). In a sysbuild build directory, findings are named by
the partitions.yml partition they lie in.

The gate fails closed: every input ends read in full, found, or unchecked with the reason (a
damaged HEX line, an encrypted payload, a FIFO, an archive member over a limit); unchecked is
never clean.

Always on: PEM private-key blocks with a body and DER private keys (PKCS#8, SEC1, PKCS#1,
Ed25519), each confirmed by parsing; certificates. Bare PEM labels (mbedTLS), public keys and
random data are not findings. With --key/--cert/--from, the given credentials are also found as
base64 without headers, ASCII hex, raw private scalar/exponent/primes and fragments.

Exit 0 (clean) when every input was read in full and nothing at or above --fail-on was found; 1
when something was; 2 (NOT CLEAN) when any input or part of one was not checked. Keys are named
by SHA-256 fingerprint, never shown.

examples:
  provguard scan build/ --key certs/client.key
  provguard scan build/merged.hex build/dfu_application.zip --from certificates.json \
      --format sarif > scan.sarif
  provguard scan app.bin --base-address 0x10000 --allow provguard-allow.txt
"""


def _address(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="image file or directory to scan"
    )
    known = parser.add_argument_group("known credentials (found in every encoding)")
    known.add_argument(
        "--key",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a private key that must not ship (PEM or DER; repeatable)",
    )
    known.add_argument(
        "--cert",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="certificate(s) to look for (PEM or DER; repeatable)",
    )
    known.add_argument(
        "--from",
        dest="from_json",
        type=Path,
        metavar="FILE.json",
        help="a Link Monitor / Cellular Monitor credential export",
    )
    keyset.add_arguments(known)
    parser.add_argument(
        "--allow",
        type=Path,
        metavar="FILE",
        help="allowlist: lines `key SHA256:<hex>` or `symbol NAME`",
    )
    parser.add_argument(
        "--force-allow-wildcard",
        action="store_true",
        help="accept `symbol` entries with wildcards in --allow (they may allow private keys)",
    )
    parser.add_argument("--format", choices=(*WRITERS, "html"), default="text")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the report to FILE instead of standard output (--format html: a page to "
        "open in a browser)",
    )
    parser.add_argument(
        "--fail-on",
        choices=[k.value for k in (Kind.PRIVATE_KEY, Kind.CERTIFICATE)],
        default=Kind.PRIVATE_KEY.value,
        help="lowest finding that fails the scan (default: private-key)",
    )
    parser.add_argument(
        "--base-address",
        type=_address,
        default=0,
        metavar="N",
        help="flash address of the first byte of raw images (default 0)",
    )
    reading = parser.add_argument_group("what is read, and how")
    reading.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files and directories matching GLOB under a scanned directory (repeatable); "
        "listed as skipped in the report",
    )
    reading.add_argument(
        "--mcuboot-enc-key",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="key to decrypt encrypted MCUboot payloads (else they stay unchecked; repeatable)",
    )
    limits = ArchiveLimits()
    reading.add_argument(
        "--max-member-size",
        type=_size,
        default=limits.max_member_bytes,
        metavar="BYTES",
        help=f"archive member larger than this decompressed is unchecked "
        f"(default {limits.max_member_bytes >> 20} MiB; suffixes K, M, G)",
    )
    reading.add_argument(
        "--max-archive-size",
        type=_size,
        default=limits.max_total_bytes,
        metavar="BYTES",
        help=f"bytes decompressed per archive, nested ones included "
        f"(default {limits.max_total_bytes >> 20} MiB)",
    )
    reading.add_argument(
        "--max-ratio",
        type=int,
        default=limits.max_ratio,
        metavar="N",
        help=f"a member inflating more than N times its compressed size is a bomb: unchecked "
        f"(default {limits.max_ratio})",
    )
    reading.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        default=default_jobs(),
        metavar="N",
        help="worker processes (default: all cores)",
    )
    reading.add_argument(
        "--quiet", "-q", action="store_true", help="no progress line on the terminal"
    )


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    scale = units.get(text[-1:].upper(), 1)
    try:
        value = int(text[:-1] if scale > 1 else text, 0) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _regular(path: Path, what: str) -> Path:
    """A file named by an option must be a regular file: a FIFO or device would block or never
    end."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return path  # the loader says "no such file" in its own words
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} is not a regular file (FIFO, device or directory)", path=path)
    return path


def known_materials(args: argparse.Namespace) -> list[KnownMaterial]:
    for path in [*args.key, *args.cert, *([args.from_json] if args.from_json else [])]:
        _regular(path, "a known-credential file")
    materials = keyset.from_args(args)  # every key of each --key file, --key-dir, --keys-from
    if args.cert or args.from_json is not None:
        materials += _credential_files(args.cert, args.from_json)
    return materials


def _credential_files(certs: list[Path], from_json: Path | None) -> list[KnownMaterial]:
    """The certificates of `--cert` files and the keys and certificates of a `--from` export."""
    from provguard.credentials import (  # noqa: PLC0415 - see the imports at the top
        Slot,
        load_certificates,
        load_credential_set,
        load_private_key,
    )
    from provguard.scan.known import certificate_material, key_material  # noqa: PLC0415

    files = []
    for path in certs:
        files += load_credential_set(cert=path).files()
    if from_json is not None:
        files += load_credential_set(from_json=from_json).files()
    materials = []
    for file in files:
        if file.slot is Slot.KEY:
            materials.append(key_material(load_private_key(file, validate=False), file.name))
        else:
            materials += [certificate_material(c, file.name) for c in load_certificates(file)]
    return materials


def _write(report: str, output: Path | None) -> None:
    """The report on standard output, or in `output` (written whole, then renamed into place)."""
    if output is None:
        sys.stdout.write(report)
        return
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.write_text(report, encoding="utf-8")
        partial.replace(output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot write the report: {exc.strerror}", path=output) from None


def _writer(name: str) -> Callable[[ScanResult, Kind], str]:
    if name == "html":
        from provguard.scan.html import write_html  # noqa: PLC0415

        return write_html
    return WRITERS[name]


def run(args: argparse.Namespace) -> int:
    if not args.paths:
        raise UsageError("name at least one image file or directory")
    with bulk():  # no cyclic garbage collection while the known keys are loaded and indexed,
        known = KnownIndex(known_materials(args))
        # nor over them afterwards: they (ten thousand keys are a hundred thousand objects) and
        # the modules live as long as the scan, so the collector need not go through them again
        gc.freeze()
    try:
        return _scan(args, known)
    finally:
        gc.unfreeze()


def _scan(args: argparse.Namespace, known: KnownIndex) -> int:
    allow = (
        load_allowlist(
            _regular(args.allow, "the allowlist"), force_wildcard=args.force_allow_wildcard
        )
        if args.allow is not None
        else None
    )
    options = Options(
        base_address=args.base_address,
        lines=args.format == "sarif",
        mcuboot=McubootOptions(enc_keys=tuple(load_enc_key(p) for p in args.mcuboot_enc_key)),
        archive=ArchiveLimits(
            max_member_bytes=args.max_member_size,
            max_total_bytes=args.max_archive_size,
            max_ratio=args.max_ratio,
        ),
    )
    result = scan_paths(
        args.paths,
        known,
        allow,
        options,
        exclude=tuple(args.exclude),
        jobs=args.jobs,
        progress=Progress.for_terminal(quiet=args.quiet),
    )
    fail_on = Kind(args.fail_on)
    _write(_writer(args.format)(result, fail_on), args.output)
    return result.exit_code(fail_on)
