"""The AT commands enrollment adds to provguard.at and what their answers mean: `%KEYGEN` (the
CSR, bound to its COSE_Sign1 attestation), `%CMNG=2` read-back, `+CGSN`, `+CGMR`. Pure functions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid as uuid_module
from dataclasses import dataclass

import cbor2
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard import at
from provguard.errors import ProblemsFoundError

#: `%CMNG` credential types enrollment touches (nRF91 AT command reference).
ROOT_CA = 0
CLIENT_CERT = 1
PRIVATE_KEY = 2

CGMR = at.AtCommand("AT+CGMR", "AT+CGMR")


def keygen(sec_tag: int, subject: str) -> at.AtCommand:
    """`AT%KEYGEN=<tag>,2,0,"<subject>"`: a client private key (type 2), answer a CSR (0)."""
    at.cmng_list(sec_tag)  # the same sec_tag range check as every %CMNG command
    text = f'AT%KEYGEN={sec_tag},{PRIVATE_KEY},0,"{subject}"'
    return at.AtCommand(text, text)


def cmng_read(sec_tag: int, cred_type: int) -> at.AtCommand:
    at.cmng_list(sec_tag)
    text = f"AT%CMNG=2,{sec_tag},{cred_type}"
    return at.AtCommand(text, text)


_IMEI_RE = re.compile(r'^(?:\+CGSN:\s*"?)?(\d{15})"?$')


def parse_imei(response: at.Response) -> str:
    for line in response.lines:
        match = _IMEI_RE.match(line.strip())
        if match:
            return match.group(1)
    raise at.UnexpectedResponseError("the answer to AT+CGSN holds no 15-digit IMEI")


def parse_firmware(response: at.Response) -> str:
    for line in response.lines:
        stripped = line.strip()
        if stripped and all(0x20 <= ord(c) < 0x7F for c in stripped):
            return stripped[:80]
    raise at.UnexpectedResponseError("the answer to AT+CGMR names no firmware")


#: What `+CME ERROR` means in answer to %KEYGEN (nRF91 AT command reference, %KEYGEN).
KEYGEN_CME: dict[int, str] = {
    514: "not allowed: a reserved sec_tag, or key generation is not permitted on this modem",
    515: "memory full: the modem's credential storage has no room for another key",
    518: "not allowed while the modem is active: it did not stay offline after AT+CFUN=4 "
    "(an application may be switching it back on)",
    519: "a private key already exists at this sec_tag",
    523: "the modem failed to generate the key",
}


class KeygenRefusedError(ProblemsFoundError):
    """The modem refused %KEYGEN (exit 1), with its reason as the AT reference gives it."""

    def __init__(self, error: at.ModemError):
        code = error.code
        # %KEYGEN's own meaning of the code where its reference gives one, else the generic one
        reason = KEYGEN_CME.get(code) if code is not None else None
        said = f"{error.final.text} ({reason})" if reason else error.final.describe()
        super().__init__(f"{error.command.summary}: the modem refused it: {said}")
        self.code = code


class CsrError(ProblemsFoundError):
    """The modem's CSR is not what was asked for (exit 1)."""


