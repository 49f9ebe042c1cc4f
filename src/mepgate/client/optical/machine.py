"""The optical port's decisions as sans-IO state machines (h11 style): events in, actions out.

No clock, no port, no ``await``: :func:`mepgate.client.driver.drive` performs the actions and
feeds the events back with the time they happened, so every transition is unit-tested by
feeding bytes and times (tests/client/test_optical_machine.py).

* :class:`OpticalLink` -- what one connection to an optical port knows between requests: the
  receive buffer, the toggle bit, the negotiated packet size, whether a session is open and
  since when, the meter's session timeout and hold-off, refused keys, whether the probe
  echoes.
* :class:`Exchange` -- one C12.18 message out and its response back (C12.18 link layer): the
  message split into packets of the negotiated size, each resent after a NAK or a missing
  ACK (same toggle), the response's packets acknowledged, duplicates acknowledged and
  dropped, damaged ones NAKed, a missing one asked for again with a NAK.
* :class:`OpticalRequest` -- one table request's life: a session first when there is none
  (Ident, Negotiate, Logon, Security) or when it is old enough to be renewed (Logoff and
  Terminate first), the request, bsy/dnr answers waited out, the session started again when
  the meter lost it, and giving up with a named reason.
* :class:`SessionEnd` -- Logoff and Terminate, when the client closes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from mepgate.c1218.buffer import (
    NEED_DATA,
    Acked,
    BadPacket,
    Naked,
    PacketBuffer,
    PacketReceived,
    Skipped,
)
from mepgate.c1218.constants import (
    DEFAULT_PACKET_SIZE,
    DEFAULT_PACKETS,
    MAX_PACKET_SIZE,
    MAX_PACKETS,
    MIN_PACKET_SIZE,
    PACKET_OVERHEAD,
    wire_time,
)
from mepgate.c1218.packets import ACK, NAK, Packet, packets_needed, split
from mepgate.c1218.services import (
    decode_negotiate_response,
    decode_read_response,
    ident_request,
    logoff_request,
    logon_request,
    negotiate_request,
    security_request,
    terminate_request,
)
from mepgate.client.actions import Action, Failed, Finished, Receive, Transmit
from mepgate.client.diagnosis import Diagnosis, diagnose_optical
from mepgate.client.errors import (
    BadReplyError,
    HeldOffError,
    KeyRefusedError,
    LockedOutError,
    MeterLinkError,
    OpticalDisabledError,
    error_for,
)
from mepgate.client.optical.timing import (
    IDLE_SHARE,
    RENEWAL_MARGIN_S,
    RENEWAL_SHARE,
    TIMEOUT_PLAUSIBLE_AGE,
    TIMEOUT_PLAUSIBLE_SHARE,
    OpticalTiming,
)
from mepgate.client.session import Reply
from mepgate.client.stats import Observation
from mepgate.errors import LocalProtocolError, MepgateError, RemoteProtocolError
from mepgate.proto.codes import ResponseCode
from mepgate.proto.constants import DIGEST_SIZE, LENGTH_SIZE, MAX_MESSAGE
from mepgate.proto.messages import is_read

R = TypeVar("R")
OPTICAL = "optical"

READ_RESPONSE_OVERHEAD = 4
"""Around a read response's table data: its code, count (2) and checksum."""
MAX_READ_COUNT = 0xFFFF
"""A read's count field is two bytes."""
BUSY = frozenset({0x06, 0x07})
"""bsy (busy) and dnr (data not ready): wait and ask again."""
ISSS = 0x0A
"""isss: the service is not allowed in the session's state (the session is gone)."""
ISC = ResponseCode.NO_PERMISSION
"""isc (insufficient security clearance), C12.18's 0x03."""
SESSION_STARTS = 2
"""Sessions started for one request before it is given up (the meter may drop one)."""
MEP_MIN_MESSAGE = 1 + DIGEST_SIZE
"""The shortest MEP reply after its length field: a response code and the digest."""


@dataclass(slots=True)
class MepSpotter:
    """Finds whole MEP reply frames (a 2-byte length of 9..476, then that many bytes) among
    the bytes that are not C12.18, so that MEP traffic on a shared UART is told from what is
    left of damaged packets and noise.

    Consecutive skipped bytes are read as frames back to back from their start: a length out
    of range ends the run (the rest is not MEP), as does any C12.18 event between them.  A
    damaged packet's remains never pass: they start with its control and sequence bytes
    (``00 00`` or ``20 00`` -- lengths 0 and 8192)."""

    pending: bytearray = field(default_factory=bytearray)
    lost: bool = False
    """The run went out of step: ignore it until the next C12.18 event."""

    def feed(self, data: bytes) -> int:
        """Add skipped bytes; returns the whole MEP frames completed."""
        if self.lost:
            return 0
        self.pending += data
        frames = 0
        while len(self.pending) >= LENGTH_SIZE:
            length = int.from_bytes(self.pending[:LENGTH_SIZE], "big")
            if not MEP_MIN_MESSAGE <= length <= MAX_MESSAGE:
                self.pending.clear()
                self.lost = True
                break
            if len(self.pending) < LENGTH_SIZE + length:
                break
            del self.pending[: LENGTH_SIZE + length]
            frames += 1
        return frames

    def reset(self) -> None:
        """A C12.18 event: the run of skipped bytes ended."""
        self.pending.clear()
        self.lost = False


