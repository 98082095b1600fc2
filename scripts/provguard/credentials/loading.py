"""Reading credential files (PEM, DER, Nordic's JSON exports) into parsed items.

Every parse is `cryptography`'s. An item keeps the line it came from, so problems can point at it,
and its normalised PEM, which is what the modem or the header receives.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.utils import CryptographyDeprecationWarning

from provguard.credentials import pem
from provguard.credentials.model import CredentialFile, CredentialSet, Slot
from provguard.errors import InputError

#: Keys of the JSON that nRF Connect for Desktop's Link Monitor / Cellular Monitor
#: "Certificate Manager" imports and exports.
JSON_MEMBERS = {Slot.CA: "caCert", Slot.CERT: "clientCert", Slot.KEY: "privateKey"}
JSON_SEC_TAG = "secTag"

#: Read no more than this: a credential is a few kB; a multi-megabyte file is the wrong file.
MAX_FILE_SIZE = 1 << 20


class ItemKind(enum.Enum):
    CERTIFICATE = "certificate"
    PRIVATE_KEY = "private key"
    ENCRYPTED_PRIVATE_KEY = "encrypted private key"
    PUBLIC_KEY = "public key"
    CERTIFICATE_REQUEST = "certificate signing request"
    EC_PARAMETERS = "EC parameters"
    OPENSSH_KEY = "OpenSSH private key"
    TRUSTED_CERTIFICATE = "OpenSSL TRUSTED CERTIFICATE"
    UNKNOWN = "unknown"


_LABEL_KINDS = {
    "CERTIFICATE": ItemKind.CERTIFICATE,
    "X509 CERTIFICATE": ItemKind.CERTIFICATE,
    "TRUSTED CERTIFICATE": ItemKind.TRUSTED_CERTIFICATE,
    "PRIVATE KEY": ItemKind.PRIVATE_KEY,
    "EC PRIVATE KEY": ItemKind.PRIVATE_KEY,
    "RSA PRIVATE KEY": ItemKind.PRIVATE_KEY,
    "ENCRYPTED PRIVATE KEY": ItemKind.ENCRYPTED_PRIVATE_KEY,
    "PUBLIC KEY": ItemKind.PUBLIC_KEY,
    "RSA PUBLIC KEY": ItemKind.PUBLIC_KEY,
    "EC PUBLIC KEY": ItemKind.PUBLIC_KEY,
    "CERTIFICATE REQUEST": ItemKind.CERTIFICATE_REQUEST,
    "NEW CERTIFICATE REQUEST": ItemKind.CERTIFICATE_REQUEST,
    "EC PARAMETERS": ItemKind.EC_PARAMETERS,
    "OPENSSH PRIVATE KEY": ItemKind.OPENSSH_KEY,
}


@dataclass(frozen=True)
class Item:
    """One PEM block or DER blob of a credential file, parsed as far as it goes."""

    kind: ItemKind
    line: int | None  # BEGIN line; None for DER
    #: Normalised PEM (LF, one trailing newline); empty for what is never stored (a public key,
    #: a CSR, a binary file that is no credential).
    text: str = field(default="", repr=False)
    certificate: x509.Certificate | None = None
    private_key: PrivateKeyTypes | None = field(default=None, repr=False)
    parse_error: str | None = None  # why it did not decode or parse, explained for people
    #: Where a PEM block's base64 stops decoding; None when it decoded (or for DER), so a
    #: parse_error without it is DER that does not parse.
    error_line: int | None = None
    notes: tuple[str, ...] = ()  # what cryptography accepted but called non-standard


@dataclass(frozen=True)
class ParsedFile:
    file: CredentialFile
    items: tuple[Item, ...]
    framing: tuple[pem.FramingIssue, ...]
    outside: tuple[pem.TextLine, ...]
    is_der: bool


# --- reading ---------------------------------------------------------------------------------


def read_file(path: Path) -> bytes:
    """A credential file's bytes, or an InputError naming the file."""
    try:
        if path.is_dir():
            raise InputError("is a directory, not a credential file", path=path)
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    if len(data) > MAX_FILE_SIZE:
        raise InputError(f"larger than {MAX_FILE_SIZE} bytes: not a credential file", path=path)
    return data


