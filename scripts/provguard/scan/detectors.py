"""Always-on detectors: private keys and certificates nobody told us about.

Every candidate is *confirmed by parsing it with cryptography*: a bare PEM label (mbedTLS carries
them as strings), a public key or random bytes that happen to look like a DER header are not
reported. The detectors are small classes in `DETECTORS` (the tests iterate it); each finds its
candidates with one compiled regular expression over the whole segment. `detect` runs them with
one pass over the bytes (what bounds a scan of a large image): `candidates` finds where both DER
detectors may match, and whether a `-----BEGIN ` is there at all for the PEM ones.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, ClassVar, Protocol

from provguard.scan.model import Kind

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# `cryptography` (and `provguard.credentials`, which imports all of it) is imported by the
# functions that confirm a candidate: a scan that meets none, most files of a release tree, never
# pays for it (it is most of `provguard scan`'s start-up).

#: The longest PEM block or DER object looked at (an RSA-4096 PEM key is about 3.3 kB).
MAX_OBJECT = 16 * 1024


@dataclass(frozen=True)
class Detection:
    start: int
    end: int
    kind: Kind
    encoding: str
    key: str  # fingerprint
    algorithm: str | None = None


class Detector(Protocol):
    name: ClassVar[str]
    kind: ClassVar[Kind]

    def find(self, data: bytes) -> Iterator[Detection]: ...


# --- parsing helpers ---------------------------------------------------------------------------


def der_length(data: bytes, start: int) -> int | None:
    """Total length of the DER object at `start` (tag, length and content), if well formed."""
    if start + 2 > len(data):
        return None
    first = data[start + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 3 or start + 2 + count > len(data):
        return None
    length = int.from_bytes(data[start + 2 : start + 2 + count], "big")
    if length < 0x80 or (count > 1 and length >> (8 * (count - 1)) == 0):
        return None  # not the shortest form: not DER
    return 2 + count + length


def der_object(data: bytes, start: int) -> bytes | None:
    """The whole DER object at `start` (at most MAX_OBJECT bytes), if it is whole in `data`."""
    length = der_length(data, start)
    if length is not None and length <= MAX_OBJECT and start + length <= len(data):
        return data[start : start + length]
    return None


def der_objects(candidate: re.Pattern[bytes], data: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of each whole DER object that starts where `candidate` matches."""
    for match in candidate.finditer(data):
        der = der_object(data, match.start())
        if der is not None:
            yield match.start(), der


def _load_key(der: bytes) -> tuple[PrivateKeyTypes | None, bool]:
    """(key, encrypted): the parsed key, or (None, True) for an encrypted one, or (None, False)."""
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    try:
        return (
            serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True),
            False,
        )
    except TypeError:  # "Password was not given but private key is encrypted"
        return None, True
    except (ValueError, UnsupportedAlgorithm):
        return None, False


def describe(key: PrivateKeyTypes) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    return type(key).__name__.removesuffix("PrivateKey").lstrip("_")


def _key_detection(start: int, end: int, encoding: str, key: PrivateKeyTypes) -> Detection:
    from provguard.credentials import key_fingerprint  # noqa: PLC0415

    return Detection(start, end, Kind.PRIVATE_KEY, encoding, key_fingerprint(key), describe(key))


def _der_form(der: bytes) -> str:
    """PKCS#8, SEC1 or PKCS#1, from what follows the version INTEGER."""
    skip = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    version, following = der[skip + 2], der[skip + 3 : skip + 4]
    if following == b"\x30":
        return "PKCS#8"
    if version == 1 and following == b"\x04":
        return "SEC1"
    return "PKCS#1"


# --- DER ---------------------------------------------------------------------------------------

# What follows the SEQUENCE tag (0x30) a candidate starts with. Each pattern is a lookahead after
# that one byte, so every position is tried: a candidate that starts inside another one's bytes
# (random bytes before a key) is not skipped.
_ANY_LENGTH = rb"(?:[\x00-\x7f]|\x81[\x80-\xff]|\x82[\x01-\xff][\x00-\xff])"  # short, 1-2 bytes
_LONG_LENGTH = rb"(?:\x81[\x80-\xff]|\x82[\x01-\xff][\x00-\xff])"
# A private key: a DER length, INTEGER version 0 or 1, then an AlgorithmIdentifier SEQUENCE
# (PKCS#8), an OCTET STRING (SEC1) or an INTEGER (PKCS#1).
_KEY_AFTER_SEQUENCE = _ANY_LENGTH + rb"\x02\x01[\x00\x01][\x30\x04\x02]"
# A certificate: its long-form length, the TBSCertificate SEQUENCE (long-form length), then its
# [0] version or, for v1, its serial number INTEGER.
_CERTIFICATE_AFTER_SEQUENCE = _LONG_LENGTH + rb"\x30" + _LONG_LENGTH + rb"[\xa0\x02]"


