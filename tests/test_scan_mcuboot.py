"""`provguard.scan.mcuboot`: images made by the real imgtool at test time, compressed (LZMA2, with
the ARM Thumb filter) and encrypted (ECIES-P256, ECIES-X25519, RSA-OAEP; AES-KW built by hand),
hold a planted key that must be found in the payload as it will run, or be unchecked."""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from provguard.errors import InputError
from provguard.scan.mcuboot import (
    EncKey,
    McubootImage,
    McubootOptions,
    is_mcuboot,
    load_enc_key,
    parse,
)
from tests import containers as c
from tests import factories as f

IMGTOOL = shutil.which("imgtool", path=str(Path(sys.executable).parent)) or shutil.which("imgtool")
HEADER = 0x200
SIGN = ["--header-size", hex(HEADER), "--pad-header", "--align", "4", "--version", "1.2.3"]
SIGN += ["--slot-size", "0x80000"]


def imgtool(*args: str | Path) -> None:
    """imgtool's own command line, run in this process: the code of the `imgtool` script without
    starting Python fifteen times per fixture (mutation runs build the fixture per mutant)."""
    if IMGTOOL is None:
        if os.environ.get("CI"):
            pytest.fail("imgtool is not installed (pyproject.toml dev extra installs it)")
        pytest.skip("needs imgtool")
    from imgtool.main import imgtool as command  # noqa: PLC0415 - only when installed

    with contextlib.redirect_stdout(io.StringIO()):
        command.main(args=[str(a) for a in args], prog_name="imgtool", standalone_mode=False)


@dataclass(frozen=True)
class Built:
    app: bytes = field(repr=False)  # the application binary imgtool signed: holds `key`
    key: bytes = field(repr=False)  # the planted private key (PEM)
    images: dict[str, bytes] = field(repr=False)
    enc_keys: dict[str, Path] = field(default_factory=dict)  # by kind: imgtool encrypted for
    other_keys: dict[str, Path] = field(default_factory=dict)  # same kinds, not used


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    where = tmp_path_factory.mktemp("mcuboot")
    key = c.Secret(f.key_pem(f.ec_key()))
    # compressible, so imgtool keeps the compression (it falls back when it would not shrink)
    app = bytes(range(256)) * 64 + key + b"\x00\xbf\x70\x47" * 4096
    (where / "app.bin").write_bytes(app)
    for name, kind in (
        ("sign-ec", "ecdsa-p256"),
        ("sign-ed", "ed25519"),
        ("sign-rsa", "rsa-2048"),
        ("enc-ec", "ecdsa-p256"),
        ("enc-x25519", "x25519"),
        ("enc-rsa", "rsa-2048"),
        ("other-ec", "ecdsa-p256"),
        ("other-x25519", "x25519"),
    ):
        imgtool("keygen", "-k", where / f"{name}.pem", "-t", kind)
    recipes = {
        "plain": ["-k", "sign-ec.pem"],
        "lzma2": ["-k", "sign-ec.pem", "--compression", "lzma2"],
        "lzma2armthumb": ["-k", "sign-ec.pem", "--compression", "lzma2armthumb"],
        "enc-ec": ["-k", "sign-ec.pem", "--encrypt", "enc-ec.pem"],
        "enc-x25519": ["-k", "sign-ed.pem", "--encrypt", "enc-x25519.pem"],
        "enc-rsa": ["-k", "sign-rsa.pem", "--encrypt", "enc-rsa.pem", "--encrypt-keylen", "256"],
        "enc-ec-lzma2armthumb": [
            "-k", "sign-ec.pem", "--encrypt", "enc-ec.pem", "--compression", "lzma2armthumb"
        ],
    }  # fmt: skip
    images = {}
    for name, args in recipes.items():
        out = where / f"{name}.bin"
        imgtool("sign", *SIGN, *[where / a if a.endswith(".pem") else a for a in args],
                where / "app.bin", out)  # fmt: skip
        images[name] = out.read_bytes()
    return Built(
        app,
        key,
        images,
        {k: where / f"enc-{k}.pem" for k in ("ec", "x25519", "rsa")},
        {k: where / f"other-{k}.pem" for k in ("ec", "x25519")},
    )


