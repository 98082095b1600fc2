"""What `-v` shows of the lines a modem (or an AT shell echoing what it was sent) answers.

`at.TraceRedactor` decides, line by line, what a trace may show: a credential written or read
back travels as PEM inside double quotes, possibly echoed behind a prompt. Each test feeds a
fresh redactor the lines of one response and compares every shown line with the text written
out here, so a rule that lets one line too many through (or hides a digest, an IMEI, an OK)
fails.
"""

from __future__ import annotations

from provguard import at

#: What replaces a line (or the rest of a line) that may hold credential content.
HIDDEN = "<redacted: credential content>"


def _shown(lines: list[str], redactor: at.TraceRedactor | None = None) -> list[str]:
    redactor = redactor or at.TraceRedactor()
    return [redactor.line(line) for line in lines]


def test_a_new_redactor_shows_ordinary_answers_unchanged() -> None:
    lines = ["AT+CFUN?", "+CFUN: 4", "OK", "+CME ERROR: 518"]
    assert _shown(lines) == lines


def test_pem_lines_are_hidden_from_begin_through_end() -> None:
    lines = ["-----BEGIN CERTIFICATE-----", "MIIB", "-----END CERTIFICATE-----", "OK"]
    assert _shown(lines) == [HIDDEN, HIDDEN, HIDDEN, "OK"]


def test_a_stray_end_line_is_hidden_and_ends_nothing_else() -> None:
    assert _shown(["-----END PRIVATE KEY-----", "OK"]) == [HIDDEN, "OK"]


def test_begin_and_end_on_one_line_hide_only_that_line() -> None:
    lines = ["echo -----BEGIN A----- MIIB -----END A-----", "OK"]
    assert _shown(lines) == [HIDDEN, "OK"]


def test_the_last_begin_of_a_line_decides_whether_pem_goes_on() -> None:
    # The first block closes on the line, the second opens there and ends two lines later.
    lines = ["-----BEGIN A----- -----END A----- -----BEGIN B-----", "body", "-----END B-----", "OK"]
    assert _shown(lines) == [HIDDEN, HIDDEN, HIDDEN, "OK"]


def test_quoted_content_is_hidden_from_the_open_quote_to_the_closing_line() -> None:
    lines = ['AT%CMNG=0,24,0,"abc', "def", 'ghi"', "OK"]
    assert _shown(lines) == ['AT%CMNG=0,24,0,"' + HIDDEN, HIDDEN, HIDDEN, "OK"]


def test_the_text_up_to_the_last_quote_of_a_line_is_shown() -> None:
    # Three quotes: "a" is a closed string, the third opens the content.
    lines = ['AT%XYZ="a","b', 'c"', "OK"]
    assert _shown(lines) == ['AT%XYZ="a","' + HIDDEN, HIDDEN, "OK"]


def test_a_line_with_an_odd_number_of_quotes_closes_the_quoted_content() -> None:
    lines = ['X="a', 'b" c "d" e', "OK"]
    assert _shown(lines) == ['X="' + HIDDEN, HIDDEN, "OK"]


def test_an_echoed_write_is_hidden_through_the_quote_that_closes_it() -> None:
    lines = [
        'ECHO: AT%CMNG=0,24,0,"-----BEGIN CERTIFICATE-----',
        "MIIB",
        '-----END CERTIFICATE-----"',
        "OK",
    ]
    assert _shown(lines) == [HIDDEN, HIDDEN, HIDDEN, "OK"]


def test_quoted_content_after_the_end_line_stays_hidden_until_the_quote_closes() -> None:
    # PEM allows text after the END line; it is still inside the quoted content. Once with the
    # read-back form (three quotes on the BEGIN line), once with the write form (one).
    digest = "0123456789ABCDEF" * 4
    for first in (
        f'%CMNG: 24,0,"{digest}","-----BEGIN CERTIFICATE-----',
        'AT%CMNG=0,24,0,"-----BEGIN CERTIFICATE-----',
    ):
        lines = [first, "MIIB", "-----END CERTIFICATE-----", "trailing text", '"', "OK"]
        assert _shown(lines) == [HIDDEN] * 5 + ["OK"], first[:12]


def test_a_pem_line_without_quotes_leaves_no_quote_open() -> None:
    lines = ["-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----", "+CFUN: 4", "OK"]
    assert _shown(lines) == [HIDDEN, HIDDEN, "+CFUN: 4", "OK"]


def test_reset_forgets_an_open_quote_and_an_open_pem_block() -> None:
    redactor = at.TraceRedactor()
    for opening in ('AT%CMNG=0,24,0,"abc', "-----BEGIN CERTIFICATE-----"):
        redactor.line(opening)
        redactor.reset()
        assert redactor.line("OK") == "OK", opening


def test_long_base64_runs_are_hidden_but_numbers_and_digests_stay() -> None:
    digest = "a" * 64
    line = f"IMEI 352656100000000 sha {digest} key MIGHAgEAMBMGByqGSM49AgEG"
    assert _shown([line]) == [f"IMEI 352656100000000 sha {digest} key <redacted: 24 chars>"]


def test_runs_are_hidden_from_16_characters_and_a_63_digit_hex_run_is_not_a_digest() -> None:
    line = f"ABCDEFGHIJKLMNO ABCDEFGHIJKLMNOP {'b' * 63}"
    assert _shown([line]) == ["ABCDEFGHIJKLMNO <redacted: 16 chars> <redacted: 63 chars>"]


def test_runs_before_an_open_quote_are_hidden_too() -> None:
    line = 'prompt> MIGHAgEAMBMGByqGSM49AgEG AT%CMNG=0,1,2,"abc'
    assert _shown([line]) == ['prompt> <redacted: 24 chars> AT%CMNG=0,1,2,"' + HIDDEN]
