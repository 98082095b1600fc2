"""`provguard enroll`: the key is generated in each modem, the device CA signs its CSR."""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from provguard import at
from provguard.commands.common import DEFAULT_SEC_TAG
from provguard.enroll import (
    DEFAULT_DAYS,
    DEFAULT_SUBJECT,
    DeviceResult,
    EnrollJob,
    SubjectTemplate,
    enroll_device,
    load_broker_root,
    load_device_ca,
    summarise,
)
from provguard.errors import InputError, UsageError
from provguard.ledger import DEFAULT_URL, Ledger, LedgerError, Outcome
from provguard.nrf91 import SEC_TAG_MAX
from provguard.transport import DEFAULT_BAUDRATE, DEFAULT_TIMEOUT, SerialTransport

NAME = "enroll"
HELP = "generate each device's key in its modem and issue its certificate (one or many ports)"
DESCRIPTION = """\
Production enrollment: the private key is born in the modem and never leaves it.

Per port: AT+CMEE=1, the IMEI (AT+CGSN) and modem firmware (AT+CGMR), AT+CFUN? then AT+CFUN=4
(the mode found is restored on every path: errors, timeouts, Ctrl-C). When the sec_tag already
holds a valid certificate issued by the device CA and recorded in the ledger for this device and
key, and the broker root is in place, nothing is written. Otherwise AT%KEYGEN=<tag>,2,0,"<subject>",
the CSR is verified (signature, subject, P-256), the device CA signs a client certificate (serial
from the ledger, clientAuth, SKI/AKI), which is written (%CMNG type 1) with the broker root
(type 0, only if the modem's SHA-256 differs), and the modem's list is verified.

Many ports at once: --ports P1 P2 ..., --ports-from FILE (one per line, # comments) or a glob
("/dev/ttyACM*"): one worker per port, a live table on a terminal, a JSON lines log. One device's
failure never stops the others; re-running the same command finishes what was left and writes
nothing to devices that are done.

Every attempt goes into the ledger (--ledger, default sqlite:///provguard-ledger.sqlite in the
current directory; postgresql://... for several stations). Never a private key.
Exit codes: 0 every device enrolled or already enrolled, 1 any refused (the modem's error is
explained), 2 any unusable (input, port, device CA, ledger), 130 interrupted.
"""

_GLOB_CHARS = frozenset("*?[")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0: {text!r}")
    return value


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 36500:
        raise argparse.ArgumentTypeError(f"must be 1-36500 days: {text!r}")
    return value


def _sec_tag(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= SEC_TAG_MAX:
        raise argparse.ArgumentTypeError(f"sec_tag {value} is outside 0-{SEC_TAG_MAX}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    ports = parser.add_argument_group("devices (one of)")
    which = ports.add_mutually_exclusive_group(required=True)
    which.add_argument("--port", metavar="DEV", help="one serial port (or a quoted glob)")
    which.add_argument("--ports", nargs="+", metavar="DEV", help="several ports (or globs)")
    which.add_argument(
        "--ports-from", type=Path, metavar="FILE", help="a file naming one port per line"
    )
    pki = parser.add_argument_group("certificates")
    pki.add_argument("--device-ca-cert", type=Path, required=True, metavar="FILE")
    pki.add_argument(
        "--device-ca-key",
        type=Path,
        required=True,
        metavar="FILE",
        help="the device CA's key (unencrypted PEM or DER; named by file only)",
    )
    pki.add_argument(
        "--device-ca-key-pass-env",
        metavar="NAME",
        help="an environment variable holding the device CA key's password (never a command-line "
        "argument: those show in process lists and shell histories)",
    )
    pki.add_argument(
        "--ca", type=Path, required=True, metavar="FILE", help="the broker's root CA (PEM)"
    )
    pki.add_argument(
        "--sec-tag",
        type=_sec_tag,
        default=DEFAULT_SEC_TAG,
        metavar="N",
        help=f"modem sec_tag (default {DEFAULT_SEC_TAG})",
    )
    pki.add_argument(
        "--subject",
        default=DEFAULT_SUBJECT,
        metavar="TEMPLATE",
        help=f"the CSR subject, {{imei}} replaced (default {DEFAULT_SUBJECT!r}; CN, O, OU, C, "
        "L, ST)",
    )
    pki.add_argument(
        "--days",
        type=_days,
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"certificate validity (default {DEFAULT_DAYS}; never beyond the device CA's)",
    )
    pki.add_argument(
        "--rotate",
        action="store_true",
        help="generate a new key even where the device is enrolled (deletes the tag's old key)",
    )
    record = parser.add_argument_group("ledger and output")
    record.add_argument(
        "--ledger", default=DEFAULT_URL, metavar="URL", help=f"default {DEFAULT_URL}"
    )
    record.add_argument(
        "--station",
        default=socket.gethostname(),
        metavar="NAME",
        help="this station's name in the ledger (default: the host name)",
    )
    record.add_argument(
        "--log",
        type=Path,
        default=Path("provguard-enroll.jsonl"),
        metavar="FILE",
        help="JSON lines log, appended (default provguard-enroll.jsonl)",
    )
    record.add_argument("--format", choices=("text", "json"), default="text")
    record.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show each port's AT exchange on stderr (CSRs and certificates may show; keys "
        "never travel; replaces the live table)",
    )
    link = parser.add_argument_group("serial link")
    link.add_argument("--baudrate", type=int, default=DEFAULT_BAUDRATE, metavar="N")
    link.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for each answer (default {DEFAULT_TIMEOUT:g})",
    )


