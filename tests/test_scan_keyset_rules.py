"""`--key`, `--key-dir`, `--keys-from` (scan/keyset.py): what is loaded from each kind of entry,
and the whole message (file, line, reason) of each refusal.

The existing scale tests check that a message *contains* a reason; these pin the message a user
reads, so a refusal that loses its file, its line or its words is caught. Expected fingerprints
are the SHA-256 of the public key's SubjectPublicKeyInfo, computed here with cryptography.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, rsa
from cryptography.utils import CryptographyDeprecationWarning

from provguard.cli import main
from provguard.errors import InputError
from provguard.scan.keyset import (
    EntryError,
    from_args,
    load_dir,
    load_file,
    load_list,
    parse_credentials,
    read_regular,
)
from provguard.scan.model import Kind
from tests import factories as f
from tests.test_scan_detector_rules import encrypted_openssh

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def spki_fingerprint(key: PrivateKey) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + hashlib.sha256(spki).hexdigest()


def refusal(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as caught:
        call(*args)
    return str(caught.value)


def entry_refusal(data: bytes) -> tuple[str, int | None]:
    with pytest.raises(EntryError) as caught:
        parse_credentials(data, "k.pem")
    return caught.value.message, caught.value.line


# --- one file --------------------------------------------------------------------------------


def test_each_refused_key_file_says_why_in_full() -> None:
    key = f.ec_key()
    pem = f.key_pem(key)
    body = pem.split(b"\n", 1)[1].rsplit(b"-----END", 1)[0]
    other_end = pem.replace(b"END PRIVATE KEY", b"END EC PRIVATE KEY")
    assert entry_refusal(other_end) == ("BEGIN PRIVATE KEY ends with another label", 1)
    dh = b"-----BEGIN DH PARAMETERS-----\nMIIB\n-----END DH PARAMETERS-----\n"
    assert entry_refusal(dh) == ("a 'DH PARAMETERS' block is not a key or certificate", 1)
    encrypted = f.key_pem(key, password=b"pw")
    assert entry_refusal(encrypted) == ("the private key is encrypted; decrypt it first", 1)
    encrypted_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    mislabelled = f.key_pem(key).split(b"\n", 1)[0] + b"\n"  # "PRIVATE KEY", not "ENCRYPTED ..."
    mislabelled += base64.encodebytes(encrypted_der) + b"-----END PRIVATE KEY-----\n"
    assert entry_refusal(mislabelled) == ("the private key is encrypted; decrypt it first", 1)
    broken = (
        b"-----BEGIN PRIVATE KEY-----\n" + body[:61] + body[62:] + b"-----END PRIVATE KEY-----\n"
    )
    assert entry_refusal(b"# device 7\n" + broken) == ("the base64 body does not decode", 2)
    cut = f.cert_der(f.make_cert("dev", key))[:-20]  # its signature cut short
    damaged_cert = (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(cut) + b"-----END CERTIFICATE-----\n"
    )
    assert entry_refusal(damaged_cert) == ("the certificate does not parse (damaged?)", 1)
    assert entry_refusal(b"device list\n") == (
        "neither PEM nor DER: no private key or certificate in it",
        None,
    )
    assert entry_refusal(b"\x30\x03\x02\x01\x00") == (
        "a DER object that is neither a private key nor a certificate",
        None,
    )


def test_the_encrypted_pem_header_is_looked_for_in_the_first_200_characters() -> None:
    """A legacy "Proc-Type: 4,ENCRYPTED" header sits at the top of the body; the same letters
    further in are base64 (here a body that does not decode to a key)."""

    def block(at: int) -> bytes:
        body = b"\n" + b"A" * (at - 1) + b"ENCRYPTED" + b"A" * 64 + b"\n"
        return b"-----BEGIN PRIVATE KEY-----" + body + b"-----END PRIVATE KEY-----\n"

    assert entry_refusal(block(191))[0] == "the private key is encrypted; decrypt it first"
    assert entry_refusal(block(192))[0] == "the private key does not parse (damaged or unsupported)"


def test_an_openssh_key_file_is_its_key_and_a_damaged_one_is_refused() -> None:
    key = f.ec_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    (material,) = parse_credentials(pem, "id_ecdsa").materials
    assert (material.kind, material.source) == (Kind.PRIVATE_KEY, "id_ecdsa")
    assert material.fingerprint == spki_fingerprint(key)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    assert any(form.der == scalar[::-1] for form in material.forms)  # its little-endian scalar
    two = f.key_pem(f.ec_key()) + pem
    assert [m.source for m in parse_credentials(two, "keys").materials] == ["keys:1", "keys:6"]
    damaged = pem.replace(b"\n", b"\nAAAA", 1)
    assert entry_refusal(damaged) == ("the OpenSSH key does not parse", 1)


def test_a_der_certificate_file_is_named_by_the_digest_of_its_der(tmp_path: Path) -> None:
    cert = f.make_cert("dev", f.ec_key())
    path = tmp_path / "device.der"
    path.write_bytes(f.cert_der(cert))
    (material,) = load_file(path)
    assert (material.kind, material.source) == (Kind.CERTIFICATE, str(path))
    assert material.fingerprint == "SHA256:" + hashlib.sha256(f.cert_der(cert)).hexdigest()


def test_an_rsa_key_is_loaded_without_its_costly_consistency_check() -> None:
    """A key list of thousands of RSA keys is loaded without checking each key's CRT numbers
    (what makes RSA loading slow): a PKCS#1 key whose coefficient is off is still its key."""
    key = f.rsa_key()
    der = f.rsa_der_with_bad_coefficient(key)
    with pytest.raises(ValueError, match="Invalid private key"):  # a checking load
        serialization.load_der_private_key(der, None)
    (material,) = parse_credentials(der, "rsa.der").materials
    assert material.fingerprint == spki_fingerprint(key)


