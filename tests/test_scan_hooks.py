"""The pre-commit hooks of .pre-commit-hooks.yaml: valid definitions whose entries do the job."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import factories as f
from tests import images

ROOT = Path(__file__).parents[1]
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
BY_ID = {hook["id"]: hook for hook in HOOKS}


def run_entry(hook: dict, *files: Path) -> subprocess.CompletedProcess[str]:
    """Run a hook as pre-commit does: its entry, then the staged file names."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        [*shlex.split(hook["entry"]), *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_hook_definitions_are_valid() -> None:
    assert isinstance(HOOKS, list)
    assert set(BY_ID) == {"provguard-no-private-keys", "provguard-no-certificates-h"}
    for hook in HOOKS:
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["language"] == "python"  # installs this repository, so `provguard` exists
        assert shlex.split(hook["entry"])[:2] == ["provguard", "scan"]
        if "files" in hook:
            re.compile(hook["files"])


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("certificates.h", True),
        ("app/src/certificates.h", True),
        ("app/src/certificates.hpp", False),
        ("app/src/my_certificates.h", False),
    ],
)
def test_certificates_h_hook_selects_the_generated_header(path: str, matches: bool) -> None:
    assert bool(re.search(BY_ID["provguard-no-certificates-h"]["files"], path)) is matches


def test_private_key_hook_refuses_keys_and_passes_clean_files(tmp_path: Path) -> None:
    hook = BY_ID["provguard-no-private-keys"]
    clean = tmp_path / "main.c"
    clean.write_text('static const char *label = "-----BEGIN EC PRIVATE KEY-----";\n')
    ca = tmp_path / "ca.pem"
    ca.write_bytes(f.cert_pem(f.make_cert("root", f.ec_key(), ca=True)))
    result = run_entry(hook, clean, ca)
    assert result.returncode == 0, result.stdout + result.stderr
    key_file = images.write_private(tmp_path / "device.der", f.key_der(f.rsa_key()))
    result = run_entry(hook, clean, key_file)
    assert result.returncode == 1
    assert "device.der: FAIL: private-key PKCS#8 DER" in result.stdout


def test_certificates_h_hook_refuses_a_header_with_credentials(tmp_path: Path) -> None:
    hook = BY_ID["provguard-no-certificates-h"]
    header = tmp_path / "certificates.h"
    pem = f.cert_pem(f.make_cert("root", f.ec_key(), ca=True)).decode()
    header.write_text(
        "#define CA_CERTIFICATE \\\n"
        + "".join(f'\t"{line}\\n" \\\n' for line in pem.splitlines())
        + "\n"
    )
    result = run_entry(hook, header)
    assert result.returncode == 1
    assert ": FAIL: certificate PEM, " in result.stdout
    header.write_text(
        '/* credentials are provisioned at the factory */\n#define CA_CERTIFICATE ""\n'
    )
    assert run_entry(hook, header).returncode == 0


def test_certificates_h_hook_refuses_what_provguard_render_writes(tmp_path: Path) -> None:
    pki = f.device_pki()
    files = {
        "ca": f.cert_pem(pki.ca_cert),
        "cert": f.cert_pem(pki.device_cert),
        "key": f.key_pem(pki.device_key),
    }
    args = []
    for name, data in files.items():
        path = images.write_private(tmp_path / f"{name}.pem", data)
        args += [f"--{name}", str(path)]
    header = tmp_path / "app" / "certificates.h"
    header.parent.mkdir()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    rendered = subprocess.run(
        ["provguard", "render", *args, "--sec-tag", "24", "-o", str(header)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    result = run_entry(BY_ID["provguard-no-certificates-h"], header)
    assert result.returncode == 1
    assert ": FAIL: private-key PEM PKCS#8" in result.stdout
    assert result.stdout.count(": FAIL: certificate PEM, ") == 2
    assert run_entry(BY_ID["provguard-no-private-keys"], header).returncode == 1
