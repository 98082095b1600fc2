"""Compare-before-write provisioning of the modem's credential store over AT.

The flow, against any `Transport` (a serial port in use, a scripted fake in tests):

1. `AT+CMEE=1` so that refusals carry a `+CME ERROR` code that can be named;
2. `AT+CFUN?` to learn the functional mode the device is in;
3. `AT%CMNG=1,<sec_tag>` to list what the modem holds (listing is allowed online), and a plan:
   each slot whose listed SHA-256 equals the SHA-256 of the content to write is left alone;
4. only if something must be written: `AT+CFUN=4` (unless already offline or powered off), one
   `AT%CMNG=0` per differing slot, `AT%CMNG=1,<sec_tag>` again to verify each write, and
   `AT+CFUN=<the mode found>` to restore it, also when a step failed.

So a second identical run sends no write and does not even take the device off the network. Flash
(NVM) writes are what wears a modem out; reads are free.

Credentials written by other tools (Cellular Monitor, nrfcredstore, Nordic's installer) are often
the same credential in another PEM form: CRLF line ends, 76-column lines, trailing spaces, no final
newline. Their listed SHA-256 differs, so a certificate slot whose digest differs is read back
(`AT%CMNG=2`, allowed online) and compared as decoded certificates (DER): the same certificates
are left alone. A private key cannot be read back; its listed digest is compared with the digests
of the same key in the forms other tools write (`key_digests`: PKCS#8 and the traditional
SEC1/PKCS#1 form, 64- or 76-column lines, LF or CRLF, with or without the final newline, and the
file as given with CRLF or without its final newline). A key stored in any other form counts as
different and is written again (the compare policy) or kept (if-missing).

The private key is written before the client certificate. A new certificate therefore reaches the
modem only after the modem acknowledged its key, so no refusal, timeout, lost port or Ctrl-C can
leave the new certificate beside the old key; a run that stops between the two leaves the new
key beside the old certificate, whose digest differs, so the re-run writes the certificate (and,
under if-missing, the key again). Certificate and key that another tool left mismatched at the
tag cannot be detected by anyone: the key cannot be read.

Private keys: the AT reference lists a SHA-256 for every stored entity, keys included, and that is
what the default policy (`compare`) relies on. Should a modem firmware list a digest of the key in
another form, verification says so and `if-missing` is the safe fallback: the key is written when
the modem has none at this sec_tag or when the client certificate is being (re)written in the same
run (a new certificate comes with its key; `check` verified that the two match), and otherwise kept.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provguard import at
from provguard.credentials import Slot
from provguard.errors import ProblemsFoundError
from provguard.transport import Transport, TransportError


class KeyPolicy(enum.Enum):
    COMPARE = "compare"  # compare the listed digest like any other slot
    IF_MISSING = "if-missing"  # write when absent or when the client certificate changes


class Action(enum.Enum):
    UNCHANGED = "unchanged"
    ADD = "add"
    REPLACE = "replace"
    KEEP_UNCOMPARED = "kept"  # a key present at the tag, left alone by the if-missing policy

    @property
    def writes(self) -> bool:
        return self in (Action.ADD, Action.REPLACE)


@dataclass(frozen=True)
class SlotPlan:
    slot: Slot
    name: str  # the file the content comes from, as users named it
    content: bytes = field(repr=False)  # may be a private key: never shown
    expected_sha: str
    listed_sha: str | None  # None: nothing at this tag and type, or listed without a digest
    present: bool
    action: Action
    note: str = ""  # why a slot whose digest differs is left alone

    @property
    def label(self) -> str:
        return self.slot.label


@dataclass(frozen=True)
class Plan:
    sec_tag: int
    slots: tuple[SlotPlan, ...]
    others: tuple[at.ListedCredential, ...]  # other types held at this sec_tag, left alone

    @property
    def writes(self) -> tuple[SlotPlan, ...]:
        """The slots to write, in the order they are written: the key before the client
        certificate (see the module docstring)."""
        return tuple(
            s for slot in WRITE_ORDER for s in self.slots if s.slot is slot and s.action.writes
        )


#: CA first, then the key, then the certificate that needs the key.
WRITE_ORDER = (Slot.CA, Slot.KEY, Slot.CERT)


def make_plan(
    contents: Mapping[Slot, bytes],
    names: Mapping[Slot, str],
    listed: Sequence[at.ListedCredential],
    sec_tag: int,
    *,
    key_policy: KeyPolicy = KeyPolicy.COMPARE,
    equivalent: Mapping[Slot, str] | None = None,
) -> Plan:
    """Decide per slot whether to write, from what the modem lists at `sec_tag`. `equivalent`
    names the slots whose differing content was shown (read back) to be the same credential."""
    held = {item.cred_type: item for item in listed if item.sec_tag == sec_tag}
    same = equivalent or {}
    order = (Slot.CA, Slot.CERT, Slot.KEY)
    slots: list[SlotPlan] = []
    for slot in order:
        if slot not in contents:
            continue
        content = contents[slot]
        expected = at.content_digest(content)
        item = held.get(slot.modem_type)
        listed_sha = item.sha if item else None
        note = ""
        if item is None:
            action = Action.ADD
        elif listed_sha == expected:
            action = Action.UNCHANGED
        elif slot in same:
            action, note = Action.UNCHANGED, same[slot]
        elif slot is Slot.KEY and listed_sha is not None and listed_sha in key_digests(content):
            action, note = Action.UNCHANGED, "the same key, stored in another PEM form"
        else:
            action = Action.REPLACE
        slots.append(
            SlotPlan(
                slot,
                names.get(slot, slot.label),
                content,
                expected,
                listed_sha,
                item is not None,
                action,
                note,
            )
        )
    slots = [_apply_key_policy(s, slots, key_policy) for s in slots]
    mine = {slot.modem_type for slot in contents}
    others = tuple(item for t, item in sorted(held.items()) if t not in mine)
    return Plan(sec_tag, tuple(slots), others)


def _apply_key_policy(plan: SlotPlan, slots: list[SlotPlan], policy: KeyPolicy) -> SlotPlan:
    if plan.slot is not Slot.KEY or not plan.present or plan.action is Action.UNCHANGED:
        return plan
    if policy is KeyPolicy.IF_MISSING:
        cert_written = any(s.slot is Slot.CERT and s.action.writes for s in slots)
        action = Action.REPLACE if cert_written else Action.KEEP_UNCOMPARED
        return replace(plan, action=action)
    return plan


def _pem_forms(pem: bytes) -> set[bytes]:
    """`pem` as other tools write it: LF or CRLF, with or without the final newline."""
    lf = pem.replace(b"\r\n", b"\n").rstrip(b"\n") + b"\n"
    forms = set()
    for text in (lf, lf.replace(b"\n", b"\r\n")):
        forms.add(text)
        forms.add(text.rstrip(b"\r\n"))
    return forms


def _rewrap(pem: bytes, width: int) -> bytes:
    """The same PEM block with its base64 body on lines of `width` characters."""
    lines = pem.replace(b"\r\n", b"\n").strip().split(b"\n")
    if len(lines) < 3 or any(b":" in line for line in lines[1:-1]):
        return pem  # headers (encrypted PEM): left as they are
    body = b"".join(line.strip() for line in lines[1:-1])
    wrapped = [body[i : i + width] for i in range(0, len(body), width)]
    return b"\n".join([lines[0], *wrapped, lines[-1]]) + b"\n"


def key_digests(content: bytes) -> frozenset[str]:
    """The `%CMNG=1` digests of the private key in `content` as other tools may have written it
    (the forms are listed in the module docstring), including `content` itself."""
    bases = {content}
    try:
        key = serialization.load_pem_private_key(content, password=None)
    except (ValueError, TypeError):
        key = None
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        for private_format in (
            serialization.PrivateFormat.PKCS8,
            serialization.PrivateFormat.TraditionalOpenSSL,
        ):
            bases.add(
                key.private_bytes(
                    serialization.Encoding.PEM, private_format, serialization.NoEncryption()
                )
            )
    forms: set[bytes] = set()
    for base in bases:
        for width in (64, 76):
            forms |= _pem_forms(_rewrap(base, width))
        forms |= _pem_forms(base)
    return frozenset(at.content_digest(form) for form in forms)


def same_certificates(ours: bytes, theirs: str) -> bool:
    """True when `theirs` (content read back from the modem, any PEM form) holds exactly the
    certificates of `ours`, in the same order, compared as DER."""
    try:
        mine = x509.load_pem_x509_certificates(ours)
        held = x509.load_pem_x509_certificates(theirs.encode("ascii", errors="replace"))
    except ValueError:
        return False
    return [c.public_bytes(serialization.Encoding.DER) for c in mine] == [
        c.public_bytes(serialization.Encoding.DER) for c in held
    ]


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"
    KEPT = "kept"  # key left alone by policy
    WOULD_WRITE = "would write"  # dry run
    WRITTEN = "written"
    FAILED = "FAILED"  # the modem refused the write, or the conversation broke during it
    MISMATCH = "MISMATCH"  # written, but the modem lists another digest (or none) afterwards
    NOT_WRITTEN = "not written"  # not attempted because an earlier step failed


@dataclass(frozen=True)
class SlotResult:
    plan: SlotPlan
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class ProvisionReport:
    sec_tag: int
    dry_run: bool
    initial_mode: int | None
    went_offline: bool
    restored: bool
    plan: Plan | None
    results: tuple[SlotResult, ...]
    error: str | None = None  # why the run stopped
    restore_error: str | None = None  # the mode could not be restored
    interrupted: bool = False  # stopped by Ctrl-C (KeyboardInterrupt)
    offline_confirmed: bool = False  # the modem acknowledged AT+CFUN=4

    @property
    def ok(self) -> bool:
        return self.error is None and self.restore_error is None and not self.interrupted

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def left_in(self) -> str:
        """The functional mode the modem was left in, as far as the run knows."""
        if not self.went_offline:
            return "" if self.initial_mode is None else f"CFUN={self.initial_mode}, unchanged"
        if self.restored:
            return f"CFUN={self.initial_mode}, restored"
        if self.offline_confirmed:
            return f"CFUN={at.OFFLINE_MODE} (offline): restoring CFUN={self.initial_mode} failed"
        return f"unknown (AT+CFUN={at.OFFLINE_MODE} got no answer; it was CFUN={self.initial_mode})"


Progress = Callable[[str], None]


class _Session:
    def __init__(self, transport: Transport, progress: Progress | None):
        self.transport = transport
        self.progress = progress

    def ok(self, command: at.AtCommand) -> at.Response:
        response = self.transport.send(command)
        if not response.final.ok:
            raise at.ModemError(command, response.final)
        return response

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)


_STOPPED = (ProblemsFoundError, TransportError)


def provision(
    transport: Transport,
    contents: Mapping[Slot, bytes],
    sec_tag: int,
    *,
    names: Mapping[Slot, str] | None = None,
    key_policy: KeyPolicy = KeyPolicy.COMPARE,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ProvisionReport:
    """Bring the modem's `sec_tag` to `contents`, writing only what differs. Never raises for a
    modem refusal, a timeout, a lost port or Ctrl-C: the report says what was written and what
    was not, and in which functional mode the modem was left."""
    session = _Session(transport, progress)
    # Build every write command first: content the AT host cannot take is refused before the
    # device is touched at all.
    commands = {
        slot: at.cmng_write(sec_tag, slot.modem_type, content, what=(names or {}).get(slot, ""))
        for slot, content in contents.items()
    }
    initial_mode: int | None = None
    try:
        _enable_error_codes(session)
        initial_mode = at.parse_cfun(session.ok(at.CFUN_READ))
        listed = at.parse_cmng_list(session.ok(at.cmng_list(sec_tag)))
        equivalent = _read_back_certificates(session, contents, listed, sec_tag)
    except _STOPPED as exc:
        return ProvisionReport(sec_tag, dry_run, initial_mode, False, False, None, (), str(exc))
    except KeyboardInterrupt:
        return ProvisionReport(
            sec_tag, dry_run, initial_mode, False, False, None, (), "interrupted", interrupted=True
        )

    plan = make_plan(
        contents, names or {}, listed, sec_tag, key_policy=key_policy, equivalent=equivalent
    )
    if dry_run or not plan.writes:
        results = tuple(SlotResult(s, _idle_outcome(s.action), s.note) for s in plan.slots)
        return ProvisionReport(sec_tag, dry_run, initial_mode, False, False, plan, results)
    return _write(session, plan, commands, initial_mode, key_policy)


def _read_back_certificates(
    session: _Session,
    contents: Mapping[Slot, bytes],
    listed: Sequence[at.ListedCredential],
    sec_tag: int,
) -> dict[Slot, str]:
    """Certificate slots whose listed digest differs but which hold the same certificates in
    another PEM form (read back with AT%CMNG=2 and compared as DER)."""
    held = {item.cred_type: item for item in listed if item.sec_tag == sec_tag}
    same: dict[Slot, str] = {}
    for slot in (Slot.CA, Slot.CERT):
        item = held.get(slot.modem_type)
        if slot not in contents or item is None:
            continue
        if item.sha == at.content_digest(contents[slot]):
            continue
        session.say(f"reading back the {slot.label} (AT%CMNG=2,{sec_tag},{slot.modem_type})")
        try:
            read = at.parse_cmng_read(session.ok(at.cmng_read(sec_tag, slot.modem_type)))
        except (at.ModemError, at.UnexpectedResponseError):
            continue  # cannot tell: it is written
        if same_certificates(contents[slot], read.content):
            same[slot] = "the same certificate, stored in another PEM form"
    return same


def _enable_error_codes(session: _Session) -> None:
    try:
        session.ok(at.CMEE_ON)
    except at.ModemError as exc:
        raise at.UnexpectedResponseError(
            f"{exc.command.summary}: the device answered {exc.final.text}: "
            "this does not look like an nRF91 AT interface (AT host or serial LTE modem)"
        ) from None


def _idle_outcome(action: Action) -> Outcome:
    """The outcome of a slot nothing is written to (or of any slot in a dry run)."""
    if action is Action.UNCHANGED:
        return Outcome.UNCHANGED
    if action is Action.KEEP_UNCOMPARED:
        return Outcome.KEPT
    return Outcome.WOULD_WRITE


_IN_FLIGHT = (
    "it may or may not have reached the modem; run provision again: it compares and writes "
    "only what is missing"
)


def _write(
    session: _Session,
    plan: Plan,
    commands: Mapping[Slot, at.AtCommand],
    initial_mode: int,
    key_policy: KeyPolicy,
) -> ProvisionReport:
    outcomes: dict[Slot, SlotResult] = {
        s.slot: SlotResult(
            s, Outcome.NOT_WRITTEN if s.action.writes else _idle_outcome(s.action), s.note
        )
        for s in plan.slots
    }
    went_offline = False
    offline_confirmed = False
    interrupted = False
    error: str | None = None
    restore_error: str | None = None
    current: SlotPlan | None = None
    written: list[SlotPlan] = []
    try:
        if initial_mode not in at.WRITE_ALLOWED_MODES:
            session.say(f"taking the modem offline (AT+CFUN={at.OFFLINE_MODE}, was {initial_mode})")
            went_offline = True  # set before sending: restore even if the answer is lost
            session.ok(at.cfun_set(at.OFFLINE_MODE))
            offline_confirmed = True
        for slot_plan in plan.writes:
            current = slot_plan
            try:
                _write_one(session, plan.sec_tag, slot_plan, commands[slot_plan.slot])
            except at.ModemError as exc:
                # The modem still answers: stop writing, but verify what was written.
                error = str(exc)
                outcomes[slot_plan.slot] = SlotResult(slot_plan, Outcome.FAILED, error)
                current = None
                break
            written.append(slot_plan)
            outcomes[slot_plan.slot] = SlotResult(slot_plan, Outcome.WRITTEN, "not verified")
        current = None
        if written:
            session.say(f"verifying (AT%CMNG=1,{plan.sec_tag})")
            listed = at.parse_cmng_list(session.ok(at.cmng_list(plan.sec_tag)))
            for slot_plan in written:
                outcomes[slot_plan.slot] = _verify(slot_plan, listed, plan.sec_tag, key_policy)
    except _STOPPED as exc:
        error = error or str(exc)
        if current is not None:
            outcomes[current.slot] = SlotResult(current, Outcome.FAILED, f"{exc}: {_IN_FLIGHT}")
    except KeyboardInterrupt:
        interrupted = True
        error = error or "interrupted"
        if current is not None:
            detail = f"interrupted while this write was in flight: {_IN_FLIGHT}"
            outcomes[current.slot] = SlotResult(current, Outcome.FAILED, detail)
    finally:
        if went_offline:
            restore_error = _restore(session, initial_mode, offline_confirmed)
    results = tuple(outcomes[s.slot] for s in plan.slots)
    if error is None and any(r.outcome is Outcome.MISMATCH for r in results):
        error = "verification failed"
    restored = went_offline and restore_error is None
    return ProvisionReport(
        plan.sec_tag,
        False,
        initial_mode,
        went_offline,
        restored,
        plan,
        results,
        error,
        restore_error,
        interrupted,
        offline_confirmed,
    )


def _restore(session: _Session, initial_mode: int, offline_confirmed: bool) -> str | None:
    """Put the modem back in `initial_mode`; the reason it could not be, or None."""
    left = (
        f"the modem was left offline (CFUN={at.OFFLINE_MODE})"
        if offline_confirmed
        else "the modem may be left offline"
    )
    try:
        session.say(f"restoring the functional mode (AT+CFUN={initial_mode})")
        session.ok(at.cfun_set(initial_mode))
    except _STOPPED as exc:
        return f"{left}: restoring AT+CFUN={initial_mode} failed: {exc}"
    except KeyboardInterrupt:
        return f"{left}: interrupted again while restoring AT+CFUN={initial_mode}"
    return None


def _write_one(session: _Session, sec_tag: int, slot_plan: SlotPlan, command: at.AtCommand) -> None:
    session.say(f"writing the {slot_plan.label} ({slot_plan.name})")
    try:
        session.ok(command)
    except at.ModemError as exc:
        if exc.code != 519:
            raise
        # Firmware that refuses to overwrite: delete, then write. The window without the
        # credential is as short as two commands.
        session.say(f"the modem refuses to overwrite; deleting the old {slot_plan.label} first")
        session.ok(at.cmng_delete(sec_tag, slot_plan.slot.modem_type))
        session.ok(command)


def _verify(
    slot_plan: SlotPlan, listed: Sequence[at.ListedCredential], sec_tag: int, policy: KeyPolicy
) -> SlotResult:
    item = next(
        (i for i in listed if i.sec_tag == sec_tag and i.cred_type == slot_plan.slot.modem_type),
        None,
    )
    if item is None:
        return SlotResult(
            slot_plan, Outcome.MISMATCH, "the modem accepted the write but does not list it"
        )
    if item.sha == slot_plan.expected_sha:
        return SlotResult(slot_plan, Outcome.WRITTEN, "verified")
    if slot_plan.slot is Slot.KEY and policy is KeyPolicy.IF_MISSING:
        return SlotResult(
            slot_plan, Outcome.WRITTEN, "listed; its digest is not comparable on this modem"
        )
    detail = (
        f"written, but the modem lists SHA-256 {item.sha or '(none)'} "
        f"instead of {slot_plan.expected_sha}"
    )
    if slot_plan.slot is Slot.KEY:
        detail += (
            "; if this modem firmware lists private-key digests in another form, "
            "use --key-policy if-missing"
        )
    return SlotResult(slot_plan, Outcome.MISMATCH, detail)
