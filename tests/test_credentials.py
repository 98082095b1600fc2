"""provguard check: each diagnosis, on credentials generated at test time."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provguard import cli
from provguard import pki as dev
from provguard.credentials import (
    MODEM_CREDENTIAL_MAX,
    CheckReport,
    CredentialFile,
    CredentialSet,
    Problem,
    Severity,
    Slot,
    check,
    load_credential_set,
    load_private_key,
)
from provguard.errors import InputError
from tests import factories as f


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture(scope="module")
def pki() -> f.DevicePki:
    return f.device_pki()


@pytest.fixture
def files(tmp_path: Path, pki: f.DevicePki) -> dict[str, Path]:
    return f.write_credential_files(tmp_path, pki)


def run(files: dict[str, Path], sec_tag: int = 24, **kwargs: object):  # type: ignore[no-untyped-def]
    creds = load_credential_set(ca=files.get("ca"), cert=files.get("cert"), key=files.get("key"))
    return check(creds, sec_tag, **kwargs)  # type: ignore[arg-type]


def codes(report, severity: Severity | None = None) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.code for p in report.problems if severity is None or p.severity is severity}


def the(report, code: str):  # type: ignore[no-untyped-def]
    found = [p for p in report.problems if p.code == code]
    assert found, f"expected {code}, got {[str(p) for p in report.problems]}"
    return found[0]


def test_good_set_is_ok_and_normalised(files: dict[str, Path], pki: f.DevicePki) -> None:
    report = run(files)
    assert report.ok, [str(p) for p in report.problems]
    assert codes(report, Severity.ERROR) == set()
    assert codes(report, Severity.WARNING) == set()
    assert report.contents[Slot.CA] == f.cert_pem(pki.ca_cert)
    assert report.contents[Slot.KEY] == f.key_pem(pki.device_key)
    assert "EC P-256" in report.summaries[Slot.KEY]


def test_root_with_overwritten_signature_bytes_is_an_error(
    files: dict[str, Path], pki: f.DevicePki
) -> None:
    der = bytearray(f.cert_der(pki.ca_cert))
    der[-8:] = b"\x00" * 8  # the last bytes of a certificate are its signature value
    cert = base64.encodebytes(bytes(der)).decode()
    write(files["ca"], f"-----BEGIN CERTIFICATE-----\n{cert}-----END CERTIFICATE-----\n")
    report = run(files)
    problem = the(report, "ca-signature-invalid")
    assert problem.severity is Severity.ERROR
    assert "modem does not check" in problem.message
    assert "signatureValue" in problem.message
    assert not report.ok


def test_rsa_root_with_altered_content_says_the_signed_part_changed(tmp_path: Path) -> None:
    key = RSA_KEYS[2048]
    root = f.make_cert("RSA root", key, ca=True)
    der = bytearray(f.cert_der(root))
    not_after = root.not_valid_after_utc.strftime("%y%m%d%H%M%SZ").encode()
    index = der.index(not_after)
    der[index + 1] = ord("9") if der[index + 1] != ord("9") else ord("8")  # "extend" the expiry
    path = write(tmp_path / "ca.der", bytes(der))
    report = run({"ca": path})
    problem = the(report, "ca-signature-invalid")
    assert "signature itself is intact" in problem.message
    assert "tbsCertificate" in problem.message


def test_damaged_base64_says_where(files: dict[str, Path]) -> None:
    lines = files["ca"].read_text().splitlines()
    lines[3] = lines[3][:7] + "!" + lines[3][8:]
    write(files["ca"], "\n".join(lines) + "\n")
    problem = the(run(files), "pem-base64")
    assert problem.line == 4
    assert "column 8" in problem.message
    assert "'!'" in problem.message


def test_truncated_pem_names_the_missing_end(files: dict[str, Path]) -> None:
    lines = files["ca"].read_text().splitlines()
    write(files["ca"], "\n".join(lines[:4]) + "\n")
    report = run(files)
    framing = the(report, "pem-framing")
    assert "no END line" in framing.message
    assert framing.severity is Severity.ERROR


def test_body_length_not_multiple_of_four(files: dict[str, Path]) -> None:
    lines = files["ca"].read_text().splitlines()
    lines[2] = lines[2][:-1]
    write(files["ca"], "\n".join(lines) + "\n")
    assert "not a multiple of 4" in the(run(files), "pem-base64").message


def test_mismatched_end_label(files: dict[str, Path]) -> None:
    text = files["ca"].read_text().replace("END CERTIFICATE", "END PRIVATE KEY")
    write(files["ca"], text)
    assert "does not match BEGIN" in the(run(files), "pem-framing").message


@pytest.mark.parametrize(
    ("slot", "content", "expected"),
    [
        ("key", "cert", "a certificate, but the private key slot"),
        ("cert", "key", "a private key, but the client certificate slot"),
        ("key", "public", "a public key, not a private key"),
    ],
)
def test_wrong_slot(
    files: dict[str, Path], pki: f.DevicePki, slot: str, content: str, expected: str
) -> None:
    data = {
        "cert": f.cert_pem(pki.device_cert),
        "key": f.key_pem(pki.device_key),
        "public": pki.device_key.public_key().public_bytes(
            f.serialization.Encoding.PEM, f.serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }[content]
    write(files[slot], data)
    assert expected in the(run(files), "wrong-slot").message


def test_key_that_does_not_match_certificate(files: dict[str, Path]) -> None:
    other = f.ec_key()
    write(files["key"], f.key_pem(other))
    problem = the(run(files), "key-mismatch")
    assert problem.severity is Severity.ERROR
    assert "SHA256:" in problem.message


def test_expired_and_not_yet_valid_and_expiring(files: dict[str, Path], pki: f.DevicePki) -> None:
    issuer = (pki.ca_cert, pki.ca_key)
    cases = {
        "cert-expired": {
            "not_before": f.NOW - dt.timedelta(days=30),
            "not_after": f.NOW - dt.timedelta(days=1),
        },
        "cert-not-yet-valid": {"not_before": f.NOW + dt.timedelta(days=2)},
        "cert-expires-soon": {"not_after": f.NOW + dt.timedelta(days=10)},
    }
    for code, dates in cases.items():
        cert = f.make_cert("dev", pki.device_key, issuer=issuer, **dates)  # type: ignore[arg-type]
        write(files["cert"], f.cert_pem(cert))
        problem = the(run(files), code)
        expected = Severity.WARNING if code == "cert-expires-soon" else Severity.ERROR
        assert problem.severity is expected
    assert f"{(f.NOW + dt.timedelta(days=10)):%Y-%m-%d}" in problem.message


def test_encrypted_key_is_an_error_for_the_firmware_and_a_warning_otherwise(
    files: dict[str, Path], pki: f.DevicePki
) -> None:
    write(files["key"], f.key_pem(pki.device_key, password=b"correct horse"))
    assert the(run(files), "key-encrypted").severity is Severity.WARNING
    assert the(run(files, for_modem_write=True), "key-encrypted").severity is Severity.ERROR


def test_crlf_is_normalised_with_a_warning(files: dict[str, Path], pki: f.DevicePki) -> None:
    write(files["ca"], f.cert_pem(pki.ca_cert).replace(b"\n", b"\r\n"))
    report = run(files)
    assert the(report, "crlf-line-endings").severity is Severity.WARNING
    assert report.ok
    assert report.contents[Slot.CA] == f.cert_pem(pki.ca_cert)


def test_surrounding_whitespace_and_text_are_dropped(
    files: dict[str, Path], pki: f.DevicePki
) -> None:
    pem = f.cert_pem(pki.ca_cert)
    write(files["ca"], b'\n\nBag Attributes: friendlyName: "root"\n  ' + pem + b"\n\n")
    report = run(files)
    assert report.contents[Slot.CA] == pem
    assert "'\"'" in the(report, "text-outside-blocks").message


def test_der_inputs_are_converted_to_pem(files: dict[str, Path], pki: f.DevicePki) -> None:
    write(files["ca"], f.cert_der(pki.ca_cert))
    write(files["key"], f.key_der(pki.device_key, pkcs8=False))
    report = run(files)
    assert report.ok
    assert report.contents[Slot.CA] == f.cert_pem(pki.ca_cert)
    assert report.contents[Slot.KEY] == f.key_pem(pki.device_key, pkcs8=False)
    assert "der-converted" in codes(report)


def test_json_export_with_sec_tag(tmp_path: Path, pki: f.DevicePki) -> None:
    bundle = {
        "caCert": f.cert_pem(pki.ca_cert).decode().replace("\n", "\r\n"),
        "clientCert": f.cert_pem(pki.device_cert).decode(),
        "privateKey": f.key_pem(pki.device_key).decode(),
        "secTag": 42,
    }
    path = write(tmp_path / "creds.json", json.dumps(bundle))
    creds = load_credential_set(from_json=path)
    assert creds.sec_tag == 42
    assert creds.ca is not None
    assert creds.ca.name.endswith("creds.json:caCert")
    report = check(creds, creds.sec_tag)
    assert report.ok
    assert report.contents[Slot.CA] == f.cert_pem(pki.ca_cert)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON"),
        ("[]", "JSON object"),
        ('{"secTag": 1}', "none of"),
        ('{"caCert": 5}', "string"),
    ],
)
def test_bad_json_is_unusable_input(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(InputError, match=message):
        load_credential_set(from_json=path)


def test_ca_that_is_not_a_ca(files: dict[str, Path], pki: f.DevicePki) -> None:
    write(files["ca"], f.cert_pem(pki.device_cert))
    assert "not a CA certificate" in the(run(files), "ca-not-ca").message


def test_client_cert_from_another_ca_is_fine_and_said(tmp_path: Path) -> None:
    aws_like = f.device_pki(same_ca=False)
    files = {
        "ca": write(tmp_path / "ca.pem", f.cert_pem(aws_like.ca_cert)),
        "cert": write(tmp_path / "c.pem", f.cert_pem(aws_like.device_cert)),
        "key": write(tmp_path / "k.pem", f.key_pem(aws_like.device_key)),
    }
    report = run(files)
    assert report.ok
    assert the(report, "cert-other-issuer").severity is Severity.INFO


def test_client_cert_with_a_bad_signature_from_the_given_ca(
    files: dict[str, Path], pki: f.DevicePki
) -> None:
    impostor_key = f.ec_key()
    impostor = f.make_cert("provguard test root CA", impostor_key, ca=True)
    forged = f.make_cert("dev", pki.device_key, issuer=(impostor, impostor_key))
    write(files["cert"], f.cert_pem(forged))
    assert the(run(files), "cert-signature-invalid").severity is Severity.ERROR


def test_unsupported_key_types(tmp_path: Path) -> None:
    for key in (f.ec_key(ec.SECP256K1()), ed25519.Ed25519PrivateKey.generate()):
        ca = f.make_cert("root", key, ca=True)
        report = run({"ca": write(tmp_path / "ca.pem", f.cert_pem(ca))})
        assert the(report, "key-unsupported").severity is Severity.ERROR


def test_credential_over_the_modem_limit(tmp_path: Path) -> None:
    certs = b"".join(f.cert_pem(f.make_cert(f"root {i}", f.ec_key(), ca=True)) for i in range(10))
    problem = the(run({"ca": write(tmp_path / "ca.pem", certs)}), "too-large")
    assert problem.severity is Severity.ERROR
    assert "4 kB" in problem.message


def test_non_ascii_inside_a_block(files: dict[str, Path]) -> None:
    lines = files["ca"].read_text().splitlines()
    lines[2] = lines[2][:5] + "é" + lines[2][6:]
    write(files["ca"], "\n".join(lines) + "\n")
    problem = the(run(files), "not-ascii")
    assert (problem.severity, problem.line) == (Severity.ERROR, 3)


@pytest.mark.parametrize(
    ("tag", "kwargs", "code", "severity"),
    [
        (16842753, {}, "sec-tag-nrf-cloud", Severity.ERROR),
        (16842753, {"allow_nrf_cloud_tag": True}, "sec-tag-nrf-cloud", Severity.WARNING),
        (2147483650, {}, "sec-tag-decryptable", Severity.ERROR),
        (2147483650, {"allow_decryptable_tag": True}, "sec-tag-decryptable", Severity.WARNING),
        (-1, {}, "sec-tag-range", Severity.ERROR),
        (2147483668, {"allow_decryptable_tag": True}, "sec-tag-range", Severity.ERROR),
    ],
)
def test_sec_tags(
    files: dict[str, Path], tag: int, kwargs: dict[str, bool], code: str, severity: Severity
) -> None:
    assert the(run(files, tag, **kwargs), code).severity is severity


def test_missing_pieces(files: dict[str, Path]) -> None:
    assert "ca-missing" in codes(run({"cert": files["cert"], "key": files["key"]}))
    assert "key-missing" in codes(run({"ca": files["ca"], "cert": files["cert"]}))
    assert "cert-missing" in codes(run({"ca": files["ca"], "key": files["key"]}))


def test_unreadable_inputs_raise_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as absent:
        load_credential_set(ca=tmp_path / "absent.pem")
    assert str(absent.value) == f"{tmp_path / 'absent.pem'}: no such file"
    with pytest.raises(InputError) as directory:
        load_credential_set(ca=tmp_path)
    assert str(directory.value) == f"{tmp_path}: is a directory, not a credential file"
    big = write(tmp_path / "big.pem", b"x" * ((1 << 20) + 1))
    with pytest.raises(InputError) as too_big:
        load_credential_set(ca=big)
    assert str(too_big.value) == f"{big}: larger than 1048576 bytes: not a credential file"
    exact = write(tmp_path / "exact.pem", b"x" * (1 << 20))
    assert load_credential_set(ca=exact).ca is not None  # 1 MiB exactly is read
    empty = CredentialFile(Slot.KEY, "empty.key", b"")
    with pytest.raises(InputError, match=r"empty\.key"):
        load_private_key(empty)


def test_empty_file_is_reported(tmp_path: Path) -> None:
    creds = CredentialSet(CredentialFile(Slot.CA, "ca.pem", b"  \n"), None, None)
    assert "empty" in the(check(creds, 24), "pem-framing").message


def test_size_limit_matches_the_firmware_assertion(tmp_path: Path) -> None:
    """check and the firmware's BUILD_ASSERT must refuse the same sizes."""
    app_src = Path(__file__).parents[1] / "app" / "src"
    program = tmp_path / "limit.c"
    program.write_text(
        '#include <stdio.h>\n#include "credentials.h"\n'
        'int main(void) { printf("%d", (int)PROVGUARD_CREDENTIAL_MAX_LEN); return 0; }\n'
    )
    subprocess.run(
        ["cc", "-I", str(app_src), str(program), "-o", str(tmp_path / "limit")], check=True
    )
    printed = subprocess.run([str(tmp_path / "limit")], capture_output=True, text=True, check=True)
    assert int(printed.stdout) == MODEM_CREDENTIAL_MAX