def flags(image: bytes) -> int:
    """The header's flags field, read here independently of the module under test."""
    magic, _, hdr_size, _, _, value = struct.unpack_from("<IIHHII", image)
    assert (magic, hdr_size) == (0x96F3B83D, HEADER)
    return int(value)


def keys(*paths: Path) -> McubootOptions:
    return McubootOptions(enc_keys=tuple(load_enc_key(p) for p in paths))


def assert_runs_as(image: McubootImage, app: bytes) -> None:
    """The last derived payload is the application binary (an encrypted one: zero-padded)."""
    final = image.derived[-1].data
    assert c.digest(final[: len(app)]) == c.digest(app)
    assert final[len(app) :] == bytes(len(final) - len(app))


# --- plain and compressed ----------------------------------------------------------------------


def test_plain_image_parts_cover_the_file(built: Built) -> None:
    data = built.images["plain"]
    image = parse(data)
    assert image.unchecked == ()
    assert image.derived == ()
    assert [p.name for p in image.parts] == ["mcuboot header", "mcuboot payload", "mcuboot TLVs"]
    assert b"".join(p.data for p in image.parts) == data
    assert [p.offset for p in image.parts] == [0, HEADER, HEADER + len(built.app)]
    assert image.header is not None
    assert (image.header.img_size, image.header.version) == (len(built.app), "1.2.3+0")
    assert [t.name for t in image.tlvs] == ["SHA256", "KEYHASH", "ECDSASIG"]
    at = data.index(built.key)
    assert image.part_at(at, len(built.key)) == "mcuboot payload"


@pytest.mark.parametrize(("name", "flag"), [("lzma2", 0x400), ("lzma2armthumb", 0xC00)])
def test_compressed_payload_is_decompressed_as_imgtool_wrote_it(
    built: Built, name: str, flag: int
) -> None:
    data = built.images[name]
    assert flags(data) == flag
    c.assert_absent(built.key, data, "the compressed image")  # only decompressing finds it
    assert len(data) < len(built.app) // 4
    image = parse(data)
    assert image.unchecked == ()
    (derived,) = image.derived
    assert "LZMA2" in derived.name
    assert ("ARM Thumb" in derived.name) == (flag == 0xC00)
    assert c.digest(derived.data) == c.digest(built.app)
    assert {"DECOMP_SIZE", "DECOMP_SHA"} <= {t.name for t in image.tlvs if t.protected}


def test_corrupt_or_oversized_compressed_payload_is_unchecked(built: Built) -> None:
    data = bytearray(built.images["lzma2armthumb"])
    middle = HEADER + 40
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    image = parse(bytes(data))
    assert image.derived == ()
    (reason,) = image.unchecked
    assert "compressed and could not be read" in reason
    limited = parse(built.images["lzma2"], McubootOptions(max_payload_bytes=1000))
    assert "more than the limit of 1000 bytes" in limited.unchecked[0]
    both = bytearray(built.images["lzma2"])
    struct.pack_into("<I", both, 16, 0x600)
    assert "no single LZMA format" in parse(bytes(both)).unchecked[0]


@pytest.mark.parametrize("thumb", [False, True])
def test_lzma1_payload(thumb: bool) -> None:
    """LZMA1 (flag 0x200) as nrf_compress reads it: properties, dictionary size, 64-bit size."""
    app = b"\x70\x47\x00\xbf" * 3000 + b"SECRET-MARKER" + bytes(5000)
    chain: list[dict[str, int]] = [{"id": lzma.FILTER_ARMTHUMB}] if thumb else []
    chain.append({"id": lzma.FILTER_LZMA1, "preset": 6})
    stream = lzma.compress(app, format=lzma.FORMAT_RAW, filters=chain)
    props = (2 * 5 + 0) * 9 + 3  # pb 2, lp 0, lc 3: preset 6
    header = bytes([props]) + (8 << 20).to_bytes(4, "little") + len(app).to_bytes(8, "little")
    data = c.mcuboot(header + stream, 0x200 | (0x800 if thumb else 0))
    image = parse(data)
    assert image.unchecked == ()
    assert image.derived[0].data == app


