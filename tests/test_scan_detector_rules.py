"""The always-on detectors (scan/detectors.py) on the PEM shapes the key matrix leaves out:
OpenSSH keys, legacy encrypted PEM, and blocks next to something that is not a key (a label with
no body, a body that is not base64, a block with no END), which must not hide the key after them.

Expected offsets are where the test put each block; fingerprints are computed here (SHA-256 of
the public key's SubjectPublicKeyInfo, or of the decoded body for an encrypted key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard.scan.detectors import (
    BLOCK,
    MAX_OBJECT,
    UNLOADABLE_PEM,
    Detection,
    candidates,
    der_length,
    der_object,
    detect,
)
from provguard.scan.model import Kind
from tests import factories as f
from tests.factories import spki_fingerprint


def place(*blocks: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """Random bytes (no PEM, no DER key) with the blocks in a row, and where each one sits
    (from BEGIN to the end of its END line, without the line break)."""
    r = random.Random(7)
    image = bytearray(r.randbytes(64))
    where = []
    for block in blocks:
        where.append((len(image), len(image) + len(block.rstrip(b"\n"))))
        image += block + r.randbytes(64).replace(b"\x30", b"\x31")
    return bytes(image), where


def openssh(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


def pem_key_detection(key: ec.EllipticCurvePrivateKey, span: tuple[int, int]) -> Detection:
    return Detection(*span, Kind.PRIVATE_KEY, "PEM PKCS#8", spki_fingerprint(key), "EC secp256r1")


def test_an_openssh_key_is_found_and_named_by_its_public_key() -> None:
    first, second = f.ec_key(), f.ec_key()
    image, (one, two) = place(openssh(first), f.key_pem(second))
    assert detect(image) == [
        Detection(*one, Kind.PRIVATE_KEY, "PEM OpenSSH", spki_fingerprint(first), "EC secp256r1"),
        pem_key_detection(second, two),
    ]


def test_a_damaged_openssh_block_is_reported_and_does_not_hide_the_key_after_it() -> None:
    key = f.ec_key()
    damaged = openssh(f.ec_key()).replace(b"\n", b"\nAAAA", 1)
    image, (first, span) = place(damaged, f.key_pem(key))
    body = b"".join(damaged.splitlines()[1:-1])
    digest = "SHA256:" + hashlib.sha256(base64.b64decode(body)).hexdigest()
    assert detect(image) == [
        Detection(*first, Kind.PRIVATE_KEY, UNLOADABLE_PEM, digest),
        pem_key_detection(key, span),
    ]


def test_a_legacy_encrypted_pem_key_is_found_by_its_headers() -> None:
    """`Proc-Type: 4,ENCRYPTED` PEM (what OpenSSL writes for a traditional key with a password)
    is reported, named by the digest of its body: its public key cannot be read."""
    key, other = f.ec_key(), f.ec_key()
    legacy = f.key_pem(key, pkcs8=False, password=b"secret")
    assert b"Proc-Type: 4,ENCRYPTED" in legacy
    image, (one, two) = place(legacy, f.key_pem(other))
    body = b"".join(line for line in legacy.splitlines()[1:-1] if b":" not in line)
    digest = "SHA256:" + hashlib.sha256(base64.b64decode(body)).hexdigest()
    assert detect(image) == [
        Detection(*one, Kind.PRIVATE_KEY, "PEM (legacy encrypted)", digest, None),
        pem_key_detection(other, two),
    ]


def test_a_non_ascii_header_line_does_not_stop_the_search() -> None:
    key, other = f.ec_key(), f.ec_key()
    legacy = f.key_pem(key, pkcs8=False, password=b"secret")
    lines = legacy.split(b"\n")
    odd = b"\n".join([lines[0], b"Comment: caf\xe9", *lines[1:]])
    image, (_, span) = place(odd, f.key_pem(other))
    assert pem_key_detection(other, span) in detect(image)


@pytest.mark.parametrize(
    "before",
    [
        b"-----BEGIN EC PRIVATE KEY----------END EC PRIVATE KEY-----",  # mbedTLS's label strings
        b"-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----",  # a format string
        b"-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----",  # does not decode
        b"-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----",  # DER, not a key
        b"-----BEGIN EC PRIVATE KEY-----\nno end line here",  # no END (the key after ends in
        # "END PRIVATE KEY", not "END EC PRIVATE KEY")
    ],
    ids=["no body", "not base64", "does not decode", "not a key", "no END"],
)
def test_what_is_not_a_key_block_does_not_hide_the_key_after_it(before: bytes) -> None:
    key = f.ec_key()
    image, (_, span) = place(before, f.key_pem(key))
    assert detect(image) == [pem_key_detection(key, span)]


def test_a_damaged_pem_certificate_does_not_hide_the_certificate_after_it() -> None:
    cert = f.make_cert("dev", f.ec_key())
    cut = f.cert_der(cert)[:-20]
    damaged = (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(cut) + b"-----END CERTIFICATE-----\n"
    )
    image, (_, span) = place(damaged, f.cert_pem(cert))
    digest = "SHA256:" + hashlib.sha256(f.cert_der(cert)).hexdigest()
    assert detect(image) == [Detection(*span, Kind.CERTIFICATE, "PEM", digest)]


@pytest.mark.parametrize(("gap", "found"), [(0, True), (1, False)])
def test_a_pem_block_is_read_up_to_max_object_bytes(gap: int, found: bool) -> None:
    """The END line must end within MAX_OBJECT bytes after the BEGIN line (spaces between the
    lines of a body are separators, so the body is the key either way)."""
    key = f.ec_key()
    pem = f.key_pem(key)
    begin, rest = pem.split(b"\n", 1)
    body, end = rest.split(b"-----END")
    end = b"-----END" + end.rstrip(b"\n")
    padding = MAX_OBJECT - len(body) - len(end) + gap
    block = begin + body + b" " * padding + end
    image, (span,) = place(block)
    assert detect(image) == ([pem_key_detection(key, span)] if found else [])


def encrypted_openssh(key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    """(PEM, its decoded body): `key`'s OpenSSH container as ssh-keygen writes it with a
    passphrase (aes256-ctr, bcrypt; PROTOCOL.key), the private part random bytes of the right
    size. cryptography refuses to read it without a password, as it would a real one."""
    raw = base64.b64decode(b"".join(openssh(key).splitlines()[1:-1]))
    magic = b"openssh-key-v1\0"

    def string(data: bytes) -> tuple[bytes, bytes]:
        size = int.from_bytes(data[:4], "big")
        return data[4 : 4 + size], data[4 + size :]

    def put(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    rest = raw[len(magic) :]
    for _ in range(3):  # cipher "none", kdf "none", empty kdf options
        _, rest = string(rest)
    count, rest = rest[:4], rest[4:]
    public, rest = string(rest)
    private, _ = string(rest)
    r = random.Random(11)
    kdf_options = put(r.randbytes(16)) + (16).to_bytes(4, "big")
    body = magic + put(b"aes256-ctr") + put(b"bcrypt") + put(kdf_options) + count + put(public)
    body += put(r.randbytes(-(-len(private) // 16) * 16))
    label = b"OPENSSH PRIVATE KEY-----\n"
    return b"-----BEGIN " + label + base64.encodebytes(body) + b"-----END " + label, body


def test_an_encrypted_openssh_key_is_found_and_does_not_hide_the_key_after_it() -> None:
    key, other = f.ec_key(), f.ec_key()
    pem, body = encrypted_openssh(key)
    with pytest.raises(TypeError):
        serialization.load_ssh_private_key(pem, None)
    image, (one, two) = place(pem, f.key_pem(other))
    digest = "SHA256:" + hashlib.sha256(body).hexdigest()
    assert detect(image) == [
        Detection(*one, Kind.PRIVATE_KEY, "PEM OpenSSH (encrypted)", digest, None),
        pem_key_detection(other, two),
    ]


def test_an_rsa_key_is_found_without_its_costly_consistency_check() -> None:
    """A PKCS#1 key whose CRT coefficient is off (cryptography's checking load refuses it) is
    still a private key in the image: found by its public key."""
    key = f.rsa_key()
    der = f.rsa_der_with_bad_coefficient(key)
    with pytest.raises(ValueError, match="Invalid private key"):
        serialization.load_der_private_key(der, None)
    image, _ = place(der)
    span = (image.index(der), image.index(der) + len(der))
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = "SHA256:" + hashlib.sha256(spki).hexdigest()
    assert detect(image) == [
        Detection(*span, Kind.PRIVATE_KEY, "PKCS#1 DER", fingerprint, "RSA-2048")
    ]


# --- DER lengths -----------------------------------------------------------------------------

LONG = 0x80  # the long form: 0x80 | number of length bytes that follow


@pytest.mark.parametrize(
    ("data", "total"),
    [
        (b"\x30", None),  # no length byte
        (b"\x30\x05", 2 + 5),  # short form (the content need not be there yet)
        (b"\x30\x7f", 2 + 127),
        (b"\x30\x80", None),  # indefinite length: BER, not DER
        (b"\x30\x81", None),  # its length byte is missing
        (b"\x30\x81\x05", None),  # 5 in the long form: not the shortest form
        (b"\x30\x81\x80", 2 + 1 + 128),  # the length bytes end the data
        (b"\x30\x82\x00\x80", None),  # a leading zero length byte: not the shortest form
        (b"\x30\x82\x01\x00", 2 + 2 + 256),
        (b"\x30\x83\x01\x00\x00", 2 + 3 + 65536),
        (b"\x30\x84\x01\x00\x00\x00", None),  # more than 3 length bytes: far beyond any key
    ],
)
def test_der_length_follows_the_shortest_form_rules(data: bytes, total: int | None) -> None:
    assert der_length(data, 0) == total
    assert der_length(b"junk" + data, 4) == total


def sequence(total: int) -> bytes:
    """A DER SEQUENCE of exactly `total` bytes (2-byte long-form length)."""
    content = total - 4
    return b"\x30" + bytes([LONG | 2]) + content.to_bytes(2, "big") + bytes(content)


def test_der_object_is_whole_and_at_most_max_object_bytes() -> None:
    assert der_object(sequence(MAX_OBJECT), 0) == sequence(MAX_OBJECT)
    assert der_object(b"x" + sequence(MAX_OBJECT + 1), 1) is None
    whole = sequence(300)
    assert der_object(whole[:-1], 0) is None  # cut short
    assert der_object(b"\x30", 0) is None


def test_a_key_at_a_block_boundary_is_one_candidate() -> None:
    """Candidates are found block by block (BLOCK bytes, searched a little beyond): a key that
    starts exactly where a block starts is the next block's, found once."""
    key = f.ec_key()
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    data = bytes(BLOCK) + der + bytes(100)
    alone = candidates(der + bytes(100)).keys  # the key, and the SEC1 key inside its PKCS#8
    assert alone[0] == 0
    assert candidates(data).keys == tuple(BLOCK + at for at in alone)
    assert detect(data) == [
        Detection(
            BLOCK,
            BLOCK + len(der),
            Kind.PRIVATE_KEY,
            "PKCS#8 DER",
            spki_fingerprint(key),
            "EC secp256r1",
        )
    ]


