"""``sim:PROFILE`` ports: a simulated meter inside the gateway's process (``mepgate demo``).

Each such meter is the simulator's own :class:`~mepgate.simulator.serve.RunningSimulator`
(its model, front end and wire timing at 9600 baud) on a loopback TCP port, in a background
thread; the poller reaches it over that port with an ordinary :class:`MeterClient`, so the
demo runs exactly the code a real meter would.  The simulated meter keeps running while its
poller restarts (a configuration change), so its registers keep counting.

The command line builds :class:`EmbeddedSimulators` and gives it to the gateway, which sees it
only as a :class:`~mepgate.service.simulated_ports.SimulatedPorts`: the service never builds
a simulated meter itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import zlib
from collections.abc import Callable
from typing import Literal

from mepgate.c1218.keys import Password, parse_password
from mepgate.proto import AccessLevel, MepKey, parse_key
from mepgate.reading import TIERS, Reading, tier_energy_field
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, DEFAULT_RK
from mepgate.simulator.model import MeterModel, build_meter, model_of
from mepgate.simulator.serve import RunningSimulator

SIM_SCHEME = "sim:"
"""The configuration's port syntax for these meters, ``sim:PROFILE``
(:func:`mepgate.config.is_simulated`)."""
SIM_KEY_TEXT = DEFAULT_MBK.decode()
"""The key a ``sim:`` meter accepts when the configuration gives none (the simulator's demo
MBK, which is public: it opens nothing but the simulator)."""
SIM_OPTICAL_KEY_TEXT = DEFAULT_RK.decode()
"""The optical password of a ``sim:`` meter with ``interface = "optical"`` configured without
one: the simulator's demo read-only key (RK), the key a grid company would hand out."""
Interface = Literal["mep", "optical"]
"""The configuration's ``interface`` of a meter (:data:`mepgate.config.Interface`)."""
_KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}


class EmbeddedSimulators:
    """The in-process simulators of one gateway, by meter name.

    A meter configured with ``interface = "optical"`` gets a simulator that serves its optical
    port (ANSI C12.18) instead of its MEP port, with the demo optical keys."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        mbus: tuple[str, ...] = ("gas", "water"),
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.speed = speed
        self.mbus = mbus  # the demo meters' M-Bus sub-meters
        self._now = now  # the gateway's clock: a simulated meter starts at its time
        self._running: dict[str, tuple[tuple[str, Interface], RunningSimulator]] = {}

    def default_key(self, port: str, *, interface: Interface = "mep") -> MepKey | Password | None:
        """The demo MBK (or for ``optical`` the demo RK) for a ``sim:`` port (its meter accepts
        it); ``None`` for other ports."""
        if not port.startswith(SIM_SCHEME):
            return None
        if interface == "optical":
            return parse_password(SIM_OPTICAL_KEY_TEXT)
        return parse_key(SIM_KEY_TEXT)

    async def url_for(
        self,
        name: str,
        port: str,
        *,
        continue_from: Reading | None = None,
        interface: Interface = "mep",
    ) -> str:
        """The ``tcp://`` URL of meter ``name``'s simulator on ``interface``, starting it if
        needed (a meter whose profile or interface changed gets a new simulator).

        ``continue_from`` is the newest stored reading of a previous run: a new simulated meter
        starts its energy registers, the total and every tier, at or above it (as a MAK write to
        BT23 would set them), so the history continues instead of every reading failing
        "energy never decreases".
        """
        profile = port.removeprefix(SIM_SCHEME)
        known = self._running.get(name)
        if known is not None and known[0] == (profile, interface):
            url = known[1].url
            assert url is not None
            return url
        if known is not None:
            await asyncio.to_thread(known[1].stop)
        meter = build_meter(
            profile,
            seed=zlib.crc32(name.encode()),  # the same meter every time the demo starts
            start=self._now(),
            speed=self.speed,
            origin=time.monotonic(),  # the front end's clock
            keys=_KEYS,
            mbus=self.mbus,
        )
        if continue_from is not None:
            _continue(model_of(meter), continue_from)
        simulator = RunningSimulator(meter, keys=_KEYS, pty=False, interface=interface)
        await asyncio.to_thread(simulator.start)
        self._running[name] = ((profile, interface), simulator)
        assert simulator.url is not None
        return simulator.url

    def running(self, name: str) -> RunningSimulator | None:
        """Meter ``name``'s simulator if it runs (a test injects outages into its model)."""
        known = self._running.get(name)
        return known[1] if known is not None else None

    async def close(self) -> None:
        """Stop every simulator (a later :meth:`url_for` starts one again)."""
        running, self._running = self._running, {}
        for _, simulator in running.values():
            await asyncio.to_thread(simulator.stop)


def _continue(model: MeterModel, previous: Reading) -> None:
    """``model``'s energy registers continued from ``previous`` (totals and tiers): a demo that
    ran for minutes stored tier registers above the seeded ones a new meter starts with."""
    tier = model.snapshot().current_tier
    for direction in ("forward", "reverse"):
        name = f"{direction}_active_energy_wh"
        stored_tiers = [getattr(previous, tier_energy_field(direction, t)) for t in TIERS]
        model.registers.continue_from(
            name,
            math.ceil(getattr(previous, name)),
            [None if wh is None else math.ceil(wh) for wh in stored_tiers],
            tier=tier,
        )