# --- a directory -----------------------------------------------------------------------------


def test_key_dir_refusals_name_the_directory_or_the_file_and_line(tmp_path: Path) -> None:
    plain = tmp_path / "file"
    plain.write_text("x")
    assert refusal(load_dir, plain) == f"{plain}: not a directory"
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "device.csr").write_bytes(
        b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
    )
    assert refusal(load_dir, empty) == (
        f"{empty}: no private key or certificate in any file under it"
    )
    store = tmp_path / "store"
    store.mkdir()
    two = store / "two.pem"
    pem = f.key_pem(f.ec_key())
    two.write_bytes(pem + pem.replace(b"END PRIVATE KEY", b"END EC PRIVATE KEY"))
    line = pem.count(b"\n") + 1
    assert refusal(load_dir, store) == f"{two}:{line}: BEGIN PRIVATE KEY ends with another label"


def test_key_dir_says_which_directory_cannot_be_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subdirectory that cannot be listed (here: refused by a stand-in for os.scandir, since
    root reads every directory) is an error, not a silently smaller key set."""
    store = tmp_path / "store"
    (store / "locked").mkdir(parents=True)
    (store / "a.key").write_bytes(f.key_pem(f.ec_key()))
    locked = str(store / "locked")
    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert refusal(load_dir, store) == f"{locked}: cannot list: Permission denied"


# --- a list ----------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, PrivateKey]:
    out: dict[str, PrivateKey] = {"dev0.key": f.ec_key(), "rsa.key": f.rsa_key()}
    (tmp_path / "keys").mkdir()
    for name, key in out.items():
        (tmp_path / "keys" / name).write_bytes(f.key_pem(key))
    return out


def test_a_list_uses_every_kind_of_file_it_names_under_its_own_name(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    cert = f.make_cert("dev", keys["dev0.key"])
    (tmp_path / "keys" / "dev0.crt").write_bytes(f.cert_pem(cert))
    listing = tmp_path / "list.txt"
    listing.write_text("keys/dev0.key\nkeys/rsa.key\nkeys/dev0.crt\n")
    loaded = load_list(listing)
    assert [(m.source, m.fingerprint) for m in loaded] == [
        (str(tmp_path / "keys" / "dev0.key"), spki_fingerprint(keys["dev0.key"])),
        (str(tmp_path / "keys" / "rsa.key"), spki_fingerprint(keys["rsa.key"])),
        (
            str(tmp_path / "keys" / "dev0.crt"),
            "SHA256:" + hashlib.sha256(f.cert_der(cert)).hexdigest(),
        ),
    ]


def test_list_refusals_name_the_list_and_line(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    missing = tmp_path / "missing.txt"
    assert refusal(load_list, missing) == f"{missing}: no such file"
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"keys/d\xe9v.key\n")
    assert refusal(load_list, latin) == f"{latin}: not UTF-8 text"
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    assert refusal(load_list, empty) == f"{empty}: names no key or certificate"
    two = tmp_path / "keys" / "two.pem"
    pem = f.key_pem(keys["dev0.key"])
    two.write_bytes(pem + pem.replace(b"END PRIVATE KEY", b"END EC PRIVATE KEY"))
    listing = tmp_path / "list.txt"
    listing.write_text("keys/dev0.key\nkeys/two.pem\n")
    line = pem.count(b"\n") + 1
    assert refusal(load_list, listing) == (
        f"{listing}:2: keys/two.pem:{line}: BEGIN PRIVATE KEY ends with another label"
    )


def test_json_list_entries_and_their_lines(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    compact = tmp_path / "compact.json"
    compact.write_text('["keys/dev0.key"]')
    assert [m.source for m in load_list(compact)] == [str(tmp_path / "keys" / "dev0.key")]
    pem = f.key_pem(keys["dev0.key"]).decode()
    # "[" after two lines, an entry over three lines, and "[" inside a later string
    listing = tmp_path / "run.json"
    listing.write_text(
        '\n\n[\n  {"id": "a",\n   "privateKey": '
        + json.dumps(pem)
        + '\n  },\n  {"privateKey": '
        + json.dumps(pem)
        + '},\n  "keys/[missing].key"\n]'
    )
    assert refusal(load_list, listing) == f"{listing}:8: keys/[missing].key: no such file"
    listing.write_text(listing.read_text().replace('"keys/[missing].key"', '"keys/rsa.key"'))
    assert [m.source for m in load_list(listing)] == [
        f"{listing}:4:privateKey (a)",
        f"{listing}:7:privateKey",
        str(tmp_path / "keys" / "rsa.key"),
    ]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (
            "42",
            "an entry must be a path or an object with key/cert/privateKey/clientCert/caCert/"
            "cert_pem",
        ),
        ('{"privateKey": 7}', '"privateKey" must be PEM text'),
        (
            '{"id": "dev", "status": "ok"}',
            "the entry names no key or certificate (key, cert, privateKey, clientCert, caCert, "
            "cert_pem)",
        ),
        (
            '{"caCert": "-----BEGIN PUBLIC KEY-----\\nMIIB\\n-----END PUBLIC KEY-----\\n"}',
            '"caCert" holds no private key or certificate',
        ),
        (
            '{"privateKey": "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"}',
            '"privateKey":1: the private key does not parse (damaged or unsupported)',
        ),
    ],
)
def test_json_entry_refusals_in_full(tmp_path: Path, entry: str, says: str) -> None:
    listing = tmp_path / "run.json"
    listing.write_text(f'[\n  "keys/none.key",\n  {entry}\n]'.replace('"keys/none.key",\n  ', "\n"))
    assert refusal(load_list, listing) == f"{listing}:3: {says}"


def test_json_documents_that_are_not_a_list_of_entries(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    assert refusal(load_list, deep) == f"{deep}: JSON nested too deep"
    document = tmp_path / "run.json"
    document.write_text('{"devices": []}')
    assert refusal(load_list, document) == f"{document}: expected a JSON array of entries"


def test_json_ids_are_shown_printable_and_at_most_80_characters(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    pem = f.key_pem(keys["dev0.key"]).decode()
    listing = tmp_path / "run.json"
    listing.write_text(
        json.dumps(
            [{"id": "dev\x1b[2J", "privateKey": pem}, {"imei": "9" * 100, "privateKey": pem}]
        )
    )
    first, second = load_list(listing)
    assert first.source == f"{listing}:1:privateKey (dev\\x1b[2J)"
    assert second.source == f"{listing}:1:privateKey ({'9' * 80})"


def test_csv_rows_strip_paths_only_and_short_rows_are_read(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    pem = f.key_pem(keys["dev0.key"]).decode()
    table = tmp_path / "run.csv"
    table.write_text(
        f'id,privateKey,key\n" dev 1 ","{pem}",\n2,,  keys/rsa.key  \n3,"{pem}"\n',
        newline="",
    )
    assert [m.source for m in load_list(table)] == [
        f"{table}:2:privateKey ( dev 1 )",
        str(tmp_path / "keys" / "rsa.key"),
        f"{table}:{4 + pem.count(chr(10))}:privateKey (3)",
    ]


def test_csv_with_carriage_returns_only_is_read(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    table = tmp_path / "run.csv"
    table.write_bytes(b'id,key\r"a\rb",keys/dev0.key\r')
    (material,) = load_list(table)
    assert material.source == str(tmp_path / "keys" / "dev0.key")
    pem = f.key_pem(keys["dev0.key"]).decode().replace("\n", "\r\n")
    table.write_bytes(f'id,privateKey\r\n"a\rb","{pem}"\r\n'.encode())
    (material,) = load_list(table)
    assert material.source == f"{table}:2:privateKey (a\\x0db)"


def test_csv_refusals_in_full(tmp_path: Path) -> None:
    table = tmp_path / "run.csv"
    table.write_text("serial,status\n1,ok\n")
    assert refusal(load_list, table) == (
        f"{table}:1: the CSV header names none of the columns key, cert, privateKey, clientCert, "
        "caCert, cert_pem"
    )
    table.write_text("id,key,privateKey\n1,,\n")
    assert refusal(load_list, table) == (
        f"{table}:2: the entry names no key or certificate (key, cert, privateKey, clientCert, "
        "caCert, cert_pem)"
    )
    # the record that breaks the limit starts on line 3 (header, one good record, then it)
    (tmp_path / "a.pem").write_bytes(f.key_pem(f.ec_key()))
    table.write_text('id,key,privateKey\n1,a.pem,\n2,,"' + "A" * 140_000 + '"\n')
    assert refusal(load_list, table) == (
        f"{table}:3: invalid CSV: field larger than field limit (131072)"
    )


def test_an_encrypted_openssh_key_file_is_refused() -> None:
    pem, _ = encrypted_openssh(f.ec_key())
    assert entry_refusal(pem) == ("the OpenSSH key is encrypted; decrypt it first", 1)


def test_a_deprecated_key_type_is_loaded_without_a_warning() -> None:
    """cryptography warns that finite-field DH is deprecated when it loads such a key: a known
    key of that type is still used, and the warning is not the user's business."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        key = dh.generate_parameters(2, 512).generate_private_key()
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (material,) = parse_credentials(der, "dh.der").materials
    assert caught == []
    assert material.fingerprint == "SHA256:" + hashlib.sha256(spki).hexdigest()


