"""The engine's archive path (`_scan_archive`): each member of a zip or tar is read as an image
when it fits one window and searched raw window by window when it does not; every member ends
with its own coverage (format, size, findings, notes, unchecked), an archive lists its members,
a nested archive is covered member by member, the archive limits given on the command line
reach the reader, and a damaged archive's own bytes are still searched.

Windows are made small here (`ArchiveLimits.window_bytes`) so a member spans several of them
without writing megabytes. Offsets, sizes and window starts are computed from what each test
built; fingerprints are SHA-256 of the key's SubjectPublicKeyInfo.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from provguard.cli import main
from provguard.scan.allow import parse_allowlist
from provguard.scan.archive import ArchiveLimits
from provguard.scan.engine import Context, _scan_archive
from provguard.scan.known import KnownIndex
from provguard.scan.model import Coverage, ScanResult
from provguard.scan.readers import Options
from tests import factories as f
from tests.factories import spki_fingerprint as fingerprint

WINDOW = 4096
OVERLAP = 512
STEP = WINDOW - OVERLAP  # where each window after the first starts in its member
HEADERS = "(zip headers and central directory)"


def filler(size: int) -> bytes:
    """Bytes that hold no key and are no text: 0xff with a NUL now and then."""
    return (b"\xff" * 63 + b"\0") * (size // 64) + b"\xff" * (size % 64)


def planted(size: int, keys: dict[int, bytes]) -> bytes:
    data = bytearray(filler(size))
    for offset, der in keys.items():
        data[offset : offset + len(der)] = der
    return bytes(data)


def small_windows(**limits: int) -> ArchiveLimits:
    return ArchiveLimits(window_bytes=WINDOW, overlap_bytes=OVERLAP, **limits)


def scan_file(path: Path, fmt: str, limits: ArchiveLimits, allow: str | None = None) -> ScanResult:
    allowlist = parse_allowlist(allow, "allow.txt") if allow is not None else None
    ctx = Context(KnownIndex([]), allowlist, Options(archive=limits))
    with open(path, "rb") as stream:
        return _scan_archive(stream, str(path), fmt, ctx)


def by_path(result: ScanResult) -> dict[str, Coverage]:
    paths = [c.path for c in result.coverage]
    assert len(paths) == len(set(paths)), paths  # one coverage per member
    return {c.path: c for c in result.coverage}


def members_of(cover: Coverage) -> list[str]:
    return list(cover.members)


def window_of(offset: int, length: int) -> int:
    """The start of the first window that holds `length` bytes at `offset` whole."""
    start = 0
    while offset + length > start + WINDOW:
        start += STEP
    return start


def raw_section(offset: int, length: int) -> str:
    start = window_of(offset, length)
    return f"byte {offset - start} of member bytes from {start}"


# --- members: whole ones read as images, large ones searched window by window ------------------


def test_every_member_has_its_own_coverage_and_findings_named_by_member(tmp_path: Path) -> None:
    allowed, first, edge, second, third = (f.ec_key() for _ in range(5))
    pad = filler(100)
    small = pad + f.key_der(allowed) + pad  # parsed whole: raw image
    # four windows: a key and the allowed key in the first, a key in the overlap of the first
    # and the second (found once), a key in the second, nothing in the last two
    at_first, at_allowed, at_edge, at_second = 1000, 2500, STEP + 16, 5000
    keys = {at_first: first, at_allowed: allowed, at_edge: edge, at_second: second}
    big = planted(3 * STEP + 1000, {at: f.key_der(key) for at, key in keys.items()})
    assert at_edge + len(f.key_der(edge)) <= WINDOW  # wholly in both windows
    line = b"# device credentials\n"
    text = line + f.key_pem(third) + b"\n"  # parsed whole: text image
    tail = filler(300)  # parsed whole, nothing in it
    assert len(small) < WINDOW < len(big)
    assert len(text) < WINDOW
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("allowed.bin", small)
        z.writestr("big.bin", big)
        z.writestr("notes.txt", text)
        z.writestr("dir/", b"")
        z.writestr("tail.bin", tail)

    result = scan_file(archive, "zip", small_windows(), allow=f"key {fingerprint(allowed)}\n")

    name = str(archive)
    assert [(x.path, x.key, x.section, x.file_offset, x.line) for x in result.findings] == [
        *(
            (f"{name}!big.bin", fingerprint(key), raw_section(at, len(f.key_der(key))), None, None)
            for at, key in keys.items()
            if key is not allowed
        ),
        (f"{name}!notes.txt", fingerprint(third), None, len(line), None),
    ]
    assert [(x.path, x.key, x.allowed_by) for x in result.allowed] == [
        (f"{name}!allowed.bin", fingerprint(allowed), f"key {fingerprint(allowed)}"),
        (f"{name}!big.bin", fingerprint(allowed), f"key {fingerprint(allowed)}"),
    ]
    cover = by_path(result)
    # (format, size, examined, ranges, unchecked, notes, findings)
    row = {
        path: (c.format, c.size, c.examined, c.ranges, c.unchecked, c.notes, c.findings)
        for path, c in cover.items()
    }
    assert row[f"{name}!allowed.bin"] == ("raw", len(small), len(small), (), (), (), 0)
    assert row[f"{name}!big.bin"] == ("raw", len(big), len(big), (), (), (), len(keys) - 1)
    assert row[f"{name}!notes.txt"] == ("text", len(text), len(text), (), (), (), 1)
    assert row[f"{name}!dir/"] == ("directory", 0, 0, (), (), ("directory entry",), 0)
    assert row[f"{name}!tail.bin"] == ("raw", len(tail), len(tail), (), (), (), 0)
    members = ["allowed.bin", "big.bin", "notes.txt", "dir/", "tail.bin", HEADERS]
    assert row[name] == ("zip", archive.stat().st_size, 0, (), (), (), 0)
    assert members_of(cover[name]) == members
    assert set(cover) == {name, *(f"{name}!{m}" for m in members)}


def test_a_whole_member_keeps_its_reader_s_format_but_no_flash_addresses(tmp_path: Path) -> None:
    key = f.ec_key()
    der = f.key_der(key)
    raw = filler(64) + der
    text = b"key:\n" + f.key_pem(key)
    archive = tmp_path / "fw.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("app.bin", raw)
        z.writestr("key.txt", text)

    result = scan_file(archive, "zip", ArchiveLimits())

    name = str(archive)
    assert [(x.path, x.address, x.file_offset) for x in result.findings] == [
        (f"{name}!app.bin", 64, 64),
        (f"{name}!key.txt", 0 + len(b"key:\n"), len(b"key:\n")),
    ]
    cover = by_path(result)
    assert [(cover[p].format, cover[p].ranges) for p in (f"{name}!app.bin", f"{name}!key.txt")] == [
        ("raw", ()),
        ("text", ()),
    ]


# --- nested archives ---------------------------------------------------------------------------


def _inner_zip(key: ec.EllipticCurvePrivateKey, at: int, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:  # stored: the key is in the inner zip's raw bytes too
        z.writestr("k.bin", planted(size, {at: f.key_der(key)}))
    return buffer.getvalue()


@pytest.mark.parametrize("inner_size", [400, 3 * WINDOW], ids=["whole", "windowed"])
def test_a_nested_archive_is_covered_member_by_member(tmp_path: Path, inner_size: int) -> None:
    key = f.ec_key()
    at = 150
    inner = _inner_zip(key, at, inner_size)
    archive = tmp_path / "outer.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inner.zip", inner)
        z.writestr("app.bin", filler(100))

    result = scan_file(archive, "zip", small_windows())

    name = str(archive)
    nested = f"{name}!inner.zip"
    found = [(x.file_offset, x.section) for x in result.findings if x.path == f"{nested}!k.bin"]
    # a member of one window is parsed whole (a file offset); a larger one is searched raw
    length = len(f.key_der(key))
    assert found == [(at, None) if inner_size < WINDOW else (None, raw_section(at, length))]
    # the inner zip's own bytes are searched too (stored member: the key is in them)
    assert [x.path for x in result.findings].count(nested) == 1
    cover = by_path(result)
    inner_cover = cover[nested]
    assert (inner_cover.format, inner_cover.size, inner_cover.examined, inner_cover.findings) == (
        "zip (nested)",
        len(inner),
        len(inner),
        1,
    )
    assert inner_cover.unchecked == ()
    assert members_of(inner_cover) == ["k.bin", HEADERS]
    assert members_of(cover[name]) == ["inner.zip", "app.bin", HEADERS]
    assert cover[f"{nested}!k.bin"].findings == 1
    assert cover[f"{nested}!k.bin"].size == inner_size


@pytest.mark.parametrize("inner_size", [400, 3 * WINDOW], ids=["whole", "windowed"])
def test_a_nested_archive_past_the_depth_limit_is_unchecked_with_its_reason(
    tmp_path: Path, inner_size: int
) -> None:
    key = f.ec_key()
    inner = _inner_zip(key, 150, inner_size)
    archive = tmp_path / "outer.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inner.zip", inner)

    result = scan_file(archive, "zip", small_windows(max_depth=0))

    name = str(archive)
    nested = f"{name}!inner.zip"
    reason = "archive nested deeper than 0 levels: its members are not read, only its raw bytes"
    cover = by_path(result)
    assert [(u.path, u.reason) for u in cover[nested].unchecked] == [(nested, reason)]
    assert (cover[nested].size, cover[nested].examined, cover[nested].members) == (
        len(inner),
        len(inner),
        (),
    )
    assert cover[nested].format.endswith(" (nested)")
    # its members are not read; its raw bytes still are
    assert [x.path for x in result.findings] == [nested]
    assert set(cover) == {name, nested, f"{name}!{HEADERS}"}


# --- limits and formats from the command line --------------------------------------------------


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["scan", *args, "--format", "json", "--quiet", "--jobs", "1"])
    return code, json.loads(capsys.readouterr().out)


def test_max_member_size_reaches_the_archive_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    data = filler(100) + f.key_der(key) + filler(100)
    limit = len(data) - 1
    archive = tmp_path / "fw.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.bin", data)

    code, report = run_json([str(archive), "--max-member-size", str(limit)], capsys)

    member = f"{archive}!app.bin"
    reason = f"member larger than the limit of {limit} bytes"
    assert [(u["path"], u["reason"]) for u in report["unchecked"]] == [(member, reason)]
    [cover] = [c for c in report["coverage"] if c["path"] == member]
    assert cover["notes"] == []  # the reason is an unchecked part, not a note
    assert [u["reason"] for u in cover["unchecked"]] == [reason]
    assert code != 0


def _tar_without_magic(name: str, data: bytes) -> bytes:
    """A pre-POSIX (v7) tar: no `ustar` magic, so only its name makes it a tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    raw = bytearray(buffer.getvalue())
    raw[257:265] = b"\0" * 8  # magic and version
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    return bytes(raw)


