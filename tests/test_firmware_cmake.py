"""cmake/provguard.cmake on the host: render at configure time, scan after every build.

tests/firmware/cmake-host is a plain CMake project that uses the module exactly as the
application's CMakeLists.txt does, with a host executable for the Zephyr image. Most tests use a
fake `provguard` that records its arguments; the last ones run the real command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provguard import cli
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "firmware" / "cmake-host"
SYSBUILD_PROJECT = ROOT / "tests" / "firmware" / "sysbuild-host"

# In CI (CI set) a missing tool is a failure, never a skip.
pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("cmake", "ninja", "objcopy"))
    and not os.environ.get("CI"),
    reason="needs cmake, ninja and objcopy",
)

FAKE_PROVGUARD = """\
#!{python}
# Fake provguard for the CMake tests: records its arguments, then behaves as told by env vars.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_PROVGUARD_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[0] == "render":
    code = int(os.environ.get("FAKE_RENDER_EXIT", "0"))
    if code:
        print("ca.pem: error: certificate expired 3 days ago", file=sys.stderr)
        sys.exit(code)
    out = args[args.index("-o") + 1]
    tag = args[args.index("--sec-tag") + 1]
    with open(out, "w") as header:
        header.write("#define PROVGUARD_CERTIFICATES_SEC_TAG %s\\n" % tag)
        header.write('#define CA_CERTIFICATE "fake ca\\\\n"\\n')
        if "--cert" in args or "--from" in args:
            header.write('#define CLIENT_CERTIFICATE "fake cert\\\\n"\\n')
            header.write('#define PRIVATE_KEY "fake key placeholder\\\\n"\\n')
    sys.exit(0)
if args[0] == "scan":
    code = int(os.environ.get("FAKE_SCAN_EXIT", "0"))
    print("scan: %s" % ("private key found" if code == 1 else "clean"))
    sys.exit(code)
