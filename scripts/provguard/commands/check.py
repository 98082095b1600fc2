"""`provguard check`: everything that would make the modem or the broker refuse the credentials."""

from __future__ import annotations

import argparse
import sys

from provguard.commands.common import (
    add_credential_arguments,
    run_check,
    write_json_report,
    write_text_report,
)
from provguard.errors import EXIT_OK, EXIT_PROBLEMS

NAME = "check"
HELP = "validate a CA, client certificate and key for the nRF91 modem"
DESCRIPTION = """\
Validate TLS credentials before they reach a device: PEM framing and base64, labels that match
their slot, the root CA's self-signature, CA constraints, validity dates, key/certificate match,
key types and curves the modem supports, the 4 kB limit, and the sec_tag.

Exit 0 when there is no error (warnings allowed), 1 when there is an error, 2 when an input cannot
be read or the usage is wrong. Keys are named by fingerprint, never shown.

example:
  provguard check --ca certs/ca.pem --cert certs/client.pem --key certs/client.key
  provguard check --from certificates.json --format json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_credential_arguments(parser)
    parser.add_argument(
        "--for-firmware",
        action="store_true",
        help="also apply what 'render' requires (no encrypted private key)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    creds, report = run_check(args, for_modem_write=args.for_firmware)
    if args.format == "json":
        write_json_report(report, sys.stdout)
    else:
        write_text_report(report, creds, sys.stdout)
    return EXIT_OK if report.ok else EXIT_PROBLEMS
