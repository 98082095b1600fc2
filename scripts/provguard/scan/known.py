"""Known keys and certificates (`--key`, `--cert`, `--from`, `--key-dir`, `--keys-from`).

The search costs the same for one known key as for ten thousand: a candidate in the image is
confirmed by a lookup, never by a loop over the known keys.

Keys. A known private key is kept as its DER forms (PKCS#8 and SEC1/PKCS#1), each with where its
secret components (scalar, exponent, primes) and its public key sit, plus its little-endian secret
components (what an MPI library keeps). What is *unique* to a key is its secret and public
components; only the bytes around them are indexed: from 16 bytes before the first secret component
to 16 bytes after the last (`MARGIN`). The regions are kept in bytes objects: a P-256 key loaded in
bulk (`p256_material`: its scalar and point, nothing else per key) at a fixed stride in one object
per DER form (`_Group`), any other key's forms one after the other (the corpus). The keys' windows
are the 8-byte words at even offsets of those regions, read in C with `memoryview.cast` (in a group,
every key's window at one offset is one strided view). They are looked up one of two ways, with the
same results:

- a set of them (about 63 per P-256 key), built once when an image is large beside the keys or
  several images have been searched (`_key_set`);
- otherwise, for a small image and many keys (10,000 keys: 630,000 windows; a 1 MiB image: 90,000
  sampled words), the words the search will look up are gathered first, and the windows stream past
  that set once, in C (`_present`): no set of the keys' windows is built, which costs three times as
  much as one pass. `STREAM_FRACTION` and `STREAM_PASSES` decide.

- Raw bytes: the image is sampled as 8-byte words every 24 bytes at two adjacent offsets
  (`memoryview.cast`, set intersections in C per 64 KiB block), so any run of 32 or more bytes
  shared with a key holds a sampled word at an even offset of the key's DER, which is indexed.
  A word that hit is located in the regions by `bytes.find` (memoised), which names the key,
  its DER form and the offset; the run is then extended both ways with slice comparisons. A
  window with fewer than 3 bytes of its own (`MIN_UNIQUE`: the DER header in front of a P-256
  scalar, alone or with a scalar byte or two that many keys of a large set share) is
  *structural*: a hit on it says nothing about which key, so the image is probed densely within
  `probe` bytes of it for a window that names one key, instead of trying every key that might
  fit.
- Text: runs of at least 16 base64 characters are located in C (`bytes.translate` + `find`); the
  text around each (lines joined across line breaks, escaped `\\n` and C string quotes) is
  decoded as base64 at its four alignments and as ASCII hex (runs of 32 hex digits or more) at
  its two, and the decoded bytes are looked up the same way: every second word of base64 (a
  fragment is 24 bytes of it), every word of hex (16 bytes), at two adjacent offsets.

A whole encoding, a component alone, or a fragment of at least 32 bytes (32 characters of base64
or hex) that holds at least 16 bytes of secret material is reported; runs that share only
header bytes with a key are not. A secret component shorter than 32 bytes (the scalar of a P-192
or P-224 key) need not hold a sampled word: it is also looked for whole in the raw bytes, one
`bytes.find` pass per such component.

Certificates are indexed by the SHA-256 of their DER, which is how they are named: the always-on
detectors find DER and PEM certificates and the engine names a known one by that digest
(`sources`); a headerless base64 or hex copy is decoded here and its DER objects looked up by
digest.
"""

from __future__ import annotations

import base64
import binascii
import gc
import hashlib
import re
import sys
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property
from itertools import compress, count
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

from provguard.scan.detectors import DerCertificateDetector, der_objects
from provguard.scan.model import Kind

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# `cryptography` and `provguard.credentials` are imported by the functions that need them (a key
# object to take apart, a reference key, a certificate's digest): a scan without --key never
# needs them unless it meets a key or certificate, and they are most of the start-up's time.

WORD = 8
STRIDE_WORDS = 3  # sample every third 8-byte word: every 24 bytes
STRIDE = WORD * STRIDE_WORDS
BLOCK = STRIDE * 2730  # about 64 KiB: hits are located within the blocks that have any
#: Known keys are indexed by their windows at even offsets only (half the windows to build), and
#: the image is sampled at two adjacent offsets, so one of each pair meets an indexed window.
ALIGN = 2
MIN_FRAGMENT = STRIDE + ALIGN - 1 + WORD - 1  # shortest shared run that always holds a sample
MIN_SECRET_BYTES = 16  # a fragment must carry this much secret material to count
MARGIN = MIN_FRAGMENT - MIN_SECRET_BYTES  # indexed bytes on each side of the secret components
MIN_UNIQUE = 3  # bytes of its own a window needs to name a key (1 in 2**24 for a random other key)
TEXT_SEED = 16  # base64 characters in a row that make a place worth decoding
MIN_HEX = 2 * MIN_SECRET_BYTES  # hex digits in a row that are decoded
TEXT_BLOCK = 1 << 20  # the image is classified for text in blocks of this size
TEXT_CHUNK = 256 << 10  # a long run of text is decoded in chunks of this size

BINARY, BASE64, HEX = "binary", "base64", "hex"


@contextmanager
def bulk() -> Iterator[None]:
    """No cyclic garbage collection while thousands of keys are loaded and indexed: the objects
    made are all kept, and each collection would walk every one of them again (it halves the
    loading time of 10,000 keys)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_UNITS = {BINARY: 1.0, BASE64: 4 / 3, HEX: 2.0}


@dataclass(frozen=True)
class Part:
    """A named component inside a DER form: `[start, end)` in its bytes."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class Der:
    """One binary form of a known object, and where its secret and public components sit."""

    name: str  # "PKCS#8 DER", "SEC1 DER", "raw EC private scalar (little-endian)", "DER"
    der: bytes = field(repr=False)  # key material: never shown
    parts: tuple[Part, ...]  # secret components; empty for certificates
    public: tuple[Part, ...] = ()  # public components (EC point, RSA modulus): unique, not secret

    #: Where to index and which windows are weak; shared by every key of one type.
    layout: Layout | None = field(default=None, repr=False, compare=False)

    def shape(self) -> Layout:
        return self.layout or layout_of(len(self.der), self.parts, self.public)


