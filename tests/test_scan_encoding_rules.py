"""Every layout of a known key that `provguard scan` promises to find (`KEY_ENCODINGS`), checked
against an oracle built here from cryptography's own serialization and the key's numbers: the
key matrix in test_scan.py plants what the registry returns, so a registry that forgot a layout
(the upper-case hex, a DER form, a component) would pass it.
"""

from __future__ import annotations

import base64
import binascii

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from provguard.scan.known import KEY_ENCODINGS
from tests import factories as f

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def big(value: int, size: int | None = None) -> bytes:
    return value.to_bytes(size or (value.bit_length() + 7) // 8, "big")


def little(value: int, size: int | None = None) -> bytes:
    return value.to_bytes(size or (value.bit_length() + 7) // 8, "little")


def der_forms(key: PrivateKey) -> list[tuple[str, bytes]]:
    def der(fmt: serialization.PrivateFormat) -> bytes:
        return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())

    forms = [("PKCS#8 DER", der(serialization.PrivateFormat.PKCS8))]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        forms.append(("SEC1 DER", der(serialization.PrivateFormat.TraditionalOpenSSL)))
    elif isinstance(key, rsa.RSAPrivateKey):
        forms.append(("PKCS#1 DER", der(serialization.PrivateFormat.TraditionalOpenSSL)))
    return forms


def raw_components(key: PrivateKey) -> list[tuple[str, bytes]]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value, size = key.private_numbers().private_value, (key.curve.key_size + 7) // 8
        return [
            ("raw EC private scalar", big(value, size)),
            ("raw EC private scalar (little-endian)", little(value, size)),
        ]
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        named = [
            ("RSA private exponent d", n.d),
            ("RSA prime p", n.p),
            ("RSA prime q", n.q),
            ("RSA CRT exponent dp", n.dmp1),
            ("RSA CRT exponent dq", n.dmq1),
            ("RSA CRT coefficient qinv", n.iqmp),
        ]
        return [(f"raw {name}", big(value)) for name, value in named] + [
            (f"raw {name} (little-endian)", little(value)) for name, value in named[:3]
        ]
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return [("raw Ed25519 private key", raw)]


def oracle(key: PrivateKey) -> dict[str, list[tuple[str, bytes]]]:
    forms = der_forms(key)
    return {
        "DER": forms,
        "base64": [(f"base64 {name}", base64.b64encode(der)) for name, der in forms],
        "hex": [
            (f"ASCII hex of {name}", text)
            for name, der in forms
            for text in (binascii.hexlify(der), binascii.hexlify(der).upper())
        ],
        "raw": raw_components(key),
    }


@pytest.mark.parametrize(
    "make",
    [f.ec_key, lambda: f.ec_key(ec.SECP384R1()), f.rsa_key, ed25519.Ed25519PrivateKey.generate],
    ids=["P-256", "P-384", "RSA-2048", "Ed25519"],
)
def test_every_encoding_of_a_key_is_what_cryptography_writes(make) -> None:  # type: ignore[no-untyped-def]
    key = make()
    expected = oracle(key)
    assert [e.name for e in KEY_ENCODINGS] == list(expected)
    for encoding in KEY_ENCODINGS:
        assert encoding.encode(key) == expected[encoding.name], encoding.name
    assert [e.name for e in KEY_ENCODINGS if e.self_describing] == ["DER"]
