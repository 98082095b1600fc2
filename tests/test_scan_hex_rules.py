"""Intel HEX address records through both ways the reader decodes (scan/hexfile.py): the data of
every record is where `intelhex`, the reference reader, puts it.

The records are written here byte by byte (with their checksums) so that every address record
type appears: extended segment (02, base = value * 16), extended linear (04, base = value <<
16), start records (03, 05, no data), short records and records out of address order, which
the fast column-wise path hands to the careful line-by-line one.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from intelhex import IntelHex

from provguard.cli import main
from provguard.scan.hexfile import HexDecoder, lines_of_addresses, parse_intel_hex


def record(kind: int, address: int, data: bytes) -> bytes:
    body = bytes([len(data), address >> 8, address & 0xFF, kind]) + data
    return b":" + (body + bytes([-sum(body) & 0xFF])).hex().upper().encode() + b"\n"


def oracle(text: bytes) -> list[tuple[int, bytes]]:
    """Contiguous runs of data as intelhex reads them."""
    ih = IntelHex()
    ih.loadhex(io.StringIO(text.decode()))
    return [(a, ih.tobinstr(start=a, end=b - 1)) for a, b in ih.segments()]


def ours(text: bytes) -> list[tuple[int, bytes]]:
    """The reader's segments, merged where one ends where the next begins."""
    runs: list[tuple[int, bytes]] = []
    for segment in sorted(parse_intel_hex(text, "t.hex"), key=lambda s: s.address):
        if runs and runs[-1][0] + len(runs[-1][1]) == segment.address:
            runs[-1] = (runs[-1][0], runs[-1][1] + segment.data)
        else:
            runs.append((segment.address, segment.data))
    return runs


def data_records(r: random.Random, start: int, size: int, width: int = 16) -> bytes:
    return b"".join(
        record(0, (start + i) & 0xFFFF, r.randbytes(min(width, size - i)))
        for i in range(0, size, width)
    )


def test_extended_linear_addresses_are_where_intelhex_puts_them() -> None:
    r = random.Random(1)
    text = b"".join(
        [
            record(4, 0, bytes([0x00, 0x00])),
            data_records(r, 0x0000, 256),
            record(4, 0, bytes([0x00, 0xFF])),  # 0x00FF0000: beyond 64 KiB
            data_records(r, 0xFF00, 256),  # runs up to the top of the 64 KiB page
            record(4, 0, bytes([0x10, 0x00])),  # 0x10000000 (UICR)
            data_records(r, 0x1000, 48),
            record(5, 0, bytes([0x00, 0x00, 0x01, 0x00])),
            record(1, 0, b""),
        ]
    )
    assert HexDecoder()._fast(text)  # the column-wise path
    assert ours(text) == oracle(text)


def test_extended_segment_addresses_are_where_intelhex_puts_them() -> None:
    r = random.Random(2)
    text = b"".join(
        [
            record(2, 0, bytes([0x10, 0x00])),  # base 0x10000
            data_records(r, 0x0100, 64),
            record(2, 0, bytes([0x00, 0x21])),  # base 0x210: not a multiple of 64 KiB
            data_records(r, 0x0000, 40, width=13),  # short records
            record(3, 0, bytes([0x00, 0x00, 0x01, 0x00])),
            record(1, 0, b""),
        ]
    )
    assert ours(text) == oracle(text)


@pytest.mark.parametrize("kind", [2, 4])
def test_records_out_of_order_across_address_records(kind: int) -> None:
    r = random.Random(3)
    base = bytes([0x00, 0x01]) if kind == 4 else bytes([0x10, 0x00])
    zero = bytes([0x00, 0x00])
    text = b"".join(
        [
            record(kind, 0, base),
            data_records(r, 0x0200, 32),
            record(kind, 0, zero),
            data_records(r, 0x0100, 32),
            record(kind, 0, base),
            data_records(r, 0x0000, 32),  # before the first run of the same base
            data_records(r, 0x0220, 16),  # right after it: one run
            record(1, 0, b""),
        ]
    )
    assert ours(text) == oracle(text)


