"""Energy totals (today, this month) shared by every event stream of one app.

``/api/v1/stream`` sends each subscriber an ``energy`` event at most every
:data:`ENERGY_EVERY_S` per meter.  The totals come from the store (a query over the day's and
the month's rollups); asking it once per subscriber would multiply the database's work by the
number of open dashboards, so :class:`SharedEnergyTotals` asks once per meter per period and
every stream sends the same answer.  The app factory builds one per app (``WebState.energy``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from mepgate.service.view import GatewayView
from mepgate.store import EnergyTotals

ENERGY_EVERY_S = 10.0
MAX_METERS = 64
"""Meters whose totals are kept at most (a gateway has a handful; the oldest entry goes)."""


@dataclass(frozen=True, slots=True)
class Totals:
    """One answer of the store: ``stamp`` (the clock when it was asked) tells a stream whether
    it has sent this answer already."""

    stamp: float
    totals: EnergyTotals | None


class SharedEnergyTotals:
    def __init__(
        self,
        view: GatewayView,
        *,
        every_s: float = ENERGY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self._every_s = every_s
        self._clock = clock
        self._entries: dict[str, Totals] = {}
        self._lock = asyncio.Lock()  # one query at a time: the others wait and share it
        self.queries = 0

    async def get(self, meter: str) -> Totals:
        """The totals of ``meter``, asked of the store if the last answer is a period old."""
        async with self._lock:
            entry = self._entries.get(meter)
            now = self._clock()
            if entry is None or now - entry.stamp >= self._every_s:
                self.queries += 1
                entry = Totals(now, await self._view.store.energy_totals(meter))
                self._entries.pop(meter, None)
                self._entries[meter] = entry  # newest last: the first one is the oldest
                while len(self._entries) > MAX_METERS:
                    del self._entries[next(iter(self._entries))]
            return entry
