"""The %KEYGEN and %CMNG=2 answers as the modem gives them, each rule a mutant no test killed: the
error a malformed read answer gets, a non-ASCII byte in a read credential, why a refused %KEYGEN
was refused, and the one CSR deviation that is repaired (and nothing else)."""

from __future__ import annotations

import hashlib
import importlib

import cbor2
import pytest
from asn1crypto import core as asn1_core
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provguard import at, enroll
from provguard.errors import InputError
from tests import factories

SHA = "0123456789abcdef" * 4
#: the module (provguard.enroll.keygen is also the name of a function there)
keygen_module = importlib.import_module("provguard.enroll.keygen")


def read_answer(content: str) -> at.Response:
    return at.Response((f'%CMNG: 42,1,"{SHA}","{content}"',), at.Final(ok=True))


def test_a_read_answer_that_is_not_a_cmng_line_is_named() -> None:
    answer = at.Response(("%CMNG: 42,1",), at.Final(ok=True))
    with pytest.raises(at.UnexpectedResponseError) as refused:
        enroll.parse_cmng_read(answer)
    assert str(refused.value) == (
        'the answer to AT%CMNG=2 is not \'%CMNG: <tag>,<type>,"<sha>","<content>"\''
    )


def test_a_read_credential_is_ascii_and_a_stray_byte_becomes_a_question_mark() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert enroll.parse_cmng_read(read_answer(pem)) == pem.encode("ascii")
    # a byte the modem garbled on the line: one '?', the rest as sent (no UTF-8 expansion)
    assert enroll.parse_cmng_read(read_answer("AB\u00e9CD")) == b"AB?CD"


def refusal(code: int | None) -> keygen_module.KeygenRefusedError:
    command = enroll.keygen(42, "CN=device")
    final = at.Final(ok=False, code=code, text="ERROR" if code is None else "+CME ERROR")
    return keygen_module.KeygenRefusedError(at.ModemError(command, final))


def test_a_refused_keygen_says_why_in_the_at_references_words() -> None:
    memory = refusal(515)
    assert memory.code == 515
    assert str(memory).endswith(
        "the modem refused it: +CME ERROR (memory full: the modem's credential storage has no "
        "room for another key)"
    )
    unknown = refusal(600)  # a code %KEYGEN's reference does not list: the generic meaning
    assert unknown.code == 600
    assert str(unknown).endswith(f"the modem refused it: +CME ERROR ({at.cme_message(600)})")
    bare = refusal(None)  # extended error codes off: ERROR alone
    assert bare.code is None
    final = at.Final(ok=False, code=None, text="ERROR")
    assert str(bare).endswith(f"the modem refused it: {final.describe()}")


def csr_der(key: object) -> bytes:
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(factories.name("device"))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return request.public_bytes(serialization.Encoding.DER)


def with_null_parameters(der: bytes) -> bytes:
    """The CSR as older modem firmware signs it: ecdsa-with-SHA256 with NULL parameters."""
    request = asn1_csr.CertificationRequest.load(der)
    request["signature_algorithm"] = {"algorithm": "sha256_ecdsa", "parameters": asn1_core.Null()}
    return bytes(request.dump(force=True))


def test_only_null_ecdsa_parameters_are_repaired() -> None:
    der = csr_der(factories.ec_key())
    legacy = with_null_parameters(der)
    assert legacy != der
    assert keygen_module._without_null_ecdsa_parameters(legacy) == der
    assert keygen_module._without_null_ecdsa_parameters(der) is None  # nothing to repair
    # RSA signatures carry NULL parameters by definition: not the deviation, left alone
    assert keygen_module._without_null_ecdsa_parameters(csr_der(factories.rsa_key())) is None
    # bytes after the CSR are not dropped to make it parse: the answer is not repaired
    assert keygen_module._without_null_ecdsa_parameters(legacy + b"\x00\x00") is None


