"""Storing readings in batches (with the pollers' states), and the hourly retention sweep.

A batch is one transaction (raw rows and rollups together), so a crash loses at most the
batch in flight and the readings not yet batched; a database that is briefly unreachable
(PostgreSQL restarting) only delays the batch, which is kept and retried.  Retention runs every
hour (:meth:`~mepgate.store.Store.sweep`, in small transactions that interleave with ingest).

Both take the store through a callable: the gateway reopens it when the storage settings
change, and what is pending then goes to the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from mepgate.reading import Reading
from mepgate.store import AsyncStore, StoreError
from mepgate.urls import scrub

log = logging.getLogger(__name__)

BATCH_INTERVAL = 2.0
"""Seconds between store transactions: one commit per batch keeps SD-card writes few, and a
crash loses at most this much (plus the batch in flight)."""
SWEEP_INTERVAL = 3600.0
FIRST_SWEEP_DELAY = 60.0  # not during startup, when the dashboard wants the database
MAX_PENDING = 200_000
"""Readings held while the database cannot be written (about 2 days of one meter at 1 Hz);
beyond that the oldest are dropped, and counted."""

StoreSource = Callable[[], AsyncStore | None]
"""The store open now (``None``: none is, the readings wait)."""


class BatchWriter:
    """Readings waiting for the store, written in one transaction every ``interval`` seconds.

    ``url`` gives the store's URL, whose password is scrubbed from driver errors in the log.
    """

    def __init__(
        self, store: StoreSource, *, url: Callable[[], str], interval: float = BATCH_INTERVAL
    ) -> None:
        self._store = store
        self._url = url
        self.interval = interval
        self._pending: list[Reading] = []
        self._states: dict[tuple[str, str], str | None] = {}  # (meter, name): newest value
        self._stored: Counter[str] = Counter()
        self._lock = asyncio.Lock()
        self.dropped = 0  # readings lost because the database stayed unreachable too long
        self.batches = 0  # store transactions committed

    def add(self, reading: Reading) -> None:
        self._pending.append(reading)
        if len(self._pending) > MAX_PENDING:
            excess = len(self._pending) - MAX_PENDING
            del self._pending[:excess]
            self.dropped += excess

    def set_state(self, meter: str, name: str, value: str | None) -> None:
        """Keep ``value`` as the meter's state ``name`` (:meth:`Store.set_state`), written
        after the readings of the next batch; a newer value replaces one not yet written."""
        self._states[(meter, name)] = value

    def stored(self, meter: str) -> int:
        """Readings of ``meter`` stored since the writer was made."""
        return self._stored[meter]

    async def run(self) -> None:
        """Store a batch every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            # Shielded: a flush cancelled half-way leaves its write running in a worker thread,
            # and the final flush (at stop) could then be overtaken by it -- an older state
            # stored over a newer one.  Cancelled here, the flush finishes under its lock first.
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        """Store the pending readings in one transaction, then the states; keep what fails."""
        async with self._lock:
            batch, self._pending = self._pending, []
            store = self._store()
            if store is None:
                self._pending[:0] = batch
                return
            if not batch or await self._ingest(store, batch):
                await self._write_states(store)  # after the readings they describe

    async def _ingest(self, store: AsyncStore, batch: list[Reading]) -> bool:
        try:
            new = await store.ingest(batch)
        except Exception as error:  # any driver error: the database may come back
            self._pending[:0] = batch
            log.warning(
                "storing %d readings failed, will retry: %s",
                len(batch),
                scrub(str(error), self._url()),
            )
            return False
        self.batches += 1
        self._stored.update(reading.meter for reading in batch)
        log.debug(
            "stored batch %d: %d readings (%d new), last at %s",
            self.batches,
            len(batch),
            new,
            batch[-1].at.isoformat(),
        )
        return True

    async def _write_states(self, store: AsyncStore) -> None:
        states, self._states = self._states, {}
        for (meter, name), value in list(states.items()):
            try:
                await store.set_state(meter, name, value)
            except Exception as error:  # any driver error: the database may come back
                self._states = {**states, **self._states}  # newer values win
                log.warning(
                    "keeping meter %s's %s failed, will retry: %s",
                    meter,
                    name,
                    scrub(str(error), self._url()),
                )
                return
            del states[(meter, name)]


async def sweep_retention(store: StoreSource, interval: float = SWEEP_INTERVAL) -> None:
    """Remove what the retention settings no longer keep, every ``interval`` seconds (the first
    time after :data:`FIRST_SWEEP_DELAY`, or ``interval`` if shorter), until cancelled."""
    await asyncio.sleep(min(FIRST_SWEEP_DELAY, interval))
    while True:
        current = store()
        if current is not None:
            try:
                removed = await current.sweep()
            except (StoreError, OSError) as error:
                log.warning("retention sweep failed, will retry: %s", error)
            else:
                log.debug("retention sweep removed %d rows", removed)
        await asyncio.sleep(interval)
