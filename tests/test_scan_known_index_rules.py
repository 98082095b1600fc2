"""Rules of the known-key index (scan/known.py) for its window lookups: which known key a
window of the image names, and how far around a window that names no key the image is probed.
Keys are generated here with chosen scalars (cryptography's `derive_private_key`); expected
offsets are where the test placed the bytes, expected names what the DER form is called.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provguard.scan.known import STRIDE, KnownIndex, KnownMaterial, key_material, p256_material
from tests import factories as f

#: P-256's group order: a private scalar is below it.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def rng() -> random.Random:
    return random.Random(20261203)


def p256_key(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    value = int.from_bytes(scalar, "big")
    assert 0 < value < P256_ORDER
    return ec.derive_private_key(value, ec.SECP256R1())


def p256_bulk(key: ec.EllipticCurvePrivateKey, source: str) -> KnownMaterial:
    material = p256_material(f.key_der(key), source)
    assert material is not None
    return material


def sampled(offset: int) -> int:
    """Random bytes to put in front of something so that its byte `offset` lands on a multiple
    of 24 in the image: a word the search reads whatever else it does."""
    return (24 - offset % 24) % 24 + 96


@pytest.mark.parametrize("lookup", ["set", "stream"])
@pytest.mark.parametrize("load", [p256_bulk, key_material], ids=["in bulk", "one by one"])
def test_a_fragment_reached_only_by_probing_is_found_whatever_its_bytes(load, lookup: str) -> None:  # type: ignore[no-untyped-def]
    """34 bytes of a P-256 key's PKCS#8 DER: the 16 bytes of DER header in front of its scalar
    and the first 20 bytes of the scalar. The image is read where the header is (a window every
    key has, which names none), so the windows around it are probed, and every one of them that
    names the key ends in a scalar byte of 0x80 or more (the top bit of an 8-byte word): they
    name it all the same."""
    r = rng()
    key = p256_key(bytes([0x80 | r.randrange(0x40)]) + bytes(0x80 | b for b in r.randbytes(31)))
    der = f.key_der(key)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    at = der.find(scalar)
    first, last = at - 14, at + 20  # 34 bytes, 20 of them secret
    lead = sampled(at - 8 - first)  # the window 8 bytes before the scalar (header only) is read
    image = (
        r.randbytes(lead - 1)
        + bytes([der[first - 1] ^ 0xFF])
        + der[first:last]
        + bytes([der[last] ^ 0xFF])
        + r.randbytes(99)
    )
    index = KnownIndex([load(key, "device.key")], lookup=lookup)
    found = [(m.start, m.end, m.encoding, m.material.source) for m in index.search(image)]
    assert found == [(lead, lead + 34, "fragment of PKCS#8 DER", "device.key")]


@pytest.mark.parametrize("lookup", ["set", "stream"])
def test_a_window_across_two_bulk_keys_names_neither_of_them(lookup: str) -> None:
    """Bulk-loaded keys are laid out one after the other; a window of the image that equals the
    last 6 bytes of one key's PKCS#8 DER region and the first 2 of the next one's (only possible
    here because another known key's little-endian scalar is chosen to begin with those 8 bytes)
    is that other key's, not a place of the bulk keys: finding the little-endian scalar
    compares it with its own key once, with no bulk key."""
    r = rng()
    bulk = [f.ec_key(), f.ec_key()]
    first, second = f.key_der(bulk[0]), f.key_der(bulk[1])
    scalar = bulk[0].private_numbers().private_value.to_bytes(32, "big")
    end = first.find(scalar) + 32 + 16  # the indexed region: 16 bytes past the scalar
    start = first.find(scalar) - 16  # and 16 bytes before it (the same in every key)
    straddle = first[end - 6 : end] + second[start : start + 2]
    little = straddle + r.randbytes(23) + bytes([0x01])  # the scalar, least significant first
    other = p256_key(little[::-1])
    lead = sampled(0)
    image = r.randbytes(lead) + little + r.randbytes(100)
    index = KnownIndex(
        [p256_bulk(bulk[0], "bulk0"), p256_bulk(bulk[1], "bulk1"), key_material(other, "other")],
        lookup=lookup,
    )
    found = [(m.start, m.end, m.encoding, m.material.source) for m in index.search(image)]
    assert found == [(lead, lead + 32, "raw EC private scalar (little-endian)", "other")]
    assert index.confirmations == 1


@pytest.mark.parametrize("lookup", ["set", "stream"])
def test_an_unknown_p256_key_in_the_image_is_compared_with_no_known_key(lookup: str) -> None:
    """The SEC1 DER of a P-256 key that is not known, read where its header lies (bytes every
    P-256 key has): nothing is found, and no known key (one given alone, two in bulk) is
    compared with it, whatever bytes of the header the windows around hold."""
    r = rng()
    unknown = f.ec_key()
    der = f.key_der(unknown, pkcs8=False)
    scalar = unknown.private_numbers().private_value.to_bytes(32, "big")
    header = der.find(scalar) + 32 + 1  # a byte into the DER between scalar and public key
    lead = sampled(header)
    image = r.randbytes(lead) + der + r.randbytes(100)
    known = [key_material(f.ec_key(), "alone")]
    known += [p256_bulk(f.ec_key(), f"bulk{i}") for i in range(2)]
    index = KnownIndex(known, lookup=lookup)
    assert index.search(image) == []
    assert index.confirmations == 0


@pytest.mark.parametrize("lookup", ["set", "stream"])
def test_the_first_window_of_the_first_key_names_every_key_that_has_it(lookup: str) -> None:
    """An RSA key given first: the first 8 bytes of its indexed PKCS#8 region (16 bytes before
    its private exponent, its modulus's last bytes) are where its windows begin. An Ed25519 key
    given after it whose private key begins with the same 8 bytes: 32 bytes of its PKCS#8 DER,
    read only where those 8 bytes lie, are a fragment of it."""
    r = rng()
    first = f.rsa_key(1024)
    der = f.key_der(first)
    d = first.private_numbers().d
    region = der.find(d.to_bytes((d.bit_length() + 7) // 8, "big")) - 16
    region -= region % 2  # the windows indexed are those at even offsets
    seed = der[region : region + 8] + r.randbytes(24)
    other = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    pkcs8 = f.key_der(other)
    at = pkcs8.find(seed)
    begin, end = at - 2, at + 30  # 32 bytes, 30 of them secret; the window at `at` is read
    lead = sampled(at - begin)
    image = (
        r.randbytes(lead - 1)
        + bytes([pkcs8[begin - 1] ^ 0xFF])
        + pkcs8[begin:end]
        + bytes([pkcs8[end] ^ 0xFF])
        + r.randbytes(99)
    )
    index = KnownIndex(
        [key_material(first, "first.key"), key_material(other, "other.key")], lookup=lookup
    )
    found = [(m.start, m.end, m.encoding, m.material.source) for m in index.search(image)]
    assert found == [(lead, lead + 32, "fragment of PKCS#8 DER", "other.key")]


@pytest.mark.parametrize("curve", [ec.SECP224R1(), ec.SECP192R1()], ids=["P-224", "P-192"])
def test_a_little_endian_scalar_shorter_than_a_fragment_is_found_by_its_last_word(
    curve: ec.EllipticCurve,
) -> None:
    """The little-endian scalar of a P-224 (28 bytes) or P-192 (24 bytes) key, placed so that
    the only 8-byte word of it the search reads at an even offset is its last one: it is found
    whole, under its own name."""
    r = rng()
    key = f.ec_key(curve)
    size = (curve.key_size + 7) // 8
    little = key.private_numbers().private_value.to_bytes(size, "little")
    lead = sampled(size - 8)  # its last 8 bytes start on a multiple of 24
    image = r.randbytes(lead) + little + r.randbytes(100)
    found = KnownIndex([key_material(key, "device.key")]).search(image)
    assert [(m.start, m.end, m.encoding) for m in found] == [
        (lead, lead + size, "raw EC private scalar (little-endian)")
    ]


@pytest.mark.parametrize("curve", [ec.SECP224R1(), ec.SECP192R1()], ids=["P-224", "P-192"])
def test_a_little_endian_scalar_that_begins_the_image_is_found(curve: ec.EllipticCurve) -> None:
    """The first word of the image is the only one read in a 28- or 24-byte little-endian
    scalar that begins it (the next is read 24 bytes on): it is found there."""
    key = f.ec_key(curve)
    size = (curve.key_size + 7) // 8
    little = key.private_numbers().private_value.to_bytes(size, "little")
    image = little + rng().randbytes(100)
    found = KnownIndex([key_material(key, "device.key")]).search(image)
    assert [(m.start, m.end, m.encoding) for m in found] == [
        (0, size, "raw EC private scalar (little-endian)")
    ]


def ed25519_pkcs8(seed: bytes) -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return key, f.key_der(key)


def test_probing_keeps_every_word_that_names_a_key_not_only_the_last_ones() -> None:
    """32 bytes of an Ed25519 key's PKCS#8 DER (its 16-byte header without the first 6 bytes,
    then 22 bytes of its private key), read only within the header: the words around are
    probed, 8 byte offsets in turn. Another known key's first 8 private bytes lie 17 bytes in
    front (probed last, naming a run of 8 bytes): the fragment is found all the same."""
    r = rng()
    key, der = ed25519_pkcs8(r.randbytes(32))
    decoy, decoy_der = ed25519_pkcs8(r.randbytes(32))
    at = der.find(key.private_bytes_raw())  # 16
    begin, end = at - 10, at + 22
    lead = sampled(at - 8 - begin)  # the header word 8 bytes before the private key is read
    image = bytearray(r.randbytes(lead - 1))
    image += bytes([der[begin - 1] ^ 0xFF]) + der[begin:end] + bytes([der[end] ^ 0xFF])
    image += r.randbytes(99)
    decoy_at = lead + (at - 8 - begin) - 17  # 17 bytes before the word read, 7 mod 8 after
    image[decoy_at : decoy_at + 8] = decoy_der[at : at + 8]  # the probe's first offset
    index = KnownIndex([key_material(key, "device.key"), key_material(decoy, "decoy.key")])
    found = [(m.start, m.end, m.encoding, m.material.source) for m in index.search(bytes(image))]
    assert found == [(lead, lead + 32, "fragment of PKCS#8 DER", "device.key")]


def test_two_fragments_of_one_key_side_by_side_are_both_found() -> None:
    """The first 32 bytes of an Ed25519 key's PKCS#8 DER, and right after them its private key
    (the last 32): two runs, the second starting where the first ends, each reported."""
    r = rng()
    seed = r.randbytes(32)
    while seed[0] == seed[16] or seed[15] == 0x20:  # the runs must end where the copies meet
        seed = r.randbytes(32)
    key, der = ed25519_pkcs8(seed)
    at = der.find(seed)
    lead = sampled(at + 18)  # words read: the first copy's at byte 10, the second's at its byte 18
    image = r.randbytes(lead) + der[:32] + der[at:] + r.randbytes(100)
    found = KnownIndex([key_material(key, "device.key")]).search(image)
    assert sorted((m.start, m.end, m.encoding) for m in found) == [
        (lead, lead + 32, "fragment of PKCS#8 DER"),
        (lead + 32, lead + 64, "raw Ed25519 private key"),
    ]


def common_run(a: bytes, b: bytes, at: int) -> tuple[int, int]:
    """`[start, end)` of the run around `at` where `a` and `b` agree byte for byte."""
    start, end = at, at
    while start > 0 and a[start - 1] == b[start - 1]:
        start -= 1
    while end < min(len(a), len(b)) and a[end] == b[end]:
        end += 1
    return start, end


def test_a_window_of_two_keys_names_the_second_after_the_first_was_compared() -> None:
    """Two P-256 keys whose scalars differ only in their first 6 bytes: the first key's PKCS#8
    DER in an image holds 32 bytes of the second's (the rest of its scalar and the DER bytes up
    to its public key). The first word read names the first key alone; the next names both,
    the first already compared there: the second is still compared, and reported."""
    r = rng()
    first = p256_key(bytes([r.randrange(0x80)]) + r.randbytes(31))
    scalar = first.private_numbers().private_value.to_bytes(32, "big")
    second = p256_key(bytes([scalar[0] ^ 0x40]) + r.randbytes(5) + scalar[6:])
    der, der2 = f.key_der(first), f.key_der(second)
    at = der.find(scalar)
    start, end = common_run(der, der2, at + 16)
    assert end - start >= 32
    lead = sampled(at + 4)  # the words read: the first key's at scalar byte 4, then 28
    image = r.randbytes(lead) + der + r.randbytes(100)
    index = KnownIndex([key_material(first, "first.key"), key_material(second, "second.key")])
    found = [
        (m.start, m.end, m.encoding)
        for m in index.search(image)
        if m.material.source == "second.key"
    ]
    assert found == [(lead + start, lead + end, "fragment of PKCS#8 DER")]


def test_a_fragment_of_a_bulk_key_s_sec1_der_alone_is_found() -> None:
    """35 bytes of a bulk-loaded P-256 key's SEC1 DER: the last 19 bytes of its scalar and the
    DER after it up to the public key, which its PKCS#8 DER does not have (the bytes after the
    scalar differ), read where a word of it holds 7 bytes of the scalar and the byte after."""
    r = rng()
    key = f.ec_key()
    der = f.key_der(key, pkcs8=False)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    at = der.find(scalar)
    begin, end = at + 13, at + 48  # 19 bytes of scalar, then 16 of the DER after it
    lead = sampled(at + 25 - begin)  # the word at scalar byte 25 is read
    image = (
        r.randbytes(lead - 1)
        + bytes([der[begin - 1] ^ 0xFF])
        + der[begin:end]
        + bytes([der[end] ^ 0xFF])
        + r.randbytes(99)
    )
    found = KnownIndex([p256_bulk(key, "device.key")]).search(image)
    assert [(m.start, m.end, m.encoding) for m in found] == [
        (lead, lead + 35, "fragment of SEC1 DER")
    ]


def test_a_key_sharing_two_scalar_bytes_with_a_known_one_is_compared_with_none() -> None:
    """A P-256 key whose scalar begins with the same 2 bytes as a known key's (one in 65,536
    keys does): its PKCS#8 DER, read where its header ends with those 2 bytes, names no key and
    costs no comparison."""
    r = rng()
    known = p256_key(bytes([r.randrange(0x80)]) + r.randbytes(31))
    scalar = known.private_numbers().private_value.to_bytes(32, "big")
    other = p256_key(scalar[:2] + bytes([scalar[2] ^ 0x01]) + r.randbytes(29))
    der = f.key_der(other)
    at = der.find(other.private_numbers().private_value.to_bytes(32, "big"))
    lead = sampled(at - 6)  # the word of 6 header bytes and those 2
    image = r.randbytes(lead) + der + r.randbytes(100)
    index = KnownIndex([key_material(known, "device.key")])
    assert index.search(image) == []
    assert index.confirmations == 0


def test_a_key_cut_short_is_compared_once_per_der_form_not_again_past_the_cut() -> None:
    """A known P-256 key's PKCS#8 DER cut after 84 bytes (a few bytes into its public key) and
    followed by the first bytes of a SEC1 DER, read where the word spans the cut: the 84 bytes
    are a fragment of the PKCS#8 DER, the scalar with the bytes around it one of the SEC1 DER,
    and each form is compared once."""
    r = rng()
    key = f.ec_key()
    der, sec1 = f.key_der(key), f.key_der(key, pkcs8=False)
    while der[84] == sec1[0]:  # the run must end at the cut
        key = f.ec_key()
        der, sec1 = f.key_der(key), f.key_der(key, pkcs8=False)
    lead = sampled(78)
    image = r.randbytes(lead) + der[:84] + sec1[:2] + r.randbytes(100)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    shift = der.find(scalar) - sec1.find(scalar)  # SEC1 offset + shift = PKCS#8 offset
    start, end = common_run(der[shift:], sec1, sec1.find(scalar))
    index = KnownIndex([key_material(key, "device.key")])
    found = {(m.start, m.end, m.encoding) for m in index.search(image)}
    assert found == {
        (lead, lead + 84, "fragment of PKCS#8 DER"),
        (lead + shift + start, lead + shift + end, "fragment of SEC1 DER"),
    }
    assert index.confirmations == 2


@pytest.mark.parametrize("order", ["big", "little"])
@pytest.mark.parametrize("curve", [ec.SECP224R1(), ec.SECP192R1()], ids=["P-224", "P-192"])
def test_a_scalar_shorter_than_a_fragment_is_found_at_every_alignment(
    curve: ec.EllipticCurve, order: str
) -> None:
    """A P-224 (28 bytes) or P-192 (24 bytes) private scalar, alone in raw bytes in either byte
    order, wherever it starts: the sampled words meet a run of 32 bytes or more for sure, not
    one this short, so such components are also looked for whole."""
    key = f.ec_key(curve)
    size = (curve.key_size + 7) // 8
    value = key.private_numbers().private_value.to_bytes(size, order)  # type: ignore[arg-type]
    name = "raw EC private scalar" + (" (little-endian)" if order == "little" else "")
    index = KnownIndex([key_material(key, "device.key")])
    r = rng()
    for lead in range(100, 100 + 2 * STRIDE):
        image = r.randbytes(lead) + value + r.randbytes(100)
        found = [(m.start, m.end, m.encoding, m.material.source) for m in index.search(image)]
        assert found == [(lead, lead + size, name, "device.key")], lead