def _json_document(path: Path) -> dict[str, object]:
    raw = read_file(path)
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text, so not a JSON credential export", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deeply: not a credential export", path=path) from None
    except ValueError:  # an integer with more digits than Python converts
        raise InputError("JSON holds a number too long to read", path=path) from None
    if not isinstance(document, dict):
        raise InputError("expected a JSON object with caCert/clientCert/privateKey", path=path)
    return document


def _json_member(path: Path, slot: Slot, member: str, value: object) -> CredentialFile | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f'"{member}" must be a string holding PEM text', path=path)
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        raise InputError(
            f'"{member}" holds an escaped lone surrogate (\\uD800-\\uDFFF): not text', path=path
        ) from None
    return CredentialFile(slot, f"{path}:{member}", data)


def _json_sec_tag(path: Path, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{1,20}", value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f'"{JSON_SEC_TAG}" must be a whole number', path=path)
    if abs(value) >= 10**20:
        raise InputError(f'"{JSON_SEC_TAG}" is far too large for a sec_tag', path=path)
    return value


def load_json_bundle(path: Path) -> CredentialSet:
    """A Link Monitor / Cellular Monitor certificate-manager JSON export."""
    document = _json_document(path)
    files = {
        slot: _json_member(path, slot, member, document.get(member))
        for slot, member in JSON_MEMBERS.items()
    }
    if not any(files.values()):
        raise InputError(
            'none of "caCert", "clientCert", "privateKey" is present: not a credential export',
            path=path,
        )
    sec_tag = _json_sec_tag(path, document.get(JSON_SEC_TAG))
    return CredentialSet(files[Slot.CA], files[Slot.CERT], files[Slot.KEY], sec_tag)


def load_credential_set(
    *,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    from_json: Path | None = None,
) -> CredentialSet:
    """Read the files; files named one by one take precedence over a JSON export's members."""
    base = load_json_bundle(from_json) if from_json is not None else CredentialSet(None, None, None)

    def pick(slot: Slot, path: Path | None) -> CredentialFile | None:
        return base.get(slot) if path is None else CredentialFile(slot, str(path), read_file(path))

    return CredentialSet(
        pick(Slot.CA, ca), pick(Slot.CERT, cert), pick(Slot.KEY, key), base.sec_tag
    )


# --- parsing ---------------------------------------------------------------------------------


def parse_file(file: CredentialFile, *, validate: bool = True) -> ParsedFile:
    data = file.data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        return ParsedFile(file, (), (pem.FramingIssue(None, "the file is empty"),), (), False)
    if not pem.looks_like_pem(data) and data[:1] == b"\x30":
        return ParsedFile(file, (_parse_der(data, validate),), (), (), True)
    text = data.decode("latin-1")  # every byte maps; non-ASCII is diagnosed by the checks
    parsed = pem.parse(text)
    items = tuple(_parse_block(block, validate) for block in parsed.blocks)
    return ParsedFile(file, items, parsed.issues, parsed.outside, False)


def _parse_block(block: pem.PemBlock, validate: bool) -> Item:
    kind = _LABEL_KINDS.get(block.label, ItemKind.UNKNOWN)
    if block.encrypted_legacy:
        kind = ItemKind.ENCRYPTED_PRIVATE_KEY
    text = block.normalised()
    der = pem.decode_body(block)
    if isinstance(der, pem.BodyDamage):
        # A damaged body: keep the kind from the label; the damage says what is wrong.
        return Item(kind, block.begin_line, text, parse_error=der.message, error_line=der.line)
    item = _parse_der_as(kind, der, validate)
    return dataclasses.replace(item, line=block.begin_line, text=text)


def _parse_der_as(kind: ItemKind, der: bytes, validate: bool) -> Item:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CryptographyDeprecationWarning)
        item = _parse_der_as_quietly(kind, der, validate)
    notes = tuple(str(w.message) for w in caught if w.category is CryptographyDeprecationWarning)
    return dataclasses.replace(item, notes=notes) if notes else item


