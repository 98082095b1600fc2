"""`key_digests`: exactly the stored forms of a private key that count as the same key.

A private key cannot be read back, so the only way to recognise the key another tool stored is
its listed SHA-256. The forms recognised are those the module docstring lists: PKCS#8 and the
traditional form, each on 64- or 76-column lines, LF or CRLF, with or without the final newline,
and the file as given with LF or CRLF and with or without its final newline. Nothing else: a
block holding headers (an encrypted traditional PEM) is never re-wrapped.

Every expected form is built here from the key's DER (from `cryptography`) and `base64`, then
hashed with `hashlib`; none comes from provision's own helpers.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from provguard.provision import key_digests
from tests import factories

PKCS8_LABEL = b"PRIVATE KEY"
ENCRYPTED_LABEL = b"ENCRYPTED PRIVATE KEY"


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest().upper()


def _pem(body: bytes, label: bytes, width: int | None) -> bytes:
    """An LF PEM block of base64 `body` on lines of `width` characters (None: one line)."""
    step = width or len(body)
    lines = [body[i : i + step] for i in range(0, len(body), step)]
    return b"\n".join([b"-----BEGIN " + label + b"-----", *lines, b"-----END " + label + b"-----"])


def _forms(text: bytes) -> set[bytes]:
    """`text` (LF lines, no final newline) with LF or CRLF, with or without the final newline."""
    crlf = text.replace(b"\n", b"\r\n")
    return {text, text + b"\n", crlf, crlf + b"\r\n"}


def _digests(*texts: bytes) -> frozenset[str]:
    return frozenset(_sha(form) for text in texts for form in _forms(text))


def _encrypted_pkcs8_body() -> bytes:
    """base64 of an encrypted PKCS#8 key: provision cannot decode it (no passphrase), so it
    can recognise only the file's own text, re-wrapped."""
    der = factories.ec_key().private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"not a real passphrase"),
    )
    return base64.b64encode(der)


def test_a_readable_key_counts_in_pkcs8_and_traditional_form_and_nothing_else() -> None:
    key = factories.ec_key()
    given = factories.key_pem(key)
    ders = {
        label: base64.b64encode(key.private_bytes(serialization.Encoding.DER, fmt, none))
        for label, fmt, none in (
            (PKCS8_LABEL, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            (
                b"EC PRIVATE KEY",
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        )
    }
    expected = _digests(
        given.rstrip(b"\n"),
        *(_pem(body, label, width) for label, body in ders.items() for width in (64, 76)),
    )
    assert len(expected) == 16  # the given file is the 64-column PKCS#8 form
    assert key_digests(given) == expected


@pytest.mark.parametrize(
    ("width", "eol", "end"),
    [
        (70, b"\n", b"\n"),
        (70, b"\r\n", b"\r\n"),
        (70, b"\r\n", b""),
        (None, b"\n", b"\n"),  # the whole body on one line
        (None, b"\r\n", b"\r\n"),
        (70, b"\n", b" \n"),  # a blank after the END line
    ],
    ids=["70 LF", "70 CRLF", "70 CRLF no final newline", "one line", "one line CRLF", "blank"],
)
def test_a_key_file_provision_cannot_decode_counts_as_given_and_at_64_and_76_columns(
    width: int | None, eol: bytes, end: bytes
) -> None:
    body = _encrypted_pkcs8_body()
    text = _pem(body, ENCRYPTED_LABEL, width)
    given = text.replace(b"\n", eol) + end
    # as given: the END line keeps its blank (it is part of the file), line ends either way
    as_given = text + end.rstrip(b"\r\n")
    expected = _digests(as_given, _pem(body, ENCRYPTED_LABEL, 64), _pem(body, ENCRYPTED_LABEL, 76))
    assert key_digests(given) == expected
    assert _sha(given) in expected


def test_a_key_file_with_doubled_carriage_returns_still_counts_at_64_and_76_columns() -> None:
    # CRLF text written once more through a text-mode CRLF conversion: every line ends "\r\r\n".
    body = _encrypted_pkcs8_body()
    given = _pem(body, ENCRYPTED_LABEL, 70).replace(b"\n", b"\r\r\n") + b"\r\r\n"
    rewrapped = _digests(_pem(body, ENCRYPTED_LABEL, 64), _pem(body, ENCRYPTED_LABEL, 76))
    assert rewrapped <= key_digests(given)


def _encrypted_traditional() -> bytes:
    pem = factories.ec_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"not a real passphrase"),
    )
    assert b"\nProc-Type: 4,ENCRYPTED\nDEK-Info: " in pem
    return pem


def test_an_encrypted_traditional_pem_is_recognised_only_as_given() -> None:
    # Re-wrapping would glue its Proc-Type and DEK-Info headers to the body.
    given = _encrypted_traditional()
    assert key_digests(given) == _digests(given.rstrip(b"\n"))


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_block_with_a_header_line_anywhere_is_never_rewrapped(where: str) -> None:
    """A line holding ':' is not base64 (a PEM header): wherever it sits, the block is left as
    it is. The other lines are 70 columns, so a re-wrap at 64 or 76 would show."""
    body = _encrypted_pkcs8_body()
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    header = b"Comment: written by another tool"
    index = {"first": 0, "middle": len(lines) // 2, "last": len(lines)}[where]
    lines.insert(index, header)
    given = (
        b"\n".join([b"-----BEGIN " + ENCRYPTED_LABEL + b"-----", *lines])
        + b"\n-----END "
        + ENCRYPTED_LABEL
        + b"-----\n"
    )
    assert key_digests(given) == _digests(given.rstrip(b"\n"))


def test_a_file_cut_short_counts_as_given_with_either_line_end() -> None:
    # Not a PEM block at all (no END line): a key made here, cut inside its first base64 line,
    # so the file's last character before the newline is a base64 one.
    first_line = factories.key_pem(factories.ec_key()).split(b"\n")[1]
    given = b"-----BEGIN PRIVATE KEY-----\n" + first_line[:49] + b"\n"
    assert key_digests(given) == _digests(given.rstrip(b"\n"))
