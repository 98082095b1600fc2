"""`west provguard`: the provguard command line as a west extension command.

West loads this file by path (scripts/west-commands.yml), not as part of the package, so the
import of `provguard` relies on the package being installed (pip install -e .) and falls back to
the directory that contains the package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from west.commands import CommandError, WestCommand

try:
    from provguard import cli
except ImportError:  # pragma: no cover - exercised when provguard is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from provguard import cli

PROG = "west provguard"

DESCRIPTION = """\
Validate, render, provision and leak-scan nRF91 TLS credentials.

Same subcommands, options and exit codes as the `provguard` command:
0 fine, 1 the check found problems, 2 unusable input or usage."""


class ProvguardCommand(WestCommand):
    """Runs `provguard.cli` with the subcommands registered there."""

    def __init__(self) -> None:
        super().__init__(
            "provguard",
            "validate, render, provision and leak-scan nRF91 TLS credentials",
            DESCRIPTION,
            requires_workspace=False,
        )

    def do_add_parser(self, parser_adder: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parser_adder.add_parser(
            self.name,
            help=self.help,
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # Not "command": west keeps its own command name in args.command.
        subparsers = parser.add_subparsers(dest="provguard_command", metavar="COMMAND")
        cli.add_commands(subparsers)
        return parser

    def do_run(self, args: argparse.Namespace, unknown: list[str]) -> None:
        del unknown  # west refuses unknown arguments before do_run (accepts_unknown_args=False)
        returncode = cli.run(args, prog=PROG)
        if returncode != 0:
            # The message, if any, was printed by cli.run; keep provguard's exit code.
            raise CommandError(returncode=returncode)  # type: ignore[no-untyped-call]
