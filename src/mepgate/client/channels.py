"""The two security modes as one interface: a C12.18 request message in, its reply out.

* :class:`Rc4Channel` -- MEP guide, "RC4 Authentication" / "RC4 Encryption": sequence numbers,
  a digest on every frame (verified before anything is used), optional RC4 encryption.
* :class:`TlsChannel` -- MEP guide, "Using TLS Security to secure MEP Ports": a TLS-PSK session
  set up with codes 0x58/0x59, requests carried with code 0x80.

Both retry under :class:`~mepgate.client.timing.LinkTiming`'s bounds and end in a typed
:class:`~mepgate.client.errors.MeterLinkError` whose diagnosis says what the line did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from mepgate.client.diagnosis import Observation, diagnose
from mepgate.client.errors import (
    AuthenticationError,
    SequenceConflictError,
    TlsSessionError,
    link_error,
)
from mepgate.client.exchanger import Exchanger
from mepgate.client.stats import LinkStatistics
from mepgate.client.timing import LinkTiming
from mepgate.errors import MepgateError
from mepgate.proto import ClientSequence, DigestMismatchError, ResponseCode, prepare_request
from mepgate.proto.codes import TlsRequestCode, TlsResponseCode
from mepgate.proto.constants import DIGEST_SIZE
from mepgate.proto.frames import Response
from mepgate.proto.messages import decode_read_reply, is_read
from mepgate.proto.tls_frames import (
    NO_TLS_SESSION_REPLY,
    TlsMessage,
    decode_tls_frame,
    encode_tls_request,
)
from mepgate.tls import KeyId, TlsAuthenticationError, TlsError, TlsPskClient

RC4_MIN_FRAME = 1 + DIGEST_SIZE
TLS_MIN_FRAME = 1
_TLS_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Reply:
    """A verified C12.18 reply: its code and, for a successful read, the table data."""

    code: int
    data: bytes = b""


class TlsRequiredError(MepgateError):
    """(Internal) the meter answers RC4 requests with 0x0A: it serves only TLS."""


class Rc4Channel:
    """RC4-digest security: sequence numbers, digests, optional encryption."""

    def __init__(
        self,
        exchanger: Exchanger,
        key: bytes,
        *,
        stats: LinkStatistics,
        timing: LinkTiming,
        encrypt: bool,
        sequence: ClientSequence,
    ) -> None:
        self._ex = exchanger
        self._key = key
        self._stats = stats
        self._timing = timing
        self._encrypt = encrypt
        self._sequence = sequence
        self.key_worked = False
        self.after_resync: Callable[[], Awaitable[None]] | None = None

    def __repr__(self) -> str:
        return f"Rc4Channel(encrypt={self._encrypt}, key=<hidden>)"

    def _decode(self, exchange_decode: Callable[[bytes, bytes], Response], wire: bytes) -> Response:
        try:
            return exchange_decode(wire, self._key)
        except DigestMismatchError:
            if wire == NO_TLS_SESSION_REPLY:
                return Response(
                    code=ResponseCode.INVALID_SERVICE_SEQUENCE_STATE, authenticated=False
                )
            raise

    async def request(self, message: bytes, what: str) -> Reply:
        seen = Observation()
        silent = auth = conflicts = 0
        exchange = prepare_request(message, self._sequence.take(), self._key, encrypt=self._encrypt)
        sends = 0  # of this frame
        for _ in range(self._timing.max_sends):
            sends += 1
            reply = await self._ex.transact(
                exchange.frame, partial(self._decode, exchange.decode), seen
            )
            if reply is None:
                silent += 1
                if silent >= self._timing.max_silent_sends:
                    break
                self._stats.resends += 1
                continue  # MEP guide, "Response timeout": resend the same packet
            silent = 0
            if (
                reply.code == ResponseCode.INVALID_SERVICE_SEQUENCE_STATE
                and not reply.authenticated
            ):
                raise TlsRequiredError(
                    "the meter requires TLS-PSK on this port (it answers RC4 requests with "
                    "0x0A): use --security auto or --security tls"
                )
            if reply.code == ResponseCode.AUTHENTICATION_FAILURE:
                auth += 1
                self._stats.auth_failures += 1
                seen.auth_failures += 1
                limit = self._timing.max_auth_failures_after_success if self.key_worked else 2
                if auth >= limit:
                    raise AuthenticationError(what)
                continue  # confirm once more with the same frame: one 0x0B may be line noise
            self.key_worked = True
            if (
                reply.code == ResponseCode.INVALID_SEQUENCE_NUMBER
                and reply.next_sequence is not None
            ):
                self._stats.sequence_resyncs += 1
                seen.sequence_errors += 1
                # A resent frame is expected to be refused when the meter got the first copy;
                # a number refused at its first send means someone else moved the counter.
                if sends == 1:
                    conflicts += 1
                    if conflicts > self._timing.max_sequence_errors:
                        raise SequenceConflictError(what)
                self._sequence.adopt(reply.next_sequence)
                if self.after_resync is not None:
                    await self.after_resync()
                exchange = prepare_request(
                    message, self._sequence.take(), self._key, encrypt=self._encrypt
                )
                sends = 0
                continue
            self._stats.replies += 1
            seen.valid_replies += 1
            return Reply(code=reply.code, data=reply.data)
        raise link_error(diagnose(seen), what)


class TlsChannel:
    """TLS-PSK security: a session over MEP frames, re-established whenever it breaks."""

    def __init__(
        self,
        exchanger: Exchanger,
        key: bytes,
        *,
        key_id: KeyId,
        stats: LinkStatistics,
        timing: LinkTiming,
    ) -> None:
        self._ex = exchanger
        self._key = key
        self._key_id = key_id
        self._stats = stats
        self._timing = timing
        self._session: TlsPskClient | None = None

    def __repr__(self) -> str:
        return f"TlsChannel(key_id={self._key_id.name}, key=<hidden>)"

    async def _send(self, frame: bytes, seen: Observation, what: str) -> TlsMessage:
        for sends in range(1, self._timing.max_silent_sends + 1):
            reply = await self._ex.transact(frame, decode_tls_frame, seen)
            if reply is not None:
                return reply
            if sends < self._timing.max_silent_sends:
                self._stats.resends += 1
        raise link_error(diagnose(seen), what)

    async def handshake(self) -> None:
        seen = Observation()
        self._session = None
        client = TlsPskClient(self._key, key_id=self._key_id)
        self._stats.tls_handshakes += 1
        code, payload = TlsRequestCode.HANDSHAKE, client.start_handshake()
        try:
            while True:
                reply = await self._send(encode_tls_request(code, payload), seen, "TLS handshake")
                if reply.code == TlsResponseCode.INVALID_IDENTITY_OR_KEY:
                    raise TlsSessionError("the meter rejected the TLS key or identity (0x03)")
                if reply.code != TlsResponseCode.OK:
                    raise _SessionLostError(f"handshake answered 0x{reply.code:02X}")
                client.receive(reply.payload)
                progress = client.do_handshake()
                if progress.complete:
                    break
                code, payload = TlsRequestCode.HANDSHAKE_CONT, progress.outgoing
        except TlsAuthenticationError as error:
            raise TlsSessionError(f"TLS handshake: {error}") from error
        except TlsError as error:
            raise _SessionLostError(str(error)) from error
        seen.valid_replies += 1
        self._session = client

    async def request(self, message: bytes, what: str) -> Reply:
        last = ""
        for _ in range(_TLS_ATTEMPTS):
            try:
                if self._session is None or not self._session.handshake_complete:
                    await self.handshake()
                session = self._session
                if session is None:
                    continue
                return await self._request(session, message, what)
            except _SessionLostError as lost:
                self._session = None
                last = str(lost)
        raise TlsSessionError(f"{what}: the TLS session kept breaking ({last})")

    async def _request(self, session: TlsPskClient, message: bytes, what: str) -> Reply:
        seen = Observation()
        frame = encode_tls_request(TlsRequestCode.TABLE, session.encrypt(message))
        reply = await self._send(frame, seen, what)
        if reply.code != TlsResponseCode.OK or not reply.payload:
            raise _SessionLostError(f"the meter answered 0x{reply.code:02X} to a TLS request")
        try:
            plain = session.decrypt(reply.payload)
        except TlsError as error:
            self._stats.damaged_replies += 1
            raise _SessionLostError(str(error)) from error
        self._stats.replies += 1
        code = plain[0]
        if code == ResponseCode.OK and is_read(message):
            return Reply(code=code, data=decode_read_reply(plain))
        return Reply(code=code)


class _SessionLostError(MepgateError):
    """(Internal) the TLS session broke; a new handshake is due."""
