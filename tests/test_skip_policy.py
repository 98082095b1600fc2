"""The suite-wide skip policy of tests/conftest.py, run on a small generated suite in a child
pytest: with CI set every skip that is not explicitly allowed fails; without CI it stays a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

SUITE = """
import shutil

import pytest


def test_passes():
    assert True


def test_skips_in_body():
    pytest.skip("needs tool-in-body")


@pytest.mark.skipif(shutil.which("no-such-tool-provguard") is None, reason="needs no-such-tool")
def test_skipif_marker():
    raise AssertionError("never runs: the tool does not exist")


@pytest.fixture
def tool():
    pytest.skip("fixture found no tool")


def test_skips_in_fixture(tool):
    raise AssertionError("never runs")


@pytest.mark.skip_allowed(reason="the platform has no such feature, nothing to install")
def test_allowed_skip():
    pytest.skip("not on this platform")


@pytest.mark.xfail(reason="a known bug")
def test_expected_failure():
    raise AssertionError("the bug")
"""

MODULE_SKIP = """
import pytest

pytest.skip("module needs tool-at-import", allow_module_level=True)


def test_never_collected():
    raise AssertionError("never runs")
"""


def _run(tmp_path: Path, source: str, *, ci: str | None) -> tuple[dict[str, str], str, int]:
    """Run `source` as the only test file beside a copy of the conftest; outcome per test."""
    shutil.copyfile(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_generated.py").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         f"--junitxml={report}", "-rA", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    outcomes: dict[str, str] = {}
    # The child pytest wrote this file a moment ago: nothing untrusted to guard against.
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name", "")] = kinds[0] if kinds else "passed"
    return outcomes, result.stdout + result.stderr, result.returncode


def test_without_ci_missing_tools_skip(tmp_path: Path) -> None:
    outcomes, output, code = _run(tmp_path, SUITE, ci=None)
    assert outcomes == {
        "test_passes": "passed",
        "test_skips_in_body": "skipped",
        "test_skipif_marker": "skipped",
        "test_skips_in_fixture": "skipped",
        "test_allowed_skip": "skipped",
        "test_expected_failure": "skipped",  # junit writes an xfail as skipped
    }, output
    assert code == 0, output


@pytest.mark.parametrize("value", ["1", "true"])
def test_in_ci_every_skip_without_permission_fails(tmp_path: Path, value: str) -> None:
    outcomes, output, code = _run(tmp_path, SUITE, ci=value)
    assert outcomes == {
        "test_passes": "passed",
        "test_skips_in_body": "failure",
        "test_skipif_marker": "error",  # skipif is decided during setup
        "test_skips_in_fixture": "error",
        "test_allowed_skip": "skipped",
        "test_expected_failure": "skipped",
    }, output
    assert code == 1, output
    for reason in ("needs tool-in-body", "needs no-such-tool", "fixture found no tool"):
        assert f"where a missing tool is a failure: {reason}" in output


def test_a_module_skipped_at_import_skips_without_ci_and_fails_in_ci(tmp_path: Path) -> None:
    outcomes, output, code = _run(tmp_path, MODULE_SKIP, ci=None)
    assert (set(outcomes.values()), code) == ({"skipped"}, 5), output  # 5: no test ran
    outcomes, output, code = _run(tmp_path, MODULE_SKIP, ci="1")
    assert (set(outcomes.values()), code) == ({"error"}, 2), output  # 2: collection interrupted
    assert "where a missing tool is a failure: module needs tool-at-import" in output


def test_an_allowed_skip_needs_a_reason(tmp_path: Path) -> None:
    source = (
        "import pytest\n\n\n@pytest.mark.skip_allowed()\ndef test_it():\n"
        '    pytest.skip("needs a tool")\n'
    )
    outcomes, output, code = _run(tmp_path, source, ci="1")
    assert (outcomes, code) == ({"test_it": "failure"}, 1), output
    assert "where a missing tool is a failure: needs a tool" in output