@pytest.mark.parametrize("pkcs8", [False, True], ids=["sec1", "pkcs8"])
@pytest.mark.parametrize("header", [b"Comment: device 42", b"Proc-Type: 4,NOTENCRYPTED"])
def test_a_plain_pem_key_with_a_header_line_is_found(pkcs8: bool, header: bytes) -> None:
    # Headers do not make a key secret: only "Proc-Type: 4,ENCRYPTED" with DEK-Info does. A
    # key in the clear under a comment line is as much a leak as one without it.
    key = f.ec_key()
    lines = f.key_pem(key, pkcs8=pkcs8).split(b"\n")
    pem = b"\n".join([lines[0], header, b"", *lines[1:]])
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    found = detect(b"\0" * 8 + pem + b"\0" * 8)
    form = "PKCS#8" if pkcs8 else "SEC1"
    fingerprint = "SHA256:" + hashlib.sha256(spki).hexdigest()
    assert found == [
        Detection(
            8,
            8 + len(pem) - 1,
            Kind.PRIVATE_KEY,
            f"PEM {form} (with headers)",  # whether cryptography reads the header or not
            fingerprint,
            "EC secp256r1",
        )
    ]


@pytest.mark.parametrize("space", [b"\v", b"\f", b" \t"], ids=["vt", "ff", "space-tab"])
def test_a_pem_key_whose_lines_end_in_other_white_space_is_found(space: bytes) -> None:
    # cryptography and OpenSSL read such a key; the scan must not be stricter than the reader.
    key = f.ec_key()
    pem = f.key_pem(key).replace(b"\n", space + b"\n")
    serialization.load_pem_private_key(pem, None)  # a key its users can load
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert [d.key for d in detect(pem)] == ["SHA256:" + hashlib.sha256(spki).hexdigest()]


