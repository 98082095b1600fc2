"""`provguard modem-sim`: simulated nRF91 modems on pseudo-terminals, to rehearse without boards."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from provguard.errors import EXIT_OK
from provguard.modemsim import (
    DEFAULT_FIRMWARE,
    Faults,
    ModemSim,
    ModemState,
    load_states,
    save_states,
    serve_all,
)

NAME = "modem-sim"
HELP = "simulated nRF91 modems on pseudo-terminals (rehearse provision/enroll without a board)"
DESCRIPTION = """\
Creates N pseudo-terminals, each served by a simulated nRF91 behind the AT host, and prints their
paths on stdout, one per line (nothing else goes to stdout). It answers what provguard uses:
AT+CMEE (default 0: bare ERROR), AT+CFUN, AT+CGSN, AT+CGMR, AT%CMNG write/list/read/delete with
real SHA-256 digests and the modem's +CME ERROR codes (518 while online, 513, 514, 515, 527), and
AT%KEYGEN, which generates a real P-256 key inside the simulated modem and answers with a real
CSR signed by it and a COSE_Sign1 (518 while online, 519 when the tag already holds a key).
It serves until Ctrl-C or SIGTERM.

--state FILE keeps the modems (IMEI, firmware, credential store) across runs, so a re-run sees
the same modems. The simulated modems keep the private keys they hold, so FILE holds private keys
and is written with mode 0600: it is a simulator; never give it real keys.

Faults on request (on every modem, or only on --faulty I): a "write" is an AT%CMNG=0 or an
AT%KEYGEN command, counted from 1 per modem.

example:
  provguard modem-sim --count 2 --state sim.json
  provguard modem-sim --state sim.json --refuse-write 2=515
  provguard modem-sim --state sim.json --drop-at-write 1
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value} is outside 1-256")
    return value


def _refusal(text: str) -> tuple[int, int]:
    write, sep, code = text.partition("=")
    try:
        k, n = int(write), int(code)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K=CODE (e.g. 2=515), got {text!r}") from None
    if not sep or k < 1 or not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"expected K=CODE with K >= 1 (e.g. 2=515), got {text!r}")
    return k, n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="JSON file keeping the modems across runs (created with mode 0600; holds the "
        "simulated modems' private keys); without it the modems live only as long as this run",
    )
    parser.add_argument(
        "--count",
        type=_positive,
        default=None,
        metavar="N",
        help="number of modems (default: as many as --state holds, at least 1)",
    )
    parser.add_argument(
        "--cfun",
        type=int,
        choices=[0, 1, 4],
        default=1,
        help="functional mode at power-up (default 1: online, as an application that connects)",
    )
    parser.add_argument(
        "--firmware",
        default=DEFAULT_FIRMWARE,
        metavar="MFW",
        help=f"modem firmware of new modems (AT+CGMR; default {DEFAULT_FIRMWARE}); "
        "mfw_nrf91x1_2.x refuses CRLF content with 527",
    )
    parser.add_argument(
        "--eol",
        choices=["crlf", "cr", "lf"],
        default="crlf",
        help="what ends a command (the AT host's CONFIG_AT_HOST_TERMINATION; default crlf)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log each command on stderr (content redacted)"
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--faulty", type=_positive, metavar="I", help="apply the faults to modem I only (from 1)"
    )
    faults.add_argument(
        "--refuse-write",
        type=_refusal,
        action="append",
        default=[],
        metavar="K=CODE",
        help="refuse write K with +CME ERROR: CODE (repeatable)",
    )
    faults.add_argument(
        "--hang-at-write",
        type=_positive,
        metavar="K",
        help="write K reaches the modem, then it never answers again (until restarted)",
    )
    faults.add_argument(
        "--drop-at-write",
        type=_positive,
        metavar="K",
        help="write K reaches the modem, then the port goes away",
    )
    faults.add_argument(
        "--write-lost",
        action="store_true",
        help="with --hang-at-write/--drop-at-write: the write does not reach the modem",
    )
    faults.add_argument(
        "--keygen-fails", action="store_true", help="AT%%KEYGEN answers 523 (generation failed)"
    )
    faults.add_argument(
        "--keygen-overwrites",
        action="store_true",
        help="AT%%KEYGEN replaces an existing key instead of answering 519",
    )
    faults.add_argument(
        "--refuse-overwrite",
        action="store_true",
        help="AT%%CMNG write to an occupied slot answers 519 (firmware that does not overwrite)",
    )


def run(args: argparse.Namespace) -> int:
    states = load_states(args.state) if args.state is not None else []
    count = args.count if args.count is not None else max(1, len(states))
    while len(states) < count:
        states.append(ModemState.create(firmware=args.firmware))
    lock = threading.Lock()

    def persist(_changed: ModemState) -> None:
        if args.state is not None:
            with lock:
                save_states(args.state, states)

    def log(text: str) -> None:
        with lock:
            print(text, file=sys.stderr, flush=True)

    if args.state is not None:
        save_states(args.state, states)
    sims = [
        ModemSim(
            state,
            cfun=args.cfun,
            faults=_faults(args) if args.faulty in (None, index + 1) else Faults(),
            refuse_overwrite=args.refuse_overwrite,
            keygen_overwrites=args.keygen_overwrites,
            termination=args.eol,
            log=log if args.verbose else None,
            on_change=persist,
            name=f"modem {index + 1}",
        )
        for index, state in enumerate(states[:count])
    ]
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    # Both stop it, also when started in the background by a script (SIGINT ignored there).
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = serve_all(sims)
    try:
        for sim in started:
            print(sim.port, flush=True)
        where = f"state in {args.state} (mode 0600, holds the simulated modems' private keys)"
        print(
            f"provguard modem-sim: {len(started)} modem(s) "
            f"({', '.join(s.state.imei for s in started)}); "
            f"{where if args.state else 'no --state: forgotten at exit'}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.2):
                pass
    finally:
        for sim in started:
            sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        persist(states[0])
    return EXIT_OK


def _faults(args: argparse.Namespace) -> Faults:
    return Faults(
        refuse_write=dict(args.refuse_write),
        hang_at_write=args.hang_at_write,
        drop_at_write=args.drop_at_write,
        write_reaches_modem=not args.write_lost,
        keygen_fails=args.keygen_fails,
    )
