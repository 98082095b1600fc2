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
    "probe",
    "scan",
)

EXIT_INTERRUPTED = 130


def _load_commands() -> list[ModuleType]:
    return [importlib.import_module(f"provguard.commands.{name}") for name in COMMAND_MODULES]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register every subcommand on `subparsers` (shared by the CLI and `west provguard`)."""
    for module in _load_commands():
        parser = subparsers.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(parser)
        parser.set_defaults(_run=module.run)


def build_parser(prog: str = "provguard") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Validate, render, provision and leak-scan nRF91 TLS credentials.",
        epilog="Exit codes: 0 fine, 1 the check found problems, 2 unusable input or usage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(subparsers)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
