"""`provguard scan build/` on a sysbuild-shaped build directory (NCS 3.x), made at test time.

The tree is what sysbuild leaves for an MCUboot + application build (see the README): at the top
`merged.hex` (what is flashed: MCUboot, the signed application, and here a key left in the
settings partition), `dfu_application.zip` (the update), `partitions.yml` (the partition manager's
layout) and `domains.yaml`; per image `<image>/zephyr/zephyr.elf|.hex|.bin` and, for the
application, `zephyr.signed.hex|.bin`. Every image is compiled at its partition's address.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from intelhex import IntelHex

from provguard.cli import main
from provguard.credentials import key_fingerprint
from tests import factories as f
from tests import images

pytestmark = pytest.mark.skipif(
    not images.HAVE_TOOLCHAIN and not os.environ.get("CI"), reason="needs arm-none-eabi-gcc"
)

MCUBOOT_PRIMARY = 0xC000
APP = MCUBOOT_PRIMARY + images.HEADER_SIZE
SETTINGS = 0xF8000

PARTITIONS_YML = f"""\
app:
  address: {APP:#x}
  end_address: 0x80000
  region: flash_primary
  size: {0x80000 - APP:#x}
mcuboot:
  address: 0x0
  end_address: {MCUBOOT_PRIMARY:#x}
  placement:
    before: [mcuboot_primary]
  region: flash_primary
  size: {MCUBOOT_PRIMARY:#x}
mcuboot_pad:
  address: {MCUBOOT_PRIMARY:#x}
  end_address: {APP:#x}
  region: flash_primary
  size: {images.HEADER_SIZE:#x}
mcuboot_primary:
  address: {MCUBOOT_PRIMARY:#x}
  end_address: 0x80000
  orig_span: &id001 [mcuboot_pad, app]
  region: flash_primary
  size: {0x80000 - MCUBOOT_PRIMARY:#x}
  span: *id001
settings_storage:
  address: {SETTINGS:#x}
  end_address: 0x100000
  region: flash_primary
  size: 0x8000
sram_primary:
  address: 0x20000000
  end_address: 0x20040000
  region: sram_primary
  size: 0x40000
"""


@dataclass(frozen=True)
class Build:
    root: Path
    device_key: ec.EllipticCurvePrivateKey  # compiled into the application (a leak)
    enc_key: ec.EllipticCurvePrivateKey  # MCUboot's image-decryption key (there on purpose)
    settings_key: ec.EllipticCurvePrivateKey  # left in the settings partition of merged.hex
    app: images.Firmware
    mcuboot: images.Firmware


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    work = tmp_path_factory.mktemp("sysbuild")
    root = work / "build"
    device_key, enc_key, settings_key = f.ec_key(), f.ec_key(), f.ec_key()
    app = images.build_firmware(
        work / "cc-app",
        "zephyr",
        [images.Blob("device_key", f.key_pem(device_key), string=True)],
        flash_origin=APP,
    )
    boot = images.build_firmware(
        work / "cc-mcuboot", "zephyr", [images.Blob("enc_priv_key", f.key_der(enc_key))]
    )
    for image, firmware in (("app", app), ("mcuboot", boot)):
        out = root / image / "zephyr"
        out.mkdir(parents=True)
        for suffix in ("elf", "hex", "bin"):
            (out / f"zephyr.{suffix}").write_bytes(getattr(firmware, suffix).read_bytes())
    signed = images.mcuboot_image(app.bin.read_bytes(), load_addr=0)
    (root / "app" / "zephyr" / "zephyr.signed.bin").write_bytes(signed)
    signed_hex = IntelHex()
    signed_hex.frombytes(signed, offset=MCUBOOT_PRIMARY)
    signed_hex.write_hex_file(str(root / "app" / "zephyr" / "zephyr.signed.hex"))
    merged = IntelHex()
    boot_hex = IntelHex(str(boot.hex))
    for start, end in boot_hex.segments():
        if start < MCUBOOT_PRIMARY:  # MCUboot's flash part (its UICR stays out: one UICR)
            merged.frombytes(boot_hex.tobinarray(start=start, end=end - 1), offset=start)
    merged.frombytes(signed, offset=MCUBOOT_PRIMARY)
    merged.frombytes(os.urandom(64) + f.key_der(settings_key), offset=SETTINGS)
    merged.write_hex_file(str(root / "merged.hex"))
    images.dfu_zip(root / "dfu_application.zip", {"app.signed.bin": signed})
    (root / "partitions.yml").write_text(PARTITIONS_YML)
    (root / "domains.yaml").write_text("default: app\nbuild_dir: .\ndomains:\n  - name: app\n")
    (root / "CMakeCache.txt").write_text("APP_DIR:PATH=/src/app\n")
    return Build(root, device_key, enc_key, settings_key, app, boot)


def scan(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict]:
    code = main(["scan", "--format", "json", *map(str, args)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out)


def test_every_shipped_output_is_read_and_findings_name_their_partition(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = scan(capsys, build.root)
    assert code == 1
    root = build.root
    states = {c["path"]: c["state"] for c in report["coverage"]}
    for shipped in (
        root / "merged.hex",
        root / "app" / "zephyr" / "zephyr.elf",
        root / "app" / "zephyr" / "zephyr.signed.hex",
        root / "app" / "zephyr" / "zephyr.signed.bin",
        root / "mcuboot" / "zephyr" / "zephyr.elf",
    ):
        assert states[str(shipped)] == "found", shipped
    assert states[f"{root / 'dfu_application.zip'}!app.signed.bin"] == "found"
    assert states[str(root / "CMakeCache.txt")] == "read"  # every file, not only images

    device = key_fingerprint(build.device_key)
    in_merged = {
        (h["key"], h["partition"], h["address"])
        for h in report["findings"]
        if h["path"] == str(root / "merged.hex")
    }
    address = build.app.symbols["device_key"]
    assert APP <= address < 0x80000  # the application really sits in its partition
    assert (device, "app", address) in in_merged
    settings = key_fingerprint(build.settings_key)
    assert (settings, "settings_storage", SETTINGS + 64) in in_merged
    enc = key_fingerprint(build.enc_key)
    assert (enc, "mcuboot", build.mcuboot.symbols["enc_priv_key"]) in in_merged
    elf_hit = next(
        h
        for h in report["findings"]
        if h["path"] == str(root / "app" / "zephyr" / "zephyr.elf") and h["key"] == device
    )
    assert (elf_hit["partition"], elf_hit["symbol"]) == ("app", "device_key")
    merged_cover = next(c for c in report["coverage"] if c["path"] == str(root / "merged.hex"))
    assert {p["label"] for p in merged_cover["partitions"]} >= {
        "mcuboot",
        "app",
        "settings_storage",
    }
    # the text report names the partition too
    main(["scan", str(root / "merged.hex")])
    out = capsys.readouterr().out
    assert f"0x{SETTINGS + 64:08X} in partition settings_storage" in out


def test_allowed_symbol_is_allowed_in_the_hex_of_the_same_build(
    build: Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`symbol enc_priv_key` allows MCUboot's key in its ELF and, resolved through that ELF, in
    merged.hex; the application's key and the settings key still fail."""
    allow = tmp_path / "allow.txt"
    allow.write_text("# MCUboot's image-decryption key, on purpose\nsymbol enc_priv_key\n")
    code, report = scan(capsys, build.root, "--allow", allow)
    assert code == 1
    enc = key_fingerprint(build.enc_key)
    root = build.root
    allowed = {(h["path"], h["allowedBy"]) for h in report["allowed"] if h["key"] == enc}
    elf = root / "mcuboot" / "zephyr" / "zephyr.elf"
    assert (str(elf), "symbol enc_priv_key") in allowed
    assert (str(root / "merged.hex"), f"symbol enc_priv_key (resolved through {elf})") in allowed
    assert (
        str(root / "mcuboot" / "zephyr" / "zephyr.hex"),
        f"symbol enc_priv_key (resolved through {elf})",
    ) in allowed
    assert enc not in {h["key"] for h in report["findings"] if h["path"].endswith(".hex")}
    failing = {h["key"] for h in report["findings"]}
    assert {key_fingerprint(build.device_key), key_fingerprint(build.settings_key)} <= failing


def test_allowed_symbol_reaches_raw_and_signed_images_but_not_archive_members(
    build: Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .bin maps to flash from its ELF's lowest load address (after the MCUboot header when
    signed); a dfu_application.zip member is not resolved and still fails (README says so)."""
    allow = tmp_path / "allow.txt"
    allow.write_text("symbol device_key\n")
    code, report = scan(capsys, build.root, "--allow", allow)
    device = key_fingerprint(build.device_key)
    root = build.root
    elf = root / "app" / "zephyr" / "zephyr.elf"
    allowed = {h["path"]: h["allowedBy"] for h in report["allowed"] if h["key"] == device}
    resolved = f"symbol device_key (resolved through {elf})"
    for name in ("zephyr.bin", "zephyr.signed.bin", "zephyr.hex", "zephyr.signed.hex"):
        assert allowed[str(root / "app" / "zephyr" / name)] == resolved, name
    assert allowed[str(root / "merged.hex")] == resolved
    assert allowed[str(elf)] == "symbol device_key"
    failing = {h["path"] for h in report["findings"] if h["key"] == device}
    assert failing == {f"{root / 'dfu_application.zip'}!app.signed.bin"}
    assert code == 1
