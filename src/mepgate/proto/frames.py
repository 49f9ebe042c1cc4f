"""MEP frames on the wire, RC4 security (MEP guide, Tables 2.4 and 2.5, appendices A and B).

Request:  ``<length:2 MSB> <message> <sequence:4 MSB> <digest:8>``
Response: ``<length:2 MSB> <message> <digest:8>``
Alert:    ``00 00`` -- a frame of length zero, sent by the meter on its own
          (MEP guide, "Alert Sequence").

``length`` counts everything after itself.  With encryption, ``message`` (and a request's
sequence number) travel RC4-encrypted; the digest always covers the plain text.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.proto.codes import ResponseCode
from mepgate.proto.constants import DIGEST_SIZE, LENGTH_SIZE, MAX_MESSAGE, SEQUENCE_SIZE
from mepgate.proto.digest import DigestState, request_digest
from mepgate.proto.errors import (
    DigestMismatchError,
    LocalProtocolError,
    MalformedMessageError,
)
from mepgate.proto.messages import decode_read_reply, is_read
from mepgate.proto.rc4 import Rc4Stream

SEQUENCE_MODULO = 1 << 32
MIN_REQUEST_BODY = 1 + SEQUENCE_SIZE + DIGEST_SIZE
MIN_RESPONSE_BODY = 1 + DIGEST_SIZE
ALERT = b"\x00\x00"


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its 2-byte big-endian length."""
    if len(body) > MAX_MESSAGE:
        raise LocalProtocolError(
            f"a MEP frame carries at most {MAX_MESSAGE} bytes after its length, "
            f"this one would carry {len(body)}; read or write in smaller parts"
        )
    return len(body).to_bytes(LENGTH_SIZE, "big") + body


