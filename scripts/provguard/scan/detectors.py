"""Always-on detectors: private keys and certificates nobody told us about.

Every candidate is *confirmed by parsing it with cryptography*: a bare PEM label (mbedTLS carries
them as strings), a public key or random bytes that happen to look like a DER header are not
reported. The detectors are small classes in `DETECTORS` (the tests iterate it); each finds its
candidates with one compiled regular expression over the whole segment.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from provguard.credentials import fingerprint, key_fingerprint
from provguard.scan.model import Kind

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


def der_objects(candidate: re.Pattern[bytes], data: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of each whole DER object that starts where `candidate` matches."""
    for match in candidate.finditer(data):
        start = match.start()
        length = der_length(data, start)
        if length is not None and length <= MAX_OBJECT and start + length <= len(data):
            yield start, data[start : start + length]


def _load_key(der: bytes) -> tuple[PrivateKeyTypes | None, bool]:
    """(key, encrypted): the parsed key, or (None, True) for an encrypted one, or (None, False)."""
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
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    return type(key).__name__.removesuffix("PrivateKey").lstrip("_")


def _key_detection(start: int, end: int, encoding: str, key: PrivateKeyTypes) -> Detection:
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


class DerPrivateKeyDetector:
    """PKCS#8 (v1 and v2, short and long form lengths), SEC1 and PKCS#1 DER private keys."""

    name: ClassVar[str] = "DER private key"
    kind: ClassVar[Kind] = Kind.PRIVATE_KEY
    # SEQUENCE, a DER length (short form, or 1-2 length bytes), INTEGER version 0 or 1, then an
    # AlgorithmIdentifier SEQUENCE (PKCS#8), an OCTET STRING (SEC1) or an INTEGER (PKCS#1).
    _candidate = re.compile(
        rb"\x30(?:[\x00-\x7f]|\x81[\x80-\xff]|\x82[\x01-\xff][\x00-\xff])\x02\x01[\x00\x01][\x30\x04\x02]",
        re.DOTALL,
    )

    def find(self, data: bytes) -> Iterator[Detection]:
        for start, der in der_objects(self._candidate, data):
            length = len(der)
            key, _ = _load_key(der)
            if key is not None:
                yield _key_detection(start, start + length, f"{_der_form(der)} DER", key)


class DerCertificateDetector:
    """X.509 certificates in DER (a SEQUENCE whose first element is a SEQUENCE, both long form)."""

    name: ClassVar[str] = "DER certificate"
    kind: ClassVar[Kind] = Kind.CERTIFICATE
    # Certificate and TBSCertificate SEQUENCEs (long-form lengths), then the TBSCertificate's
    # [0] version or, for v1, its serial number INTEGER.
    _candidate = re.compile(
        rb"\x30(?:\x81[\x80-\xff]|\x82[\x01-\xff][\x00-\xff])"
        rb"\x30(?:\x81[\x80-\xff]|\x82[\x01-\xff][\x00-\xff])[\xa0\x02]",
        re.DOTALL,
    )

    def find(self, data: bytes) -> Iterator[Detection]:
        for start, der in der_objects(self._candidate, data):
            length = len(der)
            try:
                x509.load_der_x509_certificate(der)
            except ValueError:
                continue
            yield Detection(start, start + length, Kind.CERTIFICATE, "DER", _fp(der))


# --- PEM ---------------------------------------------------------------------------------------

# Between the lines of a PEM body in flash: line breaks, escaped "\n" (JSON, C strings), the
# quotes and backslash-newlines of a C string literal; spaces around a line are ignored.
_PEM_LINE_BREAK = re.compile(rb'(?:\\[rn]|\\\r?\n|["\r\n])+')
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True)
class PemSpan:
    """A PEM block found at a byte span of an image (not a text file's `credentials.pem.PemBlock`:
    here the body may be split by C-string quotes or escaped newlines, and only its DER matters)."""

    start: int
    end: int
    label: str
    headers: tuple[str, ...]  # "Proc-Type: 4,ENCRYPTED" and the like (legacy encrypted PEM)
    der: bytes