# --- a damaged HEX inside a DFU package ---------------------------------------------------------


def test_a_damaged_hex_in_a_zip_is_searched_as_records_and_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A key pasted between the records of app.hex, and a record whose checksum is wrong, in a DFU
    # package: the key is found in the HEX text at its byte offset, the damaged record is named
    # by its line as unchecked, and the records around it are decoded where intelhex puts them.
    image = IntelHex()
    image.frombytes(bytes(range(256)) * 4, offset=0x8000)
    written = io.StringIO()
    image.write_hex_file(written)
    records = written.getvalue().splitlines(keepends=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    damaged = len(records) - 2  # the last data record, before the end-of-file record
    checksum = records[damaged][-3:-1]
    records[damaged] = records[damaged][:-3] + ("00" if checksum != "00" else "01") + "\n"
    text = "".join(records[:3]) + pem + "".join(records[3:])
    package = tmp_path / "dfu.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.hex", text)
    assert main(["scan", "--format", "json", str(package)]) == 1
    report = json.loads(capsys.readouterr().out)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    member = f"{package}!app.hex"
    assert [
        (f["path"], f["section"], f["fileOffset"], f["length"], f["key"])
        for f in report["findings"]
    ] == [
        (
            member,
            "Intel HEX text",
            text.index("-----BEGIN"),
            len(pem.rstrip("\n")),
            "SHA256:" + hashlib.sha256(spki).hexdigest(),
        )
    ]
    damaged_line = 3 + pem.count("\n") + (damaged - 3) + 1
    reason = (
        f"line {damaged_line}: Intel HEX record checksum mismatch; the rest of the file was "
        "searched as records and as text"
    )
    assert report["unchecked"] == [
        {"path": member, "reason": reason, "line": damaged_line, "offset": None}
    ]
    (entry,) = [c for c in report["coverage"] if c["path"] == member]
    lost = int(records[damaged][1:3], 16)  # the damaged record's data is not decoded
    assert entry["size"] == len(text.encode())
    assert entry["ranges"] == [{"start": 0x8000, "end": 0x8000 + 1024 - lost, "label": None}]
    assert entry["notes"] == [
        f"{pem.count(chr(10))} line(s) are not Intel HEX records (first: line 4): searched as text"
    ]


def test_the_line_of_each_address_across_segment_records_short_records_and_blank_lines() -> None:
    # The line numbers are counted here as the file is written: a report points at the record.
    lines: list[bytes] = [b"", b"; build 42"]  # a blank line and a short note come first
    where: dict[int, int] = {}

    def data(absolute: int, base: int, size: int) -> None:
        lines.append(record(0, absolute - base, bytes(size)).rstrip(b"\n"))
        for address in range(absolute, absolute + size):
            where.setdefault(address, len(lines))

    lines.append(record(2, 0, (0x1200).to_bytes(2, "big")).rstrip(b"\n"))  # base 0x12000
    data(0x12000, 0x12000, 8)  # a short record
    data(0x12008, 0x12000, 32)  # a long one
    lines.append(record(4, 0, (0x0003).to_bytes(2, "big")).rstrip(b"\n"))  # base 0x30000
    data(0x30010, 0x30000, 16)
    lines.append(b":00000001FF")
    text = b"\n".join(lines) + b"\n"
    wanted = [0x12000, 0x12007, 0x12008, 0x12009, 0x12027, 0x30010, 0x3001F, 0x12028, 0x30020]
    expected = {a: where[a] for a in wanted if a in where}
    assert lines_of_addresses(text, wanted) == expected
    assert expected == {
        0x12000: 4, 0x12007: 4, 0x12008: 5, 0x12009: 5, 0x12027: 5, 0x30010: 7, 0x3001F: 7
    }  # fmt: skip
