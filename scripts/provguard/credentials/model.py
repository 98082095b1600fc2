"""The credential set as users hand it over, and the problems a check reports about it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


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

    def __post_init__(self) -> None:
        if not isinstance(self.slot, Slot) or not isinstance(self.data, bytes):
            raise TypeError("CredentialFile takes a Slot and bytes")


@dataclass(frozen=True)
class CredentialSet:
    ca: CredentialFile | None
    cert: CredentialFile | None
    key: CredentialFile | None
    sec_tag: int | None = None  # from a JSON export's "secTag"

    def __post_init__(self) -> None:
        for slot, file in ((Slot.CA, self.ca), (Slot.CERT, self.cert), (Slot.KEY, self.key)):
            if file is not None and file.slot is not slot:
                raise ValueError(f"{file.name} is a {file.slot.label}, given as {slot.label}")

    def files(self) -> list[CredentialFile]:
        """The files given, in slot order (a new list each call)."""
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

    def __post_init__(self) -> None:
        if not isinstance(self.severity, Severity):
            raise TypeError("a problem's severity is a Severity")
        if not self.code or not self.message:
            raise ValueError("a problem needs a code and a message")
        if self.line is not None and self.line < 1:
            raise ValueError(f"line numbers start at 1, not {self.line}")

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
    """A check's verdict: immutable (tuples and read-only mappings), validated, hashable."""

    problems: tuple[Problem, ...]
    #: What gets stored in the modem or the header, per slot that loaded: ASCII PEM, LF line
    #: endings, nothing around the blocks, exactly one trailing newline. The SHA-256 of these
    #: bytes is what `AT%CMNG=1` lists after they are written.
    contents: Mapping[Slot, bytes] = field(repr=False)
    sec_tag: int
    #: One line per loaded credential for people: subject, key type, validity, fingerprint.
    summaries: Mapping[Slot, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = tuple(self.problems)
        if not all(isinstance(p, Problem) for p in problems):
            raise TypeError("CheckReport.problems holds Problems only")
        if not isinstance(self.sec_tag, int) or isinstance(self.sec_tag, bool):
            raise TypeError("CheckReport.sec_tag is an int")
        for name, mapping, kind in (
            ("contents", self.contents, bytes),
            ("summaries", self.summaries, str),
        ):
            if not all(isinstance(k, Slot) and isinstance(v, kind) for k, v in mapping.items()):
                raise TypeError(f"CheckReport.{name} maps Slots to {kind.__name__}")
        # Copies in slot order behind read-only views: the caller's dicts cannot change them.
        object.__setattr__(self, "problems", problems)
        for name in ("contents", "summaries"):
            mapping = getattr(self, name)
            ordered = {slot: mapping[slot] for slot in Slot if slot in mapping}
            object.__setattr__(self, name, MappingProxyType(ordered))

    def __hash__(self) -> int:
        return hash(
            (
                self.problems,
                tuple(self.contents.items()),
                self.sec_tag,
                tuple(self.summaries.items()),
            )
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckReport):
            return NotImplemented
        return (self.problems, dict(self.contents), self.sec_tag, dict(self.summaries)) == (
            other.problems,
            dict(other.contents),
            other.sec_tag,
            dict(other.summaries),
        )

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)
