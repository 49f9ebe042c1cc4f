"""The MEP link's decisions as sans-IO state machines (h11 style): events in, actions out.

No clock, no port, no ``await``: :func:`mepgate.client.driver.drive` performs the actions and
feeds the events back with the time they happened, so every transition is unit-tested by
feeding bytes and times (tests/client/test_mep_machine.py).

* :class:`MepLink` -- what one connection to a MEP port knows between requests: the receive
  buffer, when the last request left (pacing), whether the meter has alerted, whether the key
  has worked, the sequence counter, the IDT version watched for reconfigurations, the TLS
  session.
* :class:`Attempt` -- one frame sent once: drain what arrived since the last request, wait
  for the pacing, send, then collect bytes until a reply decodes or the line stays quiet.
* :class:`Rc4Request` -- one request's life under RC4 security (MEP guide, "RC4
  Authentication" / "RC4 Encryption", "MEP Protocol Timing"): after a lost or damaged reply, a
  read is asked again under the next sequence number, a write or procedure call resent as the
  *same* frame (and never carried out twice); a read's first try waits a timeout learnt from
  the meter's answers (:meth:`MepLink.read_timeout`), late replies to abandoned tries are
  recognised and dropped; confirm a 0x0B once before believing it, adopt the sequence number a
  0x0C carries
  and check ET04's IDT version (a reconfigured meter jumps its counter, "Dynamic Sizing of
  Tables"), give up with a diagnosis.
* :class:`TlsRequest` -- one request under TLS-PSK ("Using TLS Security to secure MEP
  Ports"): a handshake when there is no session, the request in a 0x80 frame, a new session
  when the old one breaks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from mepgate.client.actions import Action, Failed, Finished, Receive, Transmit
from mepgate.client.diagnosis import Diagnosis, diagnose
from mepgate.client.errors import (
    AnswerLostError,
    AuthenticationError,
    MeterRefusedError,
    NoisyLineError,
    OutOfTimeError,
    ReconfiguredError,
    SequenceConflictError,
    TlsRequiredError,
    TlsSessionError,
    error_for,
)
from mepgate.client.session import Reply
from mepgate.client.stats import Observation
from mepgate.client.timing import LinkTiming
from mepgate.errors import LocalProtocolError, MepgateError, RemoteProtocolError
from mepgate.proto import ALERT, NEED_DATA, Alert, ClientSequence, Frame, FrameBuffer, FramingError
from mepgate.proto.buffer import MAX_BUFFERED
from mepgate.proto.codes import ResponseCode, TlsRequestCode, TlsResponseCode
from mepgate.proto.constants import (
    ALERT_INTERVAL,
    DIGEST_SIZE,
    FRAME_BYTES,
    LENGTH_SIZE,
    SEGMENT_PAUSE,
    SEGMENT_SIZE,
    max_frame_time,
    wire_time,
)
from mepgate.proto.errors import DigestMismatchError
from mepgate.proto.frames import SEQUENCE_MODULO, Exchange, Response, prepare_request
from mepgate.proto.messages import decode_read_reply, is_read, read_reply_size
from mepgate.proto.tls_frames import (
    NO_TLS_SESSION_REPLY,
    TlsMessage,
    decode_tls_frame,
    encode_tls_request,
)
from mepgate.tls import KeyId, TlsError, TlsPskClient

R = TypeVar("R")

RC4_MIN_FRAME = 1 + DIGEST_SIZE
"""Smallest RC4 reply after its length: a code and the digest."""
TLS_MIN_FRAME = 1
"""Smallest TLS-carrying reply after its length: a code."""
DAMAGE_WEIGHT = 0.1
"""Weight of the newest reply in :attr:`MepLink.damage` (about the last twenty count)."""
MIN_CHUNK = 16
"""The smallest read :meth:`MepLink.chunk` asks for (and its step)."""
CHUNK_RATE_SHARE = 0.9
""":meth:`MepLink.chunk` takes the shortest read that carries at least this share of the
best data rate the line allows."""
READ_REQUEST_BYTES = LENGTH_SIZE + 8 + 4 + DIGEST_SIZE
"""A partial read request on the line: its length, message, sequence number and digest."""
TLS_ATTEMPTS = 16
"""Sessions set up for one request before the line is called too noisy for TLS: a damaged
record ends a TLS session (TLS frames carry no MEP digest; the record MAC catches it), so on a
noisy line sessions break often, each costing a handshake."""
TLS_KEY_CONFIRMATIONS = 4
"""Handshakes in a row the meter must refuse (0x03) before the key is called wrong: a
handshake reply damaged on its way to us makes our Finished wrong too, but noise does not
repeat itself four times running."""
ANSWER_SAMPLES = 32
"""Answer delays of read replies remembered on a connection (:meth:`MepLink.read_timeout`)."""
LEARN_AFTER = 16
"""Read replies a connection must have seen before its read timeout is learnt from them."""
ANSWER_MARGIN = 3.0
"""A learnt read timeout is this many times the slowest answer remembered."""
ABANDONED_KEPT = 4
"""Exchanges given up after a timeout whose late replies are still recognised."""


# -- the connection ---------------------------------------------------------------------------
@dataclass(slots=True)
class MepLink:
    """One MEP connection's state between requests (see the module docstring).

    ``sequence`` and ``idt_version`` outlive the connection (a reconnect keeps counting and
    keeps watching); :meth:`connection_opened` resets what belongs to one connection.
    """

    key: bytes
    timing: LinkTiming
    baud: int
    encrypt: bool
    sequence: ClientSequence
    key_id: KeyId = KeyId.MBK
    idt_version: int | None = None
    idt_probe: bytes | None = None
    """The request reading ET04's IDT version (None: reconfigurations are not checked)."""
    tls: bool = False
    buffer: FrameBuffer = field(default_factory=lambda: FrameBuffer(minimum=RC4_MIN_FRAME))
    last_send: float | None = None
    alert_pending: bool = False
    alerts_serviced_at: float | None = None
    key_worked: bool = False
    tls_session: TlsPskClient | None = None
    damage: float = 0.0
    """Recent share of replies that arrived damaged (a moving average over replies)."""
    reply_bytes: float = 0.0
    """Recent reply size on the line (a moving average), to turn ``damage`` into a rate per
    byte."""
    heard: list[tuple[str, bytes]] | None = None
    """When tracing: what the framer cut from the line, in order (``<<`` a frame or alert,
    ``<< noise`` bytes that formed none), for the session to print."""
    answer_delays: deque[float] = field(default_factory=lambda: deque(maxlen=ANSWER_SAMPLES))
    """How long the meter took to start its recent read replies on this connection, from the
    request's last byte (for :meth:`read_timeout`)."""
    abandoned: deque[tuple[Exchange, float]] = field(
        default_factory=lambda: deque(maxlen=ABANDONED_KEPT)
    )
    """Exchanges given up after a timeout, with when their request's last byte left: a late
    reply to one of them is recognised by its digest (:meth:`late_reply`)."""

    def __repr__(self) -> str:
        return f"MepLink(baud={self.baud}, tls={self.tls}, key=<hidden>)"

    def connection_opened(self) -> None:
        """A new connection: nothing held, no alert seen, the key not proven on it yet."""
        self.buffer = FrameBuffer(minimum=TLS_MIN_FRAME if self.tls else RC4_MIN_FRAME)
        self.last_send = None
        self.alert_pending = False
        self.key_worked = False
        self.tls_session = None
        self.answer_delays.clear()  # a new connection starts from the guide's timeout

    def use_tls(self) -> None:
        """The meter serves only TLS: switch framing (drops what is held)."""
        self.tls = True
        self.buffer = FrameBuffer(minimum=TLS_MIN_FRAME)

    def note_reply(self, size: int, *, damaged: bool) -> None:
        """A reply frame of ``size`` bytes arrived, whole or damaged (for :meth:`chunk`)."""
        self.damage += DAMAGE_WEIGHT * (float(damaged) - self.damage)
        if self.reply_bytes == 0.0:
            self.reply_bytes = float(size)
        self.reply_bytes += DAMAGE_WEIGHT * (size - self.reply_bytes)

    def chunk(self, most: int) -> int:
        """The table bytes to ask for per read, at most ``most``: all of it on a clean line; on
        one that damages bytes, the size that carries most data per second, since a longer
        reply is more likely damaged (and read again) than a short one."""
        if self.damage <= 0.001 or self.reply_bytes <= 0:
            return most
        per_byte = 1.0 - (1.0 - min(self.damage, 0.99)) ** (1.0 / self.reply_bytes)
        overhead = LENGTH_SIZE + 3 + DIGEST_SIZE  # around the data of a read reply
        fixed = self.timing.min_request_interval + wire_time(READ_REQUEST_BYTES, self.baud)

        def rate(count: int) -> float:
            whole: float = (1.0 - per_byte) ** (count + overhead)
            return count * whole / (fixed + wire_time(count + overhead, self.baud))

        sizes = range(MIN_CHUNK, most + 1, MIN_CHUNK)
        best = max((rate(count) for count in sizes), default=0.0)
        # The rate is flat near its best, while a reply's chance of arriving damaged grows
        # with every byte: the shortest size within CHUNK_RATE_SHARE of the best rate gives
        # up little on average and makes a long run of damaged tries -- the slowest polls,
        # and the requests that run out of sends -- much rarer.
        return min((c for c in sizes if rate(c) >= CHUNK_RATE_SHARE * best), default=most)

    def merge_gap(self, most: int) -> int:
        """Bytes between two wanted ranges worth reading rather than asking twice, at most
        ``most`` (a clean line's figure: a gap read in less time than a request's spacing).  On
        a line that damages bytes a gap byte also risks the whole reply, so gaps are bridged
        only while that risk costs less than a second request."""
        if self.damage <= 0.001 or self.reply_bytes <= 0:
            return most
        per_byte = 1.0 - (1.0 - min(self.damage, 0.99)) ** (1.0 / self.reply_bytes)
        request = self.timing.min_request_interval + wire_time(READ_REQUEST_BYTES, self.baud)
        exchange = request + wire_time(round(self.reply_bytes), self.baud)
        cost = wire_time(1, self.baud) + per_byte * exchange
        return max(0, min(most, int(request / cost)))

    def read_timeout(self) -> float:
        """The response timeout for a read's first try: the guide's 500 ms until this
        connection has seen :data:`LEARN_AFTER` read replies, then :data:`ANSWER_MARGIN` times
        the slowest recent answer, never under ``timing.min_read_timeout`` nor over the guide's.

        Why (MEP guide, "MEP Protocol Timing"): the guide's 500 ms is an upper bound on the
        wait, not the meter's answer time; on a line that loses a reply in ten, each loss
        costs the whole timeout, the largest share of a reading's time.  Learning the bound
        from this meter's own answers keeps it safe: a meter slower than learnt loses one
        short try, the read is asked again under the next sequence number with the guide's
        full timeout (:class:`Rc4Request`), and the late reply to the abandoned try is
        recognised by its digest and dropped, never taken for the answer (:meth:`late_reply`)
        -- its delay is learnt, so the timeout grows.  Only reads get it: they are idempotent
        and the delays are learnt from them; a write or a procedure may take a meter longer,
        and keeps the guide's timeout and identical resend."""
        guide = self.timing.response_timeout
        if len(self.answer_delays) < LEARN_AFTER:
            return guide
        learnt = ANSWER_MARGIN * max(self.answer_delays)
        return min(guide, max(self.timing.min_read_timeout, learnt))

    def note_answer(self, delay: float) -> None:
        """A read reply (or a late one) started ``delay`` seconds after its request ended."""
        self.answer_delays.append(max(0.0, delay))

    def abandon(self, exchange: Exchange, request_end: float) -> None:
        """``exchange`` got no reply in time: remember it to recognise a late reply."""
        self.abandoned.append((exchange, request_end))

    def late_reply(self, wire: bytes) -> float | None:
        """When ``wire`` is a reply to an abandoned exchange (its digest verifies against that
        request, which no damaged or foreign frame does), when that request ended."""
        for exchange, request_end in self.abandoned:
            try:
                exchange.decode(wire, self.key)
            except RemoteProtocolError:
                continue
            return request_end
        return None

    def alert_due(self, now: float) -> bool:
        """An alert was seen and the last service is a second old: a meter repeats a pending
        alert every second (MEP guide, "Alert Sequence"), while line noise can fake one."""
        if not self.alert_pending:
            return False
        return self.alerts_serviced_at is None or now - self.alerts_serviced_at >= ALERT_INTERVAL

    def alerts_serviced(self, now: float) -> None:
        self.alert_pending = False
        self.alerts_serviced_at = now


