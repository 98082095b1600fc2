"""`provguard render`: certificates.h for CONFIG_PROVISION_CERTIFICATES development builds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provguard.commands.common import add_credential_arguments, checked_credentials
from provguard.errors import EXIT_OK
from provguard.render import render_header, write_header

NAME = "render"
HELP = "render certificates.h from checked credentials (development builds only)"
DESCRIPTION = """\
Run every check of 'provguard check' and, when there is no error, write certificates.h: the
sec_tag, each credential as C string literals (one PEM line each, LF) with its size, and the
SHA-256 fingerprints of the certificates in comments. The output is deterministic, written
atomically with mode 0600 (missing directories are created), and never to a file git tracks, to
a path in a git work tree that git does not ignore (unless --force-untracked), to anything but a
regular file, or over a file provguard did not generate or that was edited since.

example:
  provguard render --ca certs/ca.pem --cert certs/client.pem --key certs/client.key \\
      --sec-tag 24 -o build/generated/certificates.h
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_credential_arguments(parser)
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="PATH", help="header to write"
    )
    parser.add_argument(
        "--force-untracked",
        action="store_true",
        help="write into a git work tree even where git does not ignore the path "
        "(a path git tracks is always refused)",
    )


def run(args: argparse.Namespace) -> int:
    creds, report = checked_credentials(args, for_modem_write=True)
    text = render_header(report, creds)
    changed = write_header(args.output, text, force_untracked=args.force_untracked)
    state = "wrote" if changed else "unchanged"
    print(f"{state} {args.output} (sec_tag {report.sec_tag})", file=sys.stderr)
    return EXIT_OK
