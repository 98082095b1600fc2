"""What `provguard probe` says for each way the TLS handshake fails, caused by a real TLS peer,
what it says about a session that works, and what it refuses before connecting.

The broker is a small server in a thread on loopback: Python's ssl with certificates generated
here, or raw bytes where the point is one TLS alert record (RFC 5246 7.2: type 21, version 3.3,
length 2, level 2 = fatal, then the description). The alert numbers come from RFC 5246 7.2.2
and RFC 6066 3 (unrecognized_name), the verify codes from OpenSSL's x509_vfy.h, and the texts
OpenSSL gives for a failure are read from a plain `ssl` client of the same server, never from
provguard.

Found by `make mutation MODULE=probe`: mutants of the alert and verify-code reports, of the
second, unverified session that explains a failure (its host name, its time-out), of the
session's description and of the messages' wording passed every other test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provguard import probe as probe_module
from provguard.errors import UsageError
from provguard.probe import Endpoint, ProbeCredentials, ProbeResult, probe
from tests import factories as f

NAME = "broker.test"
CA_NAME = "ca.pem"
CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"  # one of the nRF91's suites
CONNACK_ACCEPTED = b"\x20\x02\x00\x00"  # MQTT 3.1.1 3.2: CONNACK, length 2, no flags, code 0

# RFC 5246 7.2.2 and RFC 6066 3: alert descriptions.
HANDSHAKE_FAILURE = 40
BAD_CERTIFICATE = 42
UNSUPPORTED_CERTIFICATE = 43
CERTIFICATE_REVOKED = 44
CERTIFICATE_EXPIRED = 45
UNKNOWN_CA = 48
ACCESS_DENIED = 49
DECRYPT_ERROR = 51
PROTOCOL_VERSION = 70
UNRECOGNIZED_NAME = 112


@dataclass(frozen=True)
class Pki:
    ca: x509.Certificate
    ca_key: f.PrivateKey
    device_cert: x509.Certificate
    device_key: f.PrivateKey
    directory: Path

    def credentials(self, *, client: bool = True, ca_pem: bytes | None = None) -> ProbeCredentials:
        return ProbeCredentials(
            ca_pem or f.cert_pem(self.ca),
            CA_NAME,
            f.cert_pem(self.device_cert) if client else None,
            self.device_key if client else None,
        )

    def issue(self, common_name: str = NAME, **kwargs: object) -> tuple[bytes, f.PrivateKey]:
        """A broker certificate signed by the CA (PEM) and its key."""
        key = f.ec_key()
        cert = f.make_cert(common_name, key, issuer=(self.ca, self.ca_key), **kwargs)  # type: ignore[arg-type]
        return f.cert_pem(cert), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca_key, device_key = f.ec_key(), f.ec_key()
    ca = f.make_cert("tls failures test CA", ca_key, ca=True)
    device = f.make_cert("dev-1", device_key, issuer=(ca, ca_key))
    return Pki(ca, ca_key, device, device_key, tmp_path_factory.mktemp("tls"))


# -- the broker ---------------------------------------------------------------------------------

Behaviour = Callable[[socket.socket, threading.Event], None]


@dataclass(frozen=True)
class Server:
    port: int

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)


@contextlib.contextmanager
def serving(*behaviours: Behaviour) -> Iterator[Server]:
    """Connections served one after the other, the n-th by the n-th behaviour (the last one
    serves every further connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    server = Server(listener.getsockname()[1])

    def run() -> None:
        served = 0
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(10)
            behaviour = behaviours[min(served, len(behaviours) - 1)]
            served += 1
            with raw, contextlib.suppress(OSError):  # ssl.SSLError is an OSError
                behaviour(raw, stop)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=15)
        listener.close()


