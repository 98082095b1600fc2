"""`provguard scan` beyond the key matrix: MCUboot images, zip archives, build trees, corrupt
input, certificates, the allowlist, fragments, the unusual DER shapes and the report formats."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from intelhex import IntelHex

from provguard.cli import main
from provguard.credentials import fingerprint, key_fingerprint
from provguard.scan import DETECTORS, READERS, Kind
from provguard.scan.detectors import detect
from tests import factories as f
from tests import images

pytestmark = pytest.mark.skipif(not images.HAVE_TOOLCHAIN, reason="needs arm-none-eabi-gcc")


@dataclass(frozen=True)
class Dev:
    """A development image: the device key in .rodata, certificates, and their files."""

    firmware: images.Firmware
    key: ec.EllipticCurvePrivateKey
    pki: f.DevicePki
    key_file: Path
    cert_file: Path
    ca_file: Path
    json_file: Path


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Dev:
    where = tmp_path_factory.mktemp("dev")
    pki = f.device_pki()
    key = pki.device_key
    blobs = [
        images.Blob("device_key", f.key_pem(key), string=True),
        images.Blob("client_cert_der", f.cert_der(pki.device_cert)),
        images.Blob("ca_cert", f.cert_pem(pki.ca_cert), string=True),
        images.Blob("banner", b"nrf91 mqtt client v1.2.3", string=True),
    ]
    firmware = images.build_firmware(where / "build", "zephyr", blobs)
    json_file = where / "certificates.json"
    json_file.write_text(
        json.dumps(
            {
                "caCert": f.cert_pem(pki.ca_cert).decode(),
                "clientCert": f.cert_pem(pki.device_cert).decode(),
                "privateKey": f.key_pem(key).decode(),
                "secTag": 24,
            }
        )
    )
    json_file.chmod(0o600)
    cert_file = where / "client.pem"
    cert_file.write_bytes(f.cert_pem(pki.device_cert))
    ca_file = where / "ca.pem"
    ca_file.write_bytes(f.cert_pem(pki.ca_cert))
    return Dev(
        firmware,
        key,
        pki,
        images.write_private(where / "client.key", f.key_pem(key)),
        cert_file,
        ca_file,
        json_file,
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> images.Firmware:
    """An image without credentials: what a release build should be."""
    blobs = [images.Blob("banner", b"nrf91 mqtt client v1.2.3", string=True)]
    return images.build_firmware(tmp_path_factory.mktemp("clean"), "zephyr", blobs)


def scan(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict]:
    code = main(["scan", "--format", "json", *map(str, args)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def scan_text(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["scan", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- MCUboot and zip ------------------------------------------------------------------------


def test_mcuboot_image_is_understood(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app_update.bin"
    path.write_bytes(images.mcuboot_image(dev.firmware.bin.read_bytes()))
    code, report = scan(capsys, path, "--key", dev.key_file)
    assert code == 1
    assert report["scanned"] == [
        {"path": str(path), "format": "mcuboot", "size": path.stat().st_size}
    ]
    [key] = [h for h in report["findings"] if h["kind"] == "private-key"]
    assert key["section"] == "mcuboot payload"
    assert key["address"] == images.HEADER_SIZE + dev.firmware.symbols["device_key"]
    assert key["key"] == key_fingerprint(dev.key)
    assert report["unchecked"] == []


def test_encrypted_mcuboot_payload_is_never_clean(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app_update.bin"
    path.write_bytes(images.mcuboot_image(dev.firmware.bin.read_bytes(), encrypted=True))
    code, report = scan(capsys, path, "--key", dev.key_file)
    assert code == 2
    assert report["findings"] == []
    [item] = report["unchecked"]
    assert "encrypted" in item["reason"]
    assert "--mcuboot-enc-key" in item["reason"]
    code, out, _ = scan_text(capsys, path)
    assert code == 2
    assert "UNCHECKED" in out
    assert out.splitlines()[-1].endswith("fail on private-key: NOT CLEAN (1 part(s) unchecked)")


def test_dfu_zip_members_are_scanned_and_named(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    update = images.mcuboot_image(dev.firmware.bin.read_bytes())
    inner = images.dfu_zip(tmp_path / "dfu_application.zip", {"app_update.bin": update})
    outer = tmp_path / "release-artifacts.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(inner, "dfu_application.zip")
        archive.write(dev.firmware.hex, "zephyr/merged.hex")
    code, report = scan(capsys, outer, "--key", dev.key_file)
    assert code == 1
    paths = {h["path"] for h in report["findings"] if h["kind"] == "private-key"}
    assert paths == {
        f"{outer}!dfu_application.zip!app_update.bin",
        f"{outer}!zephyr/merged.hex",
    }
    formats = {s["path"].split("!")[-1]: s["format"] for s in report["scanned"]}
    assert formats["app_update.bin"] == "mcuboot"
    assert formats["zephyr/merged.hex"] == "intel-hex"
    assert formats["manifest.json"] == "text"


def test_build_tree_scans_every_file(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = tmp_path / "build"
    (build / "zephyr").mkdir(parents=True)
    (build / "zephyr" / "zephyr.elf").write_bytes(dev.firmware.elf.read_bytes())
    (build / "zephyr" / "merged.hex").write_bytes(dev.firmware.hex.read_bytes())
    (build / "zephyr" / "main.c.obj").write_bytes(b"not an image")
    (build / "CMakeCache.txt").write_text("CMAKE_BUILD_TYPE=Debug\n")
    images.dfu_zip(
        build / "dfu_application.zip", {"app_update.bin": images.mcuboot_image(b"\0" * 64)}
    )
    code, report = scan(capsys, build)
    assert code == 1
    scanned = [s["path"] for s in report["scanned"]]
    assert str(build / "zephyr" / "zephyr.elf") in scanned
    assert str(build / "zephyr" / "merged.hex") in scanned
    assert f"{build / 'dfu_application.zip'}!app_update.bin" in scanned
    states = {c["path"]: c["state"] for c in report["coverage"]}  # read whatever the suffix
    assert states[str(build / "zephyr" / "main.c.obj")] == "read"
    assert states[str(build / "CMakeCache.txt")] == "read"
    elf_hit = next(
        h
        for h in report["findings"]
        if h["path"].endswith("zephyr.elf") and h["kind"] == "private-key"
    )
    assert (elf_hit["section"], elf_hit["symbol"]) == (".rodata", "device_key")


# --- corrupt input ---------------------------------------------------------------------------


def corrupt_hex(text: bytes) -> bytes:
    lines = text.splitlines(keepends=True)
    line = bytearray(lines[3])
    line[9] = ord("0") if line[9] != ord("0") else ord("1")  # a data digit: checksum now wrong
    lines[3] = bytes(line)
    return b"".join(lines)


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        (
            "bad.hex",
            lambda fw: corrupt_hex(fw.hex.read_bytes()),
            "line 4: Intel HEX record checksum mismatch",
        ),
        ("cut.hex", lambda fw: fw.hex.read_bytes()[:-40], "no end-of-file record"),
        ("cut.elf", lambda fw: fw.elf.read_bytes()[:2000], "truncated ELF file"),
        (
            "cut.bin",
            lambda fw: images.mcuboot_image(fw.bin.read_bytes())[:-8],
            "truncated MCUboot image",
        ),
        ("bad.zip", lambda fw: b"PK\x03\x04" + os.urandom(200), "zip central directory"),
        ("empty.hex", lambda fw: b"", "empty image file"),
        ("zephyr.elf", lambda fw: b"", "empty image file"),
        ("app.bin", lambda fw: b"", "empty image file"),
    ],
)
def test_damaged_input_is_unchecked_naming_file_and_reason(
    clean: images.Firmware,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    make,
    reason: str,
) -> None:
    """A damaged or empty image is never clean: NOT CLEAN, exit 2, the file and why named."""
    path = tmp_path / name
    path.write_bytes(make(clean))
    assert main(["scan", str(clean.hex), str(clean.elf), str(clean.bin)]) == 0  # undamaged
    capsys.readouterr()
    code, out, err = scan_text(capsys, path)
    assert (code, err) == (2, "")
    unchecked = [x for x in out.splitlines() if "UNCHECKED" in x]
    assert unchecked
    assert all(x.startswith(f"{path}: UNCHECKED: ") for x in unchecked)
    assert any(reason in x for x in unchecked)
    assert "NOT CLEAN" in out.splitlines()[-1]
    code, report = scan(capsys, path)
    assert code == 2
    assert [c["state"] for c in report["coverage"] if c["path"] == str(path)] == ["unchecked"]


def test_damaged_image_holding_a_key_is_still_searched(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key in a cut ELF, a damaged HEX or a cut MCUboot image is found: exit 1, not 2."""
    damaged = {
        "bad.hex": corrupt_hex(dev.firmware.hex.read_bytes()),
        "cut.hex": dev.firmware.hex.read_bytes().rsplit(b":", 1)[0],  # no end-of-file record
        "cut.elf": dev.firmware.elf.read_bytes()[: dev.firmware.elf.stat().st_size - 200],
        "cut.bin": images.mcuboot_image(dev.firmware.bin.read_bytes())[:-8],
    }
    for name, data in damaged.items():
        path = tmp_path / name
        path.write_bytes(data)
        code, report = scan(capsys, path)
        assert code == 1, name
        assert [f["key"] for f in report["findings"] if f["kind"] == "private-key"] == [
            key_fingerprint(dev.key)
        ], name
        assert report["unchecked"], name