def test_a_tar_known_by_its_name_only_is_read_member_by_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    at = 40
    archive = tmp_path / "fw.tar"
    archive.write_bytes(_tar_without_magic("app.bin", planted(300, {at: f.key_der(key)})))

    code, report = run_json([str(archive)], capsys)

    assert [(x["path"], x["fileOffset"]) for x in report["findings"]] == [
        (f"{archive}!app.bin", at)
    ]
    assert report["unchecked"] == []
    assert code == 1


# --- a damaged archive: its own bytes searched raw, after what its members gave -----------------


def test_a_truncated_tar_keeps_its_members_findings_and_is_searched_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaked, allowed = f.ec_key(), f.ec_key()
    pad = filler(100)
    first = pad + f.key_der(leaked) + pad + f.key_der(allowed) + pad
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as t:
        for member, data in (("a.bin", first), ("b.bin", filler(3000))):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    block = 512
    a_blocks = -(-len(first) // block)
    cut = block + a_blocks * block + block + 1000  # in the middle of b.bin's data
    archive = tmp_path / "fw.tar"
    archive.write_bytes(buffer.getvalue()[:cut])
    allow = tmp_path / "allow.txt"
    allow.write_text(f"key {fingerprint(allowed)}\n")

    code, report = run_json([str(archive), "--allow", str(allow)], capsys)

    name = str(archive)
    leak_at = len(pad)
    allow_at = 2 * len(pad) + len(f.key_der(leaked))
    assert [(x["path"], x["fileOffset"], x["key"]) for x in report["findings"]] == [
        (f"{name}!a.bin", leak_at, fingerprint(leaked)),
        (name, block + leak_at, fingerprint(leaked)),  # a.bin's data follows its header
    ]
    assert [(x["path"], x["fileOffset"]) for x in report["allowed"]] == [
        (f"{name}!a.bin", allow_at),
        (name, block + allow_at),
    ]
    [cover] = [c for c in report["coverage"] if c["path"] == name]
    assert (cover["format"], cover["size"], cover["examined"], cover["findings"]) == (
        "tar",
        cut,
        cut,
        1,
    )
    assert cover["notes"] == ["searched as raw bytes"]
    assert cover["members"] == ["a.bin", "b.bin"]
    assert [u["path"] for u in cover["unchecked"]] == [name]
    assert code == 1


def test_members_that_end_unchecked_name_their_reason_and_no_note(tmp_path: Path) -> None:
    data = filler(3000)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as t:
        info = tarfile.TarInfo("b.bin")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    archive = tmp_path / "fw.tar"
    archive.write_bytes(buffer.getvalue()[: 512 + 1000])

    result = scan_file(archive, "tar", ArchiveLimits())

    cover = by_path(result)[f"{archive}!b.bin"]
    assert cover.notes == ()
    assert [u.path for u in cover.unchecked] == [f"{archive}!b.bin"]
    assert all(u.reason for u in cover.unchecked)


def test_a_damaged_binary_archive_is_searched_from_its_first_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its bytes are judged from byte 0: a NUL there makes it binary, so a SARIF region gives
    the key's byte offset and no text line."""
    key = f.ec_key()
    head = b"\0" + b"firmware notes\n" * 3
    body = head + f.key_pem(key) + b"x" * 5000 + b"\n"
    # an end record that lists one member in a central directory that is not there
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, 46, 1, 0)
    archive = tmp_path / "fw.zip"
    archive.write_bytes(body + end)

    code = main(["scan", str(archive), "--format", "sarif", "--quiet", "--jobs", "1"])
    report = json.loads(capsys.readouterr().out)

    results = report["runs"][0]["results"]
    [result] = [r for r in results if r["ruleId"] == "provguard/private-key"]
    [location] = result["locations"]
    region = location["physicalLocation"]["region"]
    assert region["byteOffset"] == len(head)
    assert "startLine" not in region
    assert code == 1