def test_client_cert_from_a_same_named_ca_is_told_apart(tmp_path: Path) -> None:
    first, second = dev.create("localhost", "dev"), dev.create("localhost", "dev")
    files = {
        "ca": write(tmp_path / "ca.pem", f.cert_pem(first.ca_cert)),
        "cert": write(tmp_path / "c.pem", f.cert_pem(second.client_cert)),
        "key": write(tmp_path / "k.pem", f.key_pem(second.client_key)),
    }
    problem = the(run(files), "cert-signature-invalid")
    assert "another CA with the same name" in problem.message


# --- boundaries of every numeric rule (expected values from the modem's documented ranges) -----

SEC_TAG_CODES = {"sec-tag-range", "sec-tag-decryptable", "sec-tag-nrf-cloud"}


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (-1, {"sec-tag-range"}),
        (0, set()),
        (16842752, set()),
        (16842753, {"sec-tag-nrf-cloud"}),
        (16842754, set()),
        (2147483647, set()),  # the last user tag
        (2147483648, {"sec-tag-decryptable"}),  # the first of the 20 decryptable test tags
        (2147483667, {"sec-tag-decryptable"}),  # the last of them
        (2147483668, {"sec-tag-range"}),
        (2**32, {"sec-tag-range"}),
    ],
)
def test_sec_tag_boundaries(files: dict[str, Path], tag: int, expected: set[str]) -> None:
    report = run(files, tag)
    assert codes(report) & SEC_TAG_CODES == expected
    assert {p.severity for p in report.problems if p.code in SEC_TAG_CODES} <= {Severity.ERROR}


