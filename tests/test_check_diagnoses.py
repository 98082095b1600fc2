"""What `provguard check` tells a user about the text of a credential file: the file, the line
where the trouble is, the code and the sentence, exactly as printed.

Found by `make mutation MODULE=credentials`: mutants that dropped the line number or the file of a
diagnosis, or moved the line they count, passed every other test. Each input is built here with
its damage on a known line, so the expected line number does not come from provguard.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard.credentials import CheckReport, CredentialFile, CredentialSet, Slot, check
from tests import factories as f

PKI = f.device_pki()
CA_PEM = f.cert_pem(PKI.ca_cert)
CERT_PEM = f.cert_pem(PKI.device_cert)
KEY_PEM = f.key_pem(PKI.device_key)
NAMES = {Slot.CA: "ca.pem", Slot.CERT: "client.pem", Slot.KEY: "client.key"}


def report_for(slot: Slot, data: bytes, *, for_modem_write: bool = False) -> CheckReport:
    files = {Slot.CA: CA_PEM, Slot.CERT: CERT_PEM, Slot.KEY: KEY_PEM, slot: data}
    ca, cert, key = (CredentialFile(s, NAMES[s], files[s]) for s in (Slot.CA, Slot.CERT, Slot.KEY))
    creds = CredentialSet(ca, cert, key)
    return check(creds, 24, for_modem_write=for_modem_write)


def printed(report: CheckReport, code: str) -> list[str]:
    return [str(p) for p in report.problems if p.code == code]


def test_a_byte_order_mark_is_reported_on_line_1_and_removed() -> None:
    report = report_for(Slot.CA, b"\xef\xbb\xbf" + CA_PEM)
    assert printed(report, "utf8-bom") == [
        "ca.pem:1: warning: starts with a UTF-8 byte order mark: it is removed [utf8-bom]"
    ]
    assert report.contents[Slot.CA] == CA_PEM


def test_crlf_is_reported_on_the_first_line_that_has_it() -> None:
    lines = CA_PEM.split(b"\n")
    # Lines 1 and 2 end in LF, line 3 onwards in CRLF.
    data = b"\n".join(lines[:2]) + b"\n" + b"\r\n".join(lines[2:])
    report = report_for(Slot.CA, data)
    assert printed(report, "crlf-line-endings") == [
        "ca.pem:3: warning: CRLF line endings: normalised to LF (some modem firmware rejects "
        "CRLF content with CME error 527) [crlf-line-endings]"
    ]
    assert report.contents[Slot.CA] == CA_PEM


def test_non_ascii_inside_a_block_is_an_error_on_its_line() -> None:
    lines = CERT_PEM.split(b"\n")
    lines[4] = "é".encode() + lines[4][2:]  # line 5, inside the base64 body
    report = report_for(Slot.CERT, b"\n".join(lines))
    assert printed(report, "not-ascii") == [
        "client.pem:5: error: non-ASCII characters: the modem stores ASCII PEM only [not-ascii]"
    ]
    assert not report.ok


def test_non_ascii_outside_the_blocks_is_a_warning_on_its_line() -> None:
    data = b"Bag Attributes\n    friendlyName: caf\xc3\xa9\n" + CA_PEM
    report = report_for(Slot.CA, data)
    assert printed(report, "not-ascii") == [
        "ca.pem:2: warning: non-ASCII characters outside the PEM blocks (that text is not "
        "written) [not-ascii]"
    ]
    assert printed(report, "text-outside-blocks") == [
        "ca.pem:1: info: 2 line(s) of text outside the PEM blocks are dropped [text-outside-blocks]"
    ]
    assert report.ok
    assert report.contents[Slot.CA] == CA_PEM


def test_text_outside_holding_a_quote_says_why_that_matters() -> None:
    data = CA_PEM + b'comment "quoted"\n'
    report = report_for(Slot.CA, data)
    first_outside = CA_PEM.count(b"\n") + 1
    assert printed(report, "text-outside-blocks") == [
        f"ca.pem:{first_outside}: info: 1 line(s) of text outside the PEM blocks are dropped "
        "(one holds a '\"', which would end the AT%CMNG string) [text-outside-blocks]"
    ]


def test_ec_parameters_before_the_key_are_dropped_and_named() -> None:
    params = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    key = f.key_pem(PKI.device_key, pkcs8=False)
    report = report_for(Slot.KEY, params + key)
    assert printed(report, "ec-parameters-dropped") == [
        "client.key:1: info: EC PARAMETERS block (from 'openssl ecparam -genkey') is not written "
        "[ec-parameters-dropped]"
    ]
    assert report.ok
    assert report.contents[Slot.KEY] == key


def _public_key_pem() -> bytes:
    return PKI.device_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("slot", "data", "expected"),
    [
        (Slot.KEY, CERT_PEM,
         "client.key:1: error: --key: a certificate, but the private key slot takes a private "
         "key [wrong-slot]"),
        (Slot.CA, KEY_PEM,
         "ca.pem:1: error: --ca: a private key, but the CA certificate slot takes a certificate "
         "[wrong-slot]"),
        (Slot.CERT, b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n",
         "client.pem:1: error: --cert: unknown PEM label: the modem stores certificates and "
         "private keys only [wrong-slot]"),
    ],
    ids=["cert-as-key", "key-as-ca", "unknown-label"],
)  # fmt: skip
def test_the_wrong_kind_in_a_slot_names_the_option_and_what_it_takes(
    slot: Slot, data: bytes, expected: str
) -> None:
    report = report_for(slot, data)
    assert printed(report, "wrong-slot") == [expected]


def test_a_public_key_given_as_the_private_key_says_which_key_to_give() -> None:
    report = report_for(Slot.KEY, _public_key_pem())
    assert printed(report, "wrong-slot") == [
        "client.key:1: error: --key: a public key, not a private key: give the private key the "
        "certificate was made for [wrong-slot]"
    ]


def test_two_private_keys_in_the_key_file_are_refused() -> None:
    other = f.key_pem(ec.generate_private_key(ec.SECP256R1()))
    report = report_for(Slot.KEY, KEY_PEM + other)
    assert printed(report, "key-multiple") == [
        "client.key: error: more than one private key in the key file [key-multiple]"
    ]


def test_a_file_without_any_pem_block_says_what_was_expected() -> None:
    report = report_for(Slot.CA, b"just some text\n")
    assert printed(report, "pem-framing") == [
        "ca.pem: error: no PEM block found: expected '-----BEGIN ...-----' (a bare base64 body "
        "needs its BEGIN/END lines) [pem-framing]"
    ]


@pytest.mark.parametrize(
    ("for_modem_write", "expected"),
    [
        (True,
         "client.key:1: error: the private key is encrypted: the firmware's write call takes no "
         "password; decrypt it with 'openssl pkey -in KEY -out KEY.plain' [key-encrypted]"),
        (False,
         "client.key:1: warning: the private key is encrypted: only AT%CMNG with its password "
         "can store it, and whether it matches the certificate cannot be checked "
         "[key-encrypted]"),
    ],
    ids=["modem-write", "check-only"],
)  # fmt: skip
def test_an_encrypted_key(for_modem_write: bool, expected: str) -> None:
    encrypted = f.key_pem(PKI.device_key, password=b"secret")
    report = report_for(Slot.KEY, encrypted, for_modem_write=for_modem_write)
    assert printed(report, "key-encrypted") == [expected]
    assert report.ok is not for_modem_write


def _body_lines(pem: bytes) -> list[bytes]:
    return pem.split(b"\n")[1:-2]  # between the BEGIN line and the END line


def _with_body(body: list[bytes]) -> bytes:
    return b"\n".join([b"-----BEGIN CERTIFICATE-----", *body, b"-----END CERTIFICATE-----", b""])


def test_a_character_that_is_not_base64_is_named_with_its_line_and_column() -> None:
    body = _body_lines(CERT_PEM)
    total = sum(len(line) for line in body)
    body[2] = body[2][:4] + b"!" + body[2][5:]  # file line 4 (line 1 is BEGIN), column 5
    report = report_for(Slot.CERT, _with_body(body))
    assert printed(report, "pem-base64") == [
        f"client.pem:4: error: base64 body damaged at column 5: '!' is not a base64 character "
        f"(body is {total} characters on {len(body)} lines; it decodes up to line 4) [pem-base64]"
    ]


def test_a_non_ascii_character_in_the_body_is_named_by_its_code_point() -> None:
    body = _body_lines(CERT_PEM)
    body[0] = "é".encode() + body[0][2:]  # two bytes for two characters: the length stays
    report = report_for(Slot.CERT, _with_body(body))
    (line,) = printed(report, "pem-base64")
    assert line.startswith("client.pem:2: error: base64 body damaged at column 1: U+00C3 is not")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("middle-padding",
         "client.pem:3: error: base64 padding '=' in the middle of the body: the body was cut or "
         "two bodies were joined [pem-base64]"),
        ("three-pads", "client.pem:{last}: error: base64 body ends with more than two '=' "
                       "[pem-base64]"),
        ("cut", "client.pem:{last}: error: base64 body is {length} characters, not a multiple of "
                "4: characters are missing (the body ends on line {last}; truncated or edited?) "
                "[pem-base64]"),
    ],
)  # fmt: skip
def test_damaged_base64_padding_and_length(damage: str, expected: str) -> None:
    body = _body_lines(CERT_PEM)
    if damage == "middle-padding":
        body[1] = body[1][:-2] + b"=="  # file line 3
    elif damage == "three-pads":
        body[-1] = b"AAAAA==="  # full lines are 64 characters: the length stays a multiple of 4
    else:
        body[-1] = body[-1][:-1]
    length = sum(len(line) for line in body)
    last = len(body) + 1  # BEGIN is line 1
    report = report_for(Slot.CERT, _with_body(body))
    assert printed(report, "pem-base64") == [expected.format(last=last, length=length)]


def test_a_block_without_body_is_named_on_its_begin_line() -> None:
    data = CA_PEM + b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
    report = report_for(Slot.CA, data)
    begin = CA_PEM.count(b"\n") + 1
    assert printed(report, "pem-base64") == [
        f"ca.pem:{begin}: error: the block has no body [pem-base64]"
    ]