def server_context(
    pki: Pki,
    chain: bytes,
    key: f.PrivateKey,
    *,
    seen: list[str | None] | None = None,
    require_sni: bool = False,
    curve: str | None = None,
    client_certificates: bool = True,
) -> ssl.SSLContext:
    """The broker's TLS: `chain` (its certificate, then any intermediates), client certificates
    from the CA required (unless `client_certificates` is false), optionally refusing a session
    without SNI (AWS IoT needs SNI); one cipher suite, one the nRF91 offers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    chain_file = pki.directory / f"chain-{id(context)}.pem"
    key_file = pki.directory / f"key-{id(context)}.pem"
    chain_file.write_bytes(chain)
    key_file.write_bytes(f.key_pem(key))
    context.load_cert_chain(chain_file, key_file)
    context.load_verify_locations(cadata=f.cert_pem(pki.ca).decode("ascii"))
    context.verify_mode = ssl.CERT_REQUIRED if client_certificates else ssl.CERT_NONE
    context.set_ciphers(CIPHER)
    if curve is not None:
        context.set_ecdh_curve(curve)

    def sni(_tls: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> int | None:
        if seen is not None:
            seen.append(name)
        return UNRECOGNIZED_NAME if require_sni and name is None else None

    context.sni_callback = sni
    return context


def handshake(context: ssl.SSLContext) -> Behaviour:
    """Do the TLS handshake, then wait until the client goes."""

    def serve(raw: socket.socket, stop: threading.Event) -> None:
        with context.wrap_socket(raw, server_side=True) as tls:
            tls.settimeout(0.2)
            while not stop.is_set():
                try:
                    if not tls.recv(1024):
                        return
                except TimeoutError:
                    continue

    return serve


def accept_mqtt(context: ssl.SSLContext) -> Behaviour:
    """Do the TLS handshake, take the CONNECT and accept it."""

    def serve(raw: socket.socket, stop: threading.Event) -> None:
        with context.wrap_socket(raw, server_side=True) as tls:
            if tls.recv(1024):
                tls.sendall(CONNACK_ACCEPTED)
            tls.settimeout(0.2)
            while not stop.is_set():
                try:
                    if not tls.recv(1024):
                        return
                except TimeoutError:
                    continue

    return serve


def alert(description: int) -> Behaviour:
    """Read the ClientHello, answer with one fatal alert."""

    def serve(raw: socket.socket, _stop: threading.Event) -> None:
        raw.recv(16384)
        raw.sendall(bytes([21, 3, 3, 0, 2, 2, description]))

    return serve


def late(seconds: float, then: Behaviour) -> Behaviour:
    """Accept the TCP connection and say nothing for `seconds`, then behave as `then` (unless
    the test has ended before: a probe that gave up on time never sees it)."""

    def serve(raw: socket.socket, stop: threading.Event) -> None:
        if not stop.wait(seconds):
            then(raw, stop)

    return serve


def run(pki: Pki, server: Server, *, client: bool = True, ca_pem: bytes | None = None,
        server_name: str | None = NAME, timeout: float = 5.0) -> ProbeResult:  # fmt: skip
    return probe(
        server.endpoint,
        pki.credentials(client=client, ca_pem=ca_pem),
        client_id="dev-1",
        server_name=server_name,
        timeout=timeout,
    )


def plain_client_error(server: Server, ca_pem: bytes, name: str = NAME) -> ssl.SSLError:
    """What a plain TLS 1.2 client of the same server gets: OpenSSL's own texts."""
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    # Python 3.13's defaults add these two; OpenSSL's own client and the device set neither
    context.verify_flags &= ~(ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN)
    with (
        pytest.raises(ssl.SSLError) as failed,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=name),
    ):
        pass
    return failed.value


def tls_failure(reason: str, server: Server) -> ProbeResult:
    return ProbeResult(False, "tls", reason, (f"TCP connected to 127.0.0.1:{server.port}",))