def _ca_pem_with_san(key: ec.EllipticCurvePrivateKey, length: int) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(f.name("padded root"))
        .issuer_name(f.name("padded root"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(f.NOW - dt.timedelta(days=1))
        .not_valid_after(f.NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("a" * length)]), critical=False)
    )
    return f.cert_pem(builder.sign(key, hashes.SHA256()))


def _pems_by_size() -> dict[int, bytes]:
    """Self-signed CA certificates in many PEM sizes, to assemble CA files of an exact size."""
    key = f.ec_key()
    sizes: dict[int, bytes] = {}
    for length in range(2600):
        pem = _ca_pem_with_san(key, length)
        sizes.setdefault(len(pem), pem)
    return sizes


#: Made once when the module is imported (a module fixture is made again in every process that
#: runs a test, and mutation testing runs one per mutant).
PEMS_BY_SIZE = _pems_by_size()
RSA_KEYS = {bits: f.rsa_key(bits) for bits in (1024, 2047, 2048)}


@pytest.fixture(scope="module")
def pems_by_size() -> dict[int, bytes]:
    return PEMS_BY_SIZE


@pytest.mark.parametrize(("size", "too_large"), [(3968, False), (3969, True)])
def test_credential_size_boundary(
    tmp_path: Path, pems_by_size: dict[int, bytes], size: int, too_large: bool
) -> None:
    # 4096-byte AT buffer minus 128 bytes of %CMNG framing: 3968 is the largest credential.
    first = next(n for n in sorted(pems_by_size) if size - n in pems_by_size)
    data = pems_by_size[first] + pems_by_size[size - first]
    assert len(data) == size
    report = run({"ca": write(tmp_path / "ca.pem", data)})
    assert report.contents[Slot.CA] == data
    assert ("too-large" in codes(report)) is too_large
    assert codes(report, Severity.ERROR) <= {"too-large"}


