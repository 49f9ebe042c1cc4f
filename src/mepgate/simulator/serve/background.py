"""A simulator running on its own event-loop thread: for tests, benchmarks and notebooks.

Blocking code (a test, a benchmark) talks to it over its real TCP port and pty, exactly as a
client on another machine would; :meth:`RunningSimulator.call` runs a function on the
simulator's thread when a test needs to reach into the meter (trigger an alert, read a
counter) without racing it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from mepgate.errors import LocalProtocolError
from mepgate.proto import AccessLevel
from mepgate.simulator.faults import Faults, FaultSpec
from mepgate.simulator.meter import SimulatedMeter
from mepgate.simulator.model.meter_model import MeterModel
from mepgate.simulator.optical import OpticalAccess, OpticalKey, OpticalServer, optical_server
from mepgate.simulator.serve.links import PtyFrontEnd, TcpFrontEnd
from mepgate.simulator.serve.optical import OpticalPort, SharedUart
from mepgate.simulator.serve.port import MeterPort
from mepgate.simulator.timing import WireTiming

T = TypeVar("T")

STARTUP_TIMEOUT = 10.0
"""Seconds to wait for the front ends to come up (or go down) before giving up."""
INTERFACES = ("mep", "optical", "both")
"""What a simulator serves: the MEP port, the optical port, or both (Gen 2/3: one UART)."""


def check_interface(interface: str, meter: SimulatedMeter) -> None:
    """Refuse an unknown interface, and ``both`` for a Gen 4 meter (separate ports there)."""
    if interface not in INTERFACES:
        raise LocalProtocolError(
            f"unknown interface {interface!r}; choose one of: {', '.join(INTERFACES)}"
        )
    model = meter.model
    if interface == "both" and isinstance(model, MeterModel) and model.dims.generation >= 4:
        raise LocalProtocolError(
            "--interface both simulates the UART a Gen 2/3 meter shares between its MEP and "
            "optical ports; Gen 4 meters have separate ports: pick a gen3 profile, or serve "
            "one interface per simulator"
        )


class RunningSimulator:
    """A meter served on ``tcp://host:PORT`` and/or a pty, from a background thread.

    The TCP front end and the pty are two ports of the same meter (its sequence counter and
    tables are shared), each with its own line; both obey the same faults.

    ``interface``: ``"mep"`` (``url``/``device`` are the MEP port), ``"optical"`` (``url``/
    ``device`` are the optical port) or ``"both"`` (``url``/``device`` MEP, ``optical_url``/
    ``optical_device`` optical, one shared UART as on a Gen 2/3 meter).  ``optical_keys``
    default to the simulator's demo MK/PK/RK; ``optical_server`` is the C12.18 server.
    """

    def __init__(
        self,
        meter: SimulatedMeter,
        *,
        keys: Mapping[AccessLevel, bytes],
        timing: WireTiming | None = None,
        faults: FaultSpec | str = "",
        seed: int = 0,
        tcp: tuple[str, int] | None = ("127.0.0.1", 0),
        pty: bool = True,
        interface: str = "mep",
        optical_keys: Mapping[OpticalKey, bytes] | None = None,
        optical_access: OpticalAccess | None = None,
    ) -> None:
        check_interface(interface, meter)
        self.interface = interface
        self.meter = meter
        self.optical_server: OpticalServer | None = (
            optical_server(meter, keys=optical_keys, access=optical_access)
            if interface != "mep"
            else None
        )
        self.optical_keys = dict(self.optical_server.keys) if self.optical_server else {}
        self.shared = SharedUart() if interface == "both" else None
        self.optical_url: str | None = None
        self.optical_device: str | None = None
        self.optical_ports: list[OpticalPort] = []
        self.keys = dict(keys)
        self.timing = timing if timing is not None else WireTiming()
        spec = FaultSpec.parse(faults) if isinstance(faults, str) else faults
        self.faults = Faults(spec, epoch=0.0, default_seed=seed)
        self._tcp_address = tcp
        self._want_pty = pty
        self.url: str | None = None
        self.device: str | None = None
        self.tcp_port: MeterPort | None = None
        self.pty_port: MeterPort | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mepgate-simulator", daemon=True
        )
        self._tcp: TcpFrontEnd | None = None
        self._pty: PtyFrontEnd | None = None
        self._optical_ends: list[TcpFrontEnd | PtyFrontEnd] = []

    def __enter__(self) -> RunningSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        self._submit(self._start()).result(STARTUP_TIMEOUT)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._submit(self._stop()).result(STARTUP_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STARTUP_TIMEOUT)
            self._loop.close()

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the simulator's thread and return its result."""

        async def run() -> T:
            return function()

        return self._submit(run()).result(STARTUP_TIMEOUT)

    def configure_faults(self, spec: FaultSpec | str) -> None:
        """Replace the faults in force; their times (``@T``) count from now."""
        self.call(lambda: self.faults.update(spec, self._loop.time()))

    def stall(self, seconds: float) -> None:
        """Hang the meter for ``seconds`` from now."""
        self.call(lambda: self.faults.stall_for(seconds, self._loop.time()))

    @property
    def reboots(self) -> int:
        """Reboots injected so far, on any line."""
        ports = [p.stats for p in (self.tcp_port, self.pty_port) if p is not None]
        ports += [p.stats for p in self.optical_ports]
        return sum(stats.reboots for stats in ports)

    @property
    def optical_port(self) -> OpticalPort:
        """The optical port's TCP line, or its pty's when there is no TCP front end."""
        if not self.optical_ports:
            raise LocalProtocolError(
                "this simulator serves no optical port: start it with interface='optical' or 'both'"
            )
        return self.optical_ports[0]

    @property
    def port(self) -> MeterPort:
        """The TCP port's line, or the pty's when there is no TCP front end."""
        port = self.tcp_port or self.pty_port
        if port is None:
            raise LocalProtocolError("the simulator has not been started")
        return port

    def _submit(self, coroutine: object) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]

    async def _start(self) -> None:
        # asyncio's loop clock is time.monotonic, the clock the ports use.
        self.faults.epoch = self._loop.time()
        if self.interface != "optical":
            await self._start_mep()
        if self.optical_server is not None:
            await self._start_optical(self.optical_server)

    async def _start_mep(self) -> None:
        if self._tcp_address is not None:
            self.tcp_port = MeterPort(
                self.meter, timing=self.timing, faults=self.faults, shared=self.shared
            )
            self._tcp = TcpFrontEnd(self.tcp_port)
            self.url = await self._tcp.start(*self._tcp_address)
        if self._want_pty:
            self.pty_port = MeterPort(
                self.meter, timing=self.timing, faults=self.faults, shared=self.shared
            )
            self._pty = PtyFrontEnd(self.pty_port)
            self.device = await self._pty.start()

    async def _start_optical(self, server: OpticalServer) -> None:
        def port() -> OpticalPort:
            made = OpticalPort(
                self.meter, server, timing=self.timing, faults=self.faults, shared=self.shared
            )
            self.optical_ports.append(made)
            return made

        if self._tcp_address is not None:
            tcp = TcpFrontEnd(port())
            self._optical_ends.append(tcp)
            self.optical_url = await tcp.start(*self._tcp_address)
        if self._want_pty:
            pty = PtyFrontEnd(port())
            self._optical_ends.append(pty)
            self.optical_device = await pty.start()
        if self.interface == "optical":
            self.url, self.device = self.optical_url, self.optical_device

    async def _stop(self) -> None:
        for end in self._optical_ends:
            await end.close()
        if self._tcp is not None:
            await self._tcp.close()
        if self._pty is not None:
            await self._pty.close()
