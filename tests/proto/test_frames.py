"""Requests and responses round-trip between our client and server roles."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepgate.proto import (
    AccessLevel,
    DigestMismatchError,
    LocalProtocolError,
    MalformedMessageError,
    ReadRequest,
    ResponseCode,
    SequenceWindow,
    WriteRequest,
    check_request,
    decode_response,
    parse_request,
    prepare_request,
)
from mepgate.proto.constants import MAX_MESSAGE
from mepgate.proto.frames import MIN_RESPONSE_BODY, frame
from mepgate.proto.messages import encode_read_reply
from mepgate.proto.server import Accepted, Rejected

MAK = b"MAK-0123456789abcdef"
MBK = b"MBK-fedcba9876543210"
KEYS = {AccessLevel.ADVANCED: MAK, AccessLevel.BASIC: MBK}

table_ids = st.integers(0, 0xFFFF)
offsets = st.integers(0, 0xFFFFFF)
reads = st.builds(
    ReadRequest,
    table_id=table_ids,
    count=st.integers(0, 0xFFFF),
    offset=st.none() | offsets,
)
writes = st.builds(
    WriteRequest, table_id=table_ids, data=st.binary(max_size=200), offset=st.none() | offsets
)
sequences = st.integers(0, 2**32 - 1)
response_codes = st.sampled_from(
    [c for c in ResponseCode if c not in (ResponseCode.OK, ResponseCode.INVALID_SEQUENCE_NUMBER)]
)


@given(reads | writes)
def test_request_messages_round_trip(request: ReadRequest | WriteRequest) -> None:
    assert parse_request(request.to_bytes()) == request


@given(reads | writes, sequences, st.booleans(), st.sampled_from([MAK, MBK]))
def test_a_request_authenticates_with_its_key_and_level(
    request: ReadRequest | WriteRequest, seq: int, encrypt: bool, key: bytes
) -> None:
    exchange = prepare_request(request.to_bytes(), seq, key, encrypt=encrypt)
    verdict = check_request(exchange.frame, KEYS, SequenceWindow(last_accepted=(seq - 1) % 2**32))
    assert isinstance(verdict, Accepted)
    assert verdict.level is (AccessLevel.ADVANCED if key == MAK else AccessLevel.BASIC)
    assert verdict.exchange.message == request.to_bytes()
    assert verdict.exchange.seq == seq
    assert verdict.exchange.encrypted is encrypt


@given(st.binary(max_size=400), sequences, st.booleans())
def test_read_replies_round_trip_plain_and_encrypted(data: bytes, seq: int, encrypt: bool) -> None:
    exchange = prepare_request(ReadRequest(table_id=0x1C).to_bytes(), seq, MBK, encrypt=encrypt)
    verdict = check_request(
        exchange.frame, KEYS, SequenceWindow(last_accepted=seq - 1 & 0xFFFFFFFF)
    )
    assert isinstance(verdict, Accepted)
    wire = verdict.reply(encode_read_reply(data))
    reply = exchange.decode(wire, MBK)
    assert (reply.code, reply.data, reply.encrypted) == (ResponseCode.OK, data, encrypt)
    # The stateless form agrees and can decode the same reply again.
    assert decode_response(wire, exchange.frame, MBK) == reply
    if encrypt and len(data) >= 8:
        assert encode_read_reply(data) not in wire  # nothing travels in the clear


@given(response_codes, sequences, st.booleans())
def test_error_codes_round_trip(code: ResponseCode, seq: int, encrypt: bool) -> None:
    exchange = prepare_request(ReadRequest(table_id=1).to_bytes(), seq, MAK, encrypt=encrypt)
    verdict = check_request(
        exchange.frame, KEYS, SequenceWindow(last_accepted=seq - 1 & 0xFFFFFFFF)
    )
    assert isinstance(verdict, Accepted)
    reply = exchange.decode(verdict.reply(bytes([code])), MAK)
    assert reply.code == code
    assert reply.authenticated


@given(sequences, st.booleans(), st.integers(0, 2**32 - 1))
def test_out_of_window_gets_0x0c_with_the_number_to_continue(
    seq: int, encrypt: bool, last: int
) -> None:
    window = SequenceWindow(last_accepted=last)
    exchange = prepare_request(ReadRequest(table_id=1).to_bytes(), seq, MAK, encrypt=encrypt)
    verdict = check_request(exchange.frame, KEYS, window)
    ahead = (seq - last) % 2**32
    if 1 <= ahead <= 8:
        assert isinstance(verdict, Accepted)
        assert window.last_accepted == seq
        return
    assert isinstance(verdict, Rejected)
    assert verdict.code == ResponseCode.INVALID_SEQUENCE_NUMBER
    reply = exchange.decode(verdict.reply, MAK)
    assert reply.next_sequence == (last + 1) % 2**32
    assert reply.encrypted is encrypt  # 0x0C is encrypted like the request (appendix B)


def test_a_repeat_is_refused_and_the_window_spans_eight() -> None:
    window = SequenceWindow(last_accepted=100)
    assert not window.accepts(100)
    assert [window.accepts(100 + n) for n in range(1, 10)] == [True] * 8 + [False]
    wrapping = SequenceWindow(last_accepted=2**32 - 2)
    assert wrapping.accept(3)  # 5 ahead across the wrap
    assert wrapping.last_accepted == 3


def test_digest_is_checked_before_the_sequence_number() -> None:
    window = SequenceWindow(last_accepted=500)
    # a wrong key and a repeated sequence number
    exchange = prepare_request(ReadRequest(table_id=1).to_bytes(), 500, b"W" * 20)
    verdict = check_request(exchange.frame, KEYS, window)
    assert isinstance(verdict, Rejected)
    assert verdict.code == ResponseCode.AUTHENTICATION_FAILURE
    assert verdict.reply[2] == ResponseCode.AUTHENTICATION_FAILURE
    assert window.last_accepted == 500  # nothing accepted
    reply = exchange.decode(verdict.reply, b"W" * 20)
    assert reply.code == ResponseCode.AUTHENTICATION_FAILURE
    assert not reply.authenticated


def test_auth_failure_reply_to_an_encrypted_request_is_plain() -> None:
    exchange = prepare_request(ReadRequest(table_id=1).to_bytes(), 7, b"W" * 20, encrypt=True)
    verdict = check_request(exchange.frame, KEYS, SequenceWindow(last_accepted=6))
    assert isinstance(verdict, Rejected)
    assert exchange.decode(verdict.reply, b"W" * 20).code == ResponseCode.AUTHENTICATION_FAILURE


@given(st.data(), st.booleans())
def test_any_corrupted_reply_is_never_returned_as_data(data: st.DataObject, encrypt: bool) -> None:
    exchange = prepare_request(ReadRequest(table_id=0x1C).to_bytes(), 9, MAK, encrypt=encrypt)
    verdict = check_request(exchange.frame, KEYS, SequenceWindow(last_accepted=8))
    assert isinstance(verdict, Accepted)
    good = verdict.reply(encode_read_reply(bytes(range(40))))
    position = data.draw(st.integers(2, len(good) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(good)
    bad[position] ^= flip
    with pytest.raises((DigestMismatchError, MalformedMessageError)):
        exchange.decode(bytes(bad), MAK)


def test_a_reply_to_another_request_does_not_verify() -> None:
    first = prepare_request(ReadRequest(table_id=0x1C).to_bytes(), 1, MAK)
    second = prepare_request(ReadRequest(table_id=0x1C).to_bytes(), 2, MAK)
    verdict = check_request(first.frame, KEYS, SequenceWindow(last_accepted=0))
    assert isinstance(verdict, Accepted)
    with pytest.raises(DigestMismatchError, match="resend"):
        second.decode(verdict.reply(encode_read_reply(b"abc")), MAK)


def test_size_limits_are_enforced_on_both_sides() -> None:
    biggest = b"\x30" + bytes(MAX_MESSAGE - 12 - 1)
    assert len(prepare_request(biggest, 0, MAK).frame) == 2 + MAX_MESSAGE
    with pytest.raises(LocalProtocolError, match="at most 476"):
        prepare_request(biggest + b"x", 0, MAK)
    with pytest.raises(MalformedMessageError):
        prepare_request(b"\x30\x00\x01\x02\x00", 0, MAK).decode(
            b"\x01\xff" + bytes(MIN_RESPONSE_BODY), MAK
        )
    with pytest.raises(LocalProtocolError):
        prepare_request(b"", 0, MAK)
    with pytest.raises(LocalProtocolError):
        prepare_request(b"\x30", 2**32, MAK)
    assert frame(b"") == b"\x00\x00"


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (b"", "empty"),
        (b"\x99\x00\x01", "unknown request code 0x99"),
        (b"\x3f\x00\x01\x00", "header needs 8"),
        (b"\x30\x00\x01\x02\x00\x00", "trailing"),
        (b"\x40\x00\x07\x00\x05\x01", "announces 5 data bytes but carries 1"),
    ],
)
def test_malformed_requests_say_what_is_wrong(message: bytes, why: str) -> None:
    with pytest.raises(MalformedMessageError, match=why):
        parse_request(message)


def test_request_field_ranges_are_checked() -> None:
    with pytest.raises(LocalProtocolError):
        ReadRequest(table_id=0x10000)
    with pytest.raises(LocalProtocolError):
        ReadRequest(table_id=1, offset=1 << 24)
    assert ReadRequest(table_id=0x1C).to_bytes() == bytes.fromhex("30001C0200")
    assert ReadRequest(table_id=0x17, offset=0, count=13).to_bytes() == bytes.fromhex(
        "3F0017000000000D"
    )
    assert WriteRequest(table_id=0x832, offset=0x1E, data=b"\x01").to_bytes() == bytes.fromhex(
        "4F083200001E000101"
    )
