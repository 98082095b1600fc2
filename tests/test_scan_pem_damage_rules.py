"""A private key block the scanner cannot read is a finding, never "clean" (the gate fails closed).

A PEM private key with a character changed, lost or added, with padding in the middle, with a
line missing, or of a key type cryptography cannot load still holds most of a key: each is
reported at its span, named by the SHA-256 of its decoded bytes (or, when the body does not
decode, of its base64 characters), both computed here. What TLS libraries keep between their
BEGIN and END label strings (other strings, NULs, words) is not a key and is not reported; the
bounds of that decision (length, foreign characters, line widths, NUL) are pinned one by one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path
from typing import ClassVar

import pytest
from asn1crypto import core

from provguard.cli import main
from provguard.scan.detectors import (
    DAMAGED_PEM,
    MIN_DAMAGED_BODY,
    MIN_UNREADABLE_DER,
    UNLOADABLE_PEM,
    Detection,
    detect,
)
from provguard.scan.model import Kind
from tests import factories as f

BEGIN, END = b"-----BEGIN PRIVATE KEY-----\n", b"\n-----END PRIVATE KEY-----"


def digest(data: bytes) -> str:
    return "SHA256:" + hashlib.sha256(data).hexdigest()


def place(block: bytes) -> tuple[bytes, tuple[int, int]]:
    """`block` between random bytes that hold no PEM or DER, and its span (BEGIN to END line)."""
    r = random.Random(3)
    before = r.randbytes(100).replace(b"\x30", b"\x31")
    return before + block + b"\n" + r.randbytes(100).replace(b"\x30", b"\x31"), (
        len(before),
        len(before) + len(block),
    )


def pem_lines() -> list[bytes]:
    """The body lines of a fresh P-256 PKCS#8 key (64 characters each but the last)."""
    return f.key_pem(f.ec_key()).splitlines()[1:-1]


def block(lines: list[bytes]) -> bytes:
    return BEGIN + b"\n".join(lines) + END


def _changed(line: bytes, at: int) -> bytes:
    return line[:at] + (b"B" if line[at : at + 1] == b"A" else b"A") + line[at + 1 :]


