"""M-Bus sub-meters in the store: devices, readings, hour and day consumption.

A device is a row per (meter, slot, identification): a device swapped in the same slot gets a
new row, so its register starting lower is not a decrease.  Each reading keeps the value and
its increase over the same device's previous reading (0 for a device's first); the hour
(UTC) and day (local, the store's time zone) rollups add those increases up, so an hour's or
a day's consumption is exact however the reads fall, and a swap does not count the new
device's whole register as consumption.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import StoreError
from .sql import SqlStore

RESOLUTIONS = ("raw", "hour", "day")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmeterDevice:
    meter: str
    slot: int
    identification: str
    manufacturer: str
    medium: str  # "gas", "water", "heat", "electricity", "other"
    medium_code: int
    unit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSubmeter:
    """A slot's newest device and its newest reading."""

    device: SubmeterDevice
    value: float | None
    at: dt.datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmeterPoint:
    """A history point: a reading (``raw``), or a bucket (``hour``/``day``: its start, the
    last value in it and the consumption in it)."""

    at: dt.datetime
    value: float
    delta: float
    identification: str


def _ms(at: dt.datetime) -> int:
    if at.tzinfo is None:
        raise StoreError(f"{at.isoformat()} has no time zone: pass an aware datetime")
    return int(at.timestamp() * 1000)


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


