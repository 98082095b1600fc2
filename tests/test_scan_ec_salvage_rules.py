"""An EC private key whose DER framing is damaged or cut short is still a key in the image: the
release gate names it by its fingerprint, whatever the curve (the modem takes P-256 and P-384
keys; the detector knows every curve cryptography derives keys on).

The framing is what `DerPrivateKeyDetector.confirm` needs whole: the outer SEQUENCE's tag and
length, PKCS#8's AlgorithmIdentifier, the curve's OID, the public key. Under all of it sits SEC1's
ECPrivateKey core, INTEGER version 1 and the private scalar as an OCTET STRING (RFC 5915), which
both forms hold; with the curve named beside it (its OID) or the public key after it, that is a
key. The expected fingerprints are computed here with cryptography from the original key; the
byte positions from the DER cryptography writes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard.cli import main
from provguard.scan.detectors import (
    BLOCK,
    DAMAGED_FRAMING,
    DerPrivateKeyDetector,
    Detection,
    detect,
)
from provguard.scan.model import Kind
from tests.factories import spki_fingerprint

PKCS8 = serialization.PrivateFormat.PKCS8
SEC1 = serialization.PrivateFormat.TraditionalOpenSSL
FORMS = {"PKCS#8": PKCS8, "SEC1": SEC1}
PAD = b"\xff" * 100
CURVES = [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1(), ec.SECP256K1(), ec.BrainpoolP384R1()]


def der_of(key: ec.EllipticCurvePrivateKey, form: str) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, FORMS[form], serialization.NoEncryption())


def size_of(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def core_of(der: bytes, key: ec.EllipticCurvePrivateKey) -> tuple[int, int]:
    """[start, end) of the ECPrivateKey core in `der`: version 1, then the scalar's OCTET STRING."""
    size = size_of(key.curve)
    scalar = der.index(key.private_numbers().private_value.to_bytes(size, "big"))
    assert der[scalar - 5 : scalar] == b"\x02\x01\x01\x04" + bytes([size])
    return scalar - 5, scalar + size


def salvaged(start: int, end: int, form: str, key: ec.EllipticCurvePrivateKey) -> Detection:
    encoding = f"{form} DER, {DAMAGED_FRAMING}"
    algorithm = f"EC {key.curve.name}"
    return Detection(start, end, Kind.PRIVATE_KEY, encoding, spki_fingerprint(key), algorithm)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_a_key_with_any_one_framing_byte_changed_is_reported_once_by_its_fingerprint(
    curve: ec.EllipticCurve, form: str
) -> None:
    key = ec.generate_private_key(curve)
    der = der_of(key, form)
    core, end = core_of(der, key)
    for at in [*range(core), *range(end, len(der))]:
        damaged = bytearray(der)
        damaged[at] ^= 0x55
        found = detect(PAD + bytes(damaged) + PAD)
        assert len(found) == 1, at
        [detection] = found
        assert detection.key == spki_fingerprint(key), at
        assert detection.algorithm == f"EC {curve.name}", at
        # whatever reported it, the span holds the scalar
        assert detection.start <= len(PAD) + core, at
        assert len(PAD) + end <= detection.end, at


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_a_key_without_its_first_bytes_is_reported_from_its_core(
    curve: ec.EllipticCurve, form: str
) -> None:
    """What a buffer that starts late, or an outer header overwritten, leaves: the key is named
    at its core, and by the form its curve's OID says (before the core: PKCS#8; after: SEC1)."""
    key = ec.generate_private_key(curve)
    der = bytearray(der_of(key, form))
    core, end = core_of(bytes(der), key)
    der[0] = 0x31  # a SET, not a SEQUENCE: no DER key starts here
    found = detect(PAD + bytes(der) + PAD)
    assert found == [salvaged(len(PAD) + core, len(PAD) + end, form, key)]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=lambda c: c.name)
def test_a_key_cut_short_at_the_end_of_the_data_is_reported(
    curve: ec.EllipticCurve, form: str
) -> None:
    """A key copied into the last bytes of a buffer too small for it: what is left ends inside
    its public key."""
    key = ec.generate_private_key(curve)
    der = der_of(key, form)
    core, end = core_of(der, key)
    cut = end + (14 if form == "SEC1" else 4)  # SEC1: past its OID; PKCS#8: into the public key
    found = detect(PAD + der[:cut])
    assert found == [salvaged(len(PAD) + core, len(PAD) + end, form, key)]


def test_the_public_key_names_the_curve_when_no_oid_is_left() -> None:
    """secp256k1 and P-256 scalars are both 32 bytes: with the OID damaged, the point after the
    scalar says which curve the key is on (P-256 would name another key)."""
    key = ec.generate_private_key(ec.SECP256K1())
    der = bytearray(der_of(key, "SEC1"))
    core, end = core_of(bytes(der), key)
    der[1] ^= 0x55  # the outer length
    der[end + 6] ^= 0x55  # in the OID (a0 07 06 05 [2b 81 04 00 0a])
    found = detect(PAD + bytes(der) + PAD)
    assert found == [salvaged(len(PAD) + core, len(PAD) + end, "EC", key)]


