"""The simulated meter's optical port as a sans-IO C12.18 server: bytes in, bytes out.

:class:`OpticalServer` takes what the line delivered (:meth:`~OpticalServer.receive`) and the
passing of time (:meth:`~OpticalServer.poll`), always with the time passed in, and returns what
the meter sends: ACKs, NAKs and response packets (:class:`Transmit`).  It reads no clock and
does no I/O; the front end (:mod:`mepgate.simulator.serve.optical`) paces and damages the
bytes.  Everything C12.18 comes from :mod:`mepgate.c1218`; this module adds what a meter
decides:

* link: a packet with a bad CRC is NAKed, a good one ACKed; a resent packet (same toggle, same
  CRC) is ACKed and dropped; either first toggle value is accepted; multi-packet requests are
  reassembled, responses split to the negotiated size and sent one packet per ACK; a NAK (or no
  ACK within the response timeout) sends the packet again, at most ``LINK_RETRIES`` times;
* session: the states of :mod:`mepgate.c1218.states` (a service out of state gets ``isss``),
  back to the base state after the channel traffic timeout without traffic (or the Wait
  service's seconds); Negotiate grants at most :data:`MAX_GRANTED_PACKET_SIZE` bytes and
  :data:`MAX_GRANTED_PACKETS` packets, at 9600 baud only;
* security (optical guide, "Security and Keys"): Logon accepts any user; Security compares the
  password with the MK, PK and RK; access per key and the hardware lock
  (:mod:`.access`); a wrong password is answered ``isc``;
* the meter's optical settings (:mod:`mepgate.simulator.model.optical_port`): the session
  timeout and hold-off (the port ignores everything while held off), the "Disable Optical
  Port" bit (ignores everything; with :attr:`OpticalServer.refuse_when_disabled` it answers
  every service ``isc`` instead -- the guides do not say which a meter does), and from
  firmware 4.30 the failed-login lockout (every Logon answered ``onp`` until it ends).

Times: ``now`` is the line's clock in seconds (link timers: 6 s, 2 s, 0.5 s).  The meter's own
timers (session timeout, hold-off, lockout) run on simulated time, ``now * speed``, so a
simulator running at ``--speed 60`` times out a 600 s session in 10 s.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mepgate.c1218.buffer import (
    NEED_DATA,
    Acked,
    BadPacket,
    Event,
    Naked,
    PacketBuffer,
    PacketReceived,
)
from mepgate.c1218.constants import (
    CHANNEL_TRAFFIC_TIMEOUT,
    DEFAULT_BAUD,
    DEFAULT_PACKET_SIZE,
    DEFAULT_PACKETS,
    INTER_CHARACTER_TIMEOUT,
    LINK_RETRIES,
    RESPONSE_TIMEOUT,
)
from mepgate.c1218.errors import MessageError, ReassemblyError, UnsupportedServiceError
from mepgate.c1218.packets import ACK, NAK, DuplicateFilter, Packet, Reassembler, split
from mepgate.c1218.packets import message_capacity as packets_capacity
from mepgate.c1218.services import (
    IdentRequest,
    LogoffRequest,
    LogonRequest,
    NegotiateRequest,
    NegotiateResponse,
    Request,
    SecurityRequest,
    TerminateRequest,
    WaitRequest,
    encode_ident_response,
    encode_negotiate_response,
    encode_read_response,
    encode_response,
    parse_request,
    service_of,
)
from mepgate.c1218.states import SessionState, allowed, next_state
from mepgate.proto import AccessLevel, ReadRequest, ResponseCode, WriteRequest
from mepgate.proto.messages import MAX_COUNT
from mepgate.simulator.core import ProcedureRunner, TableStore, read_table
from mepgate.simulator.model.optical_port import OpticalSettings
from mepgate.simulator.optical.access import (
    BT07_PROCEDURE_INITIATE,
    ISC,
    OpticalAccess,
    OpticalKey,
    key_level,
)

MAX_GRANTED_PACKET_SIZE = 1024
"""The largest packet size the simulated meter grants (header and CRC included)."""
MAX_GRANTED_PACKETS = 8
"""The most packets per message it grants."""
READ_RESPONSE_OVERHEAD = 4
"""A read response's bytes around the table data: ok, count (2), checksum."""
LOCKED_OUT = ResponseCode.OPERATION_NOT_POSSIBLE
"""The answer to Logon (and Security) during a failed-login lockout ("onp").  The guides say
only that optical communication is locked out; answering keeps the link diagnosable."""
WRONG_PASSWORD = ISC
"""The answer to a Security service whose password matches no key ("isc")."""


