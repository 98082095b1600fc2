"""The hang guard of tests/conftest.py, run on small generated suites in a child pytest: a test
that blocks ends the session with exit 1 and its traceback, each test gets the whole time, and
the guard leaves the session a single-threaded process with no child of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")

BLOCKED = """
import os


def test_passes_first():
    assert True


def test_blocked_on_a_pipe():
    read_end, write_end = os.pipe()
    os.read(read_end, 1)  # nobody writes: a hang, as a pool whose pipes are never closed


def test_never_reached():
    assert True
"""

EACH_WITHIN_ITS_TIME = """
import time


def test_one():
    time.sleep(1.5)


def test_two():
    time.sleep(1.5)


def test_three():
    time.sleep(1.5)
"""

ALONE = """
import os


def test_one_thread():
    assert os.listdir("/proc/self/task") == [str(os.getpid())]


def test_no_child():
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return
    raise AssertionError(f"the session has a child process (reaped: {pid})")
"""


def _run(tmp_path: Path, source: str, timeout: float) -> subprocess.CompletedProcess[str]:
    shutil.copyfile(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_generated.py").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PROVGUARD_TEST_TIMEOUT"] = str(timeout)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-v", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_a_blocked_test_ends_the_session_with_1_and_where_it_blocked(tmp_path: Path) -> None:
    result = _run(tmp_path, BLOCKED, timeout=2)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "test_passes_first PASSED" in result.stdout, output
    # every thread's traceback, pointing at the blocked call
    assert 'test_generated.py", line 11 in test_blocked_on_a_pipe' in result.stderr, output
    assert "test_never_reached" not in result.stdout, output


def test_each_test_gets_the_whole_time(tmp_path: Path) -> None:
    """Three tests of 1.5 s under a 2 s limit: 4.5 s in all, but none over its own limit."""
    result = _run(tmp_path, EACH_WITHIN_ITS_TIME, timeout=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" PASSED") == 3, result.stdout


def test_the_guard_adds_no_thread_and_no_child(tmp_path: Path) -> None:
    """What the pool and the key loader fork is a single-threaded process, as under
    `provguard scan`: the guard is a process, and not the session's child."""
    result = _run(tmp_path, ALONE, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" PASSED") == 2, result.stdout