def test_with_neither_oid_nor_public_key_left_the_scalar_is_not_claimed() -> None:
    """Version 1 and a 32-byte OCTET STRING alone are 5 bytes that other DER (and random bytes)
    hold: without the curve beside them they are not reported."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = der_of(key, "SEC1")
    core, end = core_of(der, key)
    assert detect(PAD + der[core:end] + PAD) == []


def test_random_bytes_after_a_core_are_not_a_key() -> None:
    r = random.Random(7)
    data = bytearray(r.randbytes(1 << 20))
    for at in range(0, len(data) - 100, 1000):
        data[at : at + 5] = b"\x02\x01\x01\x04" + bytes([r.choice([24, 28, 32, 48, 64, 66])])
    assert detect(bytes(data)) == []


def test_a_scalar_cut_by_the_end_of_the_data_is_not_read_past_it() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    der = der_of(key, "PKCS#8")
    _, end = core_of(der, key)
    assert detect(b"\x31" + der[1 : end - 1]) == []


def test_a_core_across_the_edge_of_a_search_block_is_found() -> None:
    """`candidates` reads the bytes in blocks; a core that starts in a block's last bytes is
    found, once."""
    key = ec.generate_private_key(ec.SECP384R1())
    der = bytearray(der_of(key, "PKCS#8"))
    core, end = core_of(bytes(der), key)
    der[0] = 0x31
    for core_at in (BLOCK - 2, BLOCK - 1, BLOCK):
        start = core_at - core
        data = b"\xff" * start + bytes(der) + PAD
        assert detect(data) == [salvaged(core_at, core_at + end - core, "PKCS#8", key)], core_at


def test_the_detectors_find_reports_what_detect_does() -> None:
    """`find` (the detector alone) and `detect` (all of them in one pass) agree."""
    whole = ec.generate_private_key(ec.SECP256R1())
    broken = ec.generate_private_key(ec.SECP384R1())
    damaged = bytearray(der_of(broken, "SEC1"))
    damaged[0] = 0x31
    data = PAD + der_of(whole, "PKCS#8") + PAD + bytes(damaged) + PAD
    found = list(DerPrivateKeyDetector().find(data))
    assert found == detect(data, (DerPrivateKeyDetector(),))
    assert [d.key for d in found] == [spki_fingerprint(whole), spki_fingerprint(broken)]


def test_scan_fails_a_release_image_holding_a_damaged_p384_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    der = bytearray(der_of(key, "SEC1"))
    core, _ = core_of(bytes(der), key)
    der[1] ^= 0x01  # the outer length one off: cryptography and asn1crypto refuse it
    image = tmp_path / "app.bin"
    image.write_bytes(PAD + bytes(der) + PAD)
    code = main(["scan", str(image), "--format", "json", "--quiet", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 1
    report = json.loads(out)
    assert report["verdict"] == "FAIL"
    [finding] = report["findings"]
    assert finding["key"] == spki_fingerprint(key)
    assert finding["fileOffset"] == len(PAD) + core
    assert finding["encoding"] == f"SEC1 DER, {DAMAGED_FRAMING} (EC secp384r1)"


def test_a_damaged_key_right_after_a_whole_one_is_reported_too() -> None:
    """Keys back to back in a table: the core of the second starts where the first ends."""
    whole = ec.generate_private_key(ec.SECP256R1())
    broken = ec.generate_private_key(ec.SECP384R1())
    first = der_of(whole, "PKCS#8")
    der = der_of(broken, "SEC1")
    core, end = core_of(der, broken)
    data = PAD + first + der[core:] + PAD  # the second key's SEQUENCE header is lost
    at = len(PAD) + len(first)
    found = detect(data)
    assert [d.key for d in found] == [spki_fingerprint(whole), spki_fingerprint(broken)]
    assert found[1] == salvaged(at, at + end - core, "SEC1", broken)


def test_a_key_cut_right_after_its_scalar_at_the_end_of_the_data_is_reported() -> None:
    """PKCS#8 names the curve before the core: the scalar's last byte may be the data's last."""
    key = ec.generate_private_key(ec.SECP384R1())
    der = der_of(key, "PKCS#8")
    core, end = core_of(der, key)
    assert detect(PAD + der[:end]) == [salvaged(len(PAD) + core, len(PAD) + end, "PKCS#8", key)]


def test_a_key_whose_bytes_before_its_curves_oid_are_lost_is_reported() -> None:
    """A buffer that starts at the PKCS#8 key's curve OID: the OID is the data's first bytes."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = der_of(key, "PKCS#8")
    core, end = core_of(der, key)
    oid = der.index(b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07")  # prime256v1, from RFC 5480
    data = der[oid:]
    assert detect(data) == [salvaged(core - oid, end - oid, "PKCS#8", key)]


def test_a_public_key_further_on_does_not_name_a_lone_scalar() -> None:
    """Only a public key that follows the scalar (after SEC1's parameters at most) names its
    curve: another key's, a little further on, does not make the scalar a key."""
    lone = ec.generate_private_key(ec.SECP256R1())
    der = der_of(lone, "SEC1")
    core, end = core_of(der, lone)
    other = ec.generate_private_key(ec.SECP256R1())
    found = detect(PAD + der[core:end] + b"\xff" * 40 + der_of(other, "SEC1") + PAD)
    assert [d.key for d in found] == [spki_fingerprint(other)]