def _parse_der_as_quietly(kind: ItemKind, der: bytes, validate: bool) -> Item:
    """The certificate or key a PEM label announces; other kinds are never stored, so never read."""
    try:
        if kind is ItemKind.CERTIFICATE:
            cert = x509.load_der_x509_certificate(der)
            damage = certificate_damage(cert)
            if damage is not None:
                return Item(kind, None, parse_error=damage)
            return Item(kind, None, certificate=cert)
        if kind is ItemKind.PRIVATE_KEY:
            return Item(kind, None, private_key=_load_der_key(der, validate))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return Item(kind, None, parse_error=explain_parse_error(exc))
    return Item(kind, None)


def certificate_damage(cert: x509.Certificate) -> str | None:
    """Which part of a certificate that loaded cannot be read (cryptography parses parts lazily)."""
    parts = (
        # The validity dates are not here: cryptography reads them when it loads the certificate.
        ("the subject or issuer name", lambda: (cert.subject, cert.issuer)),
        ("the public key (subjectPublicKeyInfo)", cert.public_key),
        ("the extensions", lambda: list(cert.extensions)),
        ("the signature algorithm", lambda: cert.signature_hash_algorithm),
    )
    for part, read in parts:
        try:
            read()
        except x509.DuplicateExtension as exc:  # not a ValueError: it would end in a traceback
            return f"{part} is damaged (extension {exc.oid.dotted_string} appears twice)"
        except (ValueError, UnsupportedAlgorithm) as exc:
            detail = explain_parse_error(exc) if "ParseError" in str(exc) else "unreadable"
            return f"{part} is damaged or unsupported ({detail})"
    return None


def _load_der_key(der: bytes, validate: bool) -> PrivateKeyTypes:
    # Skipping the RSA consistency check is only for finding a known key's bytes (scan); every
    # check of a key that will be used validates it.
    return serialization.load_der_private_key(
        der, password=None, unsafe_skip_rsa_key_validation=not validate
    )


def _parse_der(der: bytes, validate: bool) -> Item:
    """A binary file: a DER certificate, private key, public key or CSR (converted to PEM)."""
    errors: list[str] = []
    try:
        cert = x509.load_der_x509_certificate(der)
        text = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return dataclasses.replace(_parse_der_as(ItemKind.CERTIFICATE, der, validate), text=text)
    except ValueError as exc:
        errors.append(explain_parse_error(exc))
    try:
        key = _load_der_key(der, validate)
        return Item(ItemKind.PRIVATE_KEY, None, _key_to_pem(key, der), private_key=key)
    except TypeError:  # encrypted: stored as it is, in PEM (RFC 7468's label for PKCS #8)
        return Item(ItemKind.ENCRYPTED_PRIVATE_KEY, None, _pem("ENCRYPTED PRIVATE KEY", der))
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        serialization.load_der_public_key(der)
        return Item(ItemKind.PUBLIC_KEY, None)
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        x509.load_der_x509_csr(der)
        return Item(ItemKind.CERTIFICATE_REQUEST, None)
    except ValueError:
        pass
    return Item(
        ItemKind.UNKNOWN,
        None,
        parse_error=f"binary file that is not a DER certificate or key ({errors[0]})",
    )


def _pem(label: str, der: bytes) -> str:
    """RFC 7468 text: the base64 of `der` in lines of 64 characters between BEGIN and END."""
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def _key_to_pem(key: PrivateKeyTypes, der: bytes) -> str:
    """PEM in the DER's own format (PKCS#8 stays PKCS#8, SEC1/PKCS#1 stays traditional)."""
    none = serialization.NoEncryption()
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        try:
            if key.private_bytes(serialization.Encoding.DER, fmt, none) == der:
                return key.private_bytes(serialization.Encoding.PEM, fmt, none).decode("ascii")
        except ValueError:
            continue
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, none).decode("ascii")