# -- one frame, sent once ---------------------------------------------------------------------
class _Phase(Enum):
    DRAIN = "drain"  # taking in what arrived since the last request
    SEND = "send"
    AWAIT = "await"
    DONE = "done"


class Attempt(Generic[R]):
    """Send ``frame`` once and collect its reply: finishes with ``decode(reply)``, or with
    ``None`` when no reply came in time (MEP guide, "Response timeout": from the request's last
    byte on the wire; "Intra-packet timing": a partial frame quiet for the frame gap is stale).

    ``decode`` raises a :class:`~mepgate.errors.RemoteProtocolError` for a frame that is not
    the answer (a damaged reply, a stale one); such a frame is given back to the buffer, which
    rescans from its second byte (a bogus length may have swallowed the real reply).
    """

    def __init__(
        self,
        link: MepLink,
        frame: bytes,
        decode: Callable[[bytes], R],
        seen: Observation,
        damaged: set[bytes] | None = None,
        reply_size: int | None = None,
        *,
        timeout: float | None = None,
        learn: bool = False,
    ) -> None:
        self._link = link
        self._timeout = link.timing.response_timeout if timeout is None else timeout
        self._learn = learn  # a read: its answer delay teaches MepLink.read_timeout
        self._frame = frame
        self._decode = decode
        self._seen = seen
        self._damaged = set() if damaged is None else damaged  # shared by one frame's sends
        self._reply_size = reply_size
        self.damaged_reply = False
        """Finished without a result because the reply itself came damaged (a frame of exactly
        the reply's size failed its digest): the meter has acted on the request."""
        self._phase = _Phase.DRAIN
        self._drain_since: float | None = None
        self._deadline = 0.0
        self._hard_deadline = 0.0
        self._last_rx = 0.0
        self._now = 0.0
        self.request_end = 0.0
        """When the request's last byte left (the start of the response timeout)."""
        self._result: R | None = None

    # -- actions --------------------------------------------------------------------------------
    def next_action(self) -> Action[R | None]:
        if self._phase is _Phase.DRAIN:
            return Receive(until=None)
        if self._phase is _Phase.SEND:
            last = self._link.last_send
            not_before = 0.0 if last is None else last + self._link.timing.min_request_interval
            return Transmit(self._frame, not_before)
        if self._phase is _Phase.AWAIT:
            return Receive(until=self._limit())
        return Finished(self._result)

    def _limit(self) -> float:
        """When to stop waiting: the response timeout, moved on while a frame is arriving, but
        never past the hard deadline (bytes that keep coming without forming the reply -- noise
        -- must not keep the exchange open)."""
        if self._link.buffer.pending:
            gap = self._last_rx + self._link.timing.frame_gap_timeout
            return min(max(self._deadline, gap), self._hard_deadline)
        return self._deadline

    # -- events ---------------------------------------------------------------------------------
    def sent(self, at: float) -> None:
        if self._phase is not _Phase.SEND:
            raise _misuse("sent", self._phase)
        self._link.last_send = at
        self._seen.frames_sent += 1
        self._seen.bytes_sent += len(self._frame)
        # The timeout runs from the request's last byte on the wire; a write completes when
        # the OS has the bytes, not when the UART has sent them.
        self.request_end = at + wire_time(len(self._frame), self._link.baud)
        self._deadline = self.request_end + self._timeout
        # The longest reply, started at the last moment, with a frame gap of slack.
        self._hard_deadline = self._deadline + max_frame_time(self._link.baud)
        self._hard_deadline += self._link.timing.frame_gap_timeout
        self._last_rx = at
        self._phase = _Phase.AWAIT

    def received(self, data: bytes, at: float) -> None:
        if self._phase not in (_Phase.DRAIN, _Phase.AWAIT):
            raise _misuse("received", self._phase)
        self._now = at
        self._seen.bytes_received += len(data)
        # Fed a frame's worth at a time, taking out events in between: a flood of alerts or
        # noise never piles up past the buffer's bound.
        for start in range(0, len(data), FRAME_BYTES):
            piece = data[start : start + FRAME_BYTES]
            if self._done():
                self._keep_for_later(data[start:])
                return
            self._link.buffer.receive_data(piece)
            if self._phase is _Phase.DRAIN:
                self._drain()
            elif self._scan():
                continue
        if self._phase is _Phase.DRAIN:
            # Bytes that keep arriving between requests (noise, a flood) must not hold the
            # request back: after a response timeout of them, send anyway.
            self._drain_since = at if self._drain_since is None else self._drain_since
            if at - self._drain_since >= self._link.timing.response_timeout:
                self._phase = _Phase.SEND
            return
        if self._phase is _Phase.AWAIT:
            self._last_rx = at
            if at >= self._limit():
                self._expire()

    def _done(self) -> bool:
        return self._phase is _Phase.DONE

    def _keep_for_later(self, rest: bytes) -> None:
        """Bytes after the reply belong to the next exchange; beyond what the buffer holds
        they are dropped (a flood) and counted as garbage."""
        buffer = self._link.buffer
        room = max(0, MAX_BUFFERED - buffer.pending)
        buffer.receive_data(rest[:room])
        self._seen.garbage_bytes += max(0, len(rest) - room)

    def timed_out(self, at: float) -> None:
        self._now = at
        if self._phase is _Phase.DRAIN:
            self._drain()  # nothing more arrived: what is held is looked at, then we send
            self._phase = _Phase.SEND
            return
        if self._phase is not _Phase.AWAIT:
            raise _misuse("timed_out", self._phase)
        if at >= self._limit():
            self._expire()

    # -- internals ------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Alerts count, garbage counts, whole frames between requests are late replies to
        earlier requests and are dropped."""
        while True:
            event = self._next_event()
            if event is None:
                return
            if isinstance(event, Alert):
                self._alert()
            else:
                self._late(event.wire)

    def _late(self, wire: bytes) -> bool:
        """Whether ``wire`` is a late reply to an exchange given up after a timeout (the meter
        was slower than the timeout): counted, its delay learnt, otherwise dropped -- it never
        answers the current request (its digest belongs to the other one)."""
        request_end = self._link.late_reply(wire)
        if request_end is None:
            return False
        self._seen.late_replies += 1
        self._link.note_answer(self._now - _reply_time(len(wire), self._link.baud) - request_end)
        return True

    def _answered(self, wire: bytes) -> None:
        """A reply decoded: learn how long the meter took to start it (reads only)."""
        if self._learn:
            start = self._now - _reply_time(len(wire), self._link.baud)
            self._link.note_answer(start - self.request_end)

    def _next_event(self) -> Frame | Alert | None:
        buffer = self._link.buffer
        heard = self._link.heard
        while True:
            try:
                event = buffer.next_event()
            except FramingError as error:
                self._seen.garbage_bytes += error.discarded
                if heard is not None:
                    heard.append(("<< noise", error.data))
                continue
            if event is NEED_DATA:
                return None
            if heard is not None:
                heard.append(("<<", _wire(event)))
            return event

    def _alert(self) -> None:
        self._seen.alerts += 1
        self._link.alert_pending = True

    def _scan(self) -> bool:
        while (event := self._next_event()) is not None:
            if self._consider(event):
                return True
        return False

    def _consider(self, event: Frame | Alert) -> bool:
        if isinstance(event, Alert):
            self._alert()
            return False
        if event.wire == self._frame:
            self._seen.echoed_frames += 1
            return False
        try:
            self._result = self._decode(event.wire)
        except RemoteProtocolError:
            if self._late(event.wire):
                return False  # a whole frame, just not ours: no rescan inside it
            self._damage(event.wire)
            if self._phase is _Phase.AWAIT and len(event.wire) == self._reply_size:
                self._link.note_reply(len(event.wire), damaged=True)
                # The reply, damaged on its way: no need to wait out the response timeout.
                self.damaged_reply = True
                self._result = None
                self._phase = _Phase.DONE
                return True
            self._link.buffer.reject(event)
            return False
        self._link.note_reply(len(event.wire), damaged=False)
        self._answered(event.wire)
        self._phase = _Phase.DONE
        return True

    def _damage(self, wire: bytes) -> None:
        self._seen.damaged_replies += 1
        if wire in self._damaged:
            self._seen.repeated_damage += 1
        elif len(self._damaged) < 64:
            self._damaged.add(wire)

    def _expire(self) -> None:
        """The line went quiet mid-frame (or no reply came): rescan what is held, dropping the
        stale start; whatever cannot complete before a resend is dropped."""
        buffer = self._link.buffer
        found, dropped = buffer.expire()
        self._seen.garbage_bytes += dropped
        for index, event in enumerate(found):
            if isinstance(event, Frame) and event.wire != self._frame:
                try:
                    self._result = self._decode(event.wire)
                except RemoteProtocolError:
                    if self._late(event.wire):
                        continue
                    self._damage(event.wire)
                else:
                    self._answered(event.wire)
                    self._phase = _Phase.DONE
                    return
                # A bogus frame may have swallowed the real reply: rescan from its second
                # byte, followed by everything found after it, in line order.
                buffer.reject(event)
                buffer.receive_data(b"".join(_wire(e) for e in found[index + 1 :]))
                if self._scan():
                    return
                break
            self._consider(event)
        buffer.expire()
        self._seen.timeouts += 1
        self._result = None
        self._phase = _Phase.DONE


def _io(action: object) -> Transmit | Receive:
    """A step's pending I/O: a finished step is always decided on at once (``_advance``)."""
    if isinstance(action, Transmit | Receive):
        return action
    raise LocalProtocolError(f"a finished step was left undecided: {action!r}")