# -- the connection ---------------------------------------------------------------------------
@dataclass(slots=True)
class OpticalLink:
    """One optical connection's state between requests (see the module docstring).

    The meter's timers (``session_timeout``, ``hold_off``, the lockout) outlive a connection;
    :meth:`connection_opened` resets what belongs to one connection.
    """

    password: bytes
    timing: OpticalTiming
    baud: int = 9600
    user_id: int = 0
    user: str = "mepgate"
    want_packet_size: int = MAX_PACKET_SIZE
    want_packets: int = MAX_PACKETS
    packet_size: int = DEFAULT_PACKET_SIZE
    packets: int = DEFAULT_PACKETS
    buffer: PacketBuffer = field(
        default_factory=lambda: PacketBuffer(max_packet_size=DEFAULT_PACKET_SIZE)
    )
    toggle: bool = False
    """The toggle bit of the next new packet we send (flips per new packet)."""
    last_packet: tuple[bool, bytes] | None = None
    """Toggle and CRC of the last packet received: the same again is a duplicate."""
    in_session: bool = False
    session_since: float | None = None
    last_traffic: float | None = None
    session_timeout: float = 0.0
    hold_off: float = 0.0
    timers_known: bool = False
    """The session timeout and hold-off were read from the meter (ET51/ET55)."""
    held_off_until: float | None = None
    cut_off_since: float | None = None
    silent_from: float | None = None
    """When a session last answered before it fell silent (the meter's timeout and hold-off
    began about then)."""
    """The start of a session the meter stopped answering in (it may have timed it out)."""
    lockout_threshold: int | None = None
    lockout_minutes: int | None = None
    """ET55's failed-login lockout (firmware 4.30+), when it could be read; 0: none."""
    refusals: list[float] = field(default_factory=list)
    """When the key was refused, in a row (a lockout counts them)."""
    locked_until: float | None = None
    echoes: bool = False
    """The probe echoes what we send (seen once): our bytes are dropped as they come back."""
    echo_pending: bytearray = field(default_factory=bytearray)
    woken: bool = False
    """A packet of ours got through on this connection (a Gen 2/3 meter switched its UART)."""
    mep: MepSpotter = field(default_factory=MepSpotter)
    """MEP frames among the bytes that are not C12.18 (a shared UART)."""
    heard: list[tuple[str, bytes]] | None = None
    """When tracing: what came in, in order (``<<`` a packet, ACK or NAK, ``<< skipped``)."""

    def __post_init__(self) -> None:
        self.session_timeout = self.session_timeout or self.timing.session_timeout
        self.hold_off = self.hold_off or self.timing.hold_off

    def __repr__(self) -> str:
        return (
            f"OpticalLink(baud={self.baud}, packet_size={self.packet_size}, "
            f"packets={self.packets}, in_session={self.in_session}, password=<hidden>)"
        )

    def connection_opened(self) -> None:
        """A new connection: nothing held, no session, the default packet size."""
        self.buffer = PacketBuffer(max_packet_size=DEFAULT_PACKET_SIZE)
        self.in_session = False
        self.session_since = None
        self.last_packet = None
        self.packet_size = DEFAULT_PACKET_SIZE
        self.packets = DEFAULT_PACKETS
        self.echo_pending.clear()
        self.woken = False

    @property
    def max_message(self) -> int:
        """Bytes of one message (request or response) at the negotiated size."""
        return (self.packet_size - PACKET_OVERHEAD) * self.packets

    @property
    def max_read(self) -> int:
        """Table bytes one read response can carry at the negotiated size."""
        return max(1, min(self.max_message - READ_RESPONSE_OVERHEAD, MAX_READ_COUNT))

    def renewal_due(self, now: float) -> bool:
        """The session is old enough to be renewed before the meter's timeout ends it."""
        since = self.session_since
        timeout = self.session_timeout
        margin = max((1.0 - RENEWAL_SHARE) * timeout, RENEWAL_MARGIN_S)
        due = max(timeout - margin, timeout / 2)
        return since is not None and now - since >= due

    def timeout_plausible(self, age: float) -> bool:
        """Whether a session ``age`` seconds old may have met the meter's session timeout
        (see :data:`~mepgate.client.optical.timing.TIMEOUT_PLAUSIBLE_SHARE`)."""
        share = TIMEOUT_PLAUSIBLE_SHARE * self.session_timeout
        return age >= min(share, TIMEOUT_PLAUSIBLE_AGE)

    def idle_ended(self, now: float) -> bool:
        """The session has been quiet long enough for the meter to drop it (channel traffic
        timeout)."""
        last = self.last_traffic
        limit = IDLE_SHARE * self.timing.channel_traffic_timeout
        return last is not None and now - last >= limit

    def set_timers(self, session_timeout: float, hold_off: float) -> None:
        """The meter's optical D.O.S. timers, read from ET51 (Gen 2/3) or ET55 (Gen 4)."""
        if session_timeout > 0:
            self.session_timeout = float(session_timeout)
        if hold_off > 0:
            self.hold_off = float(hold_off)
        self.timers_known = True

    def key_refused(self, at: float) -> float | None:
        """Count a refused key; returns the lockout's seconds when it starts now."""
        self.refusals.append(at)
        threshold, minutes = self.lockout_threshold, self.lockout_minutes
        if threshold and minutes and len(self.refusals) >= threshold:
            self.locked_until = at + 60.0 * minutes
            return 60.0 * minutes
        return None

    def start_session(self, at: float) -> None:
        self.in_session = True
        self.session_since = at
        self.cut_off_since = None
        self.refusals.clear()
        self.locked_until = None

    def end_session(self) -> None:
        self.in_session = False
        self.session_since = None

    def take_toggle(self, count: int) -> bool:
        """The toggle for a message of ``count`` new packets (the next one after them)."""
        first = self.toggle
        self.toggle = first ^ bool(count % 2)
        return first