# What each damage leaves, and how it is reported: (lines -> damaged lines, decodes?)
DAMAGE = {
    "a character changed in the public key": (
        lambda ls: [ls[0], _changed(ls[1], 40), *ls[2:]],
        True,
    ),
    "a line lost": (lambda ls: [ls[0], *ls[2:]], True),
    "a character lost": (lambda ls: [ls[0], ls[1][:10] + ls[1][11:], *ls[2:]], False),
    "a character added": (lambda ls: [ls[0], ls[1][:10] + b"." + ls[1][10:], *ls[2:]], False),
    "padding in the middle": (lambda ls: [ls[0] + b"==", *ls[1:]], False),
    "a space inside a line": (lambda ls: [ls[0][:30] + b" " + ls[0][30:], *ls[1:]], False),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_pem_private_key_is_reported_at_its_span(damage: str) -> None:
    change, decodes = DAMAGE[damage]
    lines = change(pem_lines())
    image, span = place(block(lines))
    text = b"".join(lines)
    if decodes:
        expected = Detection(
            *span, Kind.PRIVATE_KEY, UNLOADABLE_PEM, digest(base64.b64decode(text))
        )
    else:
        expected = Detection(*span, Kind.PRIVATE_KEY, DAMAGED_PEM, digest(text))
    assert detect(image) == [expected]


class _Algorithm(core.Sequence):
    _fields: ClassVar = [("algorithm", core.ObjectIdentifier)]


class _PrivateKeyInfo(core.Sequence):
    _fields: ClassVar = [
        ("version", core.Integer),
        ("algorithm", _Algorithm),
        ("key", core.OctetString),
    ]


def test_a_key_of_a_type_cryptography_cannot_load_is_reported() -> None:
    """PKCS#8 of an algorithm no library here knows (a private-arc OID), encoded by asn1crypto."""
    der = _PrivateKeyInfo(
        {"version": 0, "algorithm": {"algorithm": "1.3.6.1.4.1.55555.7"}, "key": bytes(48)}
    ).dump()
    image, span = place(BEGIN + base64.encodebytes(der).rstrip(b"\n") + END)
    assert detect(image) == [Detection(*span, Kind.PRIVATE_KEY, UNLOADABLE_PEM, digest(der))]


@pytest.mark.parametrize(
    ("size", "reported"), [(MIN_UNREADABLE_DER - 1, False), (MIN_UNREADABLE_DER, True)]
)
def test_a_body_that_decodes_is_reported_from_32_bytes(size: int, reported: bool) -> None:
    assert MIN_UNREADABLE_DER == 32  # a 256-bit secret
    data = random.Random(size).randbytes(size).replace(b"\x30", b"\x31")
    image, span = place(BEGIN + base64.b64encode(data) + END)
    expected = [Detection(*span, Kind.PRIVATE_KEY, UNLOADABLE_PEM, digest(data))]
    assert detect(image) == (expected if reported else [])


def b64_text(count: int, seed: int = 1) -> bytes:
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    r = random.Random(seed)
    return bytes(r.choice(alphabet) for _ in range(count))


def damaged_detection(lines: list[bytes]) -> list[Detection]:
    image, span = place(block(lines))
    found = detect(image)
    assert found in ([], [Detection(*span, Kind.PRIVATE_KEY, DAMAGED_PEM, digest(b"".join(lines)))])
    return found


@pytest.mark.parametrize(
    ("length", "reported"), [(MIN_DAMAGED_BODY - 1, False), (MIN_DAMAGED_BODY, True)]
)
def test_a_body_that_does_not_decode_is_reported_from_44_characters(
    length: int, reported: bool
) -> None:
    assert MIN_DAMAGED_BODY == 44  # 32 bytes of base64
    line = b"." + b64_text(length - 1)  # a character that is not base64: it does not decode
    assert bool(damaged_detection([line])) is reported


@pytest.mark.parametrize(
    ("length", "foreign", "reported"),
    [
        (128, 2, True),  # up to 2 characters that are not base64 in a short body...
        (128, 3, False),
        (256, 4, True),  # ... and one per 64 characters in a longer one
        (256, 5, False),
    ],
)
def test_a_damaged_body_holds_at_most_one_foreign_character_per_line(
    length: int, foreign: int, reported: bool
) -> None:
    text = bytearray(b64_text(length))
    for i in range(foreign):
        text[10 + 20 * i] = ord(".")
    lines = [bytes(text[i : i + 64]) for i in range(0, length, 64)]
    assert bool(damaged_detection(lines)) is reported


@pytest.mark.parametrize(
    ("widths", "reported"),
    [
        ((64, 62, 20), True),  # lines of one width, give or take the damage, but the last
        ((64, 61, 20), False),
        ((64, 64, 64, 3), True),
        ((40, 80, 64), False),
    ],
)
def test_a_damaged_body_is_lines_of_one_width_but_the_last(
    widths: tuple[int, ...], reported: bool
) -> None:
    lines = [b"." + b64_text(w - 1, seed=w) for w in widths[:1]]
    lines += [b64_text(w, seed=i) for i, w in enumerate(widths[1:])]
    assert bool(damaged_detection(lines)) is reported


@pytest.mark.parametrize(
    "between",
    [
        # mbedTLS keeps its label strings and messages side by side, NUL-terminated
        b"\0PEM - Invalid base64 character in the body of the key data here\0",
        # the base64 alphabet table of a decoder, between two label strings
        b"\0ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\0",
        # a sentence
        b"\nThis is where the device key goes once it has been provisioned.\n",
    ],
    ids=["messages", "alphabet", "sentence"],
)
def test_what_a_library_keeps_between_its_label_strings_is_not_a_key(between: bytes) -> None:
    image, _ = place(b"-----BEGIN PRIVATE KEY-----" + between + b"-----END PRIVATE KEY-----")
    assert detect(image) == []


def test_a_damaged_certificate_is_not_a_finding() -> None:
    """Only private keys are secret: a certificate that does not decode is passed over."""
    lines = f.cert_pem(f.make_cert("dev", f.ec_key())).splitlines()
    lines[2] = lines[2][:10] + b"." + lines[2][10:]
    image, _ = place(b"\n".join(lines))
    assert detect(image) == []


def test_the_gate_fails_on_a_damaged_key_and_shows_none_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    lines = f.key_pem(key).splitlines()
    lines[2] = lines[2][:10] + lines[2][11:]  # a character lost in transfer
    image = tmp_path / "app.bin"
    data, (start, end) = place(b"\n".join(lines))
    image.write_bytes(data)
    assert main(["scan", str(image), "--format", "json", "--quiet", "--jobs", "1"]) == 1
    report = capsys.readouterr().out
    (finding,) = json.loads(report)["findings"]
    assert (finding["fileOffset"], finding["length"], finding["kind"], finding["encoding"]) == (
        start,
        end - start,
        "private-key",
        DAMAGED_PEM,
    )
    assert main(["scan", str(image), "--jobs", "1"]) == 1
    text = capsys.readouterr().out
    where = f"{end - start} bytes at 0x{start:08X}"
    assert text.startswith(f"{image}: FAIL: private-key {DAMAGED_PEM}, {where}, key SHA256:")
    assert text.rstrip().endswith(
        "1 private key(s), 0 certificate(s), 0 allowed; fail on private-key: FAIL"
    )
    f.assert_no_key_material(report + text, key)


@pytest.mark.parametrize(
    ("widths", "reported"),
    [((20, 23), False), ((20, 24), True)],  # the length counts the characters of all lines
)
def test_a_body_over_several_lines_is_reported_from_44_characters(
    widths: tuple[int, int], reported: bool
) -> None:
    lines = [b"." + b64_text(widths[0] - 1), b64_text(widths[1], seed=2)]
    assert bool(damaged_detection(lines)) is reported


def test_a_damaged_key_does_not_hide_the_keys_after_it() -> None:
    lines = pem_lines()
    lines[1] = lines[1][:10] + lines[1][11:]  # does not decode
    damaged = block(lines)
    key = f.ec_key()
    good = f.key_pem(key).rstrip(b"\n")
    image, (start, _) = place(damaged + b"\n" + good)
    after = start + len(damaged) + 1
    assert [(d.start, d.end, d.encoding) for d in detect(image)] == [
        (start, start + len(damaged), DAMAGED_PEM),
        (after, after + len(good), "PEM PKCS#8"),
    ]
