"""The simulated meter's optical port on a real line, and the UART a Gen 2/3 meter shares.

:class:`OpticalPort` is the optical counterpart of :class:`~.port.MeterPort`: it reads a byte
link, hands the bytes (with their time on the wire) to the sans-IO
:class:`~mepgate.simulator.optical.OpticalServer`, and writes what the server sends paced at the
line's baud rate, with the same ``--faults``:
``drop`` loses a response packet (the meter sends it again when no ACK comes),
``corrupt`` damages the bytes it sends (the client NAKs), ``hear`` the bytes it receives (light
disturbing the infrared, a misaligned head: the meter NAKs a damaged packet, or waits out one
whose length was hit), ``delay`` holds it back, ``stall`` and ``disabled`` silence the port,
``echo`` sends the client's bytes back, ``wrongbaud`` answers with noise, ``reboot`` drops the
session.  (``optical=S@T`` is a MEP-side fault and does nothing here.)

:class:`SharedUart` joins a MEP port and an optical port of one Gen 2/3 meter (optical guide,
"Sharing the Optical Port with the MEP Interface"): the UART listens to MEP until a C12.18
packet arrives, which is lost while it switches (the meter NAKs it); while an optical session
is in the session state the MEP port hears nothing; MEP replies also show on the optical side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from mepgate.c1218.constants import TURN_AROUND
from mepgate.c1218.packets import STP
from mepgate.simulator.faults import Faults, FaultSpec
from mepgate.simulator.meter import SimulatedMeter
from mepgate.simulator.optical import OpticalServer, Transmit, TransmitKind
from mepgate.simulator.serve.port import HOUSEKEEPING_TICK, Link, PortStats, paced_write
from mepgate.simulator.timing import WireTiming

log = logging.getLogger(__name__)


class OpticalPort:
    """A meter's optical port.  :meth:`serve` runs one client at a time, as on a probe; the
    server (session state, negotiated sizes) carries over between connections."""

    def __init__(
        self,
        meter: SimulatedMeter,
        server: OpticalServer,
        *,
        timing: WireTiming | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedUart | None = None,
    ) -> None:
        self.meter = meter
        self.server = server
        self.timing = timing if timing is not None else WireTiming()
        self._clock = clock
        self.faults = faults if faults is not None else Faults(FaultSpec(), epoch=clock())
        self.stats = PortStats()
        self.shared = shared
        if shared is not None:
            shared.optical_ports.append(self)
        self._one_client = asyncio.Lock()
        self._tx = asyncio.Lock()
        self._link: Link | None = None
        self._rx_free = 0.0

    async def serve(self, link: Link) -> None:
        """Serve one client until its link closes; a second caller waits its turn."""
        async with self._one_client:
            self.stats.sessions += 1
            self._link = link
            queue: asyncio.Queue[list[Transmit]] = asyncio.Queue()
            helpers = [
                asyncio.create_task(self._send(link, queue)),
                asyncio.create_task(self._housekeeping(queue)),
            ]
            try:
                await self._receive(link, queue)
            except ConnectionError:
                log.debug("optical client link lost")
            finally:
                self._link = None
                for task in helpers:
                    task.cancel()
                for task in helpers:
                    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                        await task

    async def inject(self, data: bytes) -> None:
        """Bytes from elsewhere on a shared UART (MEP replies) reach the optical client too."""
        link = self._link
        if link is None:
            return
        async with self._tx:
            with contextlib.suppress(ConnectionError):
                await link.write(data)

    # -- receiving -----------------------------------------------------------------------------
    def _silent(self, now: float) -> bool:
        # The MEP-side "optical=S@T" fault windows mean nothing on the optical port itself.
        return self.faults.silent(now, include_optical=False)

    async def _receive(self, link: Link, queue: asyncio.Queue[list[Transmit]]) -> None:
        while True:
            chunk = await link.read()
            if not chunk:
                return
            now = self._clock()
            if self._silent(now):
                continue
            if self.faults.echo:
                self.stats.echoed += len(chunk)
                await self.inject(chunk)
                continue
            if self.faults.wrong_baud:
                self.stats.noise += 1
                queue.put_nowait(
                    [Transmit(self.faults.noise(self.faults.noise_size()), TransmitKind.PACKET)]
                )
                continue
            if self.faults.reboot_due(now) or self.faults.reboots_on_request():
                self._reboot(now)
                continue
            heard = self.faults.hear(chunk)
            if heard != chunk:
                self.stats.corrupted_heard += 1
                chunk = heard
            start = max(now, self._rx_free)
            self._rx_free = start + self.timing.wire_time(len(chunk))
            if self.shared is not None and STP in chunk:
                self.shared.optical_traffic()
            self.meter.advance(now)
            out = self.server.receive(chunk, self._rx_free)
            if out:
                queue.put_nowait(out)

    def _reboot(self, now: float) -> None:
        self.stats.reboots += 1
        self.meter.reboot(now, self.faults.reboot_sequence())
        self.server.poll(now + 1e6)  # every line timer expires: the session is gone

    async def _housekeeping(self, queue: asyncio.Queue[list[Transmit]]) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_TICK)
            now = self._clock()
            if self.faults.reboot_due(now):
                self._reboot(now)
            out = self.server.poll(now)
            if out and not self._silent(now):
                queue.put_nowait(out)

    # -- sending -------------------------------------------------------------------------------
    async def _send(self, link: Link, queue: asyncio.Queue[list[Transmit]]) -> None:
        while True:
            batch = await queue.get()
            for item in batch:
                await self._send_one(link, item)

    async def _send_one(self, link: Link, item: Transmit) -> None:
        ready = self._rx_free + (TURN_AROUND if self.timing.enabled else 0.0)
        data = item.data
        if item.kind is TransmitKind.PACKET:
            ready += self.timing.processing_delay + self.faults.delay
            if self.faults.drops_reply():
                self.stats.dropped += 1
                return
            sent = self.faults.corrupt(data)
            self.stats.corrupted += sent != data
            self.stats.replies += 1
            data = sent
        delay = ready - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._silent(self._clock()):
            self.stats.ignored += 1
            return
        async with self._tx:
            await paced_write(link, data, self._clock(), self.timing.byte_time, self._clock)


class SharedUart:
    """One UART, a MEP port and an optical port (Gen 2/3 meters; see the module docstring).

    Implements :class:`~.port.SharedLine` for the MEP port.
    """

    def __init__(self) -> None:
        self.optical_ports: list[OpticalPort] = []  # a TCP and a pty front end, one server
        self.on_optical = False  # which side the UART listens to
        self.switches = 0

    def _server(self) -> OpticalServer | None:
        return self.optical_ports[0].server if self.optical_ports else None

    def mep_deaf(self) -> bool:
        server = self._server()
        return server is not None and server.in_session

    def mep_frame(self) -> None:
        if not self.mep_deaf():
            self.on_optical = False

    async def mep_sent(self, data: bytes) -> None:
        for port in self.optical_ports:
            await port.inject(data)

    def optical_traffic(self) -> None:
        """A C12.18 start byte reached the meter: switch, losing the packet it starts."""
        server = self._server()
        if self.on_optical or server is None:
            return
        self.on_optical = True
        self.switches += 1
        server.switching = True