def _reply_time(size: int, baud: int) -> float:
    """Seconds a reply of ``size`` bytes takes on the line, segment pauses included (MEP guide,
    "Response timing"): subtracted from when it was whole to find when it started."""
    return wire_time(size, baud) + (size - 1) // SEGMENT_SIZE * SEGMENT_PAUSE


def _wire(event: Frame | Alert) -> bytes:
    return event.wire if isinstance(event, Frame) else ALERT


def _misuse(event: str, phase: _Phase) -> MepgateError:
    return LocalProtocolError(f"{event}() is not expected while the attempt is {phase.value}")


# -- one request under RC4 security -----------------------------------------------------------
class Rc4Request:
    """One C12.18 request's life under RC4 security; finishes with its :class:`Reply`.

    ``check_configuration``: after a 0x0C, read ET04's IDT version (``link.idt_probe``) before
    resending, and fail with :class:`ReconfiguredError` when it changed -- requests planned
    from the old dimensions are void.  Off for the client's own housekeeping requests (they
    are part of such a check, or of loading the dimensions).

    ``give_up_at`` (the times the events carry): a read is not sent again after it, and fails
    with :class:`OutOfTimeError` (its caller's time is up; asking again later is safe).  A
    write or procedure call is carried to its end: stopping its resends would leave unknown
    whether the meter carried it out.
    """

    def __init__(
        self,
        link: MepLink,
        message: bytes,
        what: str,
        *,
        check_configuration: bool = True,
        give_up_at: float | None = None,
    ) -> None:
        self._link = link
        self._message = message
        self._what = what
        self._check = check_configuration
        self._read = is_read(message)
        self._give_up_at = give_up_at if self._read else None
        self._now: float | None = None  # the time of the newest event
        self.seen = Observation()
        self.nested: list[Observation] = []
        """What the ET04 checks of this request observed (their own diagnosis, our totals)."""
        self._sends = 0  # all sends of this request (LinkTiming.max_sends)
        self._frame_sends = 0  # sends of the current frame (a number refused at its first)
        self._silent = self._auth = self._conflicts = 0
        self._outcome: Finished[Reply] | Failed | None = None
        self._probe: Rc4Request | None = None
        self._damaged: set[bytes] = set()  # damaged replies to this request's frames
        self._exchange = self._new_exchange()
        self._attempt = self._new_attempt()

    def observations(self) -> list[Observation]:
        return [self.seen, *self.nested]

    def _new_exchange(self) -> Exchange:
        link = self._link
        return prepare_request(self._message, link.sequence.take(), link.key, encrypt=link.encrypt)

    def _new_attempt(self) -> Attempt[Response]:
        exchange = self._exchange

        def decode(wire: bytes) -> Response:
            try:
                return exchange.decode(wire, self._link.key)
            except DigestMismatchError:
                if wire == NO_TLS_SESSION_REPLY:
                    return Response(
                        code=ResponseCode.INVALID_SERVICE_SEQUENCE_STATE, authenticated=False
                    )
                raise

        size = read_reply_size(self._message)
        frame_size = None if size is None else LENGTH_SIZE + size + DIGEST_SIZE
        # A read's first try, and a try after a reply (damaged or a 0x0C), waits the timeout
        # learnt from this meter's answers; a try after a silence waits the guide's full 500 ms
        # (a meter slower than learnt loses one short try, never a request).
        timeout = self._link.read_timeout() if self._read and self._silent == 0 else None
        self._attempt = Attempt(
            self._link,
            exchange.frame,
            decode,
            self.seen,
            self._damaged,
            reply_size=frame_size,
            timeout=timeout,
            learn=self._read,
        )
        return self._attempt

    # -- actions and events ---------------------------------------------------------------------
    def next_action(self) -> Action[Reply]:
        if self._outcome is not None:
            return self._outcome
        return _io(self._active().next_action())

    def _active(self) -> Attempt[Response] | Rc4Request:
        return self._probe if self._probe is not None else self._attempt

    def sent(self, at: float) -> None:
        self._now = at
        self._active().sent(at)
        self._advance()

    def received(self, data: bytes, at: float) -> None:
        self._now = at
        self._active().received(data, at)
        self._advance()

    def timed_out(self, at: float) -> None:
        self._now = at
        self._active().timed_out(at)
        self._advance()

    def _advance(self) -> None:
        """Decide on whatever finished: an attempt (its reply or silence) or the ET04 check."""
        while self._outcome is None:
            if self._probe is not None:
                action = self._probe.next_action()
                if not isinstance(action, Finished | Failed):
                    return
                self._probe_done(action)
                continue
            step = self._attempt.next_action()
            if not isinstance(step, Finished):
                return
            self._decide(step.result)

    # -- decisions ------------------------------------------------------------------------------
    def _give_up(self, error: MepgateError) -> None:
        self._outcome = Failed(error)

    def _send_again(self) -> None:
        if self._sends >= self._link.timing.max_sends:
            self._give_up(error_for(self._diagnosis(), self._what))
            return
        if self._out_of_time():
            self._give_up(
                OutOfTimeError(f"{self._what}: not asked again, the time given to it was up")
            )
            return
        self._attempt = self._new_attempt()

    def _out_of_time(self) -> bool:
        limit = self._give_up_at
        return limit is not None and self._now is not None and self._now >= limit

    def _diagnosis(self) -> Diagnosis:
        """What this exchange's failure points to.  A key the meter accepted on this connection
        is not wrong: replies that failed their digest alike, or went unanswered, after it
        worked are the line's (on a damaging line a long reply may arrive damaged every time)."""
        found = diagnose(self.seen)
        if found is Diagnosis.WRONG_KEY and self._link.key_worked and not self.seen.auth_failures:
            return Diagnosis.NOISY
        return found

    def _decide(self, reply: Response | None) -> None:
        timing = self._link.timing
        self._sends += 1
        self._frame_sends += 1
        if reply is None and self._attempt.damaged_reply:
            # A read the meter answered, damaged on the way: ask again under the next number
            # at once.  Resending the same frame would only earn a 0x0C (the meter used that
            # number) and cost a timeout and an ET04 check; reads can be repeated safely.
            self._silent = 0
            self.seen.resends += 1
            self._resequence()
            return
        if reply is None:
            self._link.abandon(self._exchange, self._attempt.request_end)
            self._silent += 1
            if self._silent >= timing.max_silent_sends:
                self._give_up(error_for(self._diagnosis(), self._what))
                return
            self.seen.resends += 1
            if self._read:
                # A read is asked again under the next sequence number.  The guide asks for
                # the same packet ("Response timeout"), yet also says a client increments the
                # number after each request, retries included, which is why the meter accepts
                # a number up to 8 ahead ("RC4 Authentication").  Whether the meter lost our
                # request or only its reply, the next number is accepted: when it did act on
                # the request, the same packet would only earn a 0x0C (the meter used that
                # number) and a third exchange.  Reading twice changes nothing in the meter.
                # At most max_silent_sends (6) silences in a row keep us inside the window.
                self._resequence()
                return
            # A write or a procedure is not idempotent: the guide's identical packet, which the
            # meter refuses (0x0C) rather than carrying out twice.
            self._send_again()
            return
        after_silence = self._silent > 0
        self._silent = 0
        if reply.code == ResponseCode.INVALID_SERVICE_SEQUENCE_STATE and not reply.authenticated:
            self._give_up(
                TlsRequiredError(
                    "the meter requires TLS-PSK on this port (it answers RC4 requests with "
                    "0x0A): use --security auto or --security tls"
                )
            )
            return
        if reply.code == ResponseCode.AUTHENTICATION_FAILURE:
            self.seen.auth_failures += 1
            self._auth += 1
            limit = timing.max_auth_failures_after_success if self._link.key_worked else 2
            if self._auth >= limit:
                self._give_up(AuthenticationError(self._what))
                return
            self._send_again()  # confirm with the same frame: one 0x0B may be line noise
            return
        self._link.key_worked = True
        next_sequence = reply.next_sequence
        if reply.code == ResponseCode.INVALID_SEQUENCE_NUMBER and next_sequence is not None:
            self.seen.sequence_resyncs += 1
            # A resent frame is expected to be refused when the meter got the first copy; a
            # number refused at its first send means someone else moved the counter -- unless
            # the try before it went unanswered (a read renumbered after a timeout): a meter
            # that rebooted meanwhile restarted its counter, which is no other client.
            if self._frame_sends == 1 and not after_silence:
                self.seen.sequence_conflicts += 1
                self._conflicts += 1
                if self._conflicts > timing.max_sequence_errors:
                    self._give_up(SequenceConflictError(self._what))
                    return
            mine = self._exchange.seq
            self._link.sequence.adopt(next_sequence)
            # The meter asks for the number after ours: it acted on our frame (its reply was
            # lost) and nothing else moved its counter -- no reconfiguration to check for.
            acted_on_ours = next_sequence == (mine + 1) % SEQUENCE_MODULO
            if acted_on_ours and self._frame_sends > 1 and not self._read:
                # A write or procedure call resent as the same frame, and carried out: sending
                # it again under the next number would carry it out twice (a procedure's PSN
                # refusal, 0x04, would only make the caller try the next PSN).  Its answer is
                # lost; say so rather than guess its code.
                self._give_up(
                    AnswerLostError(
                        f"{self._what}: the meter carried it out, but its answer was lost on "
                        "the line (it is not sent twice)"
                    )
                )
                return
            if (
                self._check
                and not acted_on_ours
                and self._link.idt_version is not None
                and self._link.idt_probe
            ):
                self._probe = Rc4Request(
                    self._link, self._link.idt_probe, "reading ET04", check_configuration=False
                )
                return
            self._resequence()
            return
        self.seen.replies += 1
        self._outcome = Finished(Reply(code=reply.code, data=reply.data))

    def _resequence(self) -> None:
        """Send the request again under the next sequence number (adopted from a 0x0C, or
        after the one the meter used)."""
        self._exchange = self._new_exchange()
        self._frame_sends = 0
        self._send_again()

    def _probe_done(self, outcome: Finished[Reply] | Failed) -> None:
        probe, self._probe = self._probe, None
        assert probe is not None
        self.nested.extend(probe.observations())
        if isinstance(outcome, Failed):
            self._give_up(outcome.error)
            return
        reply = outcome.result
        if reply.code != ResponseCode.OK:
            self._give_up(MeterRefusedError(reply.code, "reading ET04"))
            return
        if len(reply.data) != 1:
            self._give_up(
                RemoteProtocolError(
                    f"reading ET04's IDT version: the meter sent {len(reply.data)} bytes for 1"
                )
            )
            return
        version = reply.data[0]
        if version != self._link.idt_version:
            self._link.idt_version = version
            self.seen.idt_changes += 1
            self._give_up(ReconfiguredError(f"IDT version changed to {version}"))
            return
        self._resequence()


