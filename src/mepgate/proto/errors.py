"""Errors raised by the protocol core; all derive from the two roots in :mod:`mepgate.errors`."""

from __future__ import annotations

from mepgate.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DigestMismatchError",
    "FramingError",
    "InvalidKeyError",
    "LocalProtocolError",
    "MalformedMessageError",
    "RemoteProtocolError",
]


class FramingError(RemoteProtocolError):
    """Bytes on the line that do not form a MEP frame; they have been discarded.

    ``discarded`` counts the bytes dropped, ``data`` holds them (for traces).  The receive
    buffer stays usable: keep feeding it and asking for events.  Many of these in a row point
    at a wrong baud rate or a missing or wrong level shifter.
    """

    def __init__(self, message: str, *, discarded: int, data: bytes = b"") -> None:
        super().__init__(message)
        self.discarded = discarded
        self.data = data


class DigestMismatchError(RemoteProtocolError):
    """A response whose digest does not verify: line noise, or a reply to another request.

    Never use its contents; resend the identical request.
    """


class MalformedMessageError(RemoteProtocolError):
    """A frame whose digest verified but whose C12.18 content is inconsistent."""


class InvalidKeyError(LocalProtocolError, ValueError):
    """A MEP key that cannot be right as entered; the message says what to enter instead."""