# -- steps --------------------------------------------------------------------------------------
class _Step(Protocol[R]):
    def next_action(self) -> Transmit | Receive | Finished[R] | Failed: ...

    def sent(self, at: float) -> None: ...

    def received(self, data: bytes, at: float) -> None: ...

    def timed_out(self, at: float) -> None: ...


class _Drain:
    """Take in what arrived since the last request; finishes with the time (the clock the
    decisions need: hold-off, session age).  A packet the meter sends again (our ACK of it
    was lost) is acknowledged, so that it stops."""

    def __init__(self, link: OpticalLink, seen: Observation) -> None:
        self._link = link
        self._seen = seen
        self._at: float | None = None
        self._ack = False

    def next_action(self) -> Action[float]:
        if self._ack:
            turn = self._link.timing.turn_around
            return Transmit(bytes([ACK]), (self._link.last_traffic or 0.0) + turn)
        return Receive(until=None) if self._at is None else Finished(self._at)

    def sent(self, at: float) -> None:
        if not self._ack:
            raise _misuse("sent", "draining")
        self._ack = False
        self._seen.bytes_sent += 1
        self._link.last_traffic = at
        if self._link.echoes:
            self._link.echo_pending += bytes([ACK])

    def received(self, data: bytes, at: float) -> None:
        self._seen.bytes_received += len(data)
        _take_in(self._link, self._seen, data, self._late)
        self._link.last_traffic = at

    def _late(self, event: Event) -> None:
        if isinstance(event, PacketReceived):
            packet = event.packet
            if (packet.toggle, bytes(event.raw[-2:])) == self._link.last_packet:
                self._seen.duplicates += 1
                self._ack = True

    def timed_out(self, at: float) -> None:
        self._at = at


class _Pause:
    """Wait until ``until`` (busy meter): what arrives meanwhile is taken in and dropped."""

    def __init__(self, link: OpticalLink, seen: Observation, until: float) -> None:
        self._link = link
        self._seen = seen
        self._until = until
        self._done = False

    def next_action(self) -> Action[None]:
        return Finished(None) if self._done else Receive(until=self._until)

    def sent(self, at: float) -> None:
        raise _misuse("sent", "pausing")

    def received(self, data: bytes, at: float) -> None:
        self._seen.bytes_received += len(data)
        _take_in(self._link, self._seen, data, lambda event: None)
        self._done = at >= self._until

    def timed_out(self, at: float) -> None:
        self._done = True


Event = PacketReceived | Acked | Naked | BadPacket


def _take_in(
    link: OpticalLink, seen: Observation, data: bytes, handle: Callable[[Event], None]
) -> None:
    """Feed ``data`` (less our echo) to the buffer and hand each event to ``handle``; bytes
    that are not C12.18 are counted."""
    data = _strip_echo(link, data)
    if not data:
        return
    link.buffer.feed(data)
    _events(link, seen, handle)