def unframe(wire: bytes, *, minimum: int) -> bytes:
    """The body of one whole frame, checking its length field."""
    if len(wire) < LENGTH_SIZE:
        raise MalformedMessageError(f"a frame needs a 2-byte length, got {len(wire)} bytes")
    length = int.from_bytes(wire[:LENGTH_SIZE], "big")
    if length != len(wire) - LENGTH_SIZE or not minimum <= length <= MAX_MESSAGE:
        raise MalformedMessageError(
            f"frame length field says {length} but {len(wire) - LENGTH_SIZE} bytes follow "
            f"(valid: {minimum}..{MAX_MESSAGE})"
        )
    return wire[LENGTH_SIZE:]


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One request as both ends know it, and everything needed to answer or check the answer.

    Built by :func:`prepare_request` (client) or :func:`open_request` (server).  ``state``
    is the digest state after the request, so a response digest costs only the response
    bytes; ``stream`` is the RC4 keystream positioned after the request, when encrypted
    (copied before use, so a reply can be decoded -- or produced -- more than once).
    """

    message: bytes
    seq: int
    digest: bytes
    encrypted: bool
    frame: bytes
    state: DigestState
    stream: Rc4Stream | None

    def response_frame(self, message: bytes, key: bytes) -> bytes:
        """(Server) the response frame carrying ``message``, encrypted when the request was."""
        mac = self.state.update(key, message, end=True).value
        body = self.stream.copy().apply(message) if self.stream is not None else message
        return frame(body + mac)

    def decode(self, response: bytes, key: bytes) -> Response:
        """(Client) verify and decode the response frame that answers this request.

        Raises :class:`DigestMismatchError` when the digest does not verify (line noise, or
        the answer to another request): resend the request, never use such a reply.
        """
        body = unframe(response, minimum=MIN_RESPONSE_BODY)
        payload, mac = body[:-DIGEST_SIZE], body[-DIGEST_SIZE:]
        message = self.stream.copy().apply(payload) if self.stream is not None else payload
        if self.state.update(key, message, end=True).value != mac:
            if payload == bytes([ResponseCode.AUTHENTICATION_FAILURE]):
                return Response(code=ResponseCode.AUTHENTICATION_FAILURE, authenticated=False)
            raise DigestMismatchError(
                "the response digest does not verify (line noise or a stray reply); "
                "it was discarded -- resend the same request"
            )
        return _interpret(self.message, message, encrypted=self.encrypted)


def prepare_request(message: bytes, seq: int, key: bytes, *, encrypt: bool = False) -> Exchange:
    """(Client) the request frame for a C12.18 ``message``, kept with what checks its reply."""
    if not 0 <= seq < SEQUENCE_MODULO:
        raise LocalProtocolError(f"a sequence number has 32 bits, got {seq}")
    if not message:
        raise LocalProtocolError("a request needs a C12.18 message, got none")
    plain = message + seq.to_bytes(SEQUENCE_SIZE, "big")
    mac, state = request_digest(key, plain)
    stream = Rc4Stream(key, mac) if encrypt else None
    body = stream.apply(plain) if stream is not None else plain
    return Exchange(
        message=message,
        seq=seq,
        digest=mac,
        encrypted=encrypt,
        frame=frame(body + mac),
        state=state,
        stream=stream,
    )


def encode_request(message: bytes, seq: int, key: bytes, *, encrypt: bool = False) -> bytes:
    """A whole request frame for the C12.18 ``message`` with sequence number ``seq``."""
    return prepare_request(message, seq, key, encrypt=encrypt).frame


def open_request(wire: bytes, key: bytes) -> Exchange | None:
    """(Server) verify a whole request frame under ``key``; ``None`` if it does not verify.

    A plain request verifies as it is; otherwise the body is decrypted with the keystream its
    digest seeds, and checked again (MEP guide, "RC4 Encryption": the server detects
    encryption by this extra decryption step).
    """
    body = unframe(wire, minimum=MIN_REQUEST_BODY)
    payload, mac = body[:-DIGEST_SIZE], body[-DIGEST_SIZE:]
    for stream in (None, Rc4Stream(key, mac)):
        plain = stream.apply(payload) if stream is not None else payload
        check, state = request_digest(key, plain)
        if check == mac:
            return Exchange(
                message=plain[:-SEQUENCE_SIZE],
                seq=int.from_bytes(plain[-SEQUENCE_SIZE:], "big"),
                digest=mac,
                encrypted=stream is not None,
                frame=wire,
                state=state,
                stream=stream,
            )
    return None


def encode_auth_failure() -> bytes:
    """The 0x0B reply to a request no key verifies; never encrypted (MEP guide, appendix B).

    No key was agreed, so no digest can be; the simulator sends zeros there, and a client
    must not rely on it (see :attr:`Response.authenticated`).
    """
    return frame(bytes([ResponseCode.AUTHENTICATION_FAILURE]) + bytes(DIGEST_SIZE))


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A decoded response.

    ``data`` is the table data of a successful read, the 4-byte sequence number of a 0x0C
    reply, and empty otherwise.  ``authenticated`` is False only for a 0x0B reply, whose
    digest cannot be checked.
    """

    code: int
    data: bytes = b""
    encrypted: bool = False
    authenticated: bool = True

    @property
    def next_sequence(self) -> int | None:
        """For a 0x0C reply: the sequence number the meter says to continue from."""
        if self.code != ResponseCode.INVALID_SEQUENCE_NUMBER:
            return None
        return int.from_bytes(self.data, "big")


def decode_response(frame: bytes, request_frame: bytes, key: bytes) -> Response:
    """Verify and decode a response frame against the request frame it answers.

    Prefer :meth:`Exchange.decode` when the :class:`Exchange` is at hand: it does not
    re-digest the request.
    """
    exchange = open_request(request_frame, key)
    if exchange is None:
        raise LocalProtocolError(
            "the request frame does not verify under this key; pass the frame that was sent"
        )
    return exchange.decode(frame, key)


def _interpret(request_message: bytes, message: bytes, *, encrypted: bool) -> Response:
    code = message[0]
    rest = message[1:]
    if code == ResponseCode.OK and is_read(request_message):
        return Response(code=code, data=decode_read_reply(message), encrypted=encrypted)
    if code == ResponseCode.INVALID_SEQUENCE_NUMBER:
        if len(rest) != SEQUENCE_SIZE:
            raise MalformedMessageError(
                f"0x0C reply carries {len(rest)} bytes; expected a {SEQUENCE_SIZE}-byte "
                "sequence number"
            )
        return Response(code=code, data=rest, encrypted=encrypted)
    if rest:
        raise MalformedMessageError(
            f"response code 0x{code:02X} with {len(rest)} unexpected bytes of data"
        )
    return Response(code=code, encrypted=encrypted)
