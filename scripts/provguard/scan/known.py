"""Known keys and certificates (`--key`, `--cert`, `--from`): every encoding that can reach flash.

A known key becomes *needles*: its PKCS#8 and SEC1/PKCS#1 DER, each as raw bytes, as base64 (the
PEM body, found across any line length, CRLF, escaped `\\n` or C string quotes) and as ASCII hex,
plus the little-endian private scalar/exponent/primes that an MPI library keeps. The big-endian
scalar, exponent and primes, and the Ed25519 seed, are pieces of the DER and are named as such when
found alone. The encodings are small classes in `KEY_ENCODINGS` (the tests iterate it).

Search: every 8-byte window of every needle goes into one set; the image is sampled as 8-byte
words every 24 bytes (`memoryview.cast`, one set intersection in C per 64 KiB block). Any run of
31 or more bytes (or characters) shared with a needle contains a sampled word, so a full
encoding, or a fragment of at least 32 bytes that holds at least 16 bytes of secret material, is
always found. Each hit
is then extended both ways with slice comparisons (binary search), never byte by byte.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from dataclasses import dataclass
from itertools import compress, count
from typing import ClassVar, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from provguard.credentials import fingerprint, key_fingerprint
from provguard.scan.model import Kind

WORD = 8
STRIDE_WORDS = 3  # sample every third 8-byte word: every 24 bytes
STRIDE = WORD * STRIDE_WORDS
BLOCK = STRIDE * 2730  # about 64 KiB: hits are located within the blocks that have any
MIN_FRAGMENT = STRIDE + WORD - 1  # shortest shared run that always contains a sampled word
MIN_SECRET_BYTES = 16  # a fragment must carry this much secret material to count

BINARY, BASE64, HEX = "binary", "base64", "hex"
_UNITS = {BINARY: 1.0, BASE64: 4 / 3, HEX: 2.0}


@dataclass(frozen=True)
class Part:
    """A named secret component inside a needle, in needle units."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class Needle:
    encoding: str  # e.g. "PKCS#8 DER", "base64 SEC1 DER", "ASCII hex of PKCS#1 DER"
    data: bytes
    form: str  # BINARY, BASE64 or HEX
    parts: tuple[Part, ...]  # secret components; empty for certificates

    @property
    def secret_units(self) -> float:
        return _UNITS[self.form]


@dataclass(frozen=True)
class KnownMaterial:
    kind: Kind
    source: str  # the file the user named
    fingerprint: str
    needles: tuple[Needle, ...]


# --- encodings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Der:
    """A DER form of a key and where its secret components sit in it."""

    name: str
    der: bytes
    parts: tuple[Part, ...]