_PARSE_ERROR = re.compile(
    r"ParseError \{ kind: (\w+)(?: \{ needed: (\d+) \})?(?:.*location: \[(.*)\])?"
)
_SHORT_DATA = re.compile(r"short data \(needed at least (\d+) additional bytes\)")
_KEY_DETAIL = re.compile(r"ASN\.1 parsing error: ([a-z ]*[a-z])")


def explain_parse_error(exc: Exception) -> str:
    """cryptography's ASN.1 error, told as what happened to the file (never quoting its bytes)."""
    text = str(exc)
    match = _PARSE_ERROR.search(text)
    short = _SHORT_DATA.search(text)
    where = ""
    if match and match.group(3):
        # The innermost named field: an index ("0", the first element of a list) names nothing.
        parts = [p.strip().strip('"') for p in match.group(3).split(",")]
        named = [p for p in parts if not p.isdigit()]
        where = f" in {named[-1].replace('::', '.')}" if named else ""
    if (match and match.group(1) == "ShortData") or short:
        needed = (match.group(2) if match else None) or (short.group(1) if short else None)
        more = f" ({needed} more bytes were expected)" if needed else ""
        return f"the DER is truncated{where}{more}"
    if match and match.group(1) == "ExtraData":
        return "the DER has extra bytes after its end (two objects joined, or trailing garbage)"
    if match and match.group(1) in {"UnexpectedTag", "InvalidValue", "InvalidLength"}:
        return f"the DER structure is damaged{where} ({match.group(1)})"
    if isinstance(exc, UnsupportedAlgorithm):  # "Unknown key type: <OID>", "Curve <OID> is ..."
        return f"an unsupported key type or curve ({text})"
    # A key: cryptography's sentence lists every possible cause (among them "an unsupported key
    # type"); the detail after it says which one it was.
    detail = _KEY_DETAIL.search(text)
    if detail:
        return f"the DER structure is damaged ({detail.group(1)})"
    return "the DER does not parse as what the PEM label says"


# --- the public helpers other modules use ----------------------------------------------------


def load_certificates(file: CredentialFile) -> list[x509.Certificate]:
    """Every certificate in a PEM or DER file; InputError when there is none that parses."""
    parsed = parse_file(file)
    certs = [item.certificate for item in parsed.items if item.certificate is not None]
    if not certs:
        detail = next((i.parse_error for i in parsed.items if i.parse_error), None)
        raise InputError(
            f"no certificate could be read{f': {detail}' if detail else ''}", path=file.name
        )
    return certs


def load_private_key(file: CredentialFile, *, validate: bool = True) -> PrivateKeyTypes:
    """The unencrypted private key of a PEM or DER file; InputError otherwise.

    `validate=False` skips the (slow) RSA consistency check: for searching a key's bytes only.
    """
    parsed = parse_file(file, validate=validate)
    for item in parsed.items:
        if item.private_key is not None:
            return item.private_key
    if any(item.kind is ItemKind.ENCRYPTED_PRIVATE_KEY for item in parsed.items):
        raise InputError("the private key is encrypted; decrypt it first", path=file.name)
    detail = next((i.parse_error for i in parsed.items if i.parse_error), None)
    raise InputError(
        f"no private key could be read{f': {detail}' if detail else ''}", path=file.name
    )


def fingerprint(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def cert_fingerprint(cert: x509.Certificate) -> str:
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))


def public_key_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_fingerprint(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    """Names a key without revealing it: the SHA-256 of its public SubjectPublicKeyInfo."""
    make_public = getattr(key, "public_key", None)
    public = make_public() if callable(make_public) else key
    return fingerprint(public_key_der(cast(PublicKeyTypes, public)))
