"""The zip side of scan/archive.py at its edges: where the end record is found (at the file's
first byte, at the first byte of the 64 KiB tail, behind signatures in member data and in the
comment), the zip64 end record, the parts made of bytes outside the members (their names and
exact bytes), entries whose central directory order or offsets are unusual, and the limits.

Every zip here is written byte by byte by `build`, so each expected offset, size and byte string
is computed from how the test laid the file out.
"""

from __future__ import annotations

import gzip
import io
import random
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from provguard.scan.archive import (
    ArchiveLimits,
    Chunk,
    Event,
    Location,
    Outcome,
    State,
    read_archive,
)

NAME = "fw.zip"
HEADERS = "(zip headers and central directory)"
END = b"PK\x05\x06"
TAIL = 22 + 0xFFFF  # the end record and the longest comment: what is searched for the record


@dataclass(frozen=True)
class Entry:
    """One stored zip entry as the test writes it."""

    name: bytes
    data: bytes = b""
    flags: int = 0
    local_extra: bytes = b""
    after: bytes = b""  # written after the data: a data descriptor, bytes between members
    central_name: bytes | None = None  # the name the central directory states (default `name`)
    offset: int | None = None  # the header offset the central directory states (default: real)

    def local(self) -> bytes:
        return (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                20,
                self.flags,
                0,
                0,
                0x21,
                zlib.crc32(self.data),
                len(self.data),
                len(self.data),
                len(self.name),
                len(self.local_extra),
            )
            + self.name
            + self.local_extra
        )

    def central(self, offset: int) -> bytes:
        name = self.name if self.central_name is None else self.central_name
        fixed = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x031E,
            20,
            self.flags,
            0,
            0,
            0x21,
            zlib.crc32(self.data),
            len(self.data),
            len(self.data),
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        return fixed + name


@dataclass(frozen=True)
class Layout:
    """A built zip and where its pieces are in the file."""

    data: bytes
    headers: list[tuple[int, int]]  # (start, end) of each local header, name and extra included
    members: list[tuple[int, int]]  # (start, end) of each entry's data
    central: int  # where the central directory starts
    record: int  # where the end record starts


def end_record(count: int, size: int, offset: int, comment: int) -> bytes:
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, size, offset, comment)


def build(
    entries: list[Entry],
    *,
    prefix: bytes = b"",
    comment: bytes = b"",
    order: list[int] | None = None,
    count: int | None = None,
    central_tail: bytes = b"",
) -> Layout:
    """`prefix` + a zip of `entries` (central directory in `order`) + `comment`; `count` is the
    member count the end record states, `central_tail` bytes counted as central directory."""
    body = bytearray()
    headers, members, offsets = [], [], []
    for entry in entries:
        offsets.append(len(body))
        local = entry.local()
        start = len(prefix) + len(body)
        headers.append((start, start + len(local)))
        members.append((start + len(local), start + len(local) + len(entry.data)))
        body += local + entry.data + entry.after
    central = b"".join(
        entries[i].central(offsets[i] if entries[i].offset is None else entries[i].offset)
        for i in (order if order is not None else range(len(entries)))
    )
    central += central_tail
    stated = len(entries) if count is None else count
    record = len(prefix) + len(body) + len(central)
    end = end_record(stated, len(central), len(body), len(comment))
    data = prefix + bytes(body) + central + end + comment
    return Layout(data, headers, members, len(prefix) + len(body), record)


def events_of(data: bytes, limits: ArchiveLimits | None = None, name: str = NAME) -> list[Event]:
    return list(read_archive(io.BytesIO(data), name, limits))


def outcomes(events: list[Event]) -> dict[str, Outcome]:
    """Outcomes by display name and kind ("name" for files, "name [archive]" for archives)."""
    out: dict[str, Outcome] = {}
    for event in events:
        assert isinstance(event, Chunk | Outcome), f"not an event: {event!r}"
        if isinstance(event, Outcome):
            key = event.location.display + (" [archive]" if event.kind == "archive" else "")
            assert key not in out, f"{key} reported twice"
            out[key] = event
    return out


