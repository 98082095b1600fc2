"""Which files a scan reads: a directory walked safely, and single paths classified the same way.

How to use it::

    options = WalkOptions(exclude=("*.o", "build/tmp/*"))    # --exclude GLOB patterns
    for entry in walk(Path("build"), options):               # or: [classify(Path(arg))]
        if entry.state is EntryState.FILE:
            opened = open_file(entry)                        # a stream, or why it cannot be read
            if isinstance(opened, Unreadable):
                report_unchecked(entry.display, opened.reason)
            else:
                with opened:
                    scan(opened)
        elif entry.state is EntryState.UNCHECKED:
            report_unchecked(entry.display, entry.reason)
        # SAME (already read under another path) and EXCLUDED are stated in the coverage

Every regular file under the root is yielded, whatever its name, in a stable (sorted) order. The
walk never opens anything: it classifies with `lstat`/`stat` only, so a FIFO, socket or device
node is reported (unchecked, with its type) and never read. Symlinks are followed inside the tree
only: one whose target is outside the root, broken, or part of a loop is unchecked with the
reason; a file or directory reached twice (symlink, hard link, bind mount: same device and inode)
is read once and stated as the same as the first path. A directory that cannot be listed and a
file that cannot be read are unchecked with the OS's reason.

`open_file` opens without blocking (O_NONBLOCK, so even a FIFO opens at once), then checks the
descriptor is still a regular file with the device and inode the walk saw, so a path replaced
between walk and read (by a FIFO, a symlink to /dev/zero, another file) is refused, not read.
`read_small_file` is the same for option files (`--key`, `--allow`, `--mcuboot-enc-key`): a
bounded read that names the file in its error.
"""

from __future__ import annotations

import enum
import errno
import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NamedTuple

from provguard.errors import InputError
from provguard.scan.archive import escape_name


class EntryState(enum.Enum):
    FILE = "file"  # a regular file to read
    DIRECTORY = "directory"  # `classify` only: a directory, to `walk`
    SAME = "same file"  # already yielded under another path (`same_as`)
    EXCLUDED = "excluded"  # matched an --exclude pattern (`reason` names it)
    UNCHECKED = "unchecked"  # `reason` says why


class FileId(NamedTuple):
    """A file's identity (device and inode): a tuple, hashed in C (a tree's every path is one)."""

    device: int
    inode: int


@dataclass(frozen=True)
class WalkOptions:
    """`exclude`: glob patterns. A pattern without `/` matches a file or directory name at any
    depth (`*.o`, `.git`); one with `/` matches the path relative to the root, with `/`
    separators (`build/tmp/*`, `*/objects/*`); a leading `/` anchors a name at the root
    (`/build` is the root's build, not every build). `*` matches `/` too (fnmatch). An excluded
    directory is not entered."""

    exclude: tuple[str, ...] = ()

    def excluded_by(self, relative: str) -> str | None:
        """The first pattern that excludes `relative` (a POSIX path under the root), or None."""
        if not self.exclude:
            return None
        name = PurePosixPath(relative).name
        for pattern in self.exclude:
            body = pattern.strip("/")
            # a leading "/" anchors the pattern at the root, as in .gitignore
            target = relative if pattern.startswith("/") or "/" in body else name
            if fnmatch.fnmatchcase(target, body):
                return pattern
        return None


@dataclass(frozen=True)
class Entry:
    """One path a scan met: a file to read, or why it is not read.

    `path` is the path as reached (under the root, through symlinks); `display` is it escaped
    for reports. For FILE entries `id` and `size` come from `stat` of the target.
    """

    path: Path
    display: str
    state: EntryState
    reason: str | None = None
    size: int | None = None
    id: FileId | None = None
    same_as: str | None = None  # display path of the first entry with the same file


@dataclass(frozen=True)
class Unreadable:
    """Why `open_file` could not open an entry."""

    reason: str