def _events(link: OpticalLink, seen: Observation, handle: Callable[[Event], None]) -> None:
    while True:
        event = link.buffer.next_event()
        if event is NEED_DATA:
            return
        _event(link, seen, event, handle)


def _event(
    link: OpticalLink, seen: Observation, event: object, handle: Callable[[Event], None]
) -> None:
    heard = link.heard
    if isinstance(event, Skipped):
        seen.skipped_bytes += event.count
        seen.mep_frames += link.mep.feed(event.data)
        if heard is not None:
            heard.append(("<< skipped", event.data))
        return
    link.mep.reset()
    if heard is not None:
        heard.append(("<<", _wire(event)))
    if isinstance(event, PacketReceived | Acked | Naked | BadPacket):
        handle(event)


def _wire(event: object) -> bytes:
    if isinstance(event, PacketReceived | BadPacket):
        return bytes(event.raw)
    if isinstance(event, Acked):
        return bytes([event.byte])
    if isinstance(event, Naked):
        return bytes([NAK])
    return b""


def _strip_echo(link: OpticalLink, data: bytes) -> bytes:
    """Drop our own bytes coming back from an echoing probe (once it is known to echo)."""
    pending = link.echo_pending
    if not pending:
        return data
    same = 0
    for ours, theirs in zip(pending, data, strict=False):
        if ours != theirs:
            break
        same += 1
    if same < min(len(pending), len(data)):
        pending.clear()  # the echo was lost or damaged: what came is the meter's
        return data[same:] if same else data
    del pending[:same]
    return data[same:]


class _Phase(Enum):
    SEND = "send"  # a packet of ours is due
    ACK = "ack"  # waiting for the meter's ACK of it
    RESPONSE = "response"  # waiting for the response's packets
    DONE = "done"


class ExchangeFailedError(MeterLinkError):
    """(Internal) one exchange got no usable answer; the request decides what it means.
    ``silent``: nothing at all came from the meter."""

    def __init__(self, detail: str = "", *, interface: str = OPTICAL, silent: bool) -> None:
        super().__init__(detail, interface=interface)
        self.silent = silent


