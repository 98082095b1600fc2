"""Rules of the known-key index (scan/known.py) that the scale tests leave open: certificates
given alone, and the exact extent and name of what the index reports. Expected bytes, offsets
and names are derived here (cryptography's serialization, base64/binascii), never from the
index's own tables.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from provguard.scan.known import (
    TEXT_BLOCK,
    TEXT_CHUNK,
    KnownIndex,
    KnownMaterial,
    certificate_der_material,
    certificate_material,
    key_material,
    p256_material,
)
from tests import factories as f


def rng() -> random.Random:
    return random.Random(20261203)


def from_der(cert: x509.Certificate, source: str) -> KnownMaterial:
    return certificate_der_material(f.cert_der(cert), source)


@pytest.mark.parametrize("load", [certificate_material, from_der], ids=["--cert", "--key-dir"])
def test_a_known_certificate_alone_is_found_across_the_decoding_chunks(load) -> None:  # type: ignore[no-untyped-def]
    """With only a certificate known, its headerless base64 right where a long text is cut into
    decoding chunks is found whole, once: the chunks overlap by the longest thing the index
    knows, which is the certificate."""
    cert = f.make_cert("device-0042", f.ec_key())
    der = f.cert_der(cert)
    raw = bytearray(rng().randbytes(768 * 1024))
    # encodebytes writes 76 characters and a newline per 57 bytes: the base64 starts 400
    # characters before the cut, more than any fixed margin (the cut is inside it)
    at = (TEXT_CHUNK - 400) // 77 * 57
    raw[at : at + len(der)] = der
    prefix = b"asset = \\\n"
    text = prefix + base64.encodebytes(bytes(raw))
    index = KnownIndex([load(cert, "device.crt")])
    found = index.search(text)
    assert [(m.material.fingerprint, m.encoding) for m in found] == [
        ("SHA256:" + hashlib.sha256(der).hexdigest(), "base64 DER")
    ]
    first_line, first_column = divmod(at * 4 // 3, 76)
    assert found[0].start == len(prefix) + first_line * 77 + first_column
    assert found[0].start < TEXT_CHUNK + len(prefix) < found[0].end


def test_a_known_certificate_in_ascii_hex_is_named_so() -> None:
    cert = f.make_cert("device-0042", f.ec_key())
    der = f.cert_der(cert)
    text = b'const char *cert = "' + binascii.hexlify(der).upper() + b'";'
    found = KnownIndex([certificate_material(cert, "device.crt")]).search(text)
    assert [(m.start, m.end, m.encoding) for m in found] == [
        (20, 20 + 2 * len(der), "ASCII hex of DER")
    ]


def key_pkcs8(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("before", "between", "name"),
    [
        (b"", b"\n", "PEM PKCS#8"),  # the BEGIN line is the first thing in the segment
        (b"x" * 100, b"\n", "PEM PKCS#8"),
        (b"x" * 100, b"\n" + b" " * 52, "PEM PKCS#8"),  # 80 characters from BEGIN to the body
        (b"x" * 100, b"\n" + b" " * 53, "base64 PKCS#8 DER"),  # 81: too far to be its body
    ],
    ids=["at 0", "after text", "80", "81"],
)
def test_a_whole_base64_key_is_pem_when_its_begin_line_is_within_80_characters(
    before: bytes, between: bytes, name: str
) -> None:
    key = f.ec_key()
    begin = b"-----BEGIN PRIVATE KEY-----"  # 27 characters
    body = base64.b64encode(key_pkcs8(key))
    text = before + begin + between + body
    found = KnownIndex([key_material(key, "device.key")]).search(text)
    whole = [m for m in found if m.end - m.start == len(body)]
    assert [(m.start, m.encoding) for m in whole] == [(len(text) - len(body), name)]


@pytest.mark.parametrize("form", ["base64", "hex"])
def test_a_whole_encoding_in_text_is_one_match_and_nothing_else(form: str) -> None:
    """The text is decoded at each of its alignments; the one that gives the key's bytes
    reports the whole encoding, the others (shifted bytes) report nothing. (An Ed25519 key: its
    only DER form is PKCS#8, so no other form of it shares a fragment with this one.)"""
    key = ed25519.Ed25519PrivateKey.generate()
    der = key_pkcs8(key)
    body = base64.b64encode(der) if form == "base64" else binascii.hexlify(der)
    name = "base64 PKCS#8 DER" if form == "base64" else "ASCII hex of PKCS#8 DER"
    text = b'key = "' + body + b'";'
    found = KnownIndex([key_material(key, "device.key")]).search(text)
    assert [(m.start, m.end, m.encoding) for m in found] == [(7, 7 + len(body), name)]


def test_a_key_that_ends_the_image_ends_its_match() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    der = key_pkcs8(key)
    image = rng().randbytes(100) + der
    found = KnownIndex([key_material(key, "device.key")]).search(image)
    assert [(m.start, m.end, m.encoding) for m in found] == [(100, len(image), "PKCS#8 DER")]


def test_a_whole_key_in_an_image_is_compared_with_the_key_once() -> None:
    """Later sampled words inside a run already compared are not compared again (an Ed25519
    key: one DER form, so one place per window)."""
    key = ed25519.Ed25519PrivateKey.generate()
    image = rng().randbytes(100) + key_pkcs8(key) + rng().randbytes(100)
    index = KnownIndex([key_material(key, "device.key")])
    assert len(index.search(image)) == 1
    assert index.confirmations == 1


@pytest.mark.parametrize("lookup", ["set", "stream"])
def test_the_shortest_hex_fragment_is_found_anywhere_in_a_long_hex_text(lookup: str) -> None:
    """32 hex digits (16 bytes) of a key's scalar inside a longer run of hex digits: the decoded
    text is sampled at every word, so the fragment is found at every shift."""
    key = f.ec_key()
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    index = KnownIndex([key_material(key, "device.key")], lookup=lookup)
    r = rng()
    der = key_pkcs8(key)
    for shift in range(0, 40, 2):
        # random digits around, except the bytes next to the fragment, which differ from the
        # key's (else the shared run would go on by chance)
        around = bytes([der[der.find(scalar) - 1] ^ 0xFF]), bytes([scalar[16] ^ 0xFF])
        before = binascii.hexlify(r.randbytes(63 + shift // 2) + around[0])
        after = binascii.hexlify(around[1] + r.randbytes(63))
        text = b"x" + before + binascii.hexlify(scalar[:16]) + after
        found = index.search(text)
        # (a fragment of each DER form that holds the scalar)
        assert {(m.start, m.end) for m in found} == {(1 + len(before), 1 + len(before) + 32)}, shift


def p256_bulk(key: ec.EllipticCurvePrivateKey, source: str) -> KnownMaterial:
    material = p256_material(key_pkcs8(key), source)
    assert material is not None
    return material


@pytest.mark.parametrize("lookup", ["set", "stream"])
@pytest.mark.parametrize("load", [p256_bulk, key_material], ids=["in bulk", "one by one"])
def test_bytes_shared_by_several_known_keys_name_every_one_of_them(load, lookup: str) -> None:  # type: ignore[no-untyped-def]
    """Three bulk-loaded keys whose scalars share their first 24 bytes: an image holding those
    bytes (with the DER bytes in front, 32 in all) holds a fragment of each of the three."""
    shared = rng().randbytes(24)
    keys = [
        ec.derive_private_key(int.from_bytes(shared + bytes([i]) * 8, "big"), ec.SECP256R1())
        for i in (1, 2, 3)
    ]
    der = key_pkcs8(keys[0])
    scalar = der.find(shared)
    fragment = der[scalar - 8 : scalar + 24]
    # the bytes next to the fragment differ from every key's (else the run would go on)
    image = rng().randbytes(100) + bytes([der[scalar - 9] ^ 0xFF]) + fragment + b"\xaa"
    image += rng().randbytes(98)
    index = KnownIndex([load(k, f"dev{i}.key") for i, k in enumerate(keys)], lookup=lookup)
    found = index.search(image)
    assert {m.material.source for m in found} == {"dev0.key", "dev1.key", "dev2.key"}
    assert {(m.start, m.end) for m in found} == {(101, 133)}


def rsa_pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def planted(der: bytes, first: int, last: int) -> tuple[bytes, int]:
    """`der[first:last]` amid random bytes, the bytes next to it differing from the DER's (so
    the shared run is exactly that), and where it starts."""
    r = rng()
    before = r.randbytes(99) + bytes([der[first - 1] ^ 0xFF])
    after = bytes([der[last] ^ 0xFF]) + r.randbytes(99)
    return before + der[first:last] + after, len(before)


@pytest.fixture(scope="module")
def rsa_known() -> tuple[rsa.RSAPrivateKey, KnownIndex]:
    key = f.rsa_key()
    return key, KnownIndex([key_material(key, "device.key")])


@pytest.mark.parametrize(
    ("extra_before", "extra_after", "component"),
    [(4, 0, True), (5, 0, False), (0, 4, True), (0, 5, False)],
    ids=["header of 4 before", "5 before", "4 after", "5 after"],
)
def test_a_component_with_its_integer_header_is_reported_as_the_component(
    rsa_known: tuple[rsa.RSAPrivateKey, KnownIndex],
    extra_before: int,
    extra_after: int,
    component: bool,
) -> None:
    """A secret number with up to 4 bytes of DER around it (its INTEGER header, a leading zero)
    is reported as that number, at its own extent; a longer run as a fragment of the DER."""
    key, index = rsa_known
    der = rsa_pkcs8(key)
    p = key.private_numbers().p.to_bytes(128, "big")
    first, last = der.find(p) - extra_before, der.find(p) + len(p) + extra_after
    image, at = planted(der, first, last)
    found = {(m.start, m.end, m.encoding) for m in index.search(image)}
    if component:
        p_at = at + extra_before
        assert found == {(p_at, p_at + len(p), "raw RSA prime p")}
    else:
        run = (at, at + last - first)
        assert found == {(*run, "fragment of PKCS#8 DER"), (*run, "fragment of PKCS#1 DER")}


def test_a_component_in_ascii_hex_is_reported_as_the_component(
    rsa_known: tuple[rsa.RSAPrivateKey, KnownIndex],
) -> None:
    key, index = rsa_known
    der = rsa_pkcs8(key)
    p = key.private_numbers().p.to_bytes(128, "big")
    text = b'p = "' + binascii.hexlify(der[der.find(p) - 4 : der.find(p) + len(p)]) + b'";'
    found = {(m.start, m.end, m.encoding) for m in index.search(text)}
    assert found == {(5 + 8, 5 + 8 + 2 * len(p), "ASCII hex of RSA prime p")}


@pytest.mark.parametrize(("secret", "reported"), [(15, False), (16, True)])
def test_a_fragment_needs_16_secret_bytes_whatever_the_key_s_other_components(
    rsa_known: tuple[rsa.RSAPrivateKey, KnownIndex], secret: int, reported: bool
) -> None:
    """32 bytes shared with an RSA key (6 secret numbers): the bytes in front of d and the first
    15 or 16 of d. Only the secret bytes in the run count."""
    key, index = rsa_known
    der = rsa_pkcs8(key)
    value = key.private_numbers().d
    d = der.find(value.to_bytes((value.bit_length() + 7) // 8, "big"))
    image, at = planted(der, d + secret - 32, d + secret)
    found = {(m.start, m.end, m.encoding) for m in index.search(image)}
    expected = {(at, at + 32, "fragment of PKCS#8 DER"), (at, at + 32, "fragment of PKCS#1 DER")}
    assert found == (expected if reported else set())


def test_padding_after_the_text_run_is_not_counted_as_the_key_s() -> None:
    """A whole base64 key (no padding of its own) at the end of a long base64 run: the match ends
    with the key's last character; "=" after the bytes that end the run are not the key's."""
    key = ed25519.Ed25519PrivateKey.generate()
    body = base64.b64encode(key_pkcs8(key))
    assert not body.endswith(b"=")
    lead = base64.b64encode(rng().randbytes(225))  # 300 characters
    text = b"x\x01\x01\x01" + lead + body + b"\x01\x01\x01==\x01\x01\x01" + lead
    found = KnownIndex([key_material(key, "device.key")]).search(text)
    start = 4 + len(lead)
    assert [(m.start, m.end, m.encoding) for m in found] == [
        (start, start + len(body), "base64 PKCS#8 DER")
    ]


def test_a_run_that_ends_where_the_look_ahead_steps_still_ends_there() -> None:
    """The end of a text run is looked for 256 bytes at a time: three bytes that end it, starting
    two bytes before such a step, end it all the same."""
    key = ed25519.Ed25519PrivateKey.generate()
    body = base64.b64encode(key_pkcs8(key))
    lead = base64.b64encode(rng().randbytes(141)) + b"AB"  # 190 characters
    text = b"\x01\x01\x01" + lead + body + b"\x01\x01\x01==\x01\x01\x01"
    assert text.index(b"\x01", 3) == 3 + 256 - 2
    found = KnownIndex([key_material(key, "device.key")]).search(text)
    assert [(m.start, m.end, m.encoding) for m in found] == [(193, 257, "base64 PKCS#8 DER")]


def test_text_after_a_run_longer_than_a_text_block_is_still_searched() -> None:
    """Text is looked for in blocks of TEXT_BLOCK bytes: a run of base64 filling the whole first
    block does not end the search, a key in the next block is found."""
    key = ed25519.Ed25519PrivateKey.generate()
    body = base64.b64encode(key_pkcs8(key))
    run = base64.b64encode(rng().randbytes(TEXT_BLOCK * 3 // 4 + 300))  # past the first block
    text = run + b"\x00\x00\x00" + body + b"\x00\x00\x00"
    found = KnownIndex([key_material(key, "device.key")]).search(text)
    start = len(run) + 3
    assert [(m.start, m.end, m.encoding) for m in found] == [
        (start, start + len(body), "base64 PKCS#8 DER")
    ]


def test_an_unknown_lookup_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"^lookup must be auto, set or stream, not 'fast'$"):
        KnownIndex([], lookup="fast")