def _b64url(text: str, what: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise CsrError(f"%KEYGEN: the {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CsrError(f"%KEYGEN: the {what} is not base64url") from None


@dataclass(frozen=True)
class KeygenAnswer:
    """What `%KEYGEN` answered: the CSR (as cryptography reads it), its DER exactly as the modem
    sent it, and the device UUID of the COSE_Sign1 attestation."""

    csr: x509.CertificateSigningRequest
    der: bytes
    device_uuid: str


def parse_keygen(response: at.Response, sec_tag: int) -> KeygenAnswer:
    """The CSR of `%KEYGEN: "<base64url CSR DER>.<base64url COSE_Sign1>"` (nRF91 AT reference,
    %KEYGEN), bound to its attestation: the COSE_Sign1 payload must name this CSR (its SHA-256),
    a CSR message and this sec_tag. The layout is the one Nordic's parser reads (nRFCloud/utils
    `src/nrfcloud_utils/modem_credentials_parser.py`). Its signature is made with the modem's
    device identity key, which a station does not have: it is not verified here."""
    for line in response.lines:
        match = re.match(r'^%KEYGEN:\s*"([^".]*)\.([^"]*)"\s*$', line.strip())
        if match is None:
            continue
        der = _b64url(match.group(1), "CSR")
        cose = _b64url(match.group(2), "COSE_Sign1 part")
        csr = _load_csr(der)
        return KeygenAnswer(csr, der, _attested_uuid(cose, der, sec_tag))
    raise CsrError('%KEYGEN: the answer has no %KEYGEN: "<csr>.<cose>" line')


def _load_csr(der: bytes) -> x509.CertificateSigningRequest:
    try:
        return x509.load_der_x509_csr(der)
    except ValueError:
        pass
    # Older modem firmware encodes the CSR's signatureAlgorithm ecdsa-with-SHA256 with NULL
    # parameters, which RFC 5758 forbids and cryptography refuses; Nordic's parser rewrites it
    # (nRFCloud/utils modem_credentials_parser.py, _normalize_ecdsa_csr_der). Only that outer
    # field changes: the signed part, and so the signature check, stays the modem's.
    normalized = _without_null_ecdsa_parameters(der)
    if normalized is not None:
        try:
            return x509.load_der_x509_csr(normalized)
        except ValueError:
            pass
    raise CsrError("%KEYGEN: the CSR does not parse as PKCS#10 DER")


_DER_NULL = b"\x05\x00"


def _without_null_ecdsa_parameters(der: bytes) -> bytes | None:
    try:
        request = asn1_csr.CertificationRequest.load(der, strict=True)
        algorithm = request["signature_algorithm"]
        name = algorithm["algorithm"].native
        # Parameters present and encoded as NULL (05 00): the one deviation repaired here.
        if not str(name).endswith("_ecdsa") or algorithm["parameters"].dump() != _DER_NULL:
            return None
        request["signature_algorithm"] = {"algorithm": name}
        return bytes(request.dump())
    except (ValueError, TypeError, KeyError):
        return None


_CSR_MSG_V1 = 9  # payload id of a CSR attestation (modem_credentials_parser.py)
_COSE_SIGN1 = 18  # CBOR tag of COSE_Sign1 (RFC 9052)


def _attested_uuid(cose: bytes, csr_der: bytes, sec_tag: int) -> str:
    """The device UUID of a %KEYGEN COSE_Sign1 that attests this CSR at this sec_tag."""
    try:
        sign1 = cbor2.loads(cose)
        if not isinstance(sign1, cbor2.CBORTag) or sign1.tag != _COSE_SIGN1:
            raise CsrError("%KEYGEN: the attestation is not a COSE_Sign1 (CBOR tag 18)")
        _protected, _unprotected, payload, _signature = sign1.value
        claims = cbor2.loads(payload)
        kind, uuid_bytes, tag_cbor, digest = claims[0], claims[1], claims[2], claims[3]
        tag = cbor2.loads(tag_cbor)
    except CsrError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, IndexError, KeyError):
        raise CsrError("%KEYGEN: the COSE_Sign1 attestation does not decode") from None
    if isinstance(tag, int) and tag < 0:  # a tag above 2^31 may come as a negative int32
        tag = (-tag ^ 0xFFFFFFFF) + 1
    if kind != _CSR_MSG_V1:
        raise CsrError(f"%KEYGEN: the attestation is payload {kind!r}, not a CSR message (9)")
    if tag != sec_tag:
        raise CsrError(f"%KEYGEN: the attestation names sec_tag {tag!r}, not {sec_tag}")
    if digest != hashlib.sha256(csr_der).digest():
        raise CsrError("%KEYGEN: the attestation's SHA-256 is not the CSR's: they do not belong")
    if not isinstance(uuid_bytes, bytes) or len(uuid_bytes) != 16:
        raise CsrError("%KEYGEN: the attestation's device UUID is not 16 bytes")
    return str(uuid_module.UUID(bytes=uuid_bytes))


def _attribute_set(name: x509.Name) -> list[tuple[str, str]]:
    return sorted((a.oid.dotted_string, str(a.value)) for a in name)


def verify_csr(csr: x509.CertificateSigningRequest, expected: x509.Name) -> None:
    if not csr.is_signature_valid:
        raise CsrError("the CSR's signature does not verify: it was damaged on the way")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CsrError(f"the CSR's key is {type(key).__name__}, not EC P-256 as %KEYGEN makes")
    if _attribute_set(csr.subject) != _attribute_set(expected):
        raise CsrError(
            f"the CSR's subject is {csr.subject.rfc4514_string()!r}, "
            f"not the requested {expected.rfc4514_string()!r}"
        )


_READ_RE = re.compile(
    r'^%CMNG:\s*(\d+)\s*,\s*(\d+)\s*,\s*"([0-9A-Fa-f]{64})"\s*,\s*"(.*)"\s*$', re.S
)


def parse_cmng_read(response: at.Response) -> bytes:
    """The content of `%CMNG: <tag>,<type>,"<sha>","<content>"` (content may span lines)."""
    joined = "\n".join(response.lines).strip()
    match = _READ_RE.match(joined)
    if match is None:
        raise at.UnexpectedResponseError(
            'the answer to AT%CMNG=2 is not \'%CMNG: <tag>,<type>,"<sha>","<content>"\''
        )
    return match.group(4).encode("ascii", errors="replace")


def certificates_in(content: bytes) -> list[bytes]:
    """DER of every certificate in `content`, or [] when it holds none that parses."""
    try:
        return [
            c.public_bytes(serialization.Encoding.DER)
            for c in x509.load_pem_x509_certificates(content.replace(b"\r\n", b"\n"))
        ]
    except ValueError:
        return []