# -- alerts from the broker ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        (UNKNOWN_CA, "client certificate rejected: the broker does not trust its issuer"),
        (BAD_CERTIFICATE, "client certificate rejected by the broker (bad certificate)"),
        (CERTIFICATE_EXPIRED, "client certificate rejected: the broker says it expired"),
        (CERTIFICATE_REVOKED, "client certificate rejected: the broker says it is revoked"),
        (UNSUPPORTED_CERTIFICATE, "client certificate rejected: unsupported by the broker"),
        (DECRYPT_ERROR, "client certificate rejected: the key does not match it"),
        (PROTOCOL_VERSION,
         "the broker does not accept TLS 1.2, the only version the nRF91 modem speaks"),
        (HANDSHAKE_FAILURE,
         "handshake failure: the broker refused the client certificate, or shares no cipher "
         "suite or curve with what the nRF91 offers (ECDHE with AES, TLS 1.2)"),
        (ACCESS_DENIED, "the TLS handshake failed: TLSV1_ALERT_ACCESS_DENIED"),
    ],
    ids=["unknown-ca", "bad-cert", "expired", "revoked", "unsupported", "decrypt-error",
         "protocol-version", "handshake-failure", "access-denied"],
)  # fmt: skip
def test_each_alert_from_the_broker_is_named(pki: Pki, description: int, reason: str) -> None:
    with serving(alert(description)) as server:
        result = run(pki, server)
    assert result == tls_failure(reason, server)


def test_a_handshake_failure_without_a_client_certificate(pki: Pki) -> None:
    chain, key = pki.issue(dns_names=(NAME,))
    # A TLS 1.2 OpenSSL server that requires a client certificate and gets none sends
    # handshake_failure: the probe was given no certificate, so that is what it means.
    with serving(handshake(server_context(pki, chain, key))) as server:
        result = run(pki, server, client=False)
    assert result == tls_failure(
        "the broker requires a client certificate (handshake failure without one)", server
    )


def test_a_broker_whose_only_curve_the_device_does_not_offer(pki: Pki) -> None:
    chain, key = pki.issue(dns_names=(NAME,))
    context = server_context(pki, chain, key, curve="brainpoolP256r1")
    with serving(handshake(context)) as server:
        result = run(pki, server)
    assert result == tls_failure(
        "handshake failure: the broker refused the client certificate, or shares no cipher "
        "suite or curve with what the nRF91 offers (ECDHE with AES, TLS 1.2)",
        server,
    )


def test_an_alert_openssl_has_no_name_for_is_shown_as_openssl_reports_it(pki: Pki) -> None:
    # 255 is no alert description of any TLS version: OpenSSL's error has no reason code.
    with serving(alert(255)) as server:
        expected = plain_client_error(server, f.cert_pem(pki.ca))
        result = run(pki, server)
    reason: str | None = expected.reason  # typeshed says str; OpenSSL may give none
    assert reason is None
    assert result == tls_failure(f"the TLS handshake failed: {expected}", server)


def test_an_end_of_stream_without_a_reason_is_a_closed_connection() -> None:
    # OpenSSL 1.1.1 reports a peer that hangs up mid-handshake as SSL_ERROR_SYSCALL with EOF,
    # which Python raises as SSLEOFError with no reason code (OpenSSL 3 gives it a reason).
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:1129)")
    eof.reason = None  # type: ignore[assignment]
    eof.library = None  # type: ignore[assignment]
    credentials = ProbeCredentials(b"", CA_NAME)
    assert (
        probe_module._alert_reason(eof, credentials)
        == "the broker closed the connection during the TLS handshake"
    )


# -- the broker's certificate -------------------------------------------------------------------


def test_a_self_signed_broker_certificate_is_an_unknown_ca(pki: Pki) -> None:
    key = f.ec_key()
    chain = f.cert_pem(f.make_cert(NAME, key, dns_names=(NAME,)))
    with serving(handshake(server_context(pki, chain, key))) as server:
        expected = plain_client_error(server, f.cert_pem(pki.ca))
        result = run(pki, server)
    assert isinstance(expected, ssl.SSLCertVerificationError)
    assert expected.verify_code == 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    assert result == tls_failure(
        "unknown CA: the broker's certificate does not chain to the CA in the set "
        f"({CA_NAME}); the device would refuse this broker ({expected.verify_message})",
        server,
    )


