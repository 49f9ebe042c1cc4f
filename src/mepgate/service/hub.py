"""Live fan-out of readings to whoever listens (server-sent events, MQTT, Prometheus).

Each subscriber gets its own bounded queue; a slow subscriber loses its oldest readings
rather than holding up the poller or the others (a dashboard only needs the newest value).

The hub also keeps each meter's readings of the last minutes, for the one definition of the
old firmware's ``*_Avg_W`` fields (:meth:`ReadingHub.averages`): the MQTT compat topics and
the web's ``/getDashDataWS`` both read it, so they agree for the same reading.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mepgate.reading import ACTIVE_POWER_FIELDS, Reading
from mepgate.service.submeter_board import SubmeterBoard
from mepgate.store import MeterEvent

SUBSCRIBER_QUEUE = 32
EVENT_QUEUE = 256
"""A subscriber's queue of meter events (new event log entries); they are in the store too."""
AVERAGE_WINDOW = dt.timedelta(minutes=1)
"""The window of :class:`PowerAverages`: the old firmware's ``*_Avg_W`` fields were BT28's
demand averages; a :class:`Reading` carries only present values, so the readings of the last
minute are averaged instead."""
AVERAGES_KEPT = 2 * AVERAGE_WINDOW
"""How far back the hub keeps readings for :meth:`ReadingHub.averages`: a window more than it
needs, so a subscriber that lags (at most :data:`SUBSCRIBER_QUEUE` readings behind) still gets
the whole window of the reading it is handling."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerAverages:
    """Mean import/export power (W) by :class:`Reading` field name (those of
    :data:`~mepgate.reading.ACTIVE_POWER_FIELDS` that the window's readings carry)."""

    watts: Mapping[str, float]


class PowerAverager:
    """One meter's recent readings, and the mean of each active power over a window of them.

    Feed it every reading, in order (the poller's validation rejects a reading that is not
    newer than the last one); :meth:`averages` is then the mean over the readings in
    ``(at - window, at]``.
    """

    def __init__(
        self, window: dt.timedelta = AVERAGE_WINDOW, keep: dt.timedelta = AVERAGES_KEPT
    ) -> None:
        self._window = window
        self._keep = max(keep, window)
        self._readings: deque[Reading] = deque()

    def add(self, reading: Reading) -> None:
        self._readings.append(reading)
        while reading.at - self._readings[0].at >= self._keep:
            self._readings.popleft()

    def averages(self, at: dt.datetime) -> PowerAverages:
        """The means over the window that ends with (and includes) time ``at``."""
        window = [r for r in self._readings if at - self._window < r.at <= at]
        watts: dict[str, float] = {}
        for name in ACTIVE_POWER_FIELDS:
            values = [v for r in window if (v := getattr(r, name)) is not None]
            if values:
                watts[name] = sum(values) / len(values)
        return PowerAverages(watts=watts)


class ReadingHub:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Reading]] = set()
        self._latest: dict[str, Reading] = {}
        self._averagers: dict[str, PowerAverager] = {}
        self._event_subscribers: set[asyncio.Queue[MeterEvent]] = set()
        self._last_events: dict[str, MeterEvent] = {}
        self.dropped = 0
        self.submeters = SubmeterBoard()  # the M-Bus sub-meters' latest state

    def publish(self, reading: Reading) -> None:
        self._latest[reading.meter] = reading
        self._averagers.setdefault(reading.meter, PowerAverager()).add(reading)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(reading)

    def latest(self, meter: str) -> Reading | None:
        return self._latest.get(meter)

    def averages(self, reading: Reading) -> PowerAverages:
        """The mean active powers of ``reading``'s meter over the :data:`AVERAGE_WINDOW` that
        ends with ``reading`` (of the readings published here: none before a restart)."""
        averager = self._averagers.get(reading.meter)
        if averager is None:
            return PowerAverages(watts={})
        return averager.averages(reading.at)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Reading]]:
        queue: asyncio.Queue[Reading] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    # -- meter events (the events job's new entries, oldest first) -----------------------------
    def publish_events(self, events: list[MeterEvent]) -> None:
        for event in events:
            self._last_events[event.meter] = event
            for queue in self._event_subscribers:
                if queue.full():
                    queue.get_nowait()
                    self.dropped += 1
                queue.put_nowait(event)

    def last_event(self, meter: str) -> MeterEvent | None:
        """The newest event published for ``meter`` since the gateway started."""
        return self._last_events.get(meter)

    @asynccontextmanager
    async def subscribe_events(self) -> AsyncIterator[asyncio.Queue[MeterEvent]]:
        queue: asyncio.Queue[MeterEvent] = asyncio.Queue(EVENT_QUEUE)
        self._event_subscribers.add(queue)
        try:
            yield queue
        finally:
            self._event_subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
