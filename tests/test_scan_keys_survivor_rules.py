"""Rules of the known-key part of the scan that mutation testing found untested.

- A damaged P-384 or P-521 EC key (its public point changed, so cryptography refuses it) is still
  reported, in PKCS#8 as in SEC1, named by the fingerprint of the original key: the layout short
  cut P-256 keys also have does not apply, so every field asn1crypto reads must be read right.
- Parallel key loading: the loading process never ends itself while it starts workers, and a
  worker's result larger than one read of the pipe arrives whole (not read again here).
- The short secret components (a P-224 scalar, under MIN_FRAGMENT bytes) are looked for whole,
  at every place they occur, whatever keys come before them in the index.

Expected values come from the keys the tests generate (fingerprints computed with cryptography)
and from the offsets the tests planted.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provguard.scan import keyset
from provguard.scan.detectors import DAMAGED_EC, Detection, _ec_key_parts, detect
from provguard.scan.known import MIN_SECRET_BYTES, KnownIndex, KnownMaterial, key_material
from provguard.scan.model import Kind
from tests import factories as f
from tests.factories import spki_fingerprint

PKCS8 = serialization.PrivateFormat.PKCS8
SEC1 = serialization.PrivateFormat.TraditionalOpenSSL
PAD = b"\xff" * 100
CURVES = [ec.SECP384R1(), ec.SECP521R1()]
FORMATS = [(PKCS8, "PKCS#8"), (SEC1, "SEC1")]


def der_of(key: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())


def scalar_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")


def parts_of(der: bytes) -> tuple[str, str, str, int] | None:
    """`_ec_key_parts` with its scalar replaced by the scalar's SHA-256 (an assertion that fails
    prints what it compared: never key material)."""
    parts = _ec_key_parts(der)
    if parts is None:
        return None
    return parts[0], parts[1].name, hashlib.sha256(parts[2]).hexdigest(), parts[3]


def point_damaged(der: bytes) -> bytes:
    """`der` with a byte of its public point (the last bytes of both forms) changed."""
    damaged = bytearray(der)
    damaged[-5] ^= 0x55
    return bytes(damaged)


# --- a damaged EC key on a curve other than P-256 ----------------------------------------------


@pytest.mark.parametrize(("fmt", "form"), FORMATS, ids=[form for _, form in FORMATS])
@pytest.mark.parametrize("curve", CURVES, ids=[curve.name for curve in CURVES])
def test_a_key_with_a_damaged_point_is_reported_by_the_original_key(
    curve: ec.EllipticCurve, fmt: serialization.PrivateFormat, form: str
) -> None:
    key = f.ec_key(curve)
    der = point_damaged(der_of(key, fmt))
    # (every value compared is computed first: a failing assertion prints no key bytes)
    start, end, fingerprint = len(PAD), len(PAD) + len(der), spki_fingerprint(key)
    found = detect(PAD + der + PAD)
    encoding, description = f"{form} DER, {DAMAGED_EC}", f"EC {curve.name}"
    assert found == [Detection(start, end, Kind.PRIVATE_KEY, encoding, fingerprint, description)]


@pytest.mark.parametrize(("fmt", "form"), FORMATS, ids=[form for _, form in FORMATS])
@pytest.mark.parametrize("curve", CURVES, ids=[curve.name for curve in CURVES])
def test_the_parts_of_a_key_whole_in_form_are_its_form_curve_and_scalar_and_no_more(
    curve: ec.EllipticCurve, fmt: serialization.PrivateFormat, form: str
) -> None:
    key = f.ec_key(curve)
    der = point_damaged(der_of(key, fmt))
    scalar = hashlib.sha256(scalar_of(key)).hexdigest()
    whole, longer = parts_of(der), parts_of(der + b"\x00")
    assert whole == (form, curve.name, scalar, 1)
    assert longer is None  # a byte past the end of the DER: not one structure, not whole in form


@pytest.mark.parametrize(("fmt", "form"), FORMATS, ids=[form for _, form in FORMATS])
@pytest.mark.parametrize("curve", CURVES, ids=[curve.name for curve in CURVES])
def test_a_key_whose_version_byte_changed_is_still_reported(
    curve: ec.EllipticCurve, fmt: serialization.PrivateFormat, form: str
) -> None:
    """RFC 5915: ECPrivateKey's version is 1. A key whose version byte was changed is refused by
    cryptography, but its scalar is whole: the gate fails closed and reports it, named by the
    original key's fingerprint."""
    key = f.ec_key(curve)
    der = bytearray(der_of(key, fmt))
    ec_private_key = der.index(b"\x02\x01\x01\x04")  # the SEC1 structure's version, 1
    der[ec_private_key + 2] = 0
    start, end, fingerprint = len(PAD), len(PAD) + len(der), spki_fingerprint(key)
    found = detect(PAD + bytes(der) + PAD)
    encoding, description = f"{form} DER, damaged: its version is not 1", f"EC {curve.name}"
    assert found == [Detection(start, end, Kind.PRIVATE_KEY, encoding, fingerprint, description)]
    scalar = hashlib.sha256(scalar_of(key)).hexdigest()
    assert parts_of(bytes(der)) == (form, curve.name, scalar, 0)


