"""MCUboot images taken apart: header, payload, TLV areas, and the payload as it will run.

How to use it::

    keys = (load_enc_key(Path("enc-key.pem")),)            # --mcuboot-enc-key, repeatable
    if is_mcuboot(data):
        image = parse(data, McubootOptions(enc_keys=keys))
        search(image.whole)                                  # the file bytes, as one run
        for hit in hits:                                     # name a hit by the part(s) it is in
            section = image.part_at(hit.start, hit.length)   # "mcuboot header+mcuboot payload"
        for derived in image.derived:                        # decompressed / decrypted payload
            search(derived.data)                             # offsets are in derived.data
        for reason in image.unchecked:                       # NOT CLEAN: say why
            report_unchecked(reason)

`parse` never raises on image content: a truncated or malformed image keeps its `whole` bytes (to
be searched raw) and lists the reason in `unchecked`. `parts` are the image's regions in file order
with their offsets: "mcuboot header", "mcuboot payload", "mcuboot protected TLVs", "mcuboot TLVs",
"after the mcuboot TLVs" (padding, a trailer); when the TLV area cannot be parsed, everything after
the payload is one part, "mcuboot TLV area (malformed)". Search `whole` once rather than each
part so a key across a boundary (header/payload, payload/TLVs) is found; name it with `part_at`.

Compressed payloads (flags 0x400 LZMA2, 0x200 LZMA1, 0x800 ARM Thumb filter) are decompressed as
imgtool writes them and MCUboot/nrf_compress reads them: LZMA2 is a 2-byte header (dictionary
size byte, lc/lp/pb byte) and a raw LZMA2 stream; LZMA1 is the 13-byte .lzma header (properties,
dictionary size, uncompressed size) and a raw LZMA1 stream; the ARM Thumb BCJ filter applies
after decompression. The output is bounded by `McubootOptions.max_payload_bytes`.

Encrypted payloads (flags 0x4 AES-128, 0x8 AES-256) stay unchecked unless a key given with
`--mcuboot-enc-key` unwraps the image key from its TLV, as imgtool wraps it: ENC_RSA2048 (0x30,
RSA-OAEP with SHA-256), ENC_KW (0x31, AES key wrap with a 16/32-byte key-encryption key),
ENC_EC256 (0x32, ECIES-P256) and ENC_X25519 (0x33; 0x34 with SHA-512): ephemeral public key,
HMAC, wrapped key; HKDF (no salt, info "MCUBoot_ECIES_v1") gives the AES key and the HMAC key.
The payload is AES-CTR with a zero nonce. A decrypted payload is checked against the image's hash
TLV; a key that does not fit is an unchecked reason naming the key by file and fingerprint.

Big-endian images (imgtool --endian big) are not recognised: `is_mcuboot` is false for them.
"""

from __future__ import annotations

import hashlib
import hmac
import lzma
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provguard.errors import InputError
from provguard.scan.walk import display, read_small_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes

# `cryptography` and `provguard.credentials` are imported by the functions that load or use a
# decryption key: an MCUboot image that is not encrypted (and any other file) never needs them.

# mirrors mcu-tools/mcuboot boot/bootutil/include/bootutil/image.h and imgtool/image.py
MAGIC = 0x96F3B83D
HEADER = struct.Struct("<IIHHIIBBHII")  # magic, load_addr, hdr_size, protect_tlv_size, img_size,
# flags, version major, minor, revision, build_num, pad
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908

F_ENCRYPTED_AES128 = 0x004
F_ENCRYPTED_AES256 = 0x008
F_COMPRESSED_LZMA1 = 0x200
F_COMPRESSED_LZMA2 = 0x400
F_COMPRESSED_ARM_THUMB = 0x800

