"""One exception root for everything provguard refuses, carrying where it happened.

Library code raises these; only the CLI turns them into a one-line message and an exit code.
Messages never carry key material: keys are named by file and SHA-256 fingerprint.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2


class ProvguardError(Exception):
    """An input or condition provguard cannot work with (exit 2 unless a subclass says so)."""

    exit_code = EXIT_UNUSABLE

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.message}"


class InputError(ProvguardError):
    """A file that cannot be read or parsed at all."""


class UsageError(ProvguardError):
    """Options that contradict each other or are missing."""


class ProblemsFoundError(ProvguardError):
    """Work refused because the inputs have problems (exit 1); the problems were reported."""

    exit_code = EXIT_PROBLEMS