def test_a_ca_file_holding_only_the_intermediate_is_an_unknown_ca(pki: Pki) -> None:
    inter_key = f.ec_key()
    inter = f.make_cert("tls failures intermediate", inter_key, issuer=(pki.ca, pki.ca_key),
                        ca=True)  # fmt: skip
    key = f.ec_key()
    leaf = f.make_cert(NAME, key, issuer=(inter, inter_key), dns_names=(NAME,))
    chain = f.cert_pem(leaf) + f.cert_pem(inter)
    with serving(handshake(server_context(pki, chain, key))) as server:
        expected = plain_client_error(server, f.cert_pem(inter))
        result = run(pki, server, ca_pem=f.cert_pem(inter))
    assert isinstance(expected, ssl.SSLCertVerificationError)
    assert expected.verify_code == 2  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    assert result.reason == (
        "unknown CA: the broker's certificate does not chain to the CA in the set "
        f"({CA_NAME}); the device would refuse this broker ({expected.verify_message})"
    )


def _chain_without_root(pki: Pki) -> tuple[bytes, f.PrivateKey, str]:
    """A broker chain (leaf, intermediate) that stops below a root the CA file does not hold."""
    root_key, inter_key, key = f.ec_key(), f.ec_key(), f.ec_key()
    root = f.make_cert("another root", root_key, ca=True)
    inter = f.make_cert("another intermediate", inter_key, issuer=(root, root_key), ca=True)
    leaf = f.make_cert(NAME, key, issuer=(inter, inter_key), dns_names=(NAME,))
    return f.cert_pem(leaf) + f.cert_pem(inter), key, inter.subject.rfc4514_string()


def incomplete(issued_by: str) -> str:
    return (
        f"incomplete chain: the broker's certificate {issued_by}no certificate the broker sent "
        f"leads from it to the CA in the set ({CA_NAME}): the broker must send its "
        "intermediate CA certificates (the modem does not fetch missing ones), or the CA file "
        "holds another root"
    )


def test_a_chain_that_omits_the_root_names_the_issuer(pki: Pki) -> None:
    chain, key, inter_subject = _chain_without_root(pki)
    context = server_context(pki, chain, key)
    with serving(handshake(context)) as server:
        expected = plain_client_error(server, f.cert_pem(pki.ca))
        result = run(pki, server)
    assert isinstance(expected, ssl.SSLCertVerificationError)
    assert expected.verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert inter_subject == "CN=another intermediate"
    assert result == tls_failure(incomplete(f"is issued by {inter_subject}, and "), server)


def test_the_issuer_is_asked_for_with_the_device_s_server_name(pki: Pki) -> None:
    chain, key, inter_subject = _chain_without_root(pki)
    seen: list[str | None] = []
    context = server_context(pki, chain, key, seen=seen, require_sni=True)
    with serving(handshake(context)) as server:
        result = run(pki, server)
    assert seen == [NAME, NAME]  # the failed session, then the one that reads the issuer
    assert result == tls_failure(incomplete(f"is issued by {inter_subject}, and "), server)


def test_an_issuer_the_broker_does_not_show_in_time_is_left_out(pki: Pki) -> None:
    chain, key, _ = _chain_without_root(pki)
    context = server_context(pki, chain, key)
    # The second session (to read the issuer) is answered only after 6 s: far beyond the
    # probe's 0.5 s time-out, so the reason is given without the issuer.
    with serving(handshake(context), late(6.0, handshake(context))) as server:
        result = run(pki, server, timeout=0.5)
    assert result == tls_failure(incomplete(""), server)