def part_bytes(events: list[Event]) -> dict[str, bytes]:
    """Each part's bytes as its chunks give them (each byte once), checking the chunks join."""
    out: dict[str, bytearray] = {}
    for event in events:
        if isinstance(event, Chunk):
            got = out.setdefault(event.location.display, bytearray())
            assert event.offset + event.fresh == len(got), "a chunk does not follow its previous"
            got += event.data[event.fresh :]
    return {name: bytes(data) for name, data in out.items()}


def member(name: str) -> str:
    return f"{NAME}!{name}"


def read(name: str, kind: str, size: int, fmt: str = "zip") -> Outcome:
    """The outcome of a part or member read in full."""
    return Outcome(Location(NAME, (name,)), kind, fmt, State.READ, size)


def zip_read(count: int) -> Outcome:
    return Outcome(Location(NAME), "archive", "zip", State.READ, count)


# --- the end record ---------------------------------------------------------------------------


def test_an_empty_zip_whose_end_record_is_the_files_first_byte_has_its_comment_as_a_part() -> None:
    comment = b"release notes: build 7"
    record = end_record(0, 0, 0, len(comment))
    events = events_of(record + comment)
    assert outcomes(events) == {
        member("(zip comment)"): read("(zip comment)", "file", len(comment)),
        member(HEADERS): read(HEADERS, "file", len(record)),
        NAME + " [archive]": zip_read(0),
    }
    assert part_bytes(events) == {member("(zip comment)"): comment, member(HEADERS): record}


def test_a_zips_headers_part_holds_its_headers_and_the_comment_part_the_comment_exactly() -> None:
    comment = b"C" * 40
    entries = [Entry(b"a.bin", b"A" * 100), Entry(b"b.bin", b"B" * 50)]
    zip_ = build(entries, comment=comment)
    data = zip_.data
    events = events_of(data)
    headers = b"".join(data[start:stop] for start, stop in zip_.headers)
    headers += data[zip_.central : zip_.record + 22]
    assert part_bytes(events) == {
        member("a.bin"): b"A" * 100,
        member("b.bin"): b"B" * 50,
        member("(zip comment)"): comment,
        member(HEADERS): headers,
    }
    assert outcomes(events)[member(HEADERS)] == read(HEADERS, "file", len(headers))
    assert outcomes(events)[NAME + " [archive]"] == zip_read(2)


def test_bytes_before_an_empty_zip_shorter_than_an_end_record_are_named_before_the_zip() -> None:
    prefix = b"\x7fELF firmware.."  # 16 bytes, fewer than an end record's 22
    record = end_record(0, 0, 0, 0)
    events = events_of(prefix + record)
    label = f"(bytes 0x0-0x{len(prefix):x} before the zip)"
    assert outcomes(events) == {
        member(label): read(label, "file", len(prefix)),
        member(HEADERS): read(HEADERS, "file", len(record)),
        NAME + " [archive]": zip_read(0),
    }
    assert part_bytes(events)[member(label)] == prefix


def refused(stated: int, limit: int) -> Outcome:
    reason = (
        f"the central directory lists {stated} members, more than the limit of {limit}: not read"
    )
    return Outcome(Location(NAME), "archive", "zip", State.UNCHECKED, 0, reason)


def test_the_end_record_is_found_behind_end_signatures_in_member_data_and_in_the_comment() -> None:
    # a member whose data holds an end record's signature, and a comment that holds one too: the
    # record is the last signature whose comment runs exactly to the end of the file
    entries = [Entry(b"a.bin", b"data " + END + bytes(30)), Entry(b"b.bin"), Entry(b"c.bin")]
    zip_ = build(entries, comment=b"note " + END + bytes(30))
    limits = ArchiveLimits(max_members=2)
    assert outcomes(events_of(zip_.data, limits)) == {NAME + " [archive]": refused(3, 2)}


