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
        return tuple(s for s in self.slots if s.action.writes)


def make_plan(
    contents: Mapping[Slot, bytes],
    names: Mapping[Slot, str],
    listed: Sequence[at.ListedCredential],
    sec_tag: int,
    *,
    key_policy: KeyPolicy = KeyPolicy.COMPARE,
) -> Plan:
    """Decide per slot whether to write, from what the modem lists at `sec_tag`."""
    held = {item.cred_type: item for item in listed if item.sec_tag == sec_tag}
    order = (Slot.CA, Slot.CERT, Slot.KEY)
    slots: list[SlotPlan] = []
    for slot in order:
        if slot not in contents:
            continue
        content = contents[slot]
        expected = at.content_digest(content)
        item = held.get(slot.modem_type)
        listed_sha = item.sha if item else None
        if item is None:
            action = Action.ADD
        elif listed_sha == expected:
            action = Action.UNCHANGED
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

    @property
    def ok(self) -> bool:
        return self.error is None and self.restore_error is None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)


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
    modem refusal, a timeout or a lost port: the report says what was written and what was not."""
    session = _Session(transport, progress)
    # Build every write command first: content the AT host cannot take is refused before the
    # device is touched at all.
    commands = {
        slot: at.cmng_write(sec_tag, slot.modem_type, content, what=(names or {}).get(slot, ""))
        for slot, content in contents.items()
    }
    try:
        _enable_error_codes(session)
        initial_mode = at.parse_cfun(session.ok(at.CFUN_READ))
        listed = at.parse_cmng_list(session.ok(at.cmng_list(sec_tag)))
    except (ProblemsFoundError, TransportError) as exc:
        return ProvisionReport(sec_tag, dry_run, None, False, False, None, (), error=str(exc))

    plan = make_plan(contents, names or {}, listed, sec_tag, key_policy=key_policy)
    if dry_run or not plan.writes:
        results = tuple(SlotResult(s, _idle_outcome(s.action)) for s in plan.slots)
        return ProvisionReport(sec_tag, dry_run, initial_mode, False, False, plan, results)
    return _write(session, plan, commands, initial_mode, key_policy)


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


def _write(
    session: _Session,
    plan: Plan,
    commands: Mapping[Slot, at.AtCommand],
    initial_mode: int,
    key_policy: KeyPolicy,
) -> ProvisionReport:
    outcomes: dict[Slot, SlotResult] = {
        s.slot: SlotResult(s, Outcome.NOT_WRITTEN if s.action.writes else _idle_outcome(s.action))
        for s in plan.slots
    }
    went_offline = False
    error: str | None = None
    restore_error: str | None = None
    current: SlotPlan | None = None
    written: list[SlotPlan] = []
    try:
        if initial_mode not in at.WRITE_ALLOWED_MODES:
            session.say(f"taking the modem offline (AT+CFUN={at.OFFLINE_MODE}, was {initial_mode})")
            went_offline = True  # set before sending: restore even if the answer is lost
            session.ok(at.cfun_set(at.OFFLINE_MODE))
        for slot_plan in plan.writes:
            current = slot_plan
            try:
                _write_one(session, plan.sec_tag, slot_plan, commands[slot_plan.slot])
            except at.ModemError as exc:
                # The modem still answers: stop writing, but verify what was written.
                error = str(exc)
                outcomes[slot_plan.slot] = SlotResult(slot_plan, Outcome.FAILED, error)
                break
            written.append(slot_plan)
            outcomes[slot_plan.slot] = SlotResult(slot_plan, Outcome.WRITTEN, "not verified")
        current = None
        if written:
            session.say(f"verifying (AT%CMNG=1,{plan.sec_tag})")
            listed = at.parse_cmng_list(session.ok(at.cmng_list(plan.sec_tag)))
            for slot_plan in written:
                outcomes[slot_plan.slot] = _verify(slot_plan, listed, plan.sec_tag, key_policy)
    except (ProblemsFoundError, TransportError) as exc:
        error = error or str(exc)
        if current is not None:
            outcomes[current.slot] = SlotResult(current, Outcome.FAILED, str(exc))
    finally:
        if went_offline:
            try:
                session.say(f"restoring the functional mode (AT+CFUN={initial_mode})")
                session.ok(at.cfun_set(initial_mode))
            except (ProblemsFoundError, TransportError) as exc:
                restore_error = (
                    f"the modem may be left offline: restoring AT+CFUN={initial_mode} failed: {exc}"
                )
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
    )


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
