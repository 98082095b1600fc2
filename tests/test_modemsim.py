"""The modem simulator (`provguard.modemsim`, `provguard modem-sim`) against what the nRF91 AT
command reference documents, over real pseudo-terminals. Expected values are derived here
(hashlib, cryptography, cbor2), never taken from the simulator."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from provguard import at
from provguard.errors import InputError
from provguard.modemsim import (
    Faults,
    ModemSim,
    ModemState,
    load_states,
    make_imei,
    save_states,
)
from provguard.transport import ModemTimeoutError, PortDisconnectedError, SerialTransport
from tests import factories
from tests.modem_standin import assert_no_key_material

CERT = factories.cert_pem(factories.make_cert("sim test", factories.ec_key()))


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _send(port: SerialTransport, text: str) -> at.Response:
    return port.send(at.AtCommand(text, text))


def _luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        doubled = int(char) * (2 if index % 2 == 1 else 1)
        total += doubled // 10 + doubled % 10
    return total % 10 == 0


# -- identity ---------------------------------------------------------------------------------


def test_imei_firmware_and_error_mode_over_a_pty() -> None:
    state = ModemState.create(firmware="mfw_nrf9160_1.3.5")
    with ModemSim(state) as modem, SerialTransport(modem.port, timeout=5) as port:
        assert _send(port, "AT+CGSN").lines == (state.imei,)
        assert _send(port, "AT+CGSN=1").lines == (f'+CGSN: "{state.imei}"',)
        assert _send(port, "AT+CGMR").lines == ("mfw_nrf9160_1.3.5",)
        # +CMEE defaults to 0: refusals are a bare ERROR until AT+CMEE=1
        assert _send(port, "AT+CMEE?").lines == ("+CMEE: 0",)
        refused = _send(port, 'AT%CMNG=0,5,0,"x"')
        assert (refused.final.ok, refused.final.code, refused.final.text) == (False, None, "ERROR")
        assert _send(port, "AT+CMEE=1").final.ok
        assert _send(port, 'AT%CMNG=0,5,0,"x"').final.code == 518  # online
    assert len(state.imei) == 15
    assert state.imei.isdigit()
    assert _luhn_ok(state.imei)


def test_imeis_are_luhn_valid_for_every_serial() -> None:
    for serial in (0, 1, 9, 123456, 999999):
        imei = make_imei(serial)
        assert _luhn_ok(imei), imei
        assert not _luhn_ok(imei[:-1] + str((int(imei[-1]) + 1) % 10))


def test_cfun_modes() -> None:
    modem = ModemSim(cfun=1)
    assert modem.answer("AT+CFUN?") == "+CFUN: 1\r\nOK\r\n"
    assert modem.answer("AT+CFUN=44") == "OK\r\n"
    assert modem.answer("AT+CFUN?") == "+CFUN: 4\r\nOK\r\n"
    assert modem.answer("AT+CFUN=21") == "OK\r\n"
    assert modem.answer("AT+CFUN=3") == "ERROR\r\n"
    assert modem.answer("AT+CFUN=" + "9" * 5000) == "ERROR\r\n"
    assert modem.answer("AT+CFUN?") == "+CFUN: 21\r\nOK\r\n"


# -- %CMNG ----------------------------------------------------------------------------------


def test_cmng_write_list_read_delete_with_real_digests() -> None:
    modem = ModemSim(cfun=4, cmee=1)
    expected = hashlib.sha256(CERT).hexdigest().upper()
    content = CERT.decode()
    assert modem.answer(f'AT%CMNG=0,42,1,"{content}"') == "OK\r\n"
    assert modem.answer("AT%CMNG=1,42") == f'%CMNG: 42,1,"{expected}"\r\nOK\r\n'
    assert modem.answer("AT%CMNG=2,42,1") == f'%CMNG: 42,1,"{expected}","{content}"\r\nOK\r\n'
    assert modem.answer("AT%CMNG=2,42,0") == "+CME ERROR: 513\r\n"
    assert modem.answer("AT%CMNG=1,42,1") == f'%CMNG: 42,1,"{expected}"\r\nOK\r\n'
    assert modem.answer("AT%CMNG=3,42,1") == "OK\r\n"
    assert modem.answer("AT%CMNG=3,42,1") == "+CME ERROR: 513\r\n"
    assert modem.answer("AT%CMNG=1") == "OK\r\n"


def test_cmng_refusals() -> None:
    modem = ModemSim(cfun=4, cmee=1, capacity=1)
    key = factories.key_pem(factories.ec_key()).decode()
    assert modem.answer('AT%CMNG=0,1,1,"not pem"') == "+CME ERROR: 527\r\n"
    assert modem.answer(f'AT%CMNG=0,2147483648,1,"{CERT.decode()}"') == "+CME ERROR: 514\r\n"
    assert modem.answer(f'AT%CMNG=0,1,2,"{key}"') == "OK\r\n"
    assert modem.answer("AT%CMNG=2,1,2") == "+CME ERROR: 514\r\n"  # keys cannot be read
    assert modem.answer(f'AT%CMNG=0,1,1,"{CERT.decode()}"') == "+CME ERROR: 515\r\n"
    modem.answer("AT+CFUN=1")
    assert modem.answer("AT%CMNG=3,1,2") == "+CME ERROR: 518\r\n"
    assert set(modem.store) == {(1, 2)}


def test_crlf_content_is_refused_only_by_nrf91x1_firmware_2() -> None:
    crlf = CERT.replace(b"\n", b"\r\n").decode()
    old = ModemSim(ModemState.create(firmware="mfw_nrf9160_1.3.5"), cfun=4, cmee=1)
    new = ModemSim(ModemState.create(firmware="mfw_nrf91x1_2.0.1"), cfun=4, cmee=1)
    assert old.answer(f'AT%CMNG=0,1,0,"{crlf}"') == "OK\r\n"
    assert old.stored() == {(1, 0): hashlib.sha256(crlf.encode()).hexdigest().upper()}
    assert new.answer(f'AT%CMNG=0,1,0,"{crlf}"') == "+CME ERROR: 527\r\n"


def test_a_command_longer_than_the_at_host_buffer_is_not_executed() -> None:
    long_cert = "-----BEGIN CERTIFICATE-----\n" + "A" * 5000 + "\n-----END CERTIFICATE-----\n"
    with (
        ModemSim(cfun=4, cmee=1) as modem,
        SerialTransport(modem.port, timeout=5) as port,
    ):
        assert _send(port, f'AT%CMNG=0,1,1,"{long_cert}"').final.text == "ERROR"
        assert _send(port, "AT").final.ok
    assert modem.store == {}


def test_log_never_shows_content() -> None:
    key = factories.key_pem(factories.ec_key())
    lines: list[str] = []
    modem = ModemSim(cfun=4, cmee=1, log=lines.append)
    modem.answer(f'AT%CMNG=0,3,2,"{key.decode()}"')
    modem.answer('AT%CMNG=0,3,2,"-----BEGIN EC PRIVATE KEY-----\nshort')  # unterminated
    text = "\n".join(lines + modem.received)
    assert_no_key_material(text, key)
    assert "BEGIN" not in text
    assert hashlib.sha256(key).hexdigest().upper()[:16] in text


# -- %KEYGEN --------------------------------------------------------------------------------


def _keygen_answer(response: at.Response) -> tuple[bytes, bytes]:
    assert response.final.ok, response.final.text
    (line,) = response.lines
    assert line.startswith('%KEYGEN: "')
    assert line.endswith('"')
    body, cose = line[len('%KEYGEN: "') : -1].split(".")
    return _unb64url(body), _unb64url(cose)


def test_keygen_csr_is_signed_by_a_key_kept_in_the_modem() -> None:
    state = ModemState.create()
    with ModemSim(state, cfun=1) as modem, SerialTransport(modem.port, timeout=10) as port:
        _send(port, "AT+CMEE=1")
        online = _send(port, 'AT%KEYGEN=16842753,2,0,"O=Acme,CN=nrf-1"')
        assert online.final.code == 518
        assert state.store == {}
        _send(port, "AT+CFUN=4")
        der, cose = _keygen_answer(_send(port, 'AT%KEYGEN=16842753,2,0,"O=Acme,CN=nrf-1"'))
        listed = at.parse_cmng_list(_send(port, "AT%CMNG=1,16842753"))
        again = _send(port, 'AT%KEYGEN=16842753,2,0,"CN=nrf-1"')
        read_key = _send(port, "AT%CMNG=2,16842753,2")
        raw = "\n".join([repr(listed), repr(again), repr(read_key)])
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    expected_subject = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "nrf-1")]),
        ]
    )
    assert csr.subject == expected_subject
    public = csr.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    kept = modem.public_key(16842753)
    assert kept is not None
    assert public.public_numbers() == kept.public_numbers()
    # the key is listed as type 2, cannot be read, and a second KEYGEN is refused (519)
    assert [(i.sec_tag, i.cred_type) for i in listed] == [(16842753, 2)]
    assert again.final.code == 519
    assert read_key.final.code == 514
    assert_no_key_material(raw, state.store[(16842753, 2)])
    # COSE_Sign1 over the attestation of this CSR, by the modem's identity key
    message = cbor2.loads(cose)
    assert isinstance(message, cbor2.CBORTag)
    assert message.tag == 18
    protected, unprotected, payload_bytes, signature = message.value
    assert cbor2.loads(protected) == {1: -7}
    assert cbor2.loads(unprotected[4]) == -2
    payload = cbor2.loads(payload_bytes)
    assert payload[0] == 9
    assert payload[1] == state.device_uuid
    assert cbor2.loads(payload[2]) == 16842753
    assert payload[3] == hashlib.sha256(der).digest()
    assert len(payload[4]) == 16
    assert len(signature) == 64
    to_verify = cbor2.dumps(["Signature1", protected, b"", payload_bytes])
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    state.identity_public_key().verify(
        encode_dss_signature(r, s), to_verify, ec.ECDSA(hashes.SHA256())
    )


def test_keygen_defaults_overwrite_variant_and_public_key_answer() -> None:
    state = ModemState.create()
    modem = ModemSim(state, cfun=4, cmee=1, keygen_overwrites=True)
    first = modem.answer("AT%KEYGEN=5,2,0")
    der = _unb64url(first.split('"')[1].split(".")[0])
    csr = x509.load_der_x509_csr(der)
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == str(uuid.UUID(bytes=state.device_uuid))
    old = modem.public_key(5)
    second = modem.answer("AT%KEYGEN=5,2,1")
    spki = _unb64url(second.split('"')[1].split(".")[0])
    public = serialization.load_der_public_key(spki)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    now = modem.public_key(5)
    assert old is not None
    assert now is not None
    assert public.public_numbers() == now.public_numbers() != old.public_numbers()
    cose = cbor2.loads(_unb64url(second.split('"')[1].split(".")[1]))
    assert cbor2.loads(cose.value[2])[0] == 8


@pytest.mark.parametrize(
    ("command", "setup", "expected"),
    [
        ("AT%KEYGEN=2147483648,2,0", {}, "+CME ERROR: 514\r\n"),
        ("AT%KEYGEN=1,2,0", {"capacity": 0}, "+CME ERROR: 515\r\n"),
        ("AT%KEYGEN=1,2,0", {"faults": Faults(keygen_fails=True)}, "+CME ERROR: 523\r\n"),
        ('AT%KEYGEN=1,2,0,"XX=1"', {}, "ERROR\r\n"),
        ("AT%KEYGEN=1,8,0", {}, "ERROR\r\n"),
        ("AT%KEYGEN=1,2,7", {}, "ERROR\r\n"),
    ],
)
def test_keygen_refusals(command: str, setup: dict[str, object], expected: str) -> None:
    modem = ModemSim(cfun=0, cmee=1, **setup)  # type: ignore[arg-type]
    assert modem.answer(command) == expected
    assert modem.store == {}


# -- faults ---------------------------------------------------------------------------------


def _write(port: SerialTransport, tag: int) -> at.Response:
    return port.send(at.cmng_write(tag, 1, CERT))


def test_refuse_write_k_with_a_code() -> None:
    with (
        ModemSim(cfun=4, cmee=1, faults=Faults(refuse_write={2: 515})) as modem,
        SerialTransport(modem.port, timeout=5) as port,
    ):
        assert _write(port, 1).final.ok
        assert _write(port, 2).final.code == 515
        assert _write(port, 3).final.ok
    assert set(modem.store) == {(1, 1), (3, 1)}


@pytest.mark.parametrize("reaches", [True, False])
def test_hang_at_write_k(reaches: bool) -> None:
    faults = Faults(hang_at_write=2, write_reaches_modem=reaches)
    with (
        ModemSim(cfun=4, cmee=1, faults=faults) as modem,
        SerialTransport(modem.port, timeout=0.5) as port,
    ):
        assert _write(port, 1).final.ok
        with pytest.raises(ModemTimeoutError):
            _write(port, 2)
        with pytest.raises(ModemTimeoutError):
            _send(port, "AT")
    assert ((2, 1) in modem.store) is reaches


@pytest.mark.parametrize("reaches", [True, False])
def test_drop_port_at_write_k(reaches: bool) -> None:
    faults = Faults(drop_at_write=1, write_reaches_modem=reaches)
    with (
        ModemSim(cfun=4, cmee=1, faults=faults) as modem,
        SerialTransport(modem.port, timeout=5) as port,
        pytest.raises((PortDisconnectedError, ModemTimeoutError)),
    ):
        _write(port, 1)
    assert modem.dropped
    assert ((1, 1) in modem.store) is reaches


# -- state ----------------------------------------------------------------------------------


def test_state_round_trip_keeps_modems_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    state = ModemState.create()
    modem = ModemSim(state, cfun=4)
    modem.answer("AT%KEYGEN=9,2,0")
    modem.answer(f'AT%CMNG=0,9,1,"{CERT.decode()}"')
    save_states(path, [state, ModemState.create()])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_states(path)
    assert [s.imei for s in loaded] == [state.imei, loaded[1].imei]
    assert ModemSim(loaded[0]).stored() == modem.stored()
    assert loaded[0].device_uuid == state.device_uuid
    again = ModemSim(loaded[0], cmee=1)
    assert again.answer("AT%KEYGEN=9,2,0") == "+CME ERROR: 518\r\n"


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"format": "other"}',
        '{"format": "provguard-modem-sim", "version": 9}',
        '{"format": "provguard-modem-sim", "version": 1, "modems": [{"imei": "12"}]}',
    ],
)
def test_bad_state_files_are_input_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sim.json"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_states(path)
    assert str(path) in str(info.value)


def _start_cli(*args: str, expect: int | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "provguard", "modem-sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    count = int(args[args.index("--count") + 1]) if "--count" in args else 1
    count = expect if expect is not None else count
    ports = [process.stdout.readline().strip() for _ in range(count)]
    return process, ports


def _stop_cli(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    return process.returncode, err


def test_cli_serves_n_modems_and_a_rerun_sees_the_same_ones(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    process, ports = _start_cli("--count", "2", "--state", str(state))
    try:
        assert len(ports) == 2
        assert all(os.path.exists(p) for p in ports)
        imeis = []
        for port_path in ports:
            with SerialTransport(port_path, timeout=5) as port:
                imeis.append(_send(port, "AT+CGSN").lines[0])
        with SerialTransport(ports[1], timeout=5) as port:
            _send(port, "AT+CFUN=4")
            assert _write(port, 77).final.ok
    finally:
        code, err = _stop_cli(process)
    assert code == 0, err
    assert "0600" in err
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert len(set(imeis)) == 2
    process, ports = _start_cli("--count", "2", "--state", str(state))
    try:
        with SerialTransport(ports[1], timeout=5) as port:
            assert _send(port, "AT+CGSN").lines[0] == imeis[1]
            listed = at.parse_cmng_list(_send(port, "AT%CMNG=1"))
    finally:
        _stop_cli(process)
    digest = hashlib.sha256(CERT).hexdigest().upper()
    assert [(i.sec_tag, i.cred_type, i.sha) for i in listed] == [(77, 1, digest)]
    assert json.loads(state.read_text())["modems"][0]["imei"] == imeis[0]
    # Without --count, a rehearsal restarted from its state file gets every modem back.
    process, ports = _start_cli("--state", str(state), expect=2)
    try:
        again = []
        for port_path in ports:
            with SerialTransport(port_path, timeout=5) as port:
                again.append(_send(port, "AT+CGSN").lines[0])
    finally:
        _stop_cli(process)
    assert again == imeis


def test_cli_fault_options_reach_the_modem(tmp_path: Path) -> None:
    process, ports = _start_cli("--cfun", "4", "--refuse-write", "1=515", "-v")
    try:
        with SerialTransport(ports[0], timeout=5) as port:
            _send(port, "AT+CMEE=1")
            assert _write(port, 1).final.code == 515
            assert _write(port, 1).final.ok
        time.sleep(0.1)
    finally:
        code, err = _stop_cli(process)
    assert code == 0
    assert "AT%CMNG=0,1,1" in err
    assert "BEGIN" not in err


def test_cli_rejects_bad_fault_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provguard", "modem-sim", "--refuse-write", "x"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "K=CODE" in result.stderr


def test_cli_bad_state_file_is_one_line_and_untouched(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    state.write_text('{"format": "something else"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "provguard", "modem-sim", "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"provguard: error: {state}: not a provguard-modem-sim state file"
    )
    assert state.read_text() == '{"format": "something else"}\n'
