"""The west manifest and the `west provguard` extension command, without the SDK.

The manifest is loaded with west's own API; the extension command runs in a throwaway workspace
made with `west init -l` and the `-nrf` project filter: without the SDK cloned, the `import:` of
`nrf` cannot be resolved, and west then loads no extension command at all (west v1.5.0,
`src/west/app/main.py`: `WestApp.load_manifest()` keeps the `ManifestImportFailed`, and
`handle_builtin_manifest_load_err()` notes that no extension command can run then, "because we
learn about them from the manifest itself"). Filtering the project out lets the manifest load.
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

import provguard
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


def run_west(
    cwd: Path, *args: str, check: bool = True, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ZEPHYR_BASE"} | extra_env
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
    # Through west's err(): its "ERROR: " prefix, provguard's one-line message.
    assert bad_input.stderr.strip() == f"ERROR: {missing}: no such file"


def test_west_provguard_version(workspace: Path) -> None:
    result = run_west(workspace, "provguard", "--version")
    assert result.stdout.strip() == f"west provguard {provguard.__version__}"


BLOCKER = """\
import sys


class _Blocked:
    # Makes these modules unimportable, as in a Python where provguard is not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Blocked())
"""


@pytest.mark.parametrize("blocked", ["provguard", "cryptography"])
def test_without_provguard_in_west_s_python_one_line_says_how_to_install(
    workspace: Path, tmp_path: Path, blocked: str
) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(BLOCKED=repr({blocked})))
    for args in (("provguard", "check", "--ca", "ca.pem"), ("provguard",)):
        result = run_west(workspace, *args, check=False, PYTHONPATH=str(tmp_path))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("FATAL ERROR: install provguard into west's Python: ")
        assert f"{sys.executable} -m pip install -e " in lines[0]
        assert f"(module {blocked!r} is missing)" in lines[0]


def test_output_goes_through_west_logging(workspace: Path, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    shown = run_west(workspace, "provguard", "dev-pki", str(pki))
    assert f"{pki / 'ca.pem'}\n" in shown.stdout
    quiet = run_west(workspace, "-q", "provguard", "dev-pki", str(tmp_path / "quiet"))
    assert quiet.stdout == ""  # inf() is silenced by west -q
    assert (tmp_path / "quiet" / "ca.pem").is_file()
    crlf = tmp_path / "ca-crlf.pem"
    crlf.write_bytes((pki / "ca.pem").read_bytes().replace(b"\n", b"\r\n"))
    out = tmp_path / "build" / "certificates.h"
    render = ["provguard", "render", "--ca", str(crlf), "-o", str(out)]
    warned = run_west(workspace, *render)
    assert f"WARNING: {crlf}:1: warning: CRLF line endings" in warned.stderr
    assert f"wrote {out} (sec_tag 24)" in warned.stderr
    out.unlink()
    silent = run_west(workspace, "-qq", *render)  # errors only
    assert silent.stderr == ""
    assert out.is_file()
