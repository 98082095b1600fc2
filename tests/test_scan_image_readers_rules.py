"""How the readers (scan/readers.py), the MCUboot parser (scan/mcuboot.py) and the ELF layout
(scan/elf.py) describe a firmware image: part names, offsets, flash addresses, reasons.

Images are laid out here byte by byte (MCUboot headers and TLV areas after mcu-tools/mcuboot
image.h, ELF32 after the ELF specification, Intel HEX records after the Intel HEX format), so
each expected offset and address is where the test put the bytes. Found by
`make mutation MODULE=scan-readers`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import lzma
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from elftools.elf.elffile import ELFFile

from provguard.errors import InputError
from provguard.scan.elf import elf_layout
from provguard.scan.mcuboot import (
    Derived,
    Header,
    McubootImage,
    McubootOptions,
    Part,
    is_mcuboot,
    load_enc_key,
    parse,
    parse_enc_key,
)
from provguard.scan.model import Image, Region, Segment, Symbol, Unchecked
from provguard.scan.readers import Options, read_bytes

MAGIC = 0x96F3B83D
APP = bytes(range(256)) * 16 + b"the application" + bytes(100)  # 4,211 bytes

# --- MCUboot images laid out here ------------------------------------------------------------


def tlv_area(magic: int, tlvs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack("<HH", tag, len(value)) + value for tag, value in tlvs)
    return struct.pack("<HH", magic, 4 + len(body)) + body


def header(
    img_size: int,
    flags: int = 0,
    *,
    hdr_size: int = 0x200,
    prot_size: int = 0,
    load_addr: int = 0,
    version: tuple[int, int, int, int] = (1, 2, 3, 0),
) -> bytes:
    fields = (MAGIC, load_addr, hdr_size, prot_size, img_size, flags, *version, 0)
    return struct.pack("<IIHHIIBBHII", *fields).ljust(hdr_size, b"\0")


def image(
    payload: bytes,
    flags: int = 0,
    *,
    tlvs: list[tuple[int, bytes]] | None = None,
    plain: bytes | None = None,
    hash_first: bool = True,
) -> bytes:
    """Header (0x200), payload, a TLV area: SHA256 of header + `plain` first (or last), `tlvs`."""
    head = header(len(payload), flags)
    digest = (0x10, hashlib.sha256(head + (payload if plain is None else plain)).digest())
    extra = tlvs or []
    listed = [digest, *extra] if hash_first else [*extra, digest]
    return head + payload + tlv_area(0x6907, listed)


def ctr(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def kek_file(tmp_path: Path, name: str, kek: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(kek)
    return path


def fingerprint(raw: bytes) -> str:
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def where(payload: bytes) -> str:
    return f"MCUboot payload at offset 0x200 ({len(payload)} bytes)"


# --- header fields ---------------------------------------------------------------------------


def test_a_header_is_read_field_by_field() -> None:
    data = header(0, load_addr=0x12345678, version=(1, 2, 3, 4)) + tlv_area(0x6907, [])
    assert is_mcuboot(data)  # any load address: only the 4-byte magic says "MCUboot"
    assert is_mcuboot(data[:4])
    parsed = parse(data)
    assert parsed.header == Header(0x12345678, 0x200, 0, 0, 0, "1.2.3+4")
    assert parsed.size == len(data)
    assert parsed.unchecked == ()


def test_too_short_or_no_magic() -> None:
    magic = struct.pack("<I", MAGIC)
    assert parse(magic[:2]) == McubootImage(
        2,
        None,
        magic[:2],
        (),
        (),
        (),
        ("truncated MCUboot image: 2 bytes, the header alone is 32",),
    )
    assert parse(bytes(32)) == McubootImage(
        32, None, bytes(32), (), (), (), ("not an MCUboot image (no header magic)",)
    )
    # exactly a header (hdr_size 32, no payload): read, and its missing TLV area named
    bare = header(0, hdr_size=32)
    assert len(bare) == 32
    parsed = parse(bare)
    assert parsed.unchecked == ("truncated MCUboot image: no TLV area at offset 0x20",)
    assert [(p.name, p.offset, p.data) for p in parsed.parts] == [
        ("mcuboot header", 0, bare),
        ("mcuboot payload", 32, b""),
    ]


def test_a_header_size_below_32_is_malformed_and_32_is_not() -> None:
    small = header(4, hdr_size=16) + b"body" + tlv_area(0x6907, [])  # the struct is 32 bytes
    assert parse(small) == McubootImage(
        len(small),
        Header(0, 16, 0, 4, 0, "1.2.3+0"),
        small,
        (),
        (),
        (),
        ("malformed MCUboot header: header size 16 < 32",),
    )
    exact = header(4, hdr_size=32) + b"body" + tlv_area(0x6907, [])
    parsed = parse(exact)
    assert parsed.unchecked == ()
    assert [(p.name, p.offset, p.data) for p in parsed.parts] == [
        ("mcuboot header", 0, exact[:32]),
        ("mcuboot payload", 32, b"body"),
        ("mcuboot TLVs", 36, exact[36:]),
    ]


def test_an_image_cut_in_its_payload_keeps_its_header_as_a_part() -> None:
    data = image(APP)[: 0x200 + 100]
    assert parse(data) == McubootImage(
        len(data),
        Header(0, 0x200, 0, len(APP), 0, "1.2.3+0"),
        data,
        (Part("mcuboot header", 0, data[:0x200]),),
        (),
        (),
        (
            f"truncated MCUboot image: the header says {0x200 + len(APP)} bytes of header and "
            f"payload, the image has {0x200 + 100}",
        ),
    )


def test_an_image_cut_right_after_its_payload() -> None:
    end = 0x200 + len(APP)
    data = image(APP)[:end]
    parsed = parse(data)
    assert parsed.unchecked == (f"truncated MCUboot image: no TLV area at offset 0x{end:x}",)
    assert [(p.name, p.offset, len(p.data)) for p in parsed.parts] == [
        ("mcuboot header", 0, 0x200),
        ("mcuboot payload", 0x200, len(APP)),
    ]  # no empty "malformed TLV area" part after the end of the file


def test_a_finding_of_one_byte_is_named_by_the_one_part_it_is_in() -> None:
    parsed = parse(image(APP))
    assert parsed.part_at(0x1FF) == "mcuboot header"
    assert parsed.part_at(0x200 + len(APP) - 1) == "mcuboot payload"


# --- TLV areas -------------------------------------------------------------------------------


def test_an_empty_tlv_area_is_no_problem() -> None:
    data = header(len(APP)) + APP + tlv_area(0x6907, [])
    parsed = parse(data)
    assert parsed.unchecked == ()
    assert parsed.tlvs == ()
    assert parsed.parts[-1] == Part("mcuboot TLVs", 0x200 + len(APP), data[-4:])


def test_a_tlv_area_larger_than_32_kib() -> None:
    big = os.urandom(0x8100)  # MCUboot's TLV lengths are 16-bit unsigned
    data = image(APP, tlvs=[(0x99, big)])
    parsed = parse(data)
    assert parsed.unchecked == ()
    assert [(t.tag, t.length) for t in parsed.tlvs] == [(0x10, 32), (0x99, len(big))]


# --- decompression ---------------------------------------------------------------------------


def lzma1(app: bytes, lc: int, lp: int, pb: int, declared: int) -> bytes:
    spec = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": 1 << 16}
    stream = lzma.compress(app, format=lzma.FORMAT_RAW, filters=[spec])
    props = (pb * 5 + lp) * 9 + lc
    return (
        bytes([props]) + (1 << 16).to_bytes(4, "little") + declared.to_bytes(8, "little") + stream
    )


def test_an_lzma1_size_shorter_than_the_stream_cuts_it() -> None:
    payload = lzma1(APP, 3, 0, 2, len(APP) - 7)
    parsed = parse(image(payload, 0x200))
    assert parsed.unchecked == ()
    assert [(d.name, d.data) for d in parsed.derived] == [
        ("mcuboot payload (decompressed LZMA1)", APP[:-7])
    ]


@pytest.mark.parametrize(("lc", "lp", "pb"), [(0, 0, 1), (4, 0, 1), (0, 4, 3)])
def test_lzma1_properties_at_the_pb_edges(lc: int, lp: int, pb: int) -> None:
    payload = lzma1(APP, lc, lp, pb, len(APP))
    parsed = parse(image(payload, 0x200))
    assert parsed.unchecked == ()
    assert parsed.derived[0].data == APP


# --- decryption ------------------------------------------------------------------------------


def test_an_encrypted_image_without_an_encryption_key_tlv() -> None:
    for flag, cipher in ((0x4, "AES-128"), (0x8, "AES-256")):
        payload = ctr(os.urandom(16 if flag == 0x4 else 32), APP)
        parsed = parse(image(payload, flag, plain=APP))
        assert parsed.unchecked == (
            f"{where(payload)} is encrypted: {cipher}, but no encryption-key TLV: cannot be "
            "checked",
        )


def x25519_wrap(public: x25519.X25519PublicKey, image_key: bytes, sha512: bool) -> bytes:
    """imgtool's ECIES-X25519: ephemeral public key, HMAC, AES-CTR-wrapped image key."""
    ephemeral = x25519.X25519PrivateKey.generate()
    shared = ephemeral.exchange(public)
    algorithm: hashes.HashAlgorithm = hashes.SHA512() if sha512 else hashes.SHA256()
    size = len(image_key)
    derived = HKDF(
        algorithm=algorithm,
        length=size + algorithm.digest_size,
        salt=None,
        info=b"MCUBoot_ECIES_v1",
    ).derive(shared)
    cipherkey = ctr(derived[:size], image_key)
    mac = hmac.new(derived[size:], cipherkey, "sha512" if sha512 else "sha256").digest()
    raw = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw + mac + cipherkey