def _spki_fp(key: f.PrivateKey) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + hashlib.sha256(spki).hexdigest()


@pytest.mark.parametrize(
    ("encoder", "escape"),
    [
        ("PHP json_encode", {"/": "\\/"}),
        (".NET System.Text.Json", {"+": "\\u002B"}),
        ("escapes in lower case", {"+": "\\u002b", "/": "\\u002f"}),
        (
            "every base64 character a writer may escape",
            {"+": "\\u002B", "/": "\\u002F", "=": "\\u003D"},
        ),
    ],
)
def test_a_pem_key_in_json_with_escaped_base64_characters_is_found(
    encoder: str, escape: dict[str, str]
) -> None:
    """JSON may escape `/`, `+` and `=` (`\\/`, `\\u002B`, `\\u003D`): still the key, as any JSON
    reader sees."""
    for _ in range(50):  # a key whose body holds every character the encoder escapes
        key = f.rsa_key()
        pem = f.key_pem(key, pkcs8=False).decode()
        if all(c in "".join(pem.splitlines()[1:-1]) for c in escape):
            break
    else:
        pytest.fail("no key had those characters")
    text = json.dumps({"privateKey": pem})
    for char, escaped in escape.items():
        text = text.replace(char, escaped)
    assert json.loads(text)["privateKey"] == pem  # what the encoder wrote is that key
    data = text.encode()

    [found] = detect(data)

    assert (found.kind, found.encoding, found.key) == (
        Kind.PRIVATE_KEY,
        "PEM PKCS#1",
        _spki_fp(key),
    )
    assert found.start == data.index(b"-----BEGIN")
    assert data[found.end - len("-----") : found.end] == b"-----"


def test_a_certificate_in_php_json_is_found_as_the_certificate() -> None:
    pki = f.device_pki()
    pem = f.cert_pem(pki.device_cert).decode()
    text = json.dumps({"certificate": pem}).replace("/", "\\/").encode()

    [found] = detect(text)

    der = f.cert_der(pki.device_cert)
    assert (found.kind, found.key) == (
        Kind.CERTIFICATE,
        "SHA256:" + hashlib.sha256(der).hexdigest(),
    )
