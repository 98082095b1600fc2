"""How scan/elf.py names what stopped it reading an ELF: the exception's type and the first line
of its message, cut at 80 characters, so a report line stays one line. Found by
`make mutation MODULE=scan-readers`."""

from __future__ import annotations

import pytest
from elftools.common.exceptions import ELFError, ELFParseError

from provguard.scan.elf import _reason


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (ELFError("Magic number does not match"), "ELFError: Magic number does not match"),
        (ELFParseError("first line\nsecond line"), "ELFParseError: first line"),
        (ValueError("x" * 81), "ValueError: " + "x" * 80),
        (ValueError("y" * 80), "ValueError: " + "y" * 80),
        (EOFError(), "EOFError"),
        (ValueError("\nafter an empty first line"), "ValueError"),
    ],
)
def test_a_reading_error_is_named_in_one_short_line(exc: BaseException, said: str) -> None:
    assert _reason(exc) == said