def test_an_end_record_at_the_first_byte_of_the_tail_with_the_longest_comment_is_found() -> None:
    # the comment is 0xFFFF bytes, so the record is the first byte of the last 64 KiB + 22 read;
    # a signature inside the comment is not a record (its own comment would not run to the end)
    comment = bytearray(0xFFFF)
    comment[100:104] = END
    entries = [Entry(b"a.bin", b"A" * 10), Entry(b"b.bin"), Entry(b"c.bin")]
    zip_ = build(entries, comment=bytes(comment))
    assert len(zip_.data) - zip_.record == TAIL
    limits = ArchiveLimits(max_members=2)
    assert outcomes(events_of(zip_.data, limits)) == {NAME + " [archive]": refused(3, 2)}


# --- zip64 end records ------------------------------------------------------------------------


def with_zip64(zip_: Layout, stated: int, zip64_count: int, comment: bytes = b"") -> bytes:
    """`zip_` (no comment) with a zip64 end record and locator before its end record; the end
    record states `stated` members, the zip64 record `zip64_count`."""
    data = zip_.data
    central_size = zip_.record - zip_.central
    record64 = struct.pack(
        "<IQHHIIQQQQ",
        0x06064B50,
        44,
        45,
        45,
        0,
        0,
        zip64_count,
        zip64_count,
        central_size,
        zip_.central,
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, zip_.record, 1)
    end = end_record(stated, central_size, zip_.central, len(comment))
    return data[: zip_.record] + record64 + locator + end + comment


def test_a_zip64_count_is_used_only_when_the_end_record_states_0xffff() -> None:
    entries = [Entry(b"a.bin", b"A" * 10), Entry(b"b.bin", b"B" * 20)]
    data = with_zip64(build(entries), stated=2, zip64_count=1000)
    events = events_of(data, ArchiveLimits(max_members=10))
    got = outcomes(events)
    assert got[member("a.bin")] == read("a.bin", "file", 10)
    assert got[member("b.bin")] == read("b.bin", "file", 20)
    assert got[NAME + " [archive]"] == zip_read(2)


def test_a_zip64_locator_at_the_first_byte_of_the_tail_gives_the_member_count() -> None:
    # the comment puts the zip64 locator exactly at the start of the last 64 KiB + 22 bytes
    entries = [Entry(b"a.bin", b"A" * 10), Entry(b"b.bin", b"B" * 20)]
    comment = bytes(0xFFFF - 20)
    data = with_zip64(build(entries), stated=0xFFFF, zip64_count=2, comment=comment)
    assert data[len(data) - TAIL : len(data) - TAIL + 4] == b"PK\x06\x07"
    got = outcomes(events_of(data, ArchiveLimits(max_members=5)))
    assert got[member("a.bin")] == read("a.bin", "file", 10)
    assert got[NAME + " [archive]"] == zip_read(2)


def test_an_empty_zip64_whose_zip64_record_is_the_files_first_byte_is_read() -> None:
    data = with_zip64(build([]), stated=0xFFFF, zip64_count=0)
    assert data[:4] == b"PK\x06\x06"
    events = events_of(data, ArchiveLimits(max_members=5))
    assert outcomes(events) == {
        member(HEADERS): read(HEADERS, "file", len(data)),
        NAME + " [archive]": zip_read(0),
    }
    assert part_bytes(events)[member(HEADERS)] == data


# --- entries: local headers, data descriptors, order and offsets -------------------------------


def between(start: int, stop: int) -> str:
    return f"(bytes 0x{start:x}-0x{stop:x} between zip members)"