@dataclass(frozen=True)
class Layout:
    """What the index needs of a DER form, the same for every key of one type and size.

    `region`: `[start, end)` of the bytes worth indexing, the secret components and MARGIN
    around (None for certificates). Windows in it with fewer than MIN_UNIQUE bytes unique to the
    key name no key: `shared` are runs of such windows made only of bytes every key of the type
    has (the DER header: `[start, end)` of their bytes), `partial` the offsets of those that hold
    a byte or two of the key (as many keys of a large set do). `widest`: the longest run of bytes
    in the region that are not unique to the key.
    """

    region: tuple[int, int] | None
    shared: tuple[tuple[int, int], ...]
    partial: tuple[int, ...]
    widest: int


@cache
def layout_of(length: int, parts: tuple[Part, ...], public: tuple[Part, ...]) -> Layout:
    if not parts:
        return Layout(None, (), (), 0)
    start = max(0, min(p.start for p in parts) - MARGIN)
    start -= start % ALIGN  # the windows indexed are those at even offsets of the DER
    end = min(length, max(p.end for p in parts) + MARGIN)
    mine = bytearray(end - start)
    for part in (*parts, *public):
        for i in range(max(part.start, start), min(part.end, end)):
            mine[i - start] = 1
    unique = [sum(mine[i : i + WORD]) for i in range(len(mine) - WORD + 1)]
    partial = tuple(
        start + i for i, n in enumerate(unique) if 0 < n < MIN_UNIQUE and i % ALIGN == 0
    )
    shared: list[tuple[int, int]] = []
    for i, n in enumerate(unique):
        if n == 0:
            if shared and shared[-1][1] == start + i - 1 + WORD:
                shared[-1] = (shared[-1][0], start + i + WORD)
            else:
                shared.append((start + i, start + i + WORD))
    widest = max((len(run) for run in bytes(mine).split(b"\x01")), default=0)
    return Layout((start, end), tuple(shared), partial, widest)


@dataclass(frozen=True, eq=False, init=False)
class KnownMaterial:
    """A known key or certificate and its forms: a key's DER forms and little-endian components,
    a certificate's DER. A P-256 key loaded in bulk keeps only its scalar and public point
    (`p256`) and derives its forms from the templates when a candidate in an image needs them:
    the index lays out every such key at a fixed stride without a Python object per form."""

    kind: Kind
    source: str  # the file the user named (and line or entry, for a list of keys)
    fingerprint: str
    given: tuple[Der, ...] = field(default=(), repr=False)
    p256: bytes = field(default=b"", repr=False)  # scalar + uncompressed point: key material

    def __init__(
        self,
        kind: Kind,
        source: str,
        fingerprint: str,
        given: tuple[Der, ...] = (),
        p256: bytes = b"",
    ) -> None:
        # Each field set once, here, through the instance's dict (what the frozen dataclass's
        # own __init__ does with object.__setattr__, in less than half the time: 10,000 keys).
        fields = self.__dict__
        fields["kind"] = kind
        fields["source"] = source
        fields["fingerprint"] = fingerprint
        fields["given"] = given
        fields["p256"] = p256

    @cached_property
    def forms(self) -> tuple[Der, ...]:
        if not self.p256:
            return self.given
        templates, _ = _p256_templates()
        scalar, point = self.p256[:32], self.p256[32:]
        return (
            *(t.fill(scalar, point) for t in templates),
            *_little_endian_forms([("EC private scalar", scalar[::-1])]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KnownMaterial):
            return NotImplemented
        return (self.kind, self.source, self.fingerprint, self.forms) == (
            other.kind,
            other.source,
            other.fingerprint,
            other.forms,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.source, self.fingerprint))


# --- encodings -------------------------------------------------------------------------------


def _key_ders(key: PrivateKeyTypes) -> list[Der]:
    """The DER forms of a key (through cryptography) with its secret and public parts."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415

    def der(fmt: serialization.PrivateFormat) -> bytes:
        return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())

    components: list[tuple[str, bytes]] = []
    public: list[tuple[str, bytes]] = []
    forms = [("PKCS#8 DER", der(serialization.PrivateFormat.PKCS8))]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        components.append(
            ("EC private scalar", key.private_numbers().private_value.to_bytes(size, "big"))
        )
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        public.append(("EC public key", point[1:]))  # 0x04 (uncompressed) is in every key
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
        n = numbers.public_numbers.n
        public.append(("RSA modulus", n.to_bytes((n.bit_length() + 7) // 8, "big")))
        forms.append(("PKCS#1 DER", der(serialization.PrivateFormat.TraditionalOpenSSL)))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        components.append(("Ed25519 private key", key.private_bytes_raw()))
    out = []
    for name, blob in forms:
        out.append(Der(name, blob, _locate(blob, components), _locate(blob, public)))
    return out


def _locate(blob: bytes, components: list[tuple[str, bytes]]) -> tuple[Part, ...]:
    parts = []
    for label, component in components:
        where = blob.find(component)
        if where >= 0:
            parts.append(Part(label, where, where + len(component)))
    return tuple(parts)


def _little_endian_components(key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

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


def _little_endian_forms(components: list[tuple[str, bytes]]) -> list[Der]:
    return [
        Der(f"raw {name} (little-endian)", value, (Part(name, 0, len(value)),))
        for name, value in components
    ]


class KeyEncoding(Protocol):
    """One way a private key can be laid out in flash (the tests iterate `KEY_ENCODINGS`)."""

    name: ClassVar[str]
    #: Found by the always-on detectors as well, without the key being given.
    self_describing: ClassVar[bool]

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        """(encoding name, bytes) for each layout of this encoding that applies to `key`."""
        ...


class DerEncoding:
    """PKCS#8 and SEC1/PKCS#1 DER, raw."""

    name: ClassVar[str] = "DER"
    self_describing: ClassVar[bool] = True

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        return [(d.name, d.der) for d in _key_ders(key)]