def test_an_expired_broker_certificate(pki: Pki) -> None:
    old = f.NOW - dt.timedelta(days=400)
    chain, key = pki.issue(dns_names=(NAME,), not_before=old, not_after=old + dt.timedelta(30))
    with serving(handshake(server_context(pki, chain, key))) as server:
        expected = plain_client_error(server, f.cert_pem(pki.ca))
        result = run(pki, server)
    assert isinstance(expected, ssl.SSLCertVerificationError)
    assert expected.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED
    assert result == tls_failure(
        "expired: the broker's certificate has expired; the device would refuse it", server
    )


def test_a_broker_certificate_not_valid_yet(pki: Pki) -> None:
    soon = f.NOW + dt.timedelta(days=10)
    chain, key = pki.issue(dns_names=(NAME,), not_before=soon, not_after=soon + dt.timedelta(30))
    with serving(handshake(server_context(pki, chain, key))) as server:
        expected = plain_client_error(server, f.cert_pem(pki.ca))
        result = run(pki, server)
    assert isinstance(expected, ssl.SSLCertVerificationError)
    assert expected.verify_code == 9  # X509_V_ERR_CERT_NOT_YET_VALID
    assert result == tls_failure(
        "the broker's certificate is not valid yet; the device would refuse it", server
    )


def test_a_client_certificate_installed_on_the_broker_fails_with_openssl_s_reason(
    pki: Pki,
) -> None:
    # A certificate for TLS clients only (extended key usage clientAuth) on the broker.
    key = f.ec_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(f.name(NAME))
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(f.NOW - dt.timedelta(days=1))
        .not_valid_after(f.NOW + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(pki.ca_key, hashes.SHA256())
    )
    with serving(handshake(server_context(pki, f.cert_pem(cert), key))) as server:
        expected = plain_client_error(server, f.cert_pem(pki.ca))
        result = run(pki, server)
    assert isinstance(expected, ssl.SSLCertVerificationError)
    assert expected.verify_code == 26  # X509_V_ERR_INVALID_PURPOSE
    assert result == tls_failure(
        f"the broker's certificate failed verification: {expected.verify_message}", server
    )


# -- the broker's name --------------------------------------------------------------------------


def mismatch(name: str, names: str) -> str:
    return f"hostname mismatch: the broker's certificate is not valid for {name!r}{names}"


def test_a_hostname_mismatch_lists_every_name_of_the_certificate(pki: Pki) -> None:
    chain, key = pki.issue(dns_names=(NAME, "mqtt.broker.test"), ip_addresses=("127.0.0.2",))
    with serving(handshake(server_context(pki, chain, key))) as server:
        result = run(pki, server, server_name="mqtt.example.com")
    assert result == tls_failure(
        mismatch(
            "mqtt.example.com",
            f" (it names DNS:{NAME}, DNS:mqtt.broker.test, IP Address:127.0.0.2)",
        ),
        server,
    )


def test_an_ip_address_the_certificate_does_not_name(pki: Pki) -> None:
    chain, key = pki.issue(dns_names=(NAME,))
    with serving(handshake(server_context(pki, chain, key))) as server:
        expected = plain_client_error(server, f.cert_pem(pki.ca), name="127.0.0.1")
        result = run(pki, server, server_name=None)
    assert isinstance(expected, ssl.SSLCertVerificationError)
    assert expected.verify_code == 64  # X509_V_ERR_IP_ADDRESS_MISMATCH
    assert result == tls_failure(mismatch("127.0.0.1", f" (it names DNS:{NAME})"), server)


def test_a_mismatch_with_a_certificate_that_names_nothing(pki: Pki) -> None:
    chain, key = pki.issue("some other broker")  # no subjectAltName at all
    with serving(handshake(server_context(pki, chain, key))) as server:
        result = run(pki, server)
    assert result == tls_failure(mismatch(NAME, ""), server)


