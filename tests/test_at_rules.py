"""The edges of the AT layer's rules, with values taken from the nRF91 AT command reference.

Found by `make mutation MODULE=at`: each test fails for a mutant that every other test let pass
(a rule moved by one, a message a user reads replaced or lost). Expected values are written out
here, not read from provguard's tables.
"""

from __future__ import annotations

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