class Base64Encoding:
    """The DER as base64: a PEM body (headers and line breaks are handled when searching)."""

    name: ClassVar[str] = "base64"
    self_describing: ClassVar[bool] = False  # without its PEM header it is just text

    def encode(self, key: PrivateKeyTypes) -> list[tuple[str, bytes]]:
        return [(f"base64 {d.name}", base64.b64encode(d.der)) for d in _key_ders(key)]


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


#: Every layout of a known private key that the search covers; the tests iterate this.
KEY_ENCODINGS: tuple[KeyEncoding, ...] = (
    DerEncoding(),
    Base64Encoding(),
    HexEncoding(),
    RawComponentEncoding(),
)


def key_material(key: PrivateKeyTypes, source: str) -> KnownMaterial:
    from provguard.credentials import key_fingerprint  # noqa: PLC0415

    forms = _key_ders(key) + _little_endian_forms(_little_endian_components(key))
    return KnownMaterial(Kind.PRIVATE_KEY, source, key_fingerprint(key), tuple(forms))


def certificate_material(cert: x509.Certificate, source: str) -> KnownMaterial:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    der = cert.public_bytes(serialization.Encoding.DER)
    return KnownMaterial(Kind.CERTIFICATE, source, fingerprint(der), (Der("DER", der, ()),))


def certificate_der_material(der: bytes, source: str) -> KnownMaterial:
    """A certificate named by the digest of its DER, without parsing it (a bulk trust store)."""
    return KnownMaterial(Kind.CERTIFICATE, source, fingerprint(der), (Der("DER", der, ()),))


def fingerprint(der: bytes) -> str:
    """`provguard.credentials.fingerprint`, imported when first needed."""
    from provguard.credentials import fingerprint as named  # noqa: PLC0415

    return named(der)


# --- P-256 without a cryptography object per key ------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """What cryptography writes for every P-256 key in one DER form: the same bytes around a
    32-byte scalar and a 65-byte public point (learnt from a reference key, never hand-written)."""

    name: str
    der: bytes
    scalar: int
    point: int

    @cached_property
    def around(self) -> tuple[bytes, bytes, bytes]:
        """The template's bytes before the scalar, between scalar and point, after the point."""
        t, s, p = self.der, self.scalar, self.point
        return t[:s], t[s + 32 : p], t[p + 65 :]

    @property
    def parts(self) -> tuple[tuple[Part, ...], tuple[Part, ...], Layout]:
        return _template_parts(self.scalar, self.point, len(self.der))

    def fill(self, scalar: bytes, point: bytes) -> Der:
        t, s, p = self.der, self.scalar, self.point
        secret, public, layout = self.parts
        return Der(
            self.name, t[:s] + scalar + t[s + 32 : p] + point + t[p + 65 :], secret, public, layout
        )


@cache
def _template_parts(
    s: int, p: int, length: int
) -> tuple[tuple[Part, ...], tuple[Part, ...], Layout]:
    secret = (Part("EC private scalar", s, s + 32),)
    public = (Part("EC public key", p + 1, p + 65),)  # the 0x04 in front is in every key
    return secret, public, layout_of(length, secret, public)