# -- one request under TLS-PSK ----------------------------------------------------------------
class _Resending:
    """One TLS-carrying frame, resent while unanswered: finishes with the reply, or fails with
    the diagnosis after :attr:`LinkTiming.max_silent_sends` silent sends."""

    def __init__(self, link: MepLink, frame: bytes, seen: Observation, what: str) -> None:
        self._link = link
        self._frame = frame
        self._seen = seen
        self._what = what
        self._sends = 0
        self._attempt = Attempt(link, frame, decode_tls_frame, seen)
        self._outcome: Finished[TlsMessage] | Failed | None = None

    def next_action(self) -> Action[TlsMessage]:
        return self._outcome or _io(self._attempt.next_action())

    def sent(self, at: float) -> None:
        self._attempt.sent(at)
        self._advance()

    def received(self, data: bytes, at: float) -> None:
        self._attempt.received(data, at)
        self._advance()

    def timed_out(self, at: float) -> None:
        self._attempt.timed_out(at)
        self._advance()

    def _advance(self) -> None:
        step = self._attempt.next_action()
        if not isinstance(step, Finished):
            return
        if step.result is not None:
            self._outcome = Finished(step.result)
            return
        self._sends += 1
        if self._sends >= self._link.timing.max_silent_sends:
            self._outcome = Failed(error_for(diagnose(self._seen), self._what))
            return
        self._seen.resends += 1
        self._attempt = Attempt(self._link, self._frame, decode_tls_frame, self._seen)


