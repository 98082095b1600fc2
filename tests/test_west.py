"""The west manifest and the `west provguard` extension command, without the SDK.

The manifest is loaded with west's own API; the extension command runs in a throwaway workspace
made with `west init -l` and the `-nrf` project filter (west hides a manifest's extension
commands while an import is not cloned, see /work/shared/ncs-facts.md).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from west.manifest import ImportFlag, Manifest

from provguard import cli

ROOT = Path(__file__).resolve().parent.parent
WEST = [sys.executable, "-m", "west"]


def command_names() -> list[str]:
    return [
        importlib.import_module(f"provguard.commands.{module}").NAME
        for module in cli.COMMAND_MODULES
    ]


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    text = (ROOT / "west.yml").read_text(encoding="utf-8")
    return Manifest.from_data(text, import_flags=ImportFlag.IGNORE_PROJECTS)


def test_manifest_pins_ncs_to_a_release_tag(manifest: Manifest) -> None:
    nrf = next(p for p in manifest.projects[1:] if p.name == "nrf")
    assert nrf.url == "https://github.com/nrfconnect/sdk-nrf"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", nrf.revision), nrf.revision
    assert nrf.revision == "v3.4.1"
    assert nrf.path == "nrf"


def test_manifest_imports_ncs_and_declares_the_extension_commands(manifest: Manifest) -> None:
    self_project = manifest.projects[0]
    assert self_project.west_commands == ["scripts/west-commands.yml"]
    assert (ROOT / "scripts" / "west-commands.yml").is_file()
    # Manifest objects do not keep `import:`; the schema-valid YAML above does.
    text = (ROOT / "west.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+import: true$", text, re.MULTILINE)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A west workspace whose manifest repository is a copy of this one's west files."""
    top = tmp_path_factory.mktemp("west-ws")
    app = top / "app"
    (app / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "west.yml", app / "west.yml")
    shutil.copy2(ROOT / "scripts" / "west-commands.yml", app / "scripts" / "west-commands.yml")
    shutil.copytree(
        ROOT / "scripts" / "provguard",
        app / "scripts" / "provguard",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    run_west(top, "init", "-l", "app")
    run_west(top, "config", "manifest.project-filter", "--", "-nrf")
    return top


def run_west(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ZEPHYR_BASE"}
    result = subprocess.run(
        [*WEST, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"west {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def test_west_provguard_help_lists_every_subcommand(workspace: Path) -> None:
    result = run_west(workspace, "provguard", "--help")
    assert result.stdout.startswith("usage: west provguard")
    names = command_names()
    assert names, "provguard registers no subcommand"
    for name in names:
        assert re.search(rf"^\s+{re.escape(name)}\b", result.stdout, re.MULTILINE), name


def test_west_lists_provguard_as_an_extension_command(workspace: Path) -> None:
    result = run_west(workspace, "help")
    assert re.search(r"^\s+provguard:\s+validate, render", result.stdout, re.MULTILINE)


@pytest.mark.parametrize("name", command_names())
def test_each_subcommand_has_the_cli_help(workspace: Path, name: str) -> None:
    via_west = run_west(workspace, "provguard", name, "--help").stdout
    via_cli = subprocess.run(
        [sys.executable, "-m", "provguard", name, "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Same parser: the same options and text; only the program name (and so the wrapping of the
    # usage lines) differs.
    assert via_west.startswith(f"usage: west provguard {name}")
    assert options(via_west) == options(via_cli)
    assert via_west.split("\n\n", 1)[1] == via_cli.split("\n\n", 1)[1]


def options(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", help_text))


def test_exit_codes_are_provguard_s(workspace: Path) -> None:
    no_command = run_west(workspace, "provguard", check=False)
    assert no_command.returncode == 2
    assert "usage: west provguard" in no_command.stderr

    missing = workspace / "missing-ca.pem"
    bad_input = run_west(workspace, "provguard", "check", "--ca", str(missing), check=False)
    assert bad_input.returncode == 2
    assert "west provguard: error:" in bad_input.stderr
    assert "missing-ca.pem" in bad_input.stderr
    assert "Traceback" not in bad_input.stderr
