"""`provguard dev-pki`: a throwaway CA, broker and device certificate for local testing."""

from __future__ import annotations

import argparse
from pathlib import Path

from provguard import pki
from provguard.credentials import cert_fingerprint, key_fingerprint
from provguard.errors import EXIT_OK

NAME = "dev-pki"
HELP = "create a throwaway development PKI (CA, broker and device certificates)"
DESCRIPTION = f"""\
Create a development CA, a certificate for the broker host (with a subjectAltName) and a device
certificate with its key, all EC P-256, in DIR: {", ".join(pki.FILES.values())}.
Every file is written with mode 0600; existing files are never overwritten.
For local testing only: a production CA key does not belong on a laptop.

example:
  provguard dev-pki certs --broker-host localhost
  provguard check --ca certs/ca.pem --cert certs/client.pem --key certs/client.key
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, metavar="DIR", help="where to write the files")
    parser.add_argument(
        "--broker-host",
        default="localhost",
        metavar="NAME",
        help="host name or IP address the broker certificate is for (default: localhost)",
    )
    parser.add_argument(
        "--device-id",
        default="nrf-dev-device",
        metavar="ID",
        help="common name of the device certificate (default: nrf-dev-device)",
    )


def run(args: argparse.Namespace) -> int:
    created = pki.create(args.broker_host, args.device_id)
    paths = pki.write(created, args.directory)
    for path in paths:
        print(path)
    print(f"CA:     {cert_fingerprint(created.ca_cert)}")
    print(f"device: {args.device_id}, key {key_fingerprint(created.client_key)}")
    return EXIT_OK