class TransmitKind(enum.Enum):
    ACK = "ack"
    NAK = "nak"
    PACKET = "packet"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Bytes the meter sends now; ``kind`` lets the front end pace and damage them."""

    data: bytes
    kind: TransmitKind


_ACK = Transmit(bytes([ACK]), TransmitKind.ACK)
_NAK = Transmit(bytes([NAK]), TransmitKind.NAK)


@dataclass(slots=True)
class OpticalCounters:
    """What the optical port saw, for tests and status output."""

    packets: int = 0
    duplicates: int = 0
    bad_packets: int = 0
    naks_received: int = 0
    resends: int = 0
    messages: int = 0
    responses: int = 0
    sessions: int = 0
    security_failures: int = 0
    lockouts: int = 0
    session_timeouts: int = 0
    traffic_timeouts: int = 0
    ignored_bytes: int = 0
    lost_on_switch: int = 0


def _shipped_settings() -> OpticalSettings:
    return OpticalSettings()


class OpticalServer:
    """One meter's optical port (see the module docstring).  Not thread-safe: one caller."""

    def __init__(
        self,
        *,
        store: TableStore,
        keys: Mapping[OpticalKey, bytes],
        procedures: ProcedureRunner | None = None,
        settings: Callable[[], OpticalSettings] = _shipped_settings,
        access: OpticalAccess | None = None,
        speed: float = 1.0,
        max_packet_size: int = MAX_GRANTED_PACKET_SIZE,
        max_packets: int = MAX_GRANTED_PACKETS,
    ) -> None:
        self._store = store
        self._keys = dict(keys)
        self._procedures = procedures if procedures is not None else ProcedureRunner(store)
        self._settings = settings
        self.access = access if access is not None else OpticalAccess()
        self.speed = speed
        self.max_packet_size = max_packet_size
        self.max_packets = max_packets
        self.counters = OpticalCounters()
        # Packets up to the negotiated size only (the default until negotiated): a length
        # field damaged to more is refused at once instead of swallowing the resends after it.
        self._buffer = PacketBuffer(max_packet_size=DEFAULT_PACKET_SIZE)
        self._duplicates = DuplicateFilter()
        self._reassembler = Reassembler(max_packets)
        self.state = SessionState.BASE
        self.key = OpticalKey.NONE
        self.packet_size = DEFAULT_PACKET_SIZE
        self.packets = DEFAULT_PACKETS
        self._toggle = False  # toggle bit of our next new packet
        self._outgoing: list[Packet] = []  # response packets not yet acknowledged
        self._sent_at: float | None = None  # when _outgoing[0] last went out
        self._retries = 0
        self._last_traffic: float | None = None
        self._last_byte: float | None = None
        self._quiet_allowed = CHANNEL_TRAFFIC_TIMEOUT
        self._session_started: float | None = None  # meter seconds
        self._held_off_until: float | None = None  # meter seconds
        self._locked_until: float | None = None  # meter seconds
        self._failures = 0
        self._pending_base = False  # Terminate answered: back to base once it is acknowledged
        self._pending_negotiation: tuple[int, int] | None = None  # applies after the response
        self.switching = False
        """Set by a shared UART: the next packet is lost while the meter switches to optical."""
        self.refuse_when_disabled = False
        """A port disabled in ET55 answers every service ``isc`` instead of staying silent."""

    def __repr__(self) -> str:
        return (
            f"OpticalServer(state={self.state.value}, key={self.key.name}, "
            f"packet_size={self.packet_size}, packets={self.packets})"
        )

    @property
    def keys(self) -> Mapping[OpticalKey, bytes]:
        """The meter's keys (ground truth for tests; never logged)."""
        return dict(self._keys)

    # -- what the front end asks ---------------------------------------------------------------
    @property
    def in_session(self) -> bool:
        """Whether a session holds the port (on a shared UART the MEP side is then silent)."""
        return self.state is SessionState.SESSION

    @property
    def baud(self) -> int:
        return DEFAULT_BAUD

    def listening(self, now: float) -> bool:
        """False while the port is disabled or held off: bytes are then ignored unanswered."""
        if self._settings().port_disabled and not self.refuse_when_disabled:
            return False
        until = self._held_off_until
        return until is None or now * self.speed >= until

    def held_off_for(self, now: float) -> float:
        """Simulated seconds of hold-off left (0 when not held off)."""
        if self._held_off_until is None:
            return 0.0
        return max(0.0, self._held_off_until - now * self.speed)

    def locked_out_for(self, now: float) -> float:
        """Simulated seconds of failed-login lockout left (0 when not locked out)."""
        if self._locked_until is None:
            return 0.0
        return max(0.0, self._locked_until - now * self.speed)

    # -- events in -----------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> list[Transmit]:
        """The line delivered ``data`` at ``now``: what the meter sends in reply."""
        out = self.poll(now)
        if not self.listening(now):
            self.counters.ignored_bytes += len(data)
            return out
        self._last_traffic = now
        self._last_byte = now
        view = memoryview(data)
        while view:
            take = min(len(view), self._buffer.room)
            self._buffer.feed(bytes(view[:take]))
            view = view[take:]
            while (event := self._buffer.next_event()) is not NEED_DATA:
                out += self._on_event(event, now)
        return out

    def poll(self, now: float) -> list[Transmit]:
        """Let time pass to ``now``: timeouts, stale bytes, retransmissions."""
        out: list[Transmit] = []
        if (
            self._buffer.held
            and self._last_byte is not None
            and now - self._last_byte >= INTER_CHARACTER_TIMEOUT
        ):
            for event in self._buffer.expire():
                out += self._on_event(event, now)
        settings = self._settings()
        if settings.port_disabled and self.state is not SessionState.BASE:
            self._to_base()
        if (
            self.state is SessionState.SESSION
            and settings.dos_enabled
            and self._session_started is not None
            and now * self.speed - self._session_started >= settings.session_timeout_s
        ):
            # Optical guide, "Sharing the Optical Port ...": the session is ended and optical
            # attempts are ignored for the hold-off period.
            self.counters.session_timeouts += 1
            self._to_base()
            self._held_off_until = now * self.speed + settings.hold_off_s
        if (
            self.state is not SessionState.BASE
            and self._last_traffic is not None
            and now - self._last_traffic >= self._quiet_allowed
        ):
            self.counters.traffic_timeouts += 1
            self._to_base()
        if self._outgoing and self._sent_at is not None and now - self._sent_at >= RESPONSE_TIMEOUT:
            out += self._resend(now)
        return out

    def deadline(self) -> float | None:
        """The next line time :meth:`poll` has something to do (None: nothing pending)."""
        times: list[float] = []
        if self._buffer.held and self._last_byte is not None:
            times.append(self._last_byte + INTER_CHARACTER_TIMEOUT)
        if self.state is not SessionState.BASE and self._last_traffic is not None:
            times.append(self._last_traffic + self._quiet_allowed)
        if self._outgoing and self._sent_at is not None:
            times.append(self._sent_at + RESPONSE_TIMEOUT)
        settings = self._settings()
        if self.in_session and settings.dos_enabled and self._session_started is not None:
            times.append((self._session_started + settings.session_timeout_s) / self.speed)
        return min(times) if times else None

    # -- the link ------------------------------------------------------------------------------
    def _on_event(self, event: Event, now: float) -> list[Transmit]:
        if isinstance(event, PacketReceived | BadPacket) and self.switching:
            # Optical guide, "Sharing the Optical Port ...": the first frame after the switch
            # is usually not received accurately; the meter NAKs it and the client resends.
            self.switching = False
            self.counters.lost_on_switch += 1
            return [_NAK]
        if isinstance(event, BadPacket):
            self.counters.bad_packets += 1
            return [_NAK]
        if isinstance(event, Acked):
            return self._acked(now)
        if isinstance(event, Naked):
            self.counters.naks_received += 1
            return self._resend(now) if self._outgoing else []
        if isinstance(event, PacketReceived):
            return self._packet(event.packet, now)
        return []  # Skipped: not C12.18 (MEP replies on a shared UART, an echo, noise)

    def _packet(self, packet: Packet, now: float) -> list[Transmit]:
        self.counters.packets += 1
        out = [_ACK]
        if self._duplicates.is_duplicate(packet):
            # Its ACK was lost and the client sent it again: acknowledge, do not act twice.
            self.counters.duplicates += 1
            return out
        if self._outgoing:
            # A new request while our response waits for its ACK: the client has it (its ACK
            # was lost on the way).
            self._outgoing.clear()
            self._sent_at = None
            self._buffer.expect_ack = False
            self._finish_response()
        try:
            message = self._reassembler.add(packet)
        except ReassemblyError:
            return out
        if message is None:
            return out
        self.counters.messages += 1
        response = self._serve(message, now)
        return out + self._send_message(response, now)

    def _send_message(self, response: bytes, now: float) -> list[Transmit]:
        self.counters.responses += 1
        self._outgoing = split(response, self.packet_size, self._toggle, packets=self.packets)
        self._toggle = not self._outgoing[-1].toggle
        self._retries = 0
        return self._transmit_head(now)

    def _transmit_head(self, now: float) -> list[Transmit]:
        self._sent_at = now
        self._buffer.expect_ack = True
        return [Transmit(self._outgoing[0].to_bytes(), TransmitKind.PACKET)]

    def _acked(self, now: float) -> list[Transmit]:
        if not self._outgoing:
            return []
        self._outgoing.pop(0)
        self._retries = 0
        if not self._outgoing:
            self._sent_at = None
            self._finish_response()
            return []
        return self._transmit_head(now)

    def _resend(self, now: float) -> list[Transmit]:
        if self._retries >= LINK_RETRIES:
            self._outgoing.clear()  # the client is gone; it will ask again
            self._sent_at = None
            self._buffer.expect_ack = False
            return []
        self._retries += 1
        self.counters.resends += 1
        return self._transmit_head(now)

    def _finish_response(self) -> None:
        """Changes that wait until the response went out (negotiated sizes, terminate)."""
        if self._pending_base:
            self._to_base()
        if self._pending_negotiation is not None:
            self.packet_size, self.packets = self._pending_negotiation
            self._buffer.max_packet_size = max(self.packet_size, DEFAULT_PACKET_SIZE)
            self._reassembler.packets = self.packets
            self._pending_negotiation = None

    def _to_base(self) -> None:
        self.state = SessionState.BASE
        self.key = OpticalKey.NONE
        self.packet_size = DEFAULT_PACKET_SIZE
        self.packets = DEFAULT_PACKETS
        self._buffer.max_packet_size = DEFAULT_PACKET_SIZE
        self._reassembler = Reassembler(DEFAULT_PACKETS)
        self._duplicates.reset()
        self._toggle = False
        self._outgoing.clear()
        self._sent_at = None
        self._buffer.expect_ack = False
        self._quiet_allowed = CHANNEL_TRAFFIC_TIMEOUT
        self._session_started = None
        self._pending_base = False
        self._pending_negotiation = None

    # -- the services --------------------------------------------------------------------------
    def _serve(self, message: bytes, now: float) -> bytes:
        """The response message to one whole request message."""
        try:
            request = parse_request(message)
        except UnsupportedServiceError:
            return encode_response(ResponseCode.UNSUPPORTED_REQUEST)  # sns
        except MessageError:
            return encode_response(ResponseCode.UNRECOGNIZED_REQUEST)  # err
        service = service_of(request)
        if not allowed(self.state, service):
            return encode_response(ResponseCode.INVALID_SERVICE_SEQUENCE_STATE)  # isss
        self._quiet_allowed = CHANNEL_TRAFFIC_TIMEOUT
        if self._settings().port_disabled:
            return encode_response(ISC)  # refuse_when_disabled: the link works, nothing else
        response = self._execute(request, message, now)
        if response[0] == ResponseCode.OK:
            before = self.state
            self.state = next_state(self.state, service)
            if self.state is SessionState.SESSION and before is not SessionState.SESSION:
                self.counters.sessions += 1
                self._session_started = now * self.speed
            elif self.state is not SessionState.SESSION:
                self._session_started = None
            if self.state is SessionState.BASE:
                self._pending_base = True  # after the Terminate response went out
        return response

    def _execute(self, request: Request, message: bytes, now: float) -> bytes:
        if isinstance(request, IdentRequest):
            return encode_ident_response()
        if isinstance(request, NegotiateRequest):
            return self._negotiate(request)
        if isinstance(request, LogonRequest):
            if self.locked_out_for(now) > 0:
                return encode_response(LOCKED_OUT)
            self.key = OpticalKey.NONE
            return encode_response(ResponseCode.OK)
        if isinstance(request, SecurityRequest):
            return self._security(request.password, now)
        if isinstance(request, ReadRequest):
            if len(message) == 3:  # a C12.18 full read carries no count: the whole table
                request = dataclasses.replace(request, count=MAX_COUNT)
            return self._read(request)
        if isinstance(request, WriteRequest):
            return encode_response(self._write(request))
        if isinstance(request, WaitRequest):
            self._quiet_allowed = max(CHANNEL_TRAFFIC_TIMEOUT, float(request.seconds))
            return encode_response(ResponseCode.OK)
        if isinstance(request, LogoffRequest):
            self.key = OpticalKey.NONE
            return encode_response(ResponseCode.OK)
        if isinstance(request, TerminateRequest):
            return encode_response(ResponseCode.OK)
        return encode_response(ResponseCode.UNSUPPORTED_REQUEST)  # pragma: no cover

    def _negotiate(self, request: NegotiateRequest) -> bytes:
        size = min(request.packet_size, self.max_packet_size)
        count = min(request.packets, self.max_packets)
        # Echelon's meters run the optical port at 9600 baud whatever is offered.
        self._pending_negotiation = (size, count)
        return encode_negotiate_response(
            NegotiateResponse(packet_size=size, packets=count, baud=DEFAULT_BAUD)
        )

    def _security(self, password: bytes, now: float) -> bytes:
        if self.locked_out_for(now) > 0:
            return encode_response(LOCKED_OUT)
        level = key_level(password, self._keys)
        if level is not None:
            self._failures = 0
            self.key = level
            return encode_response(ResponseCode.OK)
        self.counters.security_failures += 1
        settings = self._settings()
        self._failures += 1
        if settings.lockout_threshold and self._failures >= settings.lockout_threshold:
            # MEP guide, ET55 "Optical Failed Authentication Lockout Threshold" / "Duration".
            self.counters.lockouts += 1
            self._failures = 0
            self._locked_until = now * self.speed + 60 * settings.lockout_minutes
        return encode_response(WRONG_PASSWORD)

    def _read(self, request: ReadRequest) -> bytes:
        refused = self.access.read(self.key, request.table_id)
        if refused is not None:
            return encode_response(refused)
        data = read_table(self._store, request)
        if isinstance(data, ResponseCode):
            return encode_response(data)
        capacity = packets_capacity(self.packet_size, self.packets) - READ_RESPONSE_OVERHEAD
        if len(data) > capacity:
            # The negotiated packets cannot carry it: the client must read in parts.
            return encode_response(ResponseCode.OPERATION_NOT_POSSIBLE)
        self._store.note_read(request.table_id)
        return encode_read_response(data)

    def _write(self, request: WriteRequest) -> ResponseCode:
        if self._store.table(request.table_id) is None:
            return ResponseCode.UNSUPPORTED_REQUEST
        refused = self.access.write(self.key, request.table_id)
        if refused is not None:
            return refused
        if request.table_id == BT07_PROCEDURE_INITIATE:
            key = self.key
            return self._procedures.initiate(
                request.data,
                AccessLevel.ADVANCED,
                lambda number: self.access.may_run(key, number),
            )
        return self._store.write(request.table_id, request.offset or 0, request.data)
