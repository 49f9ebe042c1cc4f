"""MEP frames that carry TLS records (MEP guide, Tables 2.1-2.3).

Request ``<length:2 MSB> <TLS code> <TLS bytes>``, response ``<length:2 MSB> <response code>
<TLS bytes>``.  No sequence number and no digest: TLS protects the content.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.proto.codes import ResponseCode, TlsRequestCode, TlsResponseCode
from mepgate.proto.constants import DIGEST_SIZE
from mepgate.proto.errors import MalformedMessageError
from mepgate.proto.frames import frame, unframe


@dataclass(frozen=True, slots=True)
class TlsMessage:
    """A TLS-carrying MEP message: its code byte and the TLS record bytes."""

    code: int
    payload: bytes


def encode_tls_request(code: TlsRequestCode, payload: bytes) -> bytes:
    return frame(bytes([code]) + payload)


def encode_tls_response(code: TlsResponseCode, payload: bytes = b"") -> bytes:
    return frame(bytes([code]) + payload)


def decode_tls_frame(wire: bytes) -> TlsMessage:
    body = unframe(wire, minimum=1)
    return TlsMessage(code=body[0], payload=body[1:])


_TLS_REQUEST_CODES = frozenset(int(code) for code in TlsRequestCode)

NO_TLS_SESSION_REPLY = frame(
    bytes([ResponseCode.INVALID_SERVICE_SEQUENCE_STATE]) + bytes(DIGEST_SIZE)
)
"""A TLS-only meter's answer to an RC4 request: 0x0A (MEP guide, Table 2.1: no TLS session)
with a digest of zeros, which no key verifies."""


def is_tls_request(body: bytes) -> bool:
    """Whether a request body (after the length) starts with a TLS code, not a C12.18 one."""
    return bool(body) and body[0] in _TLS_REQUEST_CODES


def decode_tls_request(wire: bytes) -> tuple[TlsRequestCode, bytes]:
    """(Server) the TLS code and record bytes of a TLS-carrying request frame."""
    message = decode_tls_frame(wire)
    try:
        return TlsRequestCode(message.code), message.payload
    except ValueError:
        raise MalformedMessageError(
            f"0x{message.code:02X} is not a TLS request code (0x57, 0x58, 0x59, 0x80)"
        ) from None
