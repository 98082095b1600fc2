"""The LZMA headers of compressed MCUboot payloads (scan/mcuboot.py `_lzma`), against liblzma.

The LZMA1 ("alone") header is written here by Python's lzma module (liblzma): its properties
byte, dictionary size and 64-bit size must come back as the filter that decodes the stream, at
the edges of each field. Found by `make mutation MODULE=scan-readers`.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from provguard.errors import InputError
from provguard.scan.mcuboot import (
    F_COMPRESSED_ARM_THUMB,
    F_COMPRESSED_LZMA1,
    F_COMPRESSED_LZMA2,
    McubootOptions,
    _lzma,
    parse,
    parse_enc_key,
)
from tests import containers as c

DATA = os.urandom(2000) + bytes(3000)


def alone(lc: int, lp: int, pb: int, dict_size: int) -> bytes:
    spec = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}
    return lzma.compress(DATA, format=lzma.FORMAT_ALONE, filters=[spec])


@pytest.mark.parametrize(
    ("lc", "lp", "pb", "dict_size"),
    [(3, 0, 2, 1 << 16), (0, 0, 0, 4096), (4, 0, 0, 1 << 20), (0, 4, 4, 65536), (4, 0, 4, 12345)],
)
@pytest.mark.parametrize("thumb", [False, True])
def test_an_lzma1_header_gives_the_filter_that_decodes_it(
    lc: int, lp: int, pb: int, dict_size: int, thumb: bool
) -> None:
    payload = alone(lc, lp, pb, dict_size)
    flags = F_COMPRESSED_LZMA1 | (F_COMPRESSED_ARM_THUMB if thumb else 0)
    plan = _lzma(payload, flags)
    assert not isinstance(plan, str), plan
    lzma1 = plan.filters[-1]
    assert (lzma1["lc"], lzma1["lp"], lzma1["pb"]) == (lc, lp, pb)
    assert lzma1["dict_size"] == int.from_bytes(payload[1:5], "little")  # liblzma rounds it up
    assert plan.stream == payload[13:]
    assert plan.how == ("LZMA1 + ARM Thumb filter" if thumb else "LZMA1")
    assert [f["id"] for f in plan.filters] == (
        [lzma.FILTER_ARMTHUMB, lzma.FILTER_LZMA1] if thumb else [lzma.FILTER_LZMA1]
    )
    # liblzma writes "size unknown" (all ones): no size is declared
    assert payload[5:13] == b"\xff" * 8
    assert plan.declared is None
    # the filter alone (no Thumb) decodes the stream back
    plain = _lzma(payload, F_COMPRESSED_LZMA1)
    assert not isinstance(plain, str)
    decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=list(plain.filters))
    assert decoder.decompress(plain.stream) == DATA


def test_a_declared_lzma1_size_is_read_as_64_bit_little_endian() -> None:
    payload = bytearray(alone(3, 0, 2, 1 << 16))
    payload[5:13] = len(DATA).to_bytes(8, "little")
    plan = _lzma(bytes(payload), F_COMPRESSED_LZMA1)
    assert not isinstance(plan, str)
    assert plan.declared == len(DATA)
    payload[5:13] = ((1 << 64) - 2).to_bytes(8, "little")  # one less than "unknown": a size
    plan = _lzma(bytes(payload), F_COMPRESSED_LZMA1)
    assert not isinstance(plan, str)
    assert plan.declared == (1 << 64) - 2


def test_the_edges_of_an_lzma1_header() -> None:
    header = bytes([224]) + (1 << 16).to_bytes(4, "little") + b"\xff" * 8  # pb 4, lp 4, lc 8
    plan = _lzma(header, F_COMPRESSED_LZMA1)  # 13 bytes, the largest properties byte
    assert not isinstance(plan, str)
    assert (plan.filters[-1]["lc"], plan.filters[-1]["lp"], plan.filters[-1]["pb"]) == (8, 4, 4)
    assert plan.stream == b""
    assert _lzma(header[:12], F_COMPRESSED_LZMA1) == "malformed LZMA1 header"
    assert _lzma(bytes([225]) + header[1:], F_COMPRESSED_LZMA1) == "malformed LZMA1 header"


@pytest.mark.parametrize(
    ("byte", "dict_size"),
    [(0, 4096), (1, 6144), (2, 8192), (17, 3 << 19), (18, 2 << 20), (39, 3 << 30)],
)
def test_an_lzma2_dictionary_byte_gives_its_size(byte: int, dict_size: int) -> None:
    # the LZMA2 dictionary byte: 2 or 3 (its low bit) shifted by 11 + byte // 2 (xz's format)
    plan = _lzma(bytes([byte, 0x5D]) + b"stream", F_COMPRESSED_LZMA2)
    assert not isinstance(plan, str)
    assert plan.filters == ({"id": lzma.FILTER_LZMA2, "dict_size": dict_size},)
    assert plan.stream == b"stream"
    assert plan.how == "LZMA2"
    assert plan.declared is None


def test_the_edges_of_an_lzma2_header_and_of_the_flags() -> None:
    assert _lzma(bytes([41, 0]), F_COMPRESSED_LZMA2) == "malformed LZMA2 header"
    assert _lzma(bytes([0]), F_COMPRESSED_LZMA2) == "malformed LZMA2 header"
    assert not isinstance(_lzma(bytes([40, 0]), F_COMPRESSED_LZMA2), str)
    neither = "the flags name no single LZMA format (0x200 LZMA1 or 0x400 LZMA2)"
    assert _lzma(bytes(20), 0) == neither
    assert _lzma(bytes(20), F_COMPRESSED_LZMA1 | F_COMPRESSED_LZMA2) == neither


# --- the decompressed size: DECOMP_SIZE (TLV 0x70) against the stream ---------------------------

APP = bytes(range(256)) * 40  # 10,240 bytes
STREAM = lzma.compress(APP, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
LZMA2 = bytes([16, 0x5D])  # dictionary byte 16 (1 MiB), lc 3 / lp 0 / pb 2


def decompressed(payload: bytes, *protected: tuple[int, bytes]) -> tuple[bytes | None, str]:
    image = parse(c.mcuboot(payload, F_COMPRESSED_LZMA2, protected=protected))
    if image.unchecked:
        (reason,) = image.unchecked
        return None, reason
    return image.derived[0].data, image.derived[0].name


def unreadable(payload: bytes, why: str) -> str:
    return (
        f"MCUboot payload at offset 0x200 ({len(payload)} bytes) is compressed and could not be "
        f"read: {why}"
    )


def size_tlv(size: int, width: int = 4) -> tuple[int, bytes]:
    return (0x70, size.to_bytes(width, "little"))


def test_decomp_size_cuts_what_the_stream_gives_beyond_it() -> None:
    payload = LZMA2 + STREAM
    whole = (APP, "mcuboot payload (decompressed LZMA2)")
    assert decompressed(payload) == whole
    assert decompressed(payload, size_tlv(len(APP))) == whole
    assert decompressed(payload, size_tlv(len(APP) - 5))[0] == APP[:-5]
    # a DECOMP_SIZE that is not 4 bytes long is not read as one
    assert decompressed(payload, size_tlv(len(APP) - 5, 8))[0] == APP


def test_a_stream_shorter_than_decomp_size_or_cut_short_is_unchecked() -> None:
    payload = LZMA2 + STREAM
    assert decompressed(payload, size_tlv(len(APP) + 5)) == (
        None,
        unreadable(
            payload,
            f"LZMA2 stream ends after {len(APP)} of {len(APP) + 5} bytes (corrupt or truncated)",
        ),
    )
    cut = LZMA2 + STREAM[: len(STREAM) // 2]
    assert decompressed(cut) == (
        None, unreadable(cut, "LZMA2 stream ends early (corrupt or truncated)")
    )  # fmt: skip


def test_the_decompression_limit_is_inclusive() -> None:
    payload = LZMA2 + STREAM
    image = parse(
        c.mcuboot(payload, F_COMPRESSED_LZMA2), McubootOptions(max_payload_bytes=len(APP))
    )
    assert image.unchecked == ()
    assert image.derived[0].data == APP
    over = parse(
        c.mcuboot(payload, F_COMPRESSED_LZMA2), McubootOptions(max_payload_bytes=len(APP) - 1)
    )
    assert over.unchecked == (
        unreadable(payload, f"decompresses to more than the limit of {len(APP) - 1} bytes"),
    )


# --- --mcuboot-enc-key files ------------------------------------------------------------------


def test_each_kind_of_encryption_key_is_read_from_pem_and_der() -> None:
    keys = {
        "rsa": rsa.generate_private_key(65537, 2048),
        "ec-p256": ec.generate_private_key(ec.SECP256R1()),
        "x25519": x25519.X25519PrivateKey.generate(),
    }
    for kind, key in keys.items():
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for encoding in (serialization.Encoding.PEM, serialization.Encoding.DER):
            data = key.private_bytes(
                encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            loaded = parse_enc_key(data, "enc.key")
            assert (loaded.kind, loaded.fingerprint) == (
                kind,
                "SHA256:" + hashlib.sha256(spki).hexdigest(),
            ), (kind, encoding)
    for size in (16, 32):  # raw AES key-wrap keys
        raw = os.urandom(size)
        loaded = parse_enc_key(raw, "kek.bin")
        assert (loaded.kind, loaded.fingerprint) == (
            "aes-kw",
            "SHA256:" + hashlib.sha256(raw).hexdigest(),
        )


def test_what_is_no_encryption_key_is_refused_with_the_file_and_why() -> None:
    def refusal(data: bytes) -> str:
        with pytest.raises(InputError) as refused:
            parse_enc_key(data, "enc.key")
        return str(refused.value)

    locked = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert refusal(locked) == (
        "enc.key: MCUboot encryption key is password-protected: give it unencrypted"
    )
    for other in (ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP384R1())):
        pem = other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        assert refusal(pem) == (
            "enc.key: not an MCUboot encryption key (RSA, EC P-256 or X25519 expected)"
        )
    for size in (15, 17, 31, 33):
        assert refusal(os.urandom(size)) == (
            "enc.key: no MCUboot encryption key could be read (PEM/DER private key or a 16/32-byte "
            "AES key)"
        )


# --- the TLV areas ---------------------------------------------------------------------------
# An image written here: header (0x200), 64 bytes of payload from 0x200, the protected TLV area at
# 0x240 (magic 0x6908, 12 bytes: one DECOMP_SIZE TLV), the TLV area at 0x24c (magic 0x6907, 40
# bytes: the SHA256 TLV). Offsets below are counted from that layout (imgtool's).

PROT_AT, TLV_AT = 0x240, 0x24C


def tlv_image() -> bytearray:
    return bytearray(c.mcuboot(b"A" * 64, protected=((0x70, b"\x40\0\0\0"),)))


def problems(data: bytes | bytearray) -> tuple[str, ...]:
    return parse(bytes(data)).unchecked


def test_the_tlvs_of_both_areas_are_where_imgtool_put_them() -> None:
    image = parse(bytes(tlv_image()))
    assert image.unchecked == ()
    assert [(t.tag, t.offset, t.length, t.protected) for t in image.tlvs] == [
        (0x70, PROT_AT + 8, 4, True),
        (0x10, TLV_AT + 8, 32, False),
    ]


def test_a_cut_or_damaged_tlv_area_is_named_with_its_offset() -> None:
    data = tlv_image()
    assert len(data) == TLV_AT + 40
    assert problems(data[:-1]) == (
        f"truncated MCUboot image: the TLV area at 0x{TLV_AT:x} ends past the file",
    )
    assert problems(data[: PROT_AT + 3]) == (
        f"truncated MCUboot image: no TLV area at offset 0x{PROT_AT:x}",
    )
    assert problems(data[: PROT_AT + 4]) == (  # its magic is there, its TLVs are not
        f"truncated MCUboot image: the TLV area at 0x{PROT_AT:x} ends past the file",
    )
    wrong = tlv_image()
    struct.pack_into("<H", wrong, PROT_AT + 2, 16)
    assert problems(wrong) == (
        "malformed MCUboot image: protected TLV size differs from the header",
    )
    for at, magic, what in ((PROT_AT, 0x6908, "protected TLV area"), (TLV_AT, 0x6907, "TLV area")):
        wrong = tlv_image()
        struct.pack_into("<H", wrong, at, magic - 1)
        assert problems(wrong) == (
            f"malformed MCUboot image: no {what} (magic 0x{magic:04x}) at 0x{at:x}",
        )
    short = tlv_image()
    struct.pack_into("<H", short, TLV_AT + 2, 3)  # an area smaller than its own 4-byte header
    assert problems(short) == (
        f"truncated MCUboot image: the TLV area at 0x{TLV_AT:x} ends past the file",
    )


@pytest.mark.parametrize("length", [33, 0x8001])
def test_a_tlv_longer_than_its_area_is_malformed(length: int) -> None:
    data = tlv_image()
    struct.pack_into("<H", data, TLV_AT + 6, length)  # the SHA256 TLV's length field
    assert problems(data) == (f"malformed MCUboot TLV at 0x{TLV_AT + 4:x}: runs past its area",)


def test_bytes_too_few_for_a_tlv_header_at_the_end_of_an_area_are_malformed() -> None:
    data = tlv_image() + b"\0\0"
    struct.pack_into("<H", data, TLV_AT + 2, 42)  # the area claims two bytes after its TLV
    assert problems(data) == (f"malformed MCUboot TLV at 0x{TLV_AT + 40:x}",)


def test_an_empty_tlv_at_the_very_end_of_its_area_is_a_tlv() -> None:
    data = tlv_image() + struct.pack("<HH", 0x99, 0)
    struct.pack_into("<H", data, TLV_AT + 2, 44)
    image = parse(bytes(data))
    assert image.unchecked == ()
    assert [(t.tag, t.offset, t.length) for t in image.tlvs][-1] == (0x99, TLV_AT + 44, 0)


def test_an_image_is_taken_apart_into_its_parts_and_a_finding_named_by_them() -> None:
    image = parse(bytes(tlv_image()) + b"trailer")
    assert [(p.name, p.offset, len(p.data)) for p in image.parts] == [
        ("mcuboot header", 0, 0x200),
        ("mcuboot payload", 0x200, 64),
        ("mcuboot protected TLVs", PROT_AT, 12),
        ("mcuboot TLVs", TLV_AT, 40),
        ("after the mcuboot TLVs", TLV_AT + 40, 7),
    ]
    # a finding is named by every part it touches
    assert image.part_at(0x1FF, 2) == "mcuboot header+mcuboot payload"
    assert image.part_at(0x23F, 0) == "mcuboot payload"  # an empty span still has a place
    assert image.part_at(0x23F, 1) == "mcuboot payload"
    assert image.part_at(PROT_AT) == "mcuboot protected TLVs"
    assert image.part_at(TLV_AT + 46) == "after the mcuboot TLVs"  # its last byte
    assert image.part_at(TLV_AT + 46, 100) == "after the mcuboot TLVs"
    assert image.part_at(TLV_AT + 47) is None


def test_a_decompressed_payload_says_where_it_came_from() -> None:
    image = parse(c.mcuboot(LZMA2 + STREAM, F_COMPRESSED_LZMA2))
    ((name, data, source, offset),) = [
        (d.name, d.data, d.source, d.source_offset) for d in image.derived
    ]
    assert (name, data, source, offset) == (
        "mcuboot payload (decompressed LZMA2)",
        APP,
        "mcuboot payload",
        0x200,
    )