@pytest.mark.parametrize(
    ("bits", "expected"),
    [(1024, {"key-weak"}), (2047, {"key-weak"}), (2048, set())],
)
def test_rsa_key_size_boundaries(tmp_path: Path, bits: int, expected: set[str]) -> None:
    key = RSA_KEYS[bits]
    ca = f.make_cert("rsa root", key, ca=True)
    report = run({"ca": write(tmp_path / "ca.pem", f.cert_pem(ca))})
    assert codes(report) & {"key-weak", "key-unsupported"} == expected
    assert report.ok  # a weak key is a warning, never an error


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (None, None),
        ("before-start", "ca-not-yet-valid"),
        ("at-start", None),
        ("at-end", "ca-expires-soon"),  # notAfter is inclusive (RFC 5280 4.1.2.5)
        ("after-end", "ca-expired"),
    ],
)
def test_ca_validity_boundaries(tmp_path: Path, offset: str | None, code: str | None) -> None:
    key = f.ec_key()
    start = f.NOW - dt.timedelta(days=10)
    end = f.NOW + dt.timedelta(days=100)
    ca = f.make_cert("dated root", key, ca=True, not_before=start, not_after=end)
    second = dt.timedelta(seconds=1)
    now = {
        None: f.NOW,
        "before-start": start - second,
        "at-start": start,
        "at-end": end,
        "after-end": end + second,
    }[offset]
    report = run({"ca": write(tmp_path / "ca.pem", f.cert_pem(ca))}, now=now)
    validity = {"ca-not-yet-valid", "ca-expired", "ca-expires-soon"}
    assert codes(report) & validity == ({code} if code else set())
    assert report.ok is (code not in {"ca-not-yet-valid", "ca-expired"})


