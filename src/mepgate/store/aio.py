"""The asyncio face of a store: every call runs in a worker thread (``asyncio.to_thread``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from mepgate.reading import Reading

from .base import EnergyTotals, HistoryPoint, HourComparison, ProfileInterval, Store


class AsyncStore:
    """Wraps a :class:`Store` for the gateway's event loop; the store serialises the calls."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"AsyncStore({self.store!r})"

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

    async def sweep(self, now: dt.datetime | None = None) -> int:
        return await asyncio.to_thread(self.store.sweep, now)

    async def size_bytes(self) -> int:
        return await asyncio.to_thread(self.store.size_bytes)

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)