def _confirmed(
    candidate: re.Pattern[bytes],
    confirm: Callable[[bytes, int], Detection | None],
    data: bytes,
) -> Iterator[Detection]:
    """What `confirm` accepts at each place `candidate` matches (DER objects may overlap)."""
    for match in candidate.finditer(data):
        found = confirm(data, match.start())
        if found is not None:
            yield found


class DerPrivateKeyDetector:
    """PKCS#8 (v1 and v2, short and long form lengths), SEC1 and PKCS#1 DER private keys."""

    name: ClassVar[str] = "DER private key"
    kind: ClassVar[Kind] = Kind.PRIVATE_KEY
    _candidate = re.compile(rb"\x30(?=" + _KEY_AFTER_SEQUENCE + rb")", re.DOTALL)

    def find(self, data: bytes) -> Iterator[Detection]:
        keys = list(_confirmed(self._candidate, self.confirm, data))
        cores = (match.start() for match in KEY_CORE.finditer(data))
        return iter(keys + salvaged_keys(data, cores, keys))

    @staticmethod
    def confirm(data: bytes, start: int) -> Detection | None:
        """The private key whose DER starts at `start`, if one does."""
        der = der_object(data, start)
        if der is None:
            return None
        key, encrypted = _load_key(der)
        if key is not None:
            return _key_detection(start, start + len(der), f"{_der_form(der)} DER", key)
        if encrypted:
            return None
        damaged = _damaged_ec_key(der)  # whole in form, refused by cryptography: still a key
        if damaged is None:
            return None
        form, key, damage = damaged
        return _key_detection(start, start + len(der), f"{form} DER, {damage}", key)


#: How an EC key is reported whose structure is whole but whose public key does not match its
#: private scalar (a byte changed in either): cryptography refuses it, the scalar is still there.
DAMAGED_EC = "damaged: its public key does not match its private key"
#: ... and one whose version (1, RFC 5915) was changed: refused too, its scalar still there.
DAMAGED_EC_VERSION = "damaged: its version is not 1"


def _damaged_ec_key(der: bytes) -> tuple[str, PrivateKeyTypes, str] | None:
    """("SEC1" or "PKCS#8", the key its private scalar makes, what is damaged) for the DER of an
    EC private key that cryptography refuses: whole in form on a named curve (read by asn1crypto,
    which checks no arithmetic), whatever its version, or a P-256 key laid out as cryptography
    writes it up to its scalar, whatever follows; None for anything else. The key is named by
    that scalar's own public key: the fingerprint of the original key when the damage is in its
    public key or its version."""
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    from provguard.scan.known import p256_scalar  # noqa: PLC0415 - known imports this module

    found = _ec_key_parts(der)
    if found is None:
        prefix = p256_scalar(der)
        found = None if prefix is None else (prefix[0], ec.SECP256R1(), prefix[1], 1)
    if found is None:
        return None
    form, curve, secret, version = found
    damage = DAMAGED_EC if version == 1 else DAMAGED_EC_VERSION
    try:
        return form, ec.derive_private_key(int.from_bytes(secret, "big"), curve), damage
    except ValueError:  # a scalar of zero or past the curve's order: not a key after all
        return None