class Exchange:
    """One C12.18 message out and its response message back; finishes with the response.

    ``wake``: the first packet on a connection -- a Gen 2/3 meter switches its shared UART on
    seeing 0xEE and usually loses that packet (Optical guide, "Sharing the Optical Port with
    the MEP Interface"): a NAK or silence then is expected and costs no retry.
    """

    def __init__(
        self,
        link: OpticalLink,
        message: bytes,
        seen: Observation,
        what: str,
        *,
        wake: bool = False,
        not_before: float = 0.0,
    ) -> None:
        self._link = link
        self._seen = seen
        self._what = what
        self._wake = wake
        size = link.packet_size
        count = packets_needed(len(message), size)
        packets = split(message, size, link.take_toggle(count), packets=link.packets)
        self._packets = [p.to_bytes() for p in packets]
        self._sent_packets = frozenset(self._packets)
        self._index = 0
        self._tries = 0  # sends of the current packet beyond the first
        self._waits = 0  # NAKs sent for a missing response packet
        self._phase = _Phase.SEND
        self._out: deque[bytes] = deque()  # ACK / NAK to send
        self._not_before = not_before
        self._deadline = 0.0
        self._last_rx = 0.0
        self._parts: list[Packet] = []
        self._result: bytes | None = None
        self._error: MepgateError | None = None
        self.answered = False
        """Anything but our own echo came back (an ACK, a NAK, a packet, foreign bytes)."""

    # -- actions --------------------------------------------------------------------------------
    def next_action(self) -> Action[bytes]:
        if self._out:
            return Transmit(self._out[0], self._pace())
        if self._error is not None:
            return Failed(self._error)
        if self._phase is _Phase.DONE:
            assert self._result is not None
            return Finished(self._result)
        if self._phase is _Phase.SEND:
            return Transmit(self._packets[self._index], self._pace())
        return Receive(until=self._limit())

    def _pace(self) -> float:
        """C12.18 turn-around: not before a pause after the last byte heard."""
        return max(self._not_before, self._last_rx + self._link.timing.turn_around)

    def _limit(self) -> float:
        """The wait's end: moved on while a packet is arriving (inter-character timeout)."""
        if self._link.buffer.held:
            gap = self._last_rx + self._link.timing.inter_character_timeout
            return max(self._deadline, gap)
        return self._deadline

    # -- events ---------------------------------------------------------------------------------
    def sent(self, at: float) -> None:
        link = self._link
        if self._out:
            data = self._out.popleft()
            if data == bytes([NAK]):
                # A NAK asks the meter for a packet again (a missing or damaged one): it is a
                # frame sent like a resend of ours, so a wait that ends without an answer (a
                # timeout) always follows a frame counted here -- loss rates stay rates.
                self._seen.frames_sent += 1
        elif self._phase is _Phase.SEND:
            data = self._packets[self._index]
            self._seen.frames_sent += 1
            link.buffer.expect_ack = True  # one ACK (or a 0x00 for one) is due
            self._phase = _Phase.ACK
            self._deadline = self._wait_from(at, data)
        else:
            raise _misuse("sent", self._phase.value)
        self._seen.bytes_sent += len(data)
        link.last_traffic = at
        if link.echoes:
            link.echo_pending += data
        if self._phase is _Phase.RESPONSE and data in (bytes([ACK]), bytes([NAK])):
            self._deadline = self._wait_from(at, data)

    def _wait_from(self, at: float, data: bytes) -> float:
        """From a send's last byte on the wire: the response timeout, and for a response
        packet the time one takes on the wire."""
        timing = self._link.timing
        end = at + wire_time(len(data), self._link.baud) + timing.response_timeout
        if self._phase is _Phase.RESPONSE:
            end += wire_time(self._link.packet_size, self._link.baud)
        return end

    def received(self, data: bytes, at: float) -> None:
        if self._phase not in (_Phase.ACK, _Phase.RESPONSE, _Phase.DONE):
            raise _misuse("received", self._phase.value)
        self._seen.bytes_received += len(data)
        self._last_rx = at
        self._link.last_traffic = at
        skipped = self._seen.skipped_bytes
        _take_in(self._link, self._seen, data, self._handle)
        self.answered |= self._seen.skipped_bytes > skipped
        if self._phase in (_Phase.ACK, _Phase.RESPONSE) and not self._out and at >= self._limit():
            self._expire()

    def timed_out(self, at: float) -> None:
        if self._phase not in (_Phase.ACK, _Phase.RESPONSE):
            raise _misuse("timed_out", self._phase.value)
        if at >= self._limit():
            self._expire()

    # -- decisions ------------------------------------------------------------------------------
    def _handle(self, event: Event) -> None:
        if not (isinstance(event, PacketReceived) and bytes(event.raw) in self._sent_packets):
            self.answered = True
        if self._phase is _Phase.DONE or self._error is not None:
            if isinstance(event, PacketReceived):
                self._late_packet(event)
            return
        if isinstance(event, Acked):
            if self._phase is _Phase.ACK:
                self._acked()
            return
        if isinstance(event, Naked):
            if self._phase is _Phase.ACK:
                self._naked()
            return
        if isinstance(event, BadPacket):
            self._seen.damaged_replies += 1
            if self._phase is _Phase.RESPONSE:
                self._out.append(bytes([NAK]))  # damaged: the meter sends it again
            return
        self._packet(event)

    def _acked(self) -> None:
        self._link.woken = True
        self._link.buffer.expect_ack = False
        self._tries = 0
        self._index += 1
        if self._index < len(self._packets):
            self._phase = _Phase.SEND
            return
        self._phase = _Phase.RESPONSE
        self._deadline = self._wait_from(self._last_rx, b"")

    def _naked(self) -> None:
        if self._wake and not self._link.woken and self._index == 0 and self._tries == 0:
            self._link.woken = True  # the UART switched on this packet: expected, free
            self._seen.resends += 1
            self._phase = _Phase.SEND
            return
        self._seen.naks += 1
        self._resend()

    def _resend(self) -> None:
        if self._tries >= self._link.timing.link_retries:
            self._fail()
            return
        self._tries += 1
        self._seen.resends += 1
        self._phase = _Phase.SEND

    def _packet(self, event: PacketReceived) -> None:
        raw = bytes(event.raw)
        if raw in self._sent_packets:
            # Our own packet back: the probe echoes.  From now on its echo is dropped as it
            # arrives (before it can look like the meter's ACK).
            self._seen.echoed_frames += 1
            self._link.echoes = True
            return
        packet = event.packet
        identity = (packet.toggle, raw[-2:])
        if identity == self._link.last_packet:
            self._seen.duplicates += 1  # our ACK was lost: acknowledge again, drop it
            self._out.append(bytes([ACK]))
            return
        if self._phase is _Phase.ACK:
            if self._index < len(self._packets) - 1:
                self._seen.damaged_replies += 1  # a packet where an ACK belongs: stale
                return
            # The meter answers: it got our last packet (its ACK was lost on the way).
            self._acked()
        self._link.last_packet = identity
        self._out.append(bytes([ACK]))
        self._waits = 0
        if not packet.multi:
            self._parts = []
            self._finish(packet.data)
            return
        if packet.first:
            self._parts = [packet]
        elif self._parts and packet.seq == self._parts[-1].seq - 1:
            self._parts.append(packet)
        else:
            # A packet out of its place: the message is started again by the meter's resend.
            self._seen.damaged_replies += 1
            self._parts = []
            return
        if packet.seq == 0:
            message = b"".join(p.data for p in self._parts)
            self._parts = []
            self._finish(message)
        else:
            self._deadline = self._wait_from(self._last_rx, b"")

    def _finish(self, message: bytes) -> None:
        self._result = message
        self._phase = _Phase.DONE
        self._link.woken = True

    def _late_packet(self, event: PacketReceived) -> None:
        """A packet after the response (the meter resent it: our ACK was lost): ACK it."""
        raw = bytes(event.raw)
        if raw in self._sent_packets:
            self._seen.echoed_frames += 1
            return
        self._seen.duplicates += 1
        self._out.append(bytes([ACK]))

    def _expire(self) -> None:
        """The wait ran out: drop a stale partial packet (what it hid is looked at), then
        resend (no ACK) or ask for the missing response packet again with a NAK."""
        phase = self._phase
        for event in self._link.buffer.expire():
            _event(self._link, self._seen, event, self._handle)
        if self._phase is not phase or self._out or self._error is not None:
            return  # what was behind the stale start decided it
        self._seen.timeouts += 1
        if self._phase is _Phase.ACK:
            if self._wake and not self._link.woken and self._index == 0 and self._tries == 0:
                # The UART switch may swallow the packet without a NAK.
                self._link.woken = True
                self._seen.resends += 1
                self._phase = _Phase.SEND
                return
            self._resend()
            return
        if self._waits >= self._link.timing.link_retries:
            self._fail()
            return
        self._waits += 1
        self._out.append(bytes([NAK]))

    def _fail(self) -> None:
        self._error = ExchangeFailedError(self._what, interface=OPTICAL, silent=not self.answered)


