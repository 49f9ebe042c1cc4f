"""Errors of the C12.18 core; all derive from the two roots in :mod:`mepgate.errors`."""

from __future__ import annotations

from mepgate.errors import LocalProtocolError, RemoteProtocolError
from mepgate.proto.codes import ResponseCode, describe_c1218_response_code
from mepgate.proto.errors import MalformedMessageError

__all__ = [
    "ChecksumError",
    "LocalProtocolError",
    "MessageError",
    "PacketError",
    "ReassemblyError",
    "RemoteProtocolError",
    "ServiceError",
    "UnsupportedServiceError",
]


class PacketError(RemoteProtocolError):
    """Bytes that do not make a C12.18 packet: wrong start byte, impossible header, length that
    disagrees with the bytes, or a CRC that fails.  The receiver NAKs it; the sender resends."""


class ReassemblyError(RemoteProtocolError):
    """The packets of a multi-packet message came out of order, or more of them than were
    negotiated.  The partial message has been dropped; the request must be sent again."""


class MessageError(MalformedMessageError):
    """A C12.18 service message (request or response) whose bytes are inconsistent."""


class ChecksumError(MessageError):
    """A read reply's or a write request's table data does not match its checksum: the data
    was damaged on the way; ask again (or answer with an error)."""


class UnsupportedServiceError(MessageError):
    """A request whose service code C12.18 does not define (a meter answers ``sns``)."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class ServiceError(RemoteProtocolError):
    """The peer answered a service with a response code other than ok.

    ``code`` is the :class:`~mepgate.proto.codes.ResponseCode` (or the raw byte when unknown);
    the message says in plain words what it means.
    """

    def __init__(self, code: ResponseCode | int, service: str = "") -> None:
        self.code = code
        what = f"the {service} request" if service else "the request"
        super().__init__(f"the meter refused {what}: {describe_c1218_response_code(code)}")
