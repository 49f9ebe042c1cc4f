"""Digest and RC4 properties (MEP guide appendices A and B)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepgate.proto import LocalProtocolError, Rc4Stream, digest
from mepgate.proto.digest import DigestState, request_digest
from mepgate.proto.rc4 import _Rc4, encrypt_key

keys = st.binary(min_size=16, max_size=20)


@given(keys, st.binary(max_size=600), st.data())
def test_incremental_digest_equals_one_call_for_any_split(
    key: bytes, data: bytes, split: st.DataObject
) -> None:
    cut = split.draw(st.integers(0, len(data)))
    state = DigestState().update(key, data[:cut], end=False)
    assert state.update(key, data[cut:], end=True).value == digest(key, data)


@given(keys, st.binary(min_size=1, max_size=600), st.binary(max_size=100))
def test_request_digest_also_returns_the_state_that_verifies_the_response(
    key: bytes, request: bytes, response: bytes
) -> None:
    mac, state = request_digest(key, request)
    assert mac == digest(key, request)
    assert state.update(key, response, end=True).value == digest(key, request + response) or (
        len(request) % 192 == 0
    )


def test_a_request_that_fills_whole_key_passes_gets_no_zero_padding() -> None:
    key = bytes(range(16))
    body = bytes(range(192))
    mac, state = request_digest(key, body)
    assert mac == digest(key, body) == state.value
    assert DigestState().update(key, body, end=False).update(key, b"", end=True).value != mac


def test_digest_depends_on_every_key_byte_of_the_first_sixteen() -> None:
    data = bytes.fromhex("3F0017000000002C01020304")
    base = digest(bytes(16), data)
    for n in range(16):
        key = bytearray(16)
        key[n] = 0x80
        assert digest(bytes(key), data) != base


def test_a_short_key_is_refused_without_showing_it() -> None:
    with pytest.raises(LocalProtocolError, match="at least 16 bytes") as info:
        digest(b"secretsecret", b"x")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "offset", "expected"),
    [  # RFC 6229 test vectors: key, keystream offset, 16 keystream bytes
        ("0102030405", 0, "b2396305f03dc027ccc3524a0a1118a8"),
        ("0102030405060708090a0b0c0d0e0f10", 0, "9ac7cc9a609d1ef7b2932899cde41b97"),
        ("0102030405060708090a0b0c0d0e0f10", 240, "065902e4b620f6cc36c8589f66432f2b"),
    ],
)
def test_rc4_keystream_matches_rfc6229(key: str, offset: int, expected: str) -> None:
    cipher = _Rc4(bytes.fromhex(key))
    cipher.apply(bytes(offset))
    assert cipher.apply(bytes(16)).hex() == expected


@given(keys, st.binary(min_size=8, max_size=8), st.binary(max_size=500), st.binary(max_size=500))
def test_rc4_applied_twice_is_the_identity_across_request_and_response(
    key: bytes, seed: bytes, request: bytes, response: bytes
) -> None:
    sender = Rc4Stream(key, seed)
    receiver = Rc4Stream(key, seed)
    assert receiver.apply(sender.apply(request)) == request
    assert receiver.apply(sender.apply(response)) == response


def test_response_continues_the_request_keystream() -> None:
    key, seed = bytes([1] * 16), bytes(8)
    one = Rc4Stream(key, seed)
    whole = one.apply(bytes(30))
    two = Rc4Stream(key, seed)
    assert two.apply(bytes(10)) + two.apply(bytes(20)) == whole


def test_encryption_key_uses_the_constant_key() -> None:
    # RC4 keyed with the MEP key, run over the appendix B constant.
    key = bytes([1] * 16)
    constant = bytes.fromhex("388B8FBC36A8558587AFC90FB23A3B99")
    assert encrypt_key(key) == _Rc4(key).apply(constant)
    assert encrypt_key(key) != encrypt_key(bytes([2] * 16))


def test_rc4_stream_does_not_show_its_state() -> None:
    assert "hidden" in repr(Rc4Stream(bytes(16), bytes(8)))
