"""The store's logic, written once in SQL that SQLite and PostgreSQL both run.

Subclasses supply a connection: how to run a statement, a batch of statements and a
transaction, plus the few things that really differ (file size vs relation size, the
migration lock).  Everything else -- ingest, rollups, history, energy, retention -- is here.
"""

from __future__ import annotations

import abc
import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal
from zoneinfo import ZoneInfo

from mepgate.config import Retention
from mepgate.reading import TIERS, Reading, tier_energy_field

from . import profile as _profile
from .base import (
    EnergyDelta,
    EnergyPeriod,
    EnergyTotals,
    FieldStats,
    HistoryPoint,
    HourComparison,
    ProfileInterval,
    Store,
)
from .errors import SchemaTooNewError, StoreError
from .events import EventStore
from .history import MAX_POINTS, Oldest, Plan, plan
from .rollup import Bucket, aggregate, epoch_ms, from_epoch_ms
from .schema import (
    ENERGY_FIELDS,
    INTEGER_FIELDS,
    LAST_FIELDS,
    MIGRATIONS,
    PROFILE_ROLLUP_COLUMNS,
    RAW,
    ROLLUP_TIERS,
    STORED_FIELDS,
    Dialect,
    Migration,
    Tier,
    rollup_columns,
)
from .self_reads import SelfReadsMixin

Row = Sequence[Any]
Clock = Callable[[], dt.datetime]
_TIERS_BY_NAME = {tier.name: tier for tier in ROLLUP_TIERS}
_ALL_TABLES = (RAW, *ROLLUP_TIERS)
# How rollup columns combine when several buckets are grouped into one chart point.
_GROUP_FUNCTION = {"min": "min", "max": "max", "sum": "sum", "n": "sum", "last": "max"}
# The profile's rollup columns grouped: intervals add up, the newest snapshot is the largest.
_PROFILE_GROUPED = (
    "sum(profile_n)",
    "max(profile_last_at_ms)",
    *tuple(f"max({column})" for column in PROFILE_ROLLUP_COLUMNS[2:]),
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _reading(meter: str, row: Row) -> Reading:
    """A stored raw row (``t_ms`` and :data:`STORED_FIELDS`) as a :class:`Reading`."""
    values = {
        name: (None if v is None else int(v) if name in INTEGER_FIELDS else float(v))
        for name, v in zip(STORED_FIELDS, row[1:], strict=True)
    }
    return Reading(meter=meter, at=from_epoch_ms(int(row[0])), **values)  # type: ignore[arg-type]


Registers = dict[str, float | None]
"""Every energy register of one reading (:data:`LAST_FIELDS`) by name."""
MAX_PERIODS = 1000
"""Hours or days one :meth:`SqlStore.energy_periods` call answers at most (40 days of hours)."""


def _registers_of(values: Row) -> Registers:
    return {
        name: None if v is None else float(v) for name, v in zip(LAST_FIELDS, values, strict=True)
    }


def _difference(end: Registers, start: Registers, since: dt.datetime) -> EnergyDelta:
    """``end - start`` per register; a tier is ``None`` unless both ends know it."""

    def minus(name: str) -> float | None:
        a, b = end[name], start[name]
        return None if a is None or b is None else a - b

    forward, reverse = (minus(name) or 0.0 for name in ENERGY_FIELDS)
    return EnergyDelta(
        forward_wh=forward,
        reverse_wh=reverse,
        since=since,
        tier_forward_wh=tuple(minus(tier_energy_field("forward", t)) for t in TIERS),
        tier_reverse_wh=tuple(minus(tier_energy_field("reverse", t)) for t in TIERS),
    )


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name}={value.isoformat()} has no time zone: pass an aware datetime")


