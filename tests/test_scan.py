"""`provguard scan` on real ARM images: every key encoding, known and unknown, EC and RSA.

The images are compiled at test time (tests/images.py): one ELF holds every encoding of a known
EC P-256 and RSA-2048 key as its own symbol, so each finding can be checked against the symbol,
section and flash address the toolchain gave it; the same image as Intel HEX (with a gap and a
UICR segment) and as a raw .bin must give the same findings at the same addresses.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from intelhex import IntelHex

from provguard.cli import main
from provguard.credentials import key_fingerprint
from provguard.errors import InputError
from provguard.scan import KEY_ENCODINGS, hexfile
from provguard.scan.hexfile import parse_intel_hex
from tests import factories as f
from tests import images

pytestmark = pytest.mark.skipif(not images.HAVE_TOOLCHAIN, reason="needs arm-none-eabi-gcc")


@dataclass(frozen=True)
class Keys:
    ec: ec.EllipticCurvePrivateKey
    rsa: rsa.RSAPrivateKey
    ec_file: Path
    rsa_file: Path


@dataclass(frozen=True)
class Expect:
    symbol: str
    key: str  # fingerprint
    encoding: str  # expected start of the finding's encoding
    self_describing: bool
    section: str = ".rodata"


@dataclass(frozen=True)
class Matrix:
    firmware: images.Firmware
    expected: tuple[Expect, ...]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    where = tmp_path_factory.mktemp("keys")
    ec_key, rsa_key = f.ec_key(), f.rsa_key()
    return Keys(
        ec_key,
        rsa_key,
        images.write_private(where / "device-ec.key", f.key_pem(ec_key)),
        images.write_private(where / "device-rsa.key", f.key_pem(rsa_key, pkcs8=False)),
    )


def _symbol(*parts: str) -> str:
    return "_".join("".join(c if c.isalnum() else "_" for c in p.lower()) for p in parts)


@pytest.fixture(scope="module")
def matrix(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """Every encoding of both keys (KEY_ENCODINGS) and every PEM layout, each its own symbol."""
    blobs: list[images.Blob] = []
    expected: list[Expect] = []
    for label, key in (("ec", keys.ec), ("rsa", keys.rsa)):
        fp = key_fingerprint(key)
        seen: set[str] = set()
        for encoding in KEY_ENCODINGS:
            for name, data in encoding.encode(key):
                symbol = _symbol(label, name)
                while symbol in seen:
                    symbol += "_u"  # the upper-case hex variant
                seen.add(symbol)
                blobs.append(images.Blob(symbol, data))
                expected.append(Expect(symbol, fp, name, encoding.self_describing))
        for pkcs8 in (True, False):
            form = "PKCS#8" if pkcs8 else ("SEC1" if label == "ec" else "PKCS#1")
            for layout, text in images.pem_layouts(f.key_pem(key, pkcs8=pkcs8)).items():
                symbol = _symbol(label, "pem", form, layout)
                blobs.append(images.Blob(symbol, text, string=True))
                expected.append(Expect(symbol, fp, f"PEM {form}", True))
        # a writable copy (.data: in flash at its load address, in RAM at run time)
        symbol = f"{label}_device_key_der"
        blobs.append(images.Blob(symbol, f.key_der(key), section="data"))
        expected.append(Expect(symbol, fp, "PKCS#8 DER", True, ".data"))
    # beyond the gap, and in the UICR segment of the HEX
    blobs.append(images.Blob("far_key", f.key_der(keys.ec, pkcs8=False), section="far"))
    expected.append(Expect("far_key", key_fingerprint(keys.ec), "SEC1 DER", True, ".far"))
    blobs.append(images.Blob("uicr_key", f.key_der(keys.ec), section="uicr"))
    expected.append(Expect("uicr_key", key_fingerprint(keys.ec), "PKCS#8 DER", True, ".uicr"))
    firmware = images.build_firmware(tmp_path_factory.mktemp("matrix"), "dev", blobs)
    return Matrix(firmware, tuple(expected))


def scan_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict]:
    code = main(["scan", "--format", "json", *map(str, args)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


def assert_no_key_material(text: str, *keys: object) -> None:
    for key in keys:
        assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
        der = f.key_der(key)
        for secret in (
            base64.b64encode(der)[40:80].decode(),
            der[40:80].hex(),
            der[40:80].hex().upper(),
        ):
            assert secret not in text


def by_symbol(findings: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for finding in findings:
        out.setdefault(finding["symbol"], []).append(finding)
    return out


def test_toolchain_placed_every_blob(matrix: Matrix) -> None:
    missing = [e.symbol for e in matrix.expected if e.symbol not in matrix.firmware.symbols]
    assert not missing


def test_known_keys_found_in_every_encoding_in_the_elf(
    matrix: Matrix, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = scan_json(
        capsys, matrix.firmware.elf, "--key", keys.ec_file, "--key", keys.rsa_file
    )
    assert code == 1
    found = by_symbol(report["findings"])
    for expect in matrix.expected:
        hits = found.get(expect.symbol, [])
        assert len(hits) == 1, (expect, hits)
        hit = hits[0]
        assert hit["kind"] == "private-key"
        assert hit["key"] == expect.key
        assert hit["encoding"].startswith(expect.encoding), (expect, hit["encoding"])
        assert hit["section"] == expect.section
        assert hit["address"] == matrix.firmware.symbols[expect.symbol], expect
        assert hit["known"] in (str(keys.ec_file), str(keys.rsa_file))
    assert set(found) == {e.symbol for e in matrix.expected}  # nothing else (code, padding)
    assert_no_key_material(json.dumps(report), keys.ec, keys.rsa)


def test_unknown_keys_found_when_they_describe_themselves(
    matrix: Matrix, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --key: PEM and DER are found and parsed; raw/hex/headerless base64 cannot be."""
    code, report = scan_json(capsys, matrix.firmware.elf)
    assert code == 1
    found = by_symbol(report["findings"])
    for expect in matrix.expected:
        if expect.self_describing:
            assert [h["key"] for h in found.get(expect.symbol, [])] == [expect.key], expect
            assert found[expect.symbol][0]["known"] is None
            assert found[expect.symbol][0]["encoding"].startswith(expect.encoding)
        else:
            assert expect.symbol not in found, expect
    # the parsed key's algorithm is named (the symbol must exist: a typo here hid this before)
    [ec_hit] = found[_symbol("ec", "PKCS#8 DER")]
    assert ec_hit["encoding"] == "PKCS#8 DER (EC secp256r1)"
    [rsa_hit] = found[_symbol("rsa", "PKCS#8 DER")]
    assert rsa_hit["encoding"] == "PKCS#8 DER (RSA-2048)"


