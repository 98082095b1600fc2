"""An RSA private key whose DER framing is damaged or cut short is still a key in the image (AWS IoT
and many cloud consoles hand out RSA-2048 device keys): the release gate names it by its
fingerprint.

Under PKCS#8's and PKCS#1's outer SEQUENCE sits RSAPrivateKey's core: INTEGER version 0, then the
modulus, the public exponent, the private exponent and the two primes, one INTEGER after the
other (RFC 8017). When those are whole the primes' product is the modulus, which is proof of a
key whatever happened to the bytes around them. The expected fingerprints are computed here with
cryptography from the original key; the byte positions from the DER cryptography writes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from asn1crypto.core import Integer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provguard.cli import main
from provguard.scan.detectors import DAMAGED_FRAMING, detect
from provguard.scan.engine import Hit, scan_segment
from provguard.scan.known import KnownIndex
from provguard.scan.model import Kind
from tests.factories import spki_fingerprint

FORMS = {
    "PKCS#8": serialization.PrivateFormat.PKCS8,
    "PKCS#1": serialization.PrivateFormat.TraditionalOpenSSL,
}
PAD = b"\xff" * 100


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def der_of(key: rsa.RSAPrivateKey, form: str) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, FORMS[form], serialization.NoEncryption())


def integer_end(der: bytes, value: int) -> int:
    """Where the INTEGER holding `value` ends in `der` (its big-endian bytes are its last)."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return der.index(raw) + len(raw)


def core_of(der: bytes, key: rsa.RSAPrivateKey) -> int:
    """Where RSAPrivateKey starts being read: its version 0, just before the modulus."""
    numbers = key.private_numbers().public_numbers
    modulus = numbers.n.to_bytes(256, "big")
    at = der.index(modulus) - 5  # 02 82 01 01 00: the INTEGER header and its sign byte
    assert der[at - 3 : at + 5] == b"\x02\x01\x00\x02\x82\x01\x01\x00"
    return at - 3


def salvaged(start: int, end: int, form: str, key: rsa.RSAPrivateKey) -> Hit:
    encoding = f"{form} DER, {DAMAGED_FRAMING}"
    fingerprint = spki_fingerprint(key)
    return Hit(start, end, Kind.PRIVATE_KEY, encoding, fingerprint, algorithm="RSA-2048")


def found_in(data: bytes) -> list[Hit]:
    """What a scan reports of `data`: one hit per object (a whole PKCS#8 RSA key also holds a
    whole PKCS#1 one, which the engine folds into it)."""
    return scan_segment(data, KnownIndex([]))


@pytest.mark.parametrize("form", FORMS)
def test_a_key_with_any_one_framing_or_crt_byte_changed_is_reported_once(
    key: rsa.RSAPrivateKey, form: str
) -> None:
    """Every byte before the core (the outer SEQUENCE, PKCS#8's AlgorithmIdentifier) and every
    byte after the second prime (the CRT values) changed in turn."""
    der = der_of(key, form)
    core = core_of(der, key)
    after_q = integer_end(der, key.private_numbers().q)
    for at in [*range(core), *range(after_q, len(der))]:
        damaged = bytearray(der)
        damaged[at] ^= 0x55
        found = found_in(PAD + bytes(damaged) + PAD)
        assert len(found) == 1, at
        [detection] = found
        assert detection.key == spki_fingerprint(key), at
        assert detection.algorithm == "RSA-2048", at
        assert detection.start <= len(PAD) + core, at
        assert len(PAD) + after_q <= detection.end, at


@pytest.mark.parametrize("form", FORMS)
def test_a_key_without_its_first_bytes_is_reported_from_its_core(
    key: rsa.RSAPrivateKey, form: str
) -> None:
    """PKCS#8 wraps a whole PKCS#1 key, found as it is: here both SEQUENCE headers are lost."""
    der = bytearray(der_of(key, form))
    core = core_of(bytes(der), key)
    der[0] = 0x31  # a SET, not a SEQUENCE: no DER key starts here
    der[core - 4] = 0x31  # PKCS#8: the RSAPrivateKey's own SEQUENCE (PKCS#1: the same byte)
    found = found_in(PAD + bytes(der) + PAD)
    assert found == [salvaged(len(PAD) + core, len(PAD) + len(der), form, key)]
    # an INTEGER right after the key (the next object in flash) is not read as part of it
    found = found_in(PAD + bytes(der) + b"\x02\x01\x05" + PAD)
    assert found == [salvaged(len(PAD) + core, len(PAD) + len(der), form, key)]