TLV_NAMES = {
    0x01: "KEYHASH",
    0x02: "PUBKEY",
    0x10: "SHA256",
    0x11: "SHA384",
    0x12: "SHA512",
    0x20: "RSA2048",
    0x22: "ECDSASIG",
    0x23: "RSA3072",
    0x24: "ED25519",
    0x25: "SIG_PURE",
    0x30: "ENC_RSA2048",
    0x31: "ENC_KW",
    0x32: "ENC_EC256",
    0x33: "ENC_X25519",
    0x34: "ENC_X25519_SHA512",
    0x40: "DEPENDENCY",
    0x50: "SEC_CNT",
    0x60: "BOOT_RECORD",
    0x70: "DECOMP_SIZE",
    0x71: "DECOMP_SHA",
    0x72: "DECOMP_SIGNATURE",
    0x73: "COMP_DEC_SIZE",
}
_HASHES = {0x10: "sha256", 0x11: "sha384", 0x12: "sha512"}
_ENC_TLVS = (0x30, 0x31, 0x32, 0x33, 0x34)
_ECIES_INFO = b"MCUBoot_ECIES_v1"

HEADER_PART = "mcuboot header"
PAYLOAD_PART = "mcuboot payload"
PROTECTED_PART = "mcuboot protected TLVs"
TLV_PART = "mcuboot TLVs"
AFTER_PART = "after the mcuboot TLVs"
MALFORMED_PART = "mcuboot TLV area (malformed)"


@dataclass(frozen=True)
class Header:
    load_addr: int
    hdr_size: int
    protect_tlv_size: int
    img_size: int
    flags: int
    version: str

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & (F_ENCRYPTED_AES128 | F_ENCRYPTED_AES256))

    @property
    def compressed(self) -> bool:
        return bool(self.flags & (F_COMPRESSED_LZMA1 | F_COMPRESSED_LZMA2 | F_COMPRESSED_ARM_THUMB))


@dataclass(frozen=True)
class Tlv:
    """One TLV: `offset` of its value in the image, `length` of the value."""

    tag: int
    offset: int
    length: int
    protected: bool

    @property
    def name(self) -> str:
        return TLV_NAMES.get(self.tag, f"0x{self.tag:02x}")


@dataclass(frozen=True)
class Part:
    """A region of the image file: `data` is `whole[offset : offset + len(data)]`."""

    name: str
    offset: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Derived:
    """Bytes the image does not hold as such: the payload decrypted and/or decompressed.

    Offsets of hits in `data` are offsets in that derived payload, not in the file; `source` is
    the part it comes from (at `source_offset` in the file).
    """

    name: str
    data: bytes = field(repr=False)
    source: str = PAYLOAD_PART
    source_offset: int = 0


@dataclass(frozen=True)
class McubootImage:
    size: int
    header: Header | None
    whole: bytes = field(repr=False)
    parts: tuple[Part, ...]
    tlvs: tuple[Tlv, ...]
    derived: tuple[Derived, ...]
    unchecked: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what was done: "payload decrypted with ... SHA256:..."

    def part_at(self, offset: int, length: int = 1) -> str | None:
        """The part(s) holding `whole[offset : offset + length]`, joined by "+"; None outside."""
        end = offset + max(length, 1)
        names = [p.name for p in self.parts if p.offset < end and offset < p.offset + len(p.data)]
        return "+".join(names) if names else None


@dataclass(frozen=True)
class EncKey:
    """An image-decryption key given by the user; never printed (named by file and fingerprint)."""

    source: str  # the file, escaped for display
    fingerprint: str  # "SHA256:..." of the public key (of the key itself for an AES-KW key)
    kind: str  # "rsa", "ec-p256", "x25519", "aes-kw"
    secret: object = field(repr=False, compare=False)

    @property
    def named(self) -> str:
        return f"{self.source} ({self.fingerprint})"


@dataclass(frozen=True)
class McubootOptions:
    """`enc_keys`: from --mcuboot-enc-key (repeatable). `max_payload_bytes` (64 MiB): the bound
    on a decompressed payload; past it the payload is unchecked (nRF91 images are < 1 MiB)."""

    enc_keys: tuple[EncKey, ...] = ()
    max_payload_bytes: int = 64 * 1024 * 1024


