"""certificates.h from a checked credential set: deterministic, escaped, written safely.

The header holds one string-literal macro per credential (one PEM line per literal) and its size,
so firmware can `static const char ca[] = CA_CERTIFICATE;` and BUILD_ASSERT the size.

Its first line is a marker only this module writes: the SHA-256 of the rest of the file. A file
is replaced only when that marker is there and still matches (provguard wrote it and nobody edited
it); anything else, including a user's notes that mention provguard, is never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from provguard import __version__
from provguard.credentials import (
    CheckReport,
    CredentialSet,
    Slot,
    cert_fingerprint,
    describe_key,
    key_fingerprint,
    load_certificates,
    load_private_key,
)
from provguard.errors import InputError

#: The first line of every header this module writes: the SHA-256 of everything after that line.
MARKER_PREFIX = "/* provguard-generated sha256:"
_MARKER = re.compile(rb"\A/\* provguard-generated sha256:([0-9a-f]{64}) \*/\n")
#: A generated header is a few kB; never read more of an existing file than this.
_MAX_EXISTING = 1 << 20

_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "?": "\\?"}


def c_string_literal(text: str) -> str:
    """A C string literal for `text` (ASCII); `?` is escaped so no trigraph can form."""
    out = []
    for char in text:
        if char in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            # Octal, always three digits, so a following digit cannot extend the escape.
            out.append(f"\\{ord(char):03o}")
    return '"' + "".join(out) + '"'


def c_comment_text(text: str) -> str:
    """`text` safe inside a C block comment, in ASCII: `Zürich` becomes `Z\\u00FCrich`.

    Certificate names and file names are text provguard did not write: non-ASCII and control
    characters are shown as \\uXXXX / \\UXXXXXXXX, and neither `*/` (would end the comment) nor
    `/*` (a nested-comment warning) survives.
    """
    out = []
    for char in text:
        if " " <= char <= "~":
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(f"\\U{ord(char):08X}")
    escaped = "".join(out)
    while "*/" in escaped or "/*" in escaped:
        escaped = escaped.replace("*/", "* /").replace("/*", "/ *")
    return escaped


@dataclass(frozen=True)
class _Credential:
    macro: str
    label: str
    source: str
    size: int
    literals: tuple[str, ...]
    details: tuple[str, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", self.macro):
            raise ValueError(f"not a C macro name: {self.macro!r}")
        if self.size <= 0 or not self.literals:
            raise ValueError("a credential in the header is never empty")
        for text in (self.label, self.source, *self.details):
            if c_comment_text(text) != text:
                raise ValueError("comment text must be escaped with c_comment_text")


def _details(slot: Slot, creds: CredentialSet) -> tuple[str, ...]:
    file = creds.get(slot)
    if file is None:
        return ()
    if slot is Slot.KEY:
        key = load_private_key(file)
        return (f"{describe_key(key.public_key())}, public key {key_fingerprint(key)}",)
    lines = []
    for cert in load_certificates(file):
        subject = c_comment_text(cert.subject.rfc4514_string())
        lines.append(f"{subject}, until {cert.not_valid_after_utc:%Y-%m-%d}")
        lines.append(f"  {cert_fingerprint(cert)}")
    return tuple(lines)


def render_header(report: CheckReport, creds: CredentialSet) -> str:
    """The header text; the report must be free of errors (render refuses otherwise)."""
    if not report.ok:
        raise ValueError("render_header needs a report without errors")
    if Slot.CA not in report.contents:
        raise InputError("render needs a CA certificate (--ca)")
    credentials = []
    for slot in Slot:
        content = report.contents.get(slot)
        file = creds.get(slot)
        if content is None or file is None:
            continue
        text = content.decode("ascii")
        credentials.append(
            _Credential(
                macro=slot.macro,
                label=slot.label,
                source=c_comment_text(Path(file.name).name),
                size=len(content),
                literals=tuple(c_string_literal(line) for line in text.splitlines(keepends=True)),
                details=_details(slot, creds),
            )
        )
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("provguard", "templates"),
        autoescape=False,  # noqa: S701 - C source, not HTML: escaping is c_string_literal's job
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    template = environment.get_template("certificates.h.j2")
    body = template.render(
        sec_tag=report.sec_tag,
        version=__version__,
        credentials=tuple(credentials),
        has_key=Slot.KEY in report.contents,
    )
    return with_marker(body)


def with_marker(body: str) -> str:
    """`body` behind the marker line that lets a later render recognise (and replace) it."""
    digest = hashlib.sha256(body.encode("ascii")).hexdigest()
    return f"{MARKER_PREFIX}{digest} */\n{body}"


def generated_by_provguard(data: bytes) -> bool | None:
    """True: a header provguard wrote, unchanged. False: it was edited. None: not provguard's."""
    match = _MARKER.match(data)
    if match is None:
        return None
    return hashlib.sha256(data[match.end() :]).hexdigest() == match.group(1).decode()


