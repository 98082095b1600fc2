"""Probe a broker as the device would: TLS 1.2 with mutual authentication, then MQTT 3.1.1 CONNECT.

What the nRF91 does with `mqtt_simple`'s TLS settings (`peer_verify` required, `hostname` set, the
sec_tag's CA, client certificate and key): TLS 1.2 only, the modem's ECDHE cipher suites, SNI and a
host-name check, then CONNECT with a clean session. Every way this can fail is turned into one
precise reason: unknown CA, hostname mismatch, expired certificate, client certificate rejected,
connection refused, timeout, and the CONNACK refusal codes.

Python's `ssl` only takes a client key from a file name. The key never touches a disk: it is
handed over as an anonymous in-memory file (`memfd_create`, opened by OpenSSL through
/proc/self/fd/N; a pipe through /dev/fd/N where there is no memfd), unencrypted only in this
process's memory, and OpenSSL is never allowed to prompt for a passphrase.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from provguard.credentials import key_fingerprint, public_key_der
from provguard.errors import UsageError
from provguard.hostnames import host_name

DEFAULT_PORT = 8883
DEFAULT_TIMEOUT = 10.0
KEEPALIVE_S = 60

#: The ECDHE suites the nRF91 modem offers (nrfxlib socket TLS cipher list), in OpenSSL names.
MODEM_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-SHA384",
        "ECDHE-RSA-AES128-SHA256",
        "ECDHE-RSA-AES256-SHA",
        "ECDHE-RSA-AES128-SHA",
    ]
)

#: MQTT 3.1.1 CONNACK return codes (OASIS MQTT 3.1.1, 3.2.2.3).
CONNACK_REASONS = {
    1: "unacceptable protocol version (the broker does not accept MQTT 3.1.1)",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized: the broker accepted the TLS session but not this client "
    "(check its ACL or policy for this client id or certificate identity)",
}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def check_timeout(seconds: float) -> float:
    """A timeout the socket layer accepts and that ends: finite and above zero."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"the timeout must be a finite number of seconds above 0, not {seconds}")
    return seconds


def parse_endpoint(text: str) -> Endpoint:
    """`HOST:PORT`, `HOST` (port 8883) or `[IPv6]:PORT`."""
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"{text!r}: missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"{text!r}: expected ':PORT' after ']'")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise UsageError(f"{text!r}: write an IPv6 address in brackets: [ADDRESS]:PORT")
    if not host:
        raise UsageError(f"{text!r}: no host name")
    host = host_name(host)
    if not port_text:
        return Endpoint(host, DEFAULT_PORT)
    # At most 5 digits before int(): a long digit string must not become a huge number (or 100000).
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise UsageError(f"{text[:80]!r}: the port must be a number from 1 to 65535")
    if not 0 < int(port_text) < 65536:
        raise UsageError(f"{text[:80]!r}: the port must be a number from 1 to 65535")
    return Endpoint(host, int(port_text))


@dataclass(frozen=True)
class ProbeCredentials:
    ca: bytes  # PEM, one or more certificates
    ca_name: str
    cert: bytes | None = None  # PEM
    key: PrivateKeyTypes | None = field(default=None, repr=False)  # never shown

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise UsageError("probe needs both the client certificate and its key, or neither")


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    stage: str  # "connect", "tls", "mqtt" or "done"
    reason: str  # the precise one-line reason on failure, a summary on success
    steps: tuple[str, ...]  # what succeeded, in order


class _ProbeFailedError(Exception):
    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


