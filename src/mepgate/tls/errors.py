"""Errors raised by :mod:`mepgate.tls`.

The split follows the MEP TLS response codes (MEP Client Developer's Guide, ch. 2, "TLS Response
Message Format", Table 2.3): an identity or key the peer will not accept is a
:class:`TlsAuthenticationError` (a meter answers ``0x03``), any other TLS failure is a
:class:`TlsError` (a meter answers ``0x01``).  Messages never contain key material.
"""

from __future__ import annotations

from mepgate.errors import RemoteProtocolError


class TlsError(RemoteProtocolError):
    """The TLS bytes from the peer could not be processed; the TLS session is gone.

    ``outgoing`` holds the bytes (normally a fatal alert record) our side wants to send to the
    peer to tell it why; it may be empty.  Start a new handshake to continue.
    """

    def __init__(self, message: str, *, outgoing: bytes = b"") -> None:
        super().__init__(message)
        self.outgoing = outgoing


class TlsHandshakeError(TlsError):
    """The TLS handshake failed."""


class TlsAuthenticationError(TlsHandshakeError):
    """The PSK identity or the PSK itself was rejected (MEP response code 0x03)."""


class UnknownPskIdentityError(TlsAuthenticationError):
    """The PSK identity names no key the server has (or is not a valid MEP identity).

    ``identity`` is the raw identity the client sent, when it is known (identities are not
    secret: they carry a client id and a key id only).
    """

    def __init__(
        self, message: str, *, outgoing: bytes = b"", identity: bytes | None = None
    ) -> None:
        super().__init__(message, outgoing=outgoing)
        self.identity = identity


class PskMismatchError(TlsAuthenticationError):
    """Both sides agreed on an identity but hold different keys for it."""


class TlsClosedError(TlsError):
    """The peer closed the TLS session (it sent a close_notify alert)."""


class PskIdentityError(RemoteProtocolError):
    """Bytes that should be a 3-byte MEP PSK identity are not one."""