# --- reading a key file ----------------------------------------------------------------------


def test_read_regular_reads_up_to_its_limit_and_refuses_more(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"k" * 100)
    assert read_regular(path, 100) == b"k" * 100
    path.write_bytes(b"k" * 101)
    with pytest.raises(EntryError) as caught:
        read_regular(path, 100)
    assert caught.value.message == "larger than 100 bytes: not a key or certificate file"
    with pytest.raises(EntryError) as caught:
        read_regular(path / "inside", 100)
    assert caught.value.message == "cannot read: Not a directory"
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(EntryError) as caught:
        read_regular(tmp_path / "pipe", 100)
    assert caught.value.message == "not a regular file (FIFO, socket or device): not read"


def test_read_regular_says_why_a_file_cannot_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"k")

    def refuse(*_: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(EntryError) as caught:
        read_regular(path, 100)
    assert caught.value.message == "cannot read: Permission denied"


@pytest.mark.parametrize(
    ("grown_to", "told_sizes", "read"),
    [(5000, (10, 99), True), (100, (10, 99), True), (101, (10, 99, 100), False)],
)
def test_a_file_that_grew_since_it_was_looked_at_is_read_whole_or_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    grown_to: int,
    told_sizes: tuple[int, ...],
    read: bool,
) -> None:
    """The size stat() gave is only a first guess: the file is read to its end, and refused once
    it is past the limit (here 100 bytes; stat() says less)."""
    data = bytes(range(256)) * 20
    path = tmp_path / "k.pem"
    path.write_bytes(data[:grown_to])
    real = os.stat
    for told in told_sizes:

        def stat(target, *args, told=told, **kwargs):  # type: ignore[no-untyped-def]
            info = real(target, *args, **kwargs)
            if os.fspath(target) != str(path):
                return info
            fields = list(info)
            fields[6] = told  # st_size
            return os.stat_result(fields)

        monkeypatch.setattr(os, "stat", stat)
        limit = 100 if grown_to <= 101 else 10_000
        if read:
            assert read_regular(path, limit) == data[:grown_to], told
        else:
            with pytest.raises(EntryError, match="larger than 100 bytes"):
                read_regular(path, limit)


