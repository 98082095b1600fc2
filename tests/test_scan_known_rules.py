"""Rules of the known-key index (scan/known.py) that the scale tests leave open: certificates
given alone, and the exact extent and name of what the index reports. Expected bytes, offsets
and names are derived here (cryptography's serialization, base64/binascii), never from the
index's own tables.
"""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from cryptography import x509

from provguard.scan.known import (
    TEXT_CHUNK,
    KnownIndex,
    KnownMaterial,
    certificate_der_material,
    certificate_material,
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
