"""provguard render: the generated header compiles, and every string equals the normalised PEM."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from provguard.cli import main
from provguard.credentials import Slot, check, load_credential_set
from provguard.errors import InputError
from provguard.render import (
    c_comment_text,
    c_string_literal,
    generated_by_provguard,
    render_header,
    with_marker,
    write_header,
)
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


def test_render_refuses_an_encrypted_key(
    tmp_path: Path, cred_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pki_key = f.ec_key()
    cred_files["key"].write_bytes(f.key_pem(pki_key, password=b"pw"))
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 1
    err = capsys.readouterr().err
    assert f"{cred_files['key']}:1: error: the private key is encrypted" in err
    assert "[key-encrypted]" in err
    assert not header.exists()


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree that ignores build/ (as this project's .gitignore does)."""
    work = tmp_path / "repo"
    work.mkdir()
    git(work, "init", "-q")
    (work / ".gitignore").write_text("build/\n")
    return work


def test_render_creates_missing_directories(tmp_path: Path, cred_files: dict[str, Path]) -> None:
    header = tmp_path / "build" / "generated" / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    assert header.read_text().count("#define CA_CERTIFICATE_SIZE") == 1


def test_render_refuses_a_git_tracked_file_it_generated(
    repo: Path, cred_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    header = repo / "build" / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    git(repo, "add", "-f", "build/certificates.h")  # someone committed the generated header
    generated = header.read_bytes()
    cred_files["ca"].write_bytes(f.cert_pem(f.make_cert("new root", f.ec_key(), ca=True)))
    capsys.readouterr()
    assert main(render_args(cred_files, header, "--force-untracked")) == 2
    assert "git tracks this file" in capsys.readouterr().err
    assert header.read_bytes() == generated


def test_render_fails_closed_when_git_cannot_answer(
    tmp_path: Path,
    cred_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # git refuses, for example, a repository another user owns (safe.directory): as it says.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text(
        "#!/bin/sh\necho \"fatal: detected dubious ownership in repository at '/src'\" >&2\n"
        "exit 128\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    header = tmp_path / "out" / "certificates.h"
    assert main(render_args(cred_files, header)) == 2
    assert (
        "git could not tell whether this path is in a work tree (fatal: detected dubious "
        "ownership in repository at '/src')" in capsys.readouterr().err
    )
    assert not header.exists()


def test_render_refuses_an_untracked_path_git_does_not_ignore(
    repo: Path, cred_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    header = repo / "src" / "certificates.h"
    assert main(render_args(cred_files, header)) == 2
    err = capsys.readouterr().err
    assert "not ignored by git (git check-ignore)" in err
    assert "--force-untracked" in err
    assert not header.exists()
    assert main(render_args(cred_files, header, "--force-untracked")) == 0
    assert header.exists()
    ignored = repo / "build" / "generated" / "certificates.h"
    assert main(render_args(cred_files, ignored)) == 0


def test_a_glob_or_a_missing_parent_is_not_called_tracked(
    repo: Path,
    cred_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / "build").mkdir()
    (repo / "build" / "certA.h").write_text("tracked\n")
    (repo / "certificates.h").write_text("tracked\n")
    git(repo, "add", "-f", "build/certA.h", "certificates.h")
    monkeypatch.chdir(repo)
    # 'cert*.h' names a file of that name, not the tracked certA.h it would match as a pattern.
    assert main(render_args(cred_files, repo / "build" / "cert*.h")) == 0, capsys.readouterr()
    # A missing parent: the tracked ./certificates.h of the current directory is another file.
    fresh = repo / "build" / "new" / "certificates.h"
    assert main(render_args(cred_files, fresh)) == 0, capsys.readouterr()
    assert (repo / "certificates.h").read_text() == "tracked\n"


def test_render_never_overwrites_a_file_it_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "certificates.h"
    mine.write_text("/* my notes: Generated by provguard 0.1.0 ('provguard render') */\n")
    before = mine.read_bytes()
    with pytest.raises(InputError, match="not generated by provguard"):
        write_header(mine, with_marker("/* new */\n"))
    assert mine.read_bytes() == before


def test_render_never_overwrites_an_edited_header(
    tmp_path: Path, cred_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    edited = header.read_bytes().replace(
        b"#define PROVGUARD_CERTIFICATES_SEC_TAG 4242", b"#define PROVGUARD_CERTIFICATES_SEC_TAG 1"
    )
    header.write_bytes(edited)
    assert main(render_args(cred_files, header)) == 2
    assert "edited since" in capsys.readouterr().err
    assert header.read_bytes() == edited


def test_the_marker_digest_covers_the_whole_header(
    tmp_path: Path, cred_files: dict[str, Path]
) -> None:
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    first, rest = header.read_bytes().split(b"\n", 1)
    digest = hashlib.sha256(rest).hexdigest().encode()
    assert first == b"/* provguard-generated sha256:" + digest + b" */"
    assert generated_by_provguard(header.read_bytes()) is True
    assert generated_by_provguard(header.read_bytes() + b" ") is False


def test_rerender_resets_a_widened_mode_to_0600(
    tmp_path: Path, cred_files: dict[str, Path]
) -> None:
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    header.chmod(0o644)
    assert main(render_args(cred_files, header)) == 0  # unchanged content: not rewritten
    assert stat.S_IMODE(header.stat().st_mode) == 0o600
    header.chmod(0o644)
    changed = render_args(cred_files, header)
    changed[changed.index("4242")] = "4243"
    assert main(changed) == 0  # new content: replaced by a new file
    assert stat.S_IMODE(header.stat().st_mode) == 0o600
    assert "#define PROVGUARD_CERTIFICATES_SEC_TAG 4243" in header.read_text()


@pytest.mark.parametrize("device", ["/dev/full", "/dev/zero", "/dev/null"])
def test_render_writes_regular_files_only(
    cred_files: dict[str, Path], device: str, tmp_path: Path
) -> None:
    before = os.stat(device)
    result = run_provguard(render_args(cred_files, Path(device)), tmp_path)
    assert result.returncode == 2
    assert f"{device}: is not a regular file" in result.stderr
    after = os.stat(device)
    assert (after.st_mode, after.st_uid) == (before.st_mode, before.st_uid)


def test_render_never_writes_through_a_symbolic_link(
    tmp_path: Path, cred_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere.h"
    assert main(render_args(cred_files, target)) == 0
    link = tmp_path / "certificates.h"
    link.symlink_to(target)
    before = target.read_bytes()
    changed = render_args(cred_files, link)
    changed[changed.index("4242")] = "4243"
    assert main(changed) == 2
    assert (
        f"{link}: is a symbolic link: render writes regular files only" in capsys.readouterr().err
    )
    assert link.is_symlink()
    assert target.read_bytes() == before


def test_render_onto_a_fifo_is_refused_without_hanging(
    tmp_path: Path, cred_files: dict[str, Path]
) -> None:
    fifo = tmp_path / "certificates.h"
    os.mkfifo(fifo)
    result = run_provguard(render_args(cred_files, fifo), tmp_path)  # a hang is a timeout
    assert result.returncode == 2
    assert "is not a regular file" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def run_provguard(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provguard", *args],
        capture_output=True, text=True, cwd=cwd, timeout=30, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


def test_render_is_identical_across_processes_and_hash_seeds(
    tmp_path: Path, cred_files: dict[str, Path]
) -> None:
    outputs = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        out = tmp_path / f"seed{seed}" / "certificates.h"
        result = run_provguard(render_args(cred_files, out), tmp_path, PYTHONHASHSEED=seed)
        assert result.returncode == 0, result.stderr
        outputs.add(out.read_bytes())
    assert len(outputs) == 1
    text = outputs.pop()
    order = [text.find(m) for m in (b"#define CA_CERTIFICATE ",
             b"#define CLIENT_CERTIFICATE ", b"#define PRIVATE_KEY ")]  # fmt: skip
    assert -1 not in order
    assert order == sorted(order)


@needs_cc
def test_non_ascii_and_comment_closing_subjects_render_as_ascii_comments(
    tmp_path: Path, cred_files: dict[str, Path]
) -> None:
    key = f.ec_key()
    subject = "Z\u00fcrich \u6771\u4eac CA */ #error bad /* \U0001f510"
    cred_files["ca"] = cred_files["ca"].with_name("wurzel-\u00e4.pem")  # a non-ASCII file name
    cred_files["ca"].write_bytes(f.cert_pem(f.make_cert(subject, key, ca=True)))
    header = tmp_path / "certificates.h"
    assert main(render_args(cred_files, header)) == 0
    text = header.read_bytes().decode("ascii")  # ASCII only
    assert r"CA certificate from wurzel-\u00E4.pem:" in text
    assert r"CN=Z\u00FCrich \u6771\u4EAC CA * / #error bad / * \U0001F510" in text
    (tmp_path / "use.c").write_text(
        '#include "certificates.h"\nconst char ca[] = CA_CERTIFICATE;\n'
    )
    subprocess.run(
        [CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wcomment", "-c", "use.c", "-o", "use.o"],
        cwd=tmp_path, check=True,
    )  # fmt: skip


def test_c_comment_text_escapes() -> None:
    assert c_comment_text("Z\u00fcrich") == r"Z\u00FCrich"
    assert c_comment_text("a*/b") == "a* /b"
    assert c_comment_text("a/*b") == "a/ *b"
    assert c_comment_text("*/*/") == "* / * /"
    assert c_comment_text("line\nbreak") == r"line\u000Abreak"


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