def test_a_key_option_file_without_a_private_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.crt"
    path.write_bytes(f.cert_pem(f.make_cert("dev", f.ec_key())))
    with pytest.raises(InputError) as caught:
        load_file(path, need_key=True)
    assert str(caught.value) == f"{path}: no private key in it"
    assert [m.kind for m in load_file(path)] == [Kind.CERTIFICATE]


def test_parse_credentials_refusals_and_lines_in_full() -> None:
    assert entry_refusal(b"  \n\t\n") == ("the file is empty", None)
    pem = f.key_pem(f.ec_key())
    assert entry_refusal(pem.split(b"-----END")[0]) == (
        "a PEM block has no matching END line (truncated?)",
        None,
    )
    other = f.key_pem(f.rsa_key())
    NEWLINE = b"\n"  # noqa: N806
    loaded = parse_credentials(b"\n" + pem + other, "keys.pem")
    assert [m.source for m in loaded.materials] == [
        "keys.pem:2",
        f"keys.pem:{2 + pem.count(NEWLINE)}",
    ]
    damaged = pem.replace(b"END PRIVATE KEY", b"END EC PRIVATE KEY")
    assert entry_refusal(b"\n" + damaged) == ("BEGIN PRIVATE KEY ends with another label", 2)


def test_a_der_key_file_with_a_byte_order_mark_is_read() -> None:
    key = f.ec_key()
    (material,) = parse_credentials(b"\xef\xbb\xbf" + f.key_der(key), "k.der").materials
    assert material.fingerprint == spki_fingerprint(key)