def pem(key: x25519.X25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_an_x25519_sha512_image_key_enc_x25519_sha512() -> None:
    secret = x25519.X25519PrivateKey.generate()
    image_key = os.urandom(16)
    payload = ctr(image_key, APP)
    wrapped = x25519_wrap(secret.public_key(), image_key, sha512=True)
    data = image(payload, 0x4, tlvs=[(0x34, wrapped)], plain=APP)
    assert parse(data).unchecked == (
        f"{where(payload)} is encrypted: AES-128, image key in ENC_X25519_SHA512: give its "
        "decryption key with --mcuboot-enc-key to check it",
    )
    given = parse_enc_key(pem(secret), "enc-x25519.pem")
    parsed = parse(data, McubootOptions(enc_keys=(given,)))
    assert parsed.unchecked == ()
    assert [(d.name, d.data) for d in parsed.derived] == [("mcuboot payload (decrypted)", APP)]


def test_the_image_hash_is_found_after_other_tlvs() -> None:
    kek, image_key = os.urandom(16), os.urandom(16)
    given = parse_enc_key(kek, "kek.bin")
    payload = ctr(image_key, APP)
    wrapped = (0x31, aes_key_wrap(kek, image_key))
    later = image(payload, 0x4, tlvs=[wrapped], plain=APP, hash_first=False)
    parsed = parse(later, McubootOptions(enc_keys=(given,)))
    assert parsed.unchecked == ()
    assert parsed.derived == (
        Derived("mcuboot payload (decrypted)", APP, "mcuboot payload", 0x200),
    )
    assert (parsed.derived[0].source, parsed.derived[0].source_offset) == ("mcuboot payload", 0x200)
    assert parsed.notes == (f"payload decrypted with kek.bin ({fingerprint(kek)})",)
    # no hash TLV at all: decrypted, nothing to check it against
    unhashed = header(len(payload), 0x4) + payload + tlv_area(0x6907, [wrapped])
    assert parse(unhashed, McubootOptions(enc_keys=(given,))).derived[0].data == APP


def test_every_key_tried_is_named() -> None:
    kek, image_key = os.urandom(16), os.urandom(16)
    payload = bytearray(ctr(image_key, APP))
    data = bytearray(image(bytes(payload), 0x4, tlvs=[(0x31, aes_key_wrap(kek, image_key))]))
    data[0x200 + 10] ^= 1  # a damaged payload: the image key unwraps, the hash does not match
    first, second = parse_enc_key(kek, "a.bin"), parse_enc_key(kek, "b.bin")
    parsed = parse(bytes(data), McubootOptions(enc_keys=(first, second)))
    tried = "; ".join(
        f"{name} ({fingerprint(kek)}): decrypts, but not to the image's SHA256"
        for name in ("a.bin", "b.bin")
    )
    assert parsed.unchecked == (
        f"{where(APP)} is encrypted: AES-128, image key in ENC_KW: the --mcuboot-enc-key keys do "
        f"not decrypt it (tried {tried})",
    )
    assert first.source == "a.bin"
    assert first.named == f"a.bin ({fingerprint(kek)})"


def test_an_image_key_of_the_wrong_size_for_the_flags_does_not_open_it() -> None:
    """AES-256 (flag 0x8) needs a 32-byte image key: a 16-byte one does not decrypt it."""
    kek, image_key = os.urandom(16), os.urandom(16)
    payload = ctr(image_key, APP)
    data = image(payload, 0x8, tlvs=[(0x31, aes_key_wrap(kek, image_key))], plain=APP)
    given = parse_enc_key(kek, "kek.bin")
    assert parse(data, McubootOptions(enc_keys=(given,))).unchecked == (
        f"{where(payload)} is encrypted: AES-256, image key in ENC_KW: the --mcuboot-enc-key "
        f"keys do not decrypt it (tried kek.bin ({fingerprint(kek)}))",
    )
    secret = rsa.generate_private_key(65537, 2048)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    wrapped = secret.public_key().encrypt(image_key, oaep)
    data = image(payload, 0x8, tlvs=[(0x30, wrapped)], plain=APP)
    rsa_key = parse_enc_key(pem(secret), "enc-rsa.pem")
    assert parse(data, McubootOptions(enc_keys=(rsa_key,))).unchecked == (
        f"{where(payload)} is encrypted: AES-256, image key in ENC_RSA2048: the --mcuboot-enc-key "
        f"keys do not decrypt it (tried {rsa_key.named})",
    )


def test_an_encryption_key_file_over_64_kib_is_refused(tmp_path: Path) -> None:
    big = kek_file(tmp_path, "big.key", bytes(64 * 1024 + 1))
    with pytest.raises(InputError) as refused:
        load_enc_key(big)
    assert (
        str(refused.value) == f"{big}: MCUboot encryption key too large (65537 bytes, limit 65536)"
    )
    edge = kek_file(tmp_path, "edge.key", bytes(64 * 1024))
    with pytest.raises(InputError) as refused:
        load_enc_key(edge)
    assert str(refused.value) == (
        f"{edge}: no MCUboot encryption key could be read (PEM/DER private key or a 16/32-byte "
        "AES key)"
    )


# --- readers ---------------------------------------------------------------------------------


def ihex(runs: list[tuple[int, bytes]], *, eof: bool = True) -> bytes:
    """Intel HEX: an extended linear address record per run, 16-byte data records."""

    def record(kind: int, address: int, data: bytes) -> bytes:
        body = bytes([len(data), address >> 8 & 0xFF, address & 0xFF, kind]) + data
        return b":" + (body + bytes([-sum(body) & 0xFF])).hex().upper().encode() + b"\n"

    out = b""
    for start, data in runs:
        for at in range(0, len(data), 16):
            address = start + at
            out += record(4, 0, (address >> 16).to_bytes(2, "big"))
            out += record(0, address & 0xFFFF, data[at : at + 16])
    return out + (record(1, 0, b"") if eof else b"")


def test_an_empty_file() -> None:
    (empty,) = read_bytes(b"", "fw.bin", Options())
    assert empty == Image("fw.bin", "empty", 0, ())
    assert (empty.path, empty.format, empty.size, empty.segments) == ("fw.bin", "empty", 0, ())


def test_a_hex_file_read_as_a_file_or_as_an_archive_member() -> None:
    text = ihex([(0x1000, APP[:64])])
    (top,) = read_bytes(text, "fw.hex", Options())
    assert top.format == "intel-hex"
    assert top.hex_file == "fw.hex"  # its records' lines can be read again from the file
    assert top.segments == (Segment(0x1000, APP[:64]),)  # clean: no text segment
    assert top.unchecked == ()
    (member,) = read_bytes(text, "fw.hex", Options(), depth=1)
    assert member.hex_file is None  # an archive member: no file to re-read
    (named_txt,) = read_bytes(text, "fw.txt", Options())
    assert named_txt.format == "intel-hex"  # by its content
    (upper,) = read_bytes(b"not a record\n", "FW.HEX", Options())
    assert upper.format == "intel-hex"  # by its name, in any case
    assert upper.segments[-1].section == "Intel HEX text"


def test_a_hex_file_without_data_or_without_its_end() -> None:
    (empty,) = read_bytes(ihex([]), "fw.hex", Options())
    assert empty.unchecked == (Unchecked("fw.hex", "Intel HEX file holds no data records"),)
    (cut,) = read_bytes(ihex([(0, APP[:32])], eof=False), "fw.hex", Options())
    assert cut.unchecked == (
        Unchecked(
            "fw.hex",
            "no end-of-file record: the file may be truncated; the rest of the file was searched "
            "as records and as text",
        ),
    )


def test_an_mcuboot_image_in_a_hex_file_is_named_by_flash_address() -> None:
    data = image(APP)
    tlv_at = 0x200 + len(APP)
    (read,) = read_bytes(ihex([(0x10000, data)]), "fw.hex", Options())
    assert read.unchecked == ()
    assert read.segments == (
        Segment(
            0x10000,
            data,
            section="mcuboot image",
            regions=(
                Region(0, 0x200, "mcuboot header", 0x10000),
                Region(0x200, tlv_at, "mcuboot payload", 0x10200),
                Region(tlv_at, len(data), "mcuboot TLVs", 0x10000 + tlv_at),
            ),
        ),
    )
    cut = data[:0x300]
    (read,) = read_bytes(ihex([(0x10000, cut)]), "fw.hex", Options())
    assert read.unchecked == (
        Unchecked(
            "fw.hex",
            "MCUboot image at 0x00010000: truncated MCUboot image: the header says "
            f"{tlv_at} bytes of header and payload, the image has {0x300}",
        ),
    )


def test_an_mcuboot_file_is_named_by_its_parts() -> None:
    data = image(APP)
    tlv_at = 0x200 + len(APP)
    (read,) = read_bytes(data, "app.signed.bin", Options(base_address=0x8000))
    assert read.format == "mcuboot"
    assert read.segments == (
        Segment(
            0x8000,
            data,
            section="mcuboot image",
            file_offset=0,
            regions=(
                Region(0, 0x200, "mcuboot header", 0x8000),
                Region(0x200, tlv_at, "mcuboot payload", 0x8200),
                Region(tlv_at, len(data), "mcuboot TLVs", 0x8000 + tlv_at),
            ),
        ),
    )
    # a header that cannot be read names no part, and no part of the file is "mcuboot image"
    bad = header(4, hdr_size=16) + b"body" + tlv_area(0x6907, [])
    (malformed,) = read_bytes(bad, "app.signed.bin", Options(base_address=0x8000))
    assert malformed.segments == (Segment(0x8000, bad, file_offset=0),)
    assert malformed.unchecked == (
        Unchecked("app.signed.bin", "malformed MCUboot header: header size 16 < 32"),
    )
    # a file: its reasons name no flash address (the finding names the file offset)
    (cut,) = read_bytes(data[:0x300], "app.signed.bin", Options(base_address=0x8000))
    assert cut.unchecked == (
        Unchecked(
            "app.signed.bin",
            f"truncated MCUboot image: the header says {tlv_at} bytes of header and payload, "
            f"the image has {0x300}",
        ),
    )


def test_derived_payloads_are_segments_named_by_what_was_done(tmp_path: Path) -> None:
    compressed = image(lzma1(APP, 3, 0, 2, len(APP)), 0x200)
    (read,) = read_bytes(compressed, "app.bin", Options())
    assert read.segments[1:] == (
        Segment(None, APP, section="mcuboot payload (decompressed LZMA1)"),
    )
    kek, image_key = os.urandom(16), os.urandom(16)
    payload = ctr(image_key, APP)
    data = image(payload, 0x4, tlvs=[(0x31, aes_key_wrap(kek, image_key))], plain=APP)
    given = load_enc_key(kek_file(tmp_path, "kek.bin", kek))
    (read,) = read_bytes(data, "app.bin", Options(mcuboot=McubootOptions(enc_keys=(given,))))
    assert read.unchecked == ()
    assert read.notes == (f"payload decrypted with {tmp_path / 'kek.bin'} ({fingerprint(kek)})",)
    assert read.segments[1:] == (Segment(None, APP, section="mcuboot payload (decrypted)"),)


def test_binary_and_text_raw_files() -> None:
    (binary,) = read_bytes(b"ab\0cd", "fw.bin", Options(base_address=0x100))
    assert binary == Image("fw.bin", "raw", 5, (Segment(0x100, b"ab\0cd", file_offset=0),))
    (text,) = read_bytes(b"abcd", "fw.bin", Options())
    assert text.format == "text"


# --- ELF files laid out here -----------------------------------------------------------------

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
PT_LOAD, PT_NOTE, PT_ARM_EXIDX = 1, 4, 0x70000001
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3


@dataclass
class Elf:
    """An ELF32 little-endian file: section data from byte 0x100, then .symtab, .strtab,
    .shstrtab and the section header table."""

    sections: list[tuple[str, int, int, bytes]]  # name, flags, sh_addr, data (PROGBITS)
    loads: list[tuple[int, str, str, int]] = field(default_factory=list)  # type, first, last, paddr
    symbols: list[tuple[str, int, int, int, str]] = field(default_factory=list)  # name, value,
    # size, type, section
    e_type: int = 2  # ET_EXEC; 1 is ET_REL
    offsets: dict[str, int] = field(default_factory=dict)

    def build(self, *, shnum: int | None = None) -> bytes:
        at = 0x100
        body = b""
        for name, _, _, data in self.sections:
            self.offsets[name] = at + len(body)
            body += data
        index = {name: i + 1 for i, (name, _, _, _) in enumerate(self.sections)}
        strtab = b"\0"
        symtab = bytes(16)
        for name, value, size, kind, section in self.symbols:
            symtab += struct.pack("<IIIBBH", len(strtab), value, size, kind, 0, index[section])
            strtab += name.encode() + b"\0"
        names = [s[0] for s in self.sections] + [".symtab", ".strtab", ".shstrtab"]
        shstrtab = b"\0" + b"".join(n.encode() + b"\0" for n in names)
        name_at = {n: shstrtab.index(b"\0" + n.encode() + b"\0") + 1 for n in names}
        symtab_at = at + len(body)
        strtab_at = symtab_at + len(symtab)
        shstrtab_at = strtab_at + len(strtab)
        shoff = (shstrtab_at + len(shstrtab) + 3) & ~3
        headers = bytes(40)
        for name, flags, addr, data in self.sections:
            headers += struct.pack(
                "<10I", name_at[name], 1, flags, addr, self.offsets[name], len(data), 0, 0, 4, 0
            )
        first_strtab = len(self.sections) + 2
        headers += struct.pack(
            "<10I", name_at[".symtab"], 2, 0, 0, symtab_at, len(symtab), first_strtab, 1, 4, 16
        )
        headers += struct.pack(
            "<10I", name_at[".strtab"], 3, 0, 0, strtab_at, len(strtab), 0, 0, 1, 0
        )
        headers += struct.pack(
            "<10I", name_at[".shstrtab"], 3, 0, 0, shstrtab_at, len(shstrtab), 0, 0, 1, 0
        )
        count = len(self.sections) + 4
        phdrs = b""
        for p_type, first, last, paddr in self.loads:
            start = self.offsets[first]
            size = self.offsets[last] + len(self.section(last)[3]) - start
            vaddr = self.section(first)[2]
            phdrs += struct.pack("<8I", p_type, start, vaddr, paddr, size, size, 5, 4)
        ident = b"\x7fELF\x01\x01\x01".ljust(16, b"\0")
        elf_header = ident + struct.pack(
            "<HHIIIIIHHHHHH",
            self.e_type,
            40,  # EM_ARM
            1,
            0,
            52 if self.loads else 0,
            shoff,
            0x05000000,
            52,
            32,
            len(self.loads),
            40,
            count if shnum is None else shnum,
            count - 1,
        )
        head = (elf_header + phdrs).ljust(at, b"\0")
        tables = (body + symtab + strtab + shstrtab).ljust(shoff - at, b"\0")
        return head + tables + headers

    def section(self, name: str) -> tuple[str, int, int, bytes]:
        return next(s for s in self.sections if s[0] == name)


def firmware() -> Elf:
    return Elf(
        sections=[
            (".text", SHF_ALLOC | SHF_EXECINSTR, 0x0, bytes(0x40)),
            (".rodata", SHF_ALLOC, 0x40, bytes(0x60)),
            (".data", SHF_ALLOC | SHF_WRITE, 0x20000000, bytes(0x20)),  # copied from flash
            (".comment", 0, 0, b"GCC: 12.2\0".ljust(16, b"\0")),
        ],
        loads=[
            (PT_ARM_EXIDX, ".rodata", ".rodata", 0x40),  # not loaded as such
            (PT_LOAD, ".text", ".rodata", 0x0),
            (PT_LOAD, ".data", ".data", 0x100),  # its LMA, aligned: not where .rodata ends (0xA0)
        ],
        symbols=[
            ("$t", 0x0, 0, STT_NOTYPE, ".text"),
            ("main", 0x11, 8, STT_FUNC, ".text"),  # Thumb: bit 0 set
            ("reset", 0x22, 6, STT_FUNC, ".text"),
            ("$d", 0x40, 0, STT_NOTYPE, ".rodata"),
            ("key_head", 0x50, 16, STT_OBJECT, ".rodata"),
            ("key", 0x50, 48, STT_OBJECT, ".rodata"),
            ("label", 0x80, 0, STT_NOTYPE, ".rodata"),
            (".rodata", 0x40, 0, STT_SECTION, ".rodata"),
            ("counter", 0x20000004, 4, STT_OBJECT, ".data"),
        ],
    )


def test_elf_sections_symbols_and_flash_addresses() -> None:
    elf = firmware()
    data = elf.build()
    at = elf.offsets
    assert at[".data"] == at[".rodata"] + 0x60  # .data starts where the first load ends
    layout = elf_layout(data)
    assert layout.problems == ()
    assert layout.notes == ()
    text, rodata, dat, comment = layout.regions[:4]
    assert text == Region(
        at[".text"],
        at[".text"] + 0x40,
        ".text",
        0x0,
        (Symbol("main", 0x10, 8), Symbol("reset", 0x22, 6)),
    )
    assert rodata == Region(
        at[".rodata"],
        at[".rodata"] + 0x60,
        ".rodata",
        0x40,
        (Symbol("key", 0x10, 48), Symbol("key_head", 0x10, 16), Symbol("label", 0x40, 0)),
    )
    assert dat == Region(
        at[".data"], at[".data"] + 0x20, ".data", 0x100, (Symbol("counter", 4, 4),)
    )
    assert comment == Region(at[".comment"], at[".comment"] + 16, ".comment", None)
    tables = [(r.section, r.address) for r in layout.regions[4:7]]
    assert tables == [(".symtab", None), (".strtab", None), (".shstrtab", None)]
    assert layout.regions[7:] == (
        Region(at[".text"], at[".data"], "PT_LOAD[1]", 0x0),
        Region(at[".data"], at[".data"] + 0x20, "PT_LOAD[2]", 0x100),
    )
    (read,) = read_bytes(data, "zephyr.elf", Options(base_address=0x1000))
    assert read.format == "elf"
    assert read.segments == (Segment(None, data, file_offset=0, regions=layout.regions),)


def test_elf_sections_without_program_headers_or_in_an_object_file() -> None:
    elf = firmware()
    elf.loads = []
    layout = elf_layout(elf.build())
    assert [(r.section, r.address) for r in layout.regions[:4]] == [
        (".text", 0x0),
        (".rodata", 0x40),
        (".data", 0x20000000),  # no load: its own address
        (".comment", None),
    ]
    elf.e_type = 1  # ET_REL: addresses are not assigned yet
    layout = elf_layout(elf.build())
    assert [(r.section, r.address) for r in layout.regions[:4]] == [
        (".text", None),
        (".rodata", None),
        (".data", None),
        (".comment", None),
    ]


def test_an_elf_with_program_headers_only() -> None:
    elf = firmware()
    data = elf.build()
    loads = [r for r in elf_layout(data).regions if r.section and r.section.startswith("PT_")]
    end = elf.offsets[".data"] + 0x20
    stripped = bytearray(data[:end])  # ends with the last load
    struct.pack_into("<I", stripped, 32, 0)  # e_shoff
    struct.pack_into("<HH", stripped, 48, 0, 0)  # e_shnum, e_shstrndx
    layout = elf_layout(bytes(stripped))
    assert layout.problems == ()
    assert layout.notes == ("ELF section headers missing: named by program headers",)
    assert list(layout.regions) == loads
    no_count = bytearray(data)
    struct.pack_into("<H", no_count, 48, 0)  # e_shnum 0, e_shoff still set
    layout = elf_layout(bytes(no_count))
    assert layout.notes == ("ELF section headers missing: named by program headers",)
    assert list(layout.regions) == loads


def pyelftools_reason(exc: BaseException) -> str:
    first = str(exc).splitlines()[0][:80] if str(exc) else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def test_an_elf_whose_symbol_table_cannot_be_read_is_named_by_its_loads() -> None:
    elf = firmware()
    data = bytearray(elf.build())
    shoff, shnum = struct.unpack_from("<I", data, 32)[0], len(elf.sections) + 4
    symtab = shoff + (len(elf.sections) + 1) * 40
    struct.pack_into("<I", data, symtab + 24, 200)  # sh_link: a string table that is not there
    assert shnum == struct.unpack_from("<H", data, 48)[0]
    with pytest.raises(Exception) as failed:  # noqa: PT011 - pyelftools' own error, whatever it is
        ELFFile(io.BytesIO(bytes(data))).get_section_by_name(".symtab")
    layout = elf_layout(bytes(data))
    assert layout.problems == (
        f"ELF section headers not read ({pyelftools_reason(failed.value)}): the whole file was "
        "searched as raw bytes",
    )
    assert layout.notes == ("named by program headers",)
    assert [r.section for r in layout.regions] == ["PT_LOAD[1]", "PT_LOAD[2]"]


def test_a_file_that_is_no_elf_past_its_magic() -> None:
    data = b"\x7fELF" + bytes(12)
    with pytest.raises(Exception) as failed:  # noqa: PT011 - pyelftools' own error
        ELFFile(io.BytesIO(data))
    layout = elf_layout(data)
    assert layout.regions == ()
    assert layout.problems == (
        f"ELF structure not read ({pyelftools_reason(failed.value)}): the whole file was searched "
        "as raw bytes",
    )