# -- one request ------------------------------------------------------------------------------
Script = Generator[_Step[Any], Any, R]


class _Scripted(Generic[R]):
    """A machine whose decisions are a generator: it yields steps (sub-machines), is sent
    each step's result (or has its error thrown in), and returns the outcome."""

    def __init__(self, script: Script[R]) -> None:
        self._script = script
        self._step: _Step[Any] | None = None
        self._outcome: Finished[R] | Failed | None = None
        self._advance(None, None)

    def next_action(self) -> Action[R]:
        while self._outcome is None:
            assert self._step is not None
            action = self._step.next_action()
            if isinstance(action, Finished):
                self._advance(action.result, None)
            elif isinstance(action, Failed):
                self._advance(None, action.error)
            else:
                return action
        return self._outcome

    def _advance(self, result: object, error: MepgateError | None) -> None:
        try:
            if error is not None:
                self._step = self._script.throw(error)
            else:
                self._step = self._script.send(result)
        except StopIteration as done:
            self._outcome = Finished(done.value)
        except MepgateError as failure:
            self._outcome = Failed(failure)

    def _current(self) -> _Step[Any]:
        if self._step is None or self._outcome is not None:
            raise LocalProtocolError("the optical machine is done: no more events expected")
        return self._step

    def sent(self, at: float) -> None:
        self._current().sent(at)

    def received(self, data: bytes, at: float) -> None:
        self._current().received(data, at)

    def timed_out(self, at: float) -> None:
        self._current().timed_out(at)


