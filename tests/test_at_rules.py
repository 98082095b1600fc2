"""The edges of the AT layer's rules, with values taken from the nRF91 AT command reference.

Found by `make mutation MODULE=at`: each test fails for a mutant that every other test let pass
(a rule moved by one, a message a user reads replaced or lost). Expected values are written out
here, not read from provguard's tables.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from functools import partial

import pytest

from provguard import at
from provguard.errors import InputError

CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#: The user range of sec_tags in the %CMNG reference: 0 to 2^31 - 1.
LAST_USER_TAG = 2**31 - 1


@pytest.mark.parametrize("sec_tag", [0, 1, LAST_USER_TAG])
def test_every_tag_of_the_user_range_is_accepted(sec_tag: int) -> None:
    assert at.cmng_write(sec_tag, 0, CERT).text.startswith(f"AT%CMNG=0,{sec_tag},0,")
    assert at.cmng_list(sec_tag).text == f"AT%CMNG=1,{sec_tag}"
    assert at.cmng_delete(sec_tag, 2).text == f"AT%CMNG=3,{sec_tag},2"


@pytest.mark.parametrize("sec_tag", [-1, LAST_USER_TAG + 1])
def test_tags_just_outside_the_user_range_are_refused(sec_tag: int) -> None:
    message = f"sec_tag {sec_tag} is outside the user range 0-2147483647"
    builders: tuple[Callable[[], at.AtCommand], ...] = (
        partial(at.cmng_write, sec_tag, 0, CERT),
        partial(at.cmng_list, sec_tag),
        partial(at.cmng_delete, sec_tag, 0),
    )
    for build in builders:
        with pytest.raises(InputError) as refused:
            build()
        assert str(refused.value) == message


def test_listing_everything_is_the_bare_list_command() -> None:
    assert at.cmng_list().text == "AT%CMNG=1"


def test_functional_mode_zero_is_valid_and_negative_modes_are_refused() -> None:
    assert at.cfun_set(0).text == "AT+CFUN=0"
    with pytest.raises(InputError) as refused:
        at.cfun_set(-1)
    assert str(refused.value) == "functional mode -1 is not a valid AT+CFUN mode"


@pytest.mark.parametrize("byte", [0x20, 0x7E, 0x0A])
def test_printable_ascii_and_lf_can_be_quoted(byte: int) -> None:
    content = b"-----BEGIN CERTIFICATE-----" + bytes([byte]) + b"MIIB\n"
    assert at.cmng_write(5, 0, content).text == f'AT%CMNG=0,5,0,"{content.decode()}"'


@pytest.mark.parametrize(
    ("byte", "label", "cred_type"),
    [
        (0x7F, "CA certificate", 0),  # DEL: the first byte above printable ASCII
        (0x1F, "client certificate", 1),  # the last control character below the space
        (0x80, "private key", 2),
    ],
)
def test_unquotable_byte_is_named_with_its_offset_and_the_credential(
    byte: int, label: str, cred_type: int
) -> None:
    content = b"AB" + bytes([byte]) + b"\n"
    with pytest.raises(InputError) as refused:
        at.cmng_write(5, cred_type, content)
    assert str(refused.value) == (
        f"{label}: byte 0x{byte:02x} at offset 2 cannot be sent in an AT command "
        "(only printable ASCII and LF line endings are accepted)"
    )


def test_a_caller_name_for_the_content_replaces_the_type_label() -> None:
    with pytest.raises(InputError) as refused:
        at.cmng_write(5, 0, b'"', what="certs/ca.pem")
    assert str(refused.value) == (
        "certs/ca.pem: a double quote at byte 0 cannot be sent inside an AT string"
    )


def test_write_summary_names_type_size_and_the_first_16_digest_characters() -> None:
    digest = hashlib.sha256(CERT).hexdigest().upper()
    command = at.cmng_write(42, 0, CERT)
    assert command.summary == (
        f'AT%CMNG=0,42,0,"<CA certificate: {len(CERT)} bytes, SHA-256 {digest[:16]}…>"'
    )


def test_unknown_credential_type_is_named_by_its_number() -> None:
    assert at.type_label(7) == "type 7"
    command = at.cmng_write(42, 7, CERT)
    assert '"<type 7: ' in command.summary


def test_final_results_are_described_for_the_user() -> None:
    assert at.Final(ok=True).describe() == "OK"
    assert at.Final(ok=False, text="ERROR").describe() == (
        "ERROR (no error code: extended error codes are off, or the command is not supported)"
    )


def test_information_lines_keep_their_text_apart_from_the_line_ending() -> None:
    # AT%CMNG=2 content is compared byte for byte with what was written: nothing may be trimmed.
    response = at.parse_response("%CMNG: 1,0,X \r\nMIIBX\r\nOK\r\n")
    assert response.lines == ("%CMNG: 1,0,X ", "MIIBX")


def test_response_without_final_result_code_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"^response has no final result code$"):
        at.parse_response("+CFUN: 4\r\n")


def test_cfun_answer_without_mode_line_says_what_was_expected() -> None:
    response = at.parse_response("\r\nOK\r\n")
    with pytest.raises(at.UnexpectedResponseError) as refused:
        at.parse_cfun(response)
    assert str(refused.value) == "the answer to AT+CFUN? has no '+CFUN: <mode>' line"


def test_malformed_cmng_list_line_says_what_was_expected() -> None:
    response = at.parse_response("%CMNG: 16842753\r\nOK\r\n")
    with pytest.raises(at.UnexpectedResponseError) as refused:
        at.parse_cmng_list(response)
    assert (
        str(refused.value) == "a %CMNG line of the list is not '%CMNG: <sec_tag>,<type>,\"<sha>\"'"
    )


# -- final result codes: the five-digit and 80-character rules -----------------------------------


def test_a_five_digit_error_code_is_read() -> None:
    assert at.final_result("+CME ERROR: 99999") == at.Final(
        ok=False, code=99999, text="+CME ERROR: 99999"
    )


@pytest.mark.parametrize("prefix", ["+CME ERROR:", "+CMS ERROR:"])
def test_a_six_digit_error_code_is_not_an_answer_of_the_modem(prefix: str) -> None:
    with pytest.raises(at.UnexpectedResponseError) as refused:
        at.final_result(f"{prefix} 100000")
    assert str(refused.value) == (
        f"the device answered '{prefix}' with a 6-digit code: "
        "not an error code of an nRF91 AT interface"
    )


def test_result_codes_are_read_without_surrounding_white_space() -> None:
    assert at.final_result("  OK \r") == at.Final(ok=True, code=None, text="OK")
    assert at.final_result(" ERROR\r") == at.Final(ok=False, code=None, text="ERROR")
    assert at.final_result("\t+CME ERROR: 518 \r") == at.Final(
        ok=False, code=518, text="+CME ERROR: 518"
    )


def test_an_error_line_of_80_characters_is_kept_whole_and_a_longer_one_is_cut() -> None:
    eighty = "+CME ERROR: 518," + "x" * 64
    assert len(eighty) == 80
    final = at.final_result(eighty)
    assert final is not None
    assert (final.code, final.text) == (518, eighty)
    longer = at.final_result(eighty + "y")
    assert longer is not None
    assert (longer.code, longer.text) == (518, "+CME ERROR: 518," + "x" * 64 + "…")


def test_a_refusal_names_the_command_the_answer_and_the_meaning() -> None:
    final = at.Final(ok=False, code=518, text="+CME ERROR: 518")
    error = at.ModemError(at.CFUN_READ, final)
    assert str(error) == (
        "AT+CFUN?: the modem refused it: +CME ERROR: 518 "
        "(not allowed while the modem is online: set the offline mode first (AT+CFUN=4))"
    )
    assert (error.command, error.final, error.code) == (at.CFUN_READ, final, 518)


# -- reading a credential back (AT%CMNG=2) ---------------------------------------------------------


def test_read_command_names_tag_and_type_and_refuses_tags_outside_the_range() -> None:
    assert at.cmng_read(LAST_USER_TAG, 1).text == "AT%CMNG=2,2147483647,1"
    assert str(at.cmng_read(0, 0)) == "AT%CMNG=2,0,0"
    with pytest.raises(InputError) as refused:
        at.cmng_read(LAST_USER_TAG + 1, 0)
    assert str(refused.value) == "sec_tag 2147483648 is outside the user range 0-2147483647"


def test_read_answer_gives_tag_type_upper_case_digest_and_multi_line_content() -> None:
    digest = hashlib.sha256(CERT).hexdigest()  # lower case, as another modem might list it
    response = at.parse_response(f'%CMNG: 24,0,"{digest}","{CERT.decode()}"\r\nOK\r\n')
    assert at.parse_cmng_read(response) == at.ReadCredential(
        24, 0, digest.upper(), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    )


def test_read_answer_may_follow_a_notification() -> None:
    digest = "AB" * 32
    response = at.parse_response(f'+CEREG: 2\r\n%CMNG: 7,1,"{digest}","MIIB"\r\nOK\r\n')
    assert at.parse_cmng_read(response) == at.ReadCredential(7, 1, digest, "MIIB")


def test_read_answer_starts_at_the_first_cmng_line() -> None:
    # Content is free text to the last quote: a later "%CMNG:" inside it is content.
    first, second = "A" * 64, "B" * 64
    inner = f'%CMNG: 9,1,"{second}","x'
    response = at.parse_response(f'%CMNG: 24,0,"{first}","note\r\n{inner}"\r\nOK\r\n')
    assert at.parse_cmng_read(response) == at.ReadCredential(24, 0, first, f"note\n{inner}")


@pytest.mark.parametrize(
    "raw",
    ["OK\r\n", "+CEREG: 2\r\nOK\r\n", "%CMNG: 24,0\r\nOK\r\n", '%CMNG: 24,0,"AB","x"\r\nOK\r\n'],
)
def test_read_answer_in_another_form_says_what_was_expected(raw: str) -> None:
    with pytest.raises(at.UnexpectedResponseError) as refused:
        at.parse_cmng_read(at.parse_response(raw))
    assert str(refused.value) == (
        'the answer to AT%CMNG=2 is not \'%CMNG: <sec_tag>,<type>,"<sha>","<content>"\''
    )


# -- --timeout ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("2.5", 2.5), ("600", 600.0), ("1e-3", 0.001)])
def test_timeout_argument_gives_the_seconds(text: str, seconds: float) -> None:
    assert at.timeout_argument(text) == seconds


@pytest.mark.parametrize(("text", "shown"), [("0", "0.0"), ("600.5", "600.5"), ("nan", "nan")])
def test_timeout_argument_out_of_range_says_the_range(text: str, shown: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        at.timeout_argument(text)
    assert str(refused.value) == (
        f"timeout {shown}: give a number of seconds greater than 0 and at most 600"
    )


def test_timeout_argument_that_is_no_number_is_quoted_up_to_40_characters() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        at.timeout_argument("ten")
    assert str(refused.value) == "not a number of seconds: 'ten'"
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        at.timeout_argument("s" * 40 + "TAIL")
    assert str(refused.value) == "not a number of seconds: '" + "s" * 40 + "'"
