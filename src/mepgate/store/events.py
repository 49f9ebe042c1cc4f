"""The meters' event logs (BT74) and the outages derived from them (schema v5).

Tables (both engines)::

    meter_event(meter, sequence, meter_time_ms, gateway_time_ms, code, argument, user_id, words)
        key (meter, sequence, meter_time_ms, code): an entry read twice is stored once, and a
        meter whose sequence numbers restarted (a reset or swapped meter) still adds its new
        entries (same numbers, other times).
    outage(meter, start_ms, end_ms, duration_s, meter_start_ms, meter_end_ms)
        key (meter, start_ms); ``end_ms`` is NULL while the power-up is not yet seen (open).

Dedupe design: the events job keeps its cursor (the last sequence number stored, the log's
identity) in ``meter_state``, written in **the same transaction** as the entries it covers
(:meth:`EventStore.add_events`): after a crash either both are there or neither, so a restart
never reports an event twice and never skips one.  Events are kept for good (a few bytes each,
a few a day): no retention sweep touches them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from mepgate.tables.event_codes import POWER_DOWN, POWER_UP, event_key

from .rollup import epoch_ms, from_epoch_ms

EVENTS_CURSOR_STATE = "events-cursor"
"""``meter_state`` name of the events job's cursor (JSON)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterEvent:
    """One entry of a meter's event log, decoded and placed on the gateway's clock.

    ``sequence`` is the log-wide sequence number (BT74's 32-bit "Last Entry Sequence Number"
    extended to the entry's 16 bits); ``meter_time`` is the meter's own stamp (UTC),
    ``gateway_time`` the same instant on the gateway's clock (by the meter's clock offset).
    """

    meter: str
    sequence: int
    meter_time: dt.datetime
    gateway_time: dt.datetime
    code: int
    argument: bytes
    user_id: int | None
    words: str

    @property
    def key(self) -> str:
        """A short stable name of the code (:func:`mepgate.tables.event_codes.event_key`)."""
        return event_key(self.code)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outage:
    """A power outage: from a power-down event to the power-up that followed (gateway time);
    ``end`` is ``None`` while the power-up has not been seen (an open outage)."""

    meter: str
    start: dt.datetime
    end: dt.datetime | None
    meter_start: dt.datetime
    meter_end: dt.datetime | None

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()


def _event(row: Sequence[Any]) -> MeterEvent:
    return MeterEvent(
        meter=str(row[0]),
        sequence=int(row[1]),
        meter_time=from_epoch_ms(int(row[2])),
        gateway_time=from_epoch_ms(int(row[3])),
        code=int(row[4]),
        argument=bytes.fromhex(str(row[5])),
        user_id=None if row[6] is None else int(row[6]),
        words=str(row[7]),
    )


def _outage(row: Sequence[Any]) -> Outage:
    return Outage(
        meter=str(row[0]),
        start=from_epoch_ms(int(row[1])),
        end=None if row[2] is None else from_epoch_ms(int(row[2])),
        meter_start=from_epoch_ms(int(row[3])),
        meter_end=None if row[4] is None else from_epoch_ms(int(row[4])),
    )