def test_a_csr_read_back_is_refused_for_a_damaged_signature_or_a_key_keygen_does_not_make() -> None:
    expected = factories.name("device")
    der = bytearray(csr_der(factories.ec_key()))
    der[-3] ^= 0x01  # inside the signature's INTEGER r or s
    damaged = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(enroll.CsrError) as refused:
        keygen_module.verify_csr(damaged, expected)
    assert str(refused.value) == "the CSR's signature does not verify: it was damaged on the way"
    for key in (factories.rsa_key(), factories.ec_key(ec.SECP384R1())):
        request = x509.load_der_x509_csr(csr_der(key))
        with pytest.raises(enroll.CsrError) as refused:
            keygen_module.verify_csr(request, expected)
        kind = type(request.public_key()).__name__
        assert str(refused.value) == f"the CSR's key is {kind}, not EC P-256 as %KEYGEN makes"
    keygen_module.verify_csr(x509.load_der_x509_csr(csr_der(factories.ec_key())), expected)


def test_reading_a_credential_checks_its_sec_tag_as_every_cmng_command_does() -> None:
    with pytest.raises(InputError) as listing:
        at.cmng_list(2147483648)
    with pytest.raises(InputError) as reading:
        enroll.cmng_read(2147483648, 1)
    assert str(reading.value) == str(listing.value)
    assert enroll.cmng_read(42, 1).text == "AT%CMNG=2,42,1"


UUID = bytes(range(16))


def attestation(
    tag_value: int,
    csr: bytes,
    *,
    cbor_tag: int = 18,
    kind: int = 9,
    uuid: bytes = UUID,
    digest: bytes | None = None,
) -> bytes:
    """A COSE_Sign1 as the modem's %KEYGEN answers carry it (nRF91 AT manual; payload id 9,
    the device UUID, the sec_tag as CBOR, the CSR's SHA-256, a nonce), signature not checked."""
    digest = hashlib.sha256(csr).digest() if digest is None else digest
    payload = cbor2.dumps([kind, uuid, cbor2.dumps(tag_value), digest, bytes(16)])
    sign1 = [cbor2.dumps({1: -7}), {}, payload, bytes(64)]
    return cbor2.dumps(cbor2.CBORTag(cbor_tag, sign1))


def test_the_attested_sec_tag_is_read_as_the_modem_writes_it() -> None:
    csr = csr_der(factories.ec_key())
    uuid = "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert keygen_module._attested_uuid(attestation(0, csr), csr, 0) == uuid  # tag 0 is a tag
    assert keygen_module._attested_uuid(attestation(42, csr), csr, 42) == uuid
    # int32 on the wire: 2^31 and 2^32 - 1 arrive negative and are read back unsigned
    for wire, tag in ((-(2**31), 2**31), (-1, 2**32 - 1), (-2, 2**32 - 2)):
        assert keygen_module._attested_uuid(attestation(wire, csr), csr, tag) == uuid
        for near in (tag - 1, tag + 1, 2, 2**31 - 2):
            with pytest.raises(enroll.CsrError, match="names sec_tag"):
                keygen_module._attested_uuid(attestation(wire, csr), csr, near)


def test_an_attestation_that_is_not_a_cose_sign1_is_named() -> None:
    csr = csr_der(factories.ec_key())
    with pytest.raises(enroll.CsrError) as refused:
        keygen_module._attested_uuid(b"\xff\x00", csr, 42)
    assert str(refused.value) == "%KEYGEN: the COSE_Sign1 attestation does not decode"
    with pytest.raises(enroll.CsrError) as refused:
        keygen_module._attested_uuid(attestation(42, csr, cbor_tag=17), csr, 42)
    assert str(refused.value) == "%KEYGEN: the attestation is not a COSE_Sign1 (CBOR tag 18)"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": 8}, "%KEYGEN: the attestation is payload 8, not a CSR message (9)"),
        (
            {"digest": bytes(32)},
            "%KEYGEN: the attestation's SHA-256 is not the CSR's: they do not belong",
        ),
        ({"uuid": bytes(15)}, "%KEYGEN: the attestation's device UUID is not 16 bytes"),
        ({"uuid": "0" * 16}, "%KEYGEN: the attestation's device UUID is not 16 bytes"),
    ],
)
def test_an_attestation_of_something_else_is_refused_by_name(
    changes: dict[str, object], message: str
) -> None:
    csr = csr_der(factories.ec_key())
    with pytest.raises(enroll.CsrError) as refused:
        keygen_module._attested_uuid(attestation(42, csr, **changes), csr, 42)  # type: ignore[arg-type]
    assert str(refused.value) == message
