"""The MEP guide's worked examples, byte for byte (chapter 2 "RC4 MEP Example Messages" and
chapter 4 "Calling Procedures" example); all use the default MAK of sixteen 0x01 bytes."""

from __future__ import annotations

from mepgate.proto import (
    ResponseCode,
    SequenceWindow,
    check_request,
    decode_response,
    digest,
    encode_request,
)
from mepgate.proto.server import Accepted, AccessLevel, Rejected

KEY = bytes([0x01] * 16)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


EX1_FIRST_REQUEST = h("00 14 3f 00 17 00 00 00 00 2C 01 02 03 04 74 86 1F 6D 76 58 DD 56")
EX1_SEQ_REPLY = h("00 0D 0C 77 63 5B 90 35 86 3C 1D F5 B9 14 82")
EX1_SECOND_REQUEST = h("00 14 3F 00 17 00 00 00 00 2C 77 63 5B 91 13 DB 85 A1 35 A0 57 5E")
EX1_BT23_DATA = h(
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 08 00 00 00 03 00 00"
    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 06 00 00 00"
)
EX1_DATA_REPLY = h("00 37 00 00 2C") + EX1_BT23_DATA + h("AD DC B8 2C 3D 41 7F 91")
EX2_WRITE_REQUEST = h("00 15 4F 08 32 00 00 1E 00 01 01 77 63 6e 2f 86 e5 0e 26 67 d1 e6 3c")
EX2_WRITE_REPLY = h("00 09 00 86 e5 0e 26 67 d1 e6 3c")
EP17_REQUEST = h("00 17 40 00 07 00 06 11 08 07 00 F8 03 5B 4E 43 09 69 7A B2 01 49 7E 9C F7")
EP17_REPLY = h("00 09 00 69 7A B2 01 49 7E 9C F7")


def test_example1_first_request_is_reproduced() -> None:
    assert encode_request(h("3F 0017 000000 002C"), 0x01020304, KEY) == EX1_FIRST_REQUEST


def test_example1_sequence_reply_decodes_with_the_number_to_continue_from() -> None:
    reply = decode_response(EX1_SEQ_REPLY, EX1_FIRST_REQUEST, KEY)
    assert reply.code == ResponseCode.INVALID_SEQUENCE_NUMBER
    assert reply.next_sequence == 0x77635B90


def test_example1_second_request_is_reproduced() -> None:
    assert encode_request(h("3F 0017 000000 002C"), 0x77635B91, KEY) == EX1_SECOND_REQUEST


def test_example1_data_reply_decodes_to_the_44_table_bytes() -> None:
    reply = decode_response(EX1_DATA_REPLY, EX1_SECOND_REQUEST, KEY)
    assert reply.code == ResponseCode.OK
    assert reply.data == EX1_BT23_DATA
    assert len(reply.data) == 0x2C


def test_example2_write_request_and_reply_are_reproduced() -> None:
    assert encode_request(h("4F 0832 00001E 0001 01"), 0x77636E2F, KEY) == EX2_WRITE_REQUEST
    reply = decode_response(EX2_WRITE_REPLY, EX2_WRITE_REQUEST, KEY)
    assert reply.code == ResponseCode.OK
    assert reply.data == b""


def test_ep17_procedure_write_and_reply_are_reproduced() -> None:
    assert encode_request(h("40 0007 0006 1108 07 00 F803"), 0x5B4E4309, KEY) == EP17_REQUEST
    assert decode_response(EP17_REPLY, EP17_REQUEST, KEY).code == ResponseCode.OK


def test_a_server_reproduces_the_meter_side_of_example1() -> None:
    """Our server role, seeded where the guide's meter was, sends the guide's bytes."""
    window = SequenceWindow(last_accepted=0x77635B8F)
    keys = {AccessLevel.ADVANCED: KEY}
    rejected = check_request(EX1_FIRST_REQUEST, keys, window)
    assert isinstance(rejected, Rejected)
    assert rejected.reply == EX1_SEQ_REPLY
    accepted = check_request(EX1_SECOND_REQUEST, keys, window)
    assert isinstance(accepted, Accepted)
    assert accepted.level is AccessLevel.ADVANCED
    assert accepted.reply(h("00 002C") + EX1_BT23_DATA) == EX1_DATA_REPLY


def test_digest_of_the_request_alone_matches_example1() -> None:
    assert digest(KEY, h("3F 0017 000000 002C 01020304")) == EX1_FIRST_REQUEST[-8:]
    # Only the first 16 key bytes count: a 20-byte key with any tail gives the same digest.
    assert digest(KEY + b"tail", h("3F 0017 000000 002C 01020304")) == EX1_FIRST_REQUEST[-8:]