class _SessionLostError(Exception):
    """(Internal) the TLS session broke; a new handshake is due."""


class TlsRequest:
    """One C12.18 request over TLS-PSK; finishes with its :class:`Reply`.

    Without a session (or after it broke) a handshake comes first: 0x58 with the ClientHello,
    0x59 with each continuation (MEP guide, Table 2.2).  A rejected key (0x03, or a Finished
    that does not verify) fails at once; a broken session is set up again, up to
    :data:`TLS_ATTEMPTS` times.
    """

    def __init__(
        self, link: MepLink, message: bytes, what: str, *, give_up_at: float | None = None
    ) -> None:
        self._link = link
        self._message = message
        self._what = what
        # A read is not set up again on a new session after this time (as Rc4Request).
        self._give_up_at = give_up_at if is_read(message) else None
        self._now: float | None = None
        self._seen: list[Observation] = []
        self._attempts = 0
        self._refusals = 0  # handshakes that failed authentication
        self._last = ""
        self._outcome: Finished[Reply] | Failed | None = None
        self._handshaking: TlsPskClient | None = None
        self._step: _Resending
        if link.tls_session is not None and link.tls_session.handshake_complete:
            self._start_request(link.tls_session)
        else:
            self._start_handshake()

    def observations(self) -> list[Observation]:
        return list(self._seen)

    def _observe(self) -> Observation:
        seen = Observation()
        self._seen.append(seen)
        return seen

    def _start_handshake(self) -> None:
        self._link.tls_session = None
        client = TlsPskClient(self._link.key, key_id=self._link.key_id)
        self._handshaking = client
        seen = self._observe()
        seen.tls_handshakes += 1
        frame = encode_tls_request(TlsRequestCode.HANDSHAKE, client.start_handshake())
        self._step = _Resending(self._link, frame, seen, "TLS handshake")

    def _start_request(self, session: TlsPskClient) -> None:
        self._handshaking = None
        frame = encode_tls_request(TlsRequestCode.TABLE, session.encrypt(self._message))
        self._step = _Resending(self._link, frame, self._observe(), self._what)

    # -- actions and events ---------------------------------------------------------------------
    def next_action(self) -> Action[Reply]:
        return self._outcome or _io(self._step.next_action())

    def sent(self, at: float) -> None:
        self._now = at
        self._step.sent(at)
        self._advance()

    def received(self, data: bytes, at: float) -> None:
        self._now = at
        self._step.received(data, at)
        self._advance()

    def timed_out(self, at: float) -> None:
        self._now = at
        self._step.timed_out(at)
        self._advance()

    def _advance(self) -> None:
        while self._outcome is None:
            step = self._step.next_action()
            if isinstance(step, Failed):
                self._outcome = step
            elif isinstance(step, Finished):
                try:
                    self._answered(step.result)
                except _SessionLostError as lost:
                    self._session_lost(str(lost))
            else:
                return

    # -- decisions ------------------------------------------------------------------------------
    def _answered(self, reply: TlsMessage) -> None:
        if self._handshaking is not None:
            self._handshake_step(self._handshaking, reply)
        else:
            self._reply(reply)

    def _handshake_step(self, client: TlsPskClient, reply: TlsMessage) -> None:
        if reply.code == TlsResponseCode.INVALID_IDENTITY_OR_KEY:
            self._key_refused("the meter rejected the TLS key or identity (0x03)")
            return
        if reply.code != TlsResponseCode.OK:
            raise _SessionLostError(f"handshake answered 0x{reply.code:02X}")
        try:
            client.receive(reply.payload)
            progress = client.do_handshake()
        except TlsError as error:
            # Includes the server's Finished not verifying: the meter verified ours with its
            # key before sending it, so that is damage on the line, never the key.
            raise _SessionLostError(str(error)) from error
        if progress.complete:
            self._refusals = 0
            self._seen[-1].replies += 1
            self._link.tls_session = client
            self._start_request(client)
            return
        frame = encode_tls_request(TlsRequestCode.HANDSHAKE_CONT, progress.outgoing)
        self._step = _Resending(self._link, frame, self._seen[-1], "TLS handshake")

    def _key_refused(self, why: str) -> None:
        """The meter refused our handshake (0x03): the key, or a handshake reply damaged on
        its way to us (our Finished then covers other bytes than the meter's)."""
        self._refusals += 1
        if self._refusals >= TLS_KEY_CONFIRMATIONS:
            self._outcome = Failed(TlsSessionError(why))
            return
        self._session_lost(why, counts=False)

    def _reply(self, reply: TlsMessage) -> None:
        session = self._link.tls_session
        if reply.code != TlsResponseCode.OK or not reply.payload or session is None:
            raise _SessionLostError(f"the meter answered 0x{reply.code:02X} to a TLS request")
        try:
            plain = session.decrypt(reply.payload)
        except TlsError as error:
            self._seen[-1].damaged_replies += 1
            raise _SessionLostError(str(error)) from error
        self._seen[-1].replies += 1
        code = plain[0]
        if code == ResponseCode.OK and is_read(self._message):
            self._outcome = Finished(Reply(code=code, data=decode_read_reply(plain)))
        else:
            self._outcome = Finished(Reply(code=code))

    def _session_lost(self, reason: str, *, counts: bool = True) -> None:
        self._link.tls_session = None
        self._last = reason
        self._attempts += counts
        if self._attempts >= TLS_ATTEMPTS:
            self._outcome = Failed(
                NoisyLineError(f"{self._what}: the TLS session kept breaking ({self._last})")
            )
            return
        limit = self._give_up_at
        if limit is not None and self._now is not None and self._now >= limit:
            self._outcome = Failed(
                OutOfTimeError(f"{self._what}: not asked again, the time given to it was up")
            )
            return
        self._start_handshake()
