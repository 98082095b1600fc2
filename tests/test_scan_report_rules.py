"""Report rules: the text report's lines, the JSON document's keys, SARIF locations and URIs, the
JSON writer's text, and the progress line's rate.

Every report is written from a `ScanResult` built here, so each expected line or value is made from
the paths, addresses, offsets and counts the test planted.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from provguard.scan import report
from provguard.scan.model import AddressRange, Coverage, Finding, Kind, ScanResult, Unchecked
from provguard.scan.progress import Progress
from provguard.scan.report import dumps, write_json, write_sarif, write_text

KEY = "SHA256:" + hashlib.sha256(b"a key's public key info").hexdigest()
CERT = "SHA256:" + hashlib.sha256(b"a certificate").hexdigest()


def finding(path: str, kind: Kind = Kind.PRIVATE_KEY, **fields: Any) -> Finding:
    values: dict[str, Any] = {
        "encoding": "der",
        "address": None,
        "length": 121,
        "section": None,
        "symbol": None,
        "key": KEY if kind is Kind.PRIVATE_KEY else CERT,
    }
    values.update(fields)
    return Finding(path, kind, **values)


# --- the text report ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"address": 0x8_1000, "partition": "app", "section": "rodata"}, "0x00081000"),
        ({"file_offset": 4096, "section": ".rodata"}, "file offset 4096"),
        ({"section": ".rodata"}, ""),
        ({"address": 0x2000, "file_offset": 77}, "0x00002000"),
    ],
)
def test_a_finding_is_described_by_its_place_kind_and_fingerprint(
    fields: dict[str, Any], where: str
) -> None:
    """The address when the bytes are loaded, else the byte offset in the file; a section reads
    "in SECTION" after them, and is the whole place when there is neither."""
    key = finding("app.bin", **fields)
    place = [where] if where else []
    if key.partition:
        place.append(f"in partition {key.partition}")
    if key.section:
        place.append(f"in {key.section}" if place else key.section)
    expected = f"private-key der, 121 bytes at {' '.join(place)}, key {KEY}"
    assert report.describe(key) == expected
    cert = finding("app.bin", Kind.CERTIFICATE, **fields)
    assert report.describe(cert) == expected.replace("private-key", "certificate").replace(
        f"key {KEY}", f"certificate {CERT}"
    )


def test_a_known_or_allowed_finding_says_which_file_or_entry() -> None:
    plain = finding("a.bin", address=0x100)
    assert report.describe(plain) == f"private-key der, 121 bytes at 0x00000100, key {KEY}"
    known = finding("a.bin", address=0x100, known="keys/dev\n.pem", allowed_by="key " + KEY)
    assert report.describe(known) == (
        f"private-key der, 121 bytes at 0x00000100, key {KEY}, known from keys/dev\\x0a.pem, "
        f"allowed by `key {KEY}`"
    )


def ranges(count: int) -> tuple[AddressRange, ...]:
    """`count` ranges of 0x100 bytes every 0x1000, every other one labelled."""
    return tuple(
        AddressRange(0x1000 * i, 0x1000 * i + 0x100, f"run{i}" if i % 2 else None)
        for i in range(count)
    )


def range_text(item: AddressRange) -> str:
    return f"0x{item.start:08X}-0x{item.end:08X}" + (f" {item.label}" if item.label else "")


@pytest.mark.parametrize("count", [1, 2, 5, 6, 7, 8, 13])
def test_coverage_line_shows_six_ranges_and_counts_the_rest(count: int) -> None:
    planted = ranges(count)
    item = Coverage(
        "fw.hex",
        "ihex",
        5000,
        4096,
        ranges=planted,
        members=("a", "b", "c"),
        notes=("gap after 0x00001100", "checksum"),
    )
    shown = ", ".join(range_text(r) for r in planted[:6])
    more = f", +{count - 6} more" if count > 6 else ""
    assert report.coverage_line(item) == (
        f"fw.hex: read in full: ihex, 5000 bytes, 4096 searched, ranges {shown}{more}, "
        "3 member(s); gap after 0x00001100; checksum"
    )


def test_coverage_line_of_a_plain_file_names_format_size_and_bytes_searched() -> None:
    item = Coverage("a.bin", "raw", 10, 10, notes=("only note",))
    line = "a.bin: read in full: raw, 10 bytes, 10 searched; only note"
    assert report.coverage_line(item) == line
    bare = Coverage("a.zip", "zip", 300, 0, members=("x", "y"))
    line = "a.zip: read in full: zip, 300 bytes, 0 searched, 2 member(s)"
    assert report.coverage_line(bare) == line


def test_text_report_lines_flags_unchecked_lines_coverage_skipped_and_summary() -> None:
    key = finding("app.bin", address=0x8000)
    cert = finding("app.bin", Kind.CERTIFICATE, file_offset=64)
    allowed = finding("boot.bin", address=0x10, allowed_by="key " + KEY)
    bad_record = Unchecked("fw.hex", "damaged record", line=7)
    named = Unchecked("fw.hex", "checksum wrong on line 9", line=9)
    empty = Unchecked("empty.hex", "empty image file (0 bytes)")
    coverage = (
        Coverage("app.bin", "raw", 4096, 4096, findings=2),
        Coverage("boot.bin", "raw", 100, 100),
        Coverage("data.bin", "raw", 30, 30),
        Coverage("fw.hex", "ihex", 700, 512, unchecked=(bad_record, named)),
        Coverage("empty.hex", "ihex", 0, 0, unchecked=(empty,)),
    )
    skipped = (Unchecked("copy.bin", "the same file as app.bin"),)
    result = ScanResult((key, cert), (allowed,), coverage, skipped)
    total = 4096 + 100 + 30 + 700 + 0
    assert write_text(result, Kind.PRIVATE_KEY).splitlines() == [
        f"app.bin: FAIL: private-key der, 121 bytes at 0x00008000, key {KEY}",
        f"app.bin: note: certificate der, 121 bytes at file offset 64, certificate {CERT}",
        f"boot.bin: allowed: private-key der, 121 bytes at 0x00000010, key {KEY}, "
        f"allowed by `key {KEY}`",
        "fw.hex: UNCHECKED: damaged record (line 7)",
        "fw.hex: UNCHECKED: checksum wrong on line 9",
        "empty.hex: UNCHECKED: empty image file (0 bytes)",
        "coverage:",
        "  app.bin: found: raw, 4096 bytes, 4096 searched",
        "  boot.bin: read in full: raw, 100 bytes, 100 searched",
        "  data.bin: read in full: raw, 30 bytes, 30 searched",
        "  fw.hex: unchecked: ihex, 700 bytes, 512 searched",
        "  empty.hex: unchecked: ihex, 0 bytes, 0 searched",
        "  copy.bin: skipped: the same file as app.bin",
        f"scanned 5 file(s) and archive member(s), {total} bytes (2 not read in full): "
        "1 private key(s), 1 certificate(s), 1 allowed; "
        "fail on private-key: FAIL, and 3 part(s) unchecked",
    ]
    # both fail when certificates do
    lines = write_text(result, Kind.CERTIFICATE).splitlines()
    assert lines[1].startswith("app.bin: FAIL: certificate der")


# --- JSON --------------------------------------------------------------------------------------


def test_json_report_names_verdict_fail_on_and_archive_members() -> None:
    zip_cover = Coverage("fw.zip", "zip", 900, 0, members=("app.bin", "boot.bin"))
    member = Coverage("fw.zip!app.bin", "raw", 800, 800, findings=1)
    cert = finding("fw.zip!app.bin", Kind.CERTIFICATE, address=0x40)
    result = ScanResult((cert,), (), (zip_cover, member))
    for fail_on, verdict in ((Kind.PRIVATE_KEY, "clean"), (Kind.CERTIFICATE, "FAIL")):
        document = json.loads(write_json(result, fail_on))
        assert document["verdict"] == verdict
        assert document["failOn"] == fail_on.value
        assert [c["members"] for c in document["coverage"]] == [["app.bin", "boot.bin"], []]
        assert document["scanned"] == [
            {"path": "fw.zip", "format": "zip", "size": 900},
            {"path": "fw.zip!app.bin", "format": "raw", "size": 800},
        ]


# --- SARIF -------------------------------------------------------------------------------------


def sarif(result: ScanResult, fail_on: Kind = Kind.PRIVATE_KEY) -> dict[str, Any]:
    run: dict[str, Any] = json.loads(write_sarif(result, fail_on))["runs"][0]
    return run


def member_of(archive: str, name: str, *, size: int = 100) -> tuple[Coverage, ...]:
    return (Coverage(f"{archive}!{name}", "raw", size, size),)


@pytest.mark.parametrize(
    ("archive", "uri"),
    [
        ("fw.zip", "fw.zip"),
        ("a", "a"),  # a one-letter name: its "!" is the path's second character
        ("dist/a!b.zip", "dist/a%21b.zip"),  # an archive whose own name holds "!"
    ],
)
def test_an_archive_members_finding_is_located_in_the_archive_and_named_as_member(
    archive: str, uri: str
) -> None:
    """SARIF names the file on disk as the artifact and the member as a logical location; the
    byte offset inside a member is not an offset in the file, so no region is given."""
    key = finding(f"{archive}!app.bin", address=0x2000, file_offset=3)
    coverage = (
        Coverage(archive, "zip", 900, 0, members=("app.bin",)),
        *member_of(archive, "app.bin"),
    )
    [hit] = sarif(ScanResult((key,), (), coverage))["results"]
    assert hit["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": uri},
                "address": {"absoluteAddress": 0x2000, "length": 121},
            },
            "logicalLocations": [{"name": "app.bin", "kind": "member"}],
        }
    ]


@pytest.mark.parametrize("outer", ["outer.zip", "a"])  # "a": its "!" is the second character
def test_a_member_of_a_nested_archive_is_located_in_the_file_on_disk(outer: str) -> None:
    """outer.zip holds inner.zip, which holds app.bin: the artifact is outer.zip (a file code
    scanning can link to), the member `inner.zip!app.bin`; a file on disk whose name holds "!"
    and a plain file named like the part before it do not change that."""
    coverage = (
        Coverage(outer, "zip", 900, 0, members=("inner.zip",)),
        Coverage(f"{outer}!inner.zip", "zip", 800, 0, members=("app.bin",)),
        *member_of(f"{outer}!inner.zip", "app.bin"),
        Coverage("x", "raw", 10, 10),
        Coverage("x!y.zip", "zip", 500, 0, members=("m.bin",)),
        *member_of("x!y.zip", "m.bin"),
    )
    keys = (finding(f"{outer}!inner.zip!app.bin", address=0x10), finding("x!y.zip!m.bin"))
    results = sarif(ScanResult(keys, (), coverage))["results"]
    assert [
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["logicalLocations"],
        )
        for r in results
    ] == [
        (outer, [{"name": "inner.zip!app.bin", "kind": "member"}]),
        ("x%21y.zip", [{"name": "m.bin", "kind": "member"}]),
    ]


def test_a_member_whose_name_holds_a_bang_stays_one_member() -> None:
    """Members "a" and "a!b" of fw.zip: a finding in "a!b" is member "a!b" of fw.zip, not member
    "b" of the (non-archive) member "a"."""
    coverage = (
        Coverage("fw.zip", "zip", 900, 0, members=("a", "a!b")),
        *member_of("fw.zip", "a"),
        *member_of("fw.zip", "a!b"),
    )
    key = finding("fw.zip!a!b", address=0x10)
    [hit] = sarif(ScanResult((key,), (), coverage))["results"]
    [location] = hit["locations"]
    assert location["physicalLocation"]["artifactLocation"] == {"uri": "fw.zip"}
    assert location["logicalLocations"] == [{"name": "a!b", "kind": "member"}]


@pytest.mark.parametrize("archive", ["fw.zip", "z"])  # "z": its "!" is the second character
def test_an_unchecked_member_whose_name_holds_a_bang_in_an_archive_with_none_listed(
    archive: str,
) -> None:
    """fw.zip lists no member (its only one is encrypted), named "a!b": the artifact is fw.zip
    and the member "a!b", as for any member."""
    secret = Unchecked(f"{archive}!a!b", "encrypted member")
    coverage = (Coverage(archive, "zip", 500, 0, unchecked=(secret,)),)
    [result] = sarif(ScanResult((), (), coverage))["results"]
    assert result["locations"] == [
        {
            "physicalLocation": {"artifactLocation": {"uri": archive}},
            "logicalLocations": [{"name": "a!b", "kind": "member"}],
        }
    ]


def test_an_unchecked_member_of_an_archive_with_no_member_listed_is_located_in_it() -> None:
    secret = Unchecked("fw.zip!secret.bin", "encrypted member")
    coverage = (Coverage("fw.zip", "zip", 500, 0, unchecked=(secret,)),)
    run = sarif(ScanResult((), (), coverage))
    expected_location = {
        "physicalLocation": {"artifactLocation": {"uri": "fw.zip"}},
        "logicalLocations": [{"name": "secret.bin", "kind": "member"}],
    }
    [result] = run["results"]
    assert result["ruleId"] == "provguard/unchecked"
    assert result["level"] == "error"
    assert result["message"] == {"text": "fw.zip!secret.bin: encrypted member"}
    assert result["locations"] == [expected_location]
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["properties"] == {"verdict": "NOT CLEAN"}
    assert invocation["toolExecutionNotifications"] == [
        {
            "level": "error",
            "message": {"text": "fw.zip!secret.bin: encrypted member"},
            "locations": [expected_location],
            "descriptor": {"id": "provguard/unchecked"},
        }
    ]


def test_sarif_levels_fingerprints_and_verdict_follow_fail_on() -> None:
    key = finding("app.bin", address=0x100, file_offset=0x100)
    cert = finding("app.bin", Kind.CERTIFICATE, file_offset=0x400, length=300)
    result = ScanResult((key, cert), (), (Coverage("app.bin", "raw", 4096, 4096, findings=2),))
    for fail_on, levels in (
        (Kind.PRIVATE_KEY, ["error", "warning"]),
        (Kind.CERTIFICATE, ["error", "error"]),
    ):
        run = sarif(result, fail_on)
        assert [r["level"] for r in run["results"]] == levels
        assert [r["ruleId"] for r in run["results"]] == [
            "provguard/private-key",
            "provguard/certificate",
        ]
        assert [r["partialFingerprints"] for r in run["results"]] == [
            {"provguardKey/v1": f"private-key:{KEY}"},
            {"provguardKey/v1": f"certificate:{CERT}"},
        ]
        assert run["invocations"][0]["properties"] == {"verdict": "FAIL"}
        assert run["results"][1]["locations"][0]["physicalLocation"]["region"] == {
            "byteOffset": 0x400,
            "byteLength": 300,
        }


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("C:\\build\\zephyr.bin", "C:/build/zephyr.bin"),  # a Windows path: "/" and a drive
        ("out:1/app.bin", "out:1/app.bin"),
        ("out dir/#1?.bin", "out%20dir/%231%3F.bin"),
        ("caf\u00e9.bin", "caf%C3%A9.bin"),  # UTF-8, byte by byte
        ("caf\udce9.bin", "caf%E9.bin"),  # a non-UTF-8 name: its own byte
        ("50%.bin", "50%25.bin"),
    ],
)
def test_sarif_uri_of_an_odd_file_name(path: str, uri: str) -> None:
    key = finding(path, file_offset=8)
    [hit] = sarif(ScanResult((key,), (), (Coverage(path, "raw", 200, 200, findings=1),)))["results"]
    physical = hit["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": uri}
    assert physical["region"] == {"byteOffset": 8, "byteLength": 121}


# --- the JSON writer ---------------------------------------------------------------------------

#: Values a report holds, in the shapes the writer must write as the standard library does.
DOCUMENTS: list[Any] = [
    {"name": "caf\u00e9 \u65e5\u672c \U0001f511", "ctl": "\x00\x01\x1f\x7f\x85 \u2028\u2029"},
    {"quote": '"', "backslash": "\\", "newline": "a\nb\r\tc", "surrogate": "x\udc80y"},
    {"empty": {}, "none": [], "nested": {"a": [{}, [], [[]], {"b": {}}]}, "tuple": ()},
    [True, False, None, 0, -1, 2**64, "", {"": ""}],
    {"\u00e9\n": [1, [2, [3, {"deep": None}]]]},
    "a bare string",
    7,
    None,
    [],
    {},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_json_writer_writes_report_values_as_the_standard_library_without_it(
    document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same text as json.dumps(indent=2), written by the report's own writer: the standard
    library's pure-Python indenting is the slow path, kept for values a report never holds."""
    expected = json.dumps(document, indent=2) + "\n"

    def slow_path(*args: object, **kwargs: object) -> str:
        raise AssertionError("a report value went to the standard library's writer")

    monkeypatch.setattr(report.json, "dumps", slow_path)
    assert dumps(document) == expected


@pytest.mark.parametrize(
    "document", [{"ratio": 0.0}, [0.0, 1.5], {"a": [1, {"b": -0.0}]}, 0.0, {"x": float("nan")}]
)
def test_json_writer_writes_floats_as_the_standard_library(document: Any) -> None:
    assert dumps(document) == json.dumps(document, indent=2) + "\n"


# --- progress ----------------------------------------------------------------------------------


@pytest.mark.parametrize("elapsed", [0.0, 0.25, 0.5, 1.0, 2.0, 3.0])
def test_progress_line_rate_is_mib_read_per_second(elapsed: float) -> None:
    """Three MiB read: the rate is 3 / seconds, and 0 before any time has passed."""
    progress = Progress.off()
    progress.start(2, 4 << 20)
    progress.advance(True, 3 << 20)
    rate = 3 / elapsed if elapsed else 0.0
    assert progress.line(elapsed) == f"scanning: 1/2 files, 3.0/4.0 MiB, {rate:.1f} MiB/s"
