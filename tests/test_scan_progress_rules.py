"""The progress line's timing (issue 10: "a progress display on a terminal for scans over a second
long"): nothing before DELAY, then at most one line per INTERVAL, each replacing the last, and the
line cleared at the end only if one was shown. Time is a fake clock, so each edge is exact."""

from __future__ import annotations

import pytest

from provguard.scan import progress
from provguard.scan.progress import Progress


class Terminal:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    # exact binary fractions, far from 0, so that a sum where a difference belongs shows
    monkeypatch.setattr(progress, "DELAY", 1.0)
    monkeypatch.setattr(progress, "INTERVAL", 0.25)
    fake = Clock(100.0)
    monkeypatch.setattr(progress.time, "monotonic", fake)
    return fake


def line(files: str, mib: str, rate: str) -> str:
    return f"\r\x1b[Kscanning: {files} files, {mib} MiB, {rate} MiB/s"


def test_nothing_before_the_delay_then_one_line_per_interval(clock: Clock) -> None:
    terminal = Terminal()
    shown = Progress.for_terminal(quiet=False, stream=terminal)  # type: ignore[arg-type]
    shown.start(4, 4 << 20)
    clock.now = 100.5  # half the delay: nothing, though an interval has passed since the start
    shown.advance(True, 1 << 20)
    assert terminal.writes == []
    clock.now = 101.0  # exactly the delay: the first line; its rate is over 1 s
    shown.advance(True, 1 << 20)
    assert terminal.writes == [line("2/4", "2.0/4.0", "2.0")]
    clock.now = 101.125  # half an interval later: nothing
    shown.advance(True, 1 << 20)
    assert len(terminal.writes) == 1
    clock.now = 101.25  # exactly an interval after the last line: the next one
    shown.advance(True, 1 << 20)
    assert terminal.writes[1:] == [line("4/4", "4.0/4.0", "3.2")]
    shown.finish()
    assert terminal.writes[2:] == ["\r\x1b[K"]
    shown.finish()  # cleared once
    assert terminal.writes[3:] == []


def test_a_scan_shorter_than_the_delay_writes_nothing_at_all(clock: Clock) -> None:
    terminal = Terminal()
    shown = Progress.for_terminal(quiet=False, stream=terminal)  # type: ignore[arg-type]
    shown.start(1, 1)
    clock.now = 100.75
    shown.advance(True, 1)
    shown.finish()  # no line was shown: none is cleared
    assert terminal.writes == []