# --- encrypted ---------------------------------------------------------------------------------

ENCRYPTED = [("enc-ec", "ec", 0x4), ("enc-x25519", "x25519", 0x4), ("enc-rsa", "rsa", 0x8)]


@pytest.mark.parametrize(("name", "kind", "flag"), ENCRYPTED)
def test_encrypted_payload_without_its_key_is_unchecked(
    built: Built, name: str, kind: str, flag: int
) -> None:
    data = built.images[name]
    assert flags(data) == flag
    c.assert_absent(built.key, data, "the encrypted image")
    image = parse(data)
    assert image.derived == ()
    (reason,) = image.unchecked
    assert "is encrypted" in reason
    assert "--mcuboot-enc-key" in reason
    assert ("AES-256" if flag == 0x8 else "AES-128") in reason


@pytest.mark.parametrize(("name", "kind", "flag"), ENCRYPTED)
def test_encrypted_payload_is_decrypted_with_its_key(
    built: Built, name: str, kind: str, flag: int
) -> None:
    given = load_enc_key(built.enc_keys[kind])
    image = parse(built.images[name], McubootOptions(enc_keys=(given,)))
    assert image.unchecked == ()
    assert_runs_as(image, built.app)
    (note,) = image.notes
    assert given.fingerprint in note
    assert str(built.enc_keys[kind]) in note


def test_encrypted_and_compressed_payload(built: Built) -> None:
    data = built.images["enc-ec-lzma2armthumb"]
    assert flags(data) == 0xC04
    assert "is encrypted" in parse(data).unchecked[0]
    image = parse(data, keys(built.enc_keys["ec"]))
    assert image.unchecked == ()
    assert [d.name for d in image.derived] == [
        "mcuboot payload (decrypted)",
        "mcuboot payload (decompressed LZMA2 + ARM Thumb filter)",
    ]
    assert c.digest(image.derived[-1].data) == c.digest(built.app)


def test_a_wrong_key_is_unchecked_with_a_clear_reason(built: Built) -> None:
    wrong = load_enc_key(built.other_keys["ec"])
    image = parse(built.images["enc-ec"], McubootOptions(enc_keys=(wrong,)))
    assert image.derived == ()
    (reason,) = image.unchecked
    assert "do not decrypt" in reason
    assert wrong.fingerprint in reason
    c.assert_absent(built.other_keys["ec"].read_bytes(), reason, "the reason")
    other_kind = parse(built.images["enc-x25519"], keys(built.enc_keys["ec"]))
    assert "none of the --mcuboot-enc-key keys is a x25519 key" in other_kind.unchecked[0]
    # among several keys the fitting one is used
    several = keys(built.other_keys["x25519"], built.enc_keys["rsa"], built.enc_keys["x25519"])
    assert_runs_as(parse(built.images["enc-x25519"], several), built.app)


def test_aes_key_wrap(tmp_path: Path, built: Built) -> None:
    kek = os.urandom(16)
    image_key = os.urandom(16)
    encryptor = Cipher(algorithms.AES(image_key), modes.CTR(bytes(16))).encryptor()
    cipher = encryptor.update(built.app) + encryptor.finalize()
    data = c.mcuboot(cipher, 0x4, tlvs=((0x31, aes_key_wrap(kek, image_key)),), plain=built.app)
    (tmp_path / "kek.bin").write_bytes(kek)
    (tmp_path / "wrong.bin").write_bytes(os.urandom(16))
    image = parse(data, keys(tmp_path / "kek.bin"))
    assert image.unchecked == ()
    assert c.digest(image.derived[0].data) == c.digest(built.app)
    assert "do not decrypt" in parse(data, keys(tmp_path / "wrong.bin")).unchecked[0]


