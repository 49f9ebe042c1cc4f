"""The optical port as a :class:`~mepgate.client.session.Session`: a link, the request machines
of :mod:`~mepgate.client.optical.machine`, and the duties between requests (learning the
meter's optical timers).

The client above it sends the same read and write messages as over MEP; here they travel in
C12.18 packets (a full read without its count, a write with its checksum), inside a C12.18
session (Ident, Negotiate, Logon, Security with the 20-byte password) that is renewed before
the meter's optical session timeout ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from mepgate.c1218.constants import DEFAULT_BAUD, MAX_PACKET_SIZE, MAX_PACKETS, wire_time
from mepgate.c1218.keys import Password
from mepgate.c1218.packets import STP
from mepgate.c1218.services import Service, encode_request
from mepgate.client.driver import Trace, drive
from mepgate.client.errors import MeterRefusedError, OutOfTimeError
from mepgate.client.optical.machine import OpticalLink, OpticalRequest, SessionEnd
from mepgate.client.optical.timing import OpticalTiming
from mepgate.client.session import Reply, TableAccess
from mepgate.client.stats import LinkStatistics
from mepgate.errors import MepgateError
from mepgate.proto.messages import parse_request
from mepgate.tables.dimensions import energy_register_unit_offset
from mepgate.tables.ids import TableId
from mepgate.transport import Link, open_link

INTERFACE = "optical"
CLOSE_TIMEOUT = 3.0
"""Seconds the Logoff and Terminate at close may take (the meter ends a silent session by
itself after its channel traffic timeout)."""
ET55_OPTICAL_FROM_UNIT = 2
"""ET55's optical settings (A+41: flags, timeout, hold-off) follow the energy register unit
(A+39) and the MEP flags (A+40) -- MEP guide, ET55, firmware 4.0 and later."""
ET55_OPTICAL_SIZE = 5
ET55_LOCKOUT_OFFSET = 22
"""ET55 offsets 22 and 23: failed-login lockout threshold and minutes (firmware 4.30+)."""
ET51_OPTICAL_SIZE = 8
"""ET51's first element up to its hold-off: flags, MEP health timeout (2), on-demand timeout,
optical session timeout (2, offset 4), hold-off (2, offset 6) -- optical guide, ET51."""
DOS_TIMER_ENABLED = 0x01
OPTICAL_PORT_DISABLED = 0x02
NO_TIMEOUT = 86400.0
"""The session timeout when the meter's D.O.S. timer is off: a day (sessions still renew)."""
HIDDEN = "key hidden"