def test_hex_gives_the_same_findings_at_the_same_flash_addresses(
    matrix: Matrix, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--key", keys.ec_file, "--key", keys.rsa_file)
    _, elf = scan_json(capsys, matrix.firmware.elf, *args)
    code, hex_report = scan_json(capsys, matrix.firmware.hex, *args)
    assert code == 1
    assert hex_report["scanned"][0]["format"] == "intel-hex"

    def where(report: dict) -> set[tuple[int, int, str]]:
        return {(h["address"], h["length"], h["key"]) for h in report["findings"]}

    assert where(hex_report) == where(elf)
    uicr = [h for h in hex_report["findings"] if h["address"] >= images.UICR]
    assert [h["address"] for h in uicr] == [matrix.firmware.symbols["uicr_key"]]


def test_fast_hex_reader_agrees_with_intelhex(matrix: Matrix) -> None:
    """intelhex stays the reference: the fast reader must give exactly its segments."""
    reference = IntelHex(str(matrix.firmware.hex))
    expected = [(a, reference.tobinstr(a, b - 1)) for a, b in reference.segments()]
    ours = parse_intel_hex(matrix.firmware.hex.read_bytes(), "dev.hex")
    same = [(s.address, s.data) for s in ours] == expected
    assert same, "differs from intelhex"  # the image holds keys: never print its bytes
    assert len(ours) >= 3  # flash, the far region after a gap, UICR
    assert ours[-1].address == images.UICR


def test_fast_hex_path_reads_objcopy_output_and_refuses_any_damage(matrix: Matrix) -> None:
    text = matrix.firmware.hex.read_bytes()
    assert hexfile.HexDecoder()._fast(text)  # the fast path is the one taken
    lines = text.splitlines(keepends=True)
    middle = len(lines) // 2
    for damage in (b"checksum", b"address"):
        broken = list(lines)
        line = bytearray(broken[middle])
        if damage == b"checksum":
            line[12] = ord("A") if line[12] != ord("A") else ord("B")
        else:  # same checksum, but the record claims another address: not consecutive
            line[5], line[6] = line[6], line[5]
            if line[5] == line[6]:
                continue
            total = -sum(binascii.unhexlify(bytes(line[1:-4]))) & 0xFF
            line[-4:-2] = f"{total:02X}".encode()
        broken[middle] = bytes(line)
        damaged = b"".join(broken)
        if damage == b"checksum":  # a moved record is valid: it is read where it says
            assert not hexfile.HexDecoder()._fast(damaged), damage
        reference = _intelhex_segments(damaged)
        if damage == b"checksum":
            assert reference is None
            with pytest.raises(InputError, match=f"dev.hex:{middle + 1}: .*checksum"):
                parse_intel_hex(damaged, "dev.hex")
        elif reference is None:  # the moved record now overlaps others: both readers refuse
            with pytest.raises(InputError, match="overlaps"):
                parse_intel_hex(damaged, "dev.hex")
        else:
            same = [(s.address, s.data) for s in parse_intel_hex(damaged, "dev.hex")] == reference
            assert same, "differs from intelhex"  # never print the image's key bytes


def _intelhex_segments(text: bytes) -> list[tuple[int, bytes]] | None:
    try:
        reference = IntelHex(io.StringIO(text.decode()))
    except Exception:
        return None
    return [(a, reference.tobinstr(a, b - 1)) for a, b in reference.segments()]


@pytest.mark.parametrize("seed", range(6))
def test_random_hex_layouts_read_like_intelhex(seed: int) -> None:
    """Random segments, record sizes and addresses (beyond 64 KiB, 1 MiB): same as intelhex."""
    rng = random.Random(seed)
    source = IntelHex()
    address = rng.randrange(0, 0x20000)
    for _ in range(rng.randrange(1, 6)):
        size = rng.randrange(1, 5000)
        source.frombytes(rng.randbytes(size), offset=address)
        address += size + rng.choice([0, 1, 15, 300, 0x10000, 0xF00000])
    out = io.StringIO()
    source.write_hex_file(out, byte_count=rng.choice([8, 16, 32, 255]))
    text = out.getvalue().encode()
    expected = _intelhex_segments(text)
    assert [(s.address, s.data) for s in parse_intel_hex(text, "r.hex")] == expected


@pytest.mark.parametrize(
    "variant",
    [
        lambda t: t.replace(b"\r\n", b"\n"),  # LF (objcopy writes CRLF)
        lambda t: t.lower(),
        lambda t: t.replace(b"\n:", b"\n\n:"),  # blank lines: the careful path
    ],
)
def test_hex_layout_variants_read_like_intelhex(matrix: Matrix, tmp_path: Path, variant) -> None:
    path = tmp_path / "variant.hex"
    path.write_bytes(variant(matrix.firmware.hex.read_bytes()))
    reference = IntelHex(str(path))
    expected = [(a, reference.tobinstr(a, b - 1)) for a, b in reference.segments()]
    same = [(s.address, s.data) for s in parse_intel_hex(path.read_bytes(), "v.hex")] == expected
    assert same, "differs from intelhex"  # the image holds keys: never print its bytes


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (lambda t: t.rsplit(b":", 1)[0], "no end-of-file record"),
        (lambda t: t + b":0400000500000000F7\n", "record after the end-of-file record"),
        (lambda t: re.sub(rb"\r?\n:", b":", t, count=1), "bad hex digits"),  # two records, a line
        (lambda t: t.replace(b":10", b":1G", 1), "bad hex digits"),
    ],
)
def test_hex_damage_is_refused_naming_the_file(matrix: Matrix, variant, message: str) -> None:
    with pytest.raises(InputError, match=message) as refused:
        parse_intel_hex(variant(matrix.firmware.hex.read_bytes()), "dev.hex")
    assert refused.value.path == "dev.hex"