# --- hostile JSON exports ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"caCert": "x", "secTag": ' + "9" * 5000 + "}", "number too long"),
        ('{"caCert": "x", "secTag": ' + "9" * 40 + "}", "far too large"),
        ('{"caCert": "x", "secTag": "' + "9" * 5000 + '"}', "whole number"),
        ('{"caCert": "\\ud800"}', "lone surrogate"),
    ],
    ids=["deep", "huge-int", "big-int", "huge-string", "surrogate"],
)
def test_hostile_json_is_one_line_exit_2(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "export.json", text)
    with pytest.raises(InputError, match=message):
        load_credential_set(from_json=path)
    assert cli.main(["check", "--from", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"provguard: error: {path}: ")
    assert len(err.splitlines()) == 1


def test_a_huge_sec_tag_option_is_a_usage_error(files: dict[str, Path]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["check", "--ca", str(files["ca"]), "--sec-tag", "9" * 5000])
    assert exited.value.code == 2


# --- immutable values ----------------------------------------------------------------------------


def test_a_check_report_is_immutable_validated_and_hashable(files: dict[str, Path]) -> None:
    report = run(files)
    with pytest.raises(TypeError):
        report.contents[Slot.CA] = b"changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        report.summaries[Slot.CA] = "changed"  # type: ignore[index]
    assert isinstance(report.problems, tuple)
    again = run(files)
    assert report == again
    assert hash(report) == hash(again)
    assert len({report, again}) == 1

    mine = {Slot.CA: b"pem\n"}
    built = CheckReport([], mine, 24)  # type: ignore[arg-type]
    mine[Slot.CA] = b"changed\n"
    assert built.contents[Slot.CA] == b"pem\n"  # a copy, not a view of the caller's dict
    assert built.problems == ()
    with pytest.raises(TypeError, match="maps Slots to bytes"):
        CheckReport((), {Slot.CA: "text"}, 24)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"^CheckReport\.sec_tag is an int$"):
        CheckReport((), {}, True)
    with pytest.raises(TypeError, match=r"^CheckReport\.problems holds Problems only$"):
        CheckReport(("error",), {}, 24)  # type: ignore[arg-type]


