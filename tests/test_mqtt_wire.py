"""The bytes `provguard probe` puts on the wire and how it reads HOST:PORT, checked against the
MQTT 3.1.1 specification (OASIS, sections 2.2.3 and 3.1) rather than against provguard.

Found by `make mutation MODULE=probe`: mutants of the remaining-length encoding, the client id
limit and the endpoint parser's messages passed every other test.
"""

from __future__ import annotations

import pytest

from provguard.errors import UsageError
from provguard.probe import (
    Endpoint,
    _remaining_length,
    connect_packet,
    parse_connack,
    parse_endpoint,
)


@pytest.mark.parametrize(
    ("length", "encoded"),
    [  # MQTT 3.1.1 table 2.4: the edges of each number of bytes
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2097151, b"\xff\xff\x7f"),
        (2097152, b"\x80\x80\x80\x01"),
        (268435455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_is_the_spec_s_variable_length_integer(
    length: int, encoded: bytes
) -> None:
    assert _remaining_length(length) == encoded


@pytest.mark.parametrize(("id_length", "header"), [(115, b"\x10\x7f"), (116, b"\x10\x80\x01")])
def test_connect_header_across_one_and_two_length_bytes(id_length: int, header: bytes) -> None:
    # Remaining length = 10 (variable header) + 2 (id length) + the id: 127, then 128.
    packet = connect_packet("c" * id_length, keepalive=60)
    assert packet[: len(header)] == header
    assert len(packet) == len(header) + 12 + id_length


def test_connect_packet_bytes() -> None:
    packet = connect_packet("nrf-352656100367872", keepalive=300)
    ident = b"nrf-352656100367872"
    variable = b"\x00\x04MQTT" + b"\x04" + b"\x02" + b"\x01\x2c"  # level 4, clean session, 300 s
    payload = b"\x00\x13" + ident  # 19 bytes, big-endian length
    assert packet == b"\x10" + bytes([len(variable) + len(payload)]) + variable + payload


def test_a_client_id_at_the_mqtt_limit_is_sent_and_one_byte_more_is_refused() -> None:
    longest = "i" * 65535
    packet = connect_packet(longest)
    assert packet.endswith(b"\xff\xff" + longest.encode())
    with pytest.raises(UsageError) as refused:
        connect_packet(longest + "i")
    assert str(refused.value) == "the client id is longer than MQTT allows (65535 bytes)"


def test_a_client_id_that_is_not_text_is_refused() -> None:
    with pytest.raises(UsageError) as refused:
        connect_packet("dev\udcff")  # a byte that was not UTF-8 on the command line
    assert str(refused.value) == "the client id is not valid UTF-8 text"


@pytest.mark.parametrize("packet", [b"\x20\x02\x00", b"\x30\x02\x00\x00", b"\x20\x03\x00\x00"])
def test_anything_but_a_connack_is_refused(packet: bytes) -> None:
    with pytest.raises(ValueError, match=r"^not a CONNACK$"):
        parse_connack(packet)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("broker.example.com", "broker.example.com", 8883),  # MQTT over TLS, IANA port 8883
        ("broker.example.com:1", "broker.example.com", 1),
        ("broker.example.com:65535", "broker.example.com", 65535),
        ("[::1]:8884", "::1", 8884),
        ("[::1]", "::1", 8883),
    ],
)
def test_endpoints_users_write(text: str, host: str, port: int) -> None:
    assert parse_endpoint(text) == Endpoint(host, port)


def test_an_endpoint_is_shown_as_it_is_written() -> None:
    assert str(Endpoint("::1", 8884)) == "[::1]:8884"
    assert str(Endpoint("broker.example.com", 8883)) == "broker.example.com:8883"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[::1", "missing ']' after an IPv6 address"),
        ("[::1]8883", "expected ':PORT' after ']'"),
        ("[::1]]:8883", "expected ':PORT' after ']'"),
        ("fe80::1:8883", "write an IPv6 address in brackets: [ADDRESS]:PORT"),
        (":8883", "no host name"),
        ("broker:0", "the port must be a number from 1 to 65535"),
        ("broker:65536", "the port must be a number from 1 to 65535"),
        ("broker:000080", "the port must be a number from 1 to 65535"),  # six digits
        (
            "broker:\uff18\uff18\uff18\uff13",
            "the port must be a number from 1 to 65535",
        ),  # fullwidth
    ],
)
def test_endpoints_that_cannot_be_used_say_why(text: str, why: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_endpoint(text)
    assert str(refused.value) == f"{text!r}: {why}"


def test_a_long_bad_endpoint_is_quoted_only_in_part() -> None:
    text = "broker:" + "9" * 200
    with pytest.raises(UsageError) as refused:
        parse_endpoint(text)
    assert str(refused.value) == f"{text[:80]!r}: the port must be a number from 1 to 65535"


def test_a_long_endpoint_with_a_port_out_of_range_is_quoted_only_in_part() -> None:
    host = "b" * 63 + "." + "e" * 30  # a valid 94-character host name
    text = f"{host}:65536"
    with pytest.raises(UsageError) as refused:
        parse_endpoint(text)
    assert str(refused.value) == f"'{host[:80]}': the port must be a number from 1 to 65535"
