"""A key written into C source as literals is found: `xxd -i key.der > key.h`, Zephyr's
`generate_inc_file_for_target` (`0x30, 0x81, ...,` eight to a line, what NCS samples use to put
a certificate into a build) and strings of `\\x` escapes. Such a header is how a key gets into a
tree or a commit in no other form: the pre-commit hook and a scan of a build directory must fail
on it as they do on the PEM file it came from.

Each expected offset is found here by reading the text with a pattern of this test's own; the
keys are generated at test time and never printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provguard.cli import main
from provguard.credentials import key_fingerprint
from provguard.scan import engine
from provguard.scan.known import KnownIndex
from tests import factories as f

IN_CI = bool(os.environ.get("CI"))
needs_xxd = pytest.mark.skipif(
    shutil.which("xxd") is None and not IN_CI, reason="needs xxd (.ci/install-deps installs it)"
)


def scan(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict]:
    code = main(["scan", "--format", "json", *map(str, args)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out)


def file2hex(data: bytes) -> str:
    """What Zephyr's scripts/build/file2hex.py writes (`generate_inc_file_for_target`): eight
    `0x..` to a line, each line ending with a comma."""
    lines = [", ".join(f"0x{b:02x}" for b in data[i : i + 8]) + "," for i in range(0, len(data), 8)]
    return "\n".join(lines) + "\n"


def literal_starts(text: str) -> list[int]:
    """Where each `0x..` element of the array in `text` starts (this test's own reading)."""
    return [m.start() for m in re.finditer(r"(?<![0-9A-Za-z])0[xX][0-9a-fA-F]{1,2}\b", text)]


def only_finding(report: dict) -> dict:
    [finding] = report["findings"]
    return finding


@needs_xxd
def test_xxd_i_of_a_der_key_fails_the_scan_at_the_key_s_first_literal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    der = f.key_der(key)
    (tmp_path / "device.der").write_bytes(der)
    header = tmp_path / "device_key.h"
    with header.open("w") as out:
        subprocess.run(["xxd", "-i", "device.der"], cwd=tmp_path, stdout=out, check=True)
    text = header.read_text()
    starts = literal_starts(text)
    assert len(starts) == len(der)  # the oracle reads the header xxd wrote

    code, report = scan(capsys, header)

    assert code == 1
    finding = only_finding(report)
    assert finding["kind"] == "private-key"
    assert finding["encoding"].startswith("PKCS#8 DER as a C byte array")
    assert finding["key"] == key_fingerprint(key)
    assert finding["fileOffset"] == starts[0]
    last = starts[-1]
    assert finding["fileOffset"] + finding["length"] == last + len("0x00")
    assert report["verdict"] == "FAIL"


def test_a_pem_key_put_in_a_build_by_generate_inc_file_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key(ec.SECP384R1())
    inc = tmp_path / "client-key.pem.inc"
    inc.write_text(file2hex(f.key_pem(key, pkcs8=False)))

    code, report = scan(capsys, inc)

    assert code == 1
    finding = only_finding(report)
    assert finding["encoding"].startswith("PEM SEC1 as a C byte array")
    assert finding["key"] == key_fingerprint(key)
    assert finding["fileOffset"] == 0


def test_the_key_is_located_inside_a_larger_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key in a struct blob: what comes before it is not part of the finding."""
    key = f.ec_key()
    der = f.key_der(key, pkcs8=False)
    blob = os.urandom(40) + der + os.urandom(24)
    source = tmp_path / "blob.c"
    source.write_text("const uint8_t blob[] = {\n" + file2hex(blob) + "};\n")
    starts = literal_starts(source.read_text())

    code, report = scan(capsys, source)

    assert code == 1
    finding = only_finding(report)
    assert finding["encoding"].startswith("SEC1 DER as a C byte array")
    assert finding["fileOffset"] == starts[40]
    assert finding["fileOffset"] + finding["length"] == starts[40 + len(der) - 1] + len("0x00")


def test_offset_comments_between_the_elements_are_not_read_as_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`/* 0x000010 */` before each line (some converters write the offset): its digits are no
    byte of the key; were they decoded, the DER would be corrupt and nothing found."""
    key = f.ec_key()
    der = f.key_der(key)
    lines = [
        f"    /* 0x{i:06X} */ " + " ".join(f"0X{b:02X}," for b in der[i : i + 8])
        for i in range(0, len(der), 8)
    ]
    header = tmp_path / "key.h"
    header.write_text("static const unsigned char key[] = {\n" + "\n".join(lines) + "\n};\n")
    elements = [m.start() for m in re.finditer(r"0X[0-9A-F]{2},", header.read_text())]
    assert len(elements) == len(der)  # this test's reading: the comments' 0x00001 are no element

    code, report = scan(capsys, header)

    assert code == 1
    finding = only_finding(report)
    assert finding["key"] == key_fingerprint(key)
    assert finding["fileOffset"] == elements[0]
    assert finding["fileOffset"] + finding["length"] == elements[-1] + len("0X00")


def test_hand_written_literals_without_a_leading_zero_and_line_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    der = f.key_der(key)
    assert b"\x00" in der
    assert len(der) == 48
    elements = [f"0x{b:x}" for b in der]  # 0x0, 0x4: one digit where one will do
    rows = [", ".join(elements[i : i + 12]) for i in range(0, 36, 12)]
    rows.append("\n\t, ".join(elements[36:]))  # the comma first, as some write it
    source = tmp_path / "ed.c"
    source.write_text("uint8_t k[] = {\n\t" + ", // from 0x0C\n\t".join(rows) + "\n};\n")

    code, report = scan(capsys, source)

    assert code == 1
    finding = only_finding(report)
    assert finding["encoding"].startswith("PKCS#8 DER as a C byte array")
    assert finding["key"] == key_fingerprint(key)


def test_a_string_of_x_escapes_cut_over_lines_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    der = f.key_der(key)
    pieces = [
        '"' + "".join(f"\\x{b:02x}" for b in der[i : i + 16]) + '"' for i in range(0, len(der), 16)
    ]
    source = tmp_path / "key.c"
    source.write_text("const char key[] =\n\t" + "\n\t".join(pieces) + ";\n")
    first = source.read_text().index("\\x")

    code, report = scan(capsys, source)

    assert code == 1
    finding = only_finding(report)
    assert finding["encoding"].startswith("PKCS#8 DER as hex escapes in a C string")
    assert finding["fileOffset"] == first


def test_a_certificate_as_literals_is_a_certificate_and_the_gate_stays_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CA certificate embedded as an array (what NCS samples do) is listed, not failed on."""
    pki = f.device_pki()
    der = f.cert_der(pki.ca_cert)
    inc = tmp_path / "ca.der.inc"
    inc.write_text(file2hex(der))

    code, report = scan(capsys, inc)

    assert code == 0
    assert report["verdict"] == "clean"
    [cert] = report["allowed"] + report["findings"]
    assert cert["kind"] == "certificate"
    assert cert["encoding"].startswith("DER as a C byte array")


def test_random_bytes_as_an_array_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inc = tmp_path / "table.inc"
    inc.write_text(file2hex(os.urandom(4096)))

    code, report = scan(capsys, inc)

    assert (code, report["verdict"], report["findings"]) == (0, "clean", [])


def test_a_known_key_s_scalar_as_literals_is_named_as_known(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --key, a raw scalar as 32 literals or escapes (the shortest run decoded) names the
    key file."""
    key = f.ec_key()
    key_file = tmp_path / "device.pem"
    key_file.write_bytes(f.key_pem(key))
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    source = tmp_path / "scalar.c"
    source.write_text("static const uint8_t d[32] = {" + file2hex(scalar) + "};\n")

    escaped = tmp_path / "scalar_escaped.c"
    escaped.write_text(
        'static const char d[] = "' + "".join(f"\\x{b:02X}" for b in scalar) + '";\n'
    )

    code, report = scan(capsys, "--key", key_file, source, escaped)

    assert code == 1
    by_file = {x["path"]: x for x in report["findings"]}
    assert by_file.keys() == {str(source), str(escaped)}
    assert {x["known"] for x in by_file.values()} == {str(key_file)}
    assert "as a C byte array" in by_file[str(source)]["encoding"]
    assert "as hex escapes in a C string" in by_file[str(escaped)]["encoding"]


def test_the_pre_commit_hook_refuses_a_key_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`provguard-no-private-keys` is `scan --fail-on private-key` on each staged file."""
    key = f.ec_key()
    header = tmp_path / "certificates.h"
    header.write_text(
        "static const unsigned char client_key[] = {\n" + file2hex(f.key_der(key)) + "};\n"
    )

    code = main(["scan", "--fail-on", "private-key", str(header)])
    out = capsys.readouterr().out

    assert code == 1
    assert "as a C byte array" in out
    f.assert_no_key_material(out, key)


def test_every_array_of_a_file_is_read_and_each_key_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table of other bytes first, then two keys, each an array of its own."""
    first, second = f.ec_key(), f.ec_key()
    source = tmp_path / "keys.c"
    source.write_text(
        "const uint8_t table[] = {\n" + file2hex(os.urandom(256)) + "};\n"
        "const uint8_t first[] = {\n" + file2hex(f.key_der(first)) + "};\n"
        "const uint8_t second[] = {\n" + file2hex(f.key_der(second)) + "};\n"
    )
    text = source.read_text()
    starts = literal_starts(text)

    code, report = scan(capsys, source)

    assert code == 1
    found = [(x["key"], x["fileOffset"]) for x in report["findings"]]
    assert found == [
        (key_fingerprint(first), starts[256]),
        (key_fingerprint(second), starts[256 + len(f.key_der(first))]),
    ]


def test_bytes_of_a_binary_segment_are_not_read_as_literals() -> None:
    """Only text is: a segment is binary unless the caller says it is text (an image would pay
    two more passes for what only source code holds)."""
    key = f.ec_key()
    data = ("uint8_t k[] = {" + file2hex(f.key_der(key)) + "};").encode()

    assert engine.scan_segment(data, KnownIndex([])) == []
    [hit] = engine.scan_segment(data, KnownIndex([]), text=True)
    assert hit.key == key_fingerprint(key)
