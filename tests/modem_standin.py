"""A stand-in for an nRF91 running the AT host, on a pseudo-terminal, for provisioning tests.

It mirrors what a user's serial port would answer, as documented upstream:
- command framing of the NCS AT host (sdk-nrf `lib/at_host/at_host.c`): a command ends at CR LF
  outside double quotes, so quoted PEM content may span lines; no echo; the response is the
  modem's text followed by `OK`, `ERROR` or `+CME ERROR: <n>`;
- `AT+CMEE=<n>` / `AT+CMEE?`: until `AT+CMEE=1`, every error is a bare `ERROR`;
- `AT+CFUN=<n>` / `AT+CFUN?` (`+CFUN: <n>`);
- `AT+CGSN` (the IMEI);
- `AT%CMNG=<opcode>[,<sec_tag>[,<type>[,"<content>"[,"<passwd>"]]]]` (nRF91 AT command reference,
  %CMNG): 0 write, 1 list (`%CMNG: <sec_tag>,<type>,"<sha>"`, SHA-256 of the content as stored,
  64 upper-case hex), 2 read (`%CMNG: <sec_tag>,<type>,"<sha>","<content>"`, the content exactly
  as written; private keys cannot be read: 514), 3 delete; write and delete refused with 518 in
  CFUN 1, 2 and 21; 513 not found, 515 memory full, 519 already exists (firmware that does not
  overwrite), 527 invalid content.

Knobs let tests make it misbehave the way real devices do: ignore `AT+CFUN=4`, refuse to
overwrite, list a key digest that is not the content's, reject a type with a given code, stop
answering, or drop the port.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import select
import signal
import sys
import termios
import threading
import tty
from dataclasses import dataclass, field
from types import TracebackType

IMEI = "352656100000000"
MEMORY_SLOTS = 32


@dataclass(repr=False)  # the store holds keys: never let an assertion message show it
class ModemStandIn:
    """Start with `with ModemStandIn() as modem:` and open `modem.port` like a serial port."""

    cfun: int = 1
    cmee: int = 0
    #: (sec_tag, type) -> content bytes exactly as written
    store: dict[tuple[int, int], bytes] = field(default_factory=dict)
    #: every command received, in order; quoted content replaced by its SHA-256, so that an
    #: assertion on this list can never show a key
    received: list[str] = field(default_factory=list)
    ignore_offline: bool = False  # stays in CFUN=1 after AT+CFUN=4 (an app that fights back)
    refuse_overwrite: bool = False  # 519 on a write to an existing (sec_tag, type)
    opaque_key_digest: bool = False  # lists a key digest that is not the content's SHA-256
    reject: dict[int, int] = field(default_factory=dict)  # type -> CME code for writes
    silent_after: int | None = None  # stop answering after this many commands
    hang_up_after: int | None = None  # close the port after this many commands
    capacity: int = MEMORY_SLOTS
    termination: str = "crlf"  # CONFIG_AT_HOST_TERMINATION: "cr", "lf" or "crlf"
    echo: bool = False  # the AT shell's command mode (sdk-nrf lib/at_shell/at_cmd_mode.c) echoes

    def __repr__(self) -> str:
        return f"ModemStandIn(port={self.port!r}, cfun={self.cfun}, slots={sorted(self.store)})"

    def __post_init__(self) -> None:
        self._master = -1
        self._slave = -1
        self.port = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> ModemStandIn:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="modem-standin", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_master()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1

    def _close_master(self) -> None:
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    # -- the AT host --------------------------------------------------------------------------

    def _serve(self) -> None:
        buffer = bytearray()
        inside_quotes = False
        while not self._stop.is_set():
            if self._master < 0:
                return
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            for byte in data:
                # Framing as sdk-nrf lib/at_host/at_host.c: CR, LF or CR LF ends a command, but
                # only outside double quotes.
                if not inside_quotes and self._terminates(byte, buffer):
                    if self.termination == "crlf":
                        del buffer[-1]
                    line = buffer.decode("ascii", errors="replace")
                    buffer.clear()
                    if self.echo:
                        self._send("\n")
                    if line.strip():
                        self._command(line)
                    continue
                buffer.append(byte)
                if self.echo:
                    self._send(chr(byte))
                if byte == 0x22:
                    inside_quotes = not inside_quotes

    def _terminates(self, byte: int, buffer: bytearray) -> bool:
        if self.termination == "cr":
            return byte == 0x0D
        if self.termination == "lf":
            return byte == 0x0A
        return byte == 0x0A and buffer.endswith(b"\r")

    def _command(self, line: str) -> None:
        self.received.append(_redact(line))
        count = len(self.received)
        if self.hang_up_after is not None and count > self.hang_up_after:
            self._close_master()
            return
        if self.silent_after is not None and count > self.silent_after:
            return
        self._send(self.answer(line))

    def _send(self, text: str) -> None:
        if self._master >= 0:
            os.write(self._master, text.encode("ascii"))

    def answer(self, line: str) -> str:
        """The response text for one command line (as the AT host writes it back)."""
        try:
            info = self._dispatch(line.strip())
        except _CmeError as exc:
            return f"+CME ERROR: {exc.code}\r\n" if self.cmee else "ERROR\r\n"
        except _PlainError:
            return "ERROR\r\n"
        return "".join(f"{item}\r\n" for item in info) + "OK\r\n"

    def _dispatch(self, line: str) -> list[str]:
        upper = line.upper()
        if upper == "AT":
            return []
        if upper.startswith("AT+CMEE"):
            return self._cmee(line[7:])
        if upper.startswith("AT+CFUN"):
            return self._cfun(line[7:])
        if upper in ("AT+CGSN", "AT+CGSN=0"):
            return [IMEI]
        if upper == "AT+CGSN=1":
            return [f'+CGSN: "{IMEI}"']
        if upper.startswith("AT%CMNG="):
            return self._cmng(line[len("AT%CMNG=") :])
        raise _PlainError

    def _cmee(self, rest: str) -> list[str]:
        if rest == "?":
            return [f"+CMEE: {self.cmee}"]
        if rest in ("=0", "=1"):
            self.cmee = int(rest[1])
            return []
        raise _PlainError

    def _cfun(self, rest: str) -> list[str]:
        if rest == "?":
            return [f"+CFUN: {self.cfun}"]
        match = re.fullmatch(r"=(\d+)", rest)
        if match is None or int(match.group(1)) not in {0, 1, 2, 4, 20, 21, 30, 31, 40, 41, 44}:
            raise _PlainError
        mode = int(match.group(1))
        if not (self.ignore_offline and mode == 4):
            self.cfun = mode
        return []

    def _cmng(self, rest: str) -> list[str]:
        params = _split_params(rest)
        if not params or not params[0].isdigit():
            raise _PlainError
        opcode = int(params[0])
        numbers = [int(p) if p.isdigit() else None for p in params[1:3]]
        if None in numbers:
            raise _PlainError
        tag = numbers[0] if numbers else None
        cred_type = numbers[1] if len(numbers) > 1 else None
        if opcode == 1:
            return self._cmng_list(tag, cred_type)
        if tag is None or cred_type is None or not 0 <= cred_type <= 6:
            raise _PlainError
        if tag > 2147483647:
            raise _CmeError(514)
        if opcode == 0:
            return self._cmng_write(tag, cred_type, params[3] if len(params) > 3 else None)
        if opcode == 2:
            return self._cmng_read(tag, cred_type)
        if opcode == 3:
            self._refuse_when_online()
            if self.store.pop((tag, cred_type), None) is None:
                raise _CmeError(513)
            return []
        raise _PlainError

    def _refuse_when_online(self) -> None:
        if self.cfun in (1, 2, 21):
            raise _CmeError(518)

    def _cmng_write(self, tag: int, cred_type: int, quoted: str | None) -> list[str]:
        self._refuse_when_online()
        if quoted is None or len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
            raise _PlainError
        content = quoted[1:-1].encode("ascii")
        if cred_type in self.reject:
            raise _CmeError(self.reject[cred_type])
        if not content or (cred_type <= 2 and not content.startswith(b"-----BEGIN ")):
            raise _CmeError(527)
        key = (tag, cred_type)
        if key in self.store and self.refuse_overwrite:
            raise _CmeError(519)
        if key not in self.store and len(self.store) >= self.capacity:
            raise _CmeError(515)
        self.store[key] = content
        return []

    def digest(self, tag: int, cred_type: int) -> str:
        content = self.store[(tag, cred_type)]
        if cred_type == 2 and self.opaque_key_digest:
            content = b"stored in another form:" + content
        return hashlib.sha256(content).hexdigest().upper()

    def _cmng_list(self, tag: int | None, cred_type: int | None) -> list[str]:
        if cred_type is not None and tag is None:
            raise _PlainError
        return [
            f'%CMNG: {t},{c},"{self.digest(t, c)}"'
            for (t, c) in sorted(self.store)
            if (tag is None or t == tag) and (cred_type is None or c == cred_type)
        ]

    def _cmng_read(self, tag: int, cred_type: int) -> list[str]:
        if (tag, cred_type) not in self.store:
            raise _CmeError(513)
        if cred_type == 2:
            raise _CmeError(514)
        content = self.store[(tag, cred_type)].decode("ascii")
        return [f'%CMNG: {tag},{cred_type},"{self.digest(tag, cred_type)}","{content}"']

    def stored(self) -> dict[tuple[int, int], str]:
        """SHA-256 of each stored content: what tests compare, so that a failing assertion
        shows digests, never a key."""
        return {slot: sha256_hex(content) for slot, content in self.store.items()}

    def writes(self) -> list[str]:
        """The `AT%CMNG=0` commands received, content cut off (what tests count)."""
        return [c.split(',"', 1)[0] for c in self.received if c.upper().startswith("AT%CMNG=0")]


def assert_no_key_material(text: str, key_pem: bytes | str) -> None:
    """Fail if `text` shows any base64 line of `key_pem`, without the failure showing it."""
    pem = key_pem.decode("ascii") if isinstance(key_pem, bytes) else key_pem
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    leaked = sum(1 for line in body if line in text)
    if leaked:
        raise AssertionError(f"the output shows {leaked} line(s) of the private key")


def sha256_hex(content: bytes | str) -> str:
    data = content.encode("ascii") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest().upper()


def _redact(line: str) -> str:
    return re.sub(r'"([^"]{65,})"', lambda m: f'"<sha256 {sha256_hex(m.group(1))}>"', line)


def _split_params(text: str) -> list[str]:
    """Comma-separated parameters; commas inside double quotes do not split."""
    params: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            params.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    params.append("".join(current).strip())
    return params


class _CmeError(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class _PlainError(Exception):
    pass


def main() -> None:
    """`python -m tests.modem_standin [--cfun N] [--reject TYPE=CODE]`: serve on a pty until
    interrupted, printing its path (for demos and trying provguard without a board)."""
    parser = argparse.ArgumentParser(prog="python -m tests.modem_standin")
    parser.add_argument("--cfun", type=int, default=1, help="functional mode at start")
    parser.add_argument(
        "--reject",
        action="append",
        default=[],
        metavar="TYPE=CODE",
        help="refuse writes of this credential type with this +CME ERROR code",
    )
    args = parser.parse_args()
    reject = {int(t): int(c) for t, c in (item.split("=", 1) for item in args.reject)}
    with ModemStandIn(cfun=args.cfun, reject=reject) as modem:
        print(modem.port, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
