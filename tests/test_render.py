"""provguard render: the generated header compiles, and every string equals the normalised PEM."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from provguard.cli import main
from provguard.credentials import Slot, check, load_credential_set
from provguard.errors import InputError
from provguard.render import c_string_literal, render_header, write_header
from tests import factories as f

CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no host C compiler")

DUMP_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "certificates.h"

static int dump(const char *path, const char *text, size_t size, size_t declared)
{
	FILE *out = fopen(path, "wb");
	if (out == NULL || size != declared || strlen(text) != size) {
		return 1;
	}
	fwrite(text, 1, size, out);
	return fclose(out);
}

int main(void)
{
	static const char ca[] = CA_CERTIFICATE;
	static const char cert[] = CLIENT_CERTIFICATE;
	static const char key[] = PRIVATE_KEY;
	_Static_assert(PROVGUARD_CERTIFICATES_SEC_TAG == 4242, "sec_tag");
	int failed = dump("ca.out", ca, sizeof(ca) - 1, CA_CERTIFICATE_SIZE);

	failed |= dump("cert.out", cert, sizeof(cert) - 1, CLIENT_CERTIFICATE_SIZE);
	failed |= dump("key.out", key, sizeof(key) - 1, PRIVATE_KEY_SIZE);
	return failed;
}
"""


@pytest.fixture
def cred_files(tmp_path: Path) -> dict[str, Path]:
    pki = f.device_pki(same_ca=False)
    src = tmp_path / "src"
    src.mkdir()
    paths = {
        "ca": src / "ca.pem",
        "cert": src / "client.pem",
        "key": src / "client.key",
    }
    # CRLF and a second root in the CA slot: the header must hold the normalised form.
    second_root = f.make_cert("second root", f.ec_key(), ca=True)
    paths["ca"].write_bytes(
        (f.cert_pem(pki.ca_cert) + f.cert_pem(second_root)).replace(b"\n", b"\r\n")
    )
    paths["cert"].write_bytes(f.cert_pem(pki.device_cert))
    paths["key"].write_bytes(f.key_pem(pki.device_key, pkcs8=False))
    return paths


def render_args(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "render",
        "--ca", str(files["ca"]),
        "--cert", str(files["cert"]),
        "--key", str(files["key"]),
        "--sec-tag", "4242",
        "-o", str(out),
        *extra,
    ]  # fmt: skip


@needs_cc
def test_header_compiles_and_strings_equal_the_normalised_pem(
    tmp_path: Path, cred_files: dict[str, Path]
) -> None:
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    (tmp_path / "dump.c").write_text(DUMP_PROGRAM)
    subprocess.run(
        [CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "-I", str(tmp_path),
         "dump.c", "-o", "dump"],
        cwd=tmp_path, check=True,
    )  # fmt: skip
    subprocess.run([str(tmp_path / "dump")], cwd=tmp_path, check=True)

    creds = load_credential_set(ca=cred_files["ca"], cert=cred_files["cert"], key=cred_files["key"])
    report = check(creds, 4242)
    for slot, name in ((Slot.CA, "ca"), (Slot.CERT, "cert"), (Slot.KEY, "key")):
        assert (tmp_path / f"{name}.out").read_bytes() == report.contents[slot]
    assert b"\r" not in (tmp_path / "ca.out").read_bytes()
    assert (tmp_path / "ca.out").read_bytes().count(b"BEGIN CERTIFICATE") == 2


def test_header_is_deterministic_private_and_fingerprinted(
    tmp_path: Path, cred_files: dict[str, Path]
) -> None:
    first, second = tmp_path / "a.h", tmp_path / "b.h"
    assert main(render_args(cred_files, first)) == 0
    assert main(render_args(cred_files, second)) == 0
    assert first.read_bytes() == second.read_bytes()
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    text = first.read_text()
    assert "#ifndef PROVGUARD_CERTIFICATES_H_" in text
    assert "#define PROVGUARD_CERTIFICATES_SEC_TAG 4242" in text
    assert text.count("SHA256:") == 4  # two roots, the client certificate, the key's public key
    assert "DEVELOPMENT ONLY" in text


def test_identical_header_is_left_untouched(tmp_path: Path, cred_files: dict[str, Path]) -> None:
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    before = header.stat().st_mtime_ns
    assert main(render_args(cred_files, header)) == 0
    assert header.stat().st_mtime_ns == before


def test_render_refuses_credentials_with_errors(
    tmp_path: Path, cred_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cred_files["key"].write_bytes(f.key_pem(f.ec_key()))  # does not match the certificate
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 1
    assert not header.exists()
    err = capsys.readouterr().err
    assert "[key-mismatch]" in err
    assert "refused" in err


def test_render_refuses_an_encrypted_key(tmp_path: Path, cred_files: dict[str, Path]) -> None:
    pki_key = f.ec_key()
    cred_files["key"].write_bytes(f.key_pem(pki_key, password=b"pw"))
    assert main(render_args(cred_files, tmp_path / "certificates.h")) == 1


def test_render_refuses_a_git_tracked_path(tmp_path: Path, cred_files: dict[str, Path]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    header = repo / "certificates.h"
    header.write_text("/* placeholder */\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "certificates.h"], check=True)
    assert main(render_args(cred_files, header)) == 2
    assert header.read_text() == "/* placeholder */\n"


def test_render_never_overwrites_a_file_it_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "certificates.h"
    mine.write_text("my own header\n")
    with pytest.raises(InputError, match="not generated by provguard"):
        write_header(mine, "/* Generated by provguard */\n")
    assert mine.read_text() == "my own header\n"


def test_render_output_holds_no_secret_in_messages(
    tmp_path: Path, cred_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(render_args(cred_files, tmp_path / "certificates.h")) == 0
    out = capsys.readouterr()
    key = f.serialization.load_pem_private_key(cred_files["key"].read_bytes(), None)
    f.assert_no_key_material(out.out + out.err, key)  # type: ignore[arg-type]


@needs_cc
def test_c_string_literal_escapes_round_trip(tmp_path: Path) -> None:
    samples = ['plain', 'quote " and \\ backslash', "trigraph ??= ??/ ??'", "tab\there",
               "ctrl \x01\x7f then 7 digit", "line\n"]  # fmt: skip
    body = "\n".join(f"\tfputs({c_string_literal(s)}, stdout); putchar(0);" for s in samples)
    (tmp_path / "lit.c").write_text(
        f"#include <stdio.h>\nint main(void)\n{{\n{body}\n\treturn 0;\n}}\n"
    )
    subprocess.run(
        [CC, "-std=c11", "-Wall", "-Werror", "lit.c", "-o", "lit"], cwd=tmp_path, check=True
    )
    out = subprocess.run([str(tmp_path / "lit")], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [s.encode("latin-1") for s in samples]


def test_render_header_refuses_a_failing_report(cred_files: dict[str, Path]) -> None:
    creds = load_credential_set(ca=cred_files["ca"], key=cred_files["key"])
    with pytest.raises(ValueError, match="without errors"):
        render_header(check(creds, 24), creds)
