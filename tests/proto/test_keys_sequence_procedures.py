"""Key parsing, client sequence numbers and procedure records."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepgate.proto import (
    ClientSequence,
    InvalidKeyError,
    MepKey,
    ProcedureCall,
    ProcedureResponse,
    ProcedureSequence,
    parse_key,
)
from mepgate.proto.errors import LocalProtocolError, MalformedMessageError
from mepgate.proto.procedures import EP17_REMOVE_MEP_DEVICE, procedure_name, procedure_number

HANDED_OUT = "A1B2C3D4E5F6A7B8C9D0"  # looks like hex, is 20 ASCII characters


def test_the_key_as_handed_out_uses_its_first_16_characters() -> None:
    key = parse_key(HANDED_OUT)
    assert key == b"A1B2C3D4E5F6A7B8"
    assert parse_key("  A1B2C3D4E5F6A7B8 \n") == key


def test_hex_keys_need_the_marker() -> None:
    assert parse_key("hex:" + "01" * 16) == bytes([1] * 16)
    assert parse_key("HEX:" + "41" * 20) == b"A" * 16
    with pytest.raises(InvalidKeyError, match="32 or 40 hex digits"):
        parse_key("hex:0102")


def test_the_key_converted_to_hex_is_refused_with_advice() -> None:
    converted = HANDED_OUT.encode().hex()
    with pytest.raises(InvalidKeyError, match="converted to hex") as info:
        parse_key(converted)
    assert converted not in str(info.value)
    assert "20 characters" in str(info.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("A1B2C3D4E5F6A7B8C9", "has 18 characters"),
        ("A1B2C3D4E5 6A7B8C9D0", "printable ASCII"),
        ("A1B2C3D4E5F6A7B8C9DØ", "printable ASCII"),
    ],
)
def test_wrong_keys_are_explained_without_echoing_them(text: str, why: str) -> None:
    with pytest.raises(InvalidKeyError, match=why) as info:
        parse_key(text)
    if text:
        assert text not in str(info.value)


def test_a_key_never_shows_its_value() -> None:
    key = parse_key(HANDED_OUT)
    assert isinstance(key, MepKey)
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", "{}".format(key)):  # noqa: UP032
        assert "A1B2" not in shown
        assert "hidden" in shown


def test_client_sequence_increments_on_every_request_and_adopts_0x0c() -> None:
    seq = ClientSequence(start=2**32 - 1)
    assert [seq.take(), seq.take()] == [2**32 - 1, 0]
    seq.adopt(0x77635B90)
    assert seq.take() == 0x77635B91  # as in the guide's RC4 example 1
    with pytest.raises(LocalProtocolError):
        seq.adopt(2**32)


def test_procedure_call_matches_the_guide_ep17_example() -> None:
    call = ProcedureCall(number=EP17_REMOVE_MEP_DEVICE, psn=7, parameters=bytes.fromhex("00F803"))
    assert call.to_bytes() == bytes.fromhex("1108 07 00 F803".replace(" ", ""))
    assert ProcedureCall.from_bytes(call.to_bytes()) == call


@given(st.integers(0, 0xFFF), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=50))
def test_procedure_records_round_trip(number: int, psn: int, result: int, data: bytes) -> None:
    response = ProcedureResponse(number=number, psn=psn, result=result, data=data)
    assert ProcedureResponse.from_bytes(response.to_bytes()) == response
    assert response.answers(ProcedureCall(number=number, psn=psn))


def test_procedure_names() -> None:
    assert procedure_number("EP39") == 2087
    assert procedure_number("bp10") == 10
    assert procedure_number("0x0827") == 2087
    assert procedure_name(2087) == "EP39"
    with pytest.raises(LocalProtocolError, match="EP39"):
        procedure_number("post data")
    with pytest.raises(MalformedMessageError):
        ProcedureResponse.from_bytes(b"\x27\x08")
    assert "completed" in ProcedureResponse(number=1, psn=5, result=0).describe()


def test_psn_cycles_5_to_9_and_never_repeats() -> None:
    psn = ProcedureSequence()
    taken = [psn.take() for _ in range(11)]
    assert taken[:6] == [5, 6, 7, 8, 9, 5]
    assert all(a != b for a, b in itertools.pairwise(taken))
