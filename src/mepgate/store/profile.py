"""The meter's load profile in the store: its intervals, their place in the rollups, and the
comparison of each hour with the live readings.

An INT32-snapshot profile interval holds the registers at the interval's end (MEP guide, BT62
"Format" 32).  It is placed in the rollups at its end less one millisecond -- the last moment
of the interval, so that the snapshot taken at 13:00 closes the bucket 12:00-13:00 -- in the
``profile_*`` columns beside the live ones (:mod:`mepgate.store.schema`, v4).  A history point
takes its registers from whichever of the two is newer in it (:func:`energy_of`): the profile's
closing snapshot where the profile covers the point's end, the live readings where they are
newer (the hour in progress); ``energy_source`` says which.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import HourComparison, ProfileInterval
from .rollup import epoch_ms, from_epoch_ms
from .schema import ENERGY_FIELDS, PROFILE_CHANNELS, PROFILE_LAST_COLUMNS, ROLLUP_TIERS, Tier

if TYPE_CHECKING:
    from .sql import Row, SqlStore

HOUR_MS = 3_600_000
EDGE_ENERGY_FACTOR = 2.0
"""How much more than the live reading's power may flow in the seconds between it and the hour's
end (the tolerance of :func:`compare`)."""
ROUNDING_WH = 2.0
"""Both registers are whole Wh: two roundings at each end of the hour."""
_COLUMNS = ("number", "end_ms", "meter_end_ms", "interval_s", "status", "channel_status")


def placed_ms(interval: ProfileInterval) -> int:
    """Where an interval's snapshot sits in the rollups: the last millisecond of the interval."""
    return epoch_ms(interval.end) - 1


def _upsert(store: SqlStore, tier: Tier) -> str:
    d = store.dialect
    new_at, old_at = "excluded.profile_last_at_ms", "r.profile_last_at_ms"
    newer = f"{old_at} IS NULL OR {new_at} >= {old_at}"
    updates = ["profile_n = r.profile_n + excluded.profile_n"]
    updates += [
        f"{column} = CASE WHEN {newer} THEN excluded.{column} ELSE r.{column} END"
        for column in PROFILE_LAST_COLUMNS
    ]
    updates.append(f"profile_last_at_ms = {d.larger(old_at, new_at)}")
    columns = ["meter_id", "bucket_start", "last_at_ms", "profile_n", "profile_last_at_ms"]
    columns += PROFILE_LAST_COLUMNS
    return d.sql(
        f"INSERT INTO {tier.table} AS r ({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT (meter_id, bucket_start) DO UPDATE SET {', '.join(updates)}"
    )


def ingest(
    store: SqlStore, meter: str, intervals: Sequence[ProfileInterval], state: tuple[str, str] | None
) -> int:
    """See :meth:`mepgate.store.Store.ingest_profile`; runs under the store's lock."""
    insert = store.dialect.sql(
        f"INSERT INTO profile_interval (meter_id, {', '.join(_COLUMNS)},"
        f" {', '.join(PROFILE_CHANNELS)}) VALUES ({', '.join('?' * (1 + 6 + 4))})"
        " ON CONFLICT (meter_id, number) DO NOTHING"
    )
    new = 0
    with store._transaction():
        meter_id = store._ids_for([meter])[meter]
        rows: dict[str, list[list[Any]]] = {tier.name: [] for tier in ROLLUP_TIERS}
        for interval in intervals:
            values = [getattr(interval, name) for name in PROFILE_CHANNELS]
            row = [
                meter_id,
                interval.number,
                epoch_ms(interval.end),
                epoch_ms(interval.meter_end),
                interval.interval_s,
                interval.status,
                interval.channel_status,
                *values,
            ]
            if not store._exec(insert, row):
                continue  # stored before: never twice in the rollups
            new += 1
            at = placed_ms(interval)
            energies = [getattr(interval, name) for name in ENERGY_FIELDS]
            for tier in ROLLUP_TIERS:
                start = at // 1000 // tier.step_s * tier.step_s
                rows[tier.name].append([meter_id, start, 0, 1, at, *energies])
        for tier in ROLLUP_TIERS:
            if rows[tier.name]:
                store._many(_upsert(store, tier), rows[tier.name])
        if state is not None:
            store._q(
                "INSERT INTO meter_state (meter, name, value) VALUES (?, ?, ?)"
                " ON CONFLICT (meter, name) DO UPDATE SET value = excluded.value",
                (meter, *state),
            )
    store._meter_ids[meter] = meter_id
    return new


def _interval(row: Row) -> ProfileInterval:
    number, end_ms, meter_end_ms, interval_s, status, channel_status = (int(v) for v in row[:6])
    values = {
        name: None if v is None else float(v)
        for name, v in zip(PROFILE_CHANNELS, row[6:], strict=True)
    }
    return ProfileInterval(
        number=number,
        end=from_epoch_ms(end_ms),
        meter_end=from_epoch_ms(meter_end_ms),
        interval_s=interval_s,
        status=status,
        channel_status=channel_status,
        **values,
    )