def test_a_key_that_unwraps_but_does_not_match_the_image_hash(built: Built) -> None:
    data = bytearray(built.images["enc-ec"])
    data[HEADER + 100] ^= 1  # a damaged payload: the image key still unwraps
    image = parse(bytes(data), keys(built.enc_keys["ec"]))
    assert image.derived == ()
    assert "not to the image's SHA256" in image.unchecked[0]


# --- truncated and boundaries ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "payload", "tlvs", "tlv-info"])
def test_truncated_image_is_unchecked_and_still_searched_whole(built: Built, where: str) -> None:
    data = built.images["plain"]
    cut = {
        "header": 20,
        "payload": HEADER + 1000,
        "tlvs": len(data) - 10,
        "tlv-info": HEADER + len(built.app) + 2,
    }[where]
    image = parse(data[:cut])
    (reason,) = image.unchecked
    assert "truncated MCUboot image" in reason
    assert image.whole == data[:cut]
    assert image.derived == ()


def test_a_key_across_the_header_payload_boundary(built: Built) -> None:
    key = c.Secret(f.key_pem(f.ec_key()))
    data = bytearray(built.images["plain"])
    split = 100
    data[HEADER - split : HEADER + len(key) - split] = key  # header padding + payload
    image = parse(bytes(data))
    assert image.unchecked == ()
    at = image.whole.index(key)
    assert at == HEADER - split
    assert image.part_at(at, len(key)) == "mcuboot header+mcuboot payload"
    assert not any(key in p.data for p in image.parts)


def test_a_key_across_the_payload_tlv_boundary(built: Built) -> None:
    key = c.Secret(f.key_pem(f.ec_key()))
    data = bytearray(built.images["plain"])
    end = HEADER + len(built.app)
    data[end - 100 : end - 100 + len(key)] = key  # over the TLV area's start
    image = parse(bytes(data))
    assert "no TLV area" in image.unchecked[0]
    at = image.whole.index(key)
    assert at == end - 100
    assert image.part_at(at, len(key)) == "mcuboot payload+mcuboot TLV area (malformed)"
    assert not any(key in p.data for p in image.parts)


def test_not_an_image() -> None:
    assert not is_mcuboot(b"\x96\xf3\xb8\x3d")  # big-endian magic
    assert is_mcuboot(struct.pack("<I", 0x96F3B83D))
    image = parse(os.urandom(64))
    assert image.unchecked == ("not an MCUboot image (no header magic)",)


# --- keys --------------------------------------------------------------------------------------


def test_enc_key_files_that_cannot_be_used(tmp_path: Path, built: Built) -> None:
    secret = f.ec_key()
    locked = tmp_path / "locked.pem"
    locked.write_bytes(f.key_pem(secret, password=b"pw"))
    ed = tmp_path / "ed.pem"
    ed.write_bytes(f.key_pem(ed25519.Ed25519PrivateKey.generate()))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(20))
    pipe = tmp_path / "key.fifo"
    os.mkfifo(pipe)
    for path, words in (
        (locked, "password-protected"),
        (ed, "not an MCUboot encryption key"),
        (junk, "no MCUboot encryption key could be read"),
        (pipe, "FIFO"),
    ):
        with pytest.raises(InputError, match=words) as caught:
            load_enc_key(path)
        assert caught.value.path == str(path)
    given = load_enc_key(built.enc_keys["rsa"])
    assert isinstance(given, EncKey)
    text = repr(given) + repr(parse(built.images["enc-rsa"], McubootOptions(enc_keys=(given,))))
    shown = [word for word in ("PRIVATE KEY", "secret", "whole") if word in text]
    assert shown == []  # neither the key, nor the image bytes, are in a repr
