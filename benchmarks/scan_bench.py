#!/usr/bin/env python3
"""Benchmark `provguard scan`: builds its inputs, then reports wall times, throughput and memory.

Figures (targets on a 2-core CI machine):
  1. a 1 MiB merged.hex (flash + a gap + UICR, 16-byte records as objcopy writes them) scanned end
     to end by the CLI, interpreter start included, with four known keys      target <= 0.5 s
  2. a 16 MiB raw image, four known keys (2 EC P-256, 2 RSA-2048) plus the always-on detectors,
     in MB/s: a clean release-like image, and one with the keys embedded     target >= 100 MB/s
  3. peak memory while scanning the 16 MiB image (Python heap via tracemalloc, and the CLI
     process's max RSS above an idle `provguard --help`)                    target <= 4x image

Usage: python benchmarks/scan_bench.py [--profile] [--runs N]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from intelhex import IntelHex

from provguard.scan import KnownIndex, Options, key_material, scan_paths

MIB = 1 << 20
UICR = 0x00FF8000


def make_keys() -> list[ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    return [
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ]


def write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def firmware_like(size: int, rng: random.Random) -> bytearray:
    """Code-like bytes: random instruction-ish runs, zero-filled tables, erased (0xFF) pages."""
    out = bytearray()
    while len(out) < size:
        choice = rng.random()
        run = rng.randrange(256, 8192)
        if choice < 0.7:
            out += rng.randbytes(run)
        elif choice < 0.85:
            out += bytes(run)
        else:
            out += b"\xff" * run
    return out[:size]


def embed(image: bytearray, blobs: list[bytes], rng: random.Random) -> None:
    for blob in blobs:
        at = rng.randrange(0, len(image) - len(blob))
        image[at : at + len(blob)] = blob


def key_blobs(keys: list[ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]) -> list[bytes]:
    blobs = []
    for key in keys:
        blobs.append(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        blobs.append(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return blobs


def cli(*args: str | Path) -> tuple[float, int, int]:
    """(wall seconds, exit code, child max RSS in KiB) of one `provguard` run."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run(
        [sys.executable, "-m", "provguard", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode not in (0, 1):
        raise SystemExit(f"provguard failed: {result.stderr.decode()}")
    return elapsed, result.returncode, max(rss, before)


def timed(runs: int, *args: str | Path) -> list[float]:
    return [cli(*args)[0] for _ in range(runs)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()
    rng = random.Random(20261125)
    keys = make_keys()
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        work = Path(tmp)
        key_args: list[str | Path] = []
        for index, key in enumerate(keys):
            key_args += ["--key", write_key(work / f"key{index}.pem", key)]

        # 1. a 1 MiB merged.hex: application flash, a gap, a second region, UICR
        flash = firmware_like(MIB - 4096, rng)
        embed(flash, key_blobs(keys), rng)
        hexfile = IntelHex()
        hexfile.frombytes(bytes(flash[: MIB // 2]), offset=0)
        hexfile.frombytes(bytes(flash[MIB // 2 :]), offset=0x00080000)
        hexfile.frombytes(rng.randbytes(4096), offset=UICR)
        merged = work / "merged.hex"
        hexfile.write_hex_file(str(merged))

        help_times = timed(args.runs, "--help")
        hex_times = timed(args.runs, "scan", merged, *key_args)
        _, code, _ = cli("scan", merged, *key_args)
        print(f"1 MiB merged.hex ({merged.stat().st_size / MIB:.1f} MiB of text), 4 known keys, CLI:")
        print(
            f"   wall time best {min(hex_times):.3f} s, median {statistics.median(hex_times):.3f} s "
            f"(exit {code}; `provguard --help` alone: median {statistics.median(help_times):.3f} s)"
        )

        # 2. 16 MiB raw images: clean, and with the keys embedded
        raw_clean = work / "release.bin"
        raw_clean.write_bytes(firmware_like(16 * MIB, rng))
        dev = bytearray(raw_clean.read_bytes())
        embed(dev, key_blobs(keys), rng)
        raw_dev = work / "development.bin"
        raw_dev.write_bytes(dev)
        del dev
        known = KnownIndex([key_material(k, f"key{i}") for i, k in enumerate(keys)])
        for label, path in (("clean", raw_clean), ("with keys", raw_dev)):
            best = min(_scan_time(path, known) for _ in range(3))
            result = scan_paths([path], known, None, Options())
            print(
                f"16 MiB raw, {label}: {16 / best:.0f} MB/s in process (read + scan {best:.3f} s, "
                f"{len(result.findings)} findings)"
            )
        raw_times = timed(3, "scan", raw_dev, *key_args)
        print(f"   CLI end to end on the 16 MiB image with keys: median {statistics.median(raw_times):.3f} s")

        # 3. peak memory
        tracemalloc.start()
        scan_paths([raw_dev], known, None, Options())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        _, _, idle_rss = cli("--help")
        _, _, scan_rss = cli("scan", raw_dev, *key_args)
        print(
            f"peak memory, 16 MiB image: Python heap {peak / MIB:.1f} MiB "
            f"({peak / (16 * MIB):.2f}x the image); CLI max RSS {scan_rss / 1024:.0f} MiB, "
            f"{(scan_rss - idle_rss) / 1024:.0f} MiB above an idle provguard "
            f"({(scan_rss - idle_rss) * 1024 / (16 * MIB):.2f}x)"
        )

        if args.profile:
            print("\nprofile: CLI scan of the 1 MiB merged.hex (in process, cumulative time)")
            from provguard.cli import main as provguard_main

            profiler = cProfile.Profile()
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the report itself is not wanted
            try:
                profiler.runcall(provguard_main, ["scan", str(merged), *map(str, key_args)])
            finally:
                sys.stdout.close()
                sys.stdout = sys.__stdout__
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
    return 0


def _scan_time(path: Path, known: KnownIndex) -> float:
    start = time.perf_counter()
    scan_paths([path], known, None, Options())
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
