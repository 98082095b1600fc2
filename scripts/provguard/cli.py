"""The `provguard` command line: a thin shell over the capability modules.

Each subcommand lives in `provguard.commands.<name>` and exposes `NAME`, `HELP`, `DESCRIPTION`,
`add_arguments(parser)` and `run(args) -> int`. The same parser is used by the console script,
`python -m provguard` and the west extension command, so all three behave alike.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import cast

from provguard import __version__
from provguard.errors import EXIT_UNUSABLE, ProvguardError

#: Subcommands in the order `--help` lists them. Adding a module here is all a new command needs.
COMMAND_MODULES: tuple[str, ...] = (
    "check",
    "render",
    "dev_pki",
    "at",
    "provision",
    "enroll",
    "ledger",
    "modem_sim",
    "probe",
    "scan",
)

EXIT_INTERRUPTED = 130
#: What a shell reports for a program ended by SIGPIPE (128 + 13): `provguard scan ... | head`.
EXIT_BROKEN_PIPE = 141


def command_name(module_name: str) -> str:
    return module_name.replace("_", "-")


def _load_commands(only: str | None = None) -> list[ModuleType]:
    names = [n for n in COMMAND_MODULES if only is None or command_name(n) == only]
    return [importlib.import_module(f"provguard.commands.{name}") for name in names]


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], only: str | None = None
) -> None:
    """Register the subcommands on `subparsers` (shared by the CLI and `west provguard`).

    `only` registers just that command, so a run imports only what it uses (start-up time
    matters when the scan gates every build).
    """
    for module in _load_commands(only):
        parser = subparsers.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(parser)
        parser.set_defaults(_run=module.run)


def build_parser(prog: str = "provguard", only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Validate, render, provision and leak-scan nRF91 TLS credentials.",
        epilog="Exit codes: 0 fine, 1 the check found problems, 2 unusable input or usage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(subparsers, only)
    return parser


def run(args: argparse.Namespace, prog: str = "provguard") -> int:
    """Run a parsed command and turn provguard's errors into a one-line message and exit code."""
    runner = cast(Callable[[argparse.Namespace], int] | None, getattr(args, "_run", None))
    if runner is None:
        build_parser(prog).print_help(sys.stderr)
        return EXIT_UNUSABLE
    try:
        return runner(args)
    except ProvguardError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`| head`): not an error worth a message, but the output was not
        # all delivered, so never 0. Point stdout at /dev/null so the exit-time flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("PROVGUARD_DEBUG"):
            raise
        # The message of an unexpected exception is not shown: it could quote input bytes.
        print(
            f"{prog}: internal error ({type(exc).__name__}); "
            "rerun with PROVGUARD_DEBUG=1 for a traceback and report it",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE


def _requested_command(argv: Sequence[str]) -> str | None:
    """The command named on the command line, if it is one (else the full parser is built)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    names = {command_name(n) for n in COMMAND_MODULES}
    return first if first in names else None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_requested_command(arguments))
    args = parser.parse_args(arguments)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
