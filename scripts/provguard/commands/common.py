"""CLI glue shared by the commands that take a credential set (check, render, at, provision)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from provguard.credentials import (
    CheckReport,
    CredentialSet,
    Severity,
    Slot,
    check,
    load_credential_set,
)
from provguard.errors import ProblemsFoundError, UsageError
from provguard.nrf91 import DECRYPTABLE_SEC_TAGS, DEFAULT_SEC_TAG, NRF_CLOUD_SEC_TAG

__all__ = [
    "DEFAULT_SEC_TAG",  # re-exported: enroll, which takes no credential set, uses it too
    "add_credential_arguments",
    "checked_credentials",
    "credentials_from_args",
    "run_check",
    "write_json_report",
    "write_text_report",
]


def _sec_tag(text: str) -> int:
    if len(text) > 24:
        raise argparse.ArgumentTypeError(f"far too long for a sec_tag: {text[:24]!r}...")
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def add_credential_arguments(parser: argparse.ArgumentParser, *, sec_tag: bool = True) -> None:
    group = parser.add_argument_group("credentials (PEM with LF or CRLF, or DER)")
    group.add_argument("--ca", type=Path, metavar="FILE", help="root CA that signed the broker")
    group.add_argument("--cert", type=Path, metavar="FILE", help="the device's client certificate")
    group.add_argument("--key", type=Path, metavar="FILE", help="the device's private key")
    group.add_argument(
        "--from",
        dest="from_json",
        type=Path,
        metavar="FILE.json",
        help="a Link Monitor / Cellular Monitor certificate-manager JSON "
        "(caCert, clientCert, privateKey, secTag); --ca/--cert/--key override its members",
    )
    if sec_tag:
        tags = parser.add_argument_group("security tag")
        tags.add_argument(
            "--sec-tag",
            type=_sec_tag,
            metavar="N",
            help=f"modem sec_tag (default: the JSON's secTag, else {DEFAULT_SEC_TAG})",
        )
        tags.add_argument(
            "--allow-nrf-cloud-tag",
            action="store_true",
            help=f"allow sec_tag {NRF_CLOUD_SEC_TAG}, which holds the nRF Cloud credentials",
        )
        tags.add_argument(
            "--allow-decryptable-tag",
            action="store_true",
            help=f"allow sec_tags {DECRYPTABLE_SEC_TAGS.start}-{DECRYPTABLE_SEC_TAGS.stop - 1} "
            "(decryptable in modem traces; tests only)",
        )


def credentials_from_args(args: argparse.Namespace) -> tuple[CredentialSet, int]:
    if not any((args.ca, args.cert, args.key, args.from_json)):
        raise UsageError("no credentials given: use --ca/--cert/--key or --from FILE.json")
    creds = load_credential_set(ca=args.ca, cert=args.cert, key=args.key, from_json=args.from_json)
    tag = getattr(args, "sec_tag", None)
    if tag is None:
        tag = creds.sec_tag if creds.sec_tag is not None else DEFAULT_SEC_TAG
    return creds, tag


def run_check(
    args: argparse.Namespace, *, for_modem_write: bool
) -> tuple[CredentialSet, CheckReport]:
    creds, tag = credentials_from_args(args)
    return creds, check(
        creds,
        tag,
        allow_nrf_cloud_tag=getattr(args, "allow_nrf_cloud_tag", False),
        allow_decryptable_tag=getattr(args, "allow_decryptable_tag", False),
        for_modem_write=for_modem_write,
    )


def checked_credentials(
    args: argparse.Namespace, *, for_modem_write: bool
) -> tuple[CredentialSet, CheckReport]:
    """Load and check; report problems on stderr; refuse (exit 1) when there is an error."""
    creds, report = run_check(args, for_modem_write=for_modem_write)
    shown = [p for p in report.problems if p.severity is not Severity.INFO]
    for problem in shown:
        print(problem, file=sys.stderr)
    if not report.ok:
        raise ProblemsFoundError(
            f"refused: the credentials have {_count(len(report.errors), 'error')} "
            "(run 'provguard check' for the full report)"
        )
    return creds, report


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def write_text_report(report: CheckReport, creds: CredentialSet, stream: TextIO) -> None:
    """The report for people: what was checked, then every problem, then a verdict."""
    for slot in Slot:
        file = creds.get(slot)
        if file is None:
            continue
        summary = report.summaries.get(slot, "not loaded")
        print(f"{slot.label + ':':20} {file.name}", file=stream)
        print(f"{'':20} {summary}", file=stream)
    print(f"{'sec_tag:':20} {report.sec_tag}", file=stream)
    if report.problems:
        print(file=stream)
    for problem in report.problems:
        print(problem, file=stream)
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "OK" if report.ok else "FAILED"
    print(
        f"\n{verdict}: {_count(errors, 'error')}, {_count(warnings, 'warning')}",
        file=stream,
    )


def write_json_report(report: CheckReport, stream: TextIO) -> None:
    document = {"ok": report.ok, "problems": [p.to_dict() for p in report.problems]}
    json.dump(document, stream, indent=2)
    stream.write("\n")
