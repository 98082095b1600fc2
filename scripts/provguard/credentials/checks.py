"""What would make the nRF91 modem or the broker refuse a credential set, found before flashing.

Each check adds `Problem`s with a stable code. The codes are listed in the README.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from provguard.credentials.loading import (
    Item,
    ItemKind,
    ParsedFile,
    cert_fingerprint,
    key_fingerprint,
    parse_file,
    public_key_der,
)
from provguard.credentials.model import (
    CheckReport,
    CredentialFile,
    CredentialSet,
    Problem,
    Severity,
    Slot,
)
from provguard.nrf91 import (
    DECRYPTABLE_SEC_TAGS,
    MODEM_CREDENTIAL_MAX,
    NRF_CLOUD_SEC_TAG,
    SEC_TAG_MAX,
)

DEFAULT_EXPIRY_WARNING = dt.timedelta(days=30)

#: Curves whose keys the modem's ECDHE-ECDSA suites work with. Others fail the handshake.
SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
RSA_MIN_BITS, RSA_WEAK_BITS, RSA_MAX_BITS = 1024, 2048, 4096
#: Group orders, to tell a damaged ECDSA signature (r or s out of range) from altered content.
_CURVE_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(
        self, severity: Severity, code: str, file: str | None, message: str, line: int | None = None
    ) -> None:
        self.problems.append(Problem(severity, code, file, line, message))

    def error(self, code: str, file: str | None, message: str, line: int | None = None) -> None:
        self.add(Severity.ERROR, code, file, message, line)

    def warning(self, code: str, file: str | None, message: str, line: int | None = None) -> None:
        self.add(Severity.WARNING, code, file, message, line)

    def info(self, code: str, file: str | None, message: str, line: int | None = None) -> None:
        self.add(Severity.INFO, code, file, message, line)


def check(
    credentials: CredentialSet,
    sec_tag: int,
    *,
    allow_nrf_cloud_tag: bool = False,
    allow_decryptable_tag: bool = False,
    for_modem_write: bool = False,
    now: dt.datetime | None = None,
    expiry_warning: dt.timedelta = DEFAULT_EXPIRY_WARNING,
) -> CheckReport:
    """Every problem of a credential set, and the normalised content of each slot that loaded."""
    now = now or dt.datetime.now(dt.timezone.utc)
    out = _Collector()
    _check_sec_tag(out, sec_tag, allow_nrf_cloud_tag, allow_decryptable_tag)
    _check_presence(out, credentials)

    parsed = {f.slot: parse_file(f) for f in credentials.files()}
    contents: dict[Slot, bytes] = {}
    for slot, pf in parsed.items():
        _check_text(out, pf)
        usable = _check_slot_kinds(out, pf, for_modem_write)
        if usable:
            content = "".join(item.text for item in usable).encode("ascii", "replace")
            contents[slot] = content
            _check_size(out, pf.file, content)

    cas = _certificates(parsed.get(Slot.CA))
    client_certs = _certificates(parsed.get(Slot.CERT))
    key = _private_key(parsed.get(Slot.KEY))
    ca_name = credentials.ca.name if credentials.ca else None
    cert_name = credentials.cert.name if credentials.cert else None
    key_name = credentials.key.name if credentials.key else None

    for line, ca in cas:
        _check_ca(out, ca_name, line, ca, now, expiry_warning)
    if client_certs:
        line, leaf = client_certs[0]
        _check_client_cert(out, cert_name, line, leaf, now, expiry_warning)
        _check_issuer(out, cert_name, line, leaf, [c for _, c in cas])
        if key is not None:
            _check_key_match(out, key_name, key, cert_name, leaf)
    if key is not None:
        _check_key_type(out, key_name, None, key.public_key(), "private key")

    summaries = _summaries(cas, client_certs, key, contents)
    return CheckReport(tuple(out.problems), contents, sec_tag, summaries)


# --- sec_tag and presence ------------------------------------------------------------------


def _check_sec_tag(out: _Collector, tag: int, allow_cloud: bool, allow_decryptable: bool) -> None:
    if tag in DECRYPTABLE_SEC_TAGS:
        message = (
            f"sec_tag {tag} is in {_span(DECRYPTABLE_SEC_TAGS)}: on nRF91x1 modems TLS traffic "
            "on these tags can be decrypted from modem traces"
        )
        if allow_decryptable:
            out.warning("sec-tag-decryptable", None, message + "; allowed for testing only")
        else:
            out.error(
                "sec-tag-decryptable",
                None,
                message + f"; use a tag in 0-{SEC_TAG_MAX}, or --allow-decryptable-tag for a test",
            )
    elif not 0 <= tag <= SEC_TAG_MAX:
        out.error("sec-tag-range", None, f"sec_tag {tag} is outside the user range 0-{SEC_TAG_MAX}")
    elif tag == NRF_CLOUD_SEC_TAG:
        message = (
            f"sec_tag {tag} is nRF Cloud's (CONFIG_NRF_CLOUD_SEC_TAG): writing it replaces the "
            "device's nRF Cloud credentials"
        )
        if allow_cloud:
            out.warning("sec-tag-nrf-cloud", None, message + "; allowed by --allow-nrf-cloud-tag")
        else:
            out.error(
                "sec-tag-nrf-cloud",
                None,
                message + "; pick another tag, or pass --allow-nrf-cloud-tag if you mean it",
            )


def _span(tags: range) -> str:
    return f"{tags.start}-{tags.stop - 1}"


def _check_presence(out: _Collector, creds: CredentialSet) -> None:
    if creds.ca is None:
        out.error(
            "ca-missing",
            None,
            "no CA certificate: with peer verification required the device cannot trust the "
            "broker; give --ca with the root CA that signed the broker's certificate",
        )
    if creds.cert is not None and creds.key is None:
        out.error("key-missing", creds.cert.name, "a client certificate needs its private key")
    if creds.key is not None and creds.cert is None:
        out.error("cert-missing", creds.key.name, "a private key needs its client certificate")


# --- text, framing and slot contents ---------------------------------------------------------


def _check_text(out: _Collector, pf: ParsedFile) -> None:
    name, data = pf.file.name, pf.file.data
    if pf.is_der:
        if any(item.text for item in pf.items):  # a public key, a CSR or junk converts to nothing
            out.info("der-converted", name, "DER input: converted to PEM for the modem")
        return
    if data.startswith(b"\xef\xbb\xbf"):
        out.warning("utf8-bom", name, "starts with a UTF-8 byte order mark: it is removed", 1)
    if b"\r\n" in data:
        first = data[: data.index(b"\r\n")].count(b"\n") + 1
        out.warning(
            "crlf-line-endings",
            name,
            "CRLF line endings: normalised to LF (some modem firmware rejects CRLF content "
            "with CME error 527)",
            first,
        )
    block_lines: set[int] = set()
    for item in pf.items:
        if item.line is not None:
            block_lines.update(range(item.line, item.line + item.text.count("\n")))
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        if any(b > 0x7F for b in raw):
            inside = number in block_lines
            message = "non-ASCII characters" + (
                ": the modem stores ASCII PEM only" if inside else " outside the PEM blocks"
            )
            if inside:
                out.error("not-ascii", name, message, number)
            else:
                out.warning("not-ascii", name, message + " (that text is not written)", number)
            break
    if pf.outside:
        first = pf.outside[0].number
        quote = any('"' in line.text for line in pf.outside)
        out.info(
            "text-outside-blocks",
            name,
            f"{len(pf.outside)} line(s) of text outside the PEM blocks are dropped"
            + (" (one holds a '\"', which would end the AT%CMNG string)" if quote else ""),
            first,
        )
    for issue in pf.framing:
        out.error("pem-framing", name, issue.message, issue.line)


_EXPECTED = {
    Slot.CA: (ItemKind.CERTIFICATE,),
    Slot.CERT: (ItemKind.CERTIFICATE,),
    Slot.KEY: (ItemKind.PRIVATE_KEY, ItemKind.ENCRYPTED_PRIVATE_KEY),
}

_WRONG_KIND_HINTS = {
    ItemKind.PUBLIC_KEY: "a public key, not a private key: give the private key the "
    "certificate was made for",
    ItemKind.CERTIFICATE_REQUEST: "a certificate signing request (CSR), not a certificate: "
    "send it to your CA and use the certificate it returns",
    ItemKind.OPENSSH_KEY: "an OpenSSH key, not a TLS key",
    ItemKind.TRUSTED_CERTIFICATE: "OpenSSL's TRUSTED CERTIFICATE format, which the modem does "
    "not read: convert it with 'openssl x509 -in FILE -out ca.pem'",
}


def _check_slot_kinds(out: _Collector, pf: ParsedFile, for_modem_write: bool) -> list[Item]:
    """The items this slot will store; a problem for everything else in the file."""
    slot, name = pf.file.slot, pf.file.name
    usable: list[Item] = []
    for item in pf.items:
        if item.kind is ItemKind.EC_PARAMETERS:
            out.info(
                "ec-parameters-dropped",
                name,
                "EC PARAMETERS block (from 'openssl ecparam -genkey') is not written",
                item.line,
            )
            continue
        if item.kind not in _EXPECTED[slot]:
            code, message = _wrong_kind(pf, item)
            out.error(code, name, message, item.line)
            continue
        if item.error_line is not None and item.parse_error is not None:
            out.error("pem-base64", name, item.parse_error, item.error_line)
            continue
        if item.parse_error is not None:
            out.error(
                "der-invalid",
                name,
                f"the {item.kind.value} does not parse: {item.parse_error}",
                item.line,
            )
            continue
        if item.kind is ItemKind.ENCRYPTED_PRIVATE_KEY and not _encrypted_key_usable(
            out, name, item, for_modem_write
        ):
            continue
        for note in item.notes:
            out.warning("der-nonstandard", name, f"the {item.kind.value}: {note}", item.line)
        usable.append(item)
    if slot is Slot.KEY and len(usable) > 1:
        out.error("key-multiple", name, "more than one private key in the key file")
    if pf.items and all(item.kind is ItemKind.EC_PARAMETERS for item in pf.items):
        # Nothing would be stored for this slot: never an OK for a file that holds no credential.
        wanted = "a private key" if slot is Slot.KEY else "a certificate"
        out.error(
            "wrong-slot",
            name,
            f"{slot.option}: only EC PARAMETERS, no {wanted[2:]}: the {slot.label} slot takes "
            f"{wanted} ('openssl ecparam -genkey' writes the key after the parameters)",
        )
    if not pf.items and not pf.framing:
        out.error(
            "pem-framing",
            name,
            "no PEM block found: expected '-----BEGIN ...-----' (a bare base64 body needs its "
            "BEGIN/END lines)",
        )
    return usable


def _wrong_kind(pf: ParsedFile, item: Item) -> tuple[str, str]:
    """The code and message for an item the slot does not take."""
    slot = pf.file.slot
    if pf.is_der and item.kind is ItemKind.UNKNOWN and item.parse_error is not None:
        # A binary file that parses as nothing: say why; it has no PEM label to blame.
        return "der-invalid", item.parse_error
    hint = _WRONG_KIND_HINTS.get(item.kind)
    if hint is None:
        wanted = "a private key" if slot is Slot.KEY else "a certificate"
        hint = f"{_article(item.kind.value)}, but the {slot.label} slot takes {wanted}"
        if item.kind is ItemKind.UNKNOWN:
            hint = "unknown PEM label: the modem stores certificates and private keys only"
    return "wrong-slot", f"{slot.option}: {hint}"


def _encrypted_key_usable(out: _Collector, name: str, item: Item, for_modem_write: bool) -> bool:
    if for_modem_write:
        out.error(
            "key-encrypted",
            name,
            "the private key is encrypted: the firmware's write call takes no password; "
            "decrypt it with 'openssl pkey -in KEY -out KEY.plain'",
            item.line,
        )
        return False
    out.warning(
        "key-encrypted",
        name,
        "the private key is encrypted: only AT%CMNG with its password can store it, and "
        "whether it matches the certificate cannot be checked",
        item.line,
    )
    return True


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiouAEIO" else "a ") + noun


def _check_size(out: _Collector, file: CredentialFile, content: bytes) -> None:
    if len(content) > MODEM_CREDENTIAL_MAX:
        out.error(
            "too-large",
            file.name,
            f"{len(content)} bytes after normalisation: over the modem's 4 kB limit per "
            f"credential ({MODEM_CREDENTIAL_MAX} bytes once the AT framing is counted); remove "
            "certificates the device does not need (the CA slot needs only the root that signed "
            "the broker's chain)",
        )


# --- certificates ------------------------------------------------------------------------------


def _certificates(pf: ParsedFile | None) -> list[tuple[int | None, x509.Certificate]]:
    if pf is None:
        return []
    return [(i.line, i.certificate) for i in pf.items if i.certificate is not None]


def _private_key(pf: ParsedFile | None) -> PrivateKeyTypes | None:
    if pf is None:
        return None
    return next((i.private_key for i in pf.items if i.private_key is not None), None)


def _cn(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _check_validity(
    out: _Collector,
    name: str | None,
    line: int | None,
    cert: x509.Certificate,
    what: str,
    now: dt.datetime,
    soon: dt.timedelta,
) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        out.error(
            f"{what}-not-yet-valid",
            name,
            f"{_cn(cert)} is not valid before {start:%Y-%m-%d %H:%M} UTC: the modem rejects it "
            "(check the clock of the machine that issued it)",
            line,
        )
    elif now > end:
        out.error(f"{what}-expired", name, f"{_cn(cert)} expired on {end:%Y-%m-%d} UTC", line)
    elif end - now < soon:
        days = (end - now).days
        out.warning(
            f"{what}-expires-soon",
            name,
            f"{_cn(cert)} expires on {end:%Y-%m-%d} UTC, in {days} day(s): renew it",
            line,
        )


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _check_ca(
    out: _Collector,
    name: str | None,
    line: int | None,
    ca: x509.Certificate,
    now: dt.datetime,
    soon: dt.timedelta,
) -> None:
    constraints = _basic_constraints(ca)
    self_issued = ca.issuer == ca.subject
    is_ca = constraints is not None and constraints.ca
    if not is_ca:
        if constraints is None and ca.version is x509.Version.v1 and self_issued:
            out.warning("ca-v1", name, f"{_cn(ca)} is a v1 root without basicConstraints", line)
        else:
            out.error(
                "ca-not-ca",
                name,
                f"{_cn(ca)} is not a CA certificate (basicConstraints CA:TRUE missing): the CA "
                "slot needs the root CA that signed the broker's certificate, not the broker's "
                "or the device's own certificate",
                line,
            )
    _check_validity(out, name, line, ca, "ca", now, soon)
    _check_key_type(out, name, line, ca.public_key(), "CA certificate's key")
    if self_issued:
        _check_self_signature(out, name, line, ca)
    elif is_ca:  # a leaf issued by a CA is not-a-CA above, never "an intermediate CA"
        out.info(
            "ca-not-root",
            name,
            f"{_cn(ca)} is an intermediate CA (issued by {ca.issuer.rfc4514_string()}); the "
            "modem trusts it as an anchor, so this works, but a root is the usual choice",
            line,
        )


def _check_self_signature(
    out: _Collector, name: str | None, line: int | None, ca: x509.Certificate
) -> None:
    try:
        ca.verify_directly_issued_by(ca)
    except InvalidSignature:
        out.error(
            "ca-signature-invalid",
            name,
            f"{_cn(ca)}: the root's self-signature does not verify, so this is not the genuine "
            f"certificate: {_signature_damage(ca, ca.public_key())}. The modem does not check a "
            "root's signature and would accept it, but a genuine root always verifies: download "
            "it again from its publisher",
            line,
        )
    except ValueError as exc:
        if "Inner and outer signature algorithms do not match" not in str(exc):
            _signature_unchecked(out, name, line, ca, exc)
            return
        out.error(
            "ca-signature-invalid",
            name,
            f"{_cn(ca)}: the signature algorithm inside the signed part (tbsCertificate) differs "
            "from the one beside the signature (signatureAlgorithm): RFC 5280 requires them "
            "equal, so the certificate was altered; download it again from its publisher",
            line,
        )
    except (TypeError, UnsupportedAlgorithm) as exc:
        _signature_unchecked(out, name, line, ca, exc)


def _signature_unchecked(
    out: _Collector, name: str | None, line: int | None, ca: x509.Certificate, exc: Exception
) -> None:
    out.warning(
        "ca-signature-unchecked",
        name,
        f"{_cn(ca)}: the self-signature could not be checked ({type(exc).__name__})",
        line,
    )


def _signature_damage(cert: x509.Certificate, signer: PublicKeyTypes) -> str:
    """Which part of a certificate whose DER parses but whose signature fails was changed."""
    algorithm = cert.signature_hash_algorithm
    if isinstance(signer, rsa.RSAPublicKey):
        try:
            recovered = signer.recover_data_from_signature(cert.signature, padding.PKCS1v15(), None)
        except (InvalidSignature, ValueError):
            return (
                "the signature value (the last field, signatureValue) is damaged: it is no "
                "valid RSA PKCS#1 v1.5 signature"
            )
        if algorithm is not None:
            digest = hashes.Hash(algorithm)
            digest.update(cert.tbs_certificate_bytes)
            if not recovered.endswith(digest.finalize()):
                return (
                    "the signature itself is intact, but the signed part (tbsCertificate: "
                    "subject, validity, public key or extensions) was changed after signing"
                )
        return "the signature does not match the signed content"
    if isinstance(signer, ec.EllipticCurvePublicKey):
        try:
            r, s = decode_dss_signature(cert.signature)
        except ValueError:
            return (
                "the signature value (signatureValue) is damaged: it is no valid ECDSA "
                "(r, s) encoding"
            )
        order = _CURVE_ORDERS.get(signer.curve.name)
        if order is not None and not (0 < r < order and 0 < s < order):
            return "the signature value (signatureValue) is damaged: r or s is out of range"
        return (
            "either the signature bytes (signatureValue) or the signed part (tbsCertificate) "
            "was altered"
        )
    return "the signature does not match the signed content"


def _check_client_cert(
    out: _Collector,
    name: str | None,
    line: int | None,
    cert: x509.Certificate,
    now: dt.datetime,
    soon: dt.timedelta,
) -> None:
    _check_validity(out, name, line, cert, "cert", now, soon)
    constraints = _basic_constraints(cert)
    if constraints is not None and constraints.ca:
        out.warning(
            "cert-is-ca",
            name,
            f"{_cn(cert)} is a CA certificate; the client certificate slot expects the "
            "device's own certificate",
            line,
        )
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            out.warning(
                "cert-no-client-auth",
                name,
                f"{_cn(cert)}: extendedKeyUsage lacks clientAuth: brokers that check it will "
                "refuse the device",
                line,
            )
    except x509.ExtensionNotFound:
        pass
    _check_key_type(out, name, line, cert.public_key(), "client certificate's key")
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None and algorithm.name in {"md5", "sha1"}:
        out.warning(
            "cert-weak-signature",
            name,
            f"{_cn(cert)} is signed with {algorithm.name.upper()}: brokers increasingly refuse it",
            line,
        )


def _check_issuer(
    out: _Collector,
    name: str | None,
    line: int | None,
    cert: x509.Certificate,
    cas: Iterable[x509.Certificate],
) -> None:
    issuers = [ca for ca in cas if ca.subject == cert.issuer]
    if not issuers:
        out.info(
            "cert-other-issuer",
            name,
            f"issued by {cert.issuer.rfc4514_string()}, not by the CA in the CA slot: normal "
            "when the broker's CA differs from the device CA (as with AWS IoT); the broker must "
            "trust that issuer",
            line,
        )
        return
    for ca in issuers:
        try:
            cert.verify_directly_issued_by(ca)
            return
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
    if _issued_by_another_key(cert, issuers[0]):
        cause = (
            "it was issued by another CA with the same name (its authority key identifier does "
            "not match this CA's key): use the CA that issued it, or issue it again"
        )
    else:
        cause = _signature_damage(cert, issuers[0].public_key())
    out.error(
        "cert-signature-invalid",
        name,
        f"{_cn(cert)} names {cert.issuer.rfc4514_string()} as issuer, but the signature does "
        f"not verify with that CA's key: {cause}",
        line,
    )


def _issued_by_another_key(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether the certificate's AKI names a key other than the CA's (both extensions needed)."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return False
    return aki.key_identifier is not None and aki.key_identifier != ski.digest


def _check_key_match(
    out: _Collector,
    key_name: str | None,
    key: PrivateKeyTypes,
    cert_name: str | None,
    cert: x509.Certificate,
) -> None:
    if public_key_der(key.public_key()) != public_key_der(cert.public_key()):
        out.error(
            "key-mismatch",
            key_name,
            f"this private key (public key {key_fingerprint(key)}) does not belong to the client "
            f"certificate {cert_name} (public key {key_fingerprint(cert.public_key())}): the TLS "
            "handshake would fail",
        )


def _check_key_type(
    out: _Collector, name: str | None, line: int | None, key: PublicKeyTypes, what: str
) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in SUPPORTED_CURVES:
            out.error(
                "key-unsupported",
                name,
                f"the {what} is on curve {key.curve.name}; the nRF91 modem's ECDSA suites use "
                f"{' and '.join(SUPPORTED_CURVES.values())}",
                line,
            )
    elif isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
            out.error(
                "key-unsupported",
                name,
                f"the {what} is RSA-{bits}; the modem handles RSA {RSA_MIN_BITS}-{RSA_MAX_BITS}",
                line,
            )
        elif bits < RSA_WEAK_BITS:
            out.warning("key-weak", name, f"the {what} is RSA-{bits}: use 2048 bits or more", line)
    else:
        out.error(
            "key-unsupported",
            name,
            f"the {what} is {_key_kind(key)}: the nRF91 modem supports EC (P-256, P-384) and RSA "
            "keys only",
            line,
        )


def _key_kind(key: PublicKeyTypes) -> str:
    return type(key).__name__.replace("PublicKey", "")


def describe_key(key: PublicKeyTypes) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {SUPPORTED_CURVES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    return _key_kind(key)


def _summaries(
    cas: list[tuple[int | None, x509.Certificate]],
    certs: list[tuple[int | None, x509.Certificate]],
    key: PrivateKeyTypes | None,
    contents: dict[Slot, bytes],
) -> dict[Slot, str]:
    out: dict[Slot, str] = {}

    def cert_line(cert: x509.Certificate) -> str:
        return (
            f"{_cn(cert)}, {describe_key(cert.public_key())}, valid until "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, {cert_fingerprint(cert)}"
        )

    for slot, certs_of in ((Slot.CA, cas), (Slot.CERT, certs)):
        if certs_of:
            more = f" (+{len(certs_of) - 1} more)" if len(certs_of) > 1 else ""
            out[slot] = cert_line(certs_of[0][1]) + more
    if key is not None:
        out[Slot.KEY] = f"{describe_key(key.public_key())}, public key {key_fingerprint(key)}"
    for slot in out:
        if slot in contents:
            out[slot] += f", {len(contents[slot])} bytes"
    return out
