"""A Link Monitor / Cellular Monitor JSON export that cannot be used: one line naming the file
(and the line of a JSON syntax error) and saying why; what can be used is read as given.

Found by `make mutation MODULE=credentials`: mutants that dropped the file, the line or the
sentence of these errors, or moved the sec_tag limits, passed every other test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from provguard.credentials import Slot, load_credential_set, load_json_bundle
from provguard.errors import InputError
from tests import factories as f

CA_TEXT = f.cert_pem(f.device_pki().ca_cert).decode()


def refusal(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    with pytest.raises(InputError) as refused:
        load_json_bundle(path)
    return str(refused.value)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'\xff\xfe{"caCert": ""}', "not UTF-8 text, so not a JSON credential export"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply: not a credential export"),
        (b'{"secTag": 1' + b"0" * 5000 + b"}", "JSON holds a number too long to read"),
        (b"[1, 2]", "expected a JSON object with caCert/clientCert/privateKey"),
        (b'{"caCert": 5}', '"caCert" must be a string holding PEM text'),
        (b'{"privateKey": ["x"]}', '"privateKey" must be a string holding PEM text'),
        (b'{"clientCert": "\\ud800"}',
         '"clientCert" holds an escaped lone surrogate (\\uD800-\\uDFFF): not text'),
        (b'{"other": 1}',
         'none of "caCert", "clientCert", "privateKey" is present: not a credential export'),
        (b'{"caCert": "", "clientCert": null}',
         'none of "caCert", "clientCert", "privateKey" is present: not a credential export'),
    ],
    ids=["utf16", "deep", "long-number", "array", "number-member", "list-member", "surrogate",
         "no-member", "empty-members"],
)  # fmt: skip
def test_unusable_export_names_the_file_and_the_reason(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "export.json"
    assert refusal(path, content) == f"{path}: {why}"


def test_a_json_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    # Line 3 is where the value is missing.
    assert refusal(path, b'{\n  "caCert":\n}\n') == f"{path}:3: invalid JSON: Expecting value"


@pytest.mark.parametrize(
    ("sec_tag", "expected"),
    [
        (b"42", 42),
        (b'" 42 "', 42),  # exports that write it as a string
        (b"-5", -5),  # read as given: `check` says it is out of range
        (b"99999999999999999999", 10**20 - 1),
        (b"null", None),
    ],
)
def test_sec_tag_is_read_as_a_whole_number(
    tmp_path: Path, sec_tag: bytes, expected: int | None
) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(b'{"caCert": ' + repr(CA_TEXT).replace("'", '"').encode() + b', "secTag": '
                     + sec_tag + b"}")  # fmt: skip
    bundle = load_json_bundle(path)
    assert bundle.sec_tag == expected
    assert bundle.ca is not None
    assert bundle.ca.name == f"{path}:caCert"
    assert bundle.ca.data == CA_TEXT.encode()


@pytest.mark.parametrize(
    ("sec_tag", "why"),
    [
        (b'"4x"', '"secTag" must be a whole number'),
        (b"true", '"secTag" must be a whole number'),
        (b"2.5", '"secTag" must be a whole number'),
        (b"100000000000000000000", '"secTag" is far too large for a sec_tag'),
        (b"-100000000000000000000", '"secTag" is far too large for a sec_tag'),
    ],
)
def test_unusable_sec_tag_is_refused(tmp_path: Path, sec_tag: bytes, why: str) -> None:
    path = tmp_path / "export.json"
    content = b'{"caCert": "x", "secTag": ' + sec_tag + b"}"
    assert refusal(path, content) == f"{path}: {why}"


def test_files_given_one_by_one_take_precedence_over_the_export(tmp_path: Path) -> None:
    pki = f.device_pki()
    export = tmp_path / "export.json"
    export.write_text(
        '{"caCert": ' + repr(CA_TEXT).replace("'", '"') + ', "clientCert": "client from json", '
        '"secTag": 7}'
    )  # fmt: skip
    own_cert = tmp_path / "client.pem"
    own_cert.write_bytes(f.cert_pem(pki.device_cert))
    creds = load_credential_set(from_json=export, cert=own_cert)
    assert creds.sec_tag == 7
    ca, cert = creds.get(Slot.CA), creds.get(Slot.CERT)
    assert ca is not None
    assert cert is not None
    assert ca.name == f"{export}:caCert"
    assert (cert.name, cert.data) == (str(own_cert), f.cert_pem(pki.device_cert))
    assert creds.key is None


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.mkdir(), "is a directory, not a credential file"),
        (lambda p: None, "no such file"),
    ],
    ids=["directory", "missing"],
)
def test_a_credential_path_that_is_not_a_file(
    tmp_path: Path, make: Callable[[Path], object], why: str
) -> None:
    path = tmp_path / "ca.pem"
    make(path)
    with pytest.raises(InputError) as refused:
        load_credential_set(ca=path)
    assert str(refused.value) == f"{path}: {why}"