def test_the_names_are_asked_for_with_the_device_s_server_name(pki: Pki) -> None:
    # A broker that needs SNI (as AWS IoT does) answers the second session only with it.
    chain, key = pki.issue(dns_names=(NAME,))
    seen: list[str | None] = []
    context = server_context(pki, chain, key, seen=seen, require_sni=True)
    with serving(handshake(context)) as server:
        result = run(pki, server, server_name="mqtt.example.com")
    assert seen == ["mqtt.example.com", "mqtt.example.com"]
    assert result == tls_failure(mismatch("mqtt.example.com", f" (it names DNS:{NAME})"), server)


def test_names_the_broker_does_not_show_in_time_are_left_out(pki: Pki) -> None:
    chain, key = pki.issue(dns_names=(NAME,))
    context = server_context(pki, chain, key)
    with serving(handshake(context), late(6.0, handshake(context))) as server:
        result = run(pki, server, server_name="mqtt.example.com", timeout=0.5)
    assert result == tls_failure(mismatch("mqtt.example.com", ""), server)


def test_names_that_are_not_text_are_left_out(pki: Pki) -> None:
    # A directoryName in subjectAltName: getpeercert() gives it as nested tuples, not text.
    key = f.ec_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(f.name(NAME))
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(f.NOW - dt.timedelta(days=1))
        .not_valid_after(f.NOW + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(NAME), x509.DirectoryName(f.name("broker directory entry"))]
            ),
            critical=False,
        )
        .sign(pki.ca_key, hashes.SHA256())
    )
    with serving(handshake(server_context(pki, f.cert_pem(cert), key))) as server:
        result = run(pki, server, server_name="mqtt.example.com")
    assert result == tls_failure(mismatch("mqtt.example.com", f" (it names DNS:{NAME})"), server)


# -- a session that works -----------------------------------------------------------------------


def openssl_date(when: dt.datetime) -> str:
    """A date as getpeercert() shows it (OpenSSL's ASN1_TIME_print): `Mar  5 07:08:09 2027 GMT`."""
    return f"{when:%b} {when.day:>2} {when:%H:%M:%S %Y} GMT"


def accepted(server: Server, session: str) -> ProbeResult:
    return ProbeResult(
        True,
        "done",
        "the broker accepts this device",
        (
            f"TCP connected to 127.0.0.1:{server.port}",
            session,
            "MQTT 3.1.1 CONNECT as client id 'dev-1': CONNACK 0, accepted",
        ),
    )


def test_a_broker_that_asks_for_no_client_certificate(pki: Pki) -> None:
    key = f.ec_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provguard tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, NAME),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(f.NOW - dt.timedelta(days=1))
        .not_valid_after(f.NOW + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(pki.ca_key, hashes.SHA256())
    )
    context = server_context(pki, f.cert_pem(cert), key, client_certificates=False)
    with serving(accept_mqtt(context)) as server:
        result = run(pki, server, client=False)
    assert result == accepted(
        server,
        f"TLSv1.2 {CIPHER} without a client certificate; broker certificate "
        f"organizationName=provguard tests, commonName={NAME} verified against {CA_NAME} and "
        f"valid for '{NAME}', until {openssl_date(cert.not_valid_after_utc)}",
    )


def test_a_broker_certificate_with_an_empty_subject(pki: Pki) -> None:
    # RFC 5280 4.1.2.6: an empty subject is allowed when a critical subjectAltName names it.
    key = f.ec_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(f.NOW - dt.timedelta(days=1))
        .not_valid_after(f.NOW + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=True)
        .sign(pki.ca_key, hashes.SHA256())
    )
    with serving(accept_mqtt(server_context(pki, f.cert_pem(cert), key))) as server:
        result = run(pki, server)
    assert result == accepted(
        server,
        f"TLSv1.2 {CIPHER} with the client certificate; broker certificate (no subject) "
        f"verified against {CA_NAME} and valid for '{NAME}', until "
        f"{openssl_date(cert.not_valid_after_utc)}",
    )


