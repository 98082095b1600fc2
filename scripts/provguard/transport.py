"""Talking AT to a device: the small protocol provisioning needs, and its pyserial implementation.

`Transport.send` writes one command and returns the response up to its final result code; it
raises `ModemTimeoutError` when no final result arrives in time, `PortDisconnectedError` when the
port goes away, and `ResponseTooLargeError` when the device sends a line longer than
`MAX_LINE_LENGTH` or more than `MAX_RESPONSE_BYTES` without a final result (a flood never makes
it use more memory than that, and the timeout bounds the time). Any path works as a port: a USB
CDC device, a pseudo-terminal, a `socat` bridge.

With a trace (`-v`), every received line goes through `at.TraceRedactor`: lines that may hold
credential content are never shown, whatever an interface wraps around them.

Why pyserial and not nrfcredstore's `Comms`: `Comms` only opens ports it can enumerate (a
pseudo-terminal or a socat bridge is refused), it exits the process on a serial error, and its
command interface writes without waiting for or naming error codes. The AT exchange itself is
small, so provguard owns it and keeps its errors as one-line messages.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

import serial

from provguard import at
from provguard.at import AtCommand, Response, final_result
from provguard.errors import InputError, ProblemsFoundError

try:  # pyserial's POSIX backend lets termios.error out of a flush on a port that has gone
    from termios import error as _termios_error
except ImportError:  # pragma: no cover - Windows
    _termios_error = OSError  # type: ignore[misc,assignment]

_PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, _termios_error)

DEFAULT_BAUDRATE = 115200
DEFAULT_TIMEOUT = 10.0
#: No AT answer line is near this long: the AT host's buffer is 4 kB, a %KEYGEN line about 1 kB.
MAX_LINE_LENGTH = 16 * 1024
#: A whole answer (a %CMNG list of every stored credential, a read of a 4 kB certificate) is
#: far below this.
MAX_RESPONSE_BYTES = 256 * 1024
_READ_CHUNK = 4096


class TransportError(ProblemsFoundError):
    """The conversation with the device broke down (exit 1)."""


class ModemTimeoutError(TransportError):
    def __init__(self, command: AtCommand, timeout: float):
        super().__init__(
            f"{command.summary}: no final result code within {timeout:g} s "
            "(is an AT host listening on this port, at this baud rate?)"
        )


class ResponseTooLargeError(TransportError):
    def __init__(self, command: AtCommand, what: str):
        super().__init__(
            f"{command.summary}: the device sent {what}: not an AT response "
            "(is this the AT host's port, at this baud rate?)"
        )


class PortDisconnectedError(TransportError):
    def __init__(self, port: str, command: AtCommand):
        super().__init__(f"{port}: the port went away during {command.summary}")


class Transport(Protocol):
    """What provisioning needs from a device connection."""

    def send(self, command: AtCommand) -> Response: ...


class SerialTransport:
    """AT over a serial port with pyserial. Use as a context manager."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        timeout: float = DEFAULT_TIMEOUT,
        line_ending: str = at.LINE_ENDINGS[at.DEFAULT_LINE_ENDING],
        trace: Callable[[str], None] | None = None,
    ):
        self.port = port
        self.line_ending = line_ending.encode("ascii")
        self.baudrate = baudrate
        self.timeout = at.check_timeout(timeout)
        self._trace = trace
        self._redactor = at.TraceRedactor()
        self._serial: serial.Serial | None = None
        self._pending = b""

    def __enter__(self) -> SerialTransport:
        try:
            self._serial = serial.serial_for_url(
                self.port, baudrate=self.baudrate, timeout=0.1, write_timeout=self.timeout
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            errno = getattr(exc, "errno", None)
            reason = os.strerror(errno) if isinstance(errno, int) else str(exc)
            raise InputError(f"cannot open the serial port: {reason}", path=self.port) from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None

    def send(self, command: AtCommand) -> Response:
        port = self._serial
        if port is None:
            raise RuntimeError("SerialTransport used outside its with-block")
        self._note(f"> {command.summary}")
        try:
            # Output nobody asked for (boot log, URCs) must not be taken for this answer.
            port.reset_input_buffer()
            self._pending = b""
            port.write(command.text.encode("ascii") + self.line_ending)
            port.flush()
            return self._read_response(port, command)
        except serial.SerialTimeoutException:
            raise ModemTimeoutError(command, self.timeout) from None
        except _PORT_ERRORS:
            raise PortDisconnectedError(self.port, command) from None

    def _read_response(self, port: serial.Serial, command: AtCommand) -> Response:
        deadline = time.monotonic() + self.timeout
        lines: list[str] = []
        echo: bytes | None = command.text.encode("ascii")
        received = 0
        self._redactor.reset()
        while True:
            if echo is not None:
                # An AT interface with echo on (the AT shell's command mode) sends the command
                # back first, content and all: drop it rather than take it for the answer.
                echo, self._pending = _strip_echo(echo, self._pending)
            while echo is None and b"\n" in self._pending:
                raw, self._pending = self._pending.split(b"\n", 1)
                line = raw.rstrip(b"\r").decode("ascii", errors="replace")
                try:
                    final = final_result(line)
                except at.UnexpectedResponseError as exc:
                    raise at.UnexpectedResponseError(f"{command.summary}: {exc}") from None
                if final is not None:
                    self._note(f"< {final.text}")
                    return Response(tuple(lines), final)
                if not line.strip() or _part_of(line, command):
                    continue
                # Shown only through the redactor: an interface may echo the content sent
                # with a prefix, or a read may return a certificate.
                self._note(f"< {self._redactor.line(line)}")
                lines.append(line)
            if time.monotonic() >= deadline:
                raise ModemTimeoutError(command, self.timeout)
            if len(self._pending) > MAX_LINE_LENGTH:
                raise ResponseTooLargeError(
                    command, f"a line longer than {MAX_LINE_LENGTH} bytes without an end"
                )
            if received > MAX_RESPONSE_BYTES:
                raise ResponseTooLargeError(
                    command, f"more than {MAX_RESPONSE_BYTES} bytes without a final result code"
                )
            chunk = port.read(min(_READ_CHUNK, max(1, port.in_waiting)))
            received += len(chunk)
            self._pending += chunk

    def _note(self, text: str) -> None:
        if self._trace is not None:
            self._trace(text)


def _strip_echo(echo: bytes, pending: bytes) -> tuple[bytes | None, bytes]:
    """(what is still expected of the echo, or None when done or absent; pending input left)."""
    if not pending:
        return echo, pending
    if echo.startswith(pending):  # all received so far is echo; more may come
        return echo[len(pending) :] or None, b""
    if pending.startswith(echo):
        return None, pending[len(echo) :]
    return None, pending  # no echo: the input is the answer


def _part_of(line: str, command: AtCommand) -> bool:
    """A line of the content a write carried (an echo split differently): never an answer."""
    carries_content = command.text != command.summary
    return carries_content and line.strip() in command.text