def test_a_member_read_whole_that_fails_its_crc_keeps_its_findings_and_is_unchecked(
    tmp_path: Path,
) -> None:
    key = f.ec_key()
    pad = filler(100)
    data = pad + f.key_der(key) + pad
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:  # stored: the CRC is checked after the last byte
        z.writestr("app.bin", data)
    crc = struct.pack("<I", zlib.crc32(data))
    raw = buffer.getvalue()
    assert raw.count(crc) == 2  # local header and central directory
    archive = tmp_path / "fw.zip"
    archive.write_bytes(raw.replace(crc, struct.pack("<I", zlib.crc32(data) ^ 1)))

    result = scan_file(archive, "zip", ArchiveLimits())

    member = f"{archive}!app.bin"
    assert [(x.path, x.file_offset) for x in result.findings] == [(member, len(pad))]
    cover = by_path(result)[member]
    assert [(u.path, u.reason) for u in cover.unchecked] == [
        (member, "bad CRC-32: the member's data is corrupt")
    ]
    assert (cover.format, cover.size, cover.examined, cover.findings) == (
        "raw",
        len(data),
        len(data),
        1,
    )


def test_a_nested_archive_is_one_member_and_duplicate_names_stay_two(tmp_path: Path) -> None:
    """A nested archive ends twice (as a member, then as an archive): its parent lists it once.
    A zip may hold two members of the same name: both are listed."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("k.bin", b"\x00" * 64)
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("inner.zip", inner.getvalue())
        archive.writestr("dup.bin", b"one")
        with pytest.warns(UserWarning, match="Duplicate"):
            archive.writestr("dup.bin", b"two")
    covers = scan_file(outer, "zip", ArchiveLimits()).coverage
    [whole] = [c for c in covers if c.path == str(outer)]
    [nested] = [c for c in covers if c.path == f"{outer}!inner.zip"]
    assert members_of(whole) == ["inner.zip", "dup.bin", "dup.bin", HEADERS]
    assert members_of(nested) == ["k.bin", HEADERS]
    assert [c.path for c in covers].count(f"{outer}!dup.bin") == 2
