"""What scripts read from `provguard enroll --format json` and `provguard ledger show --format
json`, each field checked against where it comes from (the simulated modem's state, the
certificate it holds, the ledger's own rows read with SQLAlchemy), not against provguard's
dictionaries: every key name and value was a mutant no test killed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provguard import ledger as ledger_module
from provguard.cli import main
from provguard.ledger import Ledger
from provguard.modemsim import ModemSim, ModemState
from tests.test_enroll import Pki

TAG = 42


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def enroll_json(pki: Pki, port: str, ledger_url: str, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    argv = [
        "enroll", "--port", port, "--device-ca-cert", str(pki.dca_cert_path),
        "--device-ca-key", str(pki.dca_key_path), "--ca", str(pki.root_path),
        "--sec-tag", str(TAG), "--timeout", "2", "--station", "line-7",
        "--ledger", ledger_url, "--format", "json",
    ]  # fmt: skip
    code = main(argv)
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == code
    return document  # type: ignore[no-any-return]


def test_an_enrolled_devices_json_names_what_the_modem_now_holds(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    state = ModemState.create()
    with ModemSim(state) as sim:
        [device] = enroll_json(pki, sim.port, url, capsys)["devices"]
        cert = x509.load_pem_x509_certificate(sim.store[(TAG, 1)])
        port = sim.port
        # the credential types written, in order: %CMNG=0,<tag>,<type>,...
        writes = [int(c.split(",")[2]) for c in sim.received if c.startswith("AT%CMNG=0,")]
    with Ledger.open(url) as ledger:
        [attempt] = ledger.attempts()
    der = cert.public_bytes(serialization.Encoding.DER)
    assert device == {
        "port": port,
        "imei": state.imei,
        "firmware": state.firmware,
        "outcome": "enrolled",
        "attempt": attempt.id,
        "cert_serial": format(cert.serial_number, "x"),
        "cert_fingerprint": "SHA256:" + hashlib.sha256(der).hexdigest(),
        "subject": cert.subject.rfc4514_string(),
        "written": device["written"],
        "error": None,
        "restore_error": None,
        "initial_mode": 1,  # the simulator starts online
        "restore_mode": 1,
    }
    named = {0: "root", 1: "certificate"}  # 0 root CA, 1 client certificate (nRF91 AT manual)
    assert len(device["written"]) == len(writes) == 2
    for label, kind in zip(device["written"], writes, strict=True):
        assert named[kind] in label, (label, kind)


def test_ledger_show_json_is_each_row_as_the_database_holds_it(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with ModemSim(ModemState.create()) as sim:
        enroll_json(pki, sim.port, url, capsys)
        enroll_json(pki, sim.port, url, capsys)  # a second attempt: already enrolled
    assert main(["ledger", "--ledger", url, "show", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [
            dict(row)
            for row in conn.execute(
                sa.select(ledger_module.attempts).order_by(ledger_module.attempts.c.id)
            ).mappings()
        ]
    engine.dispose()
    assert len(rows) == 2
    assert shown == rows
    assert [r["outcome"] for r in shown] == ["enrolled", "already_enrolled"]
