"""Rules of `provision` that mutation testing found untested: what is sent and in which order,
what every report field says after a stop, a Ctrl-C or a failed verification, the progress lines,
and which stored forms count as the same credential.

The modem is the simulator (`provguard.modemsim.ModemSim`) answering in-process; expected
commands and digests are derived here (SHA-256 of the bytes the test wrote, the simulator's record
of what it received), never from provision's own tables.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization

from provguard import at
from provguard.credentials import Slot
from provguard.errors import InputError
from provguard.modemsim import ModemSim, ModemState
from provguard.provision import (
    KeyPolicy,
    Outcome,
    ProvisionReport,
    key_digests,
    make_plan,
    provision,
    same_certificates,
)
from provguard.transport import ModemTimeoutError
from tests import factories

TAG = 24

Hook = Callable[[at.AtCommand, str], str]


class SimTransport:
    """`Transport` over `ModemSim.answer`; `hook(command, answer)` may rewrite an answer or raise
    (KeyboardInterrupt, a transport error) after the modem received the command."""

    def __init__(self, sim: ModemSim, hook: Hook | None = None):
        self.sim = sim
        self.hook = hook

    def send(self, command: at.AtCommand) -> at.Response:
        text = self.sim.answer(command.text)
        if self.hook is not None:
            text = self.hook(command, text)
        return at.parse_response(text)


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest().upper()


@pytest.fixture(scope="module")
def creds() -> dict[Slot, bytes]:
    pki = factories.device_pki()
    return {
        Slot.CA: factories.cert_pem(pki.ca_cert),
        Slot.CERT: factories.cert_pem(pki.device_cert),
        Slot.KEY: factories.key_pem(pki.device_key),
    }


def _sim(store: dict[Slot, bytes] | None = None, **options: object) -> ModemSim:
    state = ModemState.create()
    for slot, content in (store or {}).items():
        state.store[(TAG, slot.modem_type)] = content
    return ModemSim(state, cmee=0, **options)  # type: ignore[arg-type]


def _on(prefix: str, action: Callable[[str], str]) -> Hook:
    def hook(command: at.AtCommand, text: str) -> str:
        return action(text) if command.text.startswith(prefix) else text

    return hook


def _interrupt(_: str) -> str:
    raise KeyboardInterrupt


def test_first_write_sends_exactly_this_sequence_and_restores_the_mode(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(cfun=1)
    messages: list[object] = []
    report = provision(SimTransport(sim), creds, TAG, progress=messages.append)
    # Order: error codes on, mode, list; offline; CA, key, then the certificate; verify; restore.
    assert [c.split(',"')[0] for c in sim.received] == [
        "AT+CMEE=1",
        "AT+CFUN?",
        f"AT%CMNG=1,{TAG}",
        "AT+CFUN=4",
        f"AT%CMNG=0,{TAG},0",
        f"AT%CMNG=0,{TAG},2",
        f"AT%CMNG=0,{TAG},1",
        f"AT%CMNG=1,{TAG}",
        "AT+CFUN=1",
    ]
    assert sim.cfun == 1
    assert {k: _sha(v) for k, v in sim.store.items()} == {
        (TAG, 0): _sha(creds[Slot.CA]),
        (TAG, 1): _sha(creds[Slot.CERT]),
        (TAG, 2): _sha(creds[Slot.KEY]),
    }
    assert report.ok
    assert (report.sec_tag, report.dry_run, report.initial_mode) == (TAG, False, 1)
    assert (report.went_offline, report.offline_confirmed, report.restored) == (True, True, True)
    assert report.plan is not None
    assert report.plan.sec_tag == TAG
    assert [(r.outcome, r.detail) for r in report.results] == [(Outcome.WRITTEN, "verified")] * 3
    assert report.left_in == "CFUN=1, restored"
    # Progress: one line per step, each a sentence naming what it does, in the order done.
    assert all(isinstance(m, str) and m for m in messages)
    text = "\n".join(str(m) for m in messages)
    for step in (
        "AT+CFUN=4",
        "writing the CA",
        "writing the private key",
        "writing the client",
        f"AT%CMNG=1,{TAG}",
        "AT+CFUN=1",
    ):
        assert step in text, step
    assert text.index("writing the private key") < text.index("writing the client")


def test_a_modem_already_offline_is_neither_switched_nor_reported_restored(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(cfun=4)
    report = provision(SimTransport(sim), creds, TAG)
    assert not any(c.startswith("AT+CFUN=") for c in sim.received)
    assert report.ok
    assert report.went_offline is False
    assert report.restored is False
    assert report.offline_confirmed is False
    assert report.left_in == "CFUN=4, unchanged"


def test_ctrl_c_while_listing_reports_an_untouched_modem(creds: dict[Slot, bytes]) -> None:
    sim = _sim(cfun=1)
    report = provision(SimTransport(sim, _on("AT%CMNG=1", _interrupt)), creds, TAG, dry_run=True)
    assert report == ProvisionReport(
        TAG, True, 1, False, False, None, (), "interrupted", interrupted=True
    )
    assert not report.ok
    assert report.left_in == "CFUN=1, unchanged"
    assert sim.cfun == 1
    assert sim.store == {}


def test_a_timeout_while_listing_stops_before_any_write(creds: dict[Slot, bytes]) -> None:
    def timeout(_: str) -> str:
        raise ModemTimeoutError(at.cmng_list(TAG), 0.1)

    sim = _sim(cfun=1)
    report = provision(SimTransport(sim, _on("AT%CMNG=1", timeout)), creds, TAG, dry_run=True)
    assert report.error is not None
    assert f"AT%CMNG=1,{TAG}" in report.error
    assert report == ProvisionReport(TAG, True, 1, False, False, None, (), report.error)
    assert sim.store == {}


def test_dry_run_and_nothing_to_write_report_the_plan_and_no_mode_change(
    creds: dict[Slot, bytes],
) -> None:
    for store, dry_run, outcome in (
        (creds, False, Outcome.UNCHANGED),
        ({}, True, Outcome.WOULD_WRITE),
    ):
        sim = _sim(dict(store), cfun=1)
        report = provision(SimTransport(sim), creds, TAG, dry_run=dry_run)
        assert (report.sec_tag, report.dry_run, report.initial_mode) == (TAG, dry_run, 1)
        assert report.went_offline is False
        assert report.restored is False
        assert report.plan is not None
        assert len(report.plan.slots) == 3
        assert [(r.outcome, r.detail) for r in report.results] == [(outcome, "")] * 3
        assert not any(c.startswith(("AT+CFUN=", "AT%CMNG=0")) for c in sim.received)


def test_ctrl_c_during_the_key_write_names_that_write_and_restores_the_mode(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(cfun=1)
    report = provision(SimTransport(sim, _on(f"AT%CMNG=0,{TAG},2", _interrupt)), creds, TAG)
    assert report.interrupted
    assert report.error == "interrupted"
    by_slot = {r.plan.slot: r for r in report.results}
    assert (by_slot[Slot.CA].outcome, by_slot[Slot.CA].detail) == (Outcome.WRITTEN, "not verified")
    assert by_slot[Slot.KEY].outcome is Outcome.FAILED
    assert by_slot[Slot.KEY].plan.slot is Slot.KEY
    assert "interrupted while this write was in flight" in by_slot[Slot.KEY].detail
    assert "run provision again" in by_slot[Slot.KEY].detail
    assert by_slot[Slot.CERT].outcome is Outcome.NOT_WRITTEN
    assert (TAG, 1) not in sim.store  # the certificate never went out without its key
    assert sim.cfun == 1
    assert report.restored
    assert report.left_in == "CFUN=1, restored"


def test_ctrl_c_after_a_refused_write_keeps_the_refusal_as_the_error(
    creds: dict[Slot, bytes],
) -> None:
    # The key is refused after the CA was written; Ctrl-C comes while the CA is verified.
    sim = _sim(cfun=1, reject={2: 527})
    report = provision(SimTransport(sim, _on(f"AT%CMNG=1,{TAG}", _fail_on_second())), creds, TAG)
    assert report.interrupted
    assert report.error is not None
    assert "refused" in report.error
    assert "527" in report.error
    assert [r.outcome for r in report.results] == [
        Outcome.WRITTEN,
        Outcome.NOT_WRITTEN,
        Outcome.FAILED,
    ]
    assert sim.cfun == 1


def _fail_on_second() -> Callable[[str], str]:
    calls = []

    def action(text: str) -> str:
        calls.append(text)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return text

    return action


def test_a_timeout_on_verification_leaves_the_writes_unverified(creds: dict[Slot, bytes]) -> None:
    calls: list[str] = []

    def timeout_second(text: str) -> str:
        calls.append(text)
        if len(calls) == 2:
            raise ModemTimeoutError(at.cmng_list(TAG), 0.1)
        return text

    sim = _sim(cfun=1)
    report = provision(SimTransport(sim, _on(f"AT%CMNG=1,{TAG}", timeout_second)), creds, TAG)
    assert report.error is not None
    assert not report.ok
    assert [(r.outcome, r.detail) for r in report.results] == [
        (Outcome.WRITTEN, "not verified")
    ] * 3
    assert sim.cfun == 1
    assert report.restored


def _drop_listing(cred_type: int, replacement: str | None) -> Callable[[str], str]:
    calls: list[str] = []

    def action(text: str) -> str:
        calls.append(text)
        if len(calls) < 2:
            return text
        lines = []
        for line in text.splitlines(keepends=True):
            if not line.startswith(f"%CMNG: {TAG},{cred_type},"):
                lines.append(line)
            elif replacement is not None:
                lines.append(replacement)
        return "".join(lines)

    return action


def test_a_write_the_modem_does_not_list_afterwards_is_a_mismatch(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(cfun=1)
    hook = _on(f"AT%CMNG=1,{TAG}", _drop_listing(1, None))
    report = provision(SimTransport(sim, hook), creds, TAG)
    by_slot = {r.plan.slot: r for r in report.results}
    cert = by_slot[Slot.CERT]
    assert cert.plan.slot is Slot.CERT
    assert (cert.outcome, cert.detail) == (
        Outcome.MISMATCH,
        "the modem accepted the write but does not list it",
    )
    assert report.error == "verification failed"


def test_a_key_listed_without_a_digest_is_reported_as_none_with_the_fallback(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(cfun=1)
    hook = _on(f"AT%CMNG=1,{TAG}", _drop_listing(2, f"%CMNG: {TAG},2\r\n"))
    report = provision(SimTransport(sim, hook), creds, TAG)
    key = next(r for r in report.results if r.plan.slot is Slot.KEY)
    assert key.outcome is Outcome.MISMATCH
    assert key.detail.startswith("written, but the modem lists SHA-256 (none) instead of ")
    assert _sha(creds[Slot.KEY]) in key.detail
    assert key.detail.endswith(
        "; if this modem firmware lists private-key digests in another form, "
        "use --key-policy if-missing"
    )


def test_if_missing_says_why_an_opaque_key_digest_is_accepted(creds: dict[Slot, bytes]) -> None:
    sim = _sim(cfun=1, opaque_key_digest=True)
    report = provision(SimTransport(sim), creds, TAG, key_policy=KeyPolicy.IF_MISSING)
    key = next(r for r in report.results if r.plan.slot is Slot.KEY)
    assert (key.outcome, key.detail) == (
        Outcome.WRITTEN,
        "listed; its digest is not comparable on this modem",
    )


def test_unsendable_content_is_refused_naming_the_file_before_the_modem_is_touched(
    creds: dict[Slot, bytes],
) -> None:
    bad = dict(creds)
    bad[Slot.CA] = creds[Slot.CA].replace(b"-----END", b'"-----END', 1)
    for names, expected in (
        ({Slot.CA: "certs/ca.pem"}, "certs/ca.pem: "),
        ({}, "CA certificate: "),
    ):
        sim = _sim(cfun=1)
        with pytest.raises(InputError) as caught:
            provision(SimTransport(sim), bad, TAG, names=names)
        assert str(caught.value).startswith(expected)
        assert sim.received == []


def test_slots_without_a_given_name_are_named_by_their_type(creds: dict[Slot, bytes]) -> None:
    plan = make_plan(creds, {Slot.KEY: "device.key"}, [], TAG)
    assert {s.slot: s.name for s in plan.slots} == {
        Slot.CA: "CA certificate",
        Slot.CERT: "client certificate",
        Slot.KEY: "device.key",
    }
    assert all(s.content == creds[s.slot] for s in plan.slots)


def _crlf(pem: bytes) -> bytes:
    return pem.replace(b"\n", b"\r\n")


def test_certificates_stored_in_another_form_are_read_back_one_by_one(
    creds: dict[Slot, bytes],
) -> None:
    # CA missing, client certificate stored with CRLF: the certificate is read back and kept.
    sim = _sim({Slot.CERT: _crlf(creds[Slot.CERT]), Slot.KEY: creds[Slot.KEY]}, cfun=4)
    messages: list[str] = []
    report = provision(SimTransport(sim), creds, TAG, progress=messages.append)
    assert [c.split(',"')[0] for c in sim.received if c.startswith("AT%CMNG=0")] == [
        f"AT%CMNG=0,{TAG},0"
    ]
    cert = next(r for r in report.results if r.plan.slot is Slot.CERT)
    assert (cert.outcome, cert.detail) == (
        Outcome.UNCHANGED,
        "the same certificate, stored in another PEM form",
    )
    assert any(f"AT%CMNG=2,{TAG},1" in m for m in messages)
    # CA identical, certificate in another form: nothing is written at all.
    sim = _sim(
        {Slot.CA: creds[Slot.CA], Slot.CERT: _crlf(creds[Slot.CERT]), Slot.KEY: creds[Slot.KEY]}
    )
    provision(SimTransport(sim), creds, TAG)
    assert not any(c.startswith(("AT%CMNG=0", "AT+CFUN=4")) for c in sim.received)


def test_a_failed_read_back_of_the_ca_still_reads_back_the_certificate(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(
        {
            Slot.CA: _crlf(creds[Slot.CA]),
            Slot.CERT: _crlf(creds[Slot.CERT]),
            Slot.KEY: creds[Slot.KEY],
        },
        cfun=4,
    )
    hook = _on(f"AT%CMNG=2,{TAG},0", lambda _: "+CME ERROR: 513\r\n")
    provision(SimTransport(sim, hook), creds, TAG)
    assert [c.split(',"')[0] for c in sim.received if c.startswith("AT%CMNG=0")] == [
        f"AT%CMNG=0,{TAG},0"
    ]


def test_a_key_stored_in_another_pem_form_is_left_alone_and_says_why(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(
        {Slot.CA: creds[Slot.CA], Slot.CERT: creds[Slot.CERT], Slot.KEY: _crlf(creds[Slot.KEY])}
    )
    report = provision(SimTransport(sim), creds, TAG)
    key = next(r for r in report.results if r.plan.slot is Slot.KEY)
    assert (key.outcome, key.detail) == (
        Outcome.UNCHANGED,
        "the same key, stored in another PEM form",
    )


def _wrapped(der_body: bytes, label: bytes, widths: tuple[int, ...]) -> bytes:
    """PEM with the base64 body cut at the given line lengths (the rest on one last line)."""
    body = base64.b64encode(der_body)
    lines, at_ = [], 0
    for width in widths:
        lines.append(body[at_ : at_ + width])
        at_ += width
    if at_ < len(body):
        lines.append(body[at_:])
    return (
        b"\n".join([b"-----BEGIN " + label + b"-----", *lines, b"-----END " + label + b"-----"])
        + b"\n"
    )


@pytest.mark.parametrize("widths", [(), (100,)], ids=["one body line", "two body lines"])
def test_a_key_file_with_long_lines_matches_the_key_stored_at_64_and_76_columns(
    widths: tuple[int, ...],
) -> None:
    key = factories.ec_key()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    given = _wrapped(der, b"PRIVATE KEY", widths)
    assert given.count(b"\n") == 3 + len(widths)
    digests = key_digests(given)
    for width in (64, 76):
        stored = _wrapped(der, b"PRIVATE KEY", (width,) * (len(der) * 4 // 3 // width + 1))
        stored = stored.replace(b"\n\n", b"\n")
        assert _sha(stored) in digests, width
        assert _sha(_crlf(stored)) in digests, width
        assert _sha(stored.rstrip(b"\n")) in digests, width


def test_a_device_refusing_error_codes_is_named_and_its_mode_unknown(
    creds: dict[Slot, bytes],
) -> None:
    sim = _sim(cfun=1)
    report = provision(SimTransport(sim, _on("AT+CMEE", lambda _: "ERROR\r\n")), creds, TAG)
    assert report.error is not None
    assert report.error.endswith(
        "this does not look like an nRF91 AT interface (AT host or serial LTE modem)"
    )
    assert report.initial_mode is None
    assert report.left_in == ""
    assert sim.received == ["AT+CMEE=1"]


def test_a_read_back_with_a_non_ascii_character_outside_the_block_is_the_same(
    creds: dict[Slot, bytes],
) -> None:
    read_back = _crlf(creds[Slot.CERT]).decode("ascii") + "\u00e9"
    assert same_certificates(creds[Slot.CERT], read_back)
    assert not same_certificates(creds[Slot.CERT], _crlf(creds[Slot.CA]).decode("ascii"))


def test_a_read_back_with_a_non_ascii_space_is_not_the_same_certificate(
    creds: dict[Slot, bytes],
) -> None:
    # The modem compares bytes: a no-break space (two bytes in UTF-8) at the end of a base64 line
    # is not whitespace to a PEM reader that reads ASCII, so the certificate is written again.
    line = creds[Slot.CERT].split(b"\n")[1].decode("ascii")

    def no_break_space(text: str) -> str:
        return text.replace(line, line + "\u00a0")

    read_back = no_break_space(creds[Slot.CERT].decode("ascii"))
    assert not same_certificates(creds[Slot.CERT], read_back)
    assert same_certificates(creds[Slot.CERT], read_back.replace("\u00a0", " "))
    sim = _sim({**creds, Slot.CERT: _crlf(creds[Slot.CERT])}, cfun=4)
    hook = _on(f"AT%CMNG=2,{TAG},1", no_break_space)
    report = provision(SimTransport(sim, hook), creds, TAG)
    assert [c.split(',"')[0] for c in sim.received if c.startswith("AT%CMNG=")] == [
        f"AT%CMNG=1,{TAG}",
        f"AT%CMNG=2,{TAG},1",
        f"AT%CMNG=0,{TAG},1",
        f"AT%CMNG=1,{TAG}",
    ]
    cert = next(r for r in report.results if r.plan.slot is Slot.CERT)
    assert (cert.outcome, cert.detail) == (Outcome.WRITTEN, "verified")
    assert sim.store[(TAG, 1)] == creds[Slot.CERT]


def test_a_modem_refusing_to_overwrite_is_told_why_the_old_credential_is_deleted(
    creds: dict[Slot, bytes],
) -> None:
    old_ca = factories.cert_pem(factories.make_cert("old CA", factories.ec_key(), ca=True))
    sim = _sim({Slot.CA: old_ca}, cfun=4, refuse_overwrite=True)
    messages: list[object] = []
    report = provision(SimTransport(sim), {Slot.CA: creds[Slot.CA]}, TAG, progress=messages.append)
    assert report.ok
    assert [c.split(',"')[0] for c in sim.received if c.startswith("AT%CMNG=")] == [
        f"AT%CMNG=1,{TAG}",
        f"AT%CMNG=2,{TAG},0",
        f"AT%CMNG=0,{TAG},0",
        f"AT%CMNG=3,{TAG},0",
        f"AT%CMNG=0,{TAG},0",
        f"AT%CMNG=1,{TAG}",
    ]
    assert sim.store[(TAG, 0)] == creds[Slot.CA]
    writing = "writing the CA certificate (CA certificate)"
    deleting = "the modem refuses to overwrite; deleting the old CA certificate first"
    assert writing in messages
    assert deleting in messages
    assert messages.index(writing) < messages.index(deleting)
