"""Cortex-M33 (nRF91) cross-compile of app/src against the fakes, warnings as errors.

Not a Zephyr build (no SDK here): it proves the sources are valid C for the target with the
pinned APIs' signatures, in both the release and the development configuration, and that a release
object file holds no credential byte even with a certificates.h on the include path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from provguard import cli
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
APP_SRC = ROOT / "app" / "src"
FAKES = ROOT / "tests" / "unit" / "fakes"
GCC = "arm-none-eabi-gcc"

CFLAGS = [
    "-mcpu=cortex-m33",
    "-mthumb",
    "-Os",
    "-std=gnu11",
    "-ffunction-sections",
    "-fdata-sections",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wformat=2",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wno-missing-field-initializers",
]

MARKER_CA = "provguard-marker-ca-3f1d"
MARKER_KEY = "provguard-marker-key-9a7c"

# In CI (CI set) a missing cross compiler is a failure, never a skip.
pytestmark = pytest.mark.skipif(
    shutil.which(GCC) is None and not os.environ.get("CI"), reason=f"{GCC} not installed"
)


@pytest.fixture(scope="module")
def cert_header_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A certificates.h as `provguard render` writes it, with recognisable placeholder bytes."""
    directory = tmp_path_factory.mktemp("generated")
    (directory / "certificates.h").write_text(
        "#define PROVGUARD_CERTIFICATES_SEC_TAG 24\n"
        f'#define CA_CERTIFICATE "-----BEGIN CERTIFICATE-----\\n" "{MARKER_CA}\\n" '
        '"-----END CERTIFICATE-----\\n"\n'
        f'#define CLIENT_CERTIFICATE "{MARKER_CA}-client\\n"\n'
        f'#define PRIVATE_KEY "{MARKER_KEY}\\n"\n',
        encoding="utf-8",
    )
    return directory


