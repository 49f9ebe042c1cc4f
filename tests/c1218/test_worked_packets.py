"""The worked packets of a documented C12.18 session reproduce byte for byte, both ways."""

from __future__ import annotations

import pytest

from mepgate.c1218.buffer import NEED_DATA, PacketBuffer, PacketReceived
from mepgate.c1218.crc import crc16
from mepgate.c1218.packets import Packet
from mepgate.c1218.services import (
    OK_RESPONSE,
    IdentRequest,
    IdentResponse,
    NegotiateRequest,
    NegotiateResponse,
    Service,
    decode_ident_response,
    decode_negotiate_response,
    decode_ok_response,
    encode_ident_response,
    encode_request,
    parse_request,
)

IDENT_REQUEST = "EE 00 00 00 00 01 20 13 10"
IDENT_RESPONSE = "EE 00 00 00 00 05 00 00 01 00 00 C6 B5"
NEGOTIATE_REQUEST = "EE 00 20 00 00 05 61 04 00 80 06 C2 29"
NEGOTIATE_RESPONSE = "EE 00 20 00 00 05 00 04 00 80 06 35 83"
OK_ALONE = "EE 00 00 00 00 01 00 11 31"


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x906E


def test_crc_of_nothing() -> None:
    assert crc16(b"") == 0x0000


@pytest.mark.parametrize(
    ("wire", "message", "toggle"),
    [
        (IDENT_REQUEST, encode_request(IdentRequest()), False),
        (IDENT_RESPONSE, encode_ident_response(IdentResponse()), False),
        (
            NEGOTIATE_REQUEST,
            encode_request(NegotiateRequest(packet_size=1024, packets=128, bauds=(9600,))),
            True,
        ),
        (
            NEGOTIATE_RESPONSE,
            NegotiateResponse(packet_size=1024, packets=128, baud=9600).to_bytes(),
            True,
        ),
        (OK_ALONE, OK_RESPONSE, False),
    ],
)
def test_worked_packets_encode_and_decode(wire: str, message: bytes, toggle: bool) -> None:
    raw = bytes.fromhex(wire)
    assert Packet(message, toggle).to_bytes() == raw
    assert Packet.parse(raw) == Packet(message, toggle)
    buffer = PacketBuffer()
    buffer.feed(raw)
    assert buffer.next_event() == PacketReceived(Packet(message, toggle), raw)
    assert buffer.next_event() is NEED_DATA


def test_worked_messages_decode_to_their_meaning() -> None:
    assert parse_request(Packet.parse(bytes.fromhex(IDENT_REQUEST)).data) == IdentRequest()
    assert decode_ident_response(Packet.parse(bytes.fromhex(IDENT_RESPONSE)).data) == (
        IdentResponse(standard=0, version=1, revision=0)
    )
    assert parse_request(Packet.parse(bytes.fromhex(NEGOTIATE_REQUEST)).data) == (
        NegotiateRequest(packet_size=1024, packets=128, bauds=(9600,))
    )
    assert decode_negotiate_response(Packet.parse(bytes.fromhex(NEGOTIATE_RESPONSE)).data) == (
        NegotiateResponse(packet_size=1024, packets=128, baud=9600)
    )
    decode_ok_response(Packet.parse(bytes.fromhex(OK_ALONE)).data, Service.LOGON)
