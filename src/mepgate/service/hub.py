"""Live fan-out of readings to whoever listens (server-sent events, MQTT, Prometheus).

Each subscriber gets its own bounded queue; a slow subscriber loses its oldest readings
rather than holding up the poller or the others (a dashboard only needs the newest value).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mepgate.reading import Reading

SUBSCRIBER_QUEUE = 32


class ReadingHub:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Reading]] = set()
        self._latest: dict[str, Reading] = {}
        self.dropped = 0

    def publish(self, reading: Reading) -> None:
        self._latest[reading.meter] = reading
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(reading)

    def latest(self, meter: str) -> Reading | None:
        return self._latest.get(meter)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Reading]]:
        queue: asyncio.Queue[Reading] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