def _ec_key_parts(der: bytes) -> tuple[str, ec.EllipticCurve, bytes, int] | None:
    """(form, curve, private scalar, version) of an EC private key DER that is whole in form.
    The version is returned, not checked: a key whose version byte was changed is still a key
    (the gate fails closed), reported as damaged."""
    from asn1crypto import keys as asn1_keys  # noqa: PLC0415
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    try:
        if _der_form(der) == "PKCS#8":
            info = asn1_keys.PrivateKeyInfo.load(der, strict=True)
            algorithm = info["private_key_algorithm"]
            if algorithm["algorithm"].native != "ec":
                return None
            form, parameters = "PKCS#8", algorithm["parameters"]
            sec1 = info["private_key"].parsed
        else:
            form = "SEC1"
            sec1 = asn1_keys.ECPrivateKey.load(der, strict=True)
            parameters = sec1["parameters"]
        if parameters.name != "named":
            return None
        version = int(sec1["version"])
        curve = ec.get_curve_for_oid(x509.ObjectIdentifier(parameters.chosen.dotted))()
        secret = sec1["private_key"].contents
    except (ValueError, TypeError, KeyError, LookupError, AttributeError):
        return None  # not that structure, or a curve cryptography lacks
    if len(secret) != (curve.key_size + 7) // 8:
        return None
    return form, curve, secret, version


# --- what is left of a key whose DER does not parse -------------------------------------------

#: The core of a private key, which survives damage to the framing around it (the outer lengths
#: and tags, which `DerPrivateKeyDetector.confirm` needs whole) and a key cut short after it:
#: - EC: SEC1's ECPrivateKey (RFC 5915), which PKCS#8 wraps too: INTEGER version 1, then the
#:   private scalar as an OCTET STRING of the curve's size (24 bytes, secp192r1, to 66, P-521);
#: - RSA: PKCS#1's RSAPrivateKey (RFC 8017), which PKCS#8 wraps too: INTEGER version 0, then the
#:   modulus, an INTEGER of 128 bytes or more (long-form length).
#: Both in one pattern: `re` finds its two fixed first bytes as fast as either core alone.
KEY_CORE = re.compile(rb"\x02\x01(?:\x01\x04[\x18-\x42]|\x00\x02[\x81\x82])")
#: ECPrivateKey's publicKey [1], a BIT STRING holding an uncompressed point, after the scalar.
_EC_PUBLIC_KEY = re.compile(
    rb"\xa1(?:[\x00-\x7f]|\x81[\x80-\xff])\x03(?:[\x00-\x7f]|\x81[\x80-\xff])\x00\x04"
)
#: How far before the core a PKCS#8 key's curve OID may end (the OCTET STRING and SEQUENCE
#: headers of the ECPrivateKey it wraps come between: 4 to 8 bytes, and some slack), and how far
#: after the scalar a SEC1 key's may start (the [0] parameters header: 2 bytes).
_OID_BEFORE, _OID_AFTER = 12, 4
#: How far after the scalar the public key may start: after SEC1's parameters (up to 13 bytes).
_POINT_AFTER = 16
#: Damage reported for such a key. An EC key is named by the key its scalar makes on the curve
#: written beside it, the original key's fingerprint while the scalar is whole; an RSA key by its
#: modulus and public exponent.
DAMAGED_FRAMING = "damaged: its DER framing does not parse"
#: rsaEncryption (PKCS#8's AlgorithmIdentifier): before an RSA core, it says the key is PKCS#8.
_RSA_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"
#: How far before the core it ends at most (NULL parameters, OCTET STRING and SEQUENCE headers).
_RSA_OID_BEFORE = 12
#: The longest INTEGER of an RSA key read (a 16384-bit modulus, with its header).
_RSA_INTEGER = 2 + 3 + 2049


@cache
def _named_curves() -> tuple[tuple[bytes, ec.EllipticCurve], ...]:
    """(DER of the OID, curve) of every named curve cryptography derives keys on, the NIST
    curves first: the curve assumed for a scalar of their size when no OID is left to say."""
    from asn1crypto.core import ObjectIdentifier  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    names = sorted(
        (n for n in dir(ec.EllipticCurveOID) if not n.startswith("_")),
        key=lambda n: (not n.startswith("SECP") or n.endswith("K1"), n),
    )
    out = []
    for name in names:
        oid = getattr(ec.EllipticCurveOID, name)
        try:
            curve = ec.get_curve_for_oid(oid)()
        except LookupError:  # pragma: no cover - an OID this cryptography has no curve for
            continue
        out.append((ObjectIdentifier(oid.dotted_string).dump(), curve))
    return tuple(out)


