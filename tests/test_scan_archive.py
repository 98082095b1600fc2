"""`provguard.scan.archive`: every member of zip/tar/compressed/nested archives is read in bounded
windows, or unchecked with its reason, never an internal error, never a member held whole."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import textwrap
import zipfile
import zlib
from pathlib import Path

import pytest

from provguard.scan.archive import (
    ArchiveLimits,
    Chunk,
    Event,
    Location,
    Outcome,
    State,
    archive_format,
    escape_name,
    file_format,
    read_archive,
    read_archive_file,
    windows,
)
from tests import containers as c
from tests import factories as f

SEVEN_ZIP = shutil.which("7zz") or shutil.which("7z")
ZIP = shutil.which("zip")
UNZIP = shutil.which("unzip")


def need(tool: str | None, name: str) -> str:
    """A tool the test needs: a failure in CI (env CI), a skip elsewhere."""
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/install-deps installs it)")
        pytest.skip(f"needs {name}")
    return tool


@pytest.fixture(scope="module")
def key() -> bytes:
    """A planted private key (PEM), generated per run."""
    return c.Secret(f.key_pem(f.ec_key()))


def events_of(path: Path, limits: ArchiveLimits | None = None) -> list[Event]:
    return list(read_archive_file(path, limits))


def state(events: list[Event], display: str, kind: str = "file") -> Outcome:
    return c.outcomes(events)[(display, kind)]


# --- formats -----------------------------------------------------------------------------------


def _member_payload(key: bytes) -> bytes:
    return os.urandom(3000) + key + os.urandom(3000)


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".zip", "zip"),
        (".tar", "tar"),
        (".tar.gz", "gzip"),
        (".tar.xz", "xz"),
        (".tar.bz2", "bzip2"),
    ],
)
def test_key_in_a_member_of_every_archive_format_is_found(
    tmp_path: Path, key: bytes, suffix: str, fmt: str
) -> None:
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "app.bin").write_bytes(_member_payload(key))
    (src / "readme.txt").write_text("no key here")
    archive = tmp_path / f"out{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(src / "dir", "dir")
            z.write(src / "dir" / "app.bin", "dir/app.bin")
            z.write(src / "readme.txt", "readme.txt")
    else:
        mode = {".tar": "w", ".tar.gz": "w:gz", ".tar.xz": "w:xz", ".tar.bz2": "w:bz2"}[suffix]
        with tarfile.open(archive, mode) as t:  # type: ignore[call-overload]
            t.add(src / "dir", "dir")
            t.add(src / "readme.txt", "readme.txt")
    with archive.open("rb") as stream:
        assert file_format(stream, archive.name) == fmt
    events = events_of(archive)
    top = str(archive)
    assert c.found(events, key) == [f"{top}!dir/app.bin"]
    outcome = state(events, f"{top}!dir/app.bin")
    assert outcome.state is State.READ
    assert outcome.size == len(_member_payload(key))
    assert state(events, top, "archive").state is State.READ
    assert state(events, top, "archive").format == suffix[1:]  # "zip", "tar", "tar.gz", ...
    assert state(events, top, "archive").size == 3
    assert state(events, f"{top}!readme.txt").state is State.READ
    dir_name = f"{top}!dir/" if suffix == ".zip" else f"{top}!dir"
    assert state(events, dir_name, "directory").state is State.STATED


@pytest.mark.parametrize(
    ("suffix", "compress"), [(".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress)]
)
def test_a_single_compressed_file_is_read_as_its_member(
    tmp_path: Path, key: bytes, suffix: str, compress: object
) -> None:
    archive = tmp_path / f"app.hex{suffix}"
    archive.write_bytes(compress(b"x" * 100 + key))  # type: ignore[operator]
    events = events_of(archive)
    assert c.found(events, key) == [f"{archive}!app.hex"]
    assert state(events, f"{archive}!app.hex").state is State.READ


def test_nested_archives_are_named_by_their_chain(tmp_path: Path, key: bytes) -> None:
    deep = io.BytesIO()
    with zipfile.ZipFile(deep, "w", zipfile.ZIP_LZMA) as z:
        z.writestr("key.txt", b"config\n" + key)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        info = tarfile.TarInfo("inner/deep.zip")
        info.size = len(deep.getvalue())
        t.addfile(info, io.BytesIO(deep.getvalue()))
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("bundle.tgz", tar.getvalue())
    events = events_of(outer)
    chain = f"{outer}!bundle.tgz!inner/deep.zip!key.txt"
    assert c.found(events, key) == [chain]
    assert state(events, chain).state is State.READ
    for archive in (f"{outer}!bundle.tgz", f"{outer}!bundle.tgz!inner/deep.zip"):
        assert state(events, archive, "archive").state is State.READ
        assert state(events, archive, "file").state is State.READ  # its raw bytes, searched too
    location = next(e.location for e in events if isinstance(e, Chunk) and key in e.data)
    assert location == Location(str(outer), ("bundle.tgz", "inner/deep.zip", "key.txt"))


def test_nesting_deeper_than_the_limit_is_unchecked(tmp_path: Path, key: bytes) -> None:
    data = key
    name = "key.pem"
    for level in range(3):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        data, name = buffer.getvalue(), f"level{level}.zip"
    path = tmp_path / "top.zip"
    path.write_bytes(data)
    events = events_of(path, ArchiveLimits(max_depth=1))
    deep = state(events, f"{path}!level1.zip!level0.zip", "archive")
    assert deep.state is State.UNCHECKED
    assert "nested deeper than 1" in (deep.reason or "")
    assert c.found(events, key) == []
    assert c.found(events_of(path), key) == [f"{path}!level1.zip!level0.zip!key.pem"]


# --- windows -----------------------------------------------------------------------------------


def test_large_member_comes_in_overlapping_windows_and_an_edge_needle_is_found_once(
    tmp_path: Path, key: bytes
) -> None:
    window, overlap = 4096, 512
    needle = key[:300]
    data = bytearray(os.urandom(window * 5 + 123))
    for at in (window - 150, 3 * window - 1, 4 * window + 10):  # across edges, and inside
        data[at : at + len(needle)] = needle
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.bin", bytes(data))
    events = events_of(path, ArchiveLimits(window_bytes=window, overlap_bytes=overlap))
    chunks = [e for e in events if isinstance(e, Chunk) and e.location.members == ("big.bin",)]
    assert len(chunks) == 6
    assert all(len(ch.data) <= window + overlap for ch in chunks)
    assert not any(ch.whole for ch in chunks)
    rebuilt = bytearray()
    for ch in chunks:
        assert ch.offset == len(rebuilt) - ch.fresh
        rebuilt += ch.data[ch.fresh :]
    assert rebuilt == data
    assert c.found(events, needle) == [f"{path}!big.bin"] * 3


def test_a_member_within_one_window_is_one_whole_chunk(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("k.pem", key)
    (chunk,) = [
        e for e in events_of(path) if isinstance(e, Chunk) and e.location.members == ("k.pem",)
    ]
    assert chunk.whole
    assert chunk.offset == 0
    assert chunk.fresh == 0
    assert c.digest(chunk.data) == c.digest(key)


def test_windows_of_a_plain_stream(key: bytes) -> None:
    data = os.urandom(10_000) + key + os.urandom(10_000)
    limits = ArchiveLimits(window_bytes=1000, overlap_bytes=len(key))
    chunks = list(windows(io.BytesIO(data), Location("f.bin"), limits))
    assert sum(len(ch.data) - ch.fresh for ch in chunks) == len(data)
    assert c.found(chunks, key) == ["f.bin"]
    (whole,) = windows(io.BytesIO(key), Location("k"))
    assert whole.whole


# --- zips as unzip reads them --------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [b"X", os.urandom(70_000)])
def test_zip_with_bytes_before_it_is_found_by_its_end_record(
    tmp_path: Path, key: bytes, prefix: bytes
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.bin", b"\0" * 100 + key)
    path = tmp_path / "sfx.bin"
    path.write_bytes(prefix + buffer.getvalue())
    listing = subprocess.run(
        [need(UNZIP, "unzip"), "-Z1", str(path)], capture_output=True, text=True, check=False
    )
    assert listing.stdout.split() == ["app.bin"]  # unzip reads it: so must we
    with path.open("rb") as stream:
        assert file_format(stream) == "zip"
    events = events_of(path)
    assert c.found(events, key) == [f"{path}!app.bin"]
    assert state(events, str(path), "archive").state is State.READ


def test_formats_that_are_not_read_are_unchecked_not_clean(tmp_path: Path, key: bytes) -> None:
    """A 7z archive holds the key compressed: its raw bytes do not show it, so it must not pass
    as read; the same for the other containers recognised by their magic (zstd, lz4, rar...)."""
    (tmp_path / "k.pem").write_bytes(key * 3)
    seven = tmp_path / "keys.7z"
    subprocess.run(
        [need(SEVEN_ZIP, "7-Zip"), "a", "-bso0", str(seven), str(tmp_path / "k.pem")], check=True
    )
    c.assert_absent(key, seven.read_bytes(), "the 7z file")
    outer = tmp_path / "release.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.write(seven, "inner/keys.7z")
    for path, where, fmt in ((seven, str(seven), "7z"), (outer, f"{outer}!inner/keys.7z", "7z")):
        archive = state(events_of(path), where, "archive")
        assert (archive.state, archive.format) == (State.UNCHECKED, fmt)
        assert "7z archive: this format is not read" in (archive.reason or "")
    for magic, fmt in (
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"Rar!\x1a\x07\x01\x00", "rar"),
    ):
        path = tmp_path / f"x.{fmt}"
        path.write_bytes(magic + os.urandom(600))
        with path.open("rb") as stream:
            assert file_format(stream) == fmt
        (only,) = events_of(path)
        assert isinstance(only, Outcome)
        assert (only.state, only.format) == (State.UNCHECKED, fmt)


def test_bytes_before_a_zip_are_searched_as_their_own_part(tmp_path: Path, key: bytes) -> None:
    """A firmware image with a zip appended: unzip reads the zip, the image is searched too."""
    firmware = os.urandom(3000) + key + os.urandom(3000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", "{}")
    path = tmp_path / "app_with_resources.bin"
    path.write_bytes(firmware + buffer.getvalue())
    events = events_of(path)
    before = f"{path}!(bytes 0x0-0x{len(firmware):x} before the zip)"
    assert c.found(events, key) == [before]
    assert state(events, before).state is State.READ
    (chunk,) = [e for e in events if isinstance(e, Chunk) and e.location.display == before]
    assert chunk.whole  # parsed as a file of its own by the caller (an MCUboot image, a HEX)
    assert c.digest(chunk.data) == c.digest(firmware)


def test_zip_comment_and_bytes_between_members_are_searched(tmp_path: Path, key: bytes) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(key) + compressor.flush()
    hidden = c.RawEntry(b"hidden.pem", deflated, len(key), zlib.crc32(key), method=8)
    entries = [c.stored(b"a.txt", b"a"), hidden, c.stored(b"b.txt", b"b")]
    path = tmp_path / "hidden.zip"
    path.write_bytes(c.raw_zip(entries, hidden=frozenset({1}), comment=b"built by CI " + key))
    listing = subprocess.run(
        [need(UNZIP, "unzip"), "-Z1", str(path)], capture_output=True, text=True, check=False
    )
    assert listing.stdout.split() == ["a.txt", "b.txt"]  # unzip does not list it either
    events = events_of(path)
    assert c.found(events, key) == [f"{path}!(zip comment)"]
    (gap,) = [
        e
        for e in events
        if isinstance(e, Outcome)
        and e.kind == "file"
        and "between zip members" in e.location.display
    ]
    assert gap.state is State.UNCHECKED
    assert "hidden member" in (gap.reason or "")
    assert gap.size == 30 + len(b"hidden.pem") + len(deflated)


def test_zip_entry_comments_and_extra_fields_are_searched(tmp_path: Path, key: bytes) -> None:
    for field in ("comment", "extra"):
        path = tmp_path / f"{field}.zip"
        with zipfile.ZipFile(path, "w") as z:
            info = zipfile.ZipInfo("app.bin")
            if field == "comment":
                info.comment = key
            else:  # a vendor extra field (id 0xCAFE) in the local header and the directory
                info.extra = struct.pack("<HH", 0xCAFE, len(key)) + key
            z.writestr(info, b"no key in the data")
        events = events_of(path)
        headers = f"{path}!(zip headers and central directory)"
        assert headers in c.found(events, key), field
        assert state(events, headers).state is State.READ
        assert state(events, str(path), "archive").state is State.READ


def test_zips_from_real_tools_have_no_bytes_outside_their_members(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(os.urandom(5000))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("b")
    made = []
    for name, method in (("deflate.zip", zipfile.ZIP_DEFLATED), ("stored.zip", zipfile.ZIP_STORED)):
        with zipfile.ZipFile(tmp_path / name, "w", method) as z:
            z.write(tmp_path / "a.bin", "a.bin")
            z.writestr("d/", b"")
            with z.open("big", "w", force_zip64=True) as member:
                member.write(b"x" * 1000)
        made.append(tmp_path / name)
    streamed = io.BytesIO()

    class Unseekable(io.RawIOBase):  # zipfile writes data descriptors when it cannot seek
        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            return streamed.write(data)

    with zipfile.ZipFile(Unseekable(), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.bin", (tmp_path / "a.bin").read_bytes())
        with z.open("big", "w", force_zip64=True) as member:
            member.write(b"x" * 1000)
    (tmp_path / "streamed.zip").write_bytes(streamed.getvalue())
    made.append(tmp_path / "streamed.zip")
    subprocess.run(
        [need(ZIP, "zip"), "-q", "-r", str(tmp_path / "cli.zip"), "a.bin", "d"],
        cwd=tmp_path,
        check=True,
    )
    subprocess.run(
        [need(SEVEN_ZIP, "7-Zip"), "a", "-bso0", "-tzip", str(tmp_path / "7z.zip"), "a.bin", "d"],
        cwd=tmp_path,
        check=True,
    )
    made += [tmp_path / "cli.zip", tmp_path / "7z.zip"]
    for path in made:
        events = events_of(path)
        extra = [e.location.display for e in events if isinstance(e, Outcome)
                 and e.location.members and e.location.members[-1].startswith("(")]  # fmt: skip
        assert extra == [f"{path}!(zip headers and central directory)"], path.name
        assert state(events, str(path), "archive").state is State.READ


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_bytes_after_the_end_of_a_tar_are_searched(tmp_path: Path, key: bytes, mode: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as t:  # padded to a 10240-byte record
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(b"a"))
    clean = buffer.getvalue()
    for data, holds in ((clean, False), (clean + b"\n" + key, True)):
        path = tmp_path / f"t{holds}.tar"
        path.write_bytes(gzip.compress(data) if mode == "w:gz" else data)
        events = events_of(path)
        after = [
            e for e in events if isinstance(e, Outcome) and "after the end" in e.location.display
        ]
        assert len(after) == holds  # zeros padding the record are not a part
        assert len(c.found(events, key)) == holds
        assert state(events, str(path), "archive").state is State.READ


def _one_member_tar(**pax: str) -> bytearray:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        info.pax_headers = pax
        t.addfile(info, io.BytesIO(b"a"))
    return bytearray(buffer.getvalue())


def test_tar_padding_and_extended_headers_are_searched(tmp_path: Path, key: bytes) -> None:
    padded = _one_member_tar()
    data_at = padded.index(b"a" + bytes(511))  # the member's one byte, then its block's padding
    padded[data_at + 1 : data_at + 1 + len(key)] = key  # tarfile skips padding unread
    pax = _one_member_tar(comment=key.decode())  # a PAX record tarfile keeps to itself
    for name, data in (("padding.tar", padded), ("pax.tar", pax)):
        path = tmp_path / name
        path.write_bytes(bytes(data))
        events = events_of(path)
        extras = f"{path}!(tar extended headers and padding)"
        assert c.found(events, key) == [extras], name
        assert state(events, extras).state is State.READ
        assert state(events, f"{path}!a.txt").state is State.READ
        assert state(events, str(path), "archive").state is State.READ


def test_tar_extended_header_over_the_limit_is_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "huge-pax.tar"
    path.write_bytes(bytes(_one_member_tar(comment="x" * (2 * c.MiB))))
    archive = state(events_of(path), str(path), "archive")
    assert archive.state is State.UNCHECKED
    assert "extended tar header" in (archive.reason or "")


def test_ordinary_tars_have_no_extra_part(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.bin").write_bytes(os.urandom(1000))
    (tmp_path / "src" / "b.txt").write_text("b")
    made = []
    for fmt, name in ((tarfile.USTAR_FORMAT, "ustar.tar"), (tarfile.GNU_FORMAT, "gnu.tar")):
        with tarfile.open(tmp_path / name, "w", format=fmt) as t:
            t.add(tmp_path / "src", "src")
        made.append(tmp_path / name)
    tar = shutil.which("tar")
    if tar is not None:
        subprocess.run([tar, "-czf", str(tmp_path / "cli.tgz"), "src"], cwd=tmp_path, check=True)
        made.append(tmp_path / "cli.tgz")
    for path in made:
        events = events_of(path)
        parts = [e.location.members[-1] for e in events if isinstance(e, Outcome)
                 and e.location.members and e.location.members[-1].startswith("(")]  # fmt: skip
        assert parts == [], path.name
        assert state(events, str(path), "archive").state is State.READ


def test_random_bytes_are_no_archive() -> None:
    assert archive_format(os.urandom(512), os.urandom(1000)) is None
    # an end-record signature whose comment length does not reach the end is not an end record
    fake = os.urandom(100) + b"PK\x05\x06" + bytes(16) + (5).to_bytes(2, "little") + b"abc"
    assert archive_format(bytes(512), fake) is None
    assert archive_format(bytes(512), fake + b"de") == "zip"


# --- encrypted and corrupt members -----------------------------------------------------------


def test_encrypted_members_are_unchecked_and_named(tmp_path: Path, key: bytes) -> None:
    (tmp_path / "secret.pem").write_bytes(key)
    (tmp_path / "open.txt").write_bytes(b"plain " + key)
    crypto = tmp_path / "zipcrypto.zip"
    subprocess.run(
        [need(ZIP, "zip"), "-q", "-j", "-P", "pw", str(crypto), str(tmp_path / "secret.pem")],
        check=True,
    )
    subprocess.run([ZIP, "-q", "-j", str(crypto), str(tmp_path / "open.txt")], check=True)
    aes = tmp_path / "aes.zip"
    subprocess.run(
        [
            need(SEVEN_ZIP, "7-Zip"),
            "a",
            "-bso0",
            "-tzip",
            "-ppw",
            "-mem=AES256",
            str(aes),
            str(tmp_path / "secret.pem"),
        ],
        check=True,
    )
    for path in (crypto, aes):
        events = events_of(path)
        outcome = state(events, f"{path}!secret.pem")
        assert outcome.state is State.UNCHECKED
        assert "encrypted" in (outcome.reason or "")
        assert not any(
            isinstance(e, Chunk) and e.location.members == ("secret.pem",) for e in events
        )
    assert c.found(events_of(crypto), key) == [f"{crypto}!open.txt"]


def _corrupt(data: bytes, member: bytes) -> bytes:
    """`data` with the middle of `member`'s compressed bytes flipped."""
    start = data.index(member) + len(member)
    middle = start + 40
    return data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 16]) + data[middle + 16 :]


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2, zipfile.ZIP_STORED]
)
def test_corrupt_members_are_unchecked_never_an_error(
    tmp_path: Path, key: bytes, method: int
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        z.writestr("bad.bin", os.urandom(2000) + key * 4)
        z.writestr("good.bin", key)
    path = tmp_path / "corrupt.zip"
    path.write_bytes(_corrupt(buffer.getvalue(), b"bad.bin"))
    events = events_of(path)
    bad = state(events, f"{path}!bad.bin")
    assert bad.state is State.UNCHECKED
    assert bad.reason  # bad CRC-32 (stored), or the decompressor's complaint
    assert "bad.bin" not in bad.reason  # the reason names no member (the location does)
    assert state(events, f"{path}!good.bin").state is State.READ
    assert f"{path}!good.bin" in c.found(events, key)


@pytest.mark.parametrize(("method", "name"), [(9, "Deflate64"), (98, "PPMd"), (93, "Zstandard")])
def test_compression_methods_zipfile_cannot_read_are_unchecked(
    tmp_path: Path, key: bytes, method: int, name: str
) -> None:
    entry = c.RawEntry(b"app.bin", os.urandom(200), 400, 0, method=method)
    path = tmp_path / f"{name}.zip"
    path.write_bytes(c.raw_zip([entry, c.stored(b"ok.pem", key)]))
    events = events_of(path)
    outcome = state(events, f"{path}!app.bin")
    assert outcome.state is State.UNCHECKED
    assert outcome.reason == "compression method not supported"
    assert f"{path}!ok.pem" in c.found(events, key)


def test_bad_crc_is_unchecked(tmp_path: Path, key: bytes) -> None:
    entry = c.stored(b"k.pem", key)
    path = tmp_path / "crc.zip"
    path.write_bytes(c.raw_zip([c.RawEntry(b"k.pem", key, len(key), entry.crc ^ 1)]))
    events = events_of(path)
    outcome = state(events, f"{path}!k.pem")
    assert outcome.state is State.UNCHECKED
    assert "CRC" in (outcome.reason or "")
    assert c.found(events, key) == [f"{path}!k.pem"]  # what was read is still searched


@pytest.mark.parametrize("mode", ["w:gz", "w:xz", "w:bz2"])
def test_truncated_compressed_tar_ends_unchecked(tmp_path: Path, key: bytes, mode: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as t:  # type: ignore[call-overload]
        for index in range(3):
            data = os.urandom(20_000)
            info = tarfile.TarInfo(f"m{index}.bin")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    path = tmp_path / "cut.tar.x"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    events = events_of(path)
    archive = state(events, str(path), "archive")
    assert archive.state is State.UNCHECKED
    reasons = [e.reason or "" for e in events if isinstance(e, Outcome)]
    assert any("truncated" in reason for reason in reasons)
    members = [e for e in events if isinstance(e, Outcome) and e.location.members]
    assert all(e.state is State.UNCHECKED or e.size == 20_000 for e in members)
    assert len(members) < 3


def test_damaged_archives_never_raise(tmp_path: Path, key: bytes) -> None:
    """Flip bytes anywhere in a zip and a tar.gz: every run ends with an archive outcome."""
    rng = random.Random(9)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for index in range(4):
            z.writestr(f"m{index}.bin", key + bytes(rng.randrange(256) for _ in range(500)))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        info = tarfile.TarInfo("k.pem")
        info.size = len(key)
        t.addfile(info, io.BytesIO(key))
    for original in (buffer.getvalue(), tar.getvalue()):
        for _ in range(150):
            data = bytearray(original)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            events = list(read_archive(io.BytesIO(bytes(data)), "fuzz"))
            assert isinstance(events[-1], Outcome)
            assert events[-1].kind == "archive"
            assert events[-1].location == Location("fuzz")


# --- names, directories, links ----------------------------------------------------------------


def test_name_not_utf8_under_the_utf8_flag_is_escaped(tmp_path: Path, key: bytes) -> None:
    name = b"fw\xff\xfe\x1b[2J.bin"
    path = tmp_path / "names.zip"
    path.write_bytes(c.raw_zip([c.stored(name, key, flags=0x800), c.stored(b"ok.txt", b"x")]))
    events = events_of(path)
    (hit,) = c.found(events, key)
    assert hit == f"{path}!fw\ufffd\ufffd\\x1b[2J.bin"
    assert not any(ord(ch) < 0x20 for ch in hit)
    assert state(events, hit).state is State.READ


def test_member_data_that_looks_like_a_local_header_is_read_unchanged(tmp_path: Path) -> None:
    """Only real local headers lose their UTF-8 flag on the way to zipfile, never member data."""
    lookalike = b"PK\x03\x04\x14\x00\x00\x08" + os.urandom(22)
    path = tmp_path / "look.zip"
    entries = [c.stored("ü.bin".encode(), lookalike, flags=0x800), c.stored(b"x", b"y")]
    path.write_bytes(c.raw_zip(entries, prefix=b"MZ" + bytes(100)))
    events = events_of(path)
    assert state(events, f"{path}!ü.bin").state is State.READ
    (chunk,) = [e for e in events if isinstance(e, Chunk) and e.location.members == ("ü.bin",)]
    assert chunk.data == lookalike


def test_tar_name_with_undecodable_bytes_is_escaped(tmp_path: Path, key: bytes) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo(b"k\xff\n.pem".decode("utf-8", "surrogateescape"))
        info.size = len(key)
        t.addfile(info, io.BytesIO(key))
    path = tmp_path / "names.tar"
    path.write_bytes(buffer.getvalue())
    assert c.found(events_of(path), key) == [f"{path}!k\\xff\\x0a.pem"]


def test_escape_name() -> None:
    assert escape_name("a/b.bin") == "a/b.bin"
    assert escape_name("line\nbreak\r\t") == "line\\x0abreak\\x0d\\x09"
    assert escape_name(b"\xff\x80") == "\\xff\\x80"
    assert escape_name("back\\slash") == "back\\\\slash"
    assert escape_name("rtl\u202eexe.bin") == "rtl\\u202eexe.bin"
    assert escape_name("\x9b31m") == "\\x9b31m"


def test_directories_symlinks_and_special_entries_are_stated(tmp_path: Path) -> None:
    zip_path = tmp_path / "links.zip"
    link = c.stored(b"current", b"../etc/secret", external_attr=0o120777 << 16)
    zip_path.write_bytes(c.raw_zip([c.stored(b"d/", b"", external_attr=0o040755 << 16), link]))
    events = events_of(zip_path)
    assert state(events, f"{zip_path}!d/", "directory").state is State.STATED
    assert state(events, f"{zip_path}!current", "symlink").state is State.STATED
    tar_path = tmp_path / "links.tar"
    with tarfile.open(tar_path, "w") as t:
        for name, kind in (
            ("dir", tarfile.DIRTYPE),
            ("sym", tarfile.SYMTYPE),
            ("hard", tarfile.LNKTYPE),
            ("fifo", tarfile.FIFOTYPE),
            ("dev", tarfile.CHRTYPE),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "target\x1b" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            t.addfile(info)
    events = events_of(tar_path)
    kinds = {
        e.location.members[-1]: e.kind
        for e in events
        if isinstance(e, Outcome) and e.location.members
    }
    assert kinds == {
        "dir": "directory",
        "sym": "symlink",
        "hard": "hardlink",
        "fifo": "fifo",
        "dev": "device",
    }
    assert all(
        e.state is State.STATED for e in events if isinstance(e, Outcome) and e.location.members
    )
    assert "target\\x1b" in (state(events, f"{tar_path}!sym", "symlink").reason or "")


# --- limits ------------------------------------------------------------------------------------


def test_member_over_the_size_limit_is_unchecked(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.bin", os.urandom(50_000))
        z.writestr("small.pem", key)
    limits = ArchiveLimits(max_member_bytes=20_000, window_bytes=8192, overlap_bytes=100)
    events = events_of(path, limits)
    big = state(events, f"{path}!big.bin")
    assert big.state is State.UNCHECKED
    assert "20000" in (big.reason or "")
    assert (
        sum(
            len(e.data) - e.fresh
            for e in events
            if isinstance(e, Chunk) and e.location.members == ("big.bin",)
        )
        <= 20_001 + 8192
    )
    assert state(events, f"{path}!small.pem").state is State.READ


def test_total_limit_leaves_the_rest_unchecked(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for index in range(10):
            z.writestr(f"m{index}.bin", os.urandom(10_000))
    events = events_of(path, ArchiveLimits(max_total_bytes=35_000))
    read = [e for e in events if isinstance(e, Outcome) and e.state is State.READ]
    assert {e.location.members for e in read} == {("m0.bin",), ("m1.bin",), ("m2.bin",)}
    assert state(events, f"{path}!m3.bin").state is State.UNCHECKED
    archive = state(events, str(path), "archive")
    assert archive.state is State.UNCHECKED
    assert "35000" in (archive.reason or "")
    assert sum(len(e.data) - e.fresh for e in events if isinstance(e, Chunk)) <= 35_001


def test_member_count_limit(tmp_path: Path) -> None:
    path = tmp_path / "count.tar"
    with tarfile.open(path, "w") as t:
        for index in range(20):
            info = tarfile.TarInfo(f"e{index}")
            t.addfile(info, io.BytesIO(b""))
    events = events_of(path, ArchiveLimits(max_members=5))
    archive = state(events, str(path), "archive")
    assert archive.state is State.UNCHECKED
    assert "5 members" in (archive.reason or "")
    assert sum(isinstance(e, Outcome) and e.kind == "file" for e in events) == 5


def test_a_central_directory_longer_than_the_member_limit_is_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "wide.zip"
    path.write_bytes(c.raw_zip([c.stored(b"e", b"")], copies=600))
    events = events_of(path, ArchiveLimits(max_members=500))
    (only,) = events
    assert isinstance(only, Outcome)
    assert only.state is State.UNCHECKED
    assert "lists 600 members, more than the limit of 500" in (only.reason or "")
    zip64 = tmp_path / "zip64.zip"  # more than 65,535 entries: counted in the zip64 end record
    zip64.write_bytes(c.raw_zip([c.stored(b"e", b"")], copies=70_000, prefix=b"MZ" * 50))
    with zipfile.ZipFile(zip64) as z:
        assert len(z.infolist()) == 70_000  # zipfile agrees the file is sound
    (only,) = events_of(zip64)
    assert "lists 70000 members" in (only.reason or "")  # type: ignore[union-attr]


def test_compression_ratio_of_a_bomb_is_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "ratio.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 4 * c.MiB
        t.addfile(info, io.BytesIO(bytes(info.size)))
        info2 = tarfile.TarInfo("after.bin")
        info2.size = 10
        t.addfile(info2, io.BytesIO(b"0123456789"))
    limits = ArchiveLimits(ratio_grace_bytes=c.MiB, window_bytes=c.MiB, overlap_bytes=64)
    events = events_of(path, limits)
    zeros = state(events, f"{path}!zeros.bin")
    assert zeros.state is State.UNCHECKED
    assert "compression bomb" in (zeros.reason or "")
    assert state(events, str(path), "archive").state is State.UNCHECKED  # the rest is not trusted
    assert (f"{path}!after.bin", "file") not in c.outcomes(events)
    zip_path = tmp_path / "ratio.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(4 * c.MiB))
    assert "compression bomb" in (
        state(events_of(zip_path, limits), f"{zip_path}!zeros.bin").reason or ""
    )


def test_overlapping_entries_bomb_is_bounded(tmp_path: Path) -> None:
    """Entries that share one member's data: read once; 20,000 of them (20 GiB if each were
    inflated, as in issue 9) are refused before the directory is even loaded."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(bytes(c.MiB)) + compressor.flush()
    entry = c.RawEntry(b"zeros.bin", data, c.MiB, zlib.crc32(bytes(c.MiB)), method=8)
    path = tmp_path / "overlap.zip"
    path.write_bytes(c.raw_zip([entry], copies=5_000))
    events = events_of(path)
    decompressed = sum(
        len(e.data) - e.fresh
        for e in events
        if isinstance(e, Chunk) and e.location.members == ("zeros.bin",)
    )
    assert decompressed == c.MiB  # the data once
    members = [
        e
        for e in events
        if isinstance(e, Outcome) and e.kind == "file" and e.location.members == ("zeros.bin",)
    ]
    assert len(members) == 5_000
    assert members[0].state is State.READ
    assert all(e.state is State.UNCHECKED and "overlaps" in (e.reason or "") for e in members[1:])
    big = tmp_path / "overlap20k.zip"
    big.write_bytes(c.raw_zip([entry], copies=20_000))
    assert big.stat().st_size < 2 * c.MiB
    (archive,) = events_of(big)
    assert isinstance(archive, Outcome)
    assert (archive.kind, archive.state) == ("archive", State.UNCHECKED)
    assert "lists 20000 members, more than the limit of 10000" in (archive.reason or "")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="overlap_bytes"):
        ArchiveLimits(window_bytes=100, overlap_bytes=100)
    with pytest.raises(ValueError, match="max_member_bytes"):
        ArchiveLimits(max_member_bytes=0)


# --- memory ------------------------------------------------------------------------------------

BOMB_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from provguard.scan.archive import ArchiveLimits, Chunk, Outcome, read_archive_file

    def run(limits):
        seen = 0
        outcomes = []
        for event in read_archive_file(sys.argv[1], limits):
            if isinstance(event, Chunk):
                seen += len(event.data) - event.fresh
            else:
                outcomes.append([event.location.display, event.kind, event.state.value,
                                 event.reason])
        return {"seen": seen, "outcomes": outcomes}

    default = run(ArchiveLimits())
    no_ratio = run(ArchiveLimits(max_ratio=10**9, max_member_bytes=768 * 2**20))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"default": default, "no_ratio": no_ratio, "peak": peak}))
    """
)


def test_zip_bomb_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """1 GiB of zeros in a 1 MB zip: unchecked, and the child that reads it stays under 200 MiB
    even when only the member limit stops it after 768 MiB decompressed."""
    bomb = c.write_zip_bomb(tmp_path / "bomb.zip", 1024)
    assert bomb.stat().st_size < 2 * c.MiB
    run = subprocess.run(
        [sys.executable, "-c", BOMB_CHILD, str(bomb)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(run.stdout)
    member = f"{bomb}!zeros.bin"
    default = {(o[0], o[1]): o for o in report["default"]["outcomes"]}
    assert default[(member, "file")][2] == "unchecked"
    assert "compression bomb" in default[(member, "file")][3]
    assert report["default"]["seen"] < 200 * c.MiB
    no_ratio = {(o[0], o[1]): o for o in report["no_ratio"]["outcomes"]}
    assert no_ratio[(member, "file")][2] == "unchecked"
    assert "larger than the limit" in no_ratio[(member, "file")][3]
    assert report["no_ratio"]["seen"] >= 768 * c.MiB
    assert report["peak"] < 200 * c.MiB, f"peak RSS {report['peak'] // c.MiB} MiB"


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_a_tar_with_long_names_is_read_in_full(tmp_path: Path, key: bytes, fmt: int) -> None:
    # A name over 100 bytes goes into a GNU long-name or PAX header, as `tar` writes for any deep
    # build tree: those header bytes are searched as they are, never opened as a tar of their own.
    name = "build/" + "zephyr-" * 20 + "merged.pem"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as t:
        info = tarfile.TarInfo(name)
        info.size = len(key)
        t.addfile(info, io.BytesIO(key))
    path = tmp_path / "release.tar"
    path.write_bytes(buffer.getvalue())
    events = events_of(path)
    assert c.found(events, key) == [f"{path}!{name}"]
    unchecked = [e for e in c.outcomes(events).values() if e.state is State.UNCHECKED]
    assert unchecked == []
    assert state(events, str(path), "archive").state is State.READ


def test_a_tar_member_of_an_unknown_type_is_searched_as_a_file(tmp_path: Path, key: bytes) -> None:
    # POSIX tar extracts a member whose type flag it does not know as a regular file, so a key
    # stored under such a flag reaches the disk: it must be found, not stated as "no data".
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("device.pem")
        info.size = len(key)
        info.type = b"Z"
        t.addfile(info, io.BytesIO(key))
    path = tmp_path / "odd.tar"
    path.write_bytes(buffer.getvalue())
    extracted = tmp_path / "out"
    extracted.mkdir()
    tar = shutil.which("tar")
    if tar is not None:  # what GNU tar makes of it: a regular file holding the key
        subprocess.run([tar, "-xf", str(path)], cwd=extracted, check=True, capture_output=True)
        assert (extracted / "device.pem").read_bytes() == bytes(key)
    events = events_of(path)
    assert c.found(events, key) == [f"{path}!device.pem"]
    assert state(events, f"{path}!device.pem").state is State.READ