def test_raw_bin_with_base_address(
    matrix: Matrix, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = scan_json(capsys, matrix.firmware.bin, "--key", keys.ec_file)
    assert code == 1
    found = {(h["address"], h["key"]) for h in report["findings"]}
    ec_fp = key_fingerprint(keys.ec)
    address = matrix.firmware.symbols["ec_device_key_der"]  # .data: its load address in flash
    assert (address, ec_fp) in found
    assert all(h["fileOffset"] == h["address"] for h in report["findings"])
    _, unshifted = scan_json(capsys, matrix.firmware.bin)
    _, shifted = scan_json(capsys, matrix.firmware.bin, "--base-address", "0x8000")
    assert sorted(h["address"] + 0x8000 for h in unshifted["findings"]) == sorted(
        h["address"] for h in shifted["findings"]
    )
    assert address + 0x8000 in {h["address"] for h in shifted["findings"]}


@pytest.fixture(scope="module")
def traps(tmp_path_factory: pytest.TempPathFactory) -> images.Firmware:
    """A release-looking image full of things that are not private keys."""
    public = f.ec_key().public_key()
    rsa_public = f.rsa_key().public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    mbedtls_labels = b"\0".join(
        f"-----{edge} {label}-----".encode()
        for label in (
            "EC PRIVATE KEY",
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "CERTIFICATE",
            "PUBLIC KEY",
            "X509 CRL",
        )
        for edge in ("BEGIN", "END")
    )
    blobs = [
        images.Blob("mbedtls_pem_labels", mbedtls_labels),
        images.Blob("pem_begin_private", b"-----BEGIN PRIVATE KEY-----", string=True),
        images.Blob(
            "pem_label_no_body",
            b"-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n",
            string=True,
        ),
        images.Blob("ecdsa_pub_key", public.public_bytes(serialization.Encoding.DER, spki)),
        images.Blob(
            "ec_point",
            public.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            ),
        ),
        images.Blob("rsa_pub_spki", rsa_public.public_bytes(serialization.Encoding.DER, spki)),
        images.Blob(
            "rsa_pub_pkcs1",
            rsa_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
        ),
        images.Blob("pub_pem", public.public_bytes(serialization.Encoding.PEM, spki), string=True),
        images.Blob("random_64k", os.urandom(64 * 1024), section="far"),
        images.Blob("version", b"provguard-demo 1.0.0 (release)", string=True),
        images.Blob(
            "der_like_header",
            bytes.fromhex(
                "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420"
            )
            + bytes(32),
        ),
    ]
    return images.build_firmware(tmp_path_factory.mktemp("traps"), "release", blobs)


