"""Enrolling one device: the state machine over a Transport.

For one device, against any `Transport` (a serial port, the simulator, a fake in tests):

1. `AT+CMEE=1`, the IMEI (`AT+CGSN`), the modem firmware (`AT+CGMR`), the functional mode
   (`AT+CFUN?`), then `AT+CFUN=4`; the mode found is restored at the end on every path;
2. `AT%CMNG=1,<tag>`: what the tag holds. When it holds a client certificate (read back with
   `AT%CMNG=2,<tag>,1`) that is valid, issued by the device CA, recorded in the ledger as issued to
   this IMEI and tag, and a key whose listed SHA-256 is the one recorded when that key was
   generated, the key and certificate are left alone (0 writes);
3. otherwise `AT%KEYGEN=<tag>,2,0,"<subject>"`; the CSR's own signature, subject and key type
   (EC P-256) are verified, a client certificate is signed by the device CA (serial reserved in the
   ledger, clientAuth, SKI/AKI) and written (`%CMNG` type 1). A key the modem generated for an
   attempt that stopped before its certificate was written is recognised by its listed SHA-256
   and completed from the CSR the ledger kept: no second key;
4. the broker's root (type 0) is written only when the modem's copy differs (by SHA-256, and when
   the digest differs, by the certificates it holds, so CRLF or other wrapping compares equal);
5. `AT%CMNG=1,<tag>` again: what the modem lists is verified.

A key the ledger did not generate is never deleted; only `--rotate` replaces a key. Nothing here
ever holds a private key of a device: the device CA's key signs and is named by fingerprint only.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provguard import at
from provguard.credentials import cert_fingerprint, public_key_der
from provguard.enroll.inputs import BrokerRoot, DeviceCa, SubjectTemplate
from provguard.enroll.issue import issue_certificate, issued_by
from provguard.enroll.keygen import (
    CGMR,
    CLIENT_CERT,
    PRIVATE_KEY,
    ROOT_CA,
    CsrError,
    KeygenRefusedError,
    certificates_in,
    cmng_read,
    keygen,
    parse_cmng_read,
    parse_firmware,
    parse_imei,
    parse_keygen,
    verify_csr,
)
from provguard.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE, InputError, ProblemsFoundError
from provguard.ledger import Attempt, DeviceBusyError, Ledger, LedgerError, Outcome
from provguard.ledger import timestamp as ledger_time
from provguard.transport import Transport, TransportError

# --- one device ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollJob:
    """What every device of a run gets (already checked)."""

    device_ca: DeviceCa
    broker_root: BrokerRoot
    sec_tag: int
    subject: SubjectTemplate
    days: int
    station: str
    rotate: bool = False


@dataclass(frozen=True)
class DeviceResult:
    port: str
    outcome: Outcome
    imei: str | None = None
    firmware: str | None = None
    attempt_id: int | None = None
    cert_serial: str | None = None
    cert_fingerprint: str | None = None
    subject: str | None = None
    written: tuple[str, ...] = ()
    error: str | None = None
    restore_error: str | None = None
    initial_mode: int | None = None
    went_offline: bool = False
    #: the mode restored at the end: the one found, or the one an earlier attempt that stopped
    #: mid-device found before it left the modem offline
    restore_mode: int | None = None
    mode_from_attempt: int | None = None

    @property
    def exit_code(self) -> int:
        if self.outcome in (Outcome.ENROLLED, Outcome.ALREADY_ENROLLED):
            return EXIT_PROBLEMS if self.restore_error else EXIT_OK
        if self.outcome is Outcome.UNUSABLE:
            return EXIT_UNUSABLE
        return EXIT_PROBLEMS

    def to_dict(self) -> dict[str, object]:
        return {
            "port": self.port,
            "imei": self.imei,
            "firmware": self.firmware,
            "outcome": self.outcome.value,
            "attempt": self.attempt_id,
            "cert_serial": self.cert_serial,
            "cert_fingerprint": self.cert_fingerprint,
            "subject": self.subject,
            "written": list(self.written),
            "error": self.error,
            "restore_error": self.restore_error,
            "initial_mode": self.initial_mode,
            "restore_mode": self.restore_mode,
        }


class StopRequestedError(Exception):
    """The run was stopped (Ctrl-C) between two commands."""


class UnusableDeviceError(InputError):
    """The port does not answer like an nRF91 AT interface (exit 2)."""


Progress = Callable[[str, str], None]  # (step, detail)


class _Device:
    """The conversation with one modem, with the state needed to restore it and to report."""

    def __init__(
        self,
        transport: Transport,
        job: EnrollJob,
        ledger: Ledger,
        port: str,
        progress: Progress | None,
        stop: threading.Event | None,
        clock: Callable[[], dt.datetime],
    ):
        self.transport = transport
        self.job = job
        self.ledger = ledger
        self.port = port
        self.progress = progress
        self.stop = stop
        self.clock = clock
        self.attempt_id: int | None = None
        self.imei: str | None = None
        self.firmware: str | None = None
        self.subject: str | None = None
        self.initial_mode: int | None = None
        self.restore_mode: int | None = None
        self.mode_from_attempt: int | None = None
        self.went_offline = False
        self.written: list[str] = []
        self.cert_serial: str | None = None
        self.cert_fingerprint: str | None = None
        self.written_cert_sha: str | None = None
        self.critical = False  # between %KEYGEN and recording its result: Ctrl-C waits
        self.current_step = "started"

    def step(self, name: str, detail: str = "") -> None:
        if self.progress is not None:
            self.progress(name, detail)
        self.current_step = name

    def record(self, **values: object) -> None:
        """Into this attempt's ledger row, with the step reached (one transaction)."""
        assert self.attempt_id is not None
        self.ledger.note(self.attempt_id, step=self.current_step, **values)

    def ok(self, command: at.AtCommand) -> at.Response:
        if self.stop is not None and self.stop.is_set() and not self.critical:
            raise StopRequestedError
        response = self.transport.send(command)
        if not response.final.ok:
            raise at.ModemError(command, response.final)
        return response

    def listed(self) -> dict[int, at.ListedCredential]:
        tag = self.job.sec_tag
        return {
            item.cred_type: item
            for item in at.parse_cmng_list(self.ok(at.cmng_list(tag)))
            if item.sec_tag == tag
        }

    def write(self, cred_type: int, content: bytes, label: str) -> None:
        command = at.cmng_write(self.job.sec_tag, cred_type, content, what=label)
        try:
            self.ok(command)
        except at.ModemError as exc:
            if exc.code != 519:
                raise
            # Firmware that does not overwrite: this slot is being replaced on purpose (a new
            # certificate for a new key, or the broker root the user gave), so delete it first.
            self.ok(at.cmng_delete(self.job.sec_tag, cred_type))
            self.ok(command)
        self.written.append(label)