# --- keys read on several processes --------------------------------------------------------------


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of two units at least; and os._exit watched: a worker ends with it, this process
    never does (an exit there would end the scan before anything was scanned): here it raises."""
    monkeypatch.setattr(keyset, "MIN_FILES_PER_PROCESS", 2)
    parent, real_exit = os.getpid(), os._exit

    def watched_exit(code: int) -> None:
        if os.getpid() == parent:
            raise AssertionError(f"the loading process called os._exit({code})")
        real_exit(code)

    monkeypatch.setattr(os, "_exit", watched_exit)


def _read_by(log: Path) -> dict[int, list[int]]:
    """unit -> the pids that read it, from the log `load` appends to."""
    out: dict[int, list[int]] = {}
    for line in log.read_text().splitlines():
        unit, pid = line.split()
        out.setdefault(int(unit), []).append(int(pid))
    return out


@pytest.mark.usefixtures("small_runs")
def test_the_loading_process_never_ends_itself_while_starting_workers(tmp_path: Path) -> None:
    """The workers read the runs after the first, each once; this process reads the first and
    goes on (os._exit is watched by `small_runs`)."""
    parent = os.getpid()
    log = tmp_path / "reads.log"

    def load(unit: int, out: list[KnownMaterial]) -> None:
        with open(log, "a") as handle:
            handle.write(f"{unit} {os.getpid()}\n")
        out.append(KnownMaterial(Kind.CERTIFICATE, f"unit {unit}", f"SHA256:{unit:064x}"))

    materials = keyset.load_all(list(range(4)), load, jobs=2)
    assert [m.source for m in materials] == [f"unit {i}" for i in range(4)]
    readers = _read_by(log)
    assert readers[0] == readers[1] == [parent]
    assert len(readers[2]) == len(readers[3]) == 1  # the worker's run, read once
    assert readers[2] == readers[3] != [parent]


@pytest.mark.usefixtures("small_runs")
def test_a_worker_s_result_of_more_than_a_mebibyte_arrives_whole(tmp_path: Path) -> None:
    """Runs of two units: the second run is read by a worker whose result (two names of 600 KiB
    each) takes many reads of the pipe; it is received, not read again here."""
    parent = os.getpid()
    log = tmp_path / "reads.log"
    filler = "x" * (600 << 10)

    def load(unit: int, out: list[KnownMaterial]) -> None:
        with open(log, "a") as handle:
            handle.write(f"{unit} {os.getpid()}\n")
        out.append(KnownMaterial(Kind.CERTIFICATE, f"unit {unit} {filler}", f"SHA256:{unit:064x}"))

    materials = keyset.load_all(list(range(4)), load, jobs=2)
    assert [m.source for m in materials] == [f"unit {i} {filler}" for i in range(4)]
    assert [m.fingerprint for m in materials] == [f"SHA256:{i:064x}" for i in range(4)]
    readers = _read_by(log)
    assert readers[0] == readers[1] == [parent]
    assert len(readers[2]) == len(readers[3]) == 1  # not read again here
    assert readers[2] == readers[3] != [parent]


# --- short secret components ---------------------------------------------------------------------


def test_a_short_scalar_is_found_at_every_place_including_the_first_byte() -> None:
    key = f.ec_key(ec.SECP224R1())
    scalar = scalar_of(key)
    places, size = [0, 100, 300], len(scalar)  # (a failing assertion prints no key bytes)
    image = bytearray(b"\xff" * 400)
    for at in places:
        image[at : at + size] = scalar
    material = key_material(key, "p224.pem")
    found = KnownIndex([material]).search(bytes(image))
    assert sorted((m.start, m.end, m.encoding, m.material.source) for m in found) == [
        (at, at + size, "raw EC private scalar", "p224.pem") for at in places
    ]


def test_a_short_scalar_is_looked_for_after_a_p256_key_read_in_bulk(tmp_path: Path) -> None:
    """A P-256 key read the short way (its scalar and point only) first in the index, a P-224
    key after it: the P-224 scalar is still looked for."""
    p256 = tmp_path / "p256.pem"
    p256.write_bytes(f.key_pem(f.ec_key()))
    bulk = keyset.load_file(p256)
    assert [bool(m.p256) for m in bulk] == [True]
    key = f.ec_key(ec.SECP224R1())
    scalar = scalar_of(key)
    size = len(scalar)  # (a failing assertion prints no key bytes)
    image = b"\xff" * 50 + scalar + b"\xff" * 50
    found = KnownIndex([*bulk, key_material(key, "p224.pem")]).search(image)
    assert [(m.start, m.end, m.encoding, m.material.source) for m in found] == [
        (50, 50 + size, "raw EC private scalar", "p224.pem")
    ]


def _prime(bits: int) -> int:
    """A random prime of exactly `bits` bits (Miller-Rabin, 40 random bases)."""
    while True:
        n = random.getrandbits(bits) | 3 << (bits - 2) | 1
        if n % 65537 == 1 or any(n % p == 0 for p in (3, 5, 7, 11, 13, 17, 19, 23)):
            continue
        d, s = n - 1, 0
        while d % 2 == 0:
            d, s = d // 2, s + 1
        for _ in range(40):
            x = pow(random.randrange(2, n - 1), d, n)
            if x in (1, n - 1):
                continue
            for _ in range(s - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                break
        else:
            return n


def test_a_component_of_exactly_min_secret_bytes_is_looked_for_whole() -> None:
    """A toy 256-bit RSA key (cryptography loads it, it does not make one): its primes are
    MIN_SECRET_BYTES long, enough secret to count, too short for the sampled search."""
    p, q, e = _prime(128), _prime(128), 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q)
    )
    key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    prime = p.to_bytes(16, "big")
    size = len(prime)  # (a failing assertion prints no key bytes)
    assert size == MIN_SECRET_BYTES
    image = b"\xff" * 50 + prime + b"\xff" * 50
    found = KnownIndex([key_material(key, "toy.pem")]).search(image)
    assert [(m.start, m.end, m.encoding, m.material.source) for m in found] == [
        (50, 50 + size, "raw RSA prime p", "toy.pem")
    ]
