"""The services' requests and responses."""

from __future__ import annotations

import pytest

from mepgate.c1218.errors import ChecksumError, ServiceError, UnsupportedServiceError
from mepgate.c1218.services import (
    LogonRequest,
    ReadRequest,
    WaitRequest,
    WriteRequest,
    decode_read_response,
    encode_read_response,
    encode_request,
    logon_request,
    parse_request,
    wait_request,
    write_request,
)
from mepgate.proto.codes import ResponseCode


def test_logon_pads_the_user_name() -> None:
    assert logon_request(2, "mepgate") == b"\x50\x00\x02mepgate   "
    assert parse_request(logon_request(2, "mepgate")) == LogonRequest(user_id=2, user="mepgate")


def test_full_read_sends_no_count() -> None:
    assert encode_request(ReadRequest(table_id=0x1C)) == b"\x30\x00\x1c"
    assert parse_request(b"\x30\x00\x1c") == ReadRequest(table_id=0x1C)


def test_partial_write_carries_a_checksum() -> None:
    request = WriteRequest(table_id=7, offset=0, data=b"\x01\x02")
    assert write_request(request) == bytes.fromhex("4f 0007 000000 0002 0102 fd")
    assert parse_request(write_request(request)) == request
    with pytest.raises(ChecksumError):
        parse_request(write_request(request)[:-1] + b"\x00")


def test_read_response_round_trip_and_damage() -> None:
    message = encode_read_response(b"\x10\x20")
    assert message == bytes.fromhex("00 0002 1020 d0")
    assert decode_read_response(message) == b"\x10\x20"
    with pytest.raises(ChecksumError):
        decode_read_response(message[:-1] + b"\x00")


def test_a_refusal_is_a_service_error_in_plain_words() -> None:
    with pytest.raises(ServiceError, match="insufficient security clearance") as info:
        decode_read_response(bytes([ResponseCode.ISC]))
    assert info.value.code is ResponseCode.ISC


def test_wait_and_unknown_service() -> None:
    assert parse_request(wait_request(30)) == WaitRequest(30)
    with pytest.raises(UnsupportedServiceError):
        parse_request(b"\x99")