# -- refused before anything is sent ------------------------------------------------------------


def test_an_unusable_hostname_option_is_named_as_the_option(pki: Pki) -> None:
    with pytest.raises(UsageError) as refused:
        probe(
            Endpoint("127.0.0.1", 1), pki.credentials(), client_id="dev-1",
            server_name="b" * 300,
        )  # fmt: skip
    assert str(refused.value).startswith(
        f"'{'b' * 40}... (300 characters)': not a valid --hostname ("
    )


def test_credentials_the_tls_library_refuses(pki: Pki) -> None:
    # OpenSSL's default security level refuses a 1024-bit RSA key for the client certificate.
    weak_key = f.rsa_key(1024)
    weak = f.cert_pem(f.make_cert("dev-1", weak_key, issuer=(pki.ca, pki.ca_key)))
    (pki.directory / "weak.pem").write_bytes(weak)
    (pki.directory / "weak.key").write_bytes(f.key_pem(weak_key))
    with pytest.raises(ssl.SSLError) as plain:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            pki.directory / "weak.pem", pki.directory / "weak.key"
        )
    assert plain.value.reason == "EE_KEY_TOO_SMALL"
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        credentials = ProbeCredentials(f.cert_pem(pki.ca), CA_NAME, weak, weak_key)
        result = probe(Endpoint("127.0.0.1", port), credentials, client_id="dev-1")
    assert result == ProbeResult(
        False, "credentials", "the TLS library refused the credentials (EE_KEY_TOO_SMALL)", ()
    )


def test_a_ca_file_the_tls_library_cannot_read(pki: Pki) -> None:
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(ssl.SSLError) as plain:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=broken.decode())
    reason: str | None = plain.value.reason  # typeshed says str; here OpenSSL gives none
    assert reason is None
    result = probe(Endpoint("127.0.0.1", 1), ProbeCredentials(broken, CA_NAME), client_id="dev-1")
    assert result == ProbeResult(
        False, "credentials", f"the TLS library refused the credentials ({plain.value})", ()
    )


def test_half_a_client_identity_is_refused(pki: Pki) -> None:
    ca = f.cert_pem(pki.ca)
    for cert, key in ((f.cert_pem(pki.device_cert), None), (None, pki.device_key)):
        with pytest.raises(UsageError) as refused:
            ProbeCredentials(ca, CA_NAME, cert, key)
        assert str(refused.value) == (
            "probe needs both the client certificate and its key, or neither"
        )


def _fingerprint(public: PublicKeyTypes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, as `openssl pkey -pubout -outform DER | sha256sum`."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def test_a_key_that_is_not_the_certificate_s_is_refused_before_connecting(pki: Pki) -> None:
    stranger = f.ec_key()
    credentials = ProbeCredentials(
        f.cert_pem(pki.ca), CA_NAME, f.cert_pem(pki.device_cert), stranger
    )
    with serving(handshake(server_context(pki, *pki.issue(dns_names=(NAME,))))) as server:
        result = probe(server.endpoint, credentials, client_id="dev-1", server_name=NAME)
    assert result == ProbeResult(
        False,
        "credentials",
        f"the private key (public key {_fingerprint(stranger.public_key())}) does not belong to "
        f"the client certificate (public key {_fingerprint(pki.device_cert.public_key())}): the "
        "device's handshake would fail; nothing was sent to the broker",
        (),
    )


def test_the_probe_uses_no_deprecated_tls_api(pki: Pki) -> None:
    # Python deprecates the generic ssl.PROTOCOL_TLS (3.10): a later Python drops it.
    chain, key = pki.issue(dns_names=(NAME,))
    with serving(accept_mqtt(server_context(pki, chain, key))) as server, warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        result = run(pki, server)
    assert result.ok, result.reason