@cache
def _p256_templates() -> tuple[tuple[_Template, ...], bytes]:
    """The PKCS#8 and SEC1 templates, and the SubjectPublicKeyInfo prefix, of P-256."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    reference = ec.generate_private_key(ec.SECP256R1())
    out = []
    for der in _key_ders(reference):
        scalar, point = der.parts[0], der.public[0].start - 1  # the point starts with 0x04
        out.append(_Template(der.name, der.der, scalar.start, point))
    spki = reference.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return tuple(out), spki[:-65]


def p256_material(der: bytes, source: str) -> KnownMaterial | None:
    """A P-256 key from its PKCS#8 or SEC1 DER as cryptography writes it (public key included),
    or None for anything else (the caller then loads it with cryptography)."""
    for length, head, at, between, scalar, point, tail, spki in _p256_checks():
        if (
            len(der) == length
            and der.startswith(head)
            and der.startswith(between, at)
            and der.endswith(tail)
            and der[point] == 4
        ):
            public = der[point : point + 65]
            fp = "SHA256:" + hashlib.sha256(spki + public).hexdigest()
            return KnownMaterial(Kind.PRIVATE_KEY, source, fp, (), der[scalar:at] + public)
    return None


#: Bytes of a damaged P-256 key's layout (all but its scalar and point) that may differ from
#: what cryptography writes.
P256_LAYOUT_DAMAGE = 2


def p256_scalar(der: bytes) -> tuple[str, bytes] | None:
    """("PKCS#8" or "SEC1", the private scalar) of DER laid out as cryptography writes a P-256
    key: the same length, and the same bytes around the scalar and the public point but for
    P256_LAYOUT_DAMAGE of them; what is left of a damaged key. None for anything else (random
    bytes match the 25 or more bytes of either layout but two by a chance below 2**-180)."""
    templates, _ = _p256_templates()
    for template in templates:
        if len(der) != len(template.der):
            continue
        head, between, tail = template.around
        point = template.point
        layout = der[: len(head)] + der[template.scalar + 32 : point] + der[point + 65 :]
        differ = sum(a != b for a, b in zip(layout, head + between + tail, strict=True))
        if differ <= P256_LAYOUT_DAMAGE:
            return template.name.removesuffix(" DER"), der[template.scalar : template.scalar + 32]
    return None


@cache
def _p256_checks() -> tuple[tuple[int, bytes, int, bytes, int, int, bytes, bytes], ...]:
    """What `p256_material` compares, per template, in the order it needs it (ten thousand
    keys are checked in a row): DER length, bytes before the scalar, where the scalar ends,
    bytes from there to the point, scalar, point, bytes after the point, SPKI prefix."""
    templates, spki = _p256_templates()
    return tuple(
        (
            len(t.der),
            *t.around[:1],
            t.scalar + 32,
            t.around[1],
            t.scalar,
            t.point,
            t.around[2],
            spki,
        )
        for t in templates
    )


# --- search ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A known key or certificate found in a segment: `[start, end)` in the segment's bytes."""

    material: KnownMaterial
    start: int
    end: int
    encoding: str


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: base64 characters -> 1, anything else -> 0
_B64_CLASS = bytes(1 if i in _B64_ALPHABET else 0 for i in range(256))
#: characters that may be part of a run of base64 text (with its separators) -> 1
_RUN_CLASS = bytes(1 if i in _B64_ALPHABET + b'=\\"\r\n\t ' else 0 for i in range(256))
_SEED = b"\x01" * TEXT_SEED
# What may separate the lines of a base64 body in flash: line breaks, escaped "\n" inside JSON or
# C strings, the quotes and backslash-newlines of a C string literal, spaces.
_SEPARATOR = rb'\\[rn]|\\\r?\n|["\s]'
_TOKENS = re.compile(rb"(?P<sep>(?:" + _SEPARATOR + rb")+)|(?P<b64>[A-Za-z0-9+/=]+)")
_PIECES = re.compile(rb"[A-Za-z0-9+/]{" + str(TEXT_SEED).encode() + rb",}")
_HEX_RUN = re.compile(rb"[0-9A-Fa-f]{" + str(MIN_HEX).encode() + rb",}")
_PEM_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]{1,40}-----(?:\\[rn]|\\\r?\n|[\"\s])*\Z")


@dataclass(frozen=True)
class _Place:
    material: KnownMaterial
    form: Der
    offset: int  # of the window in `form.der`


@dataclass(frozen=True)
class _Text:
    """Normalised text of one run: the base64 characters, and where each piece sits."""

    text: bytes
    starts: tuple[int, ...]  # image offset of each piece
    lengths: tuple[int, ...]

    def image_offset(self, norm: int) -> int:
        for start, length in zip(self.starts, self.lengths, strict=True):
            if norm < length:
                return start + norm
            norm -= length
        return self.starts[-1] + self.lengths[-1] - 1


class _Decoded(NamedTuple):  # a tuple: a thousand of them for an image with 250 PEM blocks
    """Bytes decoded from base64 or hex text in an image, and how to map them back."""

    data: bytes
    form: str  # BASE64 or HEX
    text: _Text
    start: int  # where in `text.text` decoding began
    end: int  # base64: where the piece of text ends
    pad: int  # base64: '=' characters after the piece

    def match(self, image: bytes, material: KnownMaterial, a: int, b: int, encoding: str) -> Match:
        """`[a, b)` of the decoded bytes as a Match in the image."""
        if self.form == HEX:
            first = self.text.image_offset(self.start + 2 * a)
            stop = self.text.image_offset(self.start + 2 * b - 1) + 1
            return Match(material, first, stop, encoding)
        # byte i of the decoded bytes starts in character 4i/3 of the text
        last = self.start - (-4 * b // 3)
        if last == self.end:  # the padding after a whole encoding belongs to it
            last += self.pad
        first = self.text.image_offset(self.start + 4 * a // 3)
        stop = self.text.image_offset(last - 1) + 1
        return Match(material, first, stop, _pem_name(image, first, encoding))


@dataclass(frozen=True)
class _Group:
    """One DER form of every bulk-loaded P-256 key: the indexed region of each, padded to a
    stride that is a multiple of WORD, in one bytes object (key i at `i * stride`)."""

    form: int  # index in `KnownMaterial.forms`
    region: tuple[int, int]  # `[start, end)` of the DER form that is indexed
    stride: int
    #: The offsets of the windows that hold a byte of the key (the others, the template's own
    #: bytes, are the same for every key: `KnownIndex._constant`).
    offsets: tuple[int, ...]
    blob: bytes = field(repr=False)  # key material: never shown
    members: tuple[KnownMaterial, ...] = field(repr=False)

    def places(self, pattern: bytes) -> list[_Place]:
        out = []
        start, end = self.region
        at = self.blob.find(pattern)
        while at >= 0:
            index, inside = divmod(at, self.stride)
            if inside + WORD <= end - start:  # not in the padding or across two keys
                member = self.members[index]
                out.append(_Place(member, member.forms[self.form], start + inside))
            at = self.blob.find(pattern, at + 1)
        return out

    def at(self, offset: int) -> memoryview:
        """The window at `offset` of the DER form of every key, as integers (in C)."""
        first = offset - self.region[0]
        view = memoryview(self.blob)[first : first + (len(self.members) - 1) * self.stride + WORD]
        return view.cast("Q")[:: self.stride // WORD]


@cache
def _p256_shapes() -> tuple[tuple[int, str, Layout, bytes, int, int], ...]:
    """(form index, name, layout, template DER, scalar offset, point offset) of each form of a
    bulk P-256 key (the little-endian scalar is a 'template' with nothing around the scalar)."""
    templates, _ = _p256_templates()
    out = []
    for index, t in enumerate(templates):
        _, _, layout = t.parts
        out.append((index, t.name, layout, t.der, t.scalar, t.point))
    little = _little_endian_forms([("EC private scalar", bytes(32))])[0]
    out.append((len(templates), little.name, little.shape(), bytes(32), 0, 32))
    return tuple(out)


def _p256_regions(
    members: Iterable[KnownMaterial], shape: tuple[int, str, Layout, bytes, int, int]
) -> tuple[bytes, int]:
    """The indexed region of one form of every key, each padded to a multiple of WORD."""
    index, _, layout, der, s, p = shape
    assert layout.region is not None
    start, end = layout.region
    stride = -(-(end - start) // WORD) * WORD
    pad = bytes(stride - (end - start))
    if index == len(_p256_templates()[0]):  # the little-endian scalar
        return pad.join([m.p256[31::-1] for m in members]) + pad, stride
    before = der[start:s]
    between = der[s + 32 : min(p, end)]
    point = max(0, min(end, p + 65) - p)
    after = der[p + 65 : end] + pad
    if point:  # each key's bytes: scalar, the template's few bytes, the start of the point
        keys = [m.p256[:32] + between + m.p256[32 : 32 + point] for m in members]
    else:
        keys, after = [m.p256[:32] for m in members], between + after
    return before + (after + before).join(keys) + after, stride


_Member = set[int] | frozenset[int]  # what a window is looked up in
FEW = 4  # up to this many words are found in a block by `bytes.find`


class _Block(NamedTuple):
    """Sampled 8-byte words of some bytes: word i starts at `first + i * step`."""

    first: int
    step: int
    words: memoryview

    def found(self, member: _Member) -> _Member:
        """The words that are in `member` (in C)."""
        return member.intersection(self.words)

    def positions(self, found: AbstractSet[int], data: bytes) -> list[int]:
        """Where the words in `found` start (`data`: the bytes the words are read from); a few
        words are looked for with `bytes.find` rather than by going through the block."""
        if len(found) > FEW:
            flags = map(found.__contains__, self.words)
            return [self.first + index * self.step for index in compress(count(), flags)]
        out = []
        end = self.first + (len(self.words) - 1) * self.step + WORD
        for value in found:
            pattern = value.to_bytes(WORD, sys.byteorder)
            at = data.find(pattern, self.first, end)
            while at >= 0:
                if (at - self.first) % self.step == 0:
                    out.append(at)
                at = data.find(pattern, at + 1, end)
        out.sort()
        return out


#: The image is looked up against the key windows without a set of them (`_present`) while its
#: sampled words are at most 1/STREAM_FRACTION of the windows...
STREAM_FRACTION = 4
#: ... and until the windows have been streamed this many times; then the set is built once
#: (building it costs about three passes over the windows).
STREAM_PASSES = 3
_REPEATED = frozenset(int.from_bytes(bytes([b]) * WORD, "little") for b in range(256))


class KnownIndex:
    """Known keys indexed by what is unique to each, known certificates by their digest.

    `lookup`: "auto" (the windows of the keys are streamed past a small image, a set of them
    is built for a large one or once several images have been searched), "set" or "stream"
    (one way always: the tests check they agree)."""

    def __init__(self, materials: Iterable[KnownMaterial], *, lookup: str = "auto") -> None:
        if lookup not in ("auto", "set", "stream"):
            raise ValueError(f"lookup must be auto, set or stream, not {lookup!r}")
        self._lookup = lookup
        with bulk():
            self._build(materials)

    def _build(self, materials: Iterable[KnownMaterial]) -> None:
        unique: dict[str, KnownMaterial] = {}
        key = Kind.PRIVATE_KEY
        for material in materials:  # the same key given twice is one key (first name wins)
            # by kind and fingerprint, without hashing the enum (a Python call) ten thousand times
            fp = material.fingerprint
            unique.setdefault(
                fp if material.kind is key else f"{material.kind.value} {fp}", material
            )
        self.materials = tuple(unique.values())
        #: fingerprint -> the file it was given in
        self.sources: dict[str, str] = {m.fingerprint: m.source for m in self.materials}
        self._certs = {m.fingerprint: m for m in self.materials if m.kind is Kind.CERTIFICATE}
        #: How many times a candidate was compared with a known key (the tests count them).
        self.confirmations = 0
        structural: set[int] = set()
        longest, widest_gap = self._index_bulk(structural)
        others = self._index_others(structural)
        longest, widest_gap = max(longest, others[0]), max(widest_gap, others[1])
        #: How many windows the keys have (indexed at even offsets).
        self._window_count = len(self._constant) + sum(len(view) for view in self._windows())
        # A window of one repeated byte (zero fill, erased flash) identifies nothing: it is left
        # out so that padding cannot flood the search with hits.
        self._structural = frozenset(structural - _REPEATED)
        #: The windows of the keys, as a set: built when it pays (see `_key_set`).
        self._keys: set[int] | None = None
        self._streamed = 0
        #: How far around a structural hit the image is probed for a unique window.
        self.probe = widest_gap + WORD
        #: The longest extent, in image bytes, of anything this index finds (hex with line
        #: breaks included): windowed readers overlap by at least this much.
        self.longest = 3 * longest + 256
        self._where: dict[int, tuple[_Place, ...]] = {}
        #: Secret components shorter than MIN_FRAGMENT (the scalars of P-192 and P-224), which
        #: the sampled words need not meet: looked for whole in raw bytes, one pass each.
        self._short = _short_components(self.materials)

    def _index_bulk(self, structural: set[int]) -> tuple[int, int]:
        """Bulk P-256 keys: one bytes object per form, every key at the same stride; the
        structural windows into `structural`. (longest form, widest gap)"""
        order = sys.byteorder
        members = tuple(m for m in self.materials if m.p256)
        self._groups: list[_Group] = []
        #: Windows of the groups made only of template bytes: looked up once, not once per key.
        self._constant: set[int] = set()
        longest = widest = 0
        if not members:
            return longest, widest
        for shape in _p256_shapes():
            index, _, layout, der, _, _ = shape
            assert layout.region is not None
            blob, stride = _p256_regions(members, shape)
            start, end = layout.region
            constant = {  # the template's own bytes: the same in every key
                i for a, b in layout.shared for i in range(a, b - WORD + 1) if i % ALIGN == 0
            }
            offsets = tuple(i for i in range(start, end - WORD + 1, ALIGN) if i not in constant)
            group = _Group(index, layout.region, stride, offsets, blob, members)
            self._groups.append(group)
            longest, widest = max(longest, len(der)), max(widest, layout.widest)
            self._constant.update(int.from_bytes(der[i : i + WORD], order) for i in constant)
            for offset in layout.partial:  # a byte or two of each key: in C
                structural.update(group.at(offset))
        structural |= self._constant
        return longest, widest

    def _index_others(self, structural: set[int]) -> tuple[int, int]:
        """Any other key: its forms one after the other in the corpus; the structural windows
        into `structural`. (longest form, widest gap)"""
        order = sys.byteorder
        chunks: list[bytes] = []
        self._segment_starts: list[int] = []
        self._segments: list[tuple[KnownMaterial, Der, int, int]] = []  # form, offset, length
        shared_spans: set[tuple[bytes, int]] = set()
        size = longest = widest = 0
        for material in self.materials:
            if material.p256:
                continue
            for form in material.forms:
                longest = max(longest, len(form.der))
                shape = form.shape()
                region = shape.region
                if region is None:
                    continue
                start, end = region
                if size % ALIGN:  # even offsets of the DER at even offsets of the corpus
                    chunks.append(bytes(ALIGN - size % ALIGN))
                    size += ALIGN - size % ALIGN
                self._segment_starts.append(size)
                self._segments.append((material, form, start, end - start))
                chunks.append(form.der[start:end])
                size += end - start
                widest = max(widest, shape.widest)
                blob = form.der
                for a, b in shape.shared:  # the same bytes for every key of a type: once
                    shared_spans.add((blob[a:b], a % ALIGN))
                structural.update(int.from_bytes(blob[i : i + WORD], order) for i in shape.partial)
        for span, parity in shared_spans:  # the windows at even offsets of the DER
            structural.update(
                int.from_bytes(span[i : i + WORD], order)
                for i in range(len(span) - WORD + 1)
                if (i + parity) % ALIGN == 0
            )
        self._corpus = b"".join(chunks)
        return longest, widest

    def __len__(self) -> int:
        return len(self.materials)

    # -- the windows of the keys ----------------------------------------------------------------

    def _windows(self) -> Iterator[memoryview]:
        """The windows at even offsets of every indexed region, as integers (in C): those of a
        group one offset at a time (every key's window at that offset), those of the corpus
        all at once (with a few across two regions, which `_locate` discards)."""
        for group in self._groups:
            for offset in group.offsets:
                yield group.at(offset)
        view = memoryview(self._corpus)
        for shift in range(0, WORD, ALIGN):
            usable = (len(view) - shift) // WORD * WORD
            if usable > 0:
                yield view[shift : shift + usable].cast("Q")

    def _key_set(self) -> set[int]:
        """Every window of the keys in one set (built once, never changed after)."""
        if self._keys is None:
            words = set(self._constant)
            for view in self._windows():
                words.update(view)
            words -= _REPEATED
            self._keys = words
        return self._keys

    def _streams(self, size: int) -> bool:
        """Whether to stream the windows past the words of `size` bytes of image rather than
        build the set: while the image is small beside the keys, for the first few images."""
        if self._lookup != "auto":
            return self._lookup == "stream"
        if self._keys is not None:
            return False
        sampled = size * ALIGN // STRIDE
        if sampled * STREAM_FRACTION > self._window_count:
            return False
        if self._streamed >= STREAM_PASSES:
            return False
        self._streamed += 1
        return True

    def _present(self, candidates: set[int]) -> set[int]:
        """Which of `candidates` are windows of the keys: the windows go past the candidates
        once, in C, and no set of them is built."""
        present = candidates & self._constant
        if candidates:
            for view in self._windows():
                present |= candidates.intersection(view)
        return present - _REPEATED

    # -- raw bytes ------------------------------------------------------------------------------

    def _locate(self, value: int) -> tuple[_Place, ...]:
        """Which keys a window belongs to: `bytes.find` in C over the regions (memoised)."""
        places = self._where.get(value)
        if places is None:
            pattern = value.to_bytes(WORD, sys.byteorder)
            found = []
            for group in self._groups:
                found += group.places(pattern)
            at = self._corpus.find(pattern)
            while at >= 0:
                index = bisect_right(self._segment_starts, at) - 1
                material, form, start, length = self._segments[index]
                inside = at - self._segment_starts[index]
                if inside + WORD <= length:  # not straddling two segments
                    found.append(_Place(material, form, start + inside))
                at = self._corpus.find(pattern, at + 1)
            places = tuple(found)
            self._where[value] = places
        return places

    def _blocks(self, data: bytes, every: int) -> Iterator[_Block]:
        """The sampled 8-byte words of `data`: every `every`-th word, at ALIGN adjacent offsets,
        in blocks of about 64 KiB (a run of `8 * every + ALIGN + 6` bytes shared with a key
        always holds a sampled word that is indexed), up to the last whole word of `data`."""
        view = memoryview(data)
        stride = WORD * every
        block_size = stride * (BLOCK // stride)
        for block in range(0, len(data), block_size):
            for skew in range(ALIGN):
                size = min(block_size, len(data) - block - skew) // WORD * WORD
                if size > 0:
                    words = view[block + skew : block + skew + size].cast("Q")[::every]
                    yield _Block(block + skew, stride, words)

    def _dense(self, data: bytes, position: int) -> Iterator[_Block]:
        """Every window within `probe` bytes of `position`, as blocks (one per offset mod 8)."""
        view = memoryview(data)
        low = max(0, position - self.probe)
        high = min(len(data) - WORD, position + self.probe)  # the last window's start
        for first in range(low, min(low + WORD, high + 1)):
            size = ((high - first) // WORD + 1) * WORD
            yield _Block(first, WORD, view[first : first + size].cast("Q"))

    def _gather(self, data: bytes, every: int, out: set[int]) -> None:
        """Add to `out` every window of `data` that `_hits` may look up: the sampled words, and
        around each structural one the windows it probes."""
        for block in self._blocks(data, every):
            out.update(block.words)
            weak = self._structural.intersection(block.words)
            if weak:
                for position in block.positions(weak, data):
                    for dense in self._dense(data, position):
                        out.update(dense.words)

    def _hits(self, data: bytes, every: int, member: _Member) -> list[tuple[int, int]]:
        """(offset, window) of the sampled words that name a key; around a structural one, the
        windows within `probe` bytes that do."""
        order = sys.byteorder
        hits: list[tuple[int, int]] = []
        for block in self._blocks(data, every):
            found = block.found(member)  # in C; empty for almost every block
            if not found:
                continue
            for position in block.positions(found, data):
                value = int.from_bytes(data[position : position + WORD], order)
                if value not in self._structural:
                    hits.append((position, value))
                    continue
                around: list[tuple[int, int]] = []  # the unique windows around it
                for dense in self._dense(data, position):
                    named = dense.found(member) - self._structural
                    if named:
                        around += [
                            (q, int.from_bytes(data[q : q + WORD], order))
                            for q in dense.positions(named, data)
                        ]
                hits += sorted(around)
        return hits

    def _confirm(
        self, data: bytes, position: int, place: _Place, form: str
    ) -> tuple[int, int, tuple[int, int, str] | None]:
        """The run of `data` around `position` shared with `place`'s key (`[start, end)`), and
        what it is worth: `[start, end)` and encoding when it is a whole encoding, a component
        alone or a fragment with enough secret bytes; None when it is a coincidence."""
        self.confirmations += 1
        der = place.form.der
        back = _common_suffix(data, position, der, place.offset)
        ahead = _common_prefix(data, position, der, place.offset)
        base = position - place.offset
        judged = _judge(place.form, place.offset - back, place.offset + ahead, form)
        if judged is None:
            return position - back, position + ahead, None
        encoding, first, last = judged
        return position - back, position + ahead, (base + first, base + last, encoding)

    def _search_view(
        self, data: bytes, hits: Iterable[tuple[int, int]], form: str
    ) -> Iterator[tuple[KnownMaterial, int, int, str]]:
        """Confirm each hit once per key and DER form (later hits inside a run already compared
        are skipped); `data` is the image (binary) or decoded text."""
        covered: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for position, value in hits:
            for place in self._locate(value):
                done = covered.setdefault((id(place.material), id(place.form)), [])
                if any(a <= position and position + WORD <= b for a, b in done):
                    continue
                run_start, run_end, found = self._confirm(data, position, place, form)
                done.append((run_start, run_end))
                if found is not None:
                    start, end, encoding = found
                    yield place.material, start, end, encoding

    def search(self, data: bytes) -> list[Match]:
        if not self.materials or len(data) < WORD:
            return []
        matches: dict[tuple[int, int, str, int], Match] = {}

        def add(match: Match) -> None:
            matches[(match.start, match.end, match.encoding, id(match.material))] = match

        member: _Member = frozenset()
        pieces: Iterable[_Decoded] = self._decoded(data)
        if self._window_count:
            if self._streams(len(data)):
                # what the search will look up, then one pass of the key windows past it
                pieces = list(pieces)
                wanted: set[int] = set()
                self._gather(data, STRIDE_WORDS, wanted)
                # the decoded pieces of each form in one go, each at a multiple of the sampling
                # stride as when sampled alone (words across two pieces do no harm)
                for form in (BASE64, HEX):
                    stride = WORD * _every(form)
                    joined = b"".join(
                        [q.data + bytes(-len(q.data) % stride) for q in pieces if q.form == form]
                    )
                    self._gather(joined, _every(form), wanted)
                member = self._present(wanted)
            else:
                member = self._key_set()
            hits = self._hits(data, STRIDE_WORDS, member)
            for material, start, end, encoding in self._search_view(data, hits, BINARY):
                add(Match(material, start, end, encoding))
        for component, material, encoding in self._short:
            at = data.find(component)
            while at >= 0:
                add(Match(material, at, at + len(component), encoding))
                at = data.find(component, at + 1)
        for piece in pieces:
            for material, a, b, encoding in self._found_in(piece, member):
                add(piece.match(data, material, a, b, encoding))
        return list(matches.values())

    # -- text -----------------------------------------------------------------------------------

    def _decoded(self, data: bytes) -> Iterator[_Decoded]:
        """Text in `data` that may be a known key or certificate as base64 or ASCII hex, decoded.

        A run of text (base64 characters and separators; up to two other characters in a row,
        such as the `:` of a HEX record or the `,` of a CSV, do not end it) is decoded in chunks
        of TEXT_CHUNK bytes that overlap by `longest`, so a key across a cut is seen whole and a
        long run costs linear time: each piece of base64 at its four alignments, each run of 32
        hex digits or more at its two."""
        resume = 0
        for seed in _seeds(data):
            at = seed
            start = _run_start(data, max(resume, seed - self.longest - 512), seed)
            while at >= resume:
                end = _run_end(data, at, TEXT_CHUNK)
                yield from _decode(_normalise(data, start, end))
                if end < at + TEXT_CHUNK or end == len(data):
                    resume = end
                    break
                resume = at = start = max(at + 1, end - self.longest)  # the run goes on

    def _found_in(
        self, piece: _Decoded, member: _Member
    ) -> Iterator[tuple[KnownMaterial, int, int, str]]:
        """Known keys (by their windows) and certificates (by digest) in decoded text."""
        decoded, form = piece.data, piece.form
        if self._window_count:
            hits = self._hits(decoded, _every(form), member)
            yield from self._search_view(decoded, hits, form)
        if self._certs:
            for offset, der in der_objects(DerCertificateDetector._candidate, decoded):
                material = self._certs.get(fingerprint(der))
                if material is not None:
                    name = "base64 DER" if form == BASE64 else "ASCII hex of DER"
                    yield material, offset, offset + len(der), name


def _every(form: str) -> int:
    """Which words of decoded text are sampled: every 2nd for base64, every word for hex (at two
    offsets). A fragment is at least 32 characters, 24 bytes of base64 (16 of hex), and a run of
    `8 * every + ALIGN + 6` bytes always holds a sampled word at an even offset of the key."""
    return 2 if form == BASE64 else 1


def _decode(text: _Text) -> Iterator[_Decoded]:
    t = text.text
    for piece in _PIECES.finditer(t):
        end = piece.end()
        pad = len(t[end : end + 2]) - len(t[end : end + 2].lstrip(b"="))
        for align in range(4):
            start = piece.start() + align
            yield _Decoded(_b64decode(t[start:end]), BASE64, text, start, end, pad)
    for run in _HEX_RUN.finditer(t):
        for parity in range(2):
            start = run.start() + parity
            length = (run.end() - start) // 2 * 2
            yield _Decoded(binascii.unhexlify(t[start : start + length]), HEX, text, start, 0, 0)


def _seeds(data: bytes) -> Iterator[int]:
    """Offsets where at least TEXT_SEED base64 characters follow in a row (found in C)."""
    for base in range(0, len(data), TEXT_BLOCK):
        lo = max(0, base - TEXT_SEED + 1)
        classes = data[lo : base + TEXT_BLOCK].translate(_B64_CLASS)
        at = classes.find(_SEED)
        while at >= 0:
            yield lo + at
            stop = classes.find(b"\x00", at + TEXT_SEED)
            if stop < 0:
                break
            at = classes.find(_SEED, stop)


_RUN_END = b"\x00\x00\x00"  # three characters in a row that are not text end a run


def _run_start(data: bytes, lo: int, at: int) -> int:
    """Where the run of text holding `at` begins, looking back no further than `lo`."""
    classes = data[lo:at].translate(_RUN_CLASS)
    stop = classes.rfind(_RUN_END)
    return lo if stop < 0 else lo + stop + len(_RUN_END)


def _run_end(data: bytes, at: int, limit: int) -> int:
    """Where the run of text holding `at` ends, looking no further than `limit` bytes ahead
    (the window grows, so a short run costs little)."""
    end, step = at, 256
    stop_at = min(len(data), at + limit)
    while end < stop_at:
        hi = min(stop_at, end + step)
        classes = data[max(at, end - 2) : hi].translate(_RUN_CLASS)
        stop = classes.find(_RUN_END)
        if stop >= 0:
            return max(at, end - 2) + stop
        end, step = hi, step * 4
    return stop_at


def _normalise(data: bytes, start: int, end: int) -> _Text:
    """The base64 characters of `data[start:end]` joined across separators."""
    pieces: list[bytes] = []
    starts: list[int] = []
    lengths: list[int] = []
    for token in _TOKENS.finditer(data, start, end):
        if token.lastgroup == "b64":
            pieces.append(token.group())
            starts.append(token.start())
            lengths.append(token.end() - token.start())
    return _Text(b"".join(pieces), tuple(starts), tuple(lengths))


def _b64decode(text: bytes) -> bytes:
    """The bytes of base64 text without padding; a last partial group gives its whole bytes."""
    whole = len(text) // 4 * 4
    out = binascii.a2b_base64(text[:whole])  # what base64.b64decode calls, without its checks
    rest = len(text) - whole
    if rest >= 2:
        out += binascii.a2b_base64(text[whole:] + b"=" * (4 - rest))
    return out


def _pem_name(data: bytes, first: int, encoding: str) -> str:
    """A whole base64 key right after a PEM BEGIN line is named as PEM."""
    if (
        not encoding.startswith("base64 ")
        or _PEM_BEGIN.search(data[max(0, first - 80) : first]) is None
    ):
        return encoding
    label = encoding.removeprefix("base64 ").removesuffix("DER").strip()
    return f"PEM {label}".strip()


def _short_components(
    materials: Iterable[KnownMaterial],
) -> tuple[tuple[bytes, KnownMaterial, str], ...]:
    """(bytes, material, encoding) of each secret component of at least MIN_SECRET_BYTES and
    under MIN_FRAGMENT bytes, named as the sampled search names it whole: a raw little-endian
    form by its own name, a component inside a DER form as `raw <component>`."""
    out: dict[bytes, tuple[KnownMaterial, str]] = {}
    for material in materials:
        if material.p256:  # 32-byte components: the sampled search meets them
            continue
        for form in material.forms:
            for part in form.parts:
                if MIN_SECRET_BYTES <= part.end - part.start < MIN_FRAGMENT:
                    whole = (part.start, part.end) == (0, len(form.der))
                    name = form.name if whole else f"raw {part.name}"
                    out.setdefault(form.der[part.start : part.end], (material, name))
    return tuple((component, m, name) for component, (m, name) in out.items())


def _name(form: str, name: str) -> str:
    return {BINARY: name, BASE64: f"base64 {name}", HEX: f"ASCII hex of {name}"}[form]


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


def _judge(form_der: Der, n_start: int, n_end: int, form: str) -> tuple[str, int, int] | None:
    """Whether a shared run `[n_start, n_end)` of a DER form is worth reporting: as what, and
    which part of it (a component alone is reported at its own extent)."""
    if n_start == 0 and n_end == len(form_der.der):
        return _name(form, form_der.name), n_start, n_end
    if not form_der.parts or (n_end - n_start) * _UNITS[form] < MIN_FRAGMENT:
        return None  # short runs are coincidence
    slack = 4  # a DER INTEGER header or leading zeros
    if form != BASE64:
        for part in form_der.parts:
            if (
                part.start - slack <= n_start <= part.start
                and part.end <= n_end <= part.end + slack
            ):
                prefix = "raw" if form == BINARY else "ASCII hex of"
                return f"{prefix} {part.name}", part.start, part.end
    secret = sum(max(0, min(n_end, p.end) - max(n_start, p.start)) for p in form_der.parts)
    if secret < MIN_SECRET_BYTES:
        return None
    return f"fragment of {_name(form, form_der.name)}", n_start, n_end