def display(path: Path | str) -> str:
    """A path as reports show it: control characters and undecodable bytes escaped."""
    return escape_name(os.fspath(path))


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-directory file is, in words; None for regular files and dirs."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def classify(path: Path) -> Entry:
    """A path named on the command line, classified as `walk` would: FILE for a regular file
    (directly or through symlinks), DIRECTORY for a directory (to `walk`), else UNCHECKED with
    the reason (a FIFO, /dev/zero or a symlink to it: never opened)."""
    shown = display(path)
    try:
        info = os.stat(path)  # as _visit does (Path.stat skips a patched os.stat on 3.10)
    except FileNotFoundError:
        if path.is_symlink():
            return Entry(path, shown, EntryState.UNCHECKED, "broken symlink")
        return Entry(path, shown, EntryState.UNCHECKED, "no such file or directory")
    except OSError as exc:
        return Entry(path, shown, EntryState.UNCHECKED, _os_reason("cannot stat", exc))
    if stat.S_ISDIR(info.st_mode):
        return Entry(path, shown, EntryState.DIRECTORY, id=FileId(info.st_dev, info.st_ino))
    kind = special_kind(info.st_mode)
    if kind is not None:
        return Entry(path, shown, EntryState.UNCHECKED, f"{kind}: not read")
    if not os.access(path, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
        return Entry(path, shown, EntryState.UNCHECKED, "cannot read: permission denied")
    return Entry(
        path,
        shown,
        EntryState.FILE,
        size=info.st_size,
        id=FileId(info.st_dev, info.st_ino),
    )


def walk(root: Path, options: WalkOptions | None = None) -> Iterator[Entry]:
    """Every path under `root` (a directory), depth first in sorted order; see the module doc."""
    options = options or WalkOptions()
    real_root = Path(os.path.realpath(root))
    try:
        top = root.stat()
    except OSError as exc:
        yield Entry(root, display(root), EntryState.UNCHECKED, _os_reason("cannot stat", exc))
        return
    seen: dict[FileId, str] = {FileId(top.st_dev, top.st_ino): display(root)}
    # depth first, in sorted order: a directory's entries are visited before its next sibling
    stack = [_Frame(root, "", frozenset({FileId(top.st_dev, top.st_ino)}), None)]
    while stack:
        frame = stack[-1]
        if frame.names is None:
            try:
                with os.scandir(frame.directory) as listing:
                    frame.names = iter(sorted((e.name for e in listing), key=os.fsencode))
            except OSError as exc:
                stack.pop()
                reason = _os_reason("cannot list", exc)
                yield Entry(frame.directory, display(frame.directory), EntryState.UNCHECKED, reason)
                continue
        name = next(frame.names, None)
        if name is None:
            stack.pop()
            continue
        path = frame.directory / name
        rel = f"{frame.relative}/{name}" if frame.relative else name
        pattern = options.excluded_by(rel)
        if pattern is not None:
            reason = f"excluded by --exclude {escape_name(pattern)}"
            yield Entry(path, display(path), EntryState.EXCLUDED, reason)
            continue
        entry, descend = _visit(path, real_root, seen, frame.ancestors)
        if entry is not None:
            yield entry
        if descend is not None:
            stack.append(_Frame(path, rel, frame.ancestors | {descend}, None))


@dataclass
class _Frame:
    """A directory being listed (internal, mutable): `names` left to visit, once listed."""

    directory: Path
    relative: str
    ancestors: frozenset[FileId]
    names: Iterator[str] | None


def _visit(
    path: Path, real_root: Path, seen: dict[FileId, str], ancestors: frozenset[FileId]
) -> tuple[Entry | None, FileId | None]:
    """The entry for one path met in a listing, and the id of a directory to enter, if any."""
    text = str(path)  # the system calls take the string: a Path would convert it each time
    shown = escape_name(text)
    try:
        link = os.lstat(text)
    except OSError as exc:
        return Entry(path, shown, EntryState.UNCHECKED, _os_reason("cannot stat", exc)), None
    is_link = stat.S_ISLNK(link.st_mode)
    info = link
    if is_link:
        try:
            target = Path(os.path.realpath(text))
            info = os.stat(text)
        except FileNotFoundError:
            return Entry(path, shown, EntryState.UNCHECKED, "broken symlink"), None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return Entry(path, shown, EntryState.UNCHECKED, "symlink loop"), None
            return Entry(path, shown, EntryState.UNCHECKED, _os_reason("cannot follow", exc)), None
        if target != real_root and real_root not in target.parents:
            reason = f"symlink leaves the scanned tree (to {display(target)}): not followed"
            return Entry(path, shown, EntryState.UNCHECKED, reason), None
    ident = FileId(info.st_dev, info.st_ino)
    if stat.S_ISDIR(info.st_mode):
        if ident in ancestors:
            return Entry(path, shown, EntryState.UNCHECKED, "symlink loop (to a parent)"), None
        if ident in seen:
            return Entry(path, shown, EntryState.SAME, same_as=seen[ident]), None
        seen[ident] = shown
        return None, ident
    kind = None if stat.S_ISREG(info.st_mode) else special_kind(info.st_mode)
    if kind is not None:
        return Entry(path, shown, EntryState.UNCHECKED, f"{kind}: not read"), None
    first = seen.get(ident)
    if first is not None:
        return Entry(path, shown, EntryState.SAME, same_as=first), None
    seen[ident] = shown
    if not os.access(text, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
        return Entry(path, shown, EntryState.UNCHECKED, "cannot read: permission denied"), None
    return Entry(path, shown, EntryState.FILE, size=info.st_size, id=ident), None


def _os_reason(what: str, exc: OSError) -> str:
    return f"{what}: {exc.strerror or type(exc).__name__}"


def open_file(entry: Entry) -> BinaryIO | Unreadable:
    """Open a FILE entry for reading, or say why not (never blocks, never reads a non-file)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        return Unreadable(_os_reason("cannot open", exc))
    reason: str | None = None
    try:
        info = os.fstat(fd)
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else special_kind(info.st_mode)
        if kind is not None:
            reason = f"{kind} (replaced after the walk): not read"
        elif entry.id is not None and FileId(info.st_dev, info.st_ino) != entry.id:
            reason = "replaced by another file after the walk: not read"
        else:
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
    except OSError as exc:
        reason = _os_reason("cannot open", exc)
    os.close(fd)
    return Unreadable(reason)


def read_small_file(path: Path, limit: int = 1024 * 1024, *, what: str = "file") -> bytes:
    """The bytes of an option file (a key, an allowlist), refusing FIFOs, devices, directories
    and files larger than `limit` with an `InputError` that names the file; never blocks."""
    entry = classify(path)
    if entry.state is not EntryState.FILE:
        reason = "is a directory" if entry.state is EntryState.DIRECTORY else entry.reason
        raise InputError(f"{what} not read: {reason}", path=display(path))
    if entry.size is not None and entry.size > limit:
        raise InputError(
            f"{what} too large ({entry.size} bytes, limit {limit})", path=entry.display
        )
    opened = open_file(entry)
    if isinstance(opened, Unreadable):
        raise InputError(f"{what} not read: {opened.reason}", path=entry.display)
    with opened:
        try:
            data = opened.read(limit + 1)
        except OSError as exc:
            raise InputError(_os_reason("cannot read", exc), path=entry.display) from None
    if len(data) > limit:
        raise InputError(f"{what} too large (limit {limit} bytes)", path=entry.display)
    return data