def pem_blocks(data: bytes, label_pattern: bytes) -> Iterator[PemSpan]:
    """PEM blocks whose label matches, with a body that decodes; bare labels are skipped."""
    begin = re.compile(rb"-----BEGIN (" + label_pattern + rb")-----")
    for match in begin.finditer(data):
        label = match.group(1)
        end_marker = b"-----END " + label + b"-----"
        stop = data.find(end_marker, match.end(), match.end() + MAX_OBJECT)
        if stop < 0:
            continue
        headers: list[str] = []
        chunks: list[bytes] = []
        for raw in _PEM_LINE_BREAK.split(data[match.end() : stop]):
            line = raw.strip(b" \t")
            if not line:
                continue
            if not chunks and b":" in line:
                headers.append(line.decode("ascii", "replace"))
            elif _BASE64_LINE.fullmatch(line):
                chunks.append(line)
            else:
                chunks = []
                break
        if not chunks:
            continue  # a label with no body (mbedTLS's strings) or a body that is not base64
        try:
            der = base64.b64decode(b"".join(chunks), validate=True)
        except (binascii.Error, ValueError):
            continue
        if der:
            yield PemSpan(
                match.start(), stop + len(end_marker), label.decode(), tuple(headers), der
            )


class PemPrivateKeyDetector:
    """PEM private keys: PKCS#8, SEC1 ("EC"), PKCS#1 ("RSA"), encrypted PKCS#8 or legacy."""

    name: ClassVar[str] = "PEM private key"
    kind: ClassVar[Kind] = Kind.PRIVATE_KEY

    def find(self, data: bytes) -> Iterator[Detection]:
        if b"PRIVATE KEY-----" not in data:
            return
        for block in pem_blocks(data, rb"(?:[A-Z0-9]+ )*PRIVATE KEY"):
            if block.label == "OPENSSH PRIVATE KEY":
                pem = (
                    f"-----BEGIN {block.label}-----\n".encode()
                    + base64.encodebytes(block.der)
                    + f"-----END {block.label}-----\n".encode()
                )
                try:
                    ssh_key = serialization.load_ssh_private_key(pem, None)
                except TypeError:  # encrypted with a passphrase
                    yield self._encrypted(block, "PEM OpenSSH (encrypted)")
                    continue
                except (ValueError, UnsupportedAlgorithm):
                    continue
                yield _key_detection(block.start, block.end, "PEM OpenSSH", ssh_key)
                continue
            if block.headers:  # legacy "Proc-Type: 4,ENCRYPTED" PEM: confirm it is encrypted
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
                    serialization.load_pem_private_key(pem, None)
                except TypeError:
                    yield self._encrypted(block, "PEM (legacy encrypted)")
                except ValueError:
                    pass
                continue
            key, encrypted = _load_key(block.der)
            if encrypted:
                yield self._encrypted(block, "PEM encrypted PKCS#8")
            elif key is not None:
                yield _key_detection(block.start, block.end, f"PEM {_der_form(block.der)}", key)

    @staticmethod
    def _encrypted(block: PemSpan, encoding: str) -> Detection:
        return Detection(block.start, block.end, Kind.PRIVATE_KEY, encoding, _fp(block.der), None)


class PemCertificateDetector:
    name: ClassVar[str] = "PEM certificate"
    kind: ClassVar[Kind] = Kind.CERTIFICATE

    def find(self, data: bytes) -> Iterator[Detection]:
        if b"CERTIFICATE-----" not in data:
            return
        for block in pem_blocks(data, rb"(?:X509 |TRUSTED )?CERTIFICATE"):
            try:
                x509.load_der_x509_certificate(block.der)
            except ValueError:
                continue
            yield Detection(block.start, block.end, Kind.CERTIFICATE, "PEM", _fp(block.der))


def _fp(der: bytes) -> str:
    return fingerprint(der)


#: The always-on detectors, in the order they run; the tests iterate this.
DETECTORS: tuple[Detector, ...] = (
    PemPrivateKeyDetector(),
    DerPrivateKeyDetector(),
    PemCertificateDetector(),
    DerCertificateDetector(),
)