def test_read_regular_says_why_a_read_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"k")

    def fail(*_: object) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "read", fail)
    with pytest.raises(EntryError) as caught:
        read_regular(path, 100)
    assert caught.value.message == "cannot read: Input/output error"


# --- the command line ------------------------------------------------------------------------


def test_key_options_add_up_and_key_needs_a_private_key(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    cert = tmp_path / "device.crt"
    cert.write_bytes(f.cert_pem(f.make_cert("dev", keys["dev0.key"])))
    listing = tmp_path / "list.txt"
    listing.write_text("keys/rsa.key\n")
    store = tmp_path / "store"
    store.mkdir()
    (store / "a.key").write_bytes(f.key_pem(f.ec_key()))
    args = argparse.Namespace(
        key=[tmp_path / "keys" / "dev0.key"], key_dir=[store], keys_from=[listing]
    )
    assert [m.source for m in from_args(args)] == [
        str(tmp_path / "keys" / "dev0.key"),
        str(store / "a.key"),
        str(tmp_path / "keys" / "rsa.key"),
    ]
    # a caller without the bulk options (only --key) is served too
    assert len(from_args(argparse.Namespace(key=[tmp_path / "keys" / "dev0.key"]))) == 1
    with pytest.raises(InputError) as caught:
        from_args(argparse.Namespace(key=[cert], key_dir=[], keys_from=[]))
    assert str(caught.value) == f"{cert}: no private key in it"


def test_scan_help_describes_key_dir(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--key-dir DIR every private key and certificate in the files under DIR (repeatable)"
        in text
    )
    assert (
        "--keys-from FILE a list of key/certificate files: one path per line, or a provisioning "
        "run's .json (array of paths or {key, cert, privateKey, clientCert, caCert, id}) or .csv "
        "(header with those columns); repeatable"
    ) in text


def test_an_encrypted_der_key_file_says_it_is_encrypted() -> None:
    der = f.ec_key().private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert entry_refusal(der) == ("the private key is encrypted; decrypt it first", None)
