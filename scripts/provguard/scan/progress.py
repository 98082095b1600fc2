"""A progress line on a terminal for scans longer than a second: files done/total, bytes, rate.

Written to stderr only when stderr is a terminal and --quiet is not given, so a report on stdout
(JSON, SARIF) and a redirected log never carry it. The line is cleared when the scan ends.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Seconds before the first line (short scans print nothing) and between updates.
DELAY = 1.0
INTERVAL = 0.2


class Progress:
    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.files = self.total_files = 0
        self.bytes = self.total_bytes = 0
        self.began = self.shown = 0.0
        self.visible = False
        self.walking = False  # the totals still grow: the walk is finding files

    @classmethod
    def off(cls) -> Progress:
        return cls(None)

    @classmethod
    def for_terminal(cls, *, quiet: bool, stream: TextIO | None = None) -> Progress:
        """On when `stream` (stderr) is a terminal and not `quiet`."""
        stream = stream if stream is not None else sys.stderr
        return cls(None if quiet or not stream.isatty() else stream)

    def start(self, files: int, size: int) -> None:
        self.total_files, self.total_bytes = files, size
        self.began = self.shown = time.monotonic()

    def found(self, size: int) -> None:
        """One more file to read, found by the walk after `start`."""
        self.walking = True
        self.total_files += 1
        self.total_bytes += size

    def walked(self) -> None:
        """The walk is over: the totals are final."""
        self.walking = False

    def advance(self, file_done: bool, size: int) -> None:
        self.files += int(file_done)
        self.bytes += size
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self.began < DELAY or now - self.shown < INTERVAL:
            return
        self.shown = now
        self.stream.write("\r\x1b[K" + self.line(now - self.began))
        self.stream.flush()
        self.visible = True

    def line(self, elapsed: float) -> str:
        rate = self.bytes / elapsed / (1 << 20) if elapsed > 0 else 0.0
        more = "+" if self.walking else ""  # "3/40+ files": forty found so far
        return (
            f"scanning: {self.files}/{self.total_files}{more} files, "
            f"{self.bytes / (1 << 20):.1f}/{self.total_bytes / (1 << 20):.1f}{more} MiB, "
            f"{rate:.1f} MiB/s"
        )

    def finish(self) -> None:
        if self.stream is not None and self.visible:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.visible = False
