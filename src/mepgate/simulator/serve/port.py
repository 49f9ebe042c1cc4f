"""One simulated MEP port: the meter's side of the wire, over any byte link.

This is where the simulator meets time.  :class:`MeterPort` reads a byte stream, frames the
requests, hands each whole frame to :meth:`SimulatedMeter.handle`, and writes the replies back
paced as a UART at the configured baud rate would send them (:mod:`mepgate.simulator.timing`),
with alerts and injected faults (:mod:`mepgate.simulator.faults`).  The front ends
(:mod:`mepgate.simulator.serve.links`) only supply the byte link.

The front end may read the clock (``proto`` and ``tables`` may not): every ``now`` passed to
the meter is ``time.monotonic()``, or the ``clock`` given for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mepgate.errors import MepgateError
from mepgate.proto import ALERT, NEED_DATA, Frame, FrameBuffer
from mepgate.proto.constants import (
    ALERT_HOLDOFF,
    ALERT_INTERVAL,
    INTRA_PACKET_TIMEOUT,
    SEGMENT_PAUSE,
)
from mepgate.proto.errors import FramingError
from mepgate.simulator.faults import Faults, FaultSpec
from mepgate.simulator.meter import SimulatedMeter
from mepgate.simulator.timing import WireTiming

log = logging.getLogger(__name__)

PACING_TICK = 0.002
"""Paced bytes are written in bursts at most this far apart (about two bytes at 9600 baud):
finer is only more system calls, coarser blurs the byte timing a client observes."""
HOUSEKEEPING_TICK = 0.05
"""How often the port checks for a pending alert or a scheduled reboot when idle."""


class Link(Protocol):
    """A duplex byte stream to one client (a TCP connection, a pty master)."""

    async def read(self) -> bytes:
        """The next bytes received; ``b""`` when the client has gone."""

    async def write(self, data: bytes) -> None:
        """Send ``data`` now (pacing is the caller's business)."""


@dataclass(slots=True)
class PortStats:
    """What happened on the line, for tests and the status output."""

    frames: int = 0
    replies: int = 0
    dropped: int = 0
    corrupted: int = 0  # replies sent with altered bytes
    corrupted_heard: int = 0  # chunks the meter received altered (the ``hear`` fault)
    ignored: int = 0
    alerts: int = 0
    echoed: int = 0
    noise: int = 0
    reboots: int = 0
    framing_errors: int = 0
    expired_bytes: int = 0
    sessions: int = 0
    refused: int = 0  # connections closed at once: the port was in use


async def paced_write(
    link: Link, data: bytes, start: float, byte_time: float, clock: Callable[[], float]
) -> None:
    """Write byte ``i`` of ``data`` when it would have finished on the wire:
    ``start + (i+1)·byte_time`` (in bursts :data:`PACING_TICK` apart)."""
    if byte_time <= 0:
        await link.write(data)
        return
    burst = max(1, round(PACING_TICK / byte_time))
    sent = 0
    while sent < len(data):
        target = min(len(data), sent + burst)
        delay = start + target * byte_time - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        await link.write(data[sent:target])
        sent = target


class ServedPort(Protocol):
    """A port a front end carries: MEP (:class:`MeterPort`) or optical."""

    @property
    def stats(self) -> PortStats: ...

    async def serve(self, link: Link) -> None:
        """Serve one client until its link closes."""


class SharedLine(Protocol):
    """A UART the MEP port shares with the optical port (Gen 2/3 meters, ``--interface both``)."""

    def mep_deaf(self) -> bool:
        """Whether an optical session holds the UART: MEP requests go unheard, unanswered."""

    def mep_frame(self) -> None:
        """A MEP frame was heard: the UART turns back to MEP unless optical holds it."""

    async def mep_sent(self, data: bytes) -> None:
        """MEP bytes went out: they show on the optical side too."""


class MeterPort:
    """A meter's MEP port.  :meth:`serve` runs one client session; sessions run one at a time,
    as on a serial line, and the meter (sequence counter, tables) carries over between them."""

    def __init__(
        self,
        meter: SimulatedMeter,
        *,
        timing: WireTiming | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedLine | None = None,
    ) -> None:
        self.meter = meter
        self.shared = shared
        self.timing = timing if timing is not None else WireTiming()
        self._clock = clock
        self.faults = faults if faults is not None else Faults(FaultSpec(), epoch=clock())
        self.stats = PortStats()
        self._one_client = asyncio.Lock()
        self._tx = asyncio.Lock()
        self._last_service: float | None = None
        self._last_alert: float | None = None
        self._last_frame: float | None = None
        self._rx_free = 0.0  # modelled time the receive line finishes its last byte

    # -- session -------------------------------------------------------------------------------
    async def serve(self, link: Link) -> None:
        """Serve one client until its link closes; a second caller waits its turn."""
        async with self._one_client:
            self.stats.sessions += 1
            queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
            helpers = [
                asyncio.create_task(self._answer(link, queue)),
                asyncio.create_task(self._housekeeping(link)),
            ]
            try:
                await self._receive(link, queue)
            except ConnectionError:
                log.debug("client link lost")
            finally:
                for task in helpers:
                    task.cancel()
                for task in helpers:
                    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                        await task

    # -- receiving -----------------------------------------------------------------------------
    async def _receive(self, link: Link, queue: asyncio.Queue[tuple[bytes, float]]) -> None:
        # TLS requests can be a single code byte, so any length from 1 may be a request; the
        # meter never receives alerts.
        buffer = FrameBuffer(minimum=1, alerts=False)
        while True:
            try:
                if buffer.pending:
                    async with asyncio.timeout(INTRA_PACKET_TIMEOUT):
                        chunk = await link.read()
                else:
                    chunk = await link.read()
            except TimeoutError:
                # MEP guide, "Intra-packet timing": quiet 50 ms mid-frame, the start is stale.
                found, dropped = buffer.expire()
                self.stats.expired_bytes += dropped
                now = self._clock()
                for stale in found:
                    if isinstance(stale, Frame):
                        self._received(stale.wire, now, queue)
                continue
            if not chunk:
                return
            now = self._clock()
            if self.faults.silent(now):
                continue  # nobody is listening on the meter's side
            if self.faults.echo:
                # TX bridged to RX on the client's side: its own bytes come straight back.
                self.stats.echoed += len(chunk)
                await link.write(chunk)
                continue
            # The request's bytes are "received" at wire speed: byte i of this chunk is in
            # when the line has carried everything before it and itself.
            heard = self.faults.hear(chunk)
            if heard != chunk:
                self.stats.corrupted_heard += 1
                chunk = heard
            start = max(now, self._rx_free)
            self._rx_free = start + self.timing.wire_time(len(chunk))
            buffer.receive_data(chunk)
            while True:
                try:
                    event = buffer.next_event()
                except FramingError as error:
                    self.stats.framing_errors += error.discarded
                    continue
                if event is NEED_DATA:
                    break
                if isinstance(event, Frame):
                    arrived = self._rx_free - self.timing.wire_time(buffer.pending)
                    self._received(event.wire, arrived, queue)

    def _received(
        self, wire: bytes, arrived: float, queue: asyncio.Queue[tuple[bytes, float]]
    ) -> None:
        self.stats.frames += 1
        if self.shared is not None:
            self.shared.mep_frame()
        self._last_frame = arrived  # MEP guide, "Alert Sequence timing": hold alerts off
        queue.put_nowait((wire, arrived))

    # -- answering -----------------------------------------------------------------------------
    async def _answer(self, link: Link, queue: asyncio.Queue[tuple[bytes, float]]) -> None:
        while True:
            wire, arrived = await queue.get()
            await self._sleep_until(arrived)
            now = self._clock()
            if self.faults.silent(now) or (self.shared is not None and self.shared.mep_deaf()):
                self.stats.ignored += 1
                continue
            if self.faults.wrong_baud:
                # The meter hears garbage too, so it does not act; the client hears noise.
                self.stats.noise += 1
                await self._transmit(link, self.faults.noise(self.faults.noise_size()))
                continue
            if self.faults.reboot_due(now) or self.faults.reboots_on_request():
                self._reboot(now)  # the request is lost with the reboot
                continue
            start = self.timing.service_start(arrived, self._last_service)
            self._last_service = start
            await self._sleep_until(start)
            try:
                reply = self.meter.handle(wire, self._clock())
            except MepgateError as error:
                # A frame no request can be made of (too short, not a request): a meter
                # ignores it, and the client times out and resends.
                self.stats.ignored += 1
                log.debug("ignored a frame: %s", error)
                continue
            await self._sleep_until(start + self.timing.processing_delay + self.faults.delay)
            if self.faults.silent(self._clock()):
                self.stats.ignored += 1
                continue
            if self.faults.drops_reply():
                self.stats.dropped += 1
                continue
            self.stats.replies += 1
            sent = self.faults.corrupt(reply)
            self.stats.corrupted += sent != reply
            await self._transmit(link, sent)

    def _reboot(self, now: float) -> None:
        self.stats.reboots += 1
        self.meter.reboot(now, self.faults.reboot_sequence())

    # -- alerts and scheduled faults -----------------------------------------------------------
    async def _housekeeping(self, link: Link) -> None:
        while True:
            now = self._clock()
            if self.faults.reboot_due(now):
                self._reboot(now)
            due = self._alert_due()
            if now >= due:
                if self._may_alert(now):
                    alert = self.faults.noise(len(ALERT)) if self.faults.wrong_baud else ALERT
                    self._last_alert = now
                    self.stats.alerts += 1
                    await self._transmit(link, alert)
                await asyncio.sleep(HOUSEKEEPING_TICK)
            else:
                await asyncio.sleep(min(HOUSEKEEPING_TICK, due - now))

    def _alert_due(self) -> float:
        """The earliest time the next alert may go out (MEP guide, "Alert Sequence timing")."""
        due = 0.0
        if self._last_alert is not None:
            due = self._last_alert + ALERT_INTERVAL
        if self._last_frame is not None:
            due = max(due, self._last_frame + ALERT_HOLDOFF)
        return due

    def _may_alert(self, now: float) -> bool:
        if self.faults.silent(now) or self.faults.echo:
            return False
        if self.shared is not None and self.shared.mep_deaf():
            return False
        return self.meter.alert_pending(now)

    # -- sending -------------------------------------------------------------------------------
    async def _transmit(self, link: Link, data: bytes) -> None:
        """Send ``data`` as the meter's UART would: paced bytes, 117-byte segments."""
        async with self._tx:
            await self._transmit_paced(link, data)
        if self.shared is not None:
            await self.shared.mep_sent(data)

    async def _transmit_paced(self, link: Link, data: bytes) -> None:
        if not self.timing.enabled:
            await link.write(data)
            return
        start = self._clock()
        position = 0
        for size in self.timing.segments(len(data)):
            if position:
                start += SEGMENT_PAUSE  # MEP guide, "Response timing"
            await self._pace(link, data[position : position + size], start)
            start += self.timing.wire_time(size)
            position += size

    async def _pace(self, link: Link, data: bytes, start: float) -> None:
        await paced_write(link, data, start, self.timing.byte_time, self._clock)

    async def _sleep_until(self, when: float) -> None:
        delay = when - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