# --- where a header may go -------------------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    directory = path.absolute().parent
    while not directory.is_dir():
        directory = directory.parent
    return directory


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    # Untranslated messages: "not a git repository" is matched below.
    return subprocess.run(
        ["git", "-C", str(directory), *args],
        capture_output=True,
        check=False,
        timeout=30,
        env={**os.environ, "LC_ALL": "C", "LANGUAGE": "C"},
    )


def _inside_dot_git(directory: Path) -> bool:
    return any((parent / ".git").exists() for parent in (directory, *directory.parents))


def git_refusal(path: Path) -> str | None:
    """Why git rules out `path` for a header with credentials, or None when it may be written.

    Refused: a path git tracks, and a path inside a work tree that git does not ignore (the next
    `git add .` would commit the key). Outside a work tree anything goes. Fails closed: when git
    cannot answer inside what looks like a work tree, the path is refused.
    """
    directory = _existing_ancestor(path)
    relative = os.path.relpath(path.absolute(), directory)
    if shutil.which("git") is None:
        if _inside_dot_git(directory):
            return "inside a git work tree, and git is not installed to check that it is ignored"
        return None
    try:
        top = _git(directory, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            answer = top.stderr.decode(errors="replace").strip()
            if "not a git repository" in answer:
                return None  # outside any work tree
            first = answer.splitlines()[0] if answer else f"exit {top.returncode}"
            return f"git could not tell whether this path is in a work tree ({first})"
        # A path with '*' or '?' names that file, never a pattern that matches tracked ones.
        tracked = _git(directory, "ls-files", "--error-unmatch", "--", f":(literal){relative}")
        if tracked.returncode == 0:
            return (
                "git tracks this file: a header with credentials must never be committed; "
                "render into the build directory instead"
            )
        ignored = _git(directory, "check-ignore", "-q", "--no-index", "--", relative)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"git could not be asked whether it ignores this path ({exc})"
    if ignored.returncode == 0:
        return None
    if ignored.returncode == 1:
        where = top.stdout.decode(errors="replace").strip()
        return (
            f"inside the git work tree {where} and not ignored by git (git check-ignore): the "
            "header holds credentials and could be committed; render into an ignored directory "
            "(e.g. build/), add the path to .gitignore, or pass --force-untracked"
        )
    detail = ignored.stderr.decode(errors="replace").strip().splitlines()
    return f"git check-ignore failed ({detail[0] if detail else ignored.returncode})"


def write_header(path: Path, text: str, *, force_untracked: bool = False) -> bool:
    """Write atomically with mode 0600; False when the file already held exactly this text.

    Creates missing parent directories. Refuses a path git tracks, a path in a git work tree that
    git does not ignore (unless `force_untracked`), anything but a regular file, and any existing
    file provguard did not generate or that was edited since (nothing the user had is lost).
    """
    refusal = git_refusal(path)
    if refusal is not None and (not force_untracked or refusal.startswith("git tracks")):
        raise InputError(refusal, path=path)
    data = text.encode("ascii")
    old = _existing_header(path)
    if old == data:
        os.chmod(path, 0o600)
        return False
    parent = path.parent if str(path.parent) else Path()
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError("is not a directory", path=parent) from None
    except OSError as exc:
        raise InputError(f"cannot create the directory: {exc.strerror}", path=parent) from None
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)  # mode 0600
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def _existing_header(path: Path) -> bytes | None:
    """The bytes of an existing header provguard wrote, None when there is none; else refuse."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise InputError("a part of the path is not a directory", path=path) from None
    if stat.S_ISDIR(status.st_mode):
        raise InputError("is a directory", path=path)
    if not stat.S_ISREG(status.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(status.st_mode) else "not a regular file"
        raise InputError(f"is {kind}: render writes regular files only", path=path)
    try:
        with path.open("rb") as stream:
            old = stream.read(_MAX_EXISTING + 1)
    except OSError as exc:
        raise InputError(f"cannot read the existing file: {exc.strerror}", path=path) from None
    state = generated_by_provguard(old)
    if state is None:
        raise InputError("exists and was not generated by provguard: not overwriting it", path=path)
    if not state:
        raise InputError(
            "was generated by provguard but edited since (its content no longer matches its "
            "marker): not overwriting the edits; delete it to render again",
            path=path,
        )
    return old
