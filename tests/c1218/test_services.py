"""The services' requests and responses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mepgate.c1218.errors import (
    ChecksumError,
    MessageError,
    ServiceError,
    UnsupportedServiceError,
)
from mepgate.c1218.services import (
    OK_RESPONSE,
    IdentResponse,
    LogonRequest,
    NegotiateRequest,
    NegotiateResponse,
    ReadRequest,
    Service,
    WaitRequest,
    WriteRequest,
    checksum,
    decode_ident_response,
    decode_negotiate_response,
    decode_ok_response,
    decode_read_response,
    encode_read_response,
    encode_request,
    logon_request,
    parse_request,
    response_code,
    security_request,
    service_of,
    wait_request,
    write_request,
)
from mepgate.errors import LocalProtocolError
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


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"", "empty request"),
        (b"\x20\x00", "ident request of 2 bytes"),
        (b"\x21\x00", "terminate request of 2 bytes"),
        (b"\x52\x00", "logoff request of 2 bytes"),
        (b"\x61\x00\x40\x01", "negotiate request of 4 bytes"),
        (b"\x60\x00\x08\x01", "at least 9 bytes"),
        (b"\x60\x00\x40\x00", "at least one packet"),
        (b"\x61\x00\x40\x01\x0f", "unknown baud codes 0x0F"),
        (b"\x50\x00\x01" + b"x" * 9, "logon request of 12 bytes"),
        (b"\x51" + bytes(19), "security request of 20 bytes"),
        (b"\x70", "wait request of 1 bytes"),
        (b"\x30\x00", "full read request of 2 bytes"),
        (b"\x3f\x00\x01\x00\x00\x00\x00", "partial_read request of 7 bytes"),
        (b"\x40\x00\x01\x00", "header needs 5"),
        (b"\x40\x00\x01\x00\x02\x01\xff", "announces 2 data bytes but carries 1"),
    ],
)
def test_inconsistent_requests_are_message_errors(message: bytes, problem: str) -> None:
    with pytest.raises(MessageError, match=problem):
        parse_request(message)


def test_mep_style_full_read_is_accepted() -> None:
    assert parse_request(b"\x30\x00\x17\x00\x10") == ReadRequest(table_id=0x17)


def test_negotiate_codes_and_bauds() -> None:
    assert Service.of_code(0x6B) is Service.NEGOTIATE
    with pytest.raises(UnsupportedServiceError) as info:
        Service.of_code(0x6C)
    assert info.value.code == 0x6C
    request = NegotiateRequest(packet_size=64, packets=2, bauds=(9600, 19200))
    assert encode_request(request) == bytes.fromhex("62 0040 02 06 08")
    assert service_of(request) is Service.NEGOTIATE
    with pytest.raises(LocalProtocolError, match="no C12\\.18 code"):
        NegotiateRequest(packet_size=64, packets=1, bauds=(9601,))
    with pytest.raises(LocalProtocolError, match="at most 11"):
        NegotiateRequest(packet_size=64, packets=1, bauds=(9600,) * 12)


def test_negotiate_response_without_a_rate() -> None:
    assert decode_negotiate_response(b"\x00\x00\x40\x02") == NegotiateResponse(
        packet_size=64, packets=2, baud=None
    )
    with pytest.raises(MessageError, match="unknown baud code"):
        decode_negotiate_response(b"\x00\x00\x40\x02\x00")
    with pytest.raises(MessageError, match="cannot carry"):
        decode_negotiate_response(b"\x00\x00\x04\x02\x06")


def test_ident_response_needs_its_end_of_list() -> None:
    assert decode_ident_response(b"\x00\x00\x01\x00\x00") == IdentResponse()
    with pytest.raises(MessageError, match="ending with 0x00"):
        decode_ident_response(b"\x00\x00\x01\x00\x01")
    with pytest.raises(MessageError, match="ending with 0x00"):
        decode_ident_response(b"\x00\x00\x01")


def test_read_response_count_must_match() -> None:
    with pytest.raises(MessageError, match="announces 3 bytes"):
        decode_read_response(bytes.fromhex("00 0003 1020 d0"))
    with pytest.raises(MessageError, match="at least 4"):
        decode_read_response(b"\x00\x00")


def test_ok_response_with_trailing_bytes() -> None:
    decode_ok_response(OK_RESPONSE, Service.SECURITY)
    with pytest.raises(MessageError, match="1 bytes after ok"):
        decode_ok_response(b"\x00\x00", Service.SECURITY)
    with pytest.raises(MessageError, match="empty response"):
        decode_ok_response(b"", Service.SECURITY)


def test_unknown_response_codes_are_kept_raw() -> None:
    assert response_code(b"\x42") == 0x42
    with pytest.raises(ServiceError, match="unknown response code 0x42"):
        decode_ok_response(b"\x42", Service.WAIT)


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: LogonRequest(user_id=1, user="x" * 11), "at most 10 ASCII"),
        (lambda: LogonRequest(user_id=1, user="Ø"), "at most 10 ASCII"),
        (lambda: LogonRequest(user_id=0x10000, user="x"), "user id"),
        (lambda: security_request(bytes(19)), "20 bytes"),
        (lambda: WaitRequest(256), "wait seconds"),
        (lambda: encode_read_response(bytes(0x10000)), "at most 65535"),
        (lambda: IdentResponse(version=256), "version"),
    ],
)
def test_impossible_requests_are_refused(build: Callable[[], object], problem: str) -> None:
    with pytest.raises(LocalProtocolError, match=problem):
        build()


def test_checksum_is_the_twos_complement_of_the_sum() -> None:
    assert checksum(b"") == 0
    assert checksum(b"\x01\x02") == 0xFD
    assert (sum(b"\xff\x80") + checksum(b"\xff\x80")) & 0xFF == 0


def test_every_service_and_code_has_words() -> None:
    assert all(service.describe() for service in Service)
    for code in ResponseCode:
        assert code.describe_c1218()
    assert "isss" in ResponseCode.ISSS.describe_c1218()
    assert ResponseCode["ISC"] is ResponseCode.NO_PERMISSION
