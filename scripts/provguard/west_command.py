"""`west provguard`: the provguard command line as a west extension command.

West loads this file by path (scripts/west-commands.yml), not as part of the package, so it needs
provguard installed in west's own Python (`pip install -e .`). When it is not, every
`west provguard ...` says so in one line with the command that fixes it; nothing is guessed from
the source tree, because the build's CMake integration runs the `provguard` executable too.

Output goes through west's logging (`inf`, `wrn`, `err`, `die`): `west -q` silences what is not
an error, and west's colour setting applies. Lines a command writes to standard output go through
`inf`; on standard error, `... error: ...` lines through `err` and `... warning: ...` / notes
through `wrn`; the rest stays on standard error unless west is quiet.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from west.commands import CommandError, Verbosity, WestCommand

PROG = "west provguard"
#: The repository this file belongs to: what `pip install -e` needs.
REPOSITORY = Path(__file__).resolve().parents[2]

DESCRIPTION = """\
Validate, render, provision and leak-scan nRF91 TLS credentials.

Same subcommands, options and exit codes as the `provguard` command:
0 fine, 1 the check found problems, 2 unusable input or usage."""


def _load_cli() -> tuple[ModuleType | None, str | None]:
    """provguard's CLI with every command importable, or why not (the missing module)."""
    try:
        cli = importlib.import_module("provguard.cli")
        for name in cli.COMMAND_MODULES:
            importlib.import_module(f"provguard.commands.{name}")
    except ImportError as exc:
        return None, exc.name or str(exc)
    return cli, None


def install_hint(missing: str) -> str:
    return (
        f"install provguard into west's Python: {sys.executable} -m pip install -e {REPOSITORY} "
        f"(module {missing!r} is missing)"
    )


class _Lines:
    """A text stream that hands every complete line to `emit` (the rest when flushed)."""

    def __init__(self, emit: Callable[[str], None], real: TextIO) -> None:
        self._emit = emit
        self._real = real
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._emit(line)

    def isatty(self) -> bool:
        return False  # west decides about colour; commands print plain text

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self) -> str:
        return self._real.encoding


class ProvguardCommand(WestCommand):
    """Runs `provguard.cli` with the subcommands registered there."""

    def __init__(self) -> None:
        super().__init__(
            "provguard",
            "validate, render, provision and leak-scan nRF91 TLS credentials",
            DESCRIPTION,
            requires_workspace=False,
        )
        self._cli, self._missing = _load_cli()

    def do_add_parser(self, parser_adder: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parser_adder.add_parser(
            self.name,
            help=self.help,
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if self._cli is None:
            # Accept anything: do_run says how to install provguard, whatever was asked.
            parser.add_argument("provguard_args", nargs=argparse.REMAINDER)
            return parser
        version = importlib.import_module("provguard").__version__
        parser.add_argument("--version", action="version", version=f"{PROG} {version}")
        # Not "command": west keeps its own command name in args.command.
        subparsers = parser.add_subparsers(dest="provguard_command", metavar="COMMAND")
        self._cli.add_commands(subparsers)
        return parser

    def do_run(self, args: argparse.Namespace, unknown: list[str]) -> None:
        del unknown  # west refuses unknown arguments before do_run (accepts_unknown_args=False)
        if self._cli is None:
            self.die(install_hint(self._missing or "provguard"), exit_code=2)
        with self._through_west_logging():
            returncode = self._cli.run(args, prog=PROG)
        if returncode != 0:
            # The message, if any, was logged by then; keep provguard's exit code.
            raise CommandError(returncode=returncode)  # type: ignore[no-untyped-call]

    @contextmanager
    def _through_west_logging(self) -> Iterator[None]:
        real_out, real_err = sys.stdout, sys.stderr

        def through(log: Callable[[str], None]) -> Callable[[str], None]:
            def call(line: str) -> None:
                # West's logging prints to sys.stdout/sys.stderr: the real ones meanwhile.
                routed = sys.stdout, sys.stderr
                sys.stdout, sys.stderr = real_out, real_err
                try:
                    log(line)
                finally:
                    sys.stdout, sys.stderr = routed

            return call

        out = _Lines(through(self._stdout_line), real_out)
        err = _Lines(through(self._stderr_line), real_err)
        sys.stdout, sys.stderr = out, err
        try:
            yield
        finally:
            out.flush()
            err.flush()
            sys.stdout, sys.stderr = real_out, real_err

    def _stdout_line(self, line: str) -> None:
        self.inf(line)

    def _stderr_line(self, line: str) -> None:
        for prefix in (f"{PROG}: error: ", "error: "):
            if line.startswith(prefix):
                self.err(line.removeprefix(prefix))
                return
        for prefix in (f"{PROG}: warning: ", f"{PROG}: note: ", "warning: "):
            if line.startswith(prefix):
                self.wrn(line.removeprefix(prefix))
                return
        if ": error: " in line:
            self.err(line)
        elif ": warning: " in line:
            self.wrn(line)
        elif self.verbosity >= Verbosity.INF:
            print(line, file=sys.stderr)