def connect_packet(client_id: str, keepalive: int = KEEPALIVE_S) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session and no user name, will or password."""
    try:
        ident = client_id.encode("utf-8")
    except UnicodeEncodeError:  # bytes from the command line that were not UTF-8
        raise UsageError("the client id is not valid UTF-8 text") from None
    if len(ident) > 0xFFFF:
        raise UsageError("the client id is longer than MQTT allows (65535 bytes)")
    variable = b"\x00\x04MQTT" + bytes([4, 0x02]) + keepalive.to_bytes(2, "big")
    payload = len(ident).to_bytes(2, "big") + ident
    return b"\x10" + _remaining_length(len(variable) + len(payload)) + variable + payload


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        digit, length = length % 128, length // 128
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


DISCONNECT = b"\xe0\x00"


def parse_connack(packet: bytes) -> int:
    """The return code of a CONNACK (`20 02 <flags> <rc>`); ValueError for anything else."""
    if len(packet) != 4 or packet[0] != 0x20 or packet[1] != 0x02:
        raise ValueError("not a CONNACK")
    return packet[3]


@contextlib.contextmanager
def in_memory_file(data: bytes) -> Iterator[str]:
    """A path that reads as `data` while the context lasts and names nothing on any disk."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("provguard-probe", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    read_end, write_end = os.pipe()  # a credential is a few kB: it fits the pipe's buffer
    try:
        _write_all(write_end, data)
        os.close(write_end)
        write_end = -1
        yield f"/dev/fd/{read_end}"
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _load_client(context: ssl.SSLContext, cert: bytes, key: PrivateKeyTypes) -> None:
    plain = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Unencrypted in memory, so OpenSSL has no passphrase to ask for.
    with in_memory_file(cert) as cert_path, in_memory_file(plain) as key_path:
        context.load_cert_chain(cert_path, key_path)


def key_mismatch(cert: bytes, key: PrivateKeyTypes) -> str | None:
    """Why the key cannot be used with the certificate, or None when they belong together."""
    public = x509.load_pem_x509_certificate(cert).public_key()
    if public_key_der(public) == public_key_der(key.public_key()):
        return None
    return (
        f"the private key (public key {key_fingerprint(key)}) does not belong to the client "
        f"certificate (public key {key_fingerprint(public)}): the device's handshake would fail; "
        "nothing was sent to the broker"
    )