def test_an_encrypted_member_without_a_data_descriptor_ends_where_its_data_ends() -> None:
    gap = b"G" * 16  # bytes between the encrypted member and the next one
    entries = [Entry(b"sealed.bin", b"S" * 40, flags=0x1, after=gap), Entry(b"b.bin", b"B" * 8)]
    zip_ = build(entries)
    start = zip_.members[0][1]
    label = between(start, start + len(gap))
    events = events_of(zip_.data)
    got = outcomes(events)
    assert got[member("sealed.bin")] == Outcome(
        Location(NAME, ("sealed.bin",)),
        "file",
        "zip",
        State.UNCHECKED,
        0,
        "encrypted zip member: not read",
    )
    assert got[member(label)] == read(label, "file", len(gap))
    assert part_bytes(events)[member(label)] == gap


def test_a_data_descriptor_is_12_bytes_when_no_zip64_extra_field_is_in_the_local_header() -> None:
    # the local extra field holds one field whose length (0xFFF8) runs past the extra field: it
    # is not a zip64 field, and the 4 bytes after its header are not a field of their own
    extra = struct.pack("<HH", 0x7075, 0xFFF8) + struct.pack("<HH", 0x0001, 0)
    data = b"D" * 24
    descriptor = struct.pack("<III", zlib.crc32(data), len(data), len(data))
    gap = b"G" * 16
    entries = [
        Entry(b"d.bin", data, flags=0x08, local_extra=extra, after=descriptor + gap),
        Entry(b"b.bin", b"B" * 8),
    ]
    zip_ = build(entries)
    start = zip_.members[0][1] + len(descriptor)
    label = between(start, start + len(gap))
    events = events_of(zip_.data)
    assert outcomes(events)[member("d.bin")] == read("d.bin", "file", len(data))
    assert part_bytes(events)[member(label)] == gap


def test_entries_listed_in_another_order_than_their_local_headers_do_not_overlap() -> None:
    entries = [Entry(b"first.bin", b"1" * 30), Entry(b"second.bin", b"2" * 30)]
    events = events_of(build(entries, order=[1, 0]).data)
    got = outcomes(events)
    assert got[member("first.bin")] == read("first.bin", "file", 30)
    assert got[member("second.bin")] == read("second.bin", "file", 30)


def test_a_directory_entry_at_a_files_header_is_not_data_the_file_overlaps() -> None:
    entries = [Entry(b"d/", offset=0), Entry(b"a.bin", b"A" * 30, offset=0)]
    # the directory's own local header is never written: both entries point at a.bin's
    zip_ = build([entries[1]])
    central = entries[0].central(0) + entries[1].central(0)
    data = zip_.data[: zip_.central] + central + end_record(2, len(central), zip_.central, 0)
    got = outcomes(events_of(data))
    assert got[member("d/")] == Outcome(
        Location(NAME, ("d/",)), "directory", "zip", State.STATED, 0, "directory entry"
    )
    assert got[member("a.bin")] == read("a.bin", "file", 30)


def test_an_entry_whose_header_is_past_the_end_of_the_file_adds_no_empty_part() -> None:
    # the ghost's local header is never written: its entry points past the end of the file
    zip_ = build([Entry(b"a.bin", b"A" * 30)])
    central = Entry(b"a.bin", b"A" * 30).central(0) + Entry(b"ghost.bin").central(10_000)
    data = zip_.data[: zip_.central] + central + end_record(2, len(central), zip_.central, 0)
    assert len(data) < 10_000
    events = events_of(data)
    got = outcomes(events)
    assert set(got) == {
        member("a.bin"),
        member("ghost.bin"),
        member(HEADERS),
        NAME + " [archive]",
    }
    assert got[member("ghost.bin")].state is State.UNCHECKED
    assert got[NAME + " [archive]"] == zip_read(2)