class OpticalSession:
    """One meter's optical port.  ``password`` is the key of
    :func:`~mepgate.c1218.keys.parse_password` (MK, PK or RK); ``packet_size`` and ``packets``
    are what Negotiate asks for (default: the largest C12.18 allows; the meter grants what it
    can); ``user_id``/``user`` go into Logon (the meter does not check them);
    ``link_factory`` replaces :func:`~mepgate.transport.open_link` (tests)."""

    interface = INTERFACE

    def __init__(
        self,
        port: str,
        password: Password,
        *,
        baud: int = DEFAULT_BAUD,
        timing: OpticalTiming | None = None,
        trace: Trace | None = None,
        link_factory: Callable[[], Awaitable[Link]] | None = None,
        packet_size: int | None = None,
        packets: int | None = None,
        user_id: int = 0,
        user: str = "mepgate",
    ) -> None:
        self.port = port
        self._baud = baud
        self._trace = trace
        self._link_factory = link_factory
        self.timing = timing or OpticalTiming()
        self.stats = LinkStatistics()
        self.idt_version: int | None = None
        self._link: Link | None = None
        self._timers_read = False
        self._state = OpticalLink(
            password=password.value,
            timing=self.timing,
            baud=baud,
            user_id=user_id,
            user=user,
            want_packet_size=packet_size or MAX_PACKET_SIZE,
            want_packets=packets or MAX_PACKETS,
        )

    def __repr__(self) -> str:
        return f"OpticalSession({self.port!r}, password=<hidden>)"

    # -- Session --------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._link is not None

    @property
    def security(self) -> str:
        return "c12.18"

    @property
    def link_state(self) -> OpticalLink:
        """The link machine's state (negotiated size, session age, timers): for diagnosis."""
        return self._state

    @property
    def max_read(self) -> int:
        return self._state.max_read

    @property
    def merge_gap(self) -> int:
        # A gap is worth reading while it takes less wire time than one more exchange: a
        # request packet, its ACK, the response's header and our ACK, and two turn-arounds.
        exchange = 2 * self.timing.turn_around + wire_time(8 + 8 + 8 + 2 + 8, self._baud)
        return int(exchange / wire_time(1, self._baud))

    async def open(self) -> None:
        if self._link_factory is not None:
            self._link = await self._link_factory()
        else:
            self._link = await open_link(self.port, baud=self._baud)
        self._state.connection_opened()

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        if self._state.in_session:
            machine = SessionEnd(self._state)
            with contextlib.suppress(MepgateError, TimeoutError):
                await asyncio.wait_for(
                    drive(machine, link, trace=self._traced()), timeout=CLOSE_TIMEOUT
                )
            self.stats.absorb(machine.seen)
            self._state.end_session()
        await link.close()

    async def request(
        self, message: bytes, what: str, *, housekeeping: bool, deadline: float | None = None
    ) -> Reply:
        # A deadline is checked before the request starts only: C12.18's own retries (three
        # per packet, ANSI C12.18 5.3) keep one request short, and stopping between a
        # request's packets would leave the meter mid-response.
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            raise OutOfTimeError(f"{what}: not started, its time was up", interface="optical")
        wire = _c1218_message(message)
        while True:
            link = self._link
            if link is None:
                await self.open()
                continue
            machine = OpticalRequest(self._state, wire, what)
            if self._trace is not None:
                self._state.heard = []
            try:
                return await drive(machine, link, trace=self._traced())
            finally:
                for seen in machine.observations():
                    self.stats.absorb(seen)
                self._print_heard()

    def _traced(self) -> Trace | None:
        trace = self._trace
        if trace is None:
            return None

        password = self._state.password

        def masked(direction: str, data: bytes) -> None:
            _trace_masked(trace, direction, data, password)

        return masked

    def _print_heard(self) -> None:
        heard, self._state.heard = self._state.heard, None
        if self._trace is not None and heard:
            for direction, data in heard:
                _trace_masked(self._trace, direction, data, self._state.password)

    async def after_request(self, client: TableAccess) -> None:
        """Once: read the meter's optical session timeout and hold-off (ET51 on Gen 2/3,
        ET55 on Gen 4) and its failed-login lockout (ET55, firmware 4.30+), so that sessions
        are renewed in time.  A key that may not read them (the RK and ET51) keeps the
        defaults."""
        if self._timers_read:
            return
        self._timers_read = True
        with contextlib.suppress(MeterRefusedError, MepgateError):
            async with client.housekeeping():
                await self._read_timers(client)

    async def _read_timers(self, client: TableAccess) -> None:
        dims = await client.dimensions()
        state = self._state
        if dims.generation >= 4:
            offset = energy_register_unit_offset(dims.register, dims.generation)
            offset += ET55_OPTICAL_FROM_UNIT
            block = await client.read(TableId.ET55, offset=offset, count=ET55_OPTICAL_SIZE)
            lockout = await client.read(TableId.ET55, offset=ET55_LOCKOUT_OFFSET, count=2)
            state.lockout_threshold, state.lockout_minutes = lockout[0], lockout[1]
            flags = block[0]
            timeout = int.from_bytes(block[1:3], "little")
            hold_off = int.from_bytes(block[3:5], "little")
        else:
            element = await client.read(TableId.ET51, offset=0, count=ET51_OPTICAL_SIZE)
            flags = element[0] & DOS_TIMER_ENABLED
            timeout = int.from_bytes(element[4:6], "little")
            hold_off = int.from_bytes(element[6:8], "little")
        if flags & DOS_TIMER_ENABLED:
            state.set_timers(timeout, hold_off)
        else:
            state.set_timers(NO_TIMEOUT, hold_off)


def _c1218_message(message: bytes) -> bytes:
    """A request message as MEP carries it, as C12.18 carries it: a full read without its
    count, a write with its data checksum."""
    try:
        request = parse_request(message)
    except MepgateError:
        return message  # not a table request: as it is
    return encode_request(request)


def _trace_masked(trace: Trace, direction: str, data: bytes, password: bytes) -> None:
    """Trace ``data``, the password of a Security request never shown (ours, its echo, or a
    piece of either among skipped bytes)."""
    if _is_security_packet(data):
        trace(f"{direction} {HIDDEN}", data[:7])
        return
    if any(password[i : i + 6] in data for i in range(len(password) - 5)):
        trace(f"{direction} {HIDDEN}", b"")
        return
    trace(direction, data)


def _is_security_packet(data: bytes) -> bool:
    return len(data) > 6 and data[0] == STP and data[6] == Service.SECURITY
