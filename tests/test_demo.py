"""The README's first command end to end: the development image flagged, the release clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
def test_demo_flags_the_development_image_and_passes_the_release(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["bash", str(ROOT / "demo" / "run.sh"), str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    dev_report = result.stdout.split("== 6.")[1].split("== 7.")[0]
    release_report = result.stdout.split("== 7.")[1].split("== Result")[0]
    assert "symbol private_key" in dev_report
    assert "private-key" in dev_report
    assert "private-key" not in release_report.replace("fail on private-key", "")
    assert "The gate works." in result.stdout
    assert "broker probe: accepted" in result.stdout
    # A new user's next step: provguard is in .venv, not on PATH; the last lines say how.
    last = result.stdout.rstrip().splitlines()[-3:]
    assert last[0].endswith("not on your PATH. To run it yourself:")
    assert last[1].strip().startswith(f". {ROOT}/.venv/bin/activate")
    assert last[2].strip().startswith(f"pipx install {ROOT}")
    # The demo's own files: the release image holds no credential byte at all.
    key_pem = (tmp_path / "demo" / "pki" / "client.key").read_bytes()
    body = b"".join(key_pem.splitlines()[1:-1])
    assert body[:32] in (tmp_path / "demo" / "dev" / "zephyr.bin").read_bytes()
    assert body[:32] not in (tmp_path / "demo" / "release" / "zephyr.bin").read_bytes()
