"""A DER EC private key that cryptography refuses (a byte changed: its public key no longer
matches its scalar) is a finding, never "clean" (the gate fails closed).

Every byte of a P-256 key in PKCS#8 and SEC1 is damaged in turn. The key is reported at its span
whenever the DER detector can still see a candidate there; when the damage is in the first bytes
it matches on, from its ECPrivateKey core (version 1 and the scalar) to the scalar's end; only
damage to that core's own first five bytes leaves nothing to report. It is named by the public
key of the scalar that is left: the original key's fingerprint when the damage is outside the
scalar, else the fingerprint of the damaged scalar's key. Both are computed here with
cryptography from the bytes the test damaged.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard.cli import main
from provguard.scan.detectors import DAMAGED_EC, DAMAGED_FRAMING, Detection, detect
from provguard.scan.known import P256_LAYOUT_DAMAGE
from provguard.scan.model import Kind
from tests import factories as f
from tests.factories import spki_fingerprint

PKCS8 = serialization.PrivateFormat.PKCS8
SEC1 = serialization.PrivateFormat.TraditionalOpenSSL
PAD = b"\xff" * 100


def der_of(key: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())


def scalar_offset(der: bytes, key: ec.EllipticCurvePrivateKey) -> int:
    size = (key.curve.key_size + 7) // 8
    return der.index(key.private_numbers().private_value.to_bytes(size, "big"))


def expected(damaged: bytes, at: int, scalar: int, key: ec.EllipticCurvePrivateKey) -> str | None:
    """The fingerprint the damaged key must be reported by (None: no key is left)."""
    size = (key.curve.key_size + 7) // 8
    if not scalar <= at < scalar + size:
        return spki_fingerprint(key)
    value = int.from_bytes(damaged[scalar : scalar + size], "big")
    try:
        return spki_fingerprint(ec.derive_private_key(value, key.curve))
    except ValueError:  # zero or past the curve's order
        return None


@pytest.mark.parametrize(
    ("fmt", "form", "matched"),
    [(PKCS8, "PKCS#8", 7), (SEC1, "SEC1", 6)],  # bytes the DER candidate pattern matches on
    ids=["PKCS#8", "SEC1"],
)
def test_every_damaged_byte_of_a_p256_key_but_its_core_is_reported(
    fmt: serialization.PrivateFormat, form: str, matched: int
) -> None:
    key = f.ec_key()
    der = der_of(key, fmt)
    scalar = scalar_offset(der, key)
    core = der.index(b"\x02\x01\x01\x04")  # ECPrivateKey's version 1 (RFC 5915), its scalar
    for at in range(len(der)):
        damaged = bytearray(der)
        damaged[at] ^= 0x55
        found = detect(PAD + bytes(damaged) + PAD)
        fingerprint = expected(bytes(damaged), at, scalar, key)
        if (at < matched and core <= at < core + 5) or fingerprint is None:
            assert found == [], at
            continue
        if at < matched:  # the DER pattern cannot see it: what is left from the core on is
            encoding = f"{form} DER, {DAMAGED_FRAMING}"
            span = (len(PAD) + core, len(PAD) + scalar + 32)
        else:
            damage = "damaged: its version is not 1" if at == core + 2 else DAMAGED_EC
            encoding = f"{form} DER, {damage}"
            span = (len(PAD), len(PAD) + len(der))
        assert found == [Detection(*span, Kind.PRIVATE_KEY, encoding, fingerprint, "EC secp256r1")]


def test_a_p384_key_whole_in_form_with_a_damaged_point_is_reported_by_its_fingerprint() -> None:
    key = f.ec_key(ec.SECP384R1())
    der = bytearray(der_of(key, SEC1))
    der[-5] ^= 0x55  # in the public point
    found = detect(PAD + bytes(der) + PAD)
    span = (len(PAD), len(PAD) + len(der))
    encoding = f"SEC1 DER, {DAMAGED_EC}"
    fingerprint = spki_fingerprint(key)
    assert found == [Detection(*span, Kind.PRIVATE_KEY, encoding, fingerprint, "EC secp384r1")]


def _layout_damaged(count: int) -> bytes:
    """A SEC1 P-256 key with `count` bytes of its layout after the scalar changed (the curve's
    OID), and its point, so that neither cryptography nor asn1crypto reads it."""
    key = f.ec_key()
    der = bytearray(der_of(key, SEC1))
    after = scalar_offset(bytes(der), key) + 32
    for i in range(count):
        der[after + 4 + i] ^= 0x55  # a0 0a 06 08 [the OID's bytes]
    der[-1] ^= 0x55
    return bytes(der)


@pytest.mark.parametrize(
    ("count", "damage"),
    [
        (P256_LAYOUT_DAMAGE, f"SEC1 DER, {DAMAGED_EC}"),  # the layout, at the key's first byte
        (3, f"EC DER, {DAMAGED_FRAMING}"),  # not the layout: what is left from its core on
    ],
)
def test_a_p256_layout_is_recognised_with_up_to_two_bytes_changed(count: int, damage: str) -> None:
    assert P256_LAYOUT_DAMAGE == 2
    [found] = detect(PAD + _layout_damaged(count) + PAD)
    assert (found.encoding, found.start) == (damage, len(PAD) + (0 if count == 2 else 2))


@pytest.mark.parametrize(
    ("prefix", "length"),
    [
        (b"\x30\x77\x02\x01\x01\x04", 121),  # what SEC1 P-256 starts with, then random bytes
        (b"\x30\x81\x87\x02\x01\x00\x30", 138),  # PKCS#8's
    ],
    ids=["SEC1", "PKCS#8"],
)
def test_random_bytes_after_a_key_s_first_bytes_are_not_a_key(prefix: bytes, length: int) -> None:
    r = random.Random(length)
    for _ in range(200):
        blob = prefix + r.randbytes(length - len(prefix))
        assert detect(PAD + blob + PAD) == []


def test_scan_names_a_damaged_known_key_by_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    key_file = tmp_path / "device-7.key"
    key_file.write_bytes(f.key_pem(key))
    der = bytearray(der_of(key, SEC1))
    der[-3] ^= 0x55  # in the public point: the scalar is whole
    image = tmp_path / "app.bin"
    image.write_bytes(PAD + bytes(der) + PAD)
    code = main(
        ["scan", str(image), "--key", str(key_file), "--format", "json", "--quiet", "--jobs", "1"]
    )
    report = capsys.readouterr().out
    findings = json.loads(report)["findings"]
    assert code == 1
    assert [
        (x["fileOffset"], x["length"], x["encoding"], x["key"], x["known"]) for x in findings
    ] == [
        (
            len(PAD),
            len(der),
            f"SEC1 DER, {DAMAGED_EC} (EC secp256r1)",
            spki_fingerprint(key),
            str(key_file),
        )
    ]
    f.assert_no_key_material(report, key)