def read(
    store: SqlStore, meter_id: int, start: dt.datetime, end: dt.datetime, limit: int
) -> list[ProfileInterval]:
    rows = store._q(
        f"SELECT {', '.join(_COLUMNS)}, {', '.join(PROFILE_CHANNELS)} FROM profile_interval"
        " WHERE meter_id = ? AND end_ms >= ? AND end_ms < ? ORDER BY end_ms, number LIMIT ?",
        (meter_id, epoch_ms(start), epoch_ms(end), limit),
    )
    return [_interval(row) for row in rows]


def _snapshot(store: SqlStore, meter_id: int, boundary_ms: int) -> float | None:
    """The profile's forward register at ``boundary_ms`` (an interval ending exactly there;
    after a clock set back, the newest of several)."""
    fwd = ENERGY_FIELDS[0]
    rows = store._q(
        f"SELECT max({fwd}) FROM profile_interval WHERE meter_id = ? AND end_ms = ?",
        (meter_id, boundary_ms),
    )
    return None if not rows or rows[0][0] is None else float(rows[0][0])


def _live_before(
    store: SqlStore, meter_id: int, boundary_ms: int, edge_ms: int
) -> tuple[int, float, float | None] | None:
    """The newest live reading within ``edge_ms`` before ``boundary_ms``: time, forward
    register, import power."""
    rows = store._q(
        f"SELECT t_ms, {ENERGY_FIELDS[0]}, active_power_import_w FROM raw WHERE meter_id = ?"
        " AND t_ms < ? AND t_ms >= ? ORDER BY t_ms DESC LIMIT 1",
        (meter_id, boundary_ms, boundary_ms - edge_ms),
    )
    if not rows or rows[0][1] is None:
        return None
    power = None if rows[0][2] is None else float(rows[0][2])
    return int(rows[0][0]), float(rows[0][1]), power


def compare(
    store: SqlStore, meter_id: int, start: dt.datetime, end: dt.datetime, edge_s: float
) -> list[HourComparison]:
    """See :meth:`mepgate.store.Store.compare_profile`.

    The live delta runs from the last reading before the hour to the last reading before its
    end, so it misses the seconds between each reading and the boundary: the tolerance is
    :data:`ROUNDING_WH` plus :data:`EDGE_ENERGY_FACTOR` times what the readings' import power
    gives in those seconds (or the hour's mean power, when a reading has none).
    """
    edge_ms = round(edge_s * 1000)
    first = -(-epoch_ms(start) // HOUR_MS) * HOUR_MS
    last = epoch_ms(end) // HOUR_MS * HOUR_MS
    out: list[HourComparison] = []
    previous: tuple[float, tuple[int, float, float | None]] | None = None
    for boundary in range(first, last + 1, HOUR_MS):
        snapshot = _snapshot(store, meter_id, boundary)
        live = _live_before(store, meter_id, boundary, edge_ms) if snapshot is not None else None
        here = (snapshot, live) if snapshot is not None and live is not None else None
        if here is not None and previous is not None:
            (p0, (t0, r0, w0)), (p1, (t1, r1, w1)) = previous, here
            profile_wh, live_wh = p1 - p0, r1 - r0
            mean_w = profile_wh  # Wh in an hour = mean W
            edge_wh = sum(
                (w if w is not None else mean_w) * (b - t) / HOUR_MS
                for w, b, t in ((w0, boundary - HOUR_MS, t0), (w1, boundary, t1))
            )
            out.append(
                HourComparison(
                    start=from_epoch_ms(boundary - HOUR_MS),
                    live_wh=live_wh,
                    profile_wh=profile_wh,
                    tolerance_wh=ROUNDING_WH + EDGE_ENERGY_FACTOR * edge_wh,
                )
            )
        previous = here
    return out


def newest_register(
    store: SqlStore, meter_id: int, before_ms: int | None
) -> tuple[int, float, float] | None:
    """(time placed, forward, reverse) of the newest profile snapshot placed before
    ``before_ms`` (or at all): a candidate for the registers at a moment (energy totals)."""
    fwd, rev = ENERGY_FIELDS
    condition = "" if before_ms is None else " AND end_ms - 1 < ?"
    params: list[Any] = [meter_id] if before_ms is None else [meter_id, before_ms]
    rows = store._q(
        f"SELECT end_ms - 1, {fwd}, {rev} FROM profile_interval WHERE meter_id = ?{condition}"
        f" AND {fwd} IS NOT NULL AND {rev} IS NOT NULL ORDER BY end_ms DESC, number DESC LIMIT 1",
        params,
    )
    if not rows:
        return None
    return int(rows[0][0]), float(rows[0][1]), float(rows[0][2])


def energy_of(
    live_at_ms: int | None,
    live: tuple[float | None, float | None],
    profile_at_ms: int | None,
    profile: tuple[float | None, float | None],
) -> tuple[float | None, float | None, str | None]:
    """A point's registers: the newer of its live readings' and its profile snapshot's (a tie
    goes to the profile: what the grid company bills)."""
    has_live = live[0] is not None and live_at_ms
    if (
        profile_at_ms is not None
        and profile[0] is not None
        and (not has_live or profile_at_ms >= (live_at_ms or 0))
    ):
        return profile[0], profile[1], "profile"
    if has_live:
        return live[0], live[1], "live"
    return None, None, None