def test_a_credential_set_refuses_a_file_in_the_wrong_slot() -> None:
    key = CredentialFile(Slot.KEY, "client.key", b"")
    with pytest.raises(ValueError, match=r"client\.key is a private key, given as CA certificate"):
        CredentialSet(key, None, None)
    with pytest.raises(ValueError, match="line numbers start at 1"):
        Problem(Severity.ERROR, "code", "f", 0, "message")


@pytest.mark.parametrize(
    ("tag", "kwargs", "message"),
    [
        (2147483650, {}, "sec_tag 2147483650 is in 2147483648-2147483667: on nRF91x1 modems TLS "
         "traffic on these tags can be decrypted from modem traces; use a tag in 0-2147483647, "
         "or --allow-decryptable-tag for a test"),
        (2147483650, {"allow_decryptable_tag": True}, "sec_tag 2147483650 is in "
         "2147483648-2147483667: on nRF91x1 modems TLS traffic on these tags can be decrypted "
         "from modem traces; allowed for testing only"),
        (-5, {}, "sec_tag -5 is outside the user range 0-2147483647"),
        (16842753, {}, "sec_tag 16842753 is nRF Cloud's (CONFIG_NRF_CLOUD_SEC_TAG): writing it "
         "replaces the device's nRF Cloud credentials; pick another tag, or pass "
         "--allow-nrf-cloud-tag if you mean it"),
        (16842753, {"allow_nrf_cloud_tag": True}, "sec_tag 16842753 is nRF Cloud's "
         "(CONFIG_NRF_CLOUD_SEC_TAG): writing it replaces the device's nRF Cloud credentials; "
         "allowed by --allow-nrf-cloud-tag"),
    ],
)  # fmt: skip
def test_sec_tag_messages_say_what_to_do(
    files: dict[str, Path], tag: int, kwargs: dict[str, bool], message: str
) -> None:
    problems = [p for p in run(files, tag, **kwargs).problems if p.code.startswith("sec-tag")]
    assert [(p.file, p.line, p.message) for p in problems] == [(None, None, message)]


def test_missing_piece_messages_name_the_file(files: dict[str, Path]) -> None:
    report = run({"cert": files["cert"], "key": files["key"]})
    assert the(report, "ca-missing").message == (
        "no CA certificate: with peer verification required the device cannot trust the "
        "broker; give --ca with the root CA that signed the broker's certificate"
    )
    problem = the(run({"ca": files["ca"], "cert": files["cert"]}), "key-missing")
    assert (problem.file, problem.message) == (
        str(files["cert"]),
        "a client certificate needs its private key",
    )
    problem = the(run({"ca": files["ca"], "key": files["key"]}), "cert-missing")
    assert (problem.file, problem.message) == (
        str(files["key"]),
        "a private key needs its client certificate",
    )