def test_a_pkcs8_key_whose_bytes_before_its_oid_are_lost_is_named_pkcs8(
    key: rsa.RSAPrivateKey,
) -> None:
    """A buffer that starts at rsaEncryption's OID, the RSAPrivateKey's header damaged too."""
    der = bytearray(der_of(key, "PKCS#8"))
    core = core_of(bytes(der), key)
    der[core - 4] = 0x31
    oid = der.index(b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01")  # RFC 8017's
    data = bytes(der[oid:])
    assert found_in(data) == [salvaged(core - oid, len(der) - oid, "PKCS#8", key)]


def integers(*values: int) -> bytes:
    return b"".join(Integer(v).dump() for v in values)


@pytest.mark.parametrize(
    ("primes", "claimed"),
    [("real", True), ("one and the modulus", False), ("the modulus and one", False)],
)
def test_only_two_primes_that_multiply_to_the_modulus_make_a_key(
    key: rsa.RSAPrivateKey, primes: str, claimed: bool
) -> None:
    """Version 0 and five INTEGERs written here (no SEQUENCE around them): 1 x n is n too, but
    gives nothing away."""
    numbers = key.private_numbers()
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    p, q = {
        "real": (numbers.p, numbers.q),
        "one and the modulus": (1, n),
        "the modulus and one": (n, 1),
    }[primes]
    body = b"\x02\x01\x00" + integers(n, e, numbers.d, p, q)
    found = found_in(PAD + body + PAD)
    assert [h.key for h in found] == ([spki_fingerprint(key)] if claimed else [])


@pytest.mark.parametrize("form", FORMS)
def test_a_key_cut_short_after_its_primes_is_reported_up_to_them(
    key: rsa.RSAPrivateKey, form: str
) -> None:
    der = der_of(key, form)
    core = core_of(der, key)
    after_q = integer_end(der, key.private_numbers().q)
    found = found_in(PAD + der[: after_q + 3])  # the next INTEGER's header, and no more
    assert found == [salvaged(len(PAD) + core, len(PAD) + after_q, form, key)]
    # the next object in flash, a SEQUENCE holding an INTEGER, is not read as part of the key
    found = found_in(PAD + der[:after_q] + b"\x30\x03\x02\x01\x05" + PAD)
    assert found == [salvaged(len(PAD) + core, len(PAD) + after_q, form, key)]


def test_a_key_cut_before_its_second_prime_is_not_claimed(key: rsa.RSAPrivateKey) -> None:
    """Four INTEGERs are no proof (the primes' product cannot be checked), and reading them
    breaks nothing."""
    der = der_of(key, "PKCS#1")
    after_p = integer_end(der, key.private_numbers().p)
    assert detect(PAD + der[:after_p] + PAD) == []
    assert detect(der[:after_p]) == []


def test_a_key_whose_prime_is_damaged_is_not_claimed_from_its_core(key: rsa.RSAPrivateKey) -> None:
    """The primes' product must be the modulus: one byte changed in a prime, and the core alone
    proves nothing (here the outer header is lost too, so nothing else reads the key)."""
    der = bytearray(der_of(key, "PKCS#1"))
    der[0] = 0x31
    der[integer_end(bytes(der), key.private_numbers().p) - 10] ^= 0x55
    assert detect(PAD + bytes(der) + PAD) == []


def test_random_bytes_after_a_core_are_not_a_key() -> None:
    r = random.Random(11)
    data = bytearray(r.randbytes(1 << 20))
    for at in range(0, len(data) - 600, 1000):
        data[at : at + 8] = b"\x02\x01\x00\x02\x82\x01\x01\x00"
    assert detect(bytes(data)) == []


def test_the_core_of_a_whole_key_adds_nothing_to_it(key: rsa.RSAPrivateKey) -> None:
    der = der_of(key, "PKCS#8")
    found = found_in(PAD + der + PAD)
    assert [(h.start, h.end, h.encoding) for h in found] == [
        (len(PAD), len(PAD) + len(der), "PKCS#8 DER")
    ]


def test_scan_fails_a_release_image_holding_an_rsa_key_without_its_header(
    tmp_path: Path, key: rsa.RSAPrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    der = der_of(key, "PKCS#1")
    core = core_of(der, key)
    assert core == 4
    image = tmp_path / "app.bin"
    image.write_bytes(PAD + der[4:] + PAD)  # the SEQUENCE's header lost
    code = main(["scan", str(image), "--format", "json", "--quiet", "--jobs", "1"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["verdict"] == "FAIL"
    [finding] = report["findings"]
    assert finding["key"] == spki_fingerprint(key)
    assert finding["fileOffset"] == len(PAD)
    assert finding["encoding"] == f"PKCS#1 DER, {DAMAGED_FRAMING} (RSA-2048)"