def cross_compile(
    source: Path, obj: Path, header_dir: Path, *defines: str, autoconf: bool = True
) -> subprocess.CompletedProcess[str]:
    """arm-none-eabi-gcc -c of one app source against the fakes and a certificates.h directory."""
    include = ["-include", str(FAKES / "autoconf.h")] if autoconf else []
    return subprocess.run(
        [GCC, *CFLAGS, *defines, *include, "-I", str(FAKES / "include"), "-I", str(APP_SRC),
         "-I", str(header_dir), "-c", str(source), "-o", str(obj)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def compile_source(
    source: Path, out_dir: Path, cert_header_dir: Path, *, provisioning: bool
) -> Path:
    obj = out_dir / (source.stem + (".dev.o" if provisioning else ".rel.o"))
    defines = ["-DCONFIG_PROVISION_CERTIFICATES=1"] if provisioning else []
    result = cross_compile(source, obj, cert_header_dir, *defines)
    assert result.returncode == 0, f"{source.name}:\n{result.stderr}"
    return obj


def sources() -> list[Path]:
    return sorted(APP_SRC.glob("*.c"))


@pytest.mark.parametrize("provisioning", [False, True], ids=["release", "development"])
@pytest.mark.parametrize("source", sources(), ids=lambda p: p.name)
def test_compiles_for_cortex_m33(
    tmp_path: Path, cert_header_dir: Path, source: Path, provisioning: bool
) -> None:
    obj = compile_source(source, tmp_path, cert_header_dir, provisioning=provisioning)
    header = subprocess.run(
        ["arm-none-eabi-readelf", "-h", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    assert "ARM" in header


def test_release_object_holds_no_credential_bytes(tmp_path: Path, cert_header_dir: Path) -> None:
    source = APP_SRC / "credentials.c"
    development = compile_source(source, tmp_path, cert_header_dir, provisioning=True).read_bytes()
    release = compile_source(source, tmp_path, cert_header_dir, provisioning=False).read_bytes()

    # The development object carries them (so this test can see them) ...
    assert MARKER_CA.encode() in development
    assert MARKER_KEY.encode() in development
    # ... the release one, built next to the same certificates.h, does not.
    assert MARKER_CA.encode() not in release
    assert MARKER_KEY.encode() not in release
    assert b"BEGIN CERTIFICATE" not in release


def test_sec_tag_mismatch_is_a_compile_error(tmp_path: Path, cert_header_dir: Path) -> None:
    result = compile_credentials_with_header(
        cert_header_dir, "-DCONFIG_MQTT_TLS_SEC_TAG=25", out=tmp_path / "mismatch.o"
    )
    assert result.returncode != 0
    assert "rendered for another sec_tag" in result.stderr


def compile_credentials_with_header(
    header_dir: Path, *defines: str, out: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """credentials.c of a development build, without autoconf.h (it must stand alone)."""
    return cross_compile(
        APP_SRC / "credentials.c",
        out or header_dir / "credentials.o",
        header_dir,
        "-DCONFIG_PROVISION_CERTIFICATES=1",
        *defines,
        autoconf=False,
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            '#define PROVGUARD_CERTIFICATES_SEC_TAG 16842753\n#define CA_CERTIFICATE "x\\n"\n',
            "uses nRF Cloud",
        ),
        (
            '#define PROVGUARD_CERTIFICATES_SEC_TAG 2147483648\n#define CA_CERTIFICATE "x\\n"\n',
            "user range 0..2147483647",
        ),
        (
            '#define PROVGUARD_CERTIFICATES_SEC_TAG 24\n#define CA_CERTIFICATE "x\\n"\n'
            '#define CLIENT_CERTIFICATE "c\\n"\n',
            "both CLIENT_CERTIFICATE and PRIVATE_KEY",
        ),
        (
            f'#define PROVGUARD_CERTIFICATES_SEC_TAG 24\n#define CA_CERTIFICATE "{"A" * 3969}"\n',
            "larger than the modem accepts",
        ),
    ],
    ids=["nrf-cloud-tag", "tag-out-of-range", "half-a-pair", "too-large"],
)
def test_header_checks_are_compile_errors(tmp_path: Path, header: str, message: str) -> None:
    (tmp_path / "certificates.h").write_text(header, encoding="utf-8")
    result = compile_credentials_with_header(tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_largest_accepted_credential_compiles(tmp_path: Path) -> None:
    (tmp_path / "certificates.h").write_text(
        f'#define PROVGUARD_CERTIFICATES_SEC_TAG 24\n#define CA_CERTIFICATE "{"A" * 3968}"\n',
        encoding="utf-8",
    )
    result = compile_credentials_with_header(tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("source", "define", "message"),
    [
        ("mqtt_app.c", "-DCONFIG_MQTT_TLS_SEC_TAG=16842753", "nRF Cloud"),
        ("provision.c", "-DCONFIG_MQTT_TLS_SEC_TAG=16842753", "nRF Cloud"),
        ("mqtt_app.c", "-DCONFIG_MQTT_TLS_PEER_VERIFY=3", "must be 0 (none), 1 (optional) or 2"),
    ],
)
def test_kconfig_checks_are_compile_errors(
    tmp_path: Path, cert_header_dir: Path, source: str, define: str, message: str
) -> None:
    result = cross_compile(APP_SRC / source, tmp_path / "bad.o", cert_header_dir, define)
    assert result.returncode != 0
    assert message in result.stderr


def test_session_caching_fails_loudly_without_the_field(
    tmp_path: Path, cert_header_dir: Path
) -> None:
    """The pinned Zephyr's mqtt_sec_config has no session_cache: caching on must not build."""
    source = APP_SRC / "mqtt_app.c"
    caching = "-DCONFIG_MQTT_TLS_SESSION_CACHING=1"
    refused = cross_compile(source, tmp_path / "cache.o", cert_header_dir, caching)
    assert refused.returncode != 0
    assert "has no member named 'session_cache'" in refused.stderr
    # The line the compiler shows carries the explanation for the user.
    assert "turn CONFIG_MQTT_TLS_SESSION_CACHING off" in (source.read_text(encoding="utf-8"))
    # With a header that has the field (older sdk-zephyr) the same source builds.
    older = cross_compile(
        source,
        tmp_path / "cache-old.o",
        cert_header_dir,
        caching,
        "-DFAKE_MQTT_SEC_CONFIG_HAS_SESSION_CACHE=1",
    )
    assert older.returncode == 0, older.stderr


def undefined_symbols(obj: Path) -> set[str]:
    listing = subprocess.run(
        ["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[-1] for line in listing.splitlines() if line.strip()}


def test_traces_compiled_in_need_a_level_to_restore(tmp_path: Path, cert_header_dir: Path) -> None:
    source = APP_SRC / "provision.c"
    trace = ["-DCONFIG_PROVISION_CERTIFICATES=1", "-DCONFIG_NRF_MODEM_LIB_TRACE=1"]
    refused = cross_compile(source, tmp_path / "no-level.o", cert_header_dir, *trace)
    assert refused.returncode != 0
    assert "needs CONFIG_NRF_MODEM_LIB_TRACE_LEVEL_OVERRIDE=y" in refused.stderr

    with_level = tmp_path / "level.o"
    built = cross_compile(
        source, with_level, cert_header_dir, *trace, "-DCONFIG_NRF_MODEM_LIB_TRACE_LEVEL=2"
    )
    assert built.returncode == 0, built.stderr
    assert "nrf_modem_lib_trace_level_set" in undefined_symbols(with_level)

    plain = compile_source(source, tmp_path, cert_header_dir, provisioning=True)
    assert "nrf_modem_lib_trace_level_set" not in undefined_symbols(plain)


def test_compatibility_socket_names_do_not_build(tmp_path: Path) -> None:
    """The fakes poison the TLS_* aliases, so an app source using one fails the host build."""
    source = tmp_path / "alias.c"
    source.write_text(
        "#include <zephyr/net/socket.h>\nint verify(void);\n"
        "int verify(void) { return TLS_PEER_VERIFY_REQUIRED; }\n",
        encoding="utf-8",
    )
    result = cross_compile(source, tmp_path / "alias.o", tmp_path)
    assert result.returncode != 0
    assert 'poisoned "TLS_PEER_VERIFY_REQUIRED"' in result.stderr


# --- end to end with the real provguard: render -> ARM images -> scan ---------------------------

NEEDS_RENDER_AND_SCAN = pytest.mark.skipif(
    not {"render", "scan"} <= set(cli.COMMAND_MODULES), reason="render/scan not registered yet"
)


def provguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provguard", *args], capture_output=True, text=True, check=False
    )


def link_image(tmp_path: Path, header_dir: Path, *, provisioning: bool) -> Path:
    """An ARM ELF of credentials.c and a main that uses the table, as the release gate sees it."""
    elf = tmp_path / ("dev.elf" if provisioning else "release.elf")
    defines = ["-DCONFIG_PROVISION_CERTIFICATES=1"] if provisioning else []
    result = subprocess.run(
        [
            GCC,
            *CFLAGS,
            *defines,
            "-Wl,--gc-sections",
            "-specs=nosys.specs",
            "-I",
            str(FAKES / "include"),
            "-I",
            str(APP_SRC),
            "-I",
            str(header_dir),
            str(ROOT / "tests" / "firmware" / "cmake-host" / "main.c"),
            str(APP_SRC / "credentials.c"),
            "-o",
            str(elf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return elf


@NEEDS_RENDER_AND_SCAN
def test_scan_finds_the_key_in_the_development_image_only(tmp_path: Path) -> None:
    pki = factories.device_pki()
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_bytes(factories.cert_pem(pki.ca_cert))
    (certs / "client.pem").write_bytes(factories.cert_pem(pki.device_cert))
    (certs / "client.key").write_bytes(factories.key_pem(pki.device_key))
    generated = tmp_path / "generated"
    generated.mkdir()

    rendered = provguard(
        "render",
        "--ca", str(certs / "ca.pem"),
        "--cert", str(certs / "client.pem"),
        "--key", str(certs / "client.key"),
        "--sec-tag", "24",
        "-o", str(generated / "certificates.h"),
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr

    development = link_image(tmp_path, generated, provisioning=True)
    release = link_image(tmp_path, generated, provisioning=False)

    found = provguard("scan", str(development))
    assert found.returncode == 1, found.stdout + found.stderr
    # The device key itself, named by its fingerprint (SHA-256 of its public key's SPKI DER).
    spki = pki.device_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = "SHA256:" + hashlib.sha256(spki).hexdigest()
    fails = [line for line in found.stdout.splitlines() if ": FAIL: private-key" in line]
    assert len(fails) == 1, found.stdout
    assert fails[0].startswith(f"{development}: "), found.stdout
    assert fingerprint in fails[0], found.stdout
    clean = provguard("scan", str(release), "--key", str(certs / "client.key"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.rstrip().endswith("fail on private-key: clean"), clean.stdout
