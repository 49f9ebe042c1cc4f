"""The MEP PSK identity and key helpers (guide ch. 2, "PSK Identity Hint")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepgate.errors import LocalProtocolError, RemoteProtocolError
from mepgate.tls import KeyId, PskIdentity, PskIdentityError, psk_from_mep_key
from mepgate.tls._records import client_psk_identity, plaintext_alert

# The client's second flight in the guide's TLS Example 1 (ClientKeyExchange, ChangeCipherSpec,
# start of the encrypted Finished).
GUIDE_CLIENT_KEY_EXCHANGE = bytes.fromhex("16030300091000000500036400011403030001011603030028")


def test_guide_identity_encodes_client_id_lsb_first_then_key_id() -> None:
    identity = PskIdentity(client_id=100, key_id=KeyId.MAK)
    assert identity.to_bytes() == bytes.fromhex("640001")


def test_guide_identity_decodes() -> None:
    assert PskIdentity.from_bytes(bytes.fromhex("640001")) == PskIdentity(100, KeyId.MAK)
    assert PskIdentity.from_bytes(bytes.fromhex("341200")) == PskIdentity(0x1234, KeyId.MBK)


@given(st.integers(0, 0xFFFF), st.sampled_from(KeyId))
def test_identity_round_trips(client_id: int, key_id: KeyId) -> None:
    identity = PskIdentity(client_id, key_id)
    encoded = identity.to_bytes()
    assert len(encoded) == 3
    assert PskIdentity.from_bytes(encoded) == identity


@pytest.mark.parametrize("data", [b"", b"\x64\x00", b"\x64\x00\x01\x00"])
def test_identity_of_wrong_length_is_rejected(data: bytes) -> None:
    with pytest.raises(PskIdentityError, match="3 bytes long"):
        PskIdentity.from_bytes(data)


def test_identity_naming_unknown_key_is_rejected() -> None:
    with pytest.raises(PskIdentityError, match="key id 2") as info:
        PskIdentity.from_bytes(b"\x64\x00\x02")
    assert isinstance(info.value, RemoteProtocolError)


@pytest.mark.parametrize("client_id", [-1, 0x10000])
def test_client_id_must_fit_16_bits(client_id: int) -> None:
    with pytest.raises(LocalProtocolError, match="16-bit"):
        PskIdentity(client_id, KeyId.MBK)


def test_sendable_means_utf8_identity_bytes() -> None:
    assert PskIdentity(100, KeyId.MBK).sendable
    assert PskIdentity(0x7F7F, KeyId.MAK).sendable
    assert not PskIdentity(0x00C8, KeyId.MAK).sendable  # C8 00: not UTF-8
    assert PskIdentity(0x80C2, KeyId.MAK).sendable  # C2 80: the UTF-8 encoding of U+0080


def test_psk_is_first_16_bytes_of_a_20_byte_key() -> None:
    key = bytes(range(20))
    assert psk_from_mep_key(key) == bytes(range(16))
    assert psk_from_mep_key(bytes(range(16))) == bytes(range(16))


@pytest.mark.parametrize("length", [0, 15, 21])
def test_psk_rejects_keys_of_other_lengths_without_echoing_them(length: int) -> None:
    key = bytes([0xA5]) * length
    with pytest.raises(LocalProtocolError, match=f"got {length} bytes") as info:
        psk_from_mep_key(key)
    assert "a5" not in str(info.value).lower()


def test_records_read_identity_from_guide_client_key_exchange() -> None:
    assert client_psk_identity(GUIDE_CLIENT_KEY_EXCHANGE) == bytes.fromhex("640001")
    assert client_psk_identity(GUIDE_CLIENT_KEY_EXCHANGE[:10]) is None


def test_records_read_plaintext_alert() -> None:
    assert plaintext_alert(bytes.fromhex("15030300020273")) == 115
    assert plaintext_alert(GUIDE_CLIENT_KEY_EXCHANGE) is None