def salvaged_keys(data: bytes, cores: Iterable[int], keys: Sequence[Detection]) -> list[Detection]:
    """The keys whose core (`KEY_CORE`) is at one of `cores` and outside every key in `keys`
    (which are in order and do not overlap): what a changed length, tag or OID, lost first bytes
    or a key cut short leave of a key."""
    starts = [k.start for k in keys]
    out = []
    for core in cores:
        inside = bisect.bisect_right(starts, core) - 1
        if inside >= 0 and core < keys[inside].end:
            continue
        salvage = _salvaged_ec_key if data[core + 2] == 1 else _salvaged_rsa_key
        found = salvage(data, core)
        if found is not None:
            out.append(found)
    return out


def _salvaged_rsa_key(data: bytes, core: int) -> Detection | None:
    """The RSA key whose core is at `core`, when its modulus, public exponent, private exponent
    and primes follow it whole, one INTEGER after the other: the primes' product is the modulus,
    which no other bytes are. Its span ends after the last of the key's eight INTEGERs that is
    whole (the CRT values after the primes may be damaged or cut off)."""
    from asn1crypto.parser import parse  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    from provguard.credentials import key_fingerprint  # noqa: PLC0415

    values: list[int] = []
    at = core + 3
    while len(values) < 8:
        try:
            klass, _, tag, header, contents, _ = parse(data[at : at + _RSA_INTEGER])
        except ValueError:  # not a whole DER value there
            break
        if (klass, tag) != (0, 2):  # not an INTEGER
            break
        values.append(int.from_bytes(contents, "big"))
        at += len(header) + len(contents)
    if len(values) < 5:
        return None
    modulus, exponent, _, p, q = values[:5]
    if not 1 < p < modulus or p * q != modulus:  # p = 1, q = n is no key
        return None
    try:
        public = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except ValueError:  # an exponent no RSA key has
        return None
    form = (
        "PKCS#8"
        if _RSA_OID in data[max(0, core - _RSA_OID_BEFORE - len(_RSA_OID)) : core]
        else "PKCS#1"
    )
    encoding = f"{form} DER, {DAMAGED_FRAMING}"
    return Detection(
        core, at, Kind.PRIVATE_KEY, encoding, key_fingerprint(public), f"RSA-{public.key_size}"
    )


