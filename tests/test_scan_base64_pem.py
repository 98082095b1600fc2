"""A PEM file encoded in base64 once more is found: a Kubernetes Secret (`data: tls.key: ...`),
a CI variable or a JSON field written with `base64 -w0 key.pem`, or `base64`'s own output
wrapped at 76 characters, where a BEGIN may be cut by a line break.

The base64 is written by coreutils' `base64`; what a finding's span holds is checked by decoding
it here. Keys are generated at test time and never printed.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from provguard.cli import main
from provguard.credentials import key_fingerprint
from tests import factories as f


def scan(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict]:
    code = main(["scan", "--format", "json", *map(str, args)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out)


def coreutils_base64(data: bytes, *, wrap: bool) -> str:
    command = ["base64"] if wrap else ["base64", "-w0"]
    return subprocess.run(command, input=data, capture_output=True, check=True).stdout.decode()


def spelled(text: str, start: int, length: int) -> bytes:
    """What the base64 characters of `text[start:start + length]` decode to, padded."""
    chars = "".join(c for c in text[start : start + length] if not c.isspace())
    return binascii.a2b_base64(chars + "=" * (-len(chars) % 4))


def test_a_kubernetes_secret_holding_a_key_fails_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    pem = f.key_pem(key)
    value = coreutils_base64(pem, wrap=False)
    secret = tmp_path / "device-secret.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\ndata:\n"
        f"  tls.crt: {coreutils_base64(b'not a certificate', wrap=False)}\n"
        f"  tls.key: {value}\n"
    )
    text = secret.read_text()

    code, report = scan(capsys, secret)

    assert code == 1
    [finding] = report["findings"]
    assert finding["encoding"].startswith("PEM PKCS#8 in base64")
    assert finding["key"] == key_fingerprint(key)
    assert finding["fileOffset"] == text.index(value)
    # 4 characters for every 3 bytes, up to the END line's last dash (not the line feed after it)
    assert finding["length"] == -(-len(pem.rstrip(b"\n")) // 3) * 4
    # the span reported holds the whole PEM block
    assert pem.rstrip(b"\n") in spelled(text, finding["fileOffset"], finding["length"])


@pytest.mark.parametrize("before", [0, 1, 2, 50, 51, 52, 53, 54, 55])
def test_a_key_anywhere_in_wrapped_base64_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], before: int
) -> None:
    """`before` bytes of JSON come first: every byte alignment, and BEGINs cut by a line break
    (the 76th character falls inside it for some of these)."""
    key = f.ec_key()
    pem = f.key_pem(key, pkcs8=False)
    head = b'{"n": "' + b"d" * max(0, before - 10) + b'", "k": "'
    blob = head[:before] if before < 10 else head
    encoded = tmp_path / "device.json.b64"
    encoded.write_text(coreutils_base64(blob + pem + b'"}', wrap=True))

    code, report = scan(capsys, encoded)

    assert code == 1
    [finding] = report["findings"]
    assert finding["encoding"].startswith("PEM SEC1 in base64")
    assert finding["key"] == key_fingerprint(key)
    text = encoded.read_text()
    assert pem.rstrip(b"\n") in spelled(text, finding["fileOffset"], finding["length"])
    # reported from the quantum the BEGIN starts in: 4 characters for every 3 bytes before it
    characters = [i for i, c in enumerate(text) if not c.isspace()]
    assert finding["fileOffset"] == characters[len(blob) // 3 * 4]


def test_a_begin_cut_by_a_line_break_is_in_these_cases() -> None:
    """The wrapped cases above do cut a BEGIN (so the test is of what it says): base64 writes 4
    characters for 3 bytes, `base64` breaks the line after every 76 characters."""
    cut = []
    for before in (50, 51, 52, 53, 54, 55):
        head = len(b'{"n": "') + (before - 10) + len(b'", "k": "')
        first, last = head * 4 // 3, -(-(head + len(b"-----BEGIN")) * 4 // 3)
        cut += [before for line_end in range(76, last, 76) if first < line_end < last]
    assert cut


def test_a_bundle_of_certificate_and_key_is_read_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run of base64 holding a chain and then the key: both found, the key after the chain."""
    pki = f.device_pki()
    bundle = (
        f.cert_pem(pki.device_cert) + f.cert_pem(pki.device_ca_cert) + f.key_pem(pki.device_key)
    )
    config = tmp_path / "provisioning.json"
    config.write_text(json.dumps({"bundle": coreutils_base64(bundle, wrap=False)}))

    code, report = scan(capsys, config)

    assert code == 1
    kinds = sorted((x["kind"], x["key"]) for x in report["findings"] + report["allowed"])
    assert ("private-key", key_fingerprint(pki.device_key)) in kinds
    assert sum(kind == "certificate" for kind, _ in kinds) == 2
    # the key's BEGIN is that many bytes into the run: 4 characters for every 3 before its quantum
    [key] = [x for x in report["findings"] if x["kind"] == "private-key"]
    value = config.read_text().index('"bundle": "') + len('"bundle": "')
    assert key["fileOffset"] == value + bundle.index(b"-----BEGIN PRIVATE KEY") // 3 * 4


def test_base64_of_a_certificate_or_of_random_bytes_is_no_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = f.device_pki()
    config = tmp_path / "ca.env"
    config.write_text(
        f"CA_PEM={coreutils_base64(f.cert_pem(pki.ca_cert), wrap=False)}\n"
        f"NOISE={coreutils_base64(os.urandom(3000), wrap=False)}\n"
    )

    code, report = scan(capsys, config)

    assert code == 0
    assert report["verdict"] == "clean"
    [cert] = report["findings"] + report["allowed"]
    assert cert["kind"] == "certificate"
    assert cert["encoding"].startswith("PEM in base64")