class EventStore:
    """The event log part of :class:`~mepgate.store.sql.SqlStore` (a mixin: it uses the
    store's lock, transactions and ``_q``)."""

    _lock: threading.Lock

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def add_events(
        self, meter: str, events: Sequence[MeterEvent], cursor: str | None = None
    ) -> list[MeterEvent]:
        """Store ``events`` of ``meter`` and, in the same transaction, its events cursor
        (``meter_state`` :data:`EVENTS_CURSOR_STATE`); return the events that were new, oldest
        first.  Power-down events open an outage, power-up events close the open one."""
        fresh: list[MeterEvent] = []
        with self._lock, self._transaction():
            for event in sorted(events, key=lambda e: (e.sequence, e.meter_time)):
                meter_ms = epoch_ms(event.meter_time)
                known = self._q(
                    "SELECT 1 FROM meter_event WHERE meter = ? AND sequence = ?"
                    " AND meter_time_ms = ? AND code = ?",
                    (meter, event.sequence, meter_ms, event.code),
                )
                if known:
                    continue
                gateway_ms = epoch_ms(event.gateway_time)
                self._q(
                    "INSERT INTO meter_event (meter, sequence, meter_time_ms, gateway_time_ms,"
                    " code, argument, user_id, words) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        meter,
                        event.sequence,
                        meter_ms,
                        gateway_ms,
                        event.code,
                        event.argument.hex(),
                        event.user_id,
                        event.words,
                    ),
                )
                fresh.append(event)
                if event.code == POWER_DOWN:
                    self._q(
                        "INSERT INTO outage (meter, start_ms, meter_start_ms) VALUES (?, ?, ?)"
                        " ON CONFLICT (meter, start_ms) DO NOTHING",
                        (meter, gateway_ms, meter_ms),
                    )
                elif event.code == POWER_UP:
                    self._close_outage(meter, gateway_ms, meter_ms)
            if cursor is not None:
                self._q(
                    "INSERT INTO meter_state (meter, name, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (meter, name) DO UPDATE SET value = excluded.value",
                    (meter, EVENTS_CURSOR_STATE, cursor),
                )
        return fresh

    def _close_outage(self, meter: str, up_ms: int, meter_up_ms: int) -> None:
        rows = self._q(
            "SELECT start_ms FROM outage WHERE meter = ? AND end_ms IS NULL AND start_ms <= ?"
            " ORDER BY start_ms DESC LIMIT 1",
            (meter, up_ms),
        )
        if not rows:
            return  # its power-down is not in the log (wrapped away before we read it)
        start_ms = int(rows[0][0])
        self._q(
            "UPDATE outage SET end_ms = ?, meter_end_ms = ?, duration_s = ?"
            " WHERE meter = ? AND start_ms = ?",
            (up_ms, meter_up_ms, (up_ms - start_ms) / 1000, meter, start_ms),
        )

    def events(
        self,
        meter: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int = 100,
    ) -> list[MeterEvent]:
        """Stored events, newest first (gateway time in ``[start, end)``), at most ``limit``."""
        where, params = self._range("gateway_time_ms", "gateway_time_ms", meter, start, end)
        with self._lock:
            rows = self._q(
                "SELECT meter, sequence, meter_time_ms, gateway_time_ms, code, argument, user_id,"
                f" words FROM meter_event{where}"
                " ORDER BY gateway_time_ms DESC, sequence DESC LIMIT ?",
                (*params, limit),
            )
        return [_event(row) for row in rows]

    def outages(
        self,
        meter: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[Outage]:
        """Outages overlapping ``[start, end)``, oldest first (an open one overlaps to now)."""
        where, params = self._range("start_ms", "coalesce(end_ms, start_ms)", meter, start, end)
        if start is not None:  # an open outage reaches up to now
            where = where.replace(
                "coalesce(end_ms, start_ms) >= ?", "(end_ms IS NULL OR end_ms >= ?)"
            )
        with self._lock:
            rows = self._q(
                "SELECT meter, start_ms, end_ms, meter_start_ms, meter_end_ms FROM outage"
                f"{where} ORDER BY start_ms, meter",
                params,
            )
        return [_outage(row) for row in rows]

    @staticmethod
    def _range(
        begins: str,
        ends: str,
        meter: str | None,
        start: dt.datetime | None,
        end: dt.datetime | None,
    ) -> tuple[str, list[Any]]:
        conditions: list[str] = []
        params: list[Any] = []
        if meter is not None:
            conditions.append("meter = ?")
            params.append(meter)
        if start is not None:
            conditions.append(f"{ends} >= ?")
            params.append(epoch_ms(start))
        if end is not None:
            conditions.append(f"{begins} < ?")
            params.append(epoch_ms(end))
        return (" WHERE " + " AND ".join(conditions) if conditions else ""), params