def test_missing_path_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = scan_text(capsys, tmp_path / "nope.hex")
    assert code == 2
    assert "nope.hex: no such file or directory" in err


# --- certificates, known credentials ---------------------------------------------------------


def test_certificates_fail_only_with_fail_on_certificate(
    dev: Dev, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "certs-only.bin"
    blob = (
        os.urandom(300)
        + f.cert_der(dev.pki.device_cert)
        + os.urandom(300)
        + f.cert_pem(dev.pki.ca_cert)
    )
    path.write_bytes(blob)
    code, report = scan(capsys, path)
    assert code == 0
    kinds = sorted((h["kind"], h["encoding"], h["key"]) for h in report["findings"])
    assert kinds == sorted(
        [
            ("certificate", "DER", fingerprint(f.cert_der(dev.pki.device_cert))),
            ("certificate", "PEM", fingerprint(f.cert_der(dev.pki.ca_cert))),
        ]
    )
    code, _ = scan(capsys, path, "--fail-on", "certificate")
    assert code == 1


def test_known_credentials_from_json_export_and_cert_files(
    dev: Dev, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = b"".join(f.cert_pem(dev.pki.device_cert).splitlines()[1:-1])
    path = tmp_path / "headerless.bin"
    path.write_bytes(os.urandom(100) + body + os.urandom(100))  # base64 without PEM framing
    code, report = scan(capsys, path, "--fail-on", "certificate")
    assert (code, report["findings"]) == (0, [])  # unknown: just text
    code, report = scan(capsys, path, "--cert", dev.cert_file, "--fail-on", "certificate")
    assert code == 1
    [hit] = report["findings"]
    assert hit["encoding"] == "base64 DER"
    assert hit["known"] == str(dev.cert_file)
    code, report = scan(capsys, dev.firmware.elf, "--from", dev.json_file)
    known = {h["symbol"]: h["known"] for h in report["findings"]}
    assert known["device_key"] == f"{dev.json_file}:privateKey"
    assert known["client_cert_der"] == f"{dev.json_file}:clientCert"
    assert known["ca_cert"] == f"{dev.json_file}:caCert"


def test_bad_key_file_is_an_input_error(
    tmp_path: Path, dev: Dev, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    code, out, err = scan_text(capsys, dev.firmware.elf, "--key", bad)
    assert code == 2
    assert out == ""
    assert "broken.key" in err


# --- fragments and unusual shapes ------------------------------------------------------------


def test_fragments_of_a_known_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = f.rsa_key()
    key_file = images.write_private(tmp_path / "rsa.key", f.key_pem(key))
    der = f.key_der(key)
    text = base64.b64encode(der)
    modulus = key.public_key().public_numbers().n.to_bytes(256, "big")
    # each piece with the DER bytes around it: the image has their complements there, so the
    # match cannot run on by chance and its reported extent is exact
    cases = {
        "der_piece": (der, 400, 480, "fragment of PKCS#8 DER"),
        "b64_piece": (text, 700, 800, "fragment of base64 PKCS#8 DER"),
        "short_piece": (der, 400, 420, None),  # 20 bytes: below the reporting threshold
        "header_piece": (der, 1, 40, None),  # the public DER header every RSA-2048 key shares
        "modulus": (modulus, 1, 255, None),  # public: in every certificate of this key
    }
    for name, (source, start, end, encoding) in cases.items():
        path = tmp_path / f"{name}.bin"
        before, after = bytes([source[start - 1] ^ 0xFF]), bytes([source[end] ^ 0xFF])
        path.write_bytes(b"\x00" * 256 + before + source[start:end] + after + b"\x00" * 300)
        code, report = scan(capsys, path, "--key", key_file)
        if encoding is None:
            assert (code, report["findings"]) == (0, []), name
        else:
            [hit] = report["findings"]
            assert (code, hit["encoding"]) == (1, encoding)
            assert (hit["address"], hit["length"]) == (257, end - start)


def short_form_pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 P-256 without the optional public key: 67 bytes, short-form lengths throughout."""
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return (
        bytes.fromhex("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420")
        + scalar
    )


@pytest.mark.parametrize(
    ("name", "make", "encoding"),
    [
        (
            "pkcs8-short-form",
            lambda: (k := f.ec_key(), short_form_pkcs8(k)),
            "PKCS#8 DER (EC secp256r1)",
        ),
        (
            "ed25519",
            lambda: (k := ed25519.Ed25519PrivateKey.generate(), f.key_der(k)),
            "PKCS#8 DER (Ed25519)",
        ),
        (
            "rsa-pkcs1",
            lambda: (k := f.rsa_key(), f.key_der(k, pkcs8=False)),
            "PKCS#1 DER (RSA-2048)",
        ),
        ("sec1", lambda: (k := f.ec_key(), f.key_der(k, pkcs8=False)), "SEC1 DER (EC secp256r1)"),
    ],
)
def test_unknown_der_shapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, make, encoding: str
) -> None:
    key, der = make()
    path = tmp_path / f"{name}.bin"
    path.write_bytes(os.urandom(1000) + der + os.urandom(1000))
    code, report = scan(capsys, path)
    [hit] = report["findings"]
    assert (code, hit["encoding"], hit["address"], hit["length"]) == (1, encoding, 1000, len(der))
    assert hit["key"] == key_fingerprint(key)


def test_encrypted_pem_key_is_still_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "enc.bin"
    path.write_bytes(bytes(64) + f.key_pem(f.ec_key(), password=b"correct horse") + bytes(64))
    code, report = scan(capsys, path)
    [hit] = report["findings"]
    assert (code, hit["kind"], hit["encoding"]) == (1, "private-key", "PEM encrypted PKCS#8")


def test_certificates_h_source_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A generated certificates.h: PEM as C string literals, one quoted line each."""
    key = f.ec_key()
    lines = f.key_pem(key).decode().splitlines()
    header = "#define PRIVATE_KEY \\\n" + "".join(f'\t"{line}\\n" \\\n' for line in lines) + "\n"
    path = tmp_path / "certificates.h"
    path.write_text(header)
    code, report = scan(capsys, path)
    [hit] = report["findings"]
    assert (code, hit["encoding"], hit["key"]) == (
        1,
        "PEM PKCS#8 (EC secp256r1)",
        key_fingerprint(key),
    )


# --- allowlist -------------------------------------------------------------------------------


def test_allowlist_by_fingerprint_and_by_symbol(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text(
        f"# MCUboot image-encryption key\nkey {key_fingerprint(dev.key)}  # on purpose\n"
    )
    code, report = scan(capsys, dev.firmware.elf, "--allow", allow)
    assert code == 0
    assert [h["symbol"] for h in report["allowed"]] == ["device_key"]
    assert report["allowed"][0]["allowedBy"] == f"key {key_fingerprint(dev.key)}"
    allow.write_text("symbol device_key\n")
    code, report = scan(capsys, dev.firmware.elf, "--allow", allow)
    assert (code, report["allowed"][0]["allowedBy"]) == (0, "symbol device_key")
    allow.write_text("# every device key\nsymbol device_*\n")
    code, out, err = scan_text(capsys, dev.firmware.elf, "--allow", allow)
    assert (code, out) == (2, "")
    assert "allow.txt:2:" in err
    assert "--force-allow-wildcard" in err
    code, out, err = scan_text(capsys, dev.firmware.elf, "--allow", allow, "--force-allow-wildcard")
    assert code == 0
    assert "allowed by `symbol device_*`" in out
    allow.write_text("symbol enc_priv_key\n")
    assert scan(capsys, dev.firmware.elf, "--allow", allow)[0] == 1
    allow.write_text("key deadbeef\n")
    code, out, err = scan_text(capsys, dev.firmware.elf, "--allow", allow)
    assert code == 2
    assert "allow.txt:1:" in err
    assert out == ""


# --- report formats --------------------------------------------------------------------------


def test_json_report_shape(dev: Dev, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = scan(capsys, dev.firmware.elf, "--key", dev.key_file)
    assert code == 1
    # The fingerprint as the README defines it: SHA-256 of the public SubjectPublicKeyInfo DER.
    spki = dev.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected_key = "SHA256:" + hashlib.sha256(spki).hexdigest()
    pem_length = len(f.key_pem(dev.key).rstrip(b"\n"))  # BEGIN line to END line
    [key_finding] = [h for h in report["findings"] if h["kind"] == "private-key"]
    assert {"path", "kind", "encoding", "address", "length", "section", "symbol", "key"} <= set(
        key_finding
    )
    assert key_finding["path"] == str(dev.firmware.elf)
    assert (key_finding["section"], key_finding["symbol"]) == (".rodata", "device_key")
    assert (key_finding["key"], key_finding["length"]) == (expected_key, pem_length)
    assert {h["kind"] for h in report["findings"]} <= {"private-key", "certificate"}
    assert report["scanned"][0]["format"] == "elf"


def test_sarif_report_is_what_code_scanning_accepts(
    dev: Dev, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(
        [
            "scan",
            "--format",
            "sarif",
            str(dev.firmware.elf),
            str(dev.firmware.hex),
            "--key",
            str(dev.key_file),
        ]
    )
    sarif = json.loads(capsys.readouterr().out)
    assert code == 1
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "provguard"
    rules = {rule["id"]: i for i, rule in enumerate(driver["rules"])}
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in {
            "error",
            "warning",
            "note",
        }
    assert run["results"]
    for result in run["results"]:
        assert result["ruleId"] in rules
        assert result["ruleIndex"] == rules[result["ruleId"]]
        assert result["level"] in {"error", "warning", "note"}
        assert result["message"]["text"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] in {str(dev.firmware.elf), str(dev.firmware.hex)}
        if physical["artifactLocation"]["uri"].endswith(".hex"):  # a text file: its record line
            assert physical["region"]["startLine"] >= 1
        else:  # a binary file: bytes, never lines (SARIF 2.1.0 3.30)
            assert set(physical["region"]) == {"byteOffset", "byteLength"}
        assert physical["address"]["absoluteAddress"] >= 0
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is True
    assert invocation["toolExecutionNotifications"] == []
    key_results = [r for r in run["results"] if r["ruleId"] == "provguard/private-key"]
    assert {r["level"] for r in key_results} == {"error"}
    hex_result = next(
        r
        for r in key_results
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".hex")
    )
    line = hex_result["locations"][0]["physicalLocation"]["region"]["startLine"]
    address = dev.firmware.symbols["device_key"]
    record = dev.firmware.hex.read_text().splitlines()[line - 1]
    start = int(record[3:7], 16)
    assert start <= address % 0x10000 < start + int(record[1:3], 16)  # the record holding the key
    elf_result = next(
        r
        for r in key_results
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".elf")
    )
    region = elf_result["locations"][0]["physicalLocation"]["region"]
    data = dev.firmware.elf.read_bytes()[
        region["byteOffset"] : region["byteOffset"] + region["byteLength"]
    ]
    at_key = data.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert at_key, "byteOffset/byteLength do not point at the key"  # never print the key
    assert {"name": "device_key", "kind": "variable"} in elf_result["locations"][0][
        "logicalLocations"
    ]


def test_registries_are_complete() -> None:
    """The registries the CLI and the tests share hold what the help text promises."""
    assert {r.name for r in READERS} == {"elf", "mcuboot", "intel-hex", "raw"}
    assert {d.kind for d in DETECTORS} == {Kind.PRIVATE_KEY, Kind.CERTIFICATE}


def test_signed_hex_with_encrypted_mcuboot_image_is_unchecked(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """app_signed.hex-style: an MCUboot image inside Intel HEX is split into header and payload."""
    for encrypted, expected in ((False, 1), (True, 2)):
        image = images.mcuboot_image(dev.firmware.bin.read_bytes(), encrypted=encrypted)
        signed = IntelHex()
        signed.frombytes(image, offset=0x10000)
        path = tmp_path / f"app_signed_{encrypted}.hex"
        signed.write_hex_file(str(path))
        code, report = scan(capsys, path, "--key", dev.key_file)
        assert code == expected
        if encrypted:
            assert report["findings"] == []
            reason = report["unchecked"][0]["reason"]
            assert "MCUboot image at 0x00010000" in reason
            assert "payload at offset 0x200" in reason
        else:
            [hit] = [h for h in report["findings"] if h["kind"] == "private-key"]
            assert hit["section"] == "mcuboot payload"
            assert (
                hit["address"] == 0x10000 + images.HEADER_SIZE + dev.firmware.symbols["device_key"]
            )


def _detector_samples() -> dict[str, list[bytes]]:
    """What each always-on detector must find on its own (keyed by the detector's name)."""
    ec_key, rsa_key, ed_key = f.ec_key(), f.rsa_key(), ed25519.Ed25519PrivateKey.generate()
    cert = f.make_cert("device", ec_key)
    return {
        "PEM private key": [
            f.key_pem(ec_key),
            f.key_pem(rsa_key, pkcs8=False),
            f.key_pem(ec_key).replace(b"\n", b"\\n"),
            f.key_pem(ec_key, password=b"pw"),
        ],
        "DER private key": [
            f.key_der(ec_key),
            f.key_der(ec_key, pkcs8=False),
            f.key_der(rsa_key, pkcs8=False),
            f.key_der(ed_key),
            short_form_pkcs8(ec_key),
        ],
        "PEM certificate": [f.cert_pem(cert), f.cert_pem(cert).replace(b"\n", b"\r\n")],
        "DER certificate": [f.cert_der(cert), f.cert_der(f.make_cert("rsa", rsa_key))],
    }


def test_every_detector_finds_its_samples_and_ignores_the_others() -> None:
    samples = _detector_samples()
    assert {d.name for d in DETECTORS} == set(samples)  # a new detector needs samples here
    for detector in DETECTORS:
        for name, blobs in samples.items():
            for blob in blobs:
                data = os.urandom(333) + blob + os.urandom(333)
                found = list(detector.find(data))
                if name == detector.name:
                    length = len(blob)
                    if name.startswith("PEM"):  # a PEM block ends at its last "-----"
                        length = len(blob.rstrip(b"\r\n").removesuffix(b"\\n"))
                    assert [(d.start, d.end - d.start) for d in found][:1] == [(333, length)]
                    assert all(d.kind is detector.kind for d in found)
                else:
                    assert [d for d in found if (d.start, d.end) == (333, 333 + len(blob))] == []


def test_detect_finds_what_each_detector_finds_and_skips_no_overlapping_candidate() -> None:
    """`detect` (what the engine runs: fewer passes) finds what the detectors find one by one.
    Each sample follows `30 03 02 01 00` (a SEQUENCE holding INTEGER 0, common in DER data), which
    also reads as the start of a key candidate running into the sample's first byte: a search
    that resumed after a candidate's bytes would skip the sample's own candidate."""
    samples = _detector_samples()
    data, expected = b"", []
    for name, blobs in samples.items():
        for blob in blobs:
            data += os.urandom(97) + b"\x30\x03\x02\x01\x00"
            if name.startswith("DER"):
                kind = Kind.PRIVATE_KEY if "key" in name else Kind.CERTIFICATE
                expected.append((len(data), len(data) + len(blob), kind))
            data += blob
    one_by_one = [d for detector in DETECTORS for d in detector.find(data)]
    assert detect(data) == one_by_one
    found = {(d.start, d.end, d.kind) for d in one_by_one}
    assert set(expected) <= found
    assert len(expected) == 7  # the DER samples above
    for detector in DETECTORS:  # any subset, too
        assert detect(data, [detector]) == list(detector.find(data))


def test_sarif_points_at_the_line_in_a_text_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pre-commit and source scans: GitHub shows the alert on the line where the key begins."""
    path = tmp_path / "config.c"
    path.write_bytes(b"/* device config */\n\nstatic const char key[] =\n" + f.key_pem(f.ec_key()))
    assert main(["scan", "--format", "sarif", str(path)]) == 1
    [result] = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 4
    at_key = path.read_bytes()[region["byteOffset"] :].startswith(b"-----BEGIN PRIVATE KEY-----")
    assert at_key, "byteOffset does not point at the key"  # never print the key