def test_the_headers_part_is_read_in_windows_like_any_member() -> None:
    entries = [Entry(b"a.bin", b"A" * 4), Entry(b"b.bin", b"B" * 4)]
    zip_ = build(entries)
    limits = ArchiveLimits(window_bytes=64, overlap_bytes=16)
    events = events_of(zip_.data, limits)
    size = (zip_.headers[0][1] - zip_.headers[0][0]) * 2 + (zip_.record + 22 - zip_.central)
    chunks = [e for e in events if isinstance(e, Chunk) and e.location.display == member(HEADERS)]
    # every window holds 64 new bytes but the last; each after the first repeats 16
    starts = list(range(0, size, 64))
    assert [(c.offset + c.fresh, len(c.data) - c.fresh) for c in chunks] == [
        (start, min(64, size - start)) for start in starts
    ]
    assert [c.fresh for c in chunks] == [0] + [16] * (len(starts) - 1)


# --- an unreadable central directory and the limits --------------------------------------------


def test_a_central_directory_cut_inside_an_entrys_fixed_fields_is_unreadable() -> None:
    # the central directory's stated size ends 24 bytes into a second entry's 46 fixed bytes
    cut = b"PK\x01\x02" + bytes(20)
    zip_ = build([Entry(b"a.bin", b"A" * 10)], central_tail=cut)
    reason = "unreadable zip central directory: corrupt (BadZipFile)"
    assert outcomes(events_of(zip_.data)) == {
        NAME + " [archive]": Outcome(Location(NAME), "archive", "zip", State.UNCHECKED, 0, reason)
    }


def test_members_after_the_decompressed_total_is_reached_are_not_read() -> None:
    entries = [Entry(b"a.bin", b"A" * 10), Entry(b"b.bin", b"B" * 10), Entry(b"c.bin", b"C")]
    got = outcomes(events_of(build(entries).data, ArchiveLimits(max_total_bytes=10)))
    reason = (
        "the input's decompressed total reached the limit of 10 bytes: the remaining members "
        "are not read"
    )
    assert got == {
        member("a.bin"): read("a.bin", "file", 10),
        NAME + " [archive]": Outcome(Location(NAME), "archive", "zip", State.UNCHECKED, 1, reason),
    }


def test_a_cp437_name_is_shown_as_cp437_when_zipfiles_search_read_starts_at_an_entry() -> None:
    # the comment's length makes the last 64 KiB + 22 bytes (where zipfile looks for the end
    # record) start exactly at the second central directory entry
    raw = b"caf\x82.bin"  # cp437, without the UTF-8 flag
    entries = [Entry(b"a.bin", b"A" * 10), Entry(raw, b"B" * 10)]
    second = build(entries).central + len(entries[0].central(0))
    comment = bytes(second - build(entries).record + 0x10000)
    zip_ = build(entries, comment=comment)
    assert len(zip_.data) - (TAIL + 1) == second
    got = outcomes(events_of(zip_.data))
    name = raw.decode("cp437")
    assert got[member(name)] == read(name, "file", 10)
    assert got[NAME + " [archive]"] == zip_read(2)


# --- compressed streams and tar: limits and the bytes tarfile passes over -----------------------


