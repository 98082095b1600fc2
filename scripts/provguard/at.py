"""AT commands for the nRF91 modem's credential store: building, quoting, parsing, error codes.

Pure functions and value objects, no I/O. The formats follow the nRF91 AT command reference
(`%CMNG`, `+CFUN`, `+CMEE`) and the NCS AT host (sdk-nrf `lib/at_host/at_host.c`): a command ends
at CR LF outside double quotes, so PEM content in quotes may span lines, and the host's buffer is
`CONFIG_AT_HOST_CMD_MAX_LEN` (4096) bytes including the terminating NUL.

Every command carries a `summary` that is safe to print: the quoted content of a write is replaced
by its size and SHA-256, so key material never reaches a message, log or exception.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
from dataclasses import dataclass, field

from provguard.errors import InputError, ProblemsFoundError, UsageError
from provguard.nrf91 import AT_COMMAND_BUFFER, SEC_TAG_MAX

#: The AT host keeps 4096 bytes including the NUL that ends the command.
MAX_COMMAND_LENGTH = AT_COMMAND_BUFFER - 1
#: `AT+CFUN=4`: offline, the mode in which the credential store may be written.
OFFLINE_MODE = 4
#: Functional modes in which `%CMNG` write and delete are refused with 518 (AT reference, %CMNG).
WRITE_BLOCKED_MODES = frozenset({1, 2, 21})
#: Modes in which writes are allowed without changing anything (offline, power off).
WRITE_ALLOWED_MODES = frozenset({0, OFFLINE_MODE})
#: What ends a command (`CONFIG_AT_HOST_TERMINATION` of the AT host: CR, LF or CR+LF). Inside
#: double quotes none of them ends the command, so PEM content keeps its LF line endings.
LINE_ENDINGS = {"crlf": "\r\n", "cr": "\r", "lf": "\n"}
DEFAULT_LINE_ENDING = "crlf"  # what Nordic's host tools send; the AT host ignores a stray LF

#: The longest wait for one answer provguard accepts (`--timeout`): %KEYGEN takes seconds, a
#: write well under one; ten minutes is far beyond any documented answer time.
MAX_TIMEOUT = 600.0
#: The largest `+CME ERROR` code provguard reads; longer digit strings are not an error code.
MAX_CME_DIGITS = 5

#: `+CME ERROR` codes of the credential store (`%CMNG`, nRF91 AT command reference).
CME_MESSAGES: dict[int, str] = {
    513: "not found",
    514: "no access (private keys cannot be read back; reserved sec_tags cannot be changed)",
    515: "memory full: the modem's credential storage has no room left; "
    "delete credentials that are no longer used (AT%CMNG=3,<sec_tag>,<type>)",
    518: "not allowed while the modem is online: set the offline mode first (AT+CFUN=4)",
    519: "already exists",
    527: "invalid content: the modem could not parse the credential; "
    "it expects PEM with LF line endings",
    523: "key generation failed (AT%KEYGEN)",
    528: "not allowed while a power-off warning is active (%XPOFWARN): "
    "give the device a stable supply and reset it",
}


def check_timeout(seconds: float) -> float:
    """`seconds` if it is a usable wait for one answer: finite, > 0, at most MAX_TIMEOUT."""
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_TIMEOUT:
        raise UsageError(
            f"timeout {seconds!r}: give a number of seconds greater than 0 and at most "
            f"{MAX_TIMEOUT:g}"
        )
    return seconds


def timeout_argument(text: str) -> float:
    """argparse type for `--timeout S` (exit 2 with a one-line message on bad values)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text[:40]!r}") from None
    try:
        return check_timeout(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


_TYPE_LABELS = {
    0: "CA certificate",
    1: "client certificate",
    2: "private key",
    3: "PSK",
    4: "PSK identity",
    5: "public key",
    6: "device identity public key",
}


def type_label(cred_type: int) -> str:
    return _TYPE_LABELS.get(cred_type, f"type {cred_type}")


def content_digest(content: bytes) -> str:
    """The digest `AT%CMNG=1` lists for `content`: SHA-256, 64 upper-case hex characters."""
    return hashlib.sha256(content).hexdigest().upper()


@dataclass(frozen=True)
class AtCommand:
    """A command line to send (`text`, may hold a key) and how to show it (`summary`)."""

    text: str = field(repr=False)
    summary: str

    def __str__(self) -> str:
        return self.summary


def _plain(text: str) -> AtCommand:
    return AtCommand(text, text)


CMEE_ON = _plain("AT+CMEE=1")
CFUN_READ = _plain("AT+CFUN?")
CGSN = _plain("AT+CGSN")


def _check_sec_tag(sec_tag: int) -> None:
    if not 0 <= sec_tag <= SEC_TAG_MAX:
        raise InputError(f"sec_tag {sec_tag} is outside the user range 0-{SEC_TAG_MAX}")


def cfun_set(mode: int) -> AtCommand:
    if mode < 0:
        raise InputError(f"functional mode {mode} is not a valid AT+CFUN mode")
    return _plain(f"AT+CFUN={mode}")


def cmng_list(sec_tag: int | None = None, cred_type: int | None = None) -> AtCommand:
    if sec_tag is None:
        return _plain("AT%CMNG=1")
    _check_sec_tag(sec_tag)
    if cred_type is None:
        return _plain(f"AT%CMNG=1,{sec_tag}")
    return _plain(f"AT%CMNG=1,{sec_tag},{cred_type}")


def cmng_read(sec_tag: int, cred_type: int) -> AtCommand:
    """`AT%CMNG=2,<sec_tag>,<type>`: a certificate's content back (keys cannot be read)."""
    _check_sec_tag(sec_tag)
    return _plain(f"AT%CMNG=2,{sec_tag},{cred_type}")


def cmng_delete(sec_tag: int, cred_type: int) -> AtCommand:
    _check_sec_tag(sec_tag)
    return _plain(f"AT%CMNG=3,{sec_tag},{cred_type}")


def _refuse_unquotable(content: bytes, what: str) -> None:
    """AT strings have no escape: a `"` would end the string early, CR/LF outside PEM lines,
    NUL, backspace or DEL would be taken by the AT host. Only printable ASCII and LF pass."""
    if not content:
        raise InputError(f"{what}: empty content cannot be written (the modem refuses it)")
    for index, byte in enumerate(content):
        if byte == 0x22:
            raise InputError(
                f"{what}: a double quote at byte {index} cannot be sent inside an AT string"
            )
        if not (0x20 <= byte < 0x7F or byte == 0x0A):
            raise InputError(
                f"{what}: byte 0x{byte:02x} at offset {index} cannot be sent in an AT command "
                "(only printable ASCII and LF line endings are accepted)"
            )


class CommandTooLongError(ProblemsFoundError):
    """A credential that does not fit in one AT command."""


def cmng_write(sec_tag: int, cred_type: int, content: bytes, *, what: str = "") -> AtCommand:
    """`AT%CMNG=0,<sec_tag>,<type>,"<content>"`, refusing content the AT host would mangle."""
    _check_sec_tag(sec_tag)
    what = what or type_label(cred_type)
    _refuse_unquotable(content, what)
    text = f'AT%CMNG=0,{sec_tag},{cred_type},"{content.decode("ascii")}"'
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandTooLongError(
            f"{what}: the write command is {len(text)} bytes, more than the "
            f"{MAX_COMMAND_LENGTH} the modem's AT host accepts in one command"
        )
    summary = (
        f'AT%CMNG=0,{sec_tag},{cred_type},"<{type_label(cred_type)}: {len(content)} bytes, '
        f'SHA-256 {content_digest(content)[:16]}…>"'
    )
    return AtCommand(text, summary)


@dataclass(frozen=True)
class Final:
    """The final result code that ends a response."""

    ok: bool
    code: int | None = None  # the number of `+CME ERROR: <n>`; None for OK and bare ERROR
    text: str = "OK"

    def describe(self) -> str:
        if self.ok:
            return "OK"
        if self.code is None:
            return (
                f"{self.text} (no error code: extended error codes are off, "
                "or the command is not supported)"
            )
        return f"{self.text} ({cme_message(self.code)})"


_FINAL_RE = re.compile(r"^(?:OK|ERROR|\+CM[ES] ERROR:\s*(\d+).*)$", re.DOTALL)


def final_result(line: str) -> Final | None:
    """The final result code `line` carries, or None for an information line. Raises
    UnexpectedResponseError for a `+CME ERROR:` whose code no modem sends (thousands of digits)."""
    line = line.strip()
    match = _FINAL_RE.match(line)
    if match is None:
        return None
    if line == "OK":
        return Final(ok=True)
    code = match.group(1)
    if code and len(code) > MAX_CME_DIGITS:
        raise UnexpectedResponseError(
            f"the device answered {line[:11]!r} with a {len(code)}-digit code: "
            "not an error code of an nRF91 AT interface"
        )
    text = line if len(line) <= 80 else line[:80] + "…"
    return Final(ok=False, code=int(code) if code else None, text=text)


def cme_message(code: int) -> str:
    return CME_MESSAGES.get(code, f"error code {code}, not one of the credential store's")


@dataclass(frozen=True)
class Response:
    """The information lines of a response (empty lines dropped) and its final result code."""

    lines: tuple[str, ...]
    final: Final


def parse_response(raw: str) -> Response:
    """Split a complete response (as received, CR LF or LF) into lines and the final result."""
    lines: list[str] = []
    for line in raw.splitlines():
        final = final_result(line)
        if final is not None:
            return Response(tuple(lines), final)
        if line.strip():
            lines.append(line.rstrip("\r"))
    raise ValueError("response has no final result code")


class ModemError(ProblemsFoundError):
    """The modem answered a command with an error result code (exit 1)."""

    def __init__(self, command: AtCommand, final: Final):
        super().__init__(f"{command.summary}: the modem refused it: {final.describe()}")
        self.command = command
        self.final = final

    @property
    def code(self) -> int | None:
        return self.final.code


class UnexpectedResponseError(ProblemsFoundError):
    """The modem answered OK but not in the documented format."""


_CFUN_RE = re.compile(r"^\+CFUN:\s*(\d+)\s*$")


def parse_cfun(response: Response) -> int:
    """The functional mode from the answer to `AT+CFUN?` (`+CFUN: <fun>`)."""
    for line in response.lines:
        match = _CFUN_RE.match(line.strip())
        if match:
            return int(match.group(1))
    raise UnexpectedResponseError("the answer to AT+CFUN? has no '+CFUN: <mode>' line")


@dataclass(frozen=True)
class ListedCredential:
    """One line of `AT%CMNG=1`: `%CMNG: <sec_tag>,<type>[,"<sha>"]`."""

    sec_tag: int
    cred_type: int
    sha: str | None  # upper-case hex as the modem lists it, None when not listed


_CMNG_RE = re.compile(r'^%CMNG:\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*"([0-9A-Fa-f]{64})")?\s*$')


def parse_cmng_list(response: Response) -> list[ListedCredential]:
    """The credentials an `AT%CMNG=1` response lists; other lines (URCs) are ignored."""
    listed: list[ListedCredential] = []
    for line in response.lines:
        stripped = line.strip()
        if not stripped.startswith("%CMNG:"):
            continue
        match = _CMNG_RE.match(stripped)
        if match is None:
            raise UnexpectedResponseError(
                "a %CMNG line of the list is not '%CMNG: <sec_tag>,<type>,\"<sha>\"'"
            )
        sha = match.group(3)
        listed.append(
            ListedCredential(int(match.group(1)), int(match.group(2)), sha.upper() if sha else None)
        )
    return listed


@dataclass(frozen=True)
class ReadCredential:
    """The answer to `AT%CMNG=2,<sec_tag>,<type>`: the listed digest and the content as text
    (line ends as received, empty lines dropped by the transport: compare it decoded)."""

    sec_tag: int
    cred_type: int
    sha: str
    content: str = field(repr=False)


_CMNG_READ_RE = re.compile(
    r'^%CMNG:\s*(\d{1,10})\s*,\s*(\d{1,2})\s*,\s*"([0-9A-Fa-f]{64})"\s*,\s*"(.*)"\s*$', re.DOTALL
)


def parse_cmng_read(response: Response) -> ReadCredential:
    """The credential in a `%CMNG=2` response; its quoted content spans the response's lines."""
    text = "\n".join(response.lines).strip()
    start = text.find("%CMNG:")
    match = _CMNG_READ_RE.match(text[start:]) if start >= 0 else None
    if match is None:
        raise UnexpectedResponseError(
            'the answer to AT%CMNG=2 is not \'%CMNG: <sec_tag>,<type>,"<sha>","<content>"\''
        )
    return ReadCredential(
        int(match.group(1)), int(match.group(2)), match.group(3).upper(), match.group(4)
    )


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
_HARMLESS_RUN = re.compile(r"[0-9]+|[0-9A-Fa-f]{64}")
REDACTED = "<redacted: credential content>"


class TraceRedactor:
    """Makes received lines safe to show (`-v`): any line that may hold credential content is
    replaced, whatever an interface puts around it (`ECHO: AT%CMNG=0,…`, a shell prompt):

    - every line from one holding `-----BEGIN` through the one holding `-----END`;
    - everything after a double quote left open on a line, up to the line closing it (the
      content of a `%CMNG` write or read spans lines inside quotes);
    - any run of 16 or more base64/base64url characters that is not a 64-hex-digit SHA-256 or a
      number (digests, IMEIs, modes and codes stay readable).

    Stateful across the lines of one response; `reset()` before the next command."""

    def __init__(self) -> None:
        self._in_pem = False
        self._in_quote = False

    def reset(self) -> None:
        self._in_pem = False
        self._in_quote = False

    def line(self, text: str) -> str:
        if self._in_pem or self._in_quote:
            if "-----END" in text:
                self._in_pem = False
            if self._in_quote and text.count('"') % 2 == 1:
                self._in_quote = False
            return REDACTED
        if "-----BEGIN" in text or "-----END" in text:
            after = text.rsplit("-----BEGIN", 1)
            self._in_pem = len(after) == 2 and "-----END" not in after[1]
            self._in_quote = text.count('"') % 2 == 1
            return REDACTED
        if text.count('"') % 2 == 1:
            self._in_quote = True
            head = text[: text.rfind('"') + 1]
            return _redact_runs(head) + REDACTED
        return _redact_runs(text)


def _redact_runs(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        run = match.group(0)
        if _HARMLESS_RUN.fullmatch(run):
            return run
        return f"<redacted: {len(run)} chars>"

    return _BASE64_RUN.sub(replace, text)