def device_context(credentials: ProbeCredentials) -> ssl.SSLContext:
    """The TLS client context the device would use."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.set_ciphers(MODEM_CIPHERS)
    context.load_verify_locations(cadata=credentials.ca.decode("ascii"))
    if credentials.cert is not None and credentials.key is not None:
        _load_client(context, credentials.cert, credentials.key)
    return context


def probe(
    endpoint: Endpoint,
    credentials: ProbeCredentials,
    *,
    client_id: str,
    server_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProbeResult:
    """Connect, handshake and CONNECT like the device; never raises for a network outcome."""
    check_timeout(timeout)
    connect_packet(client_id)  # an unusable client id is refused before anything is sent
    steps: list[str] = []
    name = host_name(server_name, what="--hostname") if server_name else endpoint.host
    try:
        if credentials.cert is not None and credentials.key is not None:
            mismatch = key_mismatch(credentials.cert, credentials.key)
            if mismatch is not None:
                raise _ProbeFailedError("credentials", mismatch)
        try:
            context = device_context(credentials)
        except ssl.SSLError as exc:
            raise _ProbeFailedError(
                "credentials", f"the TLS library refused the credentials ({exc.reason or exc})"
            ) from None
        raw = _connect(endpoint, timeout)
        steps.append(f"TCP connected to {endpoint}")
        with raw, _handshake(context, raw, name, endpoint, credentials, timeout) as tls:
            steps.append(_describe_session(tls, name, credentials))
            return_code = _mqtt_connect(tls, client_id, timeout, credentials)
            if return_code != 0:
                reason = CONNACK_REASONS.get(
                    return_code, "a return code MQTT 3.1.1 does not define"
                )
                raise _ProbeFailedError("mqtt", f"CONNACK {return_code}: {reason}")
            with contextlib.suppress(OSError):
                tls.sendall(DISCONNECT)
            steps.append(f"MQTT 3.1.1 CONNECT as client id {client_id!r}: CONNACK 0, accepted")
    except _ProbeFailedError as failure:
        return ProbeResult(False, failure.stage, failure.reason, tuple(steps))
    return ProbeResult(True, "done", "the broker accepts this device", tuple(steps))


def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except socket.gaierror as exc:
        raise _ProbeFailedError(
            "connect", f"cannot resolve {endpoint.host}: {exc.strerror}"
        ) from None
    except ConnectionRefusedError:
        raise _ProbeFailedError(
            "connect", f"connection refused by {endpoint} (nothing listens on that port)"
        ) from None
    except TimeoutError:
        raise _ProbeFailedError(
            "connect", f"no TCP connection to {endpoint} within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise _ProbeFailedError(
            "connect", f"cannot connect to {endpoint}: {exc.strerror or exc}"
        ) from None


@contextlib.contextmanager
def _handshake(
    context: ssl.SSLContext,
    raw: socket.socket,
    name: str,
    endpoint: Endpoint,
    credentials: ProbeCredentials,
    timeout: float,
) -> Iterator[ssl.SSLSocket]:
    try:
        tls = context.wrap_socket(raw, server_hostname=name)
    except ssl.SSLCertVerificationError as exc:
        raise _ProbeFailedError(
            "tls", _verify_reason(exc, name, endpoint, credentials, timeout)
        ) from None
    except ssl.SSLError as exc:
        reason = _alert_reason(exc, credentials)
        if exc.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
            chosen = _unverified_peer(
                endpoint, name, credentials, timeout, _cipher_of, ciphers="ALL:@SECLEVEL=0"
            )
            if chosen is not None and chosen not in MODEM_CIPHERS.split(":"):
                reason = (
                    "no cipher suite in common: the broker accepts none of the ECDHE suites the "
                    f"nRF91 offers (offered every suite, it chose {chosen}); enable "
                    "ECDHE-ECDSA-AES128-GCM-SHA256 or another modem suite on the broker"
                )
        raise _ProbeFailedError("tls", reason) from None
    except TimeoutError:
        raise _ProbeFailedError(
            "tls", f"the TLS handshake did not complete within {timeout:g} s"
        ) from None
    except (ConnectionResetError, BrokenPipeError):
        raise _ProbeFailedError(
            "tls", "the broker closed the connection during the TLS handshake"
        ) from None
    with tls:
        yield tls


_UNKNOWN_CA_CODES = {2, 18, 19, 21}
#: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: the chain the broker sent stops at a certificate
#: whose issuer is not in the CA file.
_ISSUER_NOT_LOCAL = 20
_HOSTNAME_CODES = {62, 64}


def _verify_reason(
    exc: ssl.SSLCertVerificationError,
    name: str,
    endpoint: Endpoint,
    credentials: ProbeCredentials,
    timeout: float,
) -> str:
    code = exc.verify_code
    if code in _UNKNOWN_CA_CODES:
        return (
            f"unknown CA: the broker's certificate does not chain to the CA in the set "
            f"({credentials.ca_name}); the device would refuse this broker ({exc.verify_message})"
        )
    if code == _ISSUER_NOT_LOCAL:
        issuer = _unverified_peer(endpoint, name, credentials, timeout, _issuer_of)
        shown = f"is issued by {issuer}, and " if issuer else ""
        return (
            f"incomplete chain: the broker's certificate {shown}no certificate the broker sent "
            f"leads from it to the CA in the set ({credentials.ca_name}): the broker must send its "
            "intermediate CA certificates (the modem does not fetch missing ones), or the CA file "
            "holds another root"
        )
    if code in _HOSTNAME_CODES:
        names = _server_names(endpoint, name, credentials, timeout)
        shown = f" (it names {', '.join(names)})" if names else ""
        return f"hostname mismatch: the broker's certificate is not valid for {name!r}{shown}"
    if code == 10:
        return "expired: the broker's certificate has expired; the device would refuse it"
    if code == 9:
        return "the broker's certificate is not valid yet; the device would refuse it"
    return f"the broker's certificate failed verification: {exc.verify_message}"


def _server_names(
    endpoint: Endpoint, name: str, credentials: ProbeCredentials, timeout: float
) -> list[str]:
    """The names in the broker's certificate, fetched again with the host-name check off.

    The second session sends the same SNI as the first: a broker that needs it (AWS IoT) or that
    picks its certificate by it must show the certificate the device was refused."""
    try:
        context = device_context(credentials)
        context.check_hostname = False
        with (
            socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            cert = tls.getpeercert() or {}
    except (OSError, ssl.SSLError):
        return []
    return [f"{kind}:{value}" for kind, value in _pairs(cert.get("subjectAltName"))]


def _unverified_peer(
    endpoint: Endpoint,
    name: str,
    credentials: ProbeCredentials,
    timeout: float,
    read: Callable[[ssl.SSLSocket], str | None],
    *,
    ciphers: str | None = None,
) -> str | None:
    """`read` of a second session without verification (to explain why the first failed)."""
    try:
        context = device_context(credentials)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if ciphers is not None:
            context.set_ciphers(ciphers)
        with (
            socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            return read(tls)
    except (OSError, ssl.SSLError, ValueError):
        return None


def _issuer_of(tls: ssl.SSLSocket) -> str | None:
    der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).issuer.rfc4514_string() if der else None


def _cipher_of(tls: ssl.SSLSocket) -> str | None:
    cipher = tls.cipher()
    return cipher[0] if cipher else None


def _pairs(value: object) -> list[tuple[str, str]]:
    """The (name, value) string pairs of a `getpeercert()` entry, whatever else it holds."""
    if not isinstance(value, tuple):
        return []
    return [
        (item[0], item[1])
        for item in value
        if isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], str)
    ]


_ALERTS = {
    "TLSV1_ALERT_UNKNOWN_CA": "client certificate rejected: the broker does not trust its issuer",
    "SSLV3_ALERT_BAD_CERTIFICATE": "client certificate rejected by the broker (bad certificate)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "client certificate rejected: the broker says it expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "client certificate rejected: the broker says it is revoked",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "client certificate rejected: unsupported by the broker",
    "TLSV1_ALERT_DECRYPT_ERROR": "client certificate rejected: the key does not match it",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the broker does not accept TLS 1.2, the only version "
    "the nRF91 modem speaks",
    "UNSUPPORTED_PROTOCOL": "the broker does not accept TLS 1.2, the only version "
    "the nRF91 modem speaks",
    "WRONG_VERSION_NUMBER": "the server did not answer in TLS (a plain MQTT port, like 1883?)",
    "UNEXPECTED_EOF_WHILE_READING": "the broker closed the connection during the TLS handshake",
}


def _alert_reason(exc: ssl.SSLError, credentials: ProbeCredentials) -> str:
    reason = exc.reason or ""
    if reason in _ALERTS:
        return _ALERTS[reason]
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        if credentials.cert is None:
            return "the broker requires a client certificate (handshake failure without one)"
        return (
            "handshake failure: the broker refused the client certificate, or shares no cipher "
            "suite or curve with what the nRF91 offers (ECDHE with AES, TLS 1.2)"
        )
    if isinstance(exc, ssl.SSLEOFError):
        return "the broker closed the connection during the TLS handshake"
    return f"the TLS handshake failed: {reason or exc}"


def _describe_session(tls: ssl.SSLSocket, name: str, credentials: ProbeCredentials) -> str:
    cipher = tls.cipher()
    cipher_name = cipher[0] if cipher else "unknown cipher"
    peer = tls.getpeercert() or {}
    rdns = peer.get("subject")
    subject = ", ".join(
        f"{key}={value}"
        for rdn in (rdns if isinstance(rdns, tuple) else ())
        for key, value in _pairs(rdn)
    )
    expires = peer.get("notAfter", "?")
    client = "with the client certificate" if credentials.cert else "without a client certificate"
    return (
        f"{tls.version()} {cipher_name} {client}; broker certificate {subject or '(no subject)'} "
        f"verified against {credentials.ca_name} and valid for {name!r}, until {expires}"
    )


def _mqtt_connect(
    tls: ssl.SSLSocket, client_id: str, timeout: float, credentials: ProbeCredentials
) -> int:
    tls.settimeout(timeout)
    try:
        tls.sendall(connect_packet(client_id))
        packet = _read_exactly(tls, 4)
    except TimeoutError:
        raise _ProbeFailedError("mqtt", f"no CONNACK within {timeout:g} s after CONNECT") from None
    except ssl.SSLError as exc:
        raise _ProbeFailedError(
            "mqtt", f"after CONNECT: {_alert_reason(exc, credentials)}"
        ) from None
    except (ConnectionResetError, BrokenPipeError, EOFError):
        raise _ProbeFailedError(
            "mqtt",
            f"the broker closed the connection after CONNECT without a CONNACK (AWS IoT does "
            f"this when the policy does not allow iot:Connect for client id {client_id!r})",
        ) from None
    try:
        return parse_connack(packet)
    except ValueError:
        raise _ProbeFailedError(
            "mqtt", "the broker answered CONNECT with something else than CONNACK"
        ) from None


def _read_exactly(tls: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = tls.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