def resolve_ports(args: argparse.Namespace) -> list[str]:
    """The ports named, globs expanded, duplicates dropped, in the order given."""
    if args.ports_from is not None:
        try:
            lines = args.ports_from.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"cannot read: {getattr(exc, 'strerror', None) or exc}", path=args.ports_from
            ) from None
        named = [line.split("#", 1)[0].strip() for line in lines]
        named = [n for n in named if n]
        if not named:
            raise InputError("names no port", path=args.ports_from)
    else:
        named = [args.port] if args.port is not None else list(args.ports)
    ports: list[str] = []
    for name in named:
        if _GLOB_CHARS & set(name):
            matches = sorted(glob.glob(name))
            if not matches:
                raise UsageError(f"no port matches {name!r}")
            ports.extend(matches)
        else:
            ports.append(name)
    return list(dict.fromkeys(ports))


class Reporter:
    """The JSON lines log and, on a terminal, the live table (port, IMEI, step, result)."""

    def __init__(self, ports: Sequence[str], log: TextIO | None, live: TextIO | None, station: str):
        self._lock = threading.Lock()
        self._log = log
        self._live = live
        self._station = station
        self._rows: dict[str, list[str]] = {p: [p, "", "waiting", ""] for p in ports}
        self._drawn = 0
        self._last = 0.0

    def event(
        self, port: str, step: str, detail: str = "", data: dict[str, object] | None = None
    ) -> None:
        with self._lock:
            row = self._rows[port]
            if step == "identified":
                row[1] = detail
            if step in ("done", "result"):
                row[2], row[3] = "done", detail
            else:
                row[2] = step
            if self._log is not None:
                record = {
                    "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                    "station": self._station,
                    "port": port,
                    "step": step,
                    "detail": detail,
                    **(data or {}),
                }
                self._log.write(json.dumps(record) + "\n")
                self._log.flush()
            self._draw(force=step == "done")

    def _draw(self, *, force: bool = False) -> None:
        if self._live is None:
            return
        moment = time.monotonic()
        if not force and moment - self._last < 0.1:
            return
        self._last = moment
        widths = [max(4, *(len(r[i]) for r in self._rows.values())) for i in range(4)]
        header = ["PORT", "IMEI", "STEP", "RESULT"]
        lines = [header, *self._rows.values()]
        text = "".join(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() + "\x1b[K\n"
            for line in lines
        )
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self._live.write(up + text)
        self._live.flush()
        self._drawn = len(lines)

    def trace(self, port: str, text: str) -> None:
        with self._lock:
            print(f"{port} {text}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        with self._lock:
            self._draw(force=True)


def _enroll_port(
    port: str,
    job: EnrollJob,
    ledger: Ledger,
    args: argparse.Namespace,
    reporter: Reporter,
    stop: threading.Event,
) -> DeviceResult:
    def progress(step: str, detail: str) -> None:
        reporter.event(port, step, detail)

    try:
        with SerialTransport(
            port,
            baudrate=args.baudrate,
            timeout=args.timeout,
            line_ending=at.LINE_ENDINGS[at.DEFAULT_LINE_ENDING],
            trace=(lambda text: reporter.trace(port, text)) if args.verbose else None,
        ) as transport:
            result = enroll_device(transport, job, ledger, port=port, progress=progress, stop=stop)
    except InputError as exc:  # the port cannot be opened: recorded like any attempt
        attempt = None
        try:
            attempt = ledger.begin(
                station=job.station,
                port=port,
                sec_tag=job.sec_tag,
                device_ca_fingerprint=job.device_ca.fingerprint,
            )
            ledger.finish(attempt, Outcome.UNUSABLE, str(exc))
        except LedgerError:
            pass
        result = DeviceResult(
            port=port, outcome=Outcome.UNUSABLE, attempt_id=attempt, error=str(exc)
        )
        reporter.event(port, "done", result.outcome.value)
    reporter.event(port, "result", result.outcome.value, {"result": result.to_dict()})
    return result


def run(args: argparse.Namespace) -> int:
    ports = resolve_ports(args)
    now = dt.datetime.now(dt.timezone.utc)
    password = None
    if args.device_ca_key_pass_env is not None:
        value = os.environ.get(args.device_ca_key_pass_env)
        if value is None:
            raise UsageError(
                f"--device-ca-key-pass-env: the environment variable "
                f"{args.device_ca_key_pass_env} is not set"
            )
        password = value.encode("utf-8")
    device_ca = load_device_ca(
        args.device_ca_cert, args.device_ca_key, at_time=now, password=password
    )
    job = EnrollJob(
        device_ca=device_ca,
        broker_root=load_broker_root(args.ca),
        sec_tag=args.sec_tag,
        subject=SubjectTemplate(args.subject),
        days=args.days,
        station=args.station,
        rotate=args.rotate,
    )
    if device_ca.cert.not_valid_after_utc < now + dt.timedelta(days=args.days):
        print(
            f"provguard: note: certificates end with the device CA on "
            f"{device_ca.cert.not_valid_after_utc:%Y-%m-%d}, before --days {args.days}",
            file=sys.stderr,
        )
    try:
        log: TextIO = args.log.open("a", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the log: {exc.strerror or exc}", path=args.log) from None
    with log, Ledger.open(args.ledger) as ledger:
        ledger.record_device_ca(device_ca.cert, device_ca.fingerprint, device_ca.pem)
        tty = sys.stderr.isatty() and args.format == "text" and not args.verbose
        live = sys.stderr if tty else None
        reporter = Reporter(ports, log, live, args.station)
        results, interrupted = _run_workers(ports, job, ledger, args, reporter)
        reporter.finish()
    _print_results(results, args.format, sys.stdout)
    if interrupted:
        print(
            "provguard: interrupted: each device was stopped between two commands and its "
            "functional mode given back where the modem answered (per device above); re-run "
            "the same command to finish",
            file=sys.stderr,
        )
        return 130
    return summarise(results)


def _run_workers(
    ports: Sequence[str],
    job: EnrollJob,
    ledger: Ledger,
    args: argparse.Namespace,
    reporter: Reporter,
) -> tuple[list[DeviceResult], bool]:
    stop = threading.Event()
    results: dict[str, DeviceResult] = {}
    done = {port: threading.Event() for port in ports}

    def work(port: str) -> None:
        try:
            results[port] = _enroll_port(port, job, ledger, args, reporter, stop)
        except Exception as exc:  # a worker that died reports unusable, never nothing
            results[port] = DeviceResult(
                port=port, outcome=Outcome.UNUSABLE, error=f"internal error ({type(exc).__name__})"
            )
        finally:
            done[port].set()

    threads = [threading.Thread(target=work, args=(p,), name=f"enroll {p}") for p in ports]
    interrupted = False
    try:
        for thread in threads:
            thread.start()
        for port in ports:
            # Event.wait, not Thread.join: a join interrupted by Ctrl-C may return early later.
            while not done[port].wait(0.2):
                pass
    except KeyboardInterrupt:
        interrupted = True
        stop.set()  # each worker stops before its next command and restores the mode
        for port, thread in zip(ports, threads, strict=True):
            if thread.ident is not None:  # started
                done[port].wait()
    missing = [
        DeviceResult(port=p, outcome=Outcome.UNUSABLE, error="no result (the worker stopped)")
        for p in ports
        if p not in results
    ]
    return [results[p] for p in ports if p in results] + missing, interrupted


def _print_results(results: Sequence[DeviceResult], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        counts = {o.value: sum(1 for r in results if r.outcome is o) for o in Outcome}
        json.dump(
            {
                "devices": [r.to_dict() for r in results],
                "counts": counts,
                "exit_code": summarise(results),
            },
            out,
            indent=2,
        )
        out.write("\n")
        return
    for r in results:
        what = ", ".join(r.written) if r.written else "nothing"
        line = f"{r.port}: {r.imei or '-'} {r.outcome.value}"
        if r.cert_serial:
            line += f", certificate serial {r.cert_serial}"
        if r.outcome in (Outcome.ENROLLED, Outcome.ALREADY_ENROLLED):
            line += f"; written: {what}"
        print(line, file=out)
        if r.error:
            print(f"  error: {r.error}", file=out)
            if r.written:
                print(f"  written before it stopped: {what}", file=out)
        if r.went_offline:
            state = (
                f"restored to CFUN={r.restore_mode}"
                if r.restore_error is None
                else f"NOT restored: {r.restore_error}"
            )
            if r.mode_from_attempt is not None and r.restore_error is None:
                state += (
                    f" (found CFUN={r.initial_mode}, as attempt {r.mode_from_attempt} left it "
                    "when it stopped mid-device)"
                )
            print(f"  functional mode {state}", file=out)
    parts = [
        f"{sum(1 for r in results if r.outcome is o)} {o.value.replace('_', ' ')}"
        for o in Outcome
        if o is not Outcome.IN_PROGRESS
    ]
    print(f"{len(results)} device(s): {', '.join(parts)}", file=out)
