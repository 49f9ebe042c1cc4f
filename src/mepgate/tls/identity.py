"""The MEP PSK identity and key helpers.

MEP Client Developer's Guide, ch. 2, "Using TLS Security to secure MEP Ports" and "PSK Identity
Hint": the PSK is the first 16 bytes of the MEP Basic Key (MBK) or MEP Advanced Key (MAK), and
the client names the key it uses with a 3-byte identity -- a 16-bit client id sent least
significant byte first, then an 8-bit key id.  TLS Example 1 of the same chapter shows the
identity ``64 00 01`` (client 100, MAK) inside the ClientKeyExchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mepgate.errors import LocalProtocolError
from mepgate.proto.server import AccessLevel
from mepgate.tls.errors import PskIdentityError

#: Bytes of a MEP key used as the TLS pre-shared key ("Using TLS Security...": 128 bits).
PSK_LENGTH: Final = 16
#: Longest MEP key accepted; the meter's key fields are 20 bytes, only the first 16 are used.
MAX_MEP_KEY_LENGTH: Final = 20
#: Length of the encoded PSK identity ("PSK Identity Hint" table).
IDENTITY_LENGTH: Final = 3
#: Client id used when none is given: the one in the guide's TLS Example 1.
DEFAULT_CLIENT_ID: Final = 100


KeyId = AccessLevel
"""Which MEP key a TLS session is keyed with ("PSK Identity Hint": the Key ID field): the
access level, one concept (``KeyId.MBK`` = 0, ``KeyId.MAK`` = 1)."""


def psk_from_mep_key(key: bytes) -> bytes:
    """Return the TLS PSK for a 16- to 20-byte MEP key: its first 16 bytes."""
    if not PSK_LENGTH <= len(key) <= MAX_MEP_KEY_LENGTH:
        raise LocalProtocolError(
            f"a MEP key is {PSK_LENGTH} to {MAX_MEP_KEY_LENGTH} bytes long, got {len(key)} bytes"
        )
    return bytes(key[:PSK_LENGTH])


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class PskIdentity:
    """A decoded MEP PSK identity: who the client is and which key it uses."""

    client_id: int
    key_id: KeyId

    def __post_init__(self) -> None:
        if not 0 <= self.client_id <= 0xFFFF:
            raise LocalProtocolError(
                f"a client id is a 16-bit number, got {self.client_id}; use 0..65535"
            )
        if not isinstance(self.key_id, KeyId):
            raise LocalProtocolError(
                f"a key id is KeyId.MBK (0) or KeyId.MAK (1), got {self.key_id!r}"
            )

    def to_bytes(self) -> bytes:
        """Encode as sent in the ClientKeyExchange: client id LSB first, then the key id."""
        return self.client_id.to_bytes(2, "little") + bytes([self.key_id])

    @classmethod
    def from_bytes(cls, data: bytes) -> PskIdentity:
        """Decode an identity received from a peer.

        Raises :class:`PskIdentityError` if ``data`` is not 3 bytes or names no known key.
        """
        if len(data) != IDENTITY_LENGTH:
            raise PskIdentityError(
                f"a MEP PSK identity is {IDENTITY_LENGTH} bytes long, got {len(data)} bytes"
            )
        try:
            key_id = KeyId(data[2])
        except ValueError:
            raise PskIdentityError(
                f"PSK identity names key id {data[2]}; only 0 (MBK) and 1 (MAK) exist"
            ) from None
        return cls(client_id=int.from_bytes(data[:2], "little"), key_id=key_id)

    @property
    def sendable(self) -> bool:
        """Whether python-mbedtls can put this identity on the wire.

        python-mbedtls passes identities through ``str`` and encodes them as UTF-8, so only
        identities whose bytes form valid UTF-8 can be sent by our client (and be looked up by
        our server).  Every client id whose two bytes are both below 0x80 qualifies.
        """
        return _is_utf8(self.to_bytes())
