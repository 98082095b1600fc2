"""The engine's rules that reach inside containers: an allowlist entry by key fingerprint applies
to a key in an archive member as it does to one in a plain file (a `symbol` entry cannot: a
member has no ELF next to it, see test_scan_sysbuild.py).

Fingerprints are computed here (SHA-256 of the key's SubjectPublicKeyInfo); offsets are where
the test put the key.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard.cli import main
from tests import factories as f

PAD = b"\xff" * 100


def fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + hashlib.sha256(spki).hexdigest()


def zipped(path: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return path


def tarred(path: Path, name: str, data: bytes) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("pack", [zipped, tarred], ids=["zip", "tar.gz"])
def test_a_key_allowed_by_its_fingerprint_is_allowed_inside_an_archive_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pack: object
) -> None:
    allowed, other = f.ec_key(), f.ec_key()
    data = PAD + f.key_der(allowed) + PAD + f.key_der(other) + PAD
    assert callable(pack)
    archive = pack(tmp_path / "release.pkg", "app.bin", data)
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# the bootloader's key, on purpose\nkey {fingerprint(allowed)}\n")
    code = main(
        ["scan", str(archive), "--allow", str(allow), "--format", "json", "--quiet", "--jobs", "1"]
    )
    report = json.loads(capsys.readouterr().out)
    member = f"{archive}!app.bin"
    second = len(PAD) * 2 + len(f.key_der(allowed))
    assert [(x["path"], x["fileOffset"], x["key"], x["allowedBy"]) for x in report["allowed"]] == [
        (member, len(PAD), fingerprint(allowed), f"key {fingerprint(allowed)}")
    ]
    assert [(x["path"], x["fileOffset"], x["key"]) for x in report["findings"]] == [
        (member, second, fingerprint(other))
    ]
    assert code == 1  # the other key still fails the gate