class SqlStore(EventStore, SelfReadsMixin, Store):
    dialect: Dialect

    def __init__(
        self,
        *,
        retention: Retention | None = None,
        local_tz: dt.tzinfo | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.retention = retention or Retention()
        self.local_tz = local_tz or ZoneInfo("UTC")
        self._clock = clock
        self._lock = threading.Lock()
        self._meter_ids: dict[str, int] = {}
        self._upserts = {tier.name: self._upsert_sql(tier) for tier in ROLLUP_TIERS}

    # -- what a backend provides -------------------------------------------------------------

    @abc.abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abc.abstractmethod
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abc.abstractmethod
    def _many(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[None]: ...

    @abc.abstractmethod
    def _lock_for_migration(self) -> None:
        """Called first inside the migration transaction: keep other processes out."""

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._rows(self.dialect.sql(sql), params)

    # -- migrations ----------------------------------------------------------------------------

    def _migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        """Bring the schema to the newest version, one transaction per step."""
        known = migrations[-1].version if migrations else 0
        while True:
            with self._lock, self._transaction():
                self._lock_for_migration()
                self._q(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                    " applied_at TEXT NOT NULL, description TEXT NOT NULL)"
                )
                current = self._q("SELECT coalesce(max(version), 0) FROM schema_version")[0][0]
                if current > known:
                    raise SchemaTooNewError(
                        f"this database has schema version {current}, but this mepgate knows"
                        f" only up to version {known}: it was written by a newer mepgate."
                        " Upgrade mepgate (or point it at another database); nothing was changed."
                    )
                pending = [m for m in migrations if m.version > current]
                if not pending:
                    return
                step = pending[0]
                for statement in step.statements(self.dialect):
                    self._q(statement)
                self._q(
                    "INSERT INTO schema_version (version, applied_at, description)"
                    " VALUES (?, ?, ?)",
                    (step.version, self._clock().isoformat(), step.description),
                )

    def schema_version(self) -> int:
        with self._lock:
            version: int = self._q("SELECT max(version) FROM schema_version")[0][0]
        return version

    # -- ingest --------------------------------------------------------------------------------

    def _upsert_sql(self, tier: Tier) -> str:
        d = self.dialect
        columns = rollup_columns()
        updates = [f"last_at_ms = {d.larger('r.last_at_ms', 'excluded.last_at_ms')}"]
        for column in columns:
            old, new = f"r.{column}", f"excluded.{column}"
            if column.endswith("_min"):
                updates.append(f"{column} = {d.smaller(old, new)}")
            elif column.endswith("_max"):
                updates.append(f"{column} = {d.larger(old, new)}")
            elif column.endswith("_sum"):
                updates.append(f"{column} = coalesce({old} + {new}, {old}, {new})")
            elif column.endswith("_n"):
                updates.append(f"{column} = {old} + {new}")
            else:  # _last: the newer reading wins, the incoming one on a tie (Bucket.merge)
                updates.append(
                    f"{column} = CASE WHEN excluded.last_at_ms >= r.last_at_ms"
                    f" THEN {new} ELSE {old} END"
                )
        placeholders = ", ".join("?" * (3 + len(columns)))
        return d.sql(
            f"INSERT INTO {tier.table} AS r (meter_id, bucket_start, last_at_ms,"
            f" {', '.join(columns)}) VALUES ({placeholders})"
            f" ON CONFLICT (meter_id, bucket_start) DO UPDATE SET {', '.join(updates)}"
        )

    def _ids_for(self, names: Iterable[str]) -> dict[str, int]:
        """Meter ids, creating meters as needed (inside the caller's transaction)."""
        ids: dict[str, int] = {}
        for name in names:
            known = self._meter_ids.get(name)
            if known is None:
                self._q(
                    "INSERT INTO meter (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,)
                )
                known = int(self._q("SELECT id FROM meter WHERE name = ?", (name,))[0][0])
            ids[name] = known
        return ids

    def _find_meter(self, name: str) -> int | None:
        known = self._meter_ids.get(name)
        if known is None:
            rows = self._q("SELECT id FROM meter WHERE name = ?", (name,))
            if not rows:
                return None
            known = self._meter_ids[name] = int(rows[0][0])
        return known

    def _merge(self, buckets: Iterable[Bucket], ids: dict[str, int]) -> None:
        by_tier: dict[str, list[list[Any]]] = {tier.name: [] for tier in ROLLUP_TIERS}
        for bucket in buckets:
            row: list[Any] = [ids[bucket.meter], bucket.start, bucket.last_at_ms]
            by_tier[bucket.tier.name].append(row + bucket.row())
        for name, rows in by_tier.items():
            if rows:
                self._many(self._upserts[name], rows)

    def ingest(self, readings: Sequence[Reading]) -> int:
        unique: dict[tuple[str, int], Reading] = {}
        for reading in readings:
            unique.setdefault((reading.meter, epoch_ms(reading.at)), reading)
        if not unique:
            return 0
        insert = self.dialect.sql(
            f"INSERT INTO raw (meter_id, t_ms, {', '.join(STORED_FIELDS)})"
            f" VALUES ({', '.join('?' * (2 + len(STORED_FIELDS)))})"
            " ON CONFLICT (meter_id, t_ms) DO NOTHING"
        )
        with self._lock:
            with self._transaction():
                ids = self._ids_for(sorted({meter for meter, _ in unique}))
                fresh: list[Reading] = []
                rows: list[list[Any]] = []
                for name, meter_id in ids.items():
                    times = [t for meter, t in unique if meter == name]
                    stored = {
                        row[0]
                        for row in self._q(
                            "SELECT t_ms FROM raw WHERE meter_id = ? AND t_ms BETWEEN ? AND ?",
                            (meter_id, min(times), max(times)),
                        )
                    }
                    for t_ms in times:
                        if t_ms not in stored:
                            reading = unique[(name, t_ms)]
                            fresh.append(reading)
                            values = reading.values()
                            rows.append([meter_id, t_ms, *(values[f] for f in STORED_FIELDS)])
                if rows:
                    self._many(insert, rows)
                    self._merge(aggregate(fresh), ids)
            self._meter_ids.update(ids)  # only once committed
        return len(fresh)

    def merge_buckets(self, buckets: Iterable[Bucket]) -> None:
        batch = list(buckets)
        if not batch:
            return
        with self._lock:
            with self._transaction():
                ids = self._ids_for(sorted({bucket.meter for bucket in batch}))
                self._merge(batch, ids)
            self._meter_ids.update(ids)

    # -- the load profile --------------------------------------------------------------------

    def ingest_profile(
        self,
        meter: str,
        intervals: Sequence[ProfileInterval],
        *,
        state: tuple[str, str] | None = None,
    ) -> int:
        with self._lock:
            return _profile.ingest(self, meter, intervals, state)

    def profile(
        self, meter: str, start: dt.datetime, end: dt.datetime, limit: int = 5000
    ) -> list[ProfileInterval]:
        _require_aware("start", start)
        _require_aware("end", end)
        with self._lock:
            meter_id = self._find_meter(meter)
            return [] if meter_id is None else _profile.read(self, meter_id, start, end, limit)

    def compare_profile(
        self, meter: str, start: dt.datetime, end: dt.datetime, *, edge_s: float
    ) -> list[HourComparison]:
        _require_aware("start", start)
        _require_aware("end", end)
        with self._lock:
            meter_id = self._find_meter(meter)
            if meter_id is None:
                return []
            return _profile.compare(self, meter_id, start, end, edge_s)

    # -- reading back ---------------------------------------------------------------------------

    def meters(self) -> list[str]:
        with self._lock:
            return [str(row[0]) for row in self._q("SELECT name FROM meter ORDER BY name")]

    def latest(self, meter: str) -> Reading | None:
        newest = self.recent(meter, 1)
        return newest[0] if newest else None

    def recent(self, meter: str, count: int) -> list[Reading]:
        with self._lock:
            meter_id = self._find_meter(meter)
            if meter_id is None:
                return []
            rows = self._q(
                f"SELECT t_ms, {', '.join(STORED_FIELDS)} FROM raw WHERE meter_id = ?"
                " ORDER BY t_ms DESC LIMIT ?",
                (meter_id, count),
            )
        return [_reading(meter, row) for row in reversed(rows)]

    def state(self, meter: str, name: str) -> str | None:
        with self._lock:
            rows = self._q(
                "SELECT value FROM meter_state WHERE meter = ? AND name = ?", (meter, name)
            )
        return str(rows[0][0]) if rows else None

    def set_state(self, meter: str, name: str, value: str | None) -> None:
        with self._lock, self._transaction():
            if value is None:
                self._q("DELETE FROM meter_state WHERE meter = ? AND name = ?", (meter, name))
            else:
                self._q(
                    "INSERT INTO meter_state (meter, name, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (meter, name) DO UPDATE SET value = excluded.value",
                    (meter, name, value),
                )

    def _oldest(self, tier: Tier, meter_id: int) -> Oldest | None:
        """The oldest stored row of ``tier`` for the meter: where it starts, and a reading time
        in it (a rollup bucket starts before its first reading -- up to a day before)."""
        key = "t_ms" if tier is RAW else "bucket_start"
        # A bucket holding only load profile intervals has no live reading (last_at_ms 0).
        seen = (
            "t_ms"
            if tier is RAW
            else "CASE WHEN last_at_ms > 0 THEN last_at_ms ELSE profile_last_at_ms END"
        )
        rows = self._q(
            f"SELECT {key}, {seen} FROM {tier.table} WHERE meter_id = ? ORDER BY {key} LIMIT 1",
            (meter_id,),
        )
        if not rows:
            return None
        first = int(rows[0][0])
        return Oldest(
            start=first // 1000 if tier is RAW else first, reading=int(rows[0][1]) // 1000
        )

    def history(
        self, meter: str, start: dt.datetime, end: dt.datetime, points: int = 500
    ) -> list[HistoryPoint]:
        _require_aware("start", start)
        _require_aware("end", end)
        if not 1 <= points <= MAX_POINTS:
            raise StoreError(f"points={points}: ask for 1 to {MAX_POINTS} points")
        start_s = epoch_ms(start) // 1000
        end_s = -(-epoch_ms(end) // 1000)
        with self._lock:
            meter_id = self._find_meter(meter)
            if meter_id is None:
                return []
            oldest = {tier.name: self._oldest(tier, meter_id) for tier in _ALL_TABLES}
            chosen = plan(start_s, end_s, points, oldest)
            if chosen is None:
                return []
            rows = self._q(*self._history_sql(chosen, meter_id))
        return [self._point(chosen, row) for row in rows]

    def _history_sql(self, p: Plan, meter_id: int) -> tuple[str, list[Any]]:
        fields = STORED_FIELDS
        if p.tier is RAW:
            scale, key = 1000, "t_ms"
            if p.factor == 1:
                sql = f"SELECT t_ms, {', '.join(fields)} FROM raw"
            else:
                aggregates = [f"min({f}), max({f}), sum({f}), count({f})" for f in fields]
                aggregates += [f"max({f})" for f in LAST_FIELDS]
                sql = (
                    "SELECT (t_ms - CAST(? AS BIGINT)) / CAST(? AS BIGINT) AS g, max(t_ms),"
                    f" {', '.join(aggregates)} FROM raw"
                )
        else:
            scale, key = 1, "bucket_start"
            columns = rollup_columns()
            if p.factor == 1:
                columns = [*columns, *PROFILE_ROLLUP_COLUMNS]
                sql = f"SELECT bucket_start, last_at_ms, {', '.join(columns)} FROM {p.tier.table}"
            else:
                aggregates = [f"{_GROUP_FUNCTION[c.rpartition('_')[2]]}({c})" for c in columns]
                aggregates += _PROFILE_GROUPED
                sql = (
                    "SELECT (bucket_start - CAST(? AS BIGINT)) / CAST(? AS BIGINT) AS g,"
                    f" max(last_at_ms), {', '.join(aggregates)} FROM {p.tier.table}"
                )
        params: list[Any] = [] if p.factor == 1 else [p.origin * scale, p.width_s * scale]
        sql += f" WHERE meter_id = ? AND {key} >= ? AND {key} < ?"
        params += [meter_id, p.origin * scale, p.end * scale]
        sql += f" ORDER BY {key}" if p.factor == 1 else " GROUP BY g ORDER BY g"
        return sql, params

    def _point(self, p: Plan, row: Row) -> HistoryPoint:
        if p.tier is RAW and p.factor == 1:
            values = row[1:]
            stats = {
                name: FieldStats(float(v), float(v), float(v))
                for name, v in zip(STORED_FIELDS, values, strict=True)
                if v is not None
            }
            lasts = [values[STORED_FIELDS.index(name)] for name in LAST_FIELDS]
            t, width = from_epoch_ms(int(row[0])), dt.timedelta(0)
        else:
            if p.factor == 1:
                t = from_epoch_ms(int(row[0]) * 1000)
            else:
                t = from_epoch_ms((p.origin + int(row[0]) * p.width_s) * 1000)
            width = dt.timedelta(seconds=p.width_s)
            stats = {}
            for i, name in enumerate(STORED_FIELDS):
                low, high, total, count = row[2 + 4 * i : 6 + 4 * i]
                if count:
                    stats[name] = FieldStats(float(total) / int(count), float(low), float(high))
            after = 2 + 4 * len(STORED_FIELDS)
            lasts = list(row[after : after + len(LAST_FIELDS)])
            profile_row = row[after + len(LAST_FIELDS) :]
        live = tuple(lasts[LAST_FIELDS.index(name)] for name in ENERGY_FIELDS)
        live_at = int(row[0]) if p.tier is RAW and p.factor == 1 else row[1]
        profile_n, profile_at, profile_forward, profile_reverse = (
            (0, None, None, None) if p.tier is RAW else profile_row
        )
        forward, reverse, source = _profile.energy_of(
            None if live_at is None else int(live_at),
            (live[0], live[1]),
            None if profile_at is None else int(profile_at),
            (profile_forward, profile_reverse),
        )
        return HistoryPoint(
            t=t,
            width=width,
            resolution=p.tier.name,
            stats=stats,
            forward_active_energy_wh=None if forward is None else float(forward),
            reverse_active_energy_wh=None if reverse is None else float(reverse),
            energy_source=source,
            profile_intervals=int(profile_n or 0),
        )

    # -- energy ---------------------------------------------------------------------------------

    def _registers(self, meter_id: int, at_ms: int | None) -> tuple[int, Registers] | None:
        """(time, every energy register) of the newest reading before ``at_ms`` (or at all).

        Intervals are half-open like the buckets: a reading exactly at a boundary belongs to
        the period it starts.  Looks in every resolution and keeps the newest candidate, so the
        answer is exact while any resolution still holds the moment; a rollup bucket counts only
        if it ended by then.
        """
        candidates: list[Row] = []
        before = "" if at_ms is None else " AND t_ms < ?"
        params: list[Any] = [meter_id] if at_ms is None else [meter_id, at_ms]
        candidates += self._q(
            f"SELECT t_ms, {', '.join(LAST_FIELDS)} FROM raw WHERE meter_id = ?{before}"
            " ORDER BY t_ms DESC LIMIT 1",
            params,
        )
        lasts = ", ".join(f"{name}_last" for name in LAST_FIELDS)
        for tier in ROLLUP_TIERS:
            ended = "" if at_ms is None else " AND bucket_start <= ?"
            params = [meter_id] if at_ms is None else [meter_id, at_ms // 1000 - tier.step_s]
            candidates += self._q(
                f"SELECT last_at_ms, {lasts} FROM {tier.table}"
                f" WHERE meter_id = ?{ended} AND {ENERGY_FIELDS[0]}_last IS NOT NULL"
                " ORDER BY bucket_start DESC LIMIT 1",
                params,
            )
        snapshot = _profile.newest_register(self, meter_id, at_ms)
        if snapshot is not None:  # the profile's, newer than any live reading: it wins
            # The profile records the totals only: its tier registers are unknown.
            candidates.append((*snapshot, *([None] * (len(LAST_FIELDS) - len(snapshot) + 1))))
        if not candidates:
            return None
        best = max(candidates, key=lambda row: int(row[0]))
        return int(best[0]), _registers_of(best[1:])

    def _first_registers_from(self, meter_id: int, at_ms: int) -> Registers | None:
        """Registers of the first reading at or after ``at_ms`` (energy never decreases, so a
        bucket's minimum is its first value)."""
        rows = self._q(
            f"SELECT {', '.join(LAST_FIELDS)} FROM raw WHERE meter_id = ? AND t_ms >= ?"
            " ORDER BY t_ms LIMIT 1",
            (meter_id, at_ms),
        )
        mins = ", ".join(f"{name}_min" for name in LAST_FIELDS)
        for tier in ROLLUP_TIERS:
            if rows:
                break
            rows = self._q(
                f"SELECT {mins} FROM {tier.table} WHERE meter_id = ? AND bucket_start >= ?"
                f" AND {ENERGY_FIELDS[0]}_min IS NOT NULL ORDER BY bucket_start LIMIT 1",
                (meter_id, -(-at_ms // 1000)),
            )
        return _registers_of(rows[0]) if rows else None

    def local_boundaries(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """Local midnight today and local midnight on the 1st, as aware UTC datetimes."""
        local = now.astimezone(self.local_tz)
        midnight = dt.datetime(local.year, local.month, local.day, tzinfo=self.local_tz)
        first = dt.datetime(local.year, local.month, 1, tzinfo=self.local_tz)
        return midnight.astimezone(dt.UTC), first.astimezone(dt.UTC)

    def period_starts(self, period: str, count: int, now: dt.datetime) -> list[dt.datetime]:
        """The starts (aware UTC) of the ``count`` latest local hours or days up to ``now``,
        oldest first, and the end of the current one after them (``count + 1`` times).  A
        local day is 23 or 25 hours long on the days the clocks change."""
        local = now.astimezone(self.local_tz)
        if period == "hour":
            # Every zone's offset changes by whole hours: local hours are UTC hours apart.
            current = local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
            return [current + dt.timedelta(hours=k) for k in range(1 - count, 2)]
        if period == "day":
            today = local.date()
            days = [today + dt.timedelta(days=k) for k in range(1 - count, 2)]
            return [
                dt.datetime(d.year, d.month, d.day, tzinfo=self.local_tz).astimezone(dt.UTC)
                for d in days
            ]
        raise StoreError(f"period={period!r}: use 'hour' or 'day'")

    def _delta(
        self,
        meter_id: int,
        start: dt.datetime,
        end: Registers,
        base: tuple[int, Registers] | Literal["ask"] | None = "ask",
    ) -> EnergyDelta:
        """The registers ``end`` minus those of the newest reading before ``start`` (``base``
        if the caller has it already; or, none being stored, of the first reading from
        ``start`` on; or ``end`` itself)."""
        if base == "ask":
            base = self._registers(meter_id, epoch_ms(start))
        first = (
            base[1] if base is not None else self._first_registers_from(meter_id, epoch_ms(start))
        )
        if first is None:
            first = end
        return _difference(end, first, start)

    def energy_totals(self, meter: str, now: dt.datetime | None = None) -> EnergyTotals | None:
        now = now or self._clock()
        _require_aware("now", now)
        with self._lock:
            meter_id = self._find_meter(meter)
            if meter_id is None:
                return None
            newest = self._registers(meter_id, epoch_ms(now) + 1)
            if newest is None:
                return None
            at_ms, registers = newest
            today, month = (
                self._delta(meter_id, boundary, registers)
                for boundary in self.local_boundaries(now)
            )
        return EnergyTotals(today=today, this_month=month, at=from_epoch_ms(at_ms))

    def energy_periods(
        self, meter: str, period: str, count: int, now: dt.datetime | None = None
    ) -> list[EnergyPeriod]:
        now = now or self._clock()
        _require_aware("now", now)
        if not 1 <= count <= MAX_PERIODS:
            raise StoreError(f"count={count}: ask for 1 to {MAX_PERIODS} periods")
        starts = self.period_starts(period, count, now)
        out: list[EnergyPeriod] = []
        with self._lock:
            meter_id = self._find_meter(meter)
            # The registers at each boundary, each asked once: the newest reading before it
            # (before the first period's start, and up to now at the end).
            at = [
                None if meter_id is None else self._registers(meter_id, epoch_ms(boundary))
                for boundary in [*starts[:-1], now + dt.timedelta(milliseconds=1)]
            ]
            for i, (start, end) in enumerate(itertools.pairwise(starts)):
                at_end, delta = at[i + 1], None
                if meter_id is not None and at_end is not None and at_end[0] >= epoch_ms(start):
                    delta = self._delta(meter_id, start, at_end[1], base=at[i])
                out.append(EnergyPeriod(start=start, end=end, delta=delta))
        return out

    # -- retention --------------------------------------------------------------------------

    def _cutoffs(self, now: dt.datetime) -> Iterator[tuple[Tier, str, int]]:
        for tier in _ALL_TABLES:
            keep = self.retention.keep(tier.table)
            if keep is None:
                continue
            cutoff_ms = epoch_ms(now - keep)
            if tier is RAW:
                yield tier, "t_ms", cutoff_ms
            else:
                yield tier, "bucket_start", cutoff_ms // 1000

    def sweep(self, now: dt.datetime | None = None, batch_rows: int = 2000) -> int:
        now = now or self._clock()
        _require_aware("now", now)
        deleted = 0
        with self._lock:
            meter_ids = [int(row[0]) for row in self._q("SELECT id FROM meter")]
        for tier, key, cutoff in self._cutoffs(now):
            for meter_id in meter_ids:
                while True:  # one small transaction per batch: ingest interleaves
                    with self._lock, self._transaction():
                        edge = self._q(
                            f"SELECT {key} FROM {tier.table} WHERE meter_id = ? AND {key} < ?"
                            f" ORDER BY {key} LIMIT 1 OFFSET ?",
                            (meter_id, cutoff, batch_rows - 1),
                        )
                        condition, bound = (
                            (f"{key} <= ?", int(edge[0][0])) if edge else (f"{key} < ?", cutoff)
                        )
                        deleted += self._exec(
                            self.dialect.sql(
                                f"DELETE FROM {tier.table} WHERE meter_id = ? AND {condition}"
                            ),
                            (meter_id, bound),
                        )
                    if not edge:
                        break
        return deleted
