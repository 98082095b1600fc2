#!/usr/bin/env python3
"""Benchmark `provguard scan`: builds its inputs, then reports wall times, throughput and memory.

Figures (targets on a 2-core CI machine):
  1. a 1 MiB merged.hex (flash, a gap, a second region, UICR; 16-byte records as objcopy writes
     them) scanned end to end by the CLI, interpreter start included, four known keys  <= 0.5 s
  2. a 16 MiB raw image with four known keys (2 EC P-256, 2 RSA-2048) plus the always-on
     detectors, in MB/s: a clean release-like image and one with the keys embedded  >= 100 MB/s
  3. peak memory scanning the 16 MiB image: Python heap (tracemalloc) and the CLI process's max
     RSS above an idle `provguard scan --help`                                           <= 4x image

Usage: python benchmarks/scan_bench.py [--profile] [--runs N]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
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

from provguard.cli import main as provguard_main
from provguard.scan import KnownIndex, Options, key_material, scan_paths

MIB = 1 << 20
UICR = 0x00FF8000
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def make_keys() -> list[Key]:
    return [
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ]


def pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def key_blobs(keys: list[Key]) -> list[bytes]:
    """Each key as PEM and as SEC1/PKCS#1 DER, as a development image would carry them."""
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    none = serialization.NoEncryption()
    return [pem(k) for k in keys] + [
        k.private_bytes(serialization.Encoding.DER, traditional, none) for k in keys
    ]


def firmware_like(size: int, rng: random.Random) -> bytearray:
    """Code-like bytes: random runs (70 %), zero-filled tables, erased (0xFF) pages."""
    out = bytearray()
    while len(out) < size:
        choice, run = rng.random(), rng.randrange(256, 8192)
        out += (
            rng.randbytes(run) if choice < 0.7 else (bytes(run) if choice < 0.85 else b"\xff" * run)
        )
    return out[:size]


def embed(image: bytearray, blobs: list[bytes], rng: random.Random) -> None:
    for blob in blobs:
        at = rng.randrange(0, len(image) - len(blob))
        image[at : at + len(blob)] = blob


def cli(*args: str | Path) -> tuple[float, int]:
    """(wall seconds, exit code) of one `provguard` process."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "provguard", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"provguard failed: {result.stderr.decode()}")
    return elapsed, result.returncode


# The child reports its own high-water RSS (VmHWM belongs to the exec'd process; the rusage of a
# child forked from this big benchmark process would count the parent's pages).
_MEASURED = """\
import sys
from provguard.cli import main
try:
    code = main(sys.argv[1:])
finally:
    with open("/proc/self/status") as status:
        sys.stderr.write(next(x for x in status if x.startswith("VmHWM:")))
sys.exit(code)
"""


def peak_rss(*args: str | Path) -> int:
    """High-water resident memory, in bytes, of `provguard ARGS` (Linux)."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURED, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
        text=True,
    )
    return int(result.stderr.strip().splitlines()[-1].split()[1]) * 1024


def bench_hex(
    work: Path, keys: list[Key], key_args: list[str], runs: int, rng: random.Random
) -> Path:
    flash = firmware_like(MIB - 4096, rng)
    embed(flash, key_blobs(keys), rng)
    source = IntelHex()
    source.frombytes(bytes(flash[: MIB // 2]), offset=0)
    source.frombytes(bytes(flash[MIB // 2 :]), offset=0x00080000)  # after a gap
    source.frombytes(rng.randbytes(4096), offset=UICR)
    merged = work / "merged.hex"
    source.write_hex_file(str(merged))
    idle = [cli("--version")[0] for _ in range(runs)]
    timed = [cli("scan", merged, *key_args) for _ in range(runs)]
    times = [t for t, _ in timed]
    print(f"1. 1 MiB merged.hex ({merged.stat().st_size / MIB:.1f} MiB of text), 4 known keys, CLI")
    print(f"   end to end: best {min(times):.3f} s, median {statistics.median(times):.3f} s")
    print(
        f"   (exit {timed[0][1]}; `provguard --version` alone: median "
        f"{statistics.median(idle):.3f} s)"
    )
    return merged


def bench_raw(work: Path, keys: list[Key], key_args: list[str], rng: random.Random) -> Path:
    clean = work / "release.bin"
    clean.write_bytes(firmware_like(16 * MIB, rng))
    dev = bytearray(clean.read_bytes())
    embed(dev, key_blobs(keys), rng)
    development = work / "development.bin"
    development.write_bytes(dev)
    known = KnownIndex([key_material(k, f"key{i}") for i, k in enumerate(keys)])
    print("2. 16 MiB raw image, 4 known keys + always-on detectors (read + scan, in process)")
    for label, path in (("clean", clean), ("with the keys", development)):
        best = min(_scan_seconds(path, known) for _ in range(3))
        found = len(scan_paths([path], known, None, Options()).findings)
        print(f"   {label}: {16 * MIB / best / 1e6:.0f} MB/s ({best:.3f} s, {found} findings)")
    times = [cli("scan", development, *key_args)[0] for _ in range(3)]
    print(f"   CLI end to end, with the keys: median {statistics.median(times):.3f} s")
    return development


def _scan_seconds(path: Path, known: KnownIndex) -> float:
    start = time.perf_counter()
    scan_paths([path], known, None, Options())
    return time.perf_counter() - start


def bench_memory(image: Path, keys: list[Key], key_args: list[str]) -> None:
    known = KnownIndex([key_material(k, f"key{i}") for i, k in enumerate(keys)])
    size = image.stat().st_size
    tracemalloc.start()
    scan_paths([image], known, None, Options())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    idle = peak_rss("scan", "--help")
    scanning = peak_rss("scan", image, *key_args)
    print("3. peak memory scanning the 16 MiB image")
    print(f"   Python heap: {peak / MIB:.1f} MiB = {peak / size:.2f}x the image")
    print(
        f"   CLI max RSS {scanning / MIB:.0f} MiB, {(scanning - idle) / MIB:.0f} MiB above an idle "
        f"provguard = {(scanning - idle) / size:.2f}x the image"
    )


def profile(merged: Path, key_args: list[str]) -> None:
    print("\nprofile: `provguard scan` of the 1 MiB merged.hex, in process, by cumulative time")
    profiler = cProfile.Profile()
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            profiler.runcall(provguard_main, ["scan", str(merged), *key_args])
        finally:
            sys.stdout = stdout
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(16)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="CLI runs per figure (default 7)")
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()
    rng = random.Random(20261125)  # noqa: S311 - reproducible filler, not a secret
    keys = make_keys()
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        work = Path(tmp)
        key_args: list[str] = []
        for index, key in enumerate(keys):
            path = work / f"key{index}.pem"
            path.write_bytes(pem(key))
            path.chmod(0o600)
            key_args += ["--key", str(path)]
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        )
        merged = bench_hex(work, keys, key_args, args.runs, rng)
        development = bench_raw(work, keys, key_args, rng)
        bench_memory(development, keys, key_args)
        if args.profile:
            profile(merged, key_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