def enroll_device(
    transport: Transport,
    job: EnrollJob,
    ledger: Ledger,
    *,
    port: str,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> DeviceResult:
    """Enroll the modem behind `transport`. Never raises for what a device or the ledger does:
    the result says what happened (Ctrl-C included: outcome `interrupted`)."""
    device = _Device(
        transport,
        job,
        ledger,
        port,
        progress,
        stop,
        clock or (lambda: dt.datetime.now(dt.timezone.utc)),
    )
    outcome = Outcome.REFUSED
    error: str | None = None
    restore_error: str | None = None
    interrupted = False
    try:
        device.attempt_id = ledger.begin(
            station=job.station,
            port=port,
            sec_tag=job.sec_tag,
            device_ca_fingerprint=job.device_ca.fingerprint,
        )
        outcome = _run(device)
    except StopRequestedError:
        outcome, error = Outcome.INTERRUPTED, "interrupted"
    except KeyboardInterrupt:
        outcome, error, interrupted = Outcome.INTERRUPTED, "interrupted", True
    except (UnusableDeviceError, LedgerError) as exc:
        outcome, error = Outcome.UNUSABLE, str(exc)
    except at.ModemError as exc:
        outcome, error = Outcome.REFUSED, str(exc)
    except (DeviceBusyError, CsrError, TransportError, ProblemsFoundError) as exc:
        outcome, error = Outcome.REFUSED, str(exc)
    except InputError as exc:
        outcome, error = Outcome.UNUSABLE, str(exc)
    except Exception as exc:  # fail closed; the message is not shown: it could quote input
        outcome, error = Outcome.UNUSABLE, f"internal error ({type(exc).__name__})"
    finally:
        restore_error = _restore(device)
        if device.attempt_id is not None:
            try:
                ledger.finish(
                    device.attempt_id,
                    outcome,
                    _join(error, restore_error),
                    left_offline=device.went_offline and restore_error is not None,
                )
            except LedgerError as exc:
                error = _join(error, f"the ledger could not record the result: {exc}")
                outcome = Outcome.UNUSABLE if outcome is not Outcome.INTERRUPTED else outcome
    result = DeviceResult(
        port=port,
        outcome=outcome,
        imei=device.imei,
        firmware=device.firmware,
        attempt_id=device.attempt_id,
        cert_serial=device.cert_serial,
        cert_fingerprint=device.cert_fingerprint,
        subject=device.subject,
        written=tuple(device.written),
        error=error,
        restore_error=restore_error,
        initial_mode=device.initial_mode,
        went_offline=device.went_offline,
        restore_mode=device.restore_mode,
        mode_from_attempt=device.mode_from_attempt,
    )
    if device.progress is not None:
        device.progress("done", outcome.value)
    if interrupted:
        raise EnrollInterrupted(result)
    return result


class EnrollInterrupted(KeyboardInterrupt):
    """Ctrl-C during a single-device run, carrying what was done (the CLI reports it)."""

    def __init__(self, result: DeviceResult):
        super().__init__("interrupted")
        self.result = result


def _join(*parts: str | None) -> str | None:
    present = [p for p in parts if p]
    return "; ".join(present) if present else None


_LEFT_OFFLINE = "the modem may be left offline (CFUN=4)"


def _restore(device: _Device) -> str | None:
    mode = device.restore_mode
    if not device.went_offline or mode is None:
        return None
    try:
        response = device.transport.send(at.cfun_set(mode))
    except (TransportError, ProblemsFoundError) as exc:
        return f"{_LEFT_OFFLINE}: restoring AT+CFUN={mode} failed: {exc}"
    except KeyboardInterrupt:
        return f"{_LEFT_OFFLINE}: restoring AT+CFUN={mode} was interrupted"
    if not response.final.ok:
        return f"{_LEFT_OFFLINE}: AT+CFUN={mode} was refused: {response.final.describe()}"
    if device.progress is not None:
        device.progress("restored", f"CFUN={mode}")
    return None


def _run(device: _Device) -> Outcome:
    job, ledger = device.job, device.ledger
    assert device.attempt_id is not None
    attempt = device.attempt_id
    device.step("identify")
    try:
        device.ok(at.CMEE_ON)
        device.imei = parse_imei(device.ok(at.CGSN))
        device.firmware = parse_firmware(device.ok(CGMR))
    except at.ModemError as exc:
        raise UnusableDeviceError(
            f"{exc.command.summary}: the device answered {exc.final.text}: "
            "this does not look like an nRF91 AT interface (AT host or serial LTE modem)",
            path=device.port,
        ) from None
    except (TransportError, at.UnexpectedResponseError) as exc:
        # Nothing answers like a modem on this port: the port is unusable, not the device.
        raise UnusableDeviceError(str(exc)) from None
    device.step("identified", device.imei)
    subject_text, subject_name = job.subject.render(device.imei)
    device.subject = subject_text
    device.initial_mode = at.parse_cfun(device.ok(at.CFUN_READ))
    device.restore_mode = device.initial_mode
    ledger.acquire(
        device.imei,
        station=job.station,
        attempt_id=attempt,
        record={
            "imei": device.imei,
            "modem_firmware": device.firmware,
            "subject": subject_text,
            "initial_mode": device.initial_mode,
            "left_offline": True,  # until finish says it was restored
        },
    )
    left = ledger.left_offline(device.imei, before=attempt)
    if (
        device.initial_mode == at.OFFLINE_MODE
        and left is not None
        and left.initial_mode not in (None, at.OFFLINE_MODE)
    ):
        # Offline because an earlier attempt stopped mid-device (a station crash, a lost port):
        # the mode to give back is the one that attempt found.
        device.restore_mode = left.initial_mode
        device.mode_from_attempt = left.id

    device.step("offline")
    device.went_offline = True  # set before sending: restore even if the answer is lost
    device.ok(at.cfun_set(at.OFFLINE_MODE))

    device.step("inspect")
    held = device.listed()
    current = _current_certificate(device, held)
    if current is None:
        _new_certificate(device, held, subject_name)
    else:
        cert, issuer = current
        device.cert_serial = format(cert.serial_number, "x")
        device.cert_fingerprint = cert_fingerprint(cert)
        device.record(
            cert_serial=device.cert_serial,
            cert_fingerprint=device.cert_fingerprint,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            key_sha=held[PRIVATE_KEY].sha,
            csr_pem=issuer.csr_pem,
            device_uuid=issuer.device_uuid,
        )
    _broker_root(device, held)

    device.step("verify")
    _verify(device)
    return Outcome.ENROLLED if device.written else Outcome.ALREADY_ENROLLED


def _current_certificate(
    device: _Device, held: dict[int, at.ListedCredential]
) -> tuple[x509.Certificate, Attempt] | None:
    """The certificate the tag holds and the attempt that issued it, when the certificate and
    its key can stay; else None."""
    job = device.job
    if job.rotate or PRIVATE_KEY not in held or CLIENT_CERT not in held:
        return None
    assert device.imei is not None
    content = parse_cmng_read(device.ok(cmng_read(job.sec_tag, CLIENT_CERT)))
    try:
        cert = x509.load_pem_x509_certificate(content.replace(b"\r\n", b"\n"))
    except ValueError:
        return None
    now = device.clock()
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        return None
    if not issued_by(cert, job.device_ca):
        return None
    record = device.ledger.issued(device.imei, job.sec_tag, cert_fingerprint(cert))
    if record is None:
        return None
    listed_key = held[PRIVATE_KEY].sha
    if record.key_sha is not None and listed_key is not None and record.key_sha != listed_key:
        return None  # the key was replaced after this certificate was issued
    if record.csr_pem is not None:
        csr = x509.load_pem_x509_csr(record.csr_pem.encode("ascii"))
        if public_key_der(csr.public_key()) != public_key_der(cert.public_key()):
            return None
    return cert, record


def _new_certificate(
    device: _Device, held: dict[int, at.ListedCredential], subject_name: x509.Name
) -> None:
    job, ledger = device.job, device.ledger
    assert device.attempt_id is not None
    assert device.imei is not None
    attempt = device.attempt_id
    csr: x509.CertificateSigningRequest | None = None
    key = held.get(PRIVATE_KEY)
    replace_key = job.rotate
    # An earlier attempt that sent %KEYGEN here and stopped before its key was known.
    orphan = ledger.unconfirmed_keygen(device.imei, job.sec_tag, before=attempt)
    if key is not None and not job.rotate:
        record = ledger.generated_key(device.imei, job.sec_tag, key.sha) if key.sha else None
        if record is not None and record.csr_pem is not None:
            device.step("resume", f"key generated by attempt {record.id}")
            csr = x509.load_pem_x509_csr(record.csr_pem.encode("ascii"))
            device.record(csr_pem=record.csr_pem, key_sha=key.sha, device_uuid=record.device_uuid)
            issued = _reusable_certificate(device, record.cert_pem, csr)
            if issued is not None:  # signed but never (verifiably) written: write that one
                _write_certificate(device, issued)
                return
        else:
            if orphan is None:
                raise ProblemsFoundError(
                    f"sec_tag {job.sec_tag} already holds a private key that this ledger did "
                    "not generate: it is left alone (use --rotate to replace it with a key "
                    "generated in the modem, or another --sec-tag)"
                )
            # Attempt `orphan` sent %KEYGEN to this tag and stopped before the modem's digest
            # of the new key was known: this key is that attempt's, and without its CSR it can
            # never get a certificate. It is replaced, as that attempt would have done.
            device.step("resume", f"replacing the key attempt {orphan.id} generated")
            replace_key = True
    if csr is None and not replace_key:
        earlier = ledger.enrolled(device.imei, job.sec_tag, job.device_ca.fingerprint)
        # A key generation (a rotation) that stopped after the enrollment explains the
        # missing key: finish it.
        if earlier is not None and (orphan is None or orphan.id < earlier.id):
            raise ProblemsFoundError(
                f"IMEI {device.imei} was enrolled at sec_tag {job.sec_tag} by station "
                f"{earlier.station!r} (attempt {earlier.id}, serial {earlier.cert_serial}), but "
                "this modem does not hold that key and certificate: a second device with the "
                "same IMEI, or one whose credentials were removed; nothing written "
                "(--rotate enrolls it again)"
            )
    if csr is None:
        csr = _generate_key(device, subject_name, replace_key=replace_key)
    verify_csr(csr, subject_name)
    device.step("sign")
    signed: list[x509.Certificate] = []

    def sign(serial: int) -> tuple[str, str]:
        cert = issue_certificate(job.device_ca, csr, serial, days=job.days, at_time=device.clock())
        signed.append(cert)
        return cert_fingerprint(cert), cert.public_bytes(serialization.Encoding.PEM).decode()

    # Serial reserved, certificate signed and recorded in one transaction: recorded before it
    # is written, so a port lost after the write reached the modem leaves a certificate the
    # re-run recognises as issued.
    ledger.issue(attempt, job.device_ca.fingerprint, sign)
    _write_certificate(device, signed[-1], recorded=True)


def _reusable_certificate(
    device: _Device, pem: str | None, csr: x509.CertificateSigningRequest
) -> x509.Certificate | None:
    """The certificate an earlier attempt issued for this CSR, if it is still good to write."""
    if pem is None:
        return None
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    now = device.clock()
    fresh = cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    same_key = public_key_der(cert.public_key()) == public_key_der(csr.public_key())
    return cert if fresh and same_key and issued_by(cert, device.job.device_ca) else None


def _write_certificate(device: _Device, cert: x509.Certificate, *, recorded: bool = False) -> None:
    pem = cert.public_bytes(serialization.Encoding.PEM)
    device.cert_serial = format(cert.serial_number, "x")
    device.cert_fingerprint = cert_fingerprint(cert)
    if not recorded:
        device.record(
            cert_serial=device.cert_serial,
            cert_fingerprint=device.cert_fingerprint,
            cert_pem=pem.decode("ascii"),
        )
    device.step("write-cert")
    device.written_cert_sha = at.content_digest(pem)
    device.write(CLIENT_CERT, pem, "client certificate")


def _generate_key(
    device: _Device, subject_name: x509.Name, *, replace_key: bool
) -> x509.CertificateSigningRequest:
    """%KEYGEN, then the CSR and the key's listed digest recorded before anything else: from
    here until both are in the ledger, Ctrl-C waits (a key whose CSR is lost is useless)."""
    job = device.job
    assert device.attempt_id is not None
    assert device.subject is not None
    command = keygen(job.sec_tag, device.subject)
    device.step("keygen")
    device.record(keygen_sent_at=ledger_time())
    device.critical = True
    try:
        try:
            response = device.ok(command)
        except at.ModemError as exc:
            if exc.code != 519 or not replace_key:
                raise KeygenRefusedError(exc) from None
            device.step("rotate", "deleting the tag's old key")
            device.ok(at.cmng_delete(job.sec_tag, PRIVATE_KEY))
            try:
                response = device.ok(command)
            except at.ModemError as again:
                raise KeygenRefusedError(again) from None
        answer = parse_keygen(response, job.sec_tag)
        csr = answer.csr
        listed_key = device.listed().get(PRIVATE_KEY)
        if listed_key is None:
            raise ProblemsFoundError(
                "%KEYGEN answered a CSR but the modem lists no private key at "
                f"sec_tag {job.sec_tag}"
            )
        device.record(
            csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            key_sha=listed_key.sha,
            device_uuid=answer.device_uuid,
        )
    finally:
        device.critical = False
    return csr


def _broker_root(device: _Device, held: dict[int, at.ListedCredential]) -> None:
    root = device.job.broker_root
    item = held.get(ROOT_CA)
    if item is not None and item.sha == root.sha:
        return
    if item is not None:
        # Another tool may have written the same certificates with CRLF or other wrapping.
        content = parse_cmng_read(device.ok(cmng_read(device.job.sec_tag, ROOT_CA)))
        wanted = [c.public_bytes(serialization.Encoding.DER) for c in root.certs]
        if certificates_in(content) == wanted:
            return
    device.step("write-ca")
    device.write(ROOT_CA, root.content, "broker root CA")


def _verify(device: _Device) -> None:
    held = device.listed()
    problems: list[str] = []
    if PRIVATE_KEY not in held:
        problems.append("no private key is listed")
    if CLIENT_CERT not in held:
        problems.append("no client certificate is listed")
    if device.written_cert_sha is not None:
        expected = device.written_cert_sha
        if CLIENT_CERT in held and held[CLIENT_CERT].sha != expected:
            problems.append(
                f"the client certificate is listed with SHA-256 {held[CLIENT_CERT].sha}, "
                f"not {expected}"
            )
    root = device.job.broker_root
    listed_root = held.get(ROOT_CA)
    if "broker root CA" in device.written and listed_root and listed_root.sha != root.sha:
        problems.append(f"the broker root CA is listed with SHA-256 {held[ROOT_CA].sha}")
    if ROOT_CA not in held:
        problems.append("no broker root CA is listed")
    if problems:
        raise ProblemsFoundError(f"verification after writing failed: {'; '.join(problems)}")


def summarise(results: Sequence[DeviceResult]) -> int:
    """The run's exit code: 2 if any device was unusable, else 1 if any was refused, else 0."""
    codes = {r.exit_code for r in results}
    if EXIT_UNUSABLE in codes:
        return EXIT_UNUSABLE
    if EXIT_PROBLEMS in codes:
        return EXIT_PROBLEMS
    return EXIT_OK
