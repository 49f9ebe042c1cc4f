"""The asyncio face of a store: every call runs in a worker thread (``asyncio.to_thread``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from mepgate.reading import Reading

from .base import (
    EnergyPeriod,
    EnergyTotals,
    HistoryPoint,
    HourComparison,
    ProfileInterval,
    Store,
)
from .errors import StoreError
from .events import EventStore, MeterEvent, Outage
from .self_reads import BillingPeriod, SelfRead
from .sql import SqlStore
from .submeters import AsyncSubmeterStore


class AsyncStore:
    """Wraps a :class:`Store` for the gateway's event loop; the store serialises the calls."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._submeters: AsyncSubmeterStore | None = None

    def __repr__(self) -> str:
        return f"AsyncStore({self.store!r})"

    @property
    def submeters(self) -> AsyncSubmeterStore:
        """The M-Bus sub-meters' tables (:mod:`mepgate.store.submeters`)."""
        if not isinstance(self.store, SqlStore):
            raise StoreError(f"{self.store!r} keeps no sub-meters")
        if self._submeters is None:
            self._submeters = AsyncSubmeterStore(self.store)
        return self._submeters

    async def ingest(self, readings: Sequence[Reading]) -> int:
        return await asyncio.to_thread(self.store.ingest, readings)

    async def history(
        self, meter: str, start: dt.datetime, end: dt.datetime, points: int = 500
    ) -> list[HistoryPoint]:
        return await asyncio.to_thread(self.store.history, meter, start, end, points)

    async def ingest_profile(
        self,
        meter: str,
        intervals: Sequence[ProfileInterval],
        *,
        state: tuple[str, str] | None = None,
    ) -> int:
        return await asyncio.to_thread(self.store.ingest_profile, meter, intervals, state=state)

    async def profile(
        self, meter: str, start: dt.datetime, end: dt.datetime, limit: int = 5000
    ) -> list[ProfileInterval]:
        return await asyncio.to_thread(self.store.profile, meter, start, end, limit)

    async def compare_profile(
        self, meter: str, start: dt.datetime, end: dt.datetime, *, edge_s: float
    ) -> list[HourComparison]:
        return await asyncio.to_thread(self.store.compare_profile, meter, start, end, edge_s=edge_s)

    async def latest(self, meter: str) -> Reading | None:
        return await asyncio.to_thread(self.store.latest, meter)

    async def recent(self, meter: str, count: int) -> list[Reading]:
        return await asyncio.to_thread(self.store.recent, meter, count)

    async def state(self, meter: str, name: str) -> str | None:
        return await asyncio.to_thread(self.store.state, meter, name)

    async def set_state(self, meter: str, name: str, value: str | None) -> None:
        await asyncio.to_thread(self.store.set_state, meter, name, value)

    async def meters(self) -> list[str]:
        return await asyncio.to_thread(self.store.meters)

    async def energy_totals(
        self, meter: str, now: dt.datetime | None = None
    ) -> EnergyTotals | None:
        return await asyncio.to_thread(self.store.energy_totals, meter, now)

    async def energy_periods(
        self, meter: str, period: str, count: int, now: dt.datetime | None = None
    ) -> list[EnergyPeriod]:
        return await asyncio.to_thread(self.store.energy_periods, meter, period, count, now)

    async def add_self_reads(self, reads: Sequence[SelfRead]) -> int:
        return await asyncio.to_thread(self.store.add_self_reads, reads)

    async def self_reads(self, meter: str) -> list[SelfRead]:
        return await asyncio.to_thread(self.store.self_reads, meter)

    async def billing_periods(self, meter: str) -> list[BillingPeriod]:
        return await asyncio.to_thread(self.store.billing_periods, meter)

    async def sweep(self, now: dt.datetime | None = None) -> int:
        return await asyncio.to_thread(self.store.sweep, now)

    async def size_bytes(self) -> int:
        return await asyncio.to_thread(self.store.size_bytes)

    # -- event logs (schema v5) ---------------------------------------------------------------
    def _events(self) -> EventStore:
        if not isinstance(self.store, EventStore):
            raise StoreError(f"{self.store!r} keeps no event logs")
        return self.store

    async def add_events(
        self, meter: str, events: Sequence[MeterEvent], cursor: str | None = None
    ) -> list[MeterEvent]:
        return await asyncio.to_thread(self._events().add_events, meter, events, cursor)

    async def events(
        self,
        meter: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int = 100,
    ) -> list[MeterEvent]:
        return await asyncio.to_thread(self._events().events, meter, start, end, limit)

    async def outages(
        self,
        meter: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[Outage]:
        return await asyncio.to_thread(self._events().outages, meter, start, end)

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)
