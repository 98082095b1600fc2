"""The credential set as users hand it over, and the problems a check reports about it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Slot(enum.Enum):
    """The three slots of one modem sec_tag that TLS client authentication uses."""

    CA = "ca"
    CERT = "cert"
    KEY = "key"

    @property
    def modem_type(self) -> int:
        """The `<type>` of `AT%CMNG` and `enum modem_key_mgmt_cred_type`."""
        return _MODEM_TYPES[self]

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def macro(self) -> str:
        """The string-literal macro that holds this slot in certificates.h."""
        return _MACROS[self]

    @property
    def option(self) -> str:
        return f"--{self.value}"


_MODEM_TYPES = {Slot.CA: 0, Slot.CERT: 1, Slot.KEY: 2}
_LABELS = {Slot.CA: "CA certificate", Slot.CERT: "client certificate", Slot.KEY: "private key"}
_MACROS = {Slot.CA: "CA_CERTIFICATE", Slot.CERT: "CLIENT_CERTIFICATE", Slot.KEY: "PRIVATE_KEY"}


@dataclass(frozen=True)
class CredentialFile:
    """One credential as read: raw bytes and the name users know it by."""

    slot: Slot
    name: str  # the path, or "bundle.json:caCert" for a member of a JSON export
    data: bytes = field(repr=False)  # never shown: it may be a private key


@dataclass(frozen=True)
class CredentialSet:
    ca: CredentialFile | None
    cert: CredentialFile | None
    key: CredentialFile | None
    sec_tag: int | None = None  # from a JSON export's "secTag"

    def files(self) -> list[CredentialFile]:
        return [f for f in (self.ca, self.cert, self.key) if f is not None]

    def get(self, slot: Slot) -> CredentialFile | None:
        return {Slot.CA: self.ca, Slot.CERT: self.cert, Slot.KEY: self.key}[slot]


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Problem:
    severity: Severity
    code: str  # stable, documented in the README: scripts may match on it
    file: str | None
    line: int | None
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        return f"{where}{self.severity.value}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class CheckReport:
    problems: tuple[Problem, ...]
    #: What gets stored in the modem or the header, per slot that loaded: ASCII PEM, LF line
    #: endings, nothing around the blocks, exactly one trailing newline. The SHA-256 of these
    #: bytes is what `AT%CMNG=1` lists after they are written.
    contents: dict[Slot, bytes] = field(repr=False)
    sec_tag: int
    #: One line per loaded credential for people: subject, key type, validity, fingerprint.
    summaries: dict[Slot, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)