class OpticalRequest(_Scripted[Reply]):
    """One C12.18 request (a read or write message, a write with its checksum) with the
    session it needs; finishes with its :class:`Reply` (a read's data checked and stripped
    of its checksum)."""

    def __init__(self, link: OpticalLink, message: bytes, what: str) -> None:
        self._link = link
        self._message = message
        self._what = what
        self.seen = Observation()
        super().__init__(self._run())

    def observations(self) -> list[Observation]:
        return [self.seen]

    def _run(self) -> Script[Reply]:
        link, seen = self._link, self.seen
        now: float = yield _Drain(link, seen)
        _check_barred(link, now, self._what)
        if link.in_session and link.idle_ended(now):
            link.end_session()  # the meter dropped to its base state meanwhile
        if link.in_session and link.renewal_due(now):
            try:
                yield from _end_session(link, seen, self._what)
            except MeterLinkError:
                link.end_session()
        starts = 0
        busy = 0
        attempts = 0
        pause_until = 0.0
        quiet_from: float | None = None  # the session answered until here, then fell silent
        while True:
            if not link.in_session:
                starts += 1
                if starts > SESSION_STARTS:
                    raise error_for(diagnose_optical(seen), self._what, interface=OPTICAL)
                yield from _start_session(link, seen, self._what)
                quiet_from = None
            attempts += 1
            alive_at = self._last_heard()  # the session was answering until here
            try:
                response: bytes = yield Exchange(
                    link, self._message, seen, self._what, not_before=pause_until
                )
            except ExchangeFailedError as failed:
                since = link.session_since
                exhausted = attempts >= link.timing.exchange_attempts
                if not (failed.silent and since is not None):
                    quiet_from = None
                    if exhausted:
                        raise error_for(
                            diagnose_optical(seen), self._what, interface=OPTICAL
                        ) from None
                    continue
                quiet_from = alive_at if quiet_from is None else quiet_from
                age = quiet_from - since
                if link.timeout_plausible(age):
                    # Silence in a session old enough: the meter may have ended it at its
                    # session timeout.  Its timeout is then no longer than the session lived:
                    # renew sooner (its tables may say otherwise -- changed since read).
                    link.session_timeout = min(link.session_timeout, max(age, 1.0))
                # A whole exchange unanswered, in a young session too (the line, or a timeout
                # far shorter than assumed): a fresh Ident tells at once.  Ignored too, the
                # meter holds us off (its timeout is learnt then, in _held_off); answered, it
                # was the line and the session starts again.  Asking again in the old session
                # instead would wait out a short hold-off without learning from it.
                link.cut_off_since = since
                link.silent_from = quiet_from
                link.end_session()
                continue
            quiet_from = None
            code = response[0] if response else ResponseCode.OK
            if code in BUSY:
                seen.busy_answers += 1
                busy += 1
                if busy > link.timing.busy_retries:
                    raise error_for(Diagnosis.NOISY, f"{self._what}: the meter stayed busy")
                pause_until = self._last_heard() + link.timing.busy_retry_interval
                yield _Pause(link, seen, pause_until)
                continue
            if code == ISSS:
                link.end_session()  # the meter left the session: start one again
                continue
            if code == ResponseCode.OK and is_read(self._message):
                try:
                    data = decode_read_response(response)
                except RemoteProtocolError:
                    seen.damaged_replies += 1  # checksum: ask again
                    if attempts >= link.timing.exchange_attempts:
                        raise BadReplyError(self._what, interface=OPTICAL) from None
                    continue
                seen.replies += 1
                return Reply(code=code, data=data)
            seen.replies += 1
            return Reply(code=code)

    def _last_heard(self) -> float:
        return self._link.last_traffic or 0.0


def _held_off(link: OpticalLink, session_since: float, what: str) -> HeldOffError:
    """The meter went silent in an open session: it ended it at its session timeout and
    ignores the optical port for its hold-off.  Sessions are renewed sooner from now on."""
    now = link.last_traffic or session_since
    silent_from = link.silent_from if link.silent_from is not None else now
    age = max(silent_from - session_since, 1.0)
    link.session_timeout = min(link.session_timeout, age)  # the meter's may be shorter
    # The hold-off began when the meter ended the session, not when we noticed.
    link.held_off_until = silent_from + link.hold_off
    left = max(link.held_off_until - now, 0.0)
    link.cut_off_since = link.silent_from = None
    link.end_session()
    return HeldOffError(f"{what}: held off for {left:.0f} s more", seconds_left=left)


def _locked_out(link: OpticalLink, now: float, what: str) -> LockedOutError:
    """Logon refused with onp: the meter's failed-login lockout (firmware 4.30+).  How long is
    left is known when the lockout started here and ET55's minutes were read."""
    until = link.locked_until
    if until is not None and until > now:
        left: float | None = until - now
        how_long = f"{(until - now) / 60:.0f} more minutes"
    elif link.lockout_minutes:
        left = 60.0 * link.lockout_minutes
        how_long = f"up to {link.lockout_minutes} minutes (the meter's setting in ET55)"
        link.locked_until = now + left
    else:
        left = None
        how_long = "the minutes the grid company set in ET55 (unknown to this key)"
    return LockedOutError(
        f"{what}: the meter refuses to log on; locked out for {how_long}", seconds_left=left
    )


def _check_barred(link: OpticalLink, now: float, what: str) -> None:
    """Do not knock while the meter holds us off or has locked us out: say how long."""
    until = link.held_off_until
    if until is not None:
        if now < until:
            left = until - now
            raise HeldOffError(f"{what}: held off for {left:.0f} s more", seconds_left=left)
        link.held_off_until = None
    locked = link.locked_until
    if locked is not None:
        if now < locked:
            left = locked - now
            raise LockedOutError(
                f"{what}: locked out for {left / 60:.0f} more minutes", seconds_left=left
            )
        link.locked_until = None