def _key_ders(key: PrivateKeyTypes) -> list[Der]:
    def der(fmt: serialization.PrivateFormat) -> bytes:
        return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())

    components: list[tuple[str, bytes]] = []
    forms = [("PKCS#8 DER", der(serialization.PrivateFormat.PKCS8))]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        components.append(
            ("EC private scalar", key.private_numbers().private_value.to_bytes(size, "big"))
        )
        forms.append(("SEC1 DER", der(serialization.PrivateFormat.TraditionalOpenSSL)))
    elif isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        for label, value in (
            ("RSA private exponent d", numbers.d),
            ("RSA prime p", numbers.p),
            ("RSA prime q", numbers.q),
            ("RSA CRT exponent dp", numbers.dmp1),
            ("RSA CRT exponent dq", numbers.dmq1),
            ("RSA CRT coefficient qinv", numbers.iqmp),
        ):
            components.append((label, value.to_bytes((value.bit_length() + 7) // 8, "big")))
        forms.append(("PKCS#1 DER", der(serialization.PrivateFormat.TraditionalOpenSSL)))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        components.append(("Ed25519 private key", key.private_bytes_raw()))
    out = []
    for name, blob in forms:
        parts = []
        for label, component in components:
            where = blob.find(component)
            if where >= 0:
                parts.append(Part(label, where, where + len(component)))
        out.append(Der(name, blob, tuple(parts)))
    return out


def _little_endian_components(key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        return [("EC private scalar", key.private_numbers().private_value.to_bytes(size, "little"))]
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        return [
            (label, value.to_bytes((value.bit_length() + 7) // 8, "little"))
            for label, value in (
                ("RSA private exponent d", numbers.d),
                ("RSA prime p", numbers.p),
                ("RSA prime q", numbers.q),
            )
        ]
    return []


class KeyEncoding(Protocol):
    """One way a private key can be laid out in flash."""

    name: ClassVar[str]
    #: Found by the always-on detectors as well, without the key being given.
    self_describing: ClassVar[bool]

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        """(encoding name, bytes) for each layout of this encoding that applies to `key`."""
        ...

    def needles(self, key: PrivateKeyTypes) -> list[Needle]: ...


class DerEncoding:
    """PKCS#8 and SEC1/PKCS#1 DER, raw."""

    name: ClassVar[str] = "DER"
    self_describing: ClassVar[bool] = True

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        return [(d.name, d.der) for d in _key_ders(key)]

    def needles(self, key: PrivateKeyTypes) -> list[Needle]:
        return [Needle(d.name, d.der, BINARY, d.parts) for d in _key_ders(key)]


class Base64Encoding:
    """The DER as base64: a PEM body (headers and line breaks are handled when searching)."""

    name: ClassVar[str] = "base64"
    self_describing: ClassVar[bool] = False  # without its PEM header it is just text

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        return [(f"base64 {d.name}", base64.b64encode(d.der)) for d in _key_ders(key)]

    def needles(self, key: PrivateKeyTypes) -> list[Needle]:
        out = []
        for d in _key_ders(key):
            parts = tuple(Part(p.name, -(-p.start * 4 // 3), p.end * 4 // 3) for p in d.parts)
            out.append(Needle(f"base64 {d.name}", base64.b64encode(d.der), BASE64, parts))
        return out


class HexEncoding:
    """The DER as ASCII hex digits, lower and upper case."""

    name: ClassVar[str] = "hex"
    self_describing: ClassVar[bool] = False

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        out = []
        for d in _key_ders(key):
            text = binascii.hexlify(d.der)
            out += [(f"ASCII hex of {d.name}", text), (f"ASCII hex of {d.name}", text.upper())]
        return out

    def needles(self, key: PrivateKeyTypes) -> list[Needle]:
        out = []
        for d in _key_ders(key):
            parts = tuple(Part(p.name, 2 * p.start, 2 * p.end) for p in d.parts)
            text = binascii.hexlify(d.der)
            out.append(Needle(f"ASCII hex of {d.name}", text, HEX, parts))
            out.append(Needle(f"ASCII hex of {d.name}", text.upper(), HEX, parts))
        return out


class RawComponentEncoding:
    """The secret numbers alone: big-endian (as in the DER) and little-endian (as MPI limbs)."""

    name: ClassVar[str] = "raw"
    self_describing: ClassVar[bool] = False

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        out = []
        for d in _key_ders(key)[:1]:
            out += [(f"raw {p.name}", d.der[p.start : p.end]) for p in d.parts]
        out += [
            (f"raw {name} (little-endian)", value) for name, value in _little_endian_components(key)
        ]
        return out

    def needles(self, key: PrivateKeyTypes) -> list[Needle]:
        # Big-endian components are pieces of the DER needles; only the little-endian ones are new.
        return [
            Needle(f"raw {name} (little-endian)", value, BINARY, (Part(name, 0, len(value)),))
            for name, value in _little_endian_components(key)
        ]


#: Every layout of a known private key that the search covers; the tests iterate this.
KEY_ENCODINGS: tuple[KeyEncoding, ...] = (
    DerEncoding(),
    Base64Encoding(),
    HexEncoding(),
    RawComponentEncoding(),
)


def key_material(key: PrivateKeyTypes, source: str) -> KnownMaterial:
    needles = tuple(n for encoding in KEY_ENCODINGS for n in encoding.needles(key))
    return KnownMaterial(Kind.PRIVATE_KEY, source, key_fingerprint(key), needles)


def certificate_material(cert: x509.Certificate, source: str) -> KnownMaterial:
    der = cert.public_bytes(serialization.Encoding.DER)
    needles = (
        Needle("DER", der, BINARY, ()),
        Needle("base64 DER", base64.b64encode(der), BASE64, ()),
    )
    return KnownMaterial(Kind.CERTIFICATE, source, fingerprint(der), needles)


# --- search ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A known needle found in a segment: `[start, end)` in the segment's bytes."""

    material: KnownMaterial
    needle: Needle
    start: int
    end: int
    encoding: str


_BASE64_CHARS = rb"A-Za-z0-9+/="
# What may separate the lines of a base64 body in flash: line breaks, escaped "\n" inside JSON or
# C strings, the quotes and backslash-newlines of a C string literal, spaces.
_SEPARATOR = rb'\\[rn]|\\\r?\n|["\s]'
_TEXT_RUN = re.compile(rb"(?:[" + _BASE64_CHARS + rb"]|" + _SEPARATOR + rb")+")
_TOKENS = re.compile(rb"(?P<sep>(?:" + _SEPARATOR + rb")+)|(?P<b64>[" + _BASE64_CHARS + rb"]+)")
_PEM_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]{1,40}-----(?:\\[rn]|\\\r?\n|[\"\s])*\Z")


class KnownIndex:
    """All needles of all known materials, indexed by their 8-byte windows."""

    def __init__(self, materials: list[KnownMaterial]) -> None:
        self.materials = tuple(materials)
        #: fingerprint -> the file it was given in (first one wins)
        self.sources: dict[str, str] = {}
        for material in materials:
            self.sources.setdefault(material.fingerprint, material.source)
        self._needles = [(m, n) for m in materials for n in m.needles]
        words: set[int] = set()
        for _, needle in self._needles:  # every 8-byte window, as native integers, in C
            view = memoryview(needle.data)
            for shift in range(WORD):
                usable = (len(view) - shift) // WORD * WORD
                if usable > 0:
                    words.update(view[shift : shift + usable].cast("Q"))
        # A window of one repeated byte (zero fill, erased flash) identifies nothing: leave it out
        # so that padding cannot flood the search with hits.
        words.difference_update(int.from_bytes(bytes([b]) * WORD, "little") for b in range(256))
        self._keys = frozenset(words)
        self._where: dict[int, list[tuple[KnownMaterial, Needle, int]]] = {}

    def __bool__(self) -> bool:
        return bool(self._keys)

    def _lookup(self, value: int) -> list[tuple[KnownMaterial, Needle, int]]:
        """Where a window occurs in the needles (worked out on the first hit only)."""
        places = self._where.get(value)
        if places is None:
            pattern = value.to_bytes(WORD, sys.byteorder)
            places = []
            for material, needle in self._needles:
                offset = needle.data.find(pattern)
                while offset >= 0:
                    places.append((material, needle, offset))
                    offset = needle.data.find(pattern, offset + 1)
            self._where[value] = places
        return places

    def search(self, data: bytes) -> list[Match]:
        if not self._keys or len(data) < WORD:
            return []
        order = sys.byteorder
        view = memoryview(data)
        positions: list[int] = []
        for block in range(0, len(data), BLOCK):
            size = min(BLOCK, len(data) - block) // WORD * WORD
            words = view[block : block + size].cast("Q")[::STRIDE_WORDS]
            hits = self._keys.intersection(words)  # in C; empty for almost every block
            if hits:  # where, in this block only
                flags = map(hits.__contains__, words)
                positions += [block + index * STRIDE for index in compress(count(), flags)]
        # The last sampled word may start up to 38 bytes before the end: check the tail densely.
        for i in range(max(0, len(data) - STRIDE - 2 * WORD), len(data) - WORD + 1):
            if int.from_bytes(data[i : i + WORD], order) in self._keys:
                positions.append(i)
        matches: dict[tuple[int, int, str, int], Match] = {}
        covered: dict[int, list[tuple[int, int]]] = {}  # per needle: ranges already resolved
        for position in positions:
            value = int.from_bytes(data[position : position + WORD], order)
            for material, needle, offset in self._lookup(value):
                done = covered.setdefault(id(needle), [])
                if any(a <= position and position + WORD <= b for a, b in done):
                    continue
                found = self._resolve(data, position, material, needle, offset)
                if found is None:
                    continue
                done.append((found.start, found.end))
                matches[(found.start, found.end, found.encoding, id(material))] = found
        return list(matches.values())

    def _resolve(
        self, data: bytes, position: int, material: KnownMaterial, needle: Needle, offset: int
    ) -> Match | None:
        if needle.form == BASE64:
            return _resolve_text(data, position, material, needle, offset)
        back = _common_suffix(data, position, needle.data, offset)
        ahead = _common_prefix(data, position, needle.data, offset)
        return _judge(
            material, needle, offset - back, offset + ahead, position - back, position + ahead
        )


def _common_prefix(a: bytes, i: int, b: bytes, j: int) -> int:
    """Length of the longest common run of a[i:] and b[j:] (binary search on slices)."""
    low, high = 0, min(len(a) - i, len(b) - j)
    while low < high:
        mid = (low + high + 1) // 2
        if a[i : i + mid] == b[j : j + mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: bytes, i: int, b: bytes, j: int) -> int:
    """Length of the longest common run of a[:i] and b[:j], counted backwards."""
    low, high = 0, min(i, j)
    while low < high:
        mid = (low + high + 1) // 2
        if a[i - mid : i] == b[j - mid : j]:
            low = mid
        else:
            high = mid - 1
    return low


def _judge(
    material: KnownMaterial, needle: Needle, n_start: int, n_end: int, start: int, end: int
) -> Match | None:
    """Whether a shared run `[n_start, n_end)` of a needle is worth reporting, and as what."""
    if n_start == 0 and n_end == len(needle.data):
        return Match(material, needle, start, end, needle.encoding)
    if not needle.parts or n_end - n_start < MIN_FRAGMENT:
        return None  # certificates count only whole; short runs are coincidence
    slack = 4 * (2 if needle.form == HEX else 1)  # a DER INTEGER header or leading zeros
    for part in needle.parts:
        if (
            part.start - slack <= n_start <= part.start
            and part.end <= n_end <= part.end + slack
            and needle.form != BASE64
        ):
            # the component alone: bytes around it that matched the DER by chance are not it
            prefix = "raw" if needle.form == BINARY else "ASCII hex of"
            first, last = start + part.start - n_start, end - (n_end - part.end)
            return Match(material, needle, first, last, f"{prefix} {part.name}")
    secret = sum(max(0, min(n_end, p.end) - max(n_start, p.start)) for p in needle.parts)
    if secret / needle.secret_units < MIN_SECRET_BYTES:
        return None
    return Match(material, needle, start, end, f"fragment of {needle.encoding}")


def _resolve_text(
    data: bytes, position: int, material: KnownMaterial, needle: Needle, offset: int
) -> Match | None:
    """Match a base64 needle across line breaks: normalise the text run around the hit."""
    reach = 2 * len(needle.data) + 256
    lo = max(0, position - reach)
    window = data[lo : position + reach]
    run = None
    for candidate in _TEXT_RUN.finditer(window):
        if candidate.start() <= position - lo < candidate.end():
            run = candidate
            break
    if run is None:
        return None
    pieces: list[bytes] = []
    starts: list[int] = []  # window offset of each piece
    lengths: list[int] = []
    for token in _TOKENS.finditer(window, run.start(), run.end()):
        if token.lastgroup == "b64":
            pieces.append(token.group())
            starts.append(token.start())
            lengths.append(token.end() - token.start())
    text = b"".join(pieces)
    # where the hit lies in the normalised text
    norm, here = 0, -1
    for start, length in zip(starts, lengths, strict=True):
        if start <= position - lo < start + length:
            here = norm + position - lo - start
            break
        norm += length
    if here < 0:
        return None
    back = _common_suffix(text, here, needle.data, offset)
    ahead = _common_prefix(text, here, needle.data, offset)
    first = _window_offset(starts, lengths, here - back)
    last = _window_offset(starts, lengths, here + ahead - 1) + 1
    found = _judge(material, needle, offset - back, offset + ahead, lo + first, lo + last)
    if found is None or found.encoding != needle.encoding:
        return found
    header = _PEM_BEGIN.search(data[max(0, lo + first - 80) : lo + first])
    if header is None:
        return found
    label = needle.encoding.removeprefix("base64 ").removesuffix("DER").strip()
    return Match(material, needle, found.start, found.end, f"PEM {label}".strip())


def _window_offset(starts: list[int], lengths: list[int], norm: int) -> int:
    for start, length in zip(starts, lengths, strict=True):
        if norm < length:
            return start + norm
        norm -= length
    return starts[-1] + lengths[-1] - 1