def test_non_ascii_in_a_pem_header_is_an_error_not_a_crash(
    tmp_path: Path, pki: f.DevicePki
) -> None:
    lines = f.cert_pem(pki.ca_cert).decode().splitlines(keepends=True)
    text = lines[0] + "Comment: Z\u00fcrich root\n" + "".join(lines[1:])
    report = run({"ca": write(tmp_path / "ca.pem", text.encode("utf-8"))})
    problem = the(report, "not-ascii")
    assert (problem.severity, problem.line) == (Severity.ERROR, 2)
    assert b"\xc3" not in report.contents.get(Slot.CA, b"")  # never stored as it was


# --- PEM framing: where and why, exactly ---------------------------------------------------------


def _framing(report) -> list[tuple[int | None, str]]:  # type: ignore[no-untyped-def]
    return [(p.line, p.message) for p in report.problems if p.code in {"pem-framing", "pem-base64"}]


def test_pem_framing_diagnoses_name_the_line(tmp_path: Path, pki: f.DevicePki) -> None:
    pem = f.cert_pem(pki.ca_cert).decode()
    body = pem.splitlines()[1:-1]
    end = len(body) + 2  # the END line's number in a one-block file

    four_dashes = pem.replace("-----BEGIN CERTIFICATE-----", "----BEGIN CERTIFICATE-----")
    report = run({"ca": write(tmp_path / "a.pem", four_dashes)})
    assert _framing(report) == [
        (1, "malformed PEM frame line: it must read exactly '-----BEGIN <LABEL>-----' or "
            "'-----END <LABEL>-----' (five dashes, upper-case label)"),
        (end, "malformed PEM frame line: it must read exactly '-----BEGIN <LABEL>-----' or "
              "'-----END <LABEL>-----' (five dashes, upper-case label)"),
    ]  # fmt: skip

    mismatch = pem.replace("-----END CERTIFICATE-----", "-----END PRIVATE KEY-----")
    report = run({"ca": write(tmp_path / "b.pem", mismatch)})
    assert _framing(report) == [
        (end, "END label 'PRIVATE KEY' does not match BEGIN label 'CERTIFICATE' of line 1")
    ]

    unclosed = "\n".join(pem.splitlines()[:-1]) + "\n" + pem
    report = run({"ca": write(tmp_path / "c.pem", unclosed)})
    assert _framing(report)[0] == (
        end - 1,
        f"truncated: the 'CERTIFICATE' block that begins on line 1 has no END line (the next "
        f"block starts after line {end - 1})",
    )

    empty = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
    report = run({"ca": write(tmp_path / "d.pem", empty)})
    assert _framing(report) == [(1, "the block has no body")]

    accented = pem.splitlines()
    accented[3] = accented[3][:9] + "\u00e9" + accented[3][10:]
    latin1 = ("\n".join(accented) + "\n").encode("latin-1")  # one byte, 0xE9
    report = run({"ca": write(tmp_path / "e.pem", latin1)})
    assert _framing(report) == [
        (4, f"base64 body damaged at column 10: U+00E9 is not a base64 character (body is "
            f"{sum(len(line) for line in body)} characters on {len(body)} lines; it decodes up "
            f"to line 4)"),
    ]  # fmt: skip


def test_a_binary_file_starting_like_der_but_framed_loosely_is_read_as_pem(
    tmp_path: Path, pki: f.DevicePki
) -> None:
    # '0' is 0x30, the first byte of DER: a frame line decides that this is (damaged) PEM text.
    text = "0\n" + f.cert_pem(pki.ca_cert).decode().replace("-----BEGIN", "----BEGIN")
    report = run({"ca": write(tmp_path / "zero.pem", text)})
    assert "der-converted" not in codes(report)
    assert (2, "malformed PEM frame line") in [(ln, m[:24]) for ln, m in _framing(report)]