def is_mcuboot(data: bytes) -> bool:
    """Whether `data` starts with the MCUboot image magic (little-endian)."""
    return len(data) >= 4 and int.from_bytes(data[:4], "little") == MAGIC


# ---------------------------------------------------------------------------------------------
# keys


def load_enc_key(path: Path) -> EncKey:
    """The image-decryption key in `path` (PEM/DER RSA, P-256 or X25519 private key, or a raw
    16/32-byte AES key-wrap key); an `InputError` naming the file otherwise. Never blocks on a
    FIFO or device (see `walk.read_small_file`)."""
    data = read_small_file(path, 64 * 1024, what="MCUboot encryption key")
    return parse_enc_key(data, display(path))


def parse_enc_key(data: bytes, source: str) -> EncKey:
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519  # noqa: PLC0415

    from provguard.credentials import key_fingerprint  # noqa: PLC0415

    key: object = None
    for loader in (serialization.load_pem_private_key, serialization.load_der_private_key):
        try:
            key = loader(data, None)
            break
        except TypeError:
            raise InputError(
                "MCUboot encryption key is password-protected: give it unencrypted", path=source
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            continue
    if isinstance(key, rsa.RSAPrivateKey):
        return EncKey(source, key_fingerprint(key), "rsa", key)
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return EncKey(source, key_fingerprint(key), "ec-p256", key)
    if isinstance(key, x25519.X25519PrivateKey):
        return EncKey(source, key_fingerprint(key), "x25519", key)
    if key is not None:
        raise InputError(
            "not an MCUboot encryption key (RSA, EC P-256 or X25519 expected)", path=source
        )
    if len(data) in (16, 32):
        digest = "SHA256:" + hashlib.sha256(data).hexdigest()
        return EncKey(source, digest, "aes-kw", bytes(data))
    raise InputError(
        "no MCUboot encryption key could be read (PEM/DER private key or a 16/32-byte AES key)",
        path=source,
    )


# ---------------------------------------------------------------------------------------------
# parsing


def parse(data: bytes, options: McubootOptions | None = None) -> McubootImage:
    """The image in `data` taken apart; see the module doc. Never raises on content."""
    options = options or McubootOptions()
    size = len(data)
    if size < HEADER.size or not is_mcuboot(data):
        reason = (
            f"truncated MCUboot image: {size} bytes, the header alone is {HEADER.size}"
            if is_mcuboot(data) or size < HEADER.size
            else "not an MCUboot image (no header magic)"
        )
        return McubootImage(size, None, data, (), (), (), (reason,))
    fields = HEADER.unpack_from(data)
    header = Header(
        load_addr=fields[1],
        hdr_size=fields[2],
        protect_tlv_size=fields[3],
        img_size=fields[4],
        flags=fields[5],
        version=f"{fields[6]}.{fields[7]}.{fields[8]}+{fields[9]}",
    )
    payload_end = header.hdr_size + header.img_size
    if header.hdr_size < HEADER.size:
        reason = f"malformed MCUboot header: header size {header.hdr_size} < {HEADER.size}"
        return McubootImage(size, header, data, (), (), (), (reason,))
    if payload_end > size:
        reason = (
            f"truncated MCUboot image: the header says {payload_end} bytes of header and "
            f"payload, the image has {size}"
        )
        head = (Part(HEADER_PART, 0, data[: header.hdr_size]),)
        return McubootImage(size, header, data, head, (), (), (reason,))
    unchecked: list[str] = []
    tlvs, tlv_end, problem = _tlv_areas(data, header)
    if problem is not None:
        unchecked.append(problem)
    parts = [
        Part(HEADER_PART, 0, data[: header.hdr_size]),
        Part(PAYLOAD_PART, header.hdr_size, data[header.hdr_size : payload_end]),
    ]
    prot_end = payload_end + header.protect_tlv_size
    if problem is not None:
        if size > payload_end:
            parts.append(Part(MALFORMED_PART, payload_end, data[payload_end:]))
    else:
        if prot_end > payload_end:
            parts.append(Part(PROTECTED_PART, payload_end, data[payload_end:prot_end]))
        parts.append(Part(TLV_PART, prot_end, data[prot_end:tlv_end]))
        if size > tlv_end:
            parts.append(Part(AFTER_PART, tlv_end, data[tlv_end:]))
    derived, more, notes = _payload(data, header, tlvs, prot_end, options)
    unchecked += more
    return McubootImage(
        size, header, data, tuple(parts), tuple(tlvs), tuple(derived), tuple(unchecked), notes
    )


def _tlv_areas(data: bytes, header: Header) -> tuple[list[Tlv], int, str | None]:
    """The TLVs after the payload, where the TLV area ends, and what is wrong with it."""
    at = header.hdr_size + header.img_size
    tlvs: list[Tlv] = []
    areas = [(TLV_PROT_INFO_MAGIC, True)] if header.protect_tlv_size else []
    areas.append((TLV_INFO_MAGIC, False))
    for magic, protected in areas:
        if at + 4 > len(data):
            return tlvs, at, f"truncated MCUboot image: no TLV area at offset 0x{at:x}"
        found, total = struct.unpack_from("<HH", data, at)
        if found != magic:
            what = "protected TLV area" if protected else "TLV area"
            return tlvs, at, f"malformed MCUboot image: no {what} (magic 0x{magic:04x}) at 0x{at:x}"
        if protected and total != header.protect_tlv_size:
            return tlvs, at, "malformed MCUboot image: protected TLV size differs from the header"
        end = at + total
        if end > len(data) or total < 4:
            return tlvs, at, f"truncated MCUboot image: the TLV area at 0x{at:x} ends past the file"
        cursor = at + 4
        while cursor < end:
            if cursor + 4 > end:
                return tlvs, end, f"malformed MCUboot TLV at 0x{cursor:x}"
            tag, length = struct.unpack_from("<HH", data, cursor)
            if cursor + 4 + length > end:
                return tlvs, end, f"malformed MCUboot TLV at 0x{cursor:x}: runs past its area"
            tlvs.append(Tlv(tag, cursor + 4, length, protected))
            cursor += 4 + length
        at = end
    return tlvs, at, None


def _value(data: bytes, tlvs: list[Tlv], tag: int) -> bytes | None:
    for tlv in tlvs:
        if tlv.tag == tag:
            return data[tlv.offset : tlv.offset + tlv.length]
    return None


def _payload(
    data: bytes, header: Header, tlvs: list[Tlv], prot_end: int, options: McubootOptions
) -> tuple[list[Derived], list[str], tuple[str, ...]]:
    """The payload as it runs: decrypted, then decompressed; with what could not be done."""
    start, end = header.hdr_size, header.hdr_size + header.img_size
    payload = data[start:end]
    derived: list[Derived] = []
    notes: list[str] = []
    where = f"MCUboot payload at offset 0x{start:x} ({header.img_size} bytes)"
    if header.encrypted:
        plain, reason = _decrypt(data, header, tlvs, prot_end, options.enc_keys)
        if plain is None:
            return derived, [f"{where} is encrypted: {reason}"], ()
        notes.append(f"payload decrypted with {reason}")
        derived.append(Derived("mcuboot payload (decrypted)", plain, PAYLOAD_PART, start))
        payload = plain
    if header.compressed:
        out, reason = _decompress(payload, header, tlvs, data, options.max_payload_bytes)
        if out is None:
            return derived, [f"{where} is compressed and could not be read: {reason}"], tuple(notes)
        derived.append(
            Derived(f"mcuboot payload (decompressed {reason})", out, PAYLOAD_PART, start)
        )
    return derived, [], tuple(notes)


# ---------------------------------------------------------------------------------------------
# decompression


@dataclass(frozen=True)
class _Lzma:
    filters: tuple[dict[str, int], ...]
    stream: bytes
    how: str
    declared: int | None  # the uncompressed size the LZMA1 header states


def _lzma(payload: bytes, flags: int) -> _Lzma | str:
    """The raw LZMA stream of a compressed payload and how to decode it, or what is wrong."""
    lzma1, lzma2 = bool(flags & F_COMPRESSED_LZMA1), bool(flags & F_COMPRESSED_LZMA2)
    if lzma1 == lzma2:
        return "the flags name no single LZMA format (0x200 LZMA1 or 0x400 LZMA2)"
    thumb = bool(flags & F_COMPRESSED_ARM_THUMB)
    first = ({"id": lzma.FILTER_ARMTHUMB},) if thumb else ()
    suffix = " + ARM Thumb filter" if thumb else ""
    if lzma2:  # nrf_compress LZMA2_HEADER_SIZE: dictionary size byte, lc/lp/pb byte
        if len(payload) < 2 or payload[0] > 40:
            return "malformed LZMA2 header"
        dict_size = (2 | (payload[0] & 1)) << (payload[0] // 2 + 11)
        lzma2_filter = {"id": lzma.FILTER_LZMA2, "dict_size": dict_size}
        return _Lzma((*first, lzma2_filter), payload[2:], "LZMA2" + suffix, None)
    # LZMA1: LZMA_PROPS_SIZE (properties byte, dictionary size) and the 64-bit size
    if len(payload) < 13 or payload[0] >= 9 * 5 * 5:
        return "malformed LZMA1 header"
    props = payload[0]
    size = int.from_bytes(payload[5:13], "little")
    lzma1_filter = {
        "id": lzma.FILTER_LZMA1,
        "lc": props % 9,
        "lp": (props // 9) % 5,
        "pb": props // 45,
        "dict_size": int.from_bytes(payload[1:5], "little"),
    }
    declared = None if size == (1 << 64) - 1 else size
    return _Lzma((*first, lzma1_filter), payload[13:], "LZMA1" + suffix, declared)


def _decompress(
    payload: bytes, header: Header, tlvs: list[Tlv], data: bytes, limit: int
) -> tuple[bytes | None, str]:
    """(bytes, how) or (None, why not), at most `limit` bytes decompressed."""
    plan = _lzma(payload, header.flags)
    if isinstance(plan, str):
        return None, plan
    try:
        decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=list(plan.filters))
        out = decoder.decompress(plan.stream, max_length=limit + 1)
    except lzma.LZMAError:
        return None, f"corrupt {plan.how} stream"
    if len(out) > limit:
        return None, f"decompresses to more than the limit of {limit} bytes"
    declared = plan.declared
    size_tlv = _value(data, tlvs, 0x70)  # DECOMP_SIZE
    if size_tlv is not None and len(size_tlv) == 4:
        declared = int.from_bytes(size_tlv, "little")
    if declared is not None:
        if len(out) < declared:
            return None, (
                f"{plan.how} stream ends after {len(out)} of {declared} bytes "
                "(corrupt or truncated)"
            )
        return out[:declared], plan.how
    if not decoder.eof:
        return None, f"{plan.how} stream ends early (corrupt or truncated)"
    return out, plan.how


# ---------------------------------------------------------------------------------------------
# decryption


def _decrypt(
    data: bytes, header: Header, tlvs: list[Tlv], prot_end: int, keys: tuple[EncKey, ...]
) -> tuple[bytes | None, str]:
    """(plaintext payload, "key named") or (None, why not)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: PLC0415

    aes = 16 if header.flags & F_ENCRYPTED_AES128 else 32
    cipher = "AES-128" if aes == 16 else "AES-256"
    enc = [t for t in tlvs if t.tag in _ENC_TLVS]
    if not enc:
        return None, f"{cipher}, but no encryption-key TLV: cannot be checked"
    tlv = enc[0]
    wrapped = data[tlv.offset : tlv.offset + tlv.length]
    kind = {0x30: "rsa", 0x31: "aes-kw", 0x32: "ec-p256", 0x33: "x25519", 0x34: "x25519"}[tlv.tag]
    what = f"{cipher}, image key in {tlv.name}"
    if not keys:
        return None, f"{what}: give its decryption key with --mcuboot-enc-key to check it"
    fitting = [k for k in keys if k.kind == kind]
    if not fitting:
        return None, f"{what}: none of the --mcuboot-enc-key keys is a {kind} key"
    start, end = header.hdr_size, header.hdr_size + header.img_size
    hash_tag = next((t for t in tlvs if t.tag in _HASHES and not t.protected), None)
    tried: list[str] = []
    for key in fitting:
        image_key = _unwrap(tlv.tag, wrapped, key, aes)
        if image_key is None:
            tried.append(key.named)
            continue
        decryptor = Cipher(algorithms.AES(image_key), modes.CTR(bytes(16))).decryptor()
        plain = decryptor.update(data[start:end]) + decryptor.finalize()
        if hash_tag is not None:
            digest = hashlib.new(_HASHES[hash_tag.tag])
            digest.update(data[:start])
            digest.update(plain)
            digest.update(data[end:prot_end])
            expected = data[hash_tag.offset : hash_tag.offset + hash_tag.length]
            if not hmac.compare_digest(digest.digest(), expected):
                tried.append(f"{key.named}: decrypts, but not to the image's {hash_tag.name}")
                continue
        return plain, key.named
    return None, f"{what}: the --mcuboot-enc-key keys do not decrypt it (tried {'; '.join(tried)})"


def _unwrap(tag: int, wrapped: bytes, key: EncKey, aes: int) -> bytes | None:
    """The image's AES key from its TLV, or None when this key does not open it."""
    from cryptography.exceptions import InvalidKey, InvalidTag, UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519  # noqa: PLC0415
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap  # noqa: PLC0415

    secret = key.secret
    try:
        if tag == 0x30 and isinstance(secret, rsa.RSAPrivateKey):
            plain = secret.decrypt(
                wrapped,
                padding.OAEP(
                    mgf=padding.MGF1(algorithm=hashes.SHA256()),
                    algorithm=hashes.SHA256(),
                    label=None,
                ),
            )
            return plain if len(plain) == aes else None
        if tag == 0x31 and isinstance(secret, bytes):
            plain = aes_key_unwrap(secret, wrapped)
            return plain if len(plain) == aes else None
        if tag == 0x32 and isinstance(secret, ec.EllipticCurvePrivateKey):
            if len(wrapped) != 65 + 32 + aes:
                return None
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), wrapped[:65])
            shared = secret.exchange(ec.ECDH(), peer)
            return _ecies(shared, wrapped[65:97], wrapped[97:], hashes.SHA256(), aes)
        if tag in (0x33, 0x34) and isinstance(secret, x25519.X25519PrivateKey):
            algorithm: hashes.HashAlgorithm = hashes.SHA256() if tag == 0x33 else hashes.SHA512()
            mac_len = algorithm.digest_size
            if len(wrapped) != 32 + mac_len + aes:
                return None
            peer_x = x25519.X25519PublicKey.from_public_bytes(wrapped[:32])
            shared = secret.exchange(peer_x)
            mac, cipherkey = wrapped[32 : 32 + mac_len], wrapped[32 + mac_len :]
            return _ecies(shared, mac, cipherkey, algorithm, aes)
    except (ValueError, InvalidKey, InvalidTag, InvalidUnwrap, UnsupportedAlgorithm):
        return None
    return None


def _ecies(
    shared: bytes, mac: bytes, cipherkey: bytes, algorithm: hashes.HashAlgorithm, aes: int
) -> bytes | None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: PLC0415
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

    derived = HKDF(
        algorithm=algorithm, length=aes + algorithm.digest_size, salt=None, info=_ECIES_INFO
    ).derive(shared)
    expected = hmac.new(derived[aes:], cipherkey, algorithm.name).digest()
    if not hmac.compare_digest(expected, mac):
        return None
    decryptor = Cipher(algorithms.AES(derived[:aes]), modes.CTR(bytes(16))).decryptor()
    return decryptor.update(cipherkey) + decryptor.finalize()
