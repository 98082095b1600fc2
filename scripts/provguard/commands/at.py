"""`provguard at`: the AT command sequence that writes the credentials, to paste into a terminal."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from pathlib import Path

from provguard import at
from provguard.commands.common import (
    add_credential_arguments,
    checked_credentials,
)
from provguard.credentials import Slot
from provguard.errors import EXIT_OK, UsageError

NAME = "at"
HELP = "print the AT commands that write the credentials (the private key only on request)"
DESCRIPTION = """\
Checks the credentials (and refuses on errors), then prints the commands to paste into a terminal
connected to the device's AT host (for example the nRF Connect Serial Terminal, or any terminal
sending CR LF):

  AT+CMEE=1
  AT+CFUN=4
  AT%CMNG=0,<sec_tag>,0,"<CA certificate>"
  AT%CMNG=0,<sec_tag>,1,"<client certificate>"
  AT%CMNG=0,<sec_tag>,2,"<private key>"        only with --include-key
  AT+CFUN=1                                    --restore-mode N, or none

The private key is secret: it is left out unless --include-key is given. With -o FILE the sequence
is written to FILE, created with mode 0600; an existing FILE is replaced only with --force (and
made 0600), and only a regular file is ever written (a FIFO, a device such as /dev/null or a
symbolic link is refused and left as it is). --include-key refuses to send the key to stdout when
stdout is a regular file (a shell redirection creates it world-readable): use -o.
A pasted sequence cannot read the mode the device was in, so it ends with AT+CFUN=1 (online);
use --restore-mode 0/4 to stay off the network, or --restore-mode none to leave it out.
Prefer 'provguard provision', which writes only what differs and verifies every write.
"""


def _restore_mode(text: str) -> int | None:
    if text == "none":
        return None
    try:
        mode = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a functional mode or 'none': {text!r}") from None
    if mode < 0:
        raise argparse.ArgumentTypeError(f"not a functional mode: {text!r}")
    return mode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include-key",
        action="store_true",
        help="include the private key write (the key's content is then in the output)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the sequence to FILE (created with mode 0600) instead of stdout",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with -o: replace FILE if it exists (a regular file only; it is made 0600)",
    )
    parser.add_argument(
        "--restore-mode",
        type=_restore_mode,
        default=1,
        metavar="N|none",
        help="functional mode to set at the end (default 1, online; 'none' to leave it out)",
    )
    parser.add_argument(
        "--eol",
        choices=list(at.LINE_ENDINGS),
        default=at.DEFAULT_LINE_ENDING,
        help="what ends each command (the AT host's CONFIG_AT_HOST_TERMINATION; default "
        f"{at.DEFAULT_LINE_ENDING}); the content inside quotes keeps LF line endings",
    )
    add_credential_arguments(parser)


def build_sequence(
    contents: dict[Slot, bytes], sec_tag: int, *, include_key: bool, restore_mode: int | None
) -> list[at.AtCommand]:
    """The commands in the order they must be sent."""
    commands = [at.CMEE_ON, at.cfun_set(at.OFFLINE_MODE)]
    for slot in (Slot.CA, Slot.CERT, Slot.KEY):
        if slot not in contents or (slot is Slot.KEY and not include_key):
            continue
        commands.append(at.cmng_write(sec_tag, slot.modem_type, contents[slot]))
    if restore_mode is not None:
        commands.append(at.cfun_set(restore_mode))
    return commands


def run(args: argparse.Namespace) -> int:
    creds, report = checked_credentials(args, for_modem_write=True)
    contents = dict(report.contents)
    commands = build_sequence(
        contents,
        report.sec_tag,
        include_key=args.include_key,
        restore_mode=args.restore_mode,
    )
    eol = at.LINE_ENDINGS[args.eol]
    text = "".join(f"{c.text}{eol}" for c in commands)
    if Slot.KEY in contents and not args.include_key:
        name = creds.key.name if creds.key else "the private key"
        print(
            f"provguard: note: the private key ({name}) is not in the sequence; "
            "add --include-key to include it",
            file=sys.stderr,
        )
    if args.output is not None:
        _write_private(args.output, text, force=args.force)
        print(f"wrote {len(commands)} commands to {args.output} (mode 0600)", file=sys.stderr)
        return EXIT_OK
    if args.include_key and Slot.KEY in contents and _stdout_is_regular_file():
        raise UsageError(
            "refusing to write the private key to a file created by a shell redirection "
            "(it would be readable by others): use -o FILE, which creates it with mode 0600"
        )
    sys.stdout.write(text)
    return EXIT_OK


def _stdout_is_regular_file() -> bool:
    try:
        return stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


_OPEN_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _write_private(path: Path, text: str, *, force: bool) -> None:
    """Write `text` to `path`: a new file is created with mode 0600 before any byte is written;
    an existing one is replaced only with `force`, and only if it is a regular file (it is then
    made 0600). Nothing else is opened for writing, truncated or chmod-ed: no FIFO (O_NONBLOCK:
    opening never waits for a reader), no device node, no symbolic link (O_NOFOLLOW)."""
    try:
        fd = os.open(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not force:
            raise UsageError(
                "exists: refusing to overwrite it; add --force to replace it", path=path
            ) from None
        fd = _open_existing_regular(path)
    with os.fdopen(fd, "w", encoding="ascii", newline="") as stream:
        stream.write(text)


def _open_existing_regular(path: Path) -> int:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symbolic link; a FIFO nobody reads
            raise UsageError(
                "not a regular file (a symbolic link or a FIFO): not written", path=path
            ) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(
                "not a regular file (a device, FIFO or socket): not written, mode unchanged",
                path=path,
            )
        os.fchmod(fd, 0o600)  # before the content goes in
        os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd
