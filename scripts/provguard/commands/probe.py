"""`provguard probe`: connect to a broker as the device would, and say precisely why it fails."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
from pathlib import Path
from types import FrameType

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from provguard.commands.common import add_credential_arguments, run_check
from provguard.credentials import CredentialFile, Severity, Slot
from provguard.credentials.loading import read_file
from provguard.errors import EXIT_OK, EXIT_PROBLEMS, InputError, UsageError
from provguard.hostnames import host_name
from provguard.probe import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    ProbeCredentials,
    check_timeout,
    parse_endpoint,
    probe,
)

NAME = "probe"
HELP = "do the device's TLS handshake and MQTT CONNECT against a broker"
DESCRIPTION = f"""\
Connects to HOST:PORT (port {DEFAULT_PORT} when left out) the way the nRF91 does with the
credential set: TLS 1.2 only, the modem's ECDHE cipher suites, the CA from the set, the client
certificate and key, peer verification required, SNI and a host-name check; then an MQTT 3.1.1
CONNECT. Exit 0 when the broker answers CONNACK 0; exit 1 with the precise reason otherwise:
unknown CA, hostname mismatch, expired certificate, client certificate rejected, connection
refused, timeout, or the CONNACK refusal code. Problems 'check' finds are shown first, as a
note: the probe still runs, so that the broker's answer shows what they cost.

The private key never touches a disk: it reaches Python's TLS library as an in-memory file.
An encrypted key is decrypted by provguard: the passphrase comes from --key-password-file, or is
asked for on the terminal; OpenSSL itself never prompts.

example:
  provguard probe mqtt.example.com:8883 --ca ca.pem --cert client.pem --key client.key
  provguard probe 192.0.2.10:8883 --hostname mqtt.example.com --from bundle.json
  provguard probe localhost:8883 --ca ca.pem --cert client.pem --key client-enc.key \\
      --key-password-file passphrase.txt
"""


def _timeout(text: str) -> float:
    try:
        return check_timeout(float(text))
    except (ValueError, UsageError):
        raise argparse.ArgumentTypeError(
            f"not a finite number of seconds above 0: {text[:20]!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("endpoint", metavar="HOST:PORT", help="the broker (MQTT over TLS)")
    parser.add_argument(
        "--hostname",
        metavar="NAME",
        help="the name the device uses for SNI and the certificate check "
        "(CONFIG_MQTT_BROKER_HOSTNAME), when HOST is another address for the same broker",
    )
    parser.add_argument(
        "--client-id",
        metavar="ID",
        help="MQTT client id (default: the client certificate's common name)",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds for each of connect, handshake and CONNACK (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--key-password-file",
        type=Path,
        metavar="FILE",
        help="the passphrase of an encrypted --key (first line of FILE); without it, provguard "
        "asks on the terminal",
    )
    add_credential_arguments(parser, sec_tag=False)


def run(args: argparse.Namespace) -> int:
    endpoint = parse_endpoint(args.endpoint)
    if args.hostname is not None:
        host_name(args.hostname, what="--hostname")
    creds, report = run_check(args, for_modem_write=False)
    shown = [p for p in report.problems if p.severity is not Severity.INFO]
    for problem in shown:
        print(problem, file=sys.stderr)
    if not report.ok:
        print(
            "provguard: note: the credentials have errors (above); probing anyway",
            file=sys.stderr,
        )
    contents = report.contents
    if Slot.CA not in contents:
        raise UsageError("probe needs the CA certificate that signed the broker (--ca)")
    if (Slot.CERT in contents) != (Slot.KEY in contents):
        raise UsageError("probe needs both the client certificate and its key, or neither")
    ca_name = creds.ca.name if creds.ca else "the CA"
    key = None
    if creds.key is not None:
        # The check's normalised PEM holds only the key blocks; an encrypted DER key has none.
        data = contents.get(Slot.KEY) or creds.key.data
        key = client_key(CredentialFile(Slot.KEY, creds.key.name, data), args.key_password_file)
    credentials = ProbeCredentials(
        ca=contents[Slot.CA],
        ca_name=ca_name,
        cert=contents.get(Slot.CERT),
        key=key,
    )
    client_id = args.client_id or _common_name(credentials.cert) or "provguard-probe"
    result = probe(
        endpoint,
        credentials,
        client_id=client_id,
        server_name=args.hostname,
        timeout=args.timeout,
    )
    for step in result.steps:
        print(f"ok: {step}")
    if not result.ok:
        print(
            f"provguard: probe {endpoint} failed ({result.stage}): {result.reason}", file=sys.stderr
        )
        return EXIT_PROBLEMS
    print(f"{endpoint}: {result.reason}")
    return EXIT_OK


def _common_name(cert_pem: bytes | None) -> str | None:
    if cert_pem is None:
        return None
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def client_key(file: CredentialFile, password_file: Path | None) -> PrivateKeyTypes:
    """The private key, decrypted in memory; the passphrase from the file or the terminal."""
    try:
        return _load_key(file, None)
    except TypeError:  # encrypted: a passphrase is needed
        pass
    return _load_key(file, _passphrase(file, password_file))


def _load_key(file: CredentialFile, password: bytes | None) -> PrivateKeyTypes:
    pem = b"-----BEGIN" in file.data
    load = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        return load(file.data, password)
    except ValueError:
        if password is None:
            raise InputError("no private key could be read", path=file.name) from None
        raise InputError(
            "the passphrase does not decrypt this private key", path=file.name
        ) from None
    except UnsupportedAlgorithm:
        raise InputError(
            "the private key's type or encryption is not supported", path=file.name
        ) from None


def _passphrase(file: CredentialFile, password_file: Path | None) -> bytes:
    if password_file is not None:
        lines = read_file(password_file).splitlines()
        if not lines or not lines[0]:
            raise InputError("the passphrase file's first line is empty", path=password_file)
        return lines[0]
    if not sys.stdin.isatty():
        raise UsageError(
            f"{file.name}: the private key is encrypted and there is no terminal to ask for its "
            "passphrase: give --key-password-file FILE"
        )
    # SIGTERM while waiting ends the run through getpass's clean-up, so echo comes back on.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        typed = getpass.getpass(f"passphrase for {file.name}: ")
    except EOFError:
        raise UsageError("no passphrase given") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    return typed.encode("utf-8")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    del frame
    raise SystemExit(128 + signum)