def test_a_key_whose_last_base64_quantum_is_short_is_found_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A P-256 SEC1 PEM is 227 bytes: its last 2 bytes (`-` and the line feed) are 3 characters
    and a `=`; the END line must not lose its last dash."""
    key = f.ec_key()
    pem = f.key_pem(key, pkcs8=False)
    assert len(pem) % 3 == 2
    value = coreutils_base64(pem, wrap=False)
    env = tmp_path / "device.env"
    env.write_text(f"DEVICE_KEY={value}\n")

    code, report = scan(capsys, env)

    assert code == 1
    [finding] = report["findings"]
    assert finding["encoding"].startswith("PEM SEC1 in base64")
    assert finding["key"] == key_fingerprint(key)


def test_every_base64_value_of_a_file_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Values with no PEM, a PEM that is no key or certificate (a public key), a certificate and
    a key, one after another: the certificate and the key are both reported, where each is."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    pki = f.device_pki()
    public = pki.device_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    values = {
        "NOISE": coreutils_base64(os.urandom(600), wrap=False),
        "PUBLIC": coreutils_base64(public, wrap=False),
        "CERT": coreutils_base64(f.cert_pem(pki.device_cert), wrap=False),
        "KEY": coreutils_base64(f.key_pem(pki.device_key), wrap=False),
    }
    env = tmp_path / "device.env"
    env.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    text = env.read_text()

    code, report = scan(capsys, env)

    assert code == 1
    found = sorted(
        (x["fileOffset"], x["kind"], x["key"]) for x in report["findings"] + report["allowed"]
    )
    der = f.cert_der(pki.device_cert)
    assert found == [
        (text.index(values["CERT"]), "certificate", "SHA256:" + hashlib.sha256(der).hexdigest()),
        (text.index(values["KEY"]), "private-key", key_fingerprint(pki.device_key)),
    ]


@pytest.mark.parametrize("after", ["", "\nX=1\n"], ids=["at-the-end", "a-line-after"])
def test_base64_without_padding_or_a_newline_at_the_end_is_read_to_its_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], after: str
) -> None:
    """A PEM without its last line feed: 226 bytes of SEC1 end in one byte (`-`, two characters
    of base64); 240 of PKCS#8 need no padding, and the next line's `X` then joins the run as a
    lone last character, which holds no byte."""
    sec1, pkcs8 = f.ec_key(), f.ec_key()
    values = {
        "SEC1": coreutils_base64(f.key_pem(sec1, pkcs8=False).rstrip(b"\n"), wrap=False),
        "PKCS8": coreutils_base64(f.key_pem(pkcs8).rstrip(b"\n"), wrap=False),
    }
    assert values["SEC1"].endswith("==")
    assert not values["PKCS8"].endswith("=")
    env = tmp_path / "keys.env"
    env.write_text(f"SEC1={values['SEC1']}\nPKCS8={values['PKCS8']}{after}")

    code, report = scan(capsys, env)

    assert code == 1
    assert sorted(x["key"] for x in report["findings"]) == sorted(
        [key_fingerprint(sec1), key_fingerprint(pkcs8)]
    )
    # the SEC1 key ends in its last quantum: every character of its value but the padding
    [first] = [x for x in report["findings"] if x["key"] == key_fingerprint(sec1)]
    assert first["fileOffset"] == len("SEC1=")
    assert first["length"] == len(values["SEC1"].rstrip("="))


def test_a_key_lines_into_wrapped_base64_is_reported_at_its_own_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chain and then the key, wrapped at 76: the key's first and last characters are lines
    in, past the line breaks (counted here by numbering the base64 characters; the `=` of the
    padding holds no byte and ends no finding)."""
    pki = f.device_pki()
    pem = f.key_pem(pki.device_key)
    bundle = f.cert_pem(pki.device_cert) + f.cert_pem(pki.device_ca_cert) + pem
    encoded = tmp_path / "chain-and-key.b64"
    encoded.write_text(coreutils_base64(bundle, wrap=True))
    text = encoded.read_text()
    characters = [i for i, c in enumerate(text) if c.isalnum() or c in "+/"]
    begin = bundle.index(b"-----BEGIN PRIVATE KEY")
    end = begin + len(pem.rstrip(b"\n"))  # the END line's last dash

    code, report = scan(capsys, encoded)

    assert code == 1
    [key] = [x for x in report["findings"] if x["kind"] == "private-key"]
    assert key["fileOffset"] == characters[begin // 3 * 4]
    assert key["fileOffset"] > text.index("\n") * 2  # lines in
    last = min(len(characters), -(-end // 3) * 4) - 1
    assert key["fileOffset"] + key["length"] == characters[last] + 1


def test_positions_count_only_the_characters_that_are_not_white_space() -> None:
    """`_positions`: the n-th character that is no space, tab or line break, wherever breaks of
    any length fall (numbered here by enumerating the characters)."""
    from provguard.scan.engine import _positions  # noqa: PLC0415

    block = b"ab\ncd\r\n\tef  g\nh\n"
    characters = [i for i, c in enumerate(block) if c not in b" \t\r\n"]
    wanted = list(range(len(characters)))

    assert _positions(block, 1000, wanted) == {n: 1000 + i for n, i in enumerate(characters)}
    assert _positions(block, 0, [6, 2]) == {2: characters[2], 6: characters[6]}
