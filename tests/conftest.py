"""Suite-wide policy: in CI (env CI set) a test that skips is a failure, never a skip.

A developer without arm-none-eabi-gcc, Mosquitto, cmake, a host C compiler, chromium or
PostgreSQL sees those tests skipped with the reason. CI installs every tool (.ci/install-deps), so
there a skip means a tool went missing and the gate did not run what it claims: the skip is
reported as a failure with its reason. Skipping is the same whether it comes from a skipif
marker, pytest.skip() in a fixture or test, or a module skipped while it is collected.

A test that may skip in CI for a reason that hides no missing tool carries
`@pytest.mark.skip_allowed(reason="...")`; the reason is required.
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest

#: Seconds one test may run before the session is ended with every thread's traceback.
TEST_TIMEOUT = float(os.environ.get("PROVGUARD_TEST_TIMEOUT", "600"))
#: The terminal's stderr as it was before pytest captured it (see pytest_configure).
_TERMINAL: list[int] = []

ALLOWED = "skip_allowed"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ALLOWED}(reason): this test may skip in CI too; the reason says why that skip "
        "hides no missing tool",
    )
    # where a hung test's tracebacks go: the terminal, not the capture of a test that never ends
    capture = config.pluginmanager.getplugin("capturemanager")
    err = getattr(getattr(capture, "_global_capturing", None), "err", None)
    saved = getattr(err, "targetfd_save", None)
    _TERMINAL[:] = [os.dup(saved if isinstance(saved, int) else 2)]


def _reason(longrepr: object) -> str:
    # A skip's longrepr is (path, line, "Skipped: <reason>").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _allowed(item: pytest.Item) -> bool:
    marker = item.get_closest_marker(ALLOWED)
    if marker is None:
        return False
    reason = marker.kwargs.get("reason", marker.args[0] if marker.args else "")
    return bool(str(reason).strip())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail") and not _allowed(item):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in CI (env CI is set), where a missing tool is a failure: "
            f"{_reason(report.longrepr)}"
        )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.nodeid} skipped in CI (env CI is set), where a missing tool is a "
            f"failure: {_reason(report.longrepr)}"
        )
    return report


@pytest.fixture(scope="session")
def _session() -> Generator[tuple[int, Path], None, None]:
    """The process running this session (taken when the session starts, not when this module is
    imported: mutmut imports it once and forks a session per mutant), and where a forked worker
    that escaped into the suite leaves word of it."""
    escaped = Path(tempfile.mkdtemp(prefix="provguard-escaped-forks-"))
    yield os.getpid(), escaped
    shutil.rmtree(escaped, ignore_errors=True)


#: The watchdog: a process of its own that waits on a pipe from the session. "a" (re)arms it for
#: TEST_TIMEOUT seconds, "d" disarms it; when the time runs out it sends SIGUSR1 to the session,
#: then SIGKILL if the session is still there 10 s later; it ends when the pipe closes. It forks
#: once and the first process ends, so that the session has no child of its own for it (tests
#: assert that a scan leaves no child behind).
_WATCHDOG = """
import os, select, signal, sys, time
if os.fork():
    os._exit(0)
session, timeout = int(sys.argv[1]), float(sys.argv[2])
armed = False
while True:
    ready = select.select([0], [], [], timeout if armed else None)[0]
    if ready:
        data = os.read(0, 4096)
        if not data:
            break
        armed = data.endswith(b"a")
        continue
    os.kill(session, signal.SIGUSR1)
    time.sleep(10)
    try:
        os.kill(session, signal.SIGKILL)
    except ProcessLookupError:
        pass
    break
"""


@pytest.fixture(scope="session")
def _watchdog(_session: tuple[int, Path]) -> Generator[int, None, None]:
    """The write end of the watchdog's pipe. A process rather than faulthandler's timer thread:
    a thread in the session would make every fork the pool tests make a fork of a multi-threaded
    process (a DeprecationWarning from Python 3.12 on), which `provguard scan` never is."""
    terminal = _TERMINAL[0] if _TERMINAL else 2
    real_exit = os._exit  # the session's own, before a test patches it

    def hung(signum: int, frame: object) -> None:
        real_exit(1)

    previous = signal.signal(signal.SIGUSR1, hung)
    # every thread's traceback first, in C: it is written even when the Python handler above
    # cannot run (a C call that never returns); then Python's handler ends the session with 1
    faulthandler.register(signal.SIGUSR1, file=terminal, all_threads=True, chain=True)
    read_end, write_end = os.pipe()
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(_session[0]), str(TEST_TIMEOUT)],
        stdin=read_end,
        close_fds=True,
    )
    os.close(read_end)
    watchdog.wait()
    try:
        yield write_end
    finally:
        os.close(write_end)  # the watchdog ends when no process holds this end any more
        faulthandler.unregister(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, previous)


@pytest.fixture(autouse=True)
def _no_test_hangs(_watchdog: int) -> Generator[None, None, None]:
    """A test still running after TEST_TIMEOUT seconds ends the session (exit 1) with every
    thread's traceback on stderr: a hang (a pipe both sides wait on, a worker never told to
    end) fails the run instead of blocking CI until its own limit. A blocked process uses no
    CPU, so mutmut's CPU-time limit never ends it: `tests/mutation/run.py` sets 120 s."""
    os.write(_watchdog, b"a")
    yield
    os.write(_watchdog, b"d")


@pytest.fixture(autouse=True)
def _the_suite_never_ends_itself(
    _session: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """os._exit ends a forked worker; called in the session's own process (a bug, or a mutant,
    that swaps a fork's parent and child, or reads in this process what a child should) it would
    end pytest at once with that code, and 0 would read as a pass: here it fails the test."""
    pid, real_exit = _session[0], os._exit

    def watched_exit(code: int) -> None:
        if os.getpid() == pid:
            raise AssertionError(f"os._exit({code}) called in the test session's own process")
        real_exit(code)

    monkeypatch.setattr(os, "_exit", watched_exit)


@pytest.fixture(autouse=True)
def _forked_code_never_returns_into_the_suite(
    _session: tuple[int, Path],
) -> Generator[None, None, None]:
    """A forked worker (scan's pool, the parallel key loader) must end with os._exit. Should a
    bug (or a mutant) let one return from the code under test into pytest, it would go on with
    the suite beside the real one: it is ended at its first teardown, and the real process's
    test fails (it waited for that worker, so the word is there by its own teardown)."""
    pid, escaped = _session
    yield
    if os.getpid() != pid:
        (escaped / str(os.getpid())).touch()
        os._exit(70)  # EX_SOFTWARE
    if any(escaped.iterdir()):
        names = sorted(p.name for p in escaped.iterdir())
        for leftover in escaped.iterdir():
            leftover.unlink()
        pytest.fail(f"forked worker(s) {', '.join(names)} returned into the test suite")