def _start_session(link: OpticalLink, seen: Observation, what: str) -> Script[None]:
    """Ident (waking the port), Negotiate, Logon, Security (C12.18 session states)."""
    link.end_session()
    link.last_packet = None
    link.packet_size, link.packets = DEFAULT_PACKET_SIZE, DEFAULT_PACKETS
    link.buffer.max_packet_size = DEFAULT_PACKET_SIZE
    seen.sessions += 1
    started: float = link.last_traffic or 0.0
    try:
        response: bytes = yield Exchange(
            link, ident_request(), seen, "identifying", wake=not link.woken
        )
    except ExchangeFailedError as failed:
        cut_off = link.cut_off_since
        if failed.silent and cut_off is not None:
            raise _held_off(link, cut_off, what) from None
        raise error_for(diagnose_optical(seen), what, interface=OPTICAL) from None
    if response[:1] == bytes([ISSS]):
        # The meter is still in an earlier client's session (it left without Terminate, and
        # the channel traffic timeout has not ended it yet): end it, then identify.
        yield Exchange(link, terminate_request(), seen, "terminating an earlier session")
        response = yield Exchange(link, ident_request(), seen, "identifying")
    _expect_ok(response, "identifying (Ident)", seen)
    started = link.last_traffic or started
    want = negotiate_request(link.want_packet_size, link.want_packets)
    response = yield Exchange(link, want, seen, "negotiating")
    if response[:1] == bytes([ResponseCode.OK]):
        try:
            granted = decode_negotiate_response(response)
        except RemoteProtocolError:
            pass  # keep the defaults: they need no negotiation
        else:
            # Never more than asked: a meter granting more is not believed.
            size = min(granted.packet_size, link.want_packet_size, MAX_PACKET_SIZE)
            link.packet_size = max(MIN_PACKET_SIZE, size)
            link.packets = max(1, min(granted.packets, link.want_packets))
            link.buffer.max_packet_size = max(link.packet_size, DEFAULT_PACKET_SIZE)
    response = yield Exchange(link, logon_request(link.user_id, link.user), seen, "logging on")
    if response[:1] == bytes([ResponseCode.OPERATION_NOT_POSSIBLE]):
        seen.replies += 1
        locked = _locked_out(link, started, what)
        try:
            yield from _end_session(link, seen, what)  # back to the base state: Terminate
        except MeterLinkError:
            link.end_session()
        raise locked
    _expect_ok(response, "logging on (Logon)", seen)
    response = yield Exchange(link, security_request(link.password), seen, "sending the key")
    code = response[0] if response else ResponseCode.OK
    if code != ResponseCode.OK:
        seen.key_refusals += 1
        at = link.last_traffic or started
        lockout = link.key_refused(at)
        try:
            yield from _end_session(link, seen, what)
        except MeterLinkError:
            link.end_session()
        if lockout is not None:
            raise LockedOutError(
                f"{what}: the key was refused {len(link.refusals)} times, the meter's limit: "
                f"locked out for {lockout / 60:.0f} minutes",
                seconds_left=lockout,
            )
        raise KeyRefusedError(
            f"{what}: the meter answered the key with 0x{code:02X}", interface=OPTICAL
        )
    link.start_session(started)


def _end_session(link: OpticalLink, seen: Observation, what: str) -> Script[None]:
    """Logoff, then Terminate: the meter back in its base state."""
    try:
        if link.in_session:
            yield Exchange(link, logoff_request(), seen, "logging off")
        yield Exchange(link, terminate_request(), seen, "terminating")
    finally:
        link.end_session()


def _expect_ok(response: bytes, what: str, seen: Observation) -> None:
    code = response[0] if response else ResponseCode.OK
    if code == ResponseCode.OK:
        return
    seen.replies += 1
    if code in (ISC, ResponseCode.OPERATION_NOT_POSSIBLE):
        # The port answers and refuses a session: disabled by the grid company.
        raise OpticalDisabledError(f"{what}: the meter answered 0x{code:02X}", interface=OPTICAL)
    detail = f"{what}: the meter answered 0x{code:02X}"
    raise error_for(Diagnosis.BAD_REPLY, detail, interface=OPTICAL)


class SessionEnd(_Scripted[None]):
    """Logoff and Terminate before the client lets go of the port (errors ignored: the meter
    drops a silent session by itself)."""

    def __init__(self, link: OpticalLink) -> None:
        self._link = link
        self.seen = Observation()
        super().__init__(self._run())

    def _run(self) -> Script[None]:
        link = self._link
        yield _Drain(link, self.seen)
        if not link.in_session:
            return
        try:
            yield from _end_session(link, self.seen, "ending the session")
        except MeterLinkError:
            link.end_session()


def _misuse(event: str, phase: str) -> MepgateError:
    return LocalProtocolError(f"{event}() is not expected while the machine is {phase}")
