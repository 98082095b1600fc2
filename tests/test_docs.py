"""The README documents every problem code `check` can report, and nothing it cannot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from provguard.credentials import checks

ROOT = Path(__file__).parents[1]


def emitted_codes() -> set[str]:
    source = Path(checks.__file__).read_text()
    raw = re.findall(r'out\.(?:error|warning|info)\(\s*(f?"[^"]+")', source)
    codes: set[str] = set()
    for literal in raw:
        text = literal.removeprefix("f").strip('"')
        if "{what}" in text:
            codes |= {text.replace("{what}", what) for what in ("ca", "cert")}
        else:
            codes.add(text)
    return codes


def documented_codes() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| code | severity | what it means |")[1].split("\n\n")[0]
    return {
        code
        for row in table.splitlines()[2:]
        for code in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])
    }


def test_every_check_code_is_documented() -> None:
    emitted = emitted_codes()
    assert len(emitted) > 30
    assert emitted == documented_codes()


def _normalised(text: str) -> list[str]:
    """Output lines without what differs between runs: fingerprints, dates, sizes."""
    text = re.sub(r"SHA256:[0-9a-f]+…?", "SHA256:<fingerprint>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "<date>", text)
    text = re.sub(r"\b\d{3} bytes\b", "<size> bytes", text)
    return text.strip().splitlines()


def test_the_check_example_of_the_readme_is_what_check_prints(tmp_path: Path) -> None:
    """The README's commands make the example's files, and check prints what the README shows."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### `provguard check`", 1)[1].split("\n### ", 1)[0]
    make_damaged = section.split("```sh\n", 1)[1].split("```", 1)[0]
    example = section.split("```console\n", 1)[1].split("```", 1)[0]
    command, expected = example.split("\n", 1)
    expected = expected.split("$ echo $?")[0]
    assert command.startswith("$ provguard check ")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["provguard", "dev-pki", "certs"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["bash", "-euc", make_damaged], cwd=tmp_path, env=env, check=True)
    result = subprocess.run(
        ["bash", "-c", command.removeprefix("$ ")],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert _normalised(result.stdout) == _normalised(expected)