def _salvaged_ec_key(data: bytes, core: int) -> Detection | None:
    """The key whose core is at `core`, when the curve is still named beside it (its OID before
    the core, PKCS#8, or after the scalar, SEC1) or its public key follows the scalar; None for
    anything else (random bytes hold the core and either of those by a chance below 2**-70 at an
    offset)."""
    size = data[core + 4]
    end = core + 5 + size
    sized = [(oid, curve) for oid, curve in _named_curves() if (curve.key_size + 7) // 8 == size]
    if end > len(data) or not sized:
        return None
    named = next(
        (
            (form, curve)
            for oid, curve in sized
            for form, near in (
                ("PKCS#8", data[max(0, core - _OID_BEFORE - len(oid)) : core]),
                ("SEC1", data[end : end + _OID_AFTER + len(oid)]),
            )
            if oid in near
        ),
        None,
    )
    point = _EC_PUBLIC_KEY.search(data, end, end + _POINT_AFTER + 8)
    if named is None and point is None:
        return None
    form, curves = (named[0], [named[1]]) if named else ("EC", [c for _, c in sized])
    keys = _derived(int.from_bytes(data[core + 5 : end], "big"), curves)
    if not keys:  # zero or past the curve's order: no key
        return None
    key = keys[0]
    if point is not None and named is None:  # the curve whose public key follows, if any is
        written = data[point.end() - 1 : point.end() + 2 * size]
        key = next((k for k in keys if _uncompressed(k) == written), key)
    return _key_detection(core, end, f"{form} DER, {DAMAGED_FRAMING}", key)


def _derived(value: int, curves: list[ec.EllipticCurve]) -> list[ec.EllipticCurvePrivateKey]:
    """The key `value` is on each of `curves` where it is one (not zero, below the order)."""
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    out = []
    for curve in curves:
        try:
            out.append(ec.derive_private_key(value, curve))
        except ValueError:
            continue
    return out


def _uncompressed(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class DerCertificateDetector:
    """X.509 certificates in DER (a SEQUENCE whose first element is a SEQUENCE, both long form)."""

    name: ClassVar[str] = "DER certificate"
    kind: ClassVar[Kind] = Kind.CERTIFICATE
    _candidate = re.compile(rb"\x30(?=" + _CERTIFICATE_AFTER_SEQUENCE + rb")", re.DOTALL)

    def find(self, data: bytes) -> Iterator[Detection]:
        return _confirmed(self._candidate, self.confirm, data)

    @staticmethod
    def confirm(data: bytes, start: int) -> Detection | None:
        """The certificate whose DER starts at `start`, if one does."""
        der = der_object(data, start)
        if der is None:
            return None
        from cryptography import x509  # noqa: PLC0415

        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            return None
        return Detection(start, start + len(der), Kind.CERTIFICATE, "DER", _fp(der))


# --- PEM ---------------------------------------------------------------------------------------

# Between the lines of a PEM body in flash: line breaks, escaped "\n" (JSON, C strings), the
# quotes and backslash-newlines of a C string literal; spaces around a line are ignored.
_PEM_LINE_BREAK = re.compile(rb'(?:\\[rn]|\\\r?\n|["\r\n])+')
#: JSON's escapes of base64 characters, which some encoders write inside a PEM string: `\/`
#: (PHP's json_encode) and `\u002B` (.NET's System.Text.Json escapes `+`); `\u002F`, `\u003D`.
_JSON_ESCAPE = re.compile(rb"\\/|\\u00(2[bBfF]|3[dD])")


def _unescaped(line: bytes) -> bytes:
    """A line of a PEM body with JSON's escapes read back (a base64 body holds no backslash)."""
    if b"\\" not in line:
        return line
    return _JSON_ESCAPE.sub(lambda m: b"/" if m[1] is None else bytes([int(m[1], 16)]), line)


#: A damaged body shorter than this (base64 characters) cannot hold a 256-bit secret...
MIN_DAMAGED_BODY = 44
#: ... nor a body that decodes to fewer bytes than this (cryptography cannot load either).
MIN_UNREADABLE_DER = 32
#: How a private key block that cannot be read is reported: a finding, never "clean".
DAMAGED_PEM = "PEM, damaged: the base64 body does not decode"
UNLOADABLE_PEM = "PEM, does not load: damaged, or a key type cryptography cannot read"
_BASE64_TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


@dataclass(frozen=True)
class PemSpan:
    """A PEM block found at a byte span of an image (not a text file's `credentials.pem.PemBlock`:
    here the body may be split by C-string quotes or escaped newlines, and only its DER matters)."""

    start: int
    end: int
    label: str
    headers: tuple[str, ...]  # "Proc-Type: 4,ENCRYPTED" and the like (legacy encrypted PEM)
    der: bytes  # empty when the body is damaged
    #: A body that is base64 lines yet does not decode (a character changed, lost or added,
    #: padding in the middle): its characters, to name it by; empty for a body that decodes.
    damaged: bytes = field(default=b"", repr=False)


def pem_blocks(data: bytes, label_pattern: bytes, *, damaged: bool = False) -> Iterator[PemSpan]:
    """PEM blocks whose label matches, with a body that decodes; bare labels are skipped. With
    `damaged`, also blocks whose body looks like a PEM body but does not decode."""
    begin = re.compile(rb"-----BEGIN (" + label_pattern + rb")-----")
    for match in begin.finditer(data):
        label = match.group(1)
        end_marker = b"-----END " + label + b"-----"
        stop = data.find(end_marker, match.end(), match.end() + MAX_OBJECT)
        if stop < 0:
            continue
        headers: list[str] = []
        lines: list[bytes] = []
        for raw in _PEM_LINE_BREAK.split(data[match.end() : stop]):
            line = _unescaped(raw.strip())  # spaces, tabs, the \v \f a text tool may leave
            if not line:
                continue
            if not lines and b":" in line:
                headers.append(line.decode("ascii", "replace"))
            else:
                lines.append(line)
        der = _decoded(lines)
        span = (match.start(), stop + len(end_marker), label.decode(), tuple(headers))
        if der:
            yield PemSpan(*span, der)
        elif damaged and _damaged_body(lines):
            yield PemSpan(*span, b"", b"".join(lines))


def _pem_form(block: PemSpan) -> str:
    """How a PEM key that loaded is named: its DER form, and whether header lines came first."""
    return f"PEM {_der_form(block.der)}" + (" (with headers)" if block.headers else "")


def _decoded(lines: list[bytes]) -> bytes:
    """The bytes of a body of base64 lines; empty for no body (mbedTLS's label strings) or a
    body that is not base64 (padding only at its very end)."""
    try:
        return base64.b64decode(b"".join(lines), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _damaged_body(lines: list[bytes]) -> bool:
    """Whether lines that do not decode are a damaged PEM body rather than the other strings a
    TLS library keeps between its BEGIN and END labels: long enough to hold a secret, no NUL (a
    PEM text in flash is one C string), at most a few characters that are not base64 (one per
    line of 64), and lines of one width (give or take the damage) but the last."""
    text = b"".join(lines)
    if len(text) < MIN_DAMAGED_BODY or b"\0" in text:
        return False
    if len(text.translate(None, _BASE64_TEXT)) > max(2, len(text) // 64):
        return False
    widths = [len(line) for line in lines[:-1]]
    return not widths or max(widths) - min(widths) <= 2


class PemPrivateKeyDetector:
    """PEM private keys: PKCS#8, SEC1 ("EC"), PKCS#1 ("RSA"), encrypted PKCS#8 or legacy."""

    name: ClassVar[str] = "PEM private key"
    kind: ClassVar[Kind] = Kind.PRIVATE_KEY

    def find(self, data: bytes) -> Iterator[Detection]:
        if b"PRIVATE KEY-----" not in data:
            return
        for block in pem_blocks(data, rb"(?:[A-Z0-9]+ )*PRIVATE KEY", damaged=True):
            if block.damaged:  # what a changed character leaves: still most of a key
                yield self._unreadable(block, DAMAGED_PEM, block.damaged)
                continue
            found = self._read(block)
            if found is not None:
                yield found
            elif len(block.der) >= MIN_UNREADABLE_DER:  # damaged, or a type cryptography lacks
                yield self._unreadable(block, UNLOADABLE_PEM, block.der)

    def _read(self, block: PemSpan) -> Detection | None:
        """The key of a block that decodes, or None if cryptography cannot load it."""
        from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

        if block.label == "OPENSSH PRIVATE KEY":
            pem = (
                f"-----BEGIN {block.label}-----\n".encode()
                + base64.encodebytes(block.der)
                + f"-----END {block.label}-----\n".encode()
            )
            try:
                ssh_key = serialization.load_ssh_private_key(pem, None)
            except TypeError:  # encrypted with a passphrase
                return self._encrypted(block, "PEM OpenSSH (encrypted)")
            except (ValueError, UnsupportedAlgorithm):
                return None
            return _key_detection(block.start, block.end, "PEM OpenSSH", ssh_key)
        if block.headers:  # legacy "Proc-Type: 4,ENCRYPTED" PEM, or plain with a comment
            pem = "\n".join(
                [
                    f"-----BEGIN {block.label}-----",
                    *block.headers,
                    "",
                    base64.encodebytes(block.der).decode().strip(),
                    f"-----END {block.label}-----",
                    "",
                ]
            ).encode()
            try:
                loaded = serialization.load_pem_private_key(pem, None)
            except TypeError:
                return self._encrypted(block, "PEM (legacy encrypted)")
            except (ValueError, UnsupportedAlgorithm):
                pass  # headers cryptography refuses: the body is tried on its own below
            else:  # headers that encrypt nothing: the key is in the clear
                return _key_detection(block.start, block.end, _pem_form(block), loaded)
        key, encrypted = _load_key(block.der)
        if encrypted:
            return self._encrypted(block, "PEM encrypted PKCS#8")
        if key is not None:
            return _key_detection(block.start, block.end, _pem_form(block), key)
        return None

    @staticmethod
    def _unreadable(block: PemSpan, encoding: str, content: bytes) -> Detection:
        """A private key block that cannot be read: reported, never passed over (named by the
        SHA-256 of its bytes, or of its body's characters when they do not decode)."""
        return Detection(block.start, block.end, Kind.PRIVATE_KEY, encoding, _fp(content), None)

    @staticmethod
    def _encrypted(block: PemSpan, encoding: str) -> Detection:
        return Detection(block.start, block.end, Kind.PRIVATE_KEY, encoding, _fp(block.der), None)


class PemCertificateDetector:
    name: ClassVar[str] = "PEM certificate"
    kind: ClassVar[Kind] = Kind.CERTIFICATE

    def find(self, data: bytes) -> Iterator[Detection]:
        if b"CERTIFICATE-----" not in data:
            return
        from cryptography import x509  # noqa: PLC0415

        for block in pem_blocks(data, rb"(?:X509 |TRUSTED )?CERTIFICATE"):
            try:
                x509.load_der_x509_certificate(block.der)
            except ValueError:
                continue
            yield Detection(block.start, block.end, Kind.CERTIFICATE, "PEM", _fp(block.der))


def _fp(der: bytes) -> str:
    from provguard.credentials import fingerprint  # noqa: PLC0415

    return fingerprint(der)


#: The always-on detectors, in the order they run; the tests iterate this.
DETECTORS: tuple[Detector, ...] = (
    PemPrivateKeyDetector(),
    DerPrivateKeyDetector(),
    PemCertificateDetector(),
    DerCertificateDetector(),
)

# One pass for both DER detectors: a key's length is followed by an INTEGER (0x02), a
# certificate's by a SEQUENCE (0x30), so at most one alternative matches at a position.
_DER_CANDIDATE = re.compile(
    rb"\x30(?=(" + _KEY_AFTER_SEQUENCE + rb")|" + _CERTIFICATE_AFTER_SEQUENCE + rb")", re.DOTALL
)
_PEM_BEGIN = re.compile(rb"-----BEGIN ")  # re, not bytes.find: faster on firmware-like bytes
#: "BEGIN" in UTF-16, either byte order: a PEM block written by a Windows tool (see `engine`)
UTF16_BEGIN = re.compile(b"B\x00E\x00G\x00I\x00N")
#: The searches run block by block, each block read once from memory for all of them while it is
#: in the CPU cache (a quarter faster on a large image than three passes over it). A block is
#: searched up to SPAN bytes beyond its end, longer than any candidate or marker above.
BLOCK = 256 << 10
SPAN = 16


@dataclass(frozen=True)
class Candidates:
    """Where DER keys and certificates may start in a segment, and whether a PEM block (ASCII or
    UTF-16) may be in it: what every detector needs to know, found in one pass."""

    keys: tuple[int, ...]
    certificates: tuple[int, ...]
    pem: bool
    utf16: bool
    key_cores: tuple[int, ...] = ()  # KEY_CORE: what may be left of a key that does not parse


def candidates(data: bytes) -> Candidates:
    """The `Candidates` of `data`, block by block (see BLOCK)."""
    keys: list[int] = []
    certificates: list[int] = []
    cores: list[int] = []
    pem = utf16 = False
    for start in range(0, len(data), BLOCK):
        own, stop = start + BLOCK, min(len(data), start + BLOCK + SPAN)
        for match in _DER_CANDIDATE.finditer(data, start, stop):
            if match.start() < own:
                (keys if match.group(1) is not None else certificates).append(match.start())
        cores += [m.start() for m in KEY_CORE.finditer(data, start, stop) if m.start() < own]
        pem = pem or _PEM_BEGIN.search(data, start, stop) is not None
        utf16 = utf16 or UTF16_BEGIN.search(data, start, stop) is not None
    return Candidates(tuple(keys), tuple(certificates), pem, utf16, tuple(cores))


def detect(
    data: bytes, detectors: Sequence[Detector] = DETECTORS, found: Candidates | None = None
) -> list[Detection]:
    """What `detectors` find in `data`, detector by detector: the same as each one's `find`, in
    one pass over the bytes (`candidates`, or `found` when the caller has them)."""
    if found is None:
        found = candidates(data)
    out: list[Detection] = []
    for detector in detectors:
        if type(detector) is DerPrivateKeyDetector:
            keys = [k for at in found.keys if (k := DerPrivateKeyDetector.confirm(data, at))]
            out += keys + salvaged_keys(data, found.key_cores, keys)
        elif type(detector) is DerCertificateDetector:
            confirmed = (DerCertificateDetector.confirm(data, at) for at in found.certificates)
            out += [d for d in confirmed if d is not None]
        elif found.pem or not isinstance(detector, PemPrivateKeyDetector | PemCertificateDetector):
            out += detector.find(data)
    return out
