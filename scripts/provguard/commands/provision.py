"""`provguard provision`: write the credential set to a modem over AT, only what differs."""

from __future__ import annotations

import argparse
import sys

from provguard import at
from provguard.cli import EXIT_INTERRUPTED
from provguard.commands.common import (
    add_credential_arguments,
    checked_credentials,
)
from provguard.errors import EXIT_OK, EXIT_PROBLEMS
from provguard.provision import KeyPolicy, Outcome, ProvisionReport, provision
from provguard.transport import DEFAULT_BAUDRATE, DEFAULT_TIMEOUT, SerialTransport

NAME = "provision"
HELP = "write the credentials to a modem over AT, only what differs"
DESCRIPTION = """\
Checks the credentials (and refuses on errors), then talks AT to the device on PORT (any path: a
USB serial device, a pseudo-terminal, a socat bridge) running the AT host or the serial LTE modem:

  AT+CMEE=1            extended error codes, so that refusals can be named
  AT+CFUN?             the functional mode the device is in
  AT%CMNG=1,<tag>      what the modem holds; each SHA-256 is compared with the content to write
  AT+CFUN=4            offline, only if something must be written and the modem is online
  AT%CMNG=0,...        one write per slot that differs, nothing else
  AT%CMNG=1,<tag>      every write verified by its SHA-256
  AT+CFUN=<found>      the functional mode restored, also after a failure

A second run with the same credentials writes nothing and leaves the device online. A slot holding
the same credential in another PEM form (written by Cellular Monitor or nrfcredstore: CRLF, other
line lengths) counts as unchanged: certificates are read back (AT%CMNG=2) and compared decoded.
The private key is written before the client certificate, so a run that stops half-way never
leaves the new certificate beside the old key; run it again to finish.
Exit codes: 0 done (or nothing to do), 1 refused (bad credentials, a modem error, a timeout, a
lost port: the report says what was written and what was not, and the modem's mode), 2 unusable
input or port, 130 interrupted (Ctrl-C; the report still says what was written).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, metavar="DEV", help="serial port of the device")
    parser.add_argument(
        "--baudrate",
        type=int,
        default=DEFAULT_BAUDRATE,
        metavar="N",
        help=f"baud rate (default {DEFAULT_BAUDRATE})",
    )
    parser.add_argument(
        "--timeout",
        type=at.timeout_argument,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for each answer, more than 0 and at most {at.MAX_TIMEOUT:g} "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--eol",
        choices=list(at.LINE_ENDINGS),
        default=at.DEFAULT_LINE_ENDING,
        help="what ends each command: the AT host's CONFIG_AT_HOST_TERMINATION "
        f"(default {at.DEFAULT_LINE_ENDING})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compare and show what would change; write nothing, leave the mode alone",
    )
    parser.add_argument(
        "--key-policy",
        choices=[p.value for p in KeyPolicy],
        default=KeyPolicy.COMPARE.value,
        help="compare: write the private key when its listed SHA-256 differs (default); "
        "if-missing: write it only when the modem has none at the tag or the client certificate "
        "is written too (for modem firmware whose key digest is not comparable)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the AT exchange (credential content is never shown)",
    )
    add_credential_arguments(parser)


def run(args: argparse.Namespace) -> int:
    creds, report = checked_credentials(args, for_modem_write=True)
    names = {f.slot: f.name for f in creds.files()}
    contents = dict(report.contents)

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    trace = say if args.verbose else None
    with SerialTransport(
        args.port,
        baudrate=args.baudrate,
        timeout=args.timeout,
        line_ending=at.LINE_ENDINGS[args.eol],
        trace=trace,
    ) as transport:
        result = provision(
            transport,
            contents,
            report.sec_tag,
            names=names,
            key_policy=KeyPolicy(args.key_policy),
            dry_run=args.dry_run,
            progress=say if args.verbose else None,
        )
    print_report(result, args.port)
    if result.interrupted:
        return EXIT_INTERRUPTED
    if not result.ok:
        return EXIT_PROBLEMS
    return EXIT_OK


_SHOW_DIGEST = (Outcome.WRITTEN, Outcome.WOULD_WRITE, Outcome.FAILED, Outcome.MISMATCH)
_MODE_NAMES = {0: "power off", 1: "online", 2: "receive only", 4: "offline", 21: "LTE on"}


def _mode(mode: int) -> str:
    name = _MODE_NAMES.get(mode)
    return f"CFUN={mode} ({name})" if name else f"CFUN={mode}"


def print_report(report: ProvisionReport, port: str) -> None:
    """What was compared and what happened, per slot; the failure (if any) on stderr."""
    out = sys.stdout
    mode = "" if report.initial_mode is None else f", modem in {_mode(report.initial_mode)}"
    dry = " (dry run: nothing written)" if report.dry_run else ""
    print(f"{port}: sec_tag {report.sec_tag}{mode}{dry}", file=out)
    for result in report.results:
        plan = result.plan
        line = f"  {plan.label + ':':20} {result.outcome.value:12} {plan.name}"
        if result.detail and result.outcome not in (Outcome.FAILED, Outcome.MISMATCH):
            line += f" ({result.detail})"
        print(line, file=out)
        if result.outcome in _SHOW_DIGEST:
            held = "holds" if result.outcome is Outcome.WOULD_WRITE else "held"
            listed = plan.listed_sha or ("an entry without digest" if plan.present else "nothing")
            print(f"  {'':20} SHA-256 {plan.expected_sha}; the modem {held} {listed}", file=out)
    if report.plan is not None:
        for other in report.plan.others:
            print(
                f"  {at.type_label(other.cred_type) + ':':20} {'left alone':12} "
                "(also stored at this sec_tag)",
                file=out,
            )
    if report.results:
        print(_summary(report), file=out)
    else:
        print("written: nothing (the run stopped before the comparison)", file=out)
    failed = [r for r in report.results if r.outcome in (Outcome.FAILED, Outcome.MISMATCH)]
    for result in failed:
        print(f"provguard: error: {result.plan.label}: {result.detail}", file=sys.stderr)
    if report.error and not failed and not report.interrupted:
        print(f"provguard: error: {report.error}", file=sys.stderr)
    if report.restore_error:
        print(f"provguard: error: {report.restore_error}", file=sys.stderr)
    if report.interrupted:
        print(f"provguard: interrupted: {_interrupted(report)}", file=sys.stderr)


def _interrupted(report: ProvisionReport) -> str:
    """What a Ctrl-C left behind: what was written, what was in flight, the modem's mode."""
    if not report.results:
        return "before the comparison: nothing was written"
    written = [r.plan.label for r in report.results if r.outcome is Outcome.WRITTEN]
    in_flight = [r.plan.label for r in report.results if r.outcome is Outcome.FAILED]
    text = f"written before: {', '.join(written) or 'nothing'}"
    if in_flight:
        text += f"; in flight (may or may not have reached the modem): {', '.join(in_flight)}"
    if report.left_in:
        text += f"; modem mode: {report.left_in}"
    return text + "; run provision again to finish"


def _summary(report: ProvisionReport) -> str:
    if report.dry_run:
        n = report.count(Outcome.WOULD_WRITE)
        return f"would write {n}, {report.count(Outcome.UNCHANGED)} unchanged"
    written = [r.plan.label for r in report.results if r.outcome is Outcome.WRITTEN]
    not_written = [
        r.plan.label for r in report.results if r.outcome in (Outcome.FAILED, Outcome.NOT_WRITTEN)
    ]
    mismatched = [r.plan.label for r in report.results if r.outcome is Outcome.MISMATCH]
    text = f"written: {', '.join(written) or 'nothing'}"
    if mismatched:
        text += f"; written but NOT verified: {', '.join(mismatched)}"
    if not_written:
        text += f"; NOT written: {', '.join(not_written)}"
    if report.went_offline and report.restored:
        text += f"; functional mode restored to CFUN={report.initial_mode}"
    elif report.went_offline:
        text += f"; functional mode NOT restored: {report.left_in}"
    elif not written and not not_written and not mismatched:
        text += " (everything already in place; the device stayed in its mode)"
    return text
