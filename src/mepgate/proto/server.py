"""The meter's side of RC4 security: which key signed a request, and the sequence check.

MEP guide, "Access Levels": the server tries the MAK first, then the MBK; the first key whose
digest verifies sets the access level, and no key means 0x0B.  The digest is checked before
the sequence number, so a request that fails both is answered 0x0B, never 0x0C.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from mepgate.proto.codes import ResponseCode
from mepgate.proto.constants import SEQUENCE_SIZE
from mepgate.proto.frames import (
    Exchange,
    encode_auth_failure,
    open_request,
)
from mepgate.proto.sequence import SequenceWindow


class AccessLevel(IntEnum):
    """The two MEP access levels, named after their keys.

    The value is also the key id of a TLS PSK identity (MEP guide, "PSK Identity Hint").
    """

    MBK = 0  # MEP Basic Key: basic access
    MAK = 1  # MEP Advanced Key: advanced access
    BASIC = 0  # alias of MBK
    ADVANCED = 1  # alias of MAK

    def describe(self) -> str:
        return "MBK (basic access)" if self is AccessLevel.MBK else "MAK (advanced access)"


_CHECK_ORDER = (AccessLevel.ADVANCED, AccessLevel.BASIC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """A request that authenticated and is in sequence: execute ``exchange.message``."""

    exchange: Exchange
    level: AccessLevel
    _key: bytes

    def reply(self, message: bytes) -> bytes:
        """The response frame for ``message`` (a C12.18 response), under the request's key."""
        return self.exchange.response_frame(message, self._key)

    def __repr__(self) -> str:
        return f"Accepted(level={self.level.name}, seq={self.exchange.seq:#010x})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A request refused before execution; send ``reply`` (a 0x0B or 0x0C frame)."""

    code: ResponseCode
    reply: bytes
    level: AccessLevel | None = None


def authenticate(
    wire: bytes, keys: Mapping[AccessLevel, bytes]
) -> tuple[AccessLevel, bytes, Exchange] | None:
    """The access level, key and opened request of the first key that verifies, MAK first."""
    for level in _CHECK_ORDER:
        key = keys.get(level)
        if key is None:
            continue
        exchange = open_request(wire, key)
        if exchange is not None:
            return level, key, exchange
    return None


def check_request(
    wire: bytes, keys: Mapping[AccessLevel, bytes], window: SequenceWindow
) -> Accepted | Rejected:
    """Authenticate a whole request frame, then apply the sequence window."""
    found = authenticate(wire, keys)
    if found is None:
        return Rejected(code=ResponseCode.AUTHENTICATION_FAILURE, reply=encode_auth_failure())
    level, key, exchange = found
    if not window.accept(exchange.seq):
        message = bytes([ResponseCode.INVALID_SEQUENCE_NUMBER]) + window.expected.to_bytes(
            SEQUENCE_SIZE, "big"
        )
        return Rejected(
            code=ResponseCode.INVALID_SEQUENCE_NUMBER,
            reply=exchange.response_frame(message, key),
            level=level,
        )
    return Accepted(exchange=exchange, level=level, _key=key)