sys.exit(2)
"""


class Host:
    """One build directory of the host project, driven with a given provguard command."""

    def __init__(self, tmp_path: Path, command: str, project: Path = PROJECT) -> None:
        self.build = tmp_path / "build"
        self.log = tmp_path / "provguard.log"
        self.command = command
        self.project = project
        self.env = dict(os.environ, FAKE_PROVGUARD_LOG=str(self.log))

    def configure(self, *defines: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "cmake",
                "-S",
                str(self.project),
                "-B",
                str(self.build),
                "-G",
                "Ninja",
                f"-DPROVGUARD_COMMAND={self.command}",
                *defines,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def build_all(self, *, explain: bool = False) -> subprocess.CompletedProcess[str]:
        """Build; with explain, Ninja says why it runs each step (ninja -d explain)."""
        extra = ["--", "-d", "explain"] if explain else []
        return subprocess.run(
            ["cmake", "--build", str(self.build), *extra],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def calls(self, verb: str) -> list[list[str]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [args for args in map(json.loads, lines) if args[0] == verb]

    def run_app(self) -> str:
        return subprocess.run(
            [str(self.build / "hostapp")], capture_output=True, text=True, check=True
        ).stdout


@pytest.fixture
def fake(tmp_path: Path) -> Host:
    script = tmp_path / "fake-provguard"
    script.write_text(FAKE_PROVGUARD.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    return Host(tmp_path, str(script))


def dirty(result: subprocess.CompletedProcess[str]) -> set[str]:
    """What `ninja -d explain` said was out of date."""
    found = re.findall(r"ninja explain: (\S+) is dirty", result.stdout + result.stderr)
    return set(found)


def flat(text: str) -> str:
    """CMake wraps messages at spaces: compare them with whitespace runs collapsed."""
    return " ".join(text.split())


def cert_dir(tmp_path: Path, *names: str) -> Path:
    """A CERT_DIR holding placeholder files with the given names (the fake never reads them)."""
    directory = tmp_path / "certs"
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_text("placeholder\n", encoding="utf-8")
    return directory


def test_render_gets_the_cert_dir_files_sec_tag_and_output(fake: Host, tmp_path: Path) -> None:
    certs = cert_dir(tmp_path, "ca.pem", "client.pem", "client.key")
    result = fake.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}", "-DHOST_SEC_TAG=42")
    assert result.returncode == 0, result.stderr

    output = fake.build / "generated" / "certificates.h"
    rendered = fake.build / "generated" / ".provguard-render" / "certificates.h"
    assert fake.calls("render") == [
        [
            "render",
            "--ca",
            str(certs / "ca.pem"),
            "--cert",
            str(certs / "client.pem"),
            "--key",
            str(certs / "client.key"),
            "--sec-tag",
            "42",
            "-o",
            str(rendered),
        ]
    ]
    # Rendered aside, then copied into place: the scratch copy does not stay behind.
    assert output.read_text(encoding="utf-8").startswith(
        "#define PROVGUARD_CERTIFICATES_SEC_TAG 42"
    )
    assert not rendered.exists()
    assert "THIS IMAGE CARRIES TLS CREDENTIALS" in flat(result.stderr)

    built = fake.build_all()
    assert built.returncode == 0, built.stdout
    assert fake.run_app().splitlines()[0] == "credentials 3 sec_tag 42"
    assert fake.calls("scan") == [], "a development image is not leak-scanned"


def test_ca_only_and_json_layouts(fake: Host, tmp_path: Path) -> None:
    certs = cert_dir(tmp_path, "ca.pem")
    assert fake.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}").returncode == 0
    assert fake.calls("render")[-1][:3] == ["render", "--ca", str(certs / "ca.pem")]
    assert "--cert" not in fake.calls("render")[-1]

    (certs / "ca.pem").unlink()
    (certs / "certificates.json").write_text("{}", encoding="utf-8")
    assert fake.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}").returncode == 0
    assert fake.calls("render")[-1][:3] == ["render", "--from", str(certs / "certificates.json")]


def test_a_refused_render_stops_configure_with_the_diagnosis(fake: Host, tmp_path: Path) -> None:
    certs = cert_dir(tmp_path, "ca.pem", "client.pem", "client.key")
    assert fake.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}").returncode == 0
    header = fake.build / "generated" / "certificates.h"
    assert header.exists()

    fake.env["FAKE_RENDER_EXIT"] = "1"
    result = fake.configure()
    assert result.returncode != 0
    assert "provguard render refused the credentials" in flat(result.stderr)
    assert "ca.pem: error: certificate expired 3 days ago" in flat(result.stderr)
    assert not header.exists(), "a stale certificates.h must not survive a refused render"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ((), "ca.pem is missing"),
        (("ca.pem", "client.pem"), "client.key is missing"),
        (("ca.pem", "client.key"), "client.pem is missing"),
        (("ca.pem", "certificates.json"), "both certificates.json and PEM files"),
    ],
)
def test_an_incomplete_cert_dir_stops_configure(
    fake: Host, tmp_path: Path, files: tuple[str, ...], message: str
) -> None:
    certs = cert_dir(tmp_path, *files)
    result = fake.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}")
    assert result.returncode != 0
    assert message in flat(result.stderr)
    assert fake.calls("render") == []


def test_scan_runs_after_the_build_with_the_known_keys(fake: Host, tmp_path: Path) -> None:
    certs = cert_dir(tmp_path, "ca.pem", "client.pem", "client.key")
    assert fake.configure(f"-DCERT_DIR={certs}").returncode == 0
    assert fake.calls("render") == []

    built = fake.build_all()
    assert built.returncode == 0, built.stdout
    assert fake.calls("scan") == [
        [
            "scan",
            str(fake.build / "hostapp"),
            "--cert",
            str(certs / "client.pem"),
            "--key",
            str(certs / "client.key"),
        ]
    ]
    assert "provguard: scanning the image for private keys" in built.stdout
    assert fake.run_app().splitlines() == ["credentials 0 sec_tag -1"]


def test_no_op_rebuild_neither_rescans_nor_recompiles(fake: Host, tmp_path: Path) -> None:
    assert fake.configure(f"-DCERT_DIR={tmp_path / 'absent'}").returncode == 0
    assert fake.build_all().returncode == 0
    stamp = fake.build / "provguard" / "provguard_scan.stamp"
    first = stamp.stat().st_mtime_ns

    again = fake.build_all(explain=True)
    assert again.returncode == 0, again.stdout
    assert len(fake.calls("scan")) == 1, "an unchanged image is not scanned again"
    assert stamp.stat().st_mtime_ns == first
    assert "unchanged since the last clean scan" in again.stdout
    # Ninja's own account: nothing is out of date but the gate's check (always run).
    assert "Building C object" not in again.stdout
    assert "Linking" not in again.stdout
    assert dirty(again) <= {"CMakeFiles/provguard_scan", "provguard_scan"}, dirty(again)


def test_a_changed_image_is_scanned_again(fake: Host, tmp_path: Path) -> None:
    assert fake.configure(f"-DCERT_DIR={tmp_path / 'absent'}").returncode == 0
    assert fake.build_all().returncode == 0
    assert fake.configure("-DHOST_BUILD_ID=2").returncode == 0
    rebuilt = fake.build_all()
    assert rebuilt.returncode == 0, rebuilt.stdout
    assert "Linking" in rebuilt.stdout
    assert len(fake.calls("scan")) == 2


def test_scan_without_cert_dir_scans_the_image_alone(fake: Host, tmp_path: Path) -> None:
    assert fake.configure(f"-DCERT_DIR={tmp_path / 'absent'}").returncode == 0
    assert fake.build_all().returncode == 0
    assert fake.calls("scan") == [["scan", str(fake.build / "hostapp")]]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1, "private key material in the image (provguard scan exit 1"),
        (2, "the image NOT CLEAN: provguard scan could not read everything (exit 2"),
        (3, "did not run to the end (3)"),
    ],
)
def test_a_scan_finding_or_unchecked_input_fails_every_build(
    fake: Host, tmp_path: Path, code: int, message: str
) -> None:
    assert fake.configure(f"-DCERT_DIR={tmp_path}").returncode == 0
    fake.env["FAKE_SCAN_EXIT"] = str(code)
    built = fake.build_all()
    assert built.returncode != 0
    assert message in flat(built.stdout)
    assert "FAILED" in built.stdout
    # No stamp: the next build scans again and fails again, it never turns green by itself.
    assert not (fake.build / "provguard" / "provguard_scan.stamp").exists()
    assert fake.build_all().returncode != 0
    assert len(fake.calls("scan")) == 2
    # Once the scan is clean, the build passes.
    fake.env["FAKE_SCAN_EXIT"] = "0"
    assert fake.build_all().returncode == 0
    assert len(fake.calls("scan")) == 3


def test_allowlist_and_mcuboot_key_go_to_the_scan_and_into_the_stamp(
    fake: Host, tmp_path: Path
) -> None:
    allow = tmp_path / "provguard-allow.txt"
    allow.write_text("symbol enc_priv_key\n", encoding="utf-8")
    enc_key = tmp_path / "enc-ec256-priv.pem"
    enc_key.write_text("placeholder\n", encoding="utf-8")
    configured = fake.configure(
        f"-DCERT_DIR={tmp_path / 'absent'}",
        f"-DPROVGUARD_ALLOW={allow}",
        f"-DPROVGUARD_MCUBOOT_ENC_KEY={enc_key}",
    )
    assert configured.returncode == 0, configured.stderr
    assert fake.build_all().returncode == 0
    image = str(fake.build / "hostapp")
    expected = ["scan", image, "--allow", str(allow), "--mcuboot-enc-key", str(enc_key)]
    assert fake.calls("scan") == [expected]

    # A changed allowlist is a different gate: scanned again although the image is the same.
    allow.write_text("symbol enc_priv_key\nsymbol other_key\n", encoding="utf-8")
    assert fake.build_all().returncode == 0
    assert len(fake.calls("scan")) == 2


def test_a_missing_allowlist_stops_configure(fake: Host, tmp_path: Path) -> None:
    missing = tmp_path / "no-allow.txt"
    result = fake.configure(f"-DCERT_DIR={tmp_path}", f"-DPROVGUARD_ALLOW={missing}")
    assert result.returncode != 0
    assert f"--allow {missing}: no such file" in flat(result.stderr)


def test_certificates_h_is_not_rewritten_by_a_reconfigure(fake: Host, tmp_path: Path) -> None:
    certs = cert_dir(tmp_path, "ca.pem", "client.pem", "client.key")
    assert fake.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}").returncode == 0
    assert fake.build_all().returncode == 0
    header = fake.build / "generated" / "certificates.h"
    before = header.stat().st_mtime_ns

    # Same credentials: render runs again (configure), the header stays as it was.
    assert fake.configure().returncode == 0
    assert len(fake.calls("render")) == 2
    assert header.stat().st_mtime_ns == before
    rebuilt = fake.build_all(explain=True)
    assert rebuilt.returncode == 0
    assert "Building C object" not in rebuilt.stdout

    # Other content (another sec_tag): the header is replaced and credentials.c recompiled.
    assert fake.configure("-DHOST_SEC_TAG=43").returncode == 0
    assert header.stat().st_mtime_ns != before
    rebuilt = fake.build_all()
    assert "credentials.c" in rebuilt.stdout
    assert fake.run_app().splitlines()[0] == "credentials 3 sec_tag 43"


def test_scan_can_only_be_skipped_loudly(fake: Host, tmp_path: Path) -> None:
    result = fake.configure(f"-DCERT_DIR={tmp_path}", "-DPROVGUARD_SCAN=OFF")
    assert result.returncode == 0
    assert "NOT checked for leaked keys" in flat(result.stderr)
    assert fake.build_all().returncode == 0
    assert fake.calls("scan") == []


def test_lowered_peer_verification_warns(fake: Host, tmp_path: Path) -> None:
    quiet = fake.configure(f"-DCERT_DIR={tmp_path}")
    assert "peer verification is lowered" not in flat(quiet.stderr)
    loud = fake.configure("-DHOST_PEER_VERIFY=1")
    assert loud.returncode == 0
    assert "CONFIG_MQTT_TLS_PEER_VERIFY=1: TLS peer verification is lowered" in flat(loud.stderr)


def test_missing_provguard_is_a_clear_configure_error(tmp_path: Path) -> None:
    host = Host(tmp_path, str(tmp_path / "no-such-provguard"))
    host.env["PATH"] = "/usr/bin:/bin"
    result = host.configure("-DPROVGUARD_COMMAND=", f"-DCERT_DIR={tmp_path}")
    assert result.returncode != 0
    assert "the `provguard` command was not found" in flat(result.stderr)


# --- sysbuild: the gate on everything that is flashed or shipped --------------------------------
#
# tests/firmware/sysbuild-host gives the application's sysbuild.cmake the images, caches and
# combined-output targets Zephyr's sysbuild and NCS give it, in the same order.


@pytest.fixture
def sysbuild(tmp_path: Path) -> Host:
    script = tmp_path / "fake-provguard"
    script.write_text(FAKE_PROVGUARD.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    return Host(tmp_path, str(script), SYSBUILD_PROJECT)


def shipped_files(build: Path, app: str = "provguard", merged: str = "merged.hex") -> list[str]:
    """What a sysbuild build with MCUboot produces for flashing or update (NCS 3.x layout)."""
    app_dir = build / app / "zephyr"
    boot_dir = build / "mcuboot" / "zephyr"
    return [
        *(str(app_dir / f"zephyr.{s}") for s in ("elf", "hex", "bin", "signed.hex", "signed.bin")),
        *(str(boot_dir / f"zephyr.{s}") for s in ("elf", "hex", "bin")),
        str(build / merged),
        str(build / "dfu_application.zip"),
    ]


def configure_sysbuild(host: Host, *defines: str) -> subprocess.CompletedProcess[str]:
    return host.configure(f"-DPYTHON={sys.executable}", *defines)


def test_sysbuild_gate_scans_everything_that_ships(sysbuild: Host, tmp_path: Path) -> None:
    certs = cert_dir(tmp_path, "ca.pem", "client.pem", "client.key")
    configured = configure_sysbuild(sysbuild, f"-DCERT_DIR={certs}")
    assert configured.returncode == 0, configured.stderr
    built = sysbuild.build_all()
    assert built.returncode == 0, built.stdout

    known = ["--cert", str(certs / "client.pem"), "--key", str(certs / "client.key")]
    assert sysbuild.calls("scan") == [["scan", *shipped_files(sysbuild.build), *known]]
    # Scanned after the combined outputs were written, not before.
    order = built.stdout.index("provguard: leak gate on the sysbuild outputs")
    assert built.stdout.index("Generating merged.hex") < order
    assert built.stdout.index("Generating dfu_application.zip") < order


def test_sysbuild_gate_finds_the_merged_hex_named_after_the_board(
    sysbuild: Host, tmp_path: Path
) -> None:
    assert configure_sysbuild(sysbuild, "-DHOST_MERGED=board").returncode == 0
    assert sysbuild.build_all().returncode == 0
    files = shipped_files(sysbuild.build, merged="merged_nrf9160dk_nrf9160_ns.hex")
    assert sysbuild.calls("scan") == [["scan", *files]]


def test_sysbuild_no_op_rebuild_neither_rescans_nor_rebuilds(sysbuild: Host) -> None:
    assert configure_sysbuild(sysbuild).returncode == 0
    assert sysbuild.build_all().returncode == 0
    stamp = sysbuild.build / "provguard" / "provguard_sysbuild_scan.stamp"
    first = stamp.stat().st_mtime_ns

    again = sysbuild.build_all(explain=True)
    assert again.returncode == 0, again.stdout
    assert len(sysbuild.calls("scan")) == 1
    assert stamp.stat().st_mtime_ns == first
    assert dirty(again) <= {"CMakeFiles/provguard_sysbuild_scan", "provguard_sysbuild_scan"}
    assert "unchanged since the last clean scan" in again.stdout


def test_sysbuild_change_in_another_image_is_scanned(sysbuild: Host, tmp_path: Path) -> None:
    payload = tmp_path / "mcuboot.txt"
    payload.write_text("bootloader v1\n", encoding="utf-8")
    assert configure_sysbuild(sysbuild, f"-DHOST_MCUBOOT_PAYLOAD={payload}").returncode == 0
    assert sysbuild.build_all().returncode == 0

    payload.write_text("bootloader v2\n", encoding="utf-8")
    rebuilt = sysbuild.build_all()
    assert rebuilt.returncode == 0, rebuilt.stdout
    assert len(sysbuild.calls("scan")) == 2


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1, "private key material in the sysbuild outputs (provguard scan exit 1"),
        (2, "the sysbuild outputs NOT CLEAN: provguard scan could not read everything (exit 2"),
    ],
)
def test_sysbuild_finding_or_unchecked_fails_the_build(
    sysbuild: Host, code: int, message: str
) -> None:
    assert configure_sysbuild(sysbuild).returncode == 0
    sysbuild.env["FAKE_SCAN_EXIT"] = str(code)
    built = sysbuild.build_all()
    assert built.returncode != 0
    assert message in flat(built.stdout)
    assert sysbuild.build_all().returncode != 0, "a failed gate stays failed"


def test_sysbuild_output_that_was_not_built_fails_closed(sysbuild: Host) -> None:
    assert configure_sysbuild(sysbuild, "-DHOST_MISSING_OUTPUT=ON").returncode == 0
    built = sysbuild.build_all()
    assert built.returncode != 0
    assert "zephyr.signed.encrypted.bin is not there" in flat(built.stdout)
    assert sysbuild.calls("scan") == []


def test_sysbuild_encrypted_images_are_read_with_the_sysbuild_key(
    sysbuild: Host, tmp_path: Path
) -> None:
    """SB_CONFIG_BOOT_ENCRYPTION: the update package is encrypted with this key; without it the
    scan could only say NOT CLEAN."""
    enc_key = tmp_path / "enc-ec256-priv.pem"
    enc_key.write_text("placeholder\n", encoding="utf-8")
    configured = configure_sysbuild(
        sysbuild, "-DSB_CONFIG_BOOT_ENCRYPTION=y", f"-DSB_CONFIG_BOOT_ENCRYPTION_KEY_FILE={enc_key}"
    )
    assert configured.returncode == 0, configured.stderr
    assert sysbuild.build_all().returncode == 0
    assert sysbuild.calls("scan")[0][-2:] == ["--mcuboot-enc-key", str(enc_key)]


def test_sysbuild_development_image_is_not_gated_and_says_so(sysbuild: Host) -> None:
    configured = configure_sysbuild(sysbuild, "-DHOST_PROVISION=ON")
    assert configured.returncode == 0
    assert "development image (CONFIG_PROVISION_CERTIFICATES=y)" in flat(configured.stderr)
    assert "NOT leak-gated" in flat(configured.stderr)
    assert sysbuild.build_all().returncode == 0
    assert sysbuild.calls("scan") == []


# --- with the real provguard -------------------------------------------------------------------


def real_provguard() -> str:
    command = Path(sys.executable).parent / "provguard"
    if not command.exists():
        pytest.skip("provguard console script not installed next to this Python")
    return str(command)


def write_pki(directory: Path) -> factories.DevicePki:
    pki = factories.device_pki()
    directory.mkdir(exist_ok=True)
    (directory / "ca.pem").write_bytes(factories.cert_pem(pki.ca_cert))
    (directory / "client.pem").write_bytes(factories.cert_pem(pki.device_cert))
    (directory / "client.key").write_bytes(factories.key_pem(pki.device_key))
    return pki


@pytest.mark.skipif("render" not in cli.COMMAND_MODULES, reason="render not registered yet")
def test_real_render_feeds_credentials_c(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    write_pki(certs)
    host = Host(tmp_path, real_provguard())
    result = host.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}")
    assert result.returncode == 0, result.stderr
    built = host.build_all()
    assert built.returncode == 0, built.stdout

    lines = host.run_app().splitlines()
    assert lines[0] == "credentials 3 sec_tag 24"
    ca_len = len((certs / "ca.pem").read_bytes().strip()) + 1
    assert lines[1] == f"type 0 len {ca_len}"
    assert lines[2].startswith("type 1 len ")
    assert lines[3].startswith("type 2 len ")


@pytest.mark.skipif("render" not in cli.COMMAND_MODULES, reason="render not registered yet")
def test_real_render_refuses_a_key_that_does_not_match(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    write_pki(certs)
    (certs / "client.key").write_bytes(factories.key_pem(factories.ec_key()))
    host = Host(tmp_path, real_provguard())
    result = host.configure("-DHOST_PROVISION=ON", f"-DCERT_DIR={certs}")
    assert result.returncode != 0
    assert "provguard render refused the credentials" in flat(result.stderr)
    assert "client.key" in flat(result.stderr)
    assert "PRIVATE KEY-----\n" not in result.stderr + result.stdout


@pytest.mark.skipif("scan" not in cli.COMMAND_MODULES, reason="scan not registered yet")
def test_real_scan_passes_a_clean_image(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    write_pki(certs)
    host = Host(tmp_path, real_provguard())
    assert host.configure(f"-DCERT_DIR={certs}").returncode == 0
    built = host.build_all()
    assert built.returncode == 0, built.stdout
    assert "provguard: scanning the image for private keys" in built.stdout


def test_sysbuild_with_the_real_provguard(tmp_path: Path) -> None:
    """A key in any image (here only in MCUboot) fails the sysbuild build; clean images pass."""
    if "scan" not in cli.COMMAND_MODULES:
        pytest.skip("scan not registered yet")
    host = Host(tmp_path, real_provguard(), SYSBUILD_PROJECT)
    payload = tmp_path / "mcuboot.txt"
    payload.write_text("bootloader\n", encoding="utf-8")
    assert configure_sysbuild(host, f"-DHOST_MCUBOOT_PAYLOAD={payload}").returncode == 0
    clean = host.build_all()
    assert clean.returncode == 0, clean.stdout

    payload.write_bytes(factories.key_pem(factories.ec_key()))
    leaked = host.build_all()
    assert leaked.returncode != 0
    assert "private key material in the sysbuild outputs" in flat(leaked.stdout)
    assert "mcuboot/zephyr/zephyr.elf" in leaked.stdout
    assert "PRIVATE KEY-----\n" not in leaked.stdout


def test_host_project_is_what_the_application_does() -> None:
    """The host project must use the module the way the real CMakeLists.txt does."""
    app = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    for call in (
        "provguard_render_certificates(",
        "provguard_scan_after_build(",
        "provguard_check_tls_peer_verify(",
    ):
        assert call in app
        assert call in (PROJECT / "CMakeLists.txt").read_text(encoding="utf-8")
    # Render only for development images; every other image is scanned.
    branch = app[app.index("if(CONFIG_PROVISION_CERTIFICATES)") :]
    # Under sysbuild, sysbuild.cmake gates the image (and more) instead.
    development, release = branch.split("elseif(NOT SYSBUILD)", 1)
    assert "provguard_render_certificates(" in development
    assert "provguard_scan_after_build(" in release
    # The sysbuild host project includes the application's own sysbuild.cmake.
    sysbuild_cmake = (ROOT / "sysbuild.cmake").read_text(encoding="utf-8")
    assert "CALL provguard_sysbuild_gate" in sysbuild_cmake
    assert "include(${APP_DIR}/sysbuild.cmake)" in (SYSBUILD_PROJECT / "CMakeLists.txt").read_text(
        encoding="utf-8"
    )
