"""An in-process nRF91 with `%KEYGEN`, for the enrollment state machine's tests (fast, no pty).

It answers `provguard.transport.Transport.send` the way the modem answers on a serial port, as the
nRF91 AT command reference documents (`+CMEE`, `+CFUN`, `+CGSN`, `+CGMR`, `%CMNG` 0/1/2/3 with
SHA-256 of the stored content, `%KEYGEN=<tag>,2,0,"<subject>"` answering
`%KEYGEN: "<base64url CSR DER>.<base64url COSE_Sign1>"`, refused with 518 while online and with 519
when the tag already holds a key). The private keys it generates stay in `_keys` and never leave it
except as a SHA-256 in the list, as in the real modem. The end-to-end tests run against the shipped
simulator on pseudo-terminals instead.

Faults: `fault(command_text) -> "timeout" | "lost" | "lost-after" | None` decides per command:
no answer, the port gone before the command reached the modem, or gone after it was applied.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import cbor2
from asn1crypto import core as asn1_core
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provguard import at
from provguard.modemsim import ModemSim, ModemState, NoAnswerError, PortDroppedError
from provguard.transport import ModemTimeoutError, PortDisconnectedError

ONLINE_MODES = (1, 2, 21)
_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
}


class CmeError(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@dataclass(repr=False)
class FakeModem:
    imei: str = "352656100000001"
    firmware: str = "mfw_nrf9160_1.3.5"
    cfun: int = 1
    cmee: int = 0
    port: str = "/dev/fake0"
    store: dict[tuple[int, int], bytes] = field(default_factory=dict)
    received: list[str] = field(default_factory=list)
    fault: Callable[[str], str | None] | None = None
    reject_write: dict[int, int] = field(default_factory=dict)  # type -> CME code
    keygen_subject_override: str | None = None  # a modem that puts another subject in the CSR
    knows_cmee: bool = True  # False: not an nRF91 AT interface (AT+CMEE=1 answers ERROR)
    legacy_csr: bool = False  # older firmware: ecdsa-with-SHA256 with NULL parameters
    attest_other_digest: bool = False  # an attestation that does not name the CSR
    device_uuid: bytes = b"\x50\x36\x39\x53\x32\x34\x47\x23\x80\xb9\x15\x03\xd8\x82\x71\xbf"

    def __post_init__(self) -> None:
        self._keys: dict[int, ec.EllipticCurvePrivateKey] = {}

    def __repr__(self) -> str:
        return f"FakeModem(imei={self.imei}, cfun={self.cfun}, slots={sorted(self.slots())})"

    # -- what tests look at (digests, never key content) -------------------------------------

    def slots(self) -> dict[tuple[int, int], str]:
        out = {k: hashlib.sha256(v).hexdigest().upper() for k, v in self.store.items()}
        for tag in self._keys:
            out[(tag, 2)] = self.key_sha(tag)
        return out

    def key_sha(self, tag: int) -> str:
        return hashlib.sha256(self._key_der(tag)).hexdigest().upper()

    def _key_der(self, tag: int) -> bytes:
        return self._keys[tag].private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def key_secrets(self) -> list[bytes]:
        """Encodings of every key held (for leak checks; never printed)."""
        out: list[bytes] = []
        for tag, key in self._keys.items():
            der = self._key_der(tag)
            out.append(der)
            out.append(base64.b64encode(der))
            out.append(key.private_numbers().private_value.to_bytes(32, "big"))
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            out.extend(line for line in pem.splitlines() if not line.startswith(b"-----"))
        return out

    def public_key(self, tag: int) -> ec.EllipticCurvePublicKey:
        return self._keys[tag].public_key()

    def writes(self) -> list[str]:
        return [c for c in self.received if c.startswith(("AT%CMNG=0", "AT%CMNG=3", "AT%KEYGEN"))]

    def put_foreign_key(self, tag: int) -> None:
        """A key some other tool put there (the ledger knows nothing of it)."""
        self._keys[tag] = ec.generate_private_key(ec.SECP256R1())

    # -- the Transport protocol ----------------------------------------------------------------

    def send(self, command: at.AtCommand) -> at.Response:
        line = command.text
        self.received.append(command.summary)
        verdict = self.fault(line) if self.fault is not None else None
        if verdict == "timeout":
            raise ModemTimeoutError(command, 0.1)
        if verdict == "lost":
            raise PortDisconnectedError(self.port, command)
        try:
            info = self._dispatch(line)
            final = at.Final(ok=True)
        except CmeError as exc:
            info = []
            final = (
                at.Final(ok=False, code=exc.code, text=f"+CME ERROR: {exc.code}")
                if self.cmee
                else at.Final(ok=False, text="ERROR")
            )
        if verdict == "lost-after":
            raise PortDisconnectedError(self.port, command)
        lines: list[str] = []
        for item in info:
            lines.extend(item.split("\n"))
        return at.Response(tuple(lines), final)

    def _dispatch(self, line: str) -> list[str]:
        upper = line.upper()
        if upper == "AT+CMEE=1" and self.knows_cmee:
            self.cmee = 1
            return []
        if upper == "AT+CFUN?":
            return [f"+CFUN: {self.cfun}"]
        match = re.fullmatch(r"AT\+CFUN=(\d+)", upper)
        if match:
            self.cfun = int(match.group(1))
            return []
        if upper == "AT+CGSN":
            return [self.imei]
        if upper == "AT+CGMR":
            return [self.firmware]
        if upper.startswith("AT%KEYGEN="):
            return self._keygen(line[len("AT%KEYGEN=") :])
        if upper.startswith("AT%CMNG="):
            return self._cmng(line[len("AT%CMNG=") :])
        raise CmeError(0)

    def _keygen(self, rest: str) -> list[str]:
        match = re.fullmatch(r'(\d+),2,0(?:,"([^"]*)")?', rest)
        if match is None:
            raise CmeError(0)
        if self.cfun in ONLINE_MODES:
            raise CmeError(518)
        tag = int(match.group(1))
        if tag in self._keys:
            raise CmeError(519)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = self.keygen_subject_override or match.group(2) or ""
        attributes = [
            x509.NameAttribute(_OIDS[name], value)
            for name, _, value in (part.partition("=") for part in subject.split(",") if part)
        ]
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name(attributes))
            .sign(key, hashes.SHA256())
        )
        self._keys[tag] = key
        der = csr.public_bytes(serialization.Encoding.DER)
        if self.legacy_csr:
            request = asn1_csr.CertificationRequest.load(der)
            request["signature_algorithm"] = {
                "algorithm": "sha256_ecdsa",
                "parameters": asn1_core.Null(),
            }
            der = request.dump(force=True)
        cose = self.attestation(tag, der)
        return [f'%KEYGEN: "{b64url(der)}.{b64url(cose)}"']

    def attestation(self, tag: int, der: bytes) -> bytes:
        """A COSE_Sign1 as the modem makes it (layout of nRFCloud/utils'
        modem_credentials_parser.py); the signature is a stand-in: stations cannot check it."""
        digest = hashlib.sha256(der).digest()
        if self.attest_other_digest:
            digest = hashlib.sha256(b"another CSR").digest()
        payload = cbor2.dumps([9, self.device_uuid, cbor2.dumps(tag), digest, bytes(16)])
        protected = cbor2.dumps({1: -7})
        return bytes(
            cbor2.dumps(cbor2.CBORTag(18, [protected, {4: cbor2.dumps(-2)}, payload, bytes(64)]))
        )

    def _cmng(self, rest: str) -> list[str]:
        match = re.fullmatch(r'(\d)(?:,(\d+))?(?:,(\d))?(?:,"(.*)")?', rest, re.S)
        if match is None:
            raise CmeError(0)
        opcode = int(match.group(1))
        tag = int(match.group(2)) if match.group(2) else None
        cred_type = int(match.group(3)) if match.group(3) else None
        if opcode == 1:
            listed = self.slots()
            return [
                f'%CMNG: {t},{c},"{sha}"'
                for (t, c), sha in sorted(listed.items())
                if (tag is None or t == tag) and (cred_type is None or c == cred_type)
            ]
        if tag is None or cred_type is None:
            raise CmeError(0)
        if opcode == 2:
            return self._read(tag, cred_type)
        if self.cfun in ONLINE_MODES:
            raise CmeError(518)
        if opcode == 3:
            return self._delete(tag, cred_type)
        if opcode == 0:
            if cred_type in self.reject_write:
                raise CmeError(self.reject_write[cred_type])
            content = match.group(4)
            if not content:
                raise CmeError(527)
            self.store[(tag, cred_type)] = content.encode("ascii")
            return []
        raise CmeError(0)

    def _read(self, tag: int, cred_type: int) -> list[str]:
        if cred_type == 2:
            raise CmeError(514 if tag in self._keys else 513)
        if (tag, cred_type) not in self.store:
            raise CmeError(513)
        content = self.store[(tag, cred_type)].decode("ascii")
        sha = hashlib.sha256(self.store[(tag, cred_type)]).hexdigest().upper()
        return [f'%CMNG: {tag},{cred_type},"{sha}","{content}"']

    def _delete(self, tag: int, cred_type: int) -> list[str]:
        if cred_type == 2:
            if self._keys.pop(tag, None) is None:
                raise CmeError(513)
            return []
        if self.store.pop((tag, cred_type), None) is None:
            raise CmeError(513)
        return []


class SimModem:
    """The shipped simulator (`provguard.modemsim.ModemSim.answer`, in-process, no pty) behind
    the same Transport and test surface as FakeModem, so the state-machine tests run against
    what users rehearse with too. Faults as FakeModem's `fault`."""

    def __init__(self, *, cfun: int = 1, port: str = "/dev/sim0"):
        self.sim = ModemSim(ModemState.create(), cfun=cfun)
        self.port = port
        self.fault: Callable[[str], str | None] | None = None

    def __repr__(self) -> str:
        return f"SimModem(imei={self.imei}, cfun={self.cfun}, slots={sorted(self.sim.stored())})"

    @property
    def imei(self) -> str:
        return self.sim.state.imei

    @property
    def cfun(self) -> int:
        return self.sim.cfun

    @cfun.setter
    def cfun(self, mode: int) -> None:
        self.sim.cfun = mode

    @property
    def store(self) -> dict[tuple[int, int], bytes]:
        return self.sim.store

    @property
    def received(self) -> list[str]:
        return self.sim.received

    def public_key(self, tag: int) -> ec.EllipticCurvePublicKey:
        key = self.sim.public_key(tag)
        assert key is not None, "no key at this tag"
        return key

    def key_sha(self, tag: int) -> str:
        return self.sim.digest(tag, 2)

    def slots(self) -> dict[tuple[int, int], str]:
        return {(t, c): self.sim.digest(t, c) for (t, c) in self.sim.store}

    def key_secrets(self) -> list[bytes]:
        out: list[bytes] = []
        for (_tag, kind), pem in self.sim.store.items():
            if kind == 2:
                key = serialization.load_pem_private_key(pem, password=None)
                der = key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                out += [der, base64.b64encode(der)]
                out += [line for line in pem.splitlines() if not line.startswith(b"-----")]
        return out

    def writes(self) -> list[str]:
        return [c for c in self.received if c.startswith(("AT%CMNG=0", "AT%CMNG=3", "AT%KEYGEN"))]

    def send(self, command: at.AtCommand) -> at.Response:
        verdict = self.fault(command.text) if self.fault is not None else None
        if verdict == "timeout":
            raise ModemTimeoutError(command, 0.1)
        if verdict == "lost":
            raise PortDisconnectedError(self.port, command)
        try:
            text = self.sim.answer(command.text)
        except NoAnswerError:
            raise ModemTimeoutError(command, 0.1) from None
        except PortDroppedError:
            raise PortDisconnectedError(self.port, command) from None
        if verdict == "lost-after":
            raise PortDisconnectedError(self.port, command)
        return at.parse_response(text)