def test_a_gzip_member_past_its_limit_is_not_read_further_even_when_truncated_after_it() -> None:
    payload = random.Random(7).randbytes(20_000)  # stored blocks: every byte before a cut decodes
    whole = gzip.compress(payload, mtime=0)
    cut = whole[: len(whole) // 2]
    available = len(zlib.decompressobj(31).decompress(cut))
    assert 512 < available < len(payload)
    limit = available - 1
    events = list(read_archive(io.BytesIO(cut), "fw.bin.gz", ArchiveLimits(max_member_bytes=limit)))
    got = outcomes(events)
    assert got["fw.bin.gz!fw.bin"] == Outcome(
        Location("fw.bin.gz", ("fw.bin",)),
        "file",
        "gzip",
        State.UNCHECKED,
        available,
        f"member larger than the limit of {limit} bytes",
    )


def test_the_compression_ratio_counts_every_compressed_byte_and_no_more() -> None:
    # zeros: find a size whose ratio to its .gz size is not whole, and set the limit to the whole
    # part of it; the stream is smaller than one buffered read, so all of it is counted
    size = 20_000
    while size % len(gzip.compress(bytes(size), mtime=0)) == 0:
        size += 1
    compressed = len(gzip.compress(bytes(size), mtime=0))
    ratio = size // compressed
    assert compressed < 8192
    assert ratio * compressed < size <= ratio * (compressed + 1)
    limits = ArchiveLimits(max_ratio=ratio, ratio_grace_bytes=0)
    stream = io.BytesIO(gzip.compress(bytes(size), mtime=0))
    got = outcomes(list(read_archive(stream, "fw.bin.gz", limits)))
    assert got["fw.bin.gz!fw.bin"] == Outcome(
        Location("fw.bin.gz", ("fw.bin",)),
        "file",
        "gzip",
        State.UNCHECKED,
        size,
        f"compression ratio above {ratio}:1 ({size} bytes from {compressed}): a compression bomb",
    )


def test_a_pax_header_after_more_than_4_mib_of_tar_is_searched_exactly() -> None:
    # past 4 MiB the bytes tarfile passes over are kept from a ring that dropped its start
    big = 5 * 1024 * 1024
    name = "d/" + "n" * 150 + ".bin"  # longer than ustar's 100 bytes: a PAX header holds it
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = big
        tar.addfile(info, io.BytesIO(bytes(big)))
        info = tarfile.TarInfo(name)
        info.size = 10
        tar.addfile(info, io.BytesIO(b"X" * 10))
    data = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        header = tar.getmember(name).offset_data - 512  # the member's own ustar header
    pax = 512 + big  # after big.bin's header and data (a whole number of blocks)
    assert data[pax + 156 : pax + 157] == b"x"  # a PAX extended header
    events = list(read_archive(io.BytesIO(data), "fw.tar"))
    part = "fw.tar!(tar extended headers and padding)"
    assert part_bytes(events)[part] == data[pax:header]
    assert outcomes(events)[part].state is State.READ


def test_a_member_of_0xffffffff_compressed_bytes_has_a_zip64_data_descriptor(
    tmp_path: Path,
) -> None:
    # a sparse file: an encrypted member (not read) of 4 GiB - 1 bytes, no zip64 extra field,
    # then its zip64 data descriptor (CRC-32 and two 8-byte sizes) and 16 bytes between members
    size = 0xFFFFFFFF
    name = b"big.bin"
    local = (
        struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0x09, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
    )
    descriptor = struct.pack("<IQQ", 0x12345678, size, size)
    gap = b"G" * 16
    central_at = len(local) + size + len(descriptor) + len(gap)
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x031E,
            45,
            0x09,
            0,
            0,
            0x21,
            0x12345678,
            size,
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + name
    )
    record64_at = central_at + len(central)
    record64 = struct.pack(
        "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, len(central), central_at
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, record64_at, 1)
    end = end_record(1, len(central), 0xFFFFFFFF, 0)
    path = tmp_path / NAME
    with path.open("wb") as out:
        out.write(local)
        out.seek(len(local) + size)
        out.write(descriptor + gap + central + record64 + locator + end)
    start = len(local) + size + len(descriptor)
    label = between(start, start + len(gap))
    with path.open("rb") as stream:
        events = list(read_archive(stream, NAME))
    got = outcomes(events)
    assert got[member("big.bin")].reason == "encrypted zip member: not read"
    assert got[member(label)] == read(label, "file", len(gap))
    assert part_bytes(events)[member(label)] == gap