@pytest.mark.parametrize("kind", ["elf", "hex", "bin"])
def test_false_positive_traps_are_clean(
    traps: images.Firmware, keys: Keys, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = getattr(traps, kind)
    code, report = scan_json(
        capsys, path, "--key", keys.ec_file, "--key", keys.rsa_file, "--fail-on", "certificate"
    )
    assert report["findings"] == []
    assert code == 0


def test_random_bytes_are_clean(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(os.urandom(64 * 1024))
    code, report = scan_json(capsys, path, "--key", keys.ec_file, "--fail-on", "certificate")
    assert (code, report["findings"]) == (0, [])


def test_text_report_names_file_address_symbol_and_fingerprint(
    matrix: Matrix, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["scan", str(matrix.firmware.elf), "--key", str(keys.ec_file)])
    out = capsys.readouterr().out
    assert code == 1
    line = next(x for x in out.splitlines() if "symbol ec_device_key_der" in x)
    address = matrix.firmware.symbols["ec_device_key_der"]
    assert line.startswith(f"{matrix.firmware.elf}: FAIL: private-key PKCS#8 DER")
    assert f"0x{address:08X} in .data symbol ec_device_key_der" in line
    assert key_fingerprint(keys.ec) in line
    assert out.splitlines()[-1].endswith("fail on private-key: FAIL")
    assert_no_key_material(out, keys.ec, keys.rsa)
