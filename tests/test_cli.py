"""The command line as users meet it: help, exit codes, one-line errors, reports, dev-pki."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import provguard as provguard_package
from provguard import cli
from tests import factories as f


def provguard(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provguard", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=60,
    )


#: The commands the README documents, written out here: iterating COMMAND_MODULES alone would
#: pass with a command dropped from the registry (or with an empty one).
DOCUMENTED_COMMANDS = {
    "check",
    "render",
    "dev-pki",
    "at",
    "provision",
    "probe",
    "scan",
    "modem-sim",
    "enroll",
    "ledger",
}


def test_help_lists_every_registered_command() -> None:
    result = provguard("--help")
    assert result.returncode == 0
    listed = set(re.findall(r"^\s{4}([a-z][a-z-]*)\s", result.stdout, re.MULTILINE))
    assert listed >= DOCUMENTED_COMMANDS, result.stdout
    assert listed == {name.replace("_", "-") for name in cli.COMMAND_MODULES}, result.stdout


@pytest.mark.parametrize("name", [n.replace("_", "-") for n in cli.COMMAND_MODULES])
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([name, "--help"])
    assert exited.value.code == 0
    assert "usage: provguard" in capsys.readouterr().out


def test_no_command_is_a_usage_error() -> None:
    result = provguard()
    assert result.returncode == 2
    assert "usage:" in result.stderr


@pytest.fixture
def dev_pki(tmp_path: Path) -> Path:
    assert cli.main(["dev-pki", str(tmp_path / "pki"), "--broker-host", "broker.test"]) == 0
    return tmp_path / "pki"


def check_args(pki: Path, *extra: str) -> list[str]:
    return [
        "check",
        "--ca", str(pki / "ca.pem"),
        "--cert", str(pki / "client.pem"),
        "--key", str(pki / "client.key"),
        *extra,
    ]  # fmt: skip


def test_dev_pki_files_are_private_and_pass_check(dev_pki: Path) -> None:
    names = sorted(p.name for p in dev_pki.iterdir())
    assert names == ["ca.key", "ca.pem", "client.key", "client.pem", "server.key", "server.pem"]
    for path in dev_pki.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    server = x509.load_pem_x509_certificate((dev_pki / "server.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["broker.test"]
    result = provguard(*check_args(dev_pki))
    assert result.returncode == 0, result.stdout
    assert "OK: 0 errors, 0 warnings" in result.stdout


def test_dev_pki_never_overwrites(dev_pki: Path) -> None:
    before = {p.name: p.read_bytes() for p in dev_pki.iterdir()}
    result = provguard("dev-pki", str(dev_pki))
    assert result.returncode == 2
    assert "not overwriting" in result.stderr
    assert "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in dev_pki.iterdir()} == before


def test_check_exit_1_with_a_readable_report_and_no_key_material(dev_pki: Path) -> None:
    stranger = f.ec_key()
    (dev_pki / "client.key").unlink()
    (dev_pki / "client.key").write_bytes(f.key_pem(stranger))
    result = provguard(*check_args(dev_pki))
    assert result.returncode == 1
    assert "[key-mismatch]" in result.stdout
    assert result.stdout.rstrip().endswith("FAILED: 1 error, 0 warnings")
    f.assert_no_key_material(result.stdout + result.stderr, stranger)


def test_check_json_format(dev_pki: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(check_args(dev_pki, "--sec-tag", "16842753", "--format", "json")) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    problem = document["problems"][0]
    assert set(problem) == {"severity", "code", "file", "line", "message"}
    assert problem["code"] == "sec-tag-nrf-cloud"
    assert problem["severity"] == "error"


def test_allow_nrf_cloud_tag(dev_pki: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Allowed is not silent: the user is still told what writing nRF Cloud's tag replaces.
    assert cli.main(check_args(dev_pki, "--sec-tag", "16842753", "--allow-nrf-cloud-tag")) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, out
    assert "16842753" in warnings[0]
    assert "nRF Cloud credentials" in warnings[0]
    assert warnings[0].endswith("[sec-tag-nrf-cloud]")
    assert out.rstrip().endswith("OK: 0 errors, 1 warning")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--ca", "missing.pem"], "missing.pem: no such file"),
        (["check"], "no credentials given"),
        (["check", "--from", "missing.json"], "missing.json: no such file"),
    ],
)
def test_unusable_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = provguard(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_bad_sec_tag_value_is_a_usage_error(dev_pki: Path) -> None:
    result = provguard(*check_args(dev_pki, "--sec-tag", "twenty"))
    assert result.returncode == 2
    assert "not a whole number" in result.stderr


def test_check_from_json_export(tmp_path: Path, dev_pki: Path) -> None:
    bundle = {
        "caCert": (dev_pki / "ca.pem").read_text(),
        "clientCert": (dev_pki / "client.pem").read_text(),
        "privateKey": (dev_pki / "client.key").read_text(),
        "secTag": 16842753,
    }
    export = tmp_path / "export.json"
    export.write_text(json.dumps(bundle))
    result = provguard("check", "--from", str(export))
    assert result.returncode == 1  # the JSON names nRF Cloud's tag
    assert "sec-tag-nrf-cloud" in result.stdout
    key = serialization.load_pem_private_key((dev_pki / "client.key").read_bytes(), None)
    f.assert_no_key_material(result.stdout + result.stderr, key)  # type: ignore[arg-type]


def test_a_run_imports_only_its_own_command() -> None:
    program = (
        "import sys\n"
        "from provguard import cli\n"
        "try:\n"
        "    cli.main(['dev-pki', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('provguard.commands.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    loaded = result.stdout.strip().splitlines()[-1]
    assert "provguard.commands.dev_pki" in loaded
    assert "provguard.commands.scan" not in loaded
    assert "provguard.commands.render" not in loaded


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--broker-host", ""], "--broker-host is empty"),
        (["--device-id", ""], "--device-id is empty"),
        (
            ["--device-id", "d" * 65],
            "is 65 characters: a certificate's common name holds at most 64",
        ),
        (["--device-id", "gerät-1"], "use printable ASCII only"),
        (["--broker-host", "bad..host"], "not a valid --broker-host"),
        (["--broker-host", "h" * 64 + ".example"], "not a valid --broker-host"),
    ],
    ids=[
        "empty-host",
        "empty-device",
        "long-device",
        "non-ascii-device",
        "empty-label",
        "label-64",
    ],
)
def test_dev_pki_refuses_unusable_names(tmp_path: Path, options: list[str], message: str) -> None:
    result = provguard("dev-pki", str(tmp_path / "pki"), *options)
    assert result.returncode == 2
    assert result.stderr.startswith("provguard: error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pki").exists()


def test_dev_pki_accepts_64_character_names_and_idna_hosts(tmp_path: Path) -> None:
    device = "d" * 64  # exactly the X.509 upper bound of a common name
    host = "b\u00fccher." + "x" * 60 + ".example"  # a long IDNA name: 76 characters
    assert (
        cli.main(["dev-pki", str(tmp_path / "pki"), "--broker-host", host, "--device-id", device])
        == 0
    )
    server = x509.load_pem_x509_certificate((tmp_path / "pki" / "server.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["xn--bcher-kva." + "x" * 60 + ".example"]
    common = server.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert common == "provguard development broker"  # the name is over 64 characters
    client = x509.load_pem_x509_certificate((tmp_path / "pki" / "client.pem").read_bytes())
    assert client.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == device


@pytest.mark.skip_allowed(reason="tomllib is standard from Python 3.11: nothing to install")
def test_the_version_is_written_in_one_place() -> None:
    tomllib = pytest.importorskip("tomllib")
    project_file = Path(__file__).parents[1] / "pyproject.toml"
    project = tomllib.loads(project_file.read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "provguard.__version__"}
    # An SPDX expression (PEP 639) needs setuptools 77 or later to build.
    assert project["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in project["build-system"]["requires"]
    result = provguard("--version")
    assert result.stdout.strip() == f"provguard {provguard_package.__version__}"
    assert importlib.metadata.version("provguard") == provguard_package.__version__


def test_check_reports_are_identical_across_processes(dev_pki: Path) -> None:
    # Several problems in several files: their order must not depend on hashing.
    (dev_pki / "client.key").unlink()
    (dev_pki / "client.key").write_bytes(f.key_pem(f.ec_key()))
    (dev_pki / "ca.pem").write_bytes((dev_pki / "ca.pem").read_bytes().replace(b"\n", b"\r\n"))
    outputs = set()
    for seed in ("0", "1", "2", "3"):
        result = subprocess.run(
            [sys.executable, "-m", "provguard", *check_args(dev_pki, "--sec-tag", "16842753"),
             "--format", "json"],
            capture_output=True, text=True, check=False, timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        assert result.returncode == 1
        outputs.add(result.stdout)
    assert len(outputs) == 1
    codes = [p["code"] for p in json.loads(outputs.pop())["problems"]]
    assert codes == ["sec-tag-nrf-cloud", "crlf-line-endings", "key-mismatch"]


def test_a_reader_that_stops_early_is_no_traceback_and_never_exit_0(tmp_path: Path) -> None:
    """`provguard scan ... | head -1`: the report is cut, so the run must not look successful."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(50):
        (tree / f"file-{i:04d}.bin").write_bytes(b"\x00" * 16)
    # `true` has exited long before the scan writes its report (Python's start alone takes longer).
    script = (
        f"{sys.executable} -m provguard scan --jobs 1 --format json {tree} | true;"
        " echo ${PIPESTATUS[0]} >&2"
    )
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == str(cli.EXIT_BROKEN_PIPE), result.stderr
    assert "Traceback" not in result.stderr
    assert "Broken pipe" not in result.stderr