def test_parts_met_once_the_total_budget_is_spent_are_unchecked_not_read_empty() -> None:
    """`--max-archive-size 15` over two 10-byte members: the second member is cut at the limit,
    and the comment and the headers part, met after it, are unchecked with the same reason (they
    were reported "read in full", 0 bytes, though never searched)."""
    import zipfile  # noqa: PLC0415

    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("a.bin", b"A" * 10)
        archive.writestr("b.bin", b"B" * 10)
        archive.comment = b"a comment that could hold a key"
    limit = 15
    reason = f"the input's decompressed total passed the limit of {limit} bytes"
    found = outcomes(events_of(data.getvalue(), ArchiveLimits(max_total_bytes=limit)))
    assert found[member("a.bin")] == read("a.bin", "file", 10)
    # the first byte past the limit is read, so that the limit is known to be passed
    assert found[member("b.bin")].state is State.UNCHECKED
    assert found[member("b.bin")].size == limit - 10 + 1
    for part in ("(zip comment)", HEADERS):
        assert (found[member(part)].state, found[member(part)].reason) == (State.UNCHECKED, reason)
        assert found[member(part)].size == 1


def test_a_comment_that_makes_the_end_record_search_start_at_an_entry_is_read() -> None:
    """zipfile looks for the end record in the file's last 64 KiB + 22 bytes. With a comment of
    the right length that read starts exactly at the second central-directory entry; the UTF-8
    name flags must still be taken from the directory itself (they were taken from that read,
    out of line with the entries: a UTF-8 name outside cp437 then raised, a file `unzip` lists)."""
    entries = [Entry("ж.bin".encode(), b"A" * 10, flags=0x800), Entry(b"b.bin", b"B" * 10)]
    plain = build(entries)
    second_entry = plain.central + len(entries[0].central(0))
    comment = bytes(second_entry - plain.record + TAIL - 22 + 1)
    zip_ = build(entries, comment=comment)
    assert zip_.data[len(zip_.data) - TAIL - 1 :][:4] == b"PK\x01\x02"  # where the search starts
    found = outcomes(events_of(zip_.data))
    assert found[member("ж.bin")] == read("ж.bin", "file", 10)
    assert found[member("b.bin")] == read("b.bin", "file", 10)
    assert found[NAME + " [archive]"] == zip_read(2)


def test_each_stream_view_is_a_raw_stream_a_buffered_reader_reads_whole() -> None:
    """The views the archive readers read through (counting, keeping the bytes tarfile skips,
    zip names as cp437) are `io.RawIOBase` streams: readable, and `readinto` fills the buffer,
    so `io.BufferedReader` (what gzip, tarfile or a later reader may wrap them in) reads the
    bytes whole and unchanged."""
    from provguard.scan import archive  # noqa: PLC0415

    plain = bytes(range(256)) * 100  # 25,600 bytes: several of BufferedReader's 8 KiB reads

    def buffered(raw: io.RawIOBase) -> bytes:
        reader = io.BufferedReader(raw)
        return b"".join(iter(lambda: reader.read(1000), b""))  # through readinto

    counting = archive._Counting(io.BytesIO(plain))
    assert buffered(counting) == plain
    assert counting.count == len(plain)
    tee = archive._Tee(io.BytesIO(plain), 1 << 20)
    assert buffered(tee) == plain
    assert tee.span(100, 200) == plain[100:200]
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("a.bin", plain)  # stored: larger than one buffered read
    names = archive._Cp437Names(io.BytesIO(packed.getvalue()))
    assert buffered(names) == packed.getvalue()  # no directory read: as it is


def test_the_tee_keeps_at_least_its_last_keep_bytes_whatever_the_read_sizes() -> None:
    """What `span` may still give: the last `keep` bytes read at any moment (the ring is cut
    back to `keep` once it holds more than twice that)."""
    from provguard.scan import archive  # noqa: PLC0415

    data = bytes(random.Random(7).randrange(256) for _ in range(5000))
    for size in (1, 7, 100, 199, 200, 201, 1000):
        tee = archive._Tee(io.BytesIO(data), 100)
        read = 0
        while chunk := tee.read(size):
            read += len(chunk)
            assert tee.span(max(0, read - 100), read) == data[max(0, read - 100) : read]
        assert tee.span(0, 1) is None  # long gone