class SubmeterStore:
    """Sub-meter tables of a :class:`SqlStore` (schema v7), on the store's connection."""

    def __init__(self, store: SqlStore) -> None:
        self._s = store

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._s._q(sql, params)

    def _buckets(self, at: dt.datetime) -> dict[str, int]:
        hour = int(at.timestamp()) // 3600 * 3600
        local = at.astimezone(self._s.local_tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return {"hour": hour, "day": int(midnight.timestamp())}

    def _device_id(self, device: SubmeterDevice, at_ms: int) -> int:
        key = (device.meter, device.slot, device.identification)
        sql = "SELECT id FROM submeter WHERE meter = ? AND slot = ? AND identification = ?"
        rows = self._q(sql, key)
        if rows:
            self._q(
                "UPDATE submeter SET manufacturer = ?, medium = ?, medium_code = ?, unit = ?"
                " WHERE id = ?",
                (device.manufacturer, device.medium, device.medium_code, device.unit, rows[0][0]),
            )
            return int(rows[0][0])
        self._q(
            "INSERT INTO submeter (meter, slot, identification, manufacturer, medium,"
            " medium_code, unit, first_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, device.manufacturer, device.medium, device.medium_code, device.unit, at_ms),
        )
        return int(self._q(sql, key)[0][0])

    def add(self, device: SubmeterDevice, at: dt.datetime, value: float) -> float | None:
        """Store a reading; returns its increase over the device's previous one (``None``: a
        reading at that time was stored already, nothing changed)."""
        at_ms = _ms(at)
        with self._s._lock, self._s._transaction():
            device_id = self._device_id(device, at_ms)
            if self._q(
                "SELECT 1 FROM submeter_reading WHERE submeter_id = ? AND t_ms = ?",
                (device_id, at_ms),
            ):
                return None
            before = self._q(
                "SELECT value FROM submeter_reading WHERE submeter_id = ? AND t_ms < ?"
                " ORDER BY t_ms DESC LIMIT 1",
                (device_id, at_ms),
            )
            delta = value - float(before[0][0]) if before else 0.0
            self._q(
                "INSERT INTO submeter_reading (submeter_id, t_ms, value, delta)"
                " VALUES (?, ?, ?, ?)",
                (device_id, at_ms, value, delta),
            )
            for resolution, start in self._buckets(at).items():
                changed = self._s._exec(
                    self._s.dialect.sql(
                        "UPDATE submeter_rollup SET delta = delta + ?, n = n + 1,"
                        " last_value = CASE WHEN last_at_ms <= ? THEN ? ELSE last_value END,"
                        " last_at_ms = CASE WHEN last_at_ms <= ? THEN ? ELSE last_at_ms END"
                        " WHERE submeter_id = ? AND resolution = ? AND bucket_start = ?"
                    ),
                    (delta, at_ms, value, at_ms, at_ms, device_id, resolution, start),
                )
                if not changed:
                    self._q(
                        "INSERT INTO submeter_rollup (submeter_id, resolution, bucket_start,"
                        " last_at_ms, last_value, delta, n) VALUES (?, ?, ?, ?, ?, ?, 1)",
                        (device_id, resolution, start, at_ms, value, delta),
                    )
        return delta

    def latest(self, meter: str | None = None) -> list[StoredSubmeter]:
        """Each (meter, slot)'s newest device with its newest reading."""
        with self._s._lock:
            rows = self._q(
                "SELECT d.meter, d.slot, d.identification, d.manufacturer, d.medium,"
                " d.medium_code, d.unit, r.value, r.t_ms FROM submeter d"
                " LEFT JOIN submeter_reading r ON r.submeter_id = d.id AND r.t_ms ="
                " (SELECT max(t_ms) FROM submeter_reading WHERE submeter_id = d.id)"
                " ORDER BY d.meter, d.slot, coalesce(r.t_ms, d.first_seen_ms)"
            )
        newest: dict[tuple[str, int], StoredSubmeter] = {}
        for row in rows:
            if meter is not None and row[0] != meter:
                continue
            device = SubmeterDevice(
                meter=row[0],
                slot=int(row[1]),
                identification=row[2],
                manufacturer=row[3],
                medium=row[4],
                medium_code=int(row[5]),
                unit=row[6],
            )
            newest[(row[0], int(row[1]))] = StoredSubmeter(
                device=device,
                value=None if row[7] is None else float(row[7]),
                at=None if row[8] is None else _at(int(row[8])),
            )
        return list(newest.values())

    def history(
        self, meter: str, slot: int, start: dt.datetime, end: dt.datetime, resolution: str
    ) -> list[SubmeterPoint]:
        """A slot's readings or buckets in ``[start, end)``, every device it had, oldest
        first."""
        if resolution not in RESOLUTIONS:
            raise StoreError(f"resolution {resolution!r}: choose raw, hour or day")
        lo, hi = _ms(start), _ms(end)
        with self._s._lock:
            if resolution == "raw":
                rows = self._q(
                    "SELECT r.t_ms, r.value, r.delta, d.identification FROM submeter_reading r"
                    " JOIN submeter d ON d.id = r.submeter_id WHERE d.meter = ? AND d.slot = ?"
                    " AND r.t_ms >= ? AND r.t_ms < ? ORDER BY r.t_ms",
                    (meter, slot, lo, hi),
                )
                return [
                    SubmeterPoint(at=_at(int(t)), value=float(v), delta=float(dl), identification=i)
                    for t, v, dl, i in rows
                ]
            rows = self._q(
                "SELECT b.bucket_start, b.last_value, b.delta, d.identification"
                " FROM submeter_rollup b JOIN submeter d ON d.id = b.submeter_id"
                " WHERE d.meter = ? AND d.slot = ? AND b.resolution = ?"
                " AND b.bucket_start >= ? AND b.bucket_start < ?"
                " ORDER BY b.bucket_start, b.last_at_ms",
                (meter, slot, resolution, lo // 1000 - 86400, hi // 1000),
            )
        width = 3600 if resolution == "hour" else 86400
        merged: dict[int, SubmeterPoint] = {}
        for bucket, value, delta, ident in rows:
            if int(bucket) + width <= lo // 1000:
                continue  # ended before start (day buckets start at local midnight)
            known = merged.get(int(bucket))  # a swap inside a bucket: both devices' use
            total = float(delta) + (known.delta if known else 0.0)
            merged[int(bucket)] = SubmeterPoint(
                at=_at(int(bucket) * 1000), value=float(value), delta=total, identification=ident
            )
        return list(merged.values())


class AsyncSubmeterStore:
    """:class:`SubmeterStore` for the event loop (each call in a worker thread)."""

    def __init__(self, store: SqlStore) -> None:
        self.sync = SubmeterStore(store)

    async def add(self, device: SubmeterDevice, at: dt.datetime, value: float) -> float | None:
        return await asyncio.to_thread(self.sync.add, device, at, value)

    async def latest(self, meter: str | None = None) -> list[StoredSubmeter]:
        return await asyncio.to_thread(self.sync.latest, meter)

    async def history(
        self, meter: str, slot: int, start: dt.datetime, end: dt.datetime, resolution: str
    ) -> list[SubmeterPoint]:
        return await asyncio.to_thread(self.sync.history, meter, slot, start, end, resolution)
