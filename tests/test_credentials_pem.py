"""PEM text as users have it (old Mac line endings, legacy encrypted keys, RFC 1421 headers, cut
files) and the values a check hands on: what is stored and the line a user reads.

Found by `make mutation MODULE=credentials`: mutants of the PEM reader (line numbering, headers,
the end of a truncated block) and of the report's values passed every other test. Each input is
built here with its feature on a known line; expected contents come from `cryptography`.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from provguard.credentials import (
    CheckReport,
    CredentialFile,
    CredentialSet,
    Problem,
    Severity,
    Slot,
    check,
    load_credential_set,
)
from provguard.errors import InputError
from tests import factories as f

PKI = f.device_pki()
CA_PEM = f.cert_pem(PKI.ca_cert)
CERT_PEM = f.cert_pem(PKI.device_cert)
KEY_PEM = f.key_pem(PKI.device_key)
NAMES = {Slot.CA: "ca.pem", Slot.CERT: "client.pem", Slot.KEY: "client.key"}


def report_for(slot: Slot, data: bytes, *, for_modem_write: bool = False) -> CheckReport:
    files = {Slot.CA: CA_PEM, Slot.CERT: CERT_PEM, Slot.KEY: KEY_PEM, slot: data}
    creds = CredentialSet(*(CredentialFile(s, NAMES[s], files[s]) for s in Slot))
    return check(creds, 24, for_modem_write=for_modem_write)


def printed(report: CheckReport) -> list[str]:
    return [str(p) for p in report.problems]


def test_old_mac_line_endings_are_numbered_as_an_editor_does_and_stored_with_lf() -> None:
    lines = CA_PEM.split(b"\n")
    lines[3] = lines[3][:6] + b"#" + lines[3][7:]  # line 4, column 7
    report = report_for(Slot.CA, b"\r".join(lines))
    (line,) = [text for text in printed(report) if "pem-base64" in text]
    assert line.startswith("ca.pem:4: error: base64 body damaged at column 7: '#' is not")
    assert report_for(Slot.CA, CA_PEM.replace(b"\n", b"\r")).contents[Slot.CA] == CA_PEM
    assert printed(report_for(Slot.CA, CA_PEM.replace(b"\n", b"\r"))) == []


def test_a_legacy_encrypted_key_keeps_its_headers_and_is_named_encrypted() -> None:
    legacy = PKI.device_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"correct horse"),
    )
    assert b"Proc-Type: 4,ENCRYPTED\n" in legacy
    report = report_for(Slot.KEY, legacy)
    assert printed(report) == [
        "client.key:1: warning: the private key is encrypted: only AT%CMNG with its password can "
        "store it, and whether it matches the certificate cannot be checked [key-encrypted]"
    ]
    assert report.contents[Slot.KEY] == legacy  # headers, the blank line after them, the body


def test_a_header_that_is_not_encryption_is_kept_and_the_key_is_read() -> None:
    lines = KEY_PEM.split(b"\n")
    with_header = b"\n".join([lines[0], b"Comment: made by hand", b"", *lines[1:]])
    report = report_for(Slot.KEY, with_header)
    assert printed(report) == []
    assert report.contents[Slot.KEY] == with_header


def test_a_header_like_line_inside_the_body_is_damage_on_its_line() -> None:
    lines = CA_PEM.split(b"\n")
    damaged = b"\n".join([*lines[:3], b"Note: x", *lines[3:]])  # line 4, after two body lines
    report = report_for(Slot.CA, damaged)
    (line,) = [text for text in printed(report) if "pem-base64" in text]
    assert line.startswith("ca.pem:4: error: base64 body damaged at column 5: ':' is not")


@pytest.mark.parametrize(
    ("data", "last"),
    [
        (b"-----BEGIN CERTIFICATE-----", 1),
        (b"-----BEGIN CERTIFICATE-----\nMIIB", 2),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\nAAAA\n", 4),
    ],
    ids=["begin-only", "one-line", "newline-at-end"],
)
def test_a_block_cut_before_its_end_says_where_the_file_ends(data: bytes, last: int) -> None:
    report = report_for(Slot.CA, data)
    framing = [(p.line, p.message) for p in report.problems if p.code == "pem-framing"]
    assert framing == [
        (
            last,
            "truncated: the 'CERTIFICATE' block that begins on line 1 has no END line (the file "
            f"ends after line {last})",
        )
    ]


def test_only_the_first_non_ascii_line_is_reported() -> None:
    lines = CERT_PEM.split(b"\n")
    for number in (3, 6):  # file lines 3 and 6
        lines[number - 1] = "é".encode() + lines[number - 1][2:]
    report = report_for(Slot.CERT, b"\n".join(lines))
    assert [str(p) for p in report.problems if p.code == "not-ascii"] == [
        "client.pem:3: error: non-ASCII characters: the modem stores ASCII PEM only [not-ascii]"
    ]


def test_a_path_through_a_file_is_refused_with_the_systems_reason(tmp_path: Path) -> None:
    file = tmp_path / "ca.pem"
    file.write_bytes(CA_PEM)
    with pytest.raises(InputError) as refused:
        load_credential_set(ca=file / "inside.pem")
    assert str(refused.value) == f"{file / 'inside.pem'}: cannot read: Not a directory"


def test_the_files_given_are_read_into_their_slots(tmp_path: Path) -> None:
    paths = f.write_credential_files(tmp_path, PKI)
    creds = load_credential_set(ca=paths["ca"], cert=paths["cert"], key=paths["key"])
    assert [(c.slot, c.name, c.data) for c in creds.files()] == [
        (Slot.CA, str(paths["ca"]), CA_PEM),
        (Slot.CERT, str(paths["cert"]), CERT_PEM),
        (Slot.KEY, str(paths["key"]), KEY_PEM),
    ]
    assert creds.sec_tag is None


# --- the values a report hands on ----------------------------------------------------------


def test_a_reports_errors_and_warnings_are_split_by_severity() -> None:
    encrypted = f.key_pem(PKI.device_key, password=b"pw")
    report = check(CredentialSet(None, None, CredentialFile(Slot.KEY, "client.key", encrypted)), 24)
    assert [p.code for p in report.errors] == ["ca-missing", "cert-missing"]
    assert [p.code for p in report.warnings] == ["key-encrypted"]
    assert not report.ok


@pytest.mark.parametrize(
    ("problem", "shown", "as_dict"),
    [
        (Problem(Severity.ERROR, "c", "f.pem", 3, "m"), "f.pem:3: error: m [c]",
         {"severity": "error", "code": "c", "file": "f.pem", "line": 3, "message": "m"}),
        (Problem(Severity.WARNING, "c", "f.pem", None, "m"), "f.pem: warning: m [c]",
         {"severity": "warning", "code": "c", "file": "f.pem", "line": None, "message": "m"}),
        (Problem(Severity.INFO, "c", None, None, "m"), "info: m [c]",
         {"severity": "info", "code": "c", "file": None, "line": None, "message": "m"}),
        (Problem(Severity.INFO, "c", None, 1, "m"), "info: m [c]",
         {"severity": "info", "code": "c", "file": None, "line": 1, "message": "m"}),
    ],
)  # fmt: skip
def test_a_problem_as_printed_and_as_json(
    problem: Problem, shown: str, as_dict: dict[str, object]
) -> None:
    assert str(problem) == shown
    assert problem.to_dict() == as_dict


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("error", "c", None, None, "m"), TypeError),
        ((Severity.ERROR, "", None, None, "m"), ValueError),
        ((Severity.ERROR, "c", None, None, ""), ValueError),
        ((Severity.ERROR, "c", None, -1, "m"), ValueError),
    ],
    ids=["severity", "code", "message", "line"],
)
def test_a_problem_refuses_what_it_cannot_print(args: tuple[object, ...], error: type) -> None:
    why = {TypeError: "a problem's severity is a Severity"}.get(
        error, "a problem needs a code and a message"
    )
    if args[3] == -1:
        why = "line numbers start at 1, not -1"
    with pytest.raises(error) as refused:
        Problem(*args)  # type: ignore[arg-type]
    assert str(refused.value) == why
    assert str(Problem(Severity.ERROR, "c", None, 1, "m")) == "error: m [c]"


def test_a_credential_file_takes_a_slot_and_bytes() -> None:
    with pytest.raises(TypeError, match=r"^CredentialFile takes a Slot and bytes$"):
        CredentialFile("ca", "ca.pem", b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a Slot and bytes"):
        CredentialFile(Slot.CA, "ca.pem", "text")  # type: ignore[arg-type]
    file = CredentialFile(Slot.CA, "ca.pem", CA_PEM)
    assert "BEGIN" not in repr(file)  # the data is never shown: it may be a key


def test_a_report_orders_its_slots_and_refuses_summaries_that_are_not_text() -> None:
    report = CheckReport((), {Slot.KEY: b"k\n", Slot.CA: b"c\n"}, 24, {Slot.KEY: "k", Slot.CA: "c"})
    assert list(report.contents) == [Slot.CA, Slot.KEY]
    assert list(report.summaries) == [Slot.CA, Slot.KEY]
    with pytest.raises(TypeError, match=r"CheckReport\.summaries maps Slots to str"):
        CheckReport((), {}, 24, {Slot.CA: b"bytes"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"CheckReport\.contents maps Slots to bytes"):
        CheckReport((), {"ca": b"c\n"}, 24)  # type: ignore[dict-item]
    assert report != CheckReport((), {Slot.CA: b"c\n"}, 24, {Slot.KEY: "k", Slot.CA: "c"})
    assert report != CheckReport(
        (), {Slot.KEY: b"k\n", Slot.CA: b"c\n"}, 25, dict(report.summaries)
    )
    assert report.__eq__("report") is NotImplemented


def test_the_slots_as_the_modem_and_the_header_know_them() -> None:
    assert [(s.modem_type, s.label, s.macro, s.option) for s in Slot] == [
        (0, "CA certificate", "CA_CERTIFICATE", "--ca"),
        (1, "client certificate", "CLIENT_CERTIFICATE", "--cert"),
        (2, "private key", "PRIVATE_KEY", "--key"),
    ]


def test_an_empty_file_is_one_problem_saying_so() -> None:
    report = report_for(Slot.CA, b" \n\t\n")
    assert [str(p) for p in report.problems if p.file == "ca.pem"] == [
        "ca.pem: error: the file is empty [pem-framing]"
    ]


def test_a_control_character_in_the_body_is_named_by_its_code_point() -> None:
    lines = CA_PEM.split(b"\n")
    lines[2] = lines[2][:3] + b"\x07" + lines[2][4:]  # line 3, column 4
    report = report_for(Slot.CA, b"\n".join(lines))
    (line,) = [str(p) for p in report.problems if p.code == "pem-base64"]
    assert line.startswith("ca.pem:3: error: base64 body damaged at column 4: U+0007 is not a ")


def test_an_encrypted_key_in_the_ca_slot_is_named_with_its_article() -> None:
    report = report_for(Slot.CA, f.key_pem(PKI.device_key, password=b"pw"))
    assert [str(p) for p in report.problems if p.code == "wrong-slot"] == [
        "ca.pem:1: error: --ca: an encrypted private key, but the CA certificate slot takes a "
        "certificate [wrong-slot]"
    ]


def test_a_file_that_cannot_be_opened_says_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "ca.pem"
    file.write_bytes(CA_PEM)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)  # root may open any file: deny it here
    with pytest.raises(InputError) as refused:
        load_credential_set(ca=file)
    assert str(refused.value) == f"{file}: permission denied"


def test_crlf_line_endings_count_one_line_each() -> None:
    lines = CA_PEM.split(b"\n")
    lines[4] = lines[4][:1] + b"!" + lines[4][2:]  # line 5, column 2
    report = report_for(Slot.CA, b"\r\n".join(lines))
    (line,) = [str(p) for p in report.problems if p.code == "pem-base64"]
    assert line.startswith("ca.pem:5: error: base64 body damaged at column 2: '!' is not")


def test_padding_inside_the_last_line_is_damage() -> None:
    lines = CA_PEM.split(b"\n")
    last = len(lines) - 2  # the line before END (lines[-1] is the empty rest)
    lines[last - 1] = lines[last - 1][:-4] + b"AB=X"  # the body keeps its length
    report = report_for(Slot.CA, b"\n".join(lines))
    assert [str(p) for p in report.problems if p.file == "ca.pem"] == [
        f"ca.pem:{last}: error: base64 padding '=' in the middle of the body: the body was cut "
        "or two bodies were joined [pem-base64]"
    ]


def test_a_block_without_its_end_line_is_stored_closed_and_its_line_kept() -> None:
    data = CERT_PEM.replace(b"-----END CERTIFICATE-----\n", b"")  # a leaf, not a CA
    last = data.count(b"\n") + 1
    report = report_for(Slot.CA, data)
    assert [str(p) for p in report.problems if p.file == "ca.pem"] == [
        f"ca.pem:{last}: error: truncated: the 'CERTIFICATE' block that begins on line 1 has no "
        f"END line (the file ends after line {last}) [pem-framing]",
        "ca.pem:1: error: CN=nrf-352656100000000 is not a CA certificate (basicConstraints CA:TRUE "
        "missing): the CA slot needs the root CA that signed the broker's certificate, not the "
        "broker's or the device's own certificate [ca-not-ca]",
    ]
    assert report.contents[Slot.CA] == CERT_PEM


def test_a_damaged_certificate_in_the_key_slot_is_first_of_all_in_the_wrong_slot() -> None:
    lines = CERT_PEM.split(b"\n")
    lines[2] = b"!" + lines[2][1:]
    report = report_for(Slot.KEY, b"\n".join(lines))
    assert [str(p) for p in report.problems if p.file == "client.key"] == [
        "client.key:1: error: --key: a certificate, but the private key slot takes a private key "
        "[wrong-slot]"
    ]


def test_an_encrypted_key_is_not_stored_for_the_firmware() -> None:
    report = report_for(Slot.KEY, f.key_pem(PKI.device_key, password=b"pw"), for_modem_write=True)
    assert Slot.KEY not in report.contents
    assert Slot.CA in report.contents


def test_different_reports_hash_differently() -> None:
    first = check(CredentialSet(CredentialFile(Slot.CA, "ca.pem", CA_PEM), None, None), 24)
    second = check(CredentialSet(CredentialFile(Slot.CA, "ca.pem", CA_PEM), None, None), 25)
    assert first != second
    assert hash(first) != hash(second)
    assert hash(first) == hash(
        check(CredentialSet(CredentialFile(Slot.CA, "ca.pem", CA_PEM), None, None), 24)
    )


class _Endless(io.RawIOBase):
    """A file without end (as /dev/zero): only a bounded read returns."""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("an unbounded read of an endless file")
        return b"0" * size


def test_an_endless_file_is_read_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(b"")
    monkeypatch.setattr(Path, "open", lambda *args, **kwargs: _Endless())
    with pytest.raises(InputError) as refused:
        load_credential_set(ca=path)
    assert str(refused.value) == f"{path}: larger than 1048576 bytes: not a credential file"


def test_a_block_ending_in_another_label_is_reported_and_stored_closed_as_it_opened() -> None:
    report = report_for(Slot.CA, CA_PEM.replace(b"END CERTIFICATE", b"END PRIVATE KEY"))
    (line,) = [str(p) for p in report.problems if p.code == "pem-framing"]
    assert "END label 'PRIVATE KEY' does not match BEGIN label 'CERTIFICATE'" in line
    assert report.contents[Slot.CA] == CA_PEM


def test_a_text_file_starting_with_0_is_read_as_text_not_as_der() -> None:
    """0x30, "0", starts DER too: frame lines glued to their label decide nothing either way."""
    body = CA_PEM.split(b"\n")[1:-2]
    data = b"\n".join(
        [b"0 certificate", b"-----BEGINCERTIFICATE-----", *body, b"-----ENDCERTIFICATE-----", b""]
    )
    report = report_for(Slot.CA, data)
    assert [str(p) for p in report.problems if p.file == "ca.pem"] == [
        f"ca.pem:1: info: {len(body) + 3} line(s) of text outside the PEM blocks are dropped "
        "[text-outside-blocks]",
        "ca.pem: error: no PEM block found: expected '-----BEGIN ...-----' (a bare base64 body "
        "needs its BEGIN/END lines) [pem-framing]",
    ]


def test_a_byte_order_mark_is_not_taken_for_non_ascii_text() -> None:
    report = report_for(Slot.CA, b"\xef\xbb\xbf" + CA_PEM)
    assert [p.code for p in report.problems if p.file == "ca.pem"] == ["utf8-bom"]


@pytest.mark.parametrize(
    ("byte", "expected"),
    [
        (b"\x7f", []),  # DEL is ASCII
        (b"\x80", ["ca.pem:2: warning: non-ASCII characters outside the PEM blocks (that text "
                   "is not written) [not-ascii]"]),
    ],
    ids=["del", "0x80"],
)  # fmt: skip
def test_ascii_ends_at_0x7f(byte: bytes, expected: list[str]) -> None:
    report = report_for(Slot.CA, b"comment\nfriendly name " + byte + b"\n" + CA_PEM)
    assert [str(p) for p in report.problems if p.code == "not-ascii"] == expected


def test_a_key_file_of_ec_parameters_alone_is_an_error() -> None:
    params = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    report = report_for(Slot.KEY, params)
    assert [str(p) for p in report.problems if p.code == "wrong-slot"] == [
        "client.key: error: --key: only EC PARAMETERS, no private key: the private key slot "
        "takes a private key ('openssl ecparam -genkey' writes the key after the parameters) "
        "[wrong-slot]"
    ]


def _damaged_body(pem: bytes) -> bytes:
    lines = pem.split(b"\n")
    lines[2] = b"!" + lines[2][1:]
    return b"\n".join(lines)


def _unparsable(pem: bytes) -> bytes:
    """The same block with its DER cut by three bytes (the base64 stays well formed)."""
    der = base64.b64decode(b"".join(pem.split(b"\n")[1:-2]))[:-3]
    body = base64.encodebytes(der)
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (KEY_PEM, "wrong-slot"),
        (_damaged_body(CERT_PEM), "pem-base64"),
        (_unparsable(CERT_PEM), "der-invalid"),
    ],
    ids=["wrong-kind", "base64", "der"],
)
def test_a_bad_block_does_not_hide_the_good_one_after_it(first: bytes, code: str) -> None:
    report = report_for(Slot.CA, first + CA_PEM)
    assert [p.code for p in report.problems if p.file == "ca.pem"] == [code]
    assert report.contents[Slot.CA] == CA_PEM


def test_an_encrypted_key_before_a_plain_one_is_refused_for_the_firmware_and_the_plain_used() -> (
    None
):
    encrypted = f.key_pem(PKI.device_key, password=b"pw")
    report = report_for(Slot.KEY, encrypted + KEY_PEM, for_modem_write=True)
    assert [p.code for p in report.problems if p.file == "client.key"] == ["key-encrypted"]
    assert report.contents[Slot.KEY] == KEY_PEM


def test_a_nonstandard_certificate_is_warned_about_on_its_line() -> None:
    der = bytearray(f.cert_der(PKI.device_cert))
    serial = PKI.device_cert.serial_number
    encoded = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    der[der.index(b"\x02" + bytes([len(encoded)]) + encoded) + 2] = 0x80 | 0x5A  # negative
    block = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bytes(der))
    report = report_for(Slot.CERT, CERT_PEM + block + b"-----END CERTIFICATE-----\n")
    second = CERT_PEM.count(b"\n") + 1
    (warning,) = [p for p in report.problems if p.code == "der-nonstandard"]
    assert (warning.file, warning.line, warning.severity) == (
        "client.pem",
        second,
        Severity.WARNING,
    )
    assert warning.message.startswith("the certificate: ")
