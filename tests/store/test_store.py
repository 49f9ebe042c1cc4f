"""The store against real engines: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from mepgate.config import Retention
from mepgate.reading import Reading
from mepgate.store import AsyncStore, SchemaTooNewError, SqlStore, StoreError
from mepgate.store.rollup import aggregate
from mepgate.store.schema import MIGRATIONS, ROLLUP_TIERS, Migration, rollup_columns

DAY = dt.timedelta(days=1)
Series = Callable[..., list[Reading]]  # the make_series fixture (conftest.py)
StoreFactory = Callable[..., SqlStore]  # the make_store fixture


def _rollup_rows(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    columns = ", ".join(["bucket_start", "last_at_ms", *rollup_columns()])
    return {
        tier.name: [
            tuple(round(v, 6) if isinstance(v, float) else v for v in row)
            for row in store._q(f"SELECT {columns} FROM {tier.table} ORDER BY bucket_start")
        ]
        for tier in ROLLUP_TIERS
    }


def test_ingest_stores_raw_and_skips_duplicates(store: SqlStore, make_series: Series) -> None:
    readings = make_series(300)
    assert store.ingest(readings) == 300
    assert store.ingest(readings[100:200] + readings[100:101]) == 0
    assert store._q("SELECT count(*) FROM raw")[0][0] == 300
    assert store.meters() == ["house"]
    assert store.latest("house") == readings[-1]
    assert store.latest("garage") is None


def test_recent_gives_the_newest_readings_oldest_first(
    store: SqlStore, make_series: Series
) -> None:
    """What the gateway hands a poller as the evidence for its baseline."""
    readings = make_series(10)
    store.ingest(list(reversed(readings)))  # the order stored does not matter
    assert store.recent("house", 3) == readings[-3:]
    assert store.recent("house", 50) == readings
    assert store.recent("garage", 3) == []
    assert asyncio.run(AsyncStore(store).recent("house", 2)) == readings[-2:]


def test_batches_of_any_size_give_the_same_rollups(
    make_store: StoreFactory, make_series: Series
) -> None:
    readings = make_series(2 * 3600 + 17)
    one = make_store()
    one.ingest(readings)
    expected = _rollup_rows(one)
    one._q("DELETE FROM raw")
    for tier in ROLLUP_TIERS:
        one._q(f"DELETE FROM {tier.table}")
    for i in range(0, len(readings), 7):  # the service's small batches
        one.ingest(readings[i : i + 7])
    assert _rollup_rows(one) == expected
    assert len(expected["minute"]) == 121
    assert len(expected["hour"]) == 3
    assert len(expected["day"]) == 1


def test_out_of_order_batches_keep_the_newest_register(
    store: SqlStore, make_series: Series
) -> None:
    readings = make_series(120)
    store.ingest(readings[60:])
    store.ingest(readings[:60])
    minute = _rollup_rows(store)["minute"]
    last_energy = rollup_columns().index("forward_active_energy_wh_last") + 2
    assert [row[last_energy] for row in minute] == [
        readings[59].forward_active_energy_wh,
        readings[119].forward_active_energy_wh,
    ]


def test_fast_path_buckets_equal_ingest(make_store: StoreFactory, make_series: Series) -> None:
    readings = make_series(3600)
    store = make_store()
    store.merge_buckets(aggregate(readings))
    fast = _rollup_rows(store)
    for tier in ROLLUP_TIERS:
        store._q(f"DELETE FROM {tier.table}")
    store.ingest(readings)
    assert _rollup_rows(store) == fast


def test_history_returns_at_most_n_points_from_the_right_resolution(
    store: SqlStore, make_series: Series, t0: dt.datetime
) -> None:
    store.ingest(make_series(40 * 720, step_s=120))  # 40 days of a reading every 2 min
    end = t0 + dt.timedelta(days=40)
    for span, points, resolution in [
        (dt.timedelta(days=40), 30, "day"),
        (dt.timedelta(days=30), 1000, "hour"),
        (dt.timedelta(days=1), 1000, "minute"),  # raw counts as 1 Hz: 86 400 rows
        (dt.timedelta(minutes=30), 1000, "raw"),
        (dt.timedelta(days=1), 50, "hour"),
    ]:
        history = store.history("house", end - span, end, points=points)
        assert 0 < len(history) <= points, (span, points)
        assert {p.resolution for p in history} == {resolution}, (span, points)
        assert all(a.t < b.t for a, b in itertools.pairwise(history))
    assert store.history("nobody", t0, end) == []
    assert store.history("house", end, end + DAY) == []


def test_history_statistics_are_exact(
    store: SqlStore, make_series: Series, t0: dt.datetime
) -> None:
    readings = make_series(7200)
    store.ingest(readings)
    (point,) = store.history("house", t0, t0 + dt.timedelta(hours=2), points=1)
    powers = [r.active_power_import_w for r in readings if r.active_power_import_w is not None]
    stats = point.stats["active_power_import_w"]
    assert stats.min == min(powers)
    assert stats.max == max(powers)
    assert stats.mean == pytest.approx(sum(powers) / len(powers))
    assert point.forward_active_energy_wh == readings[-1].forward_active_energy_wh
    assert "voltage_l1_v" in point.stats
    assert "current_l2_a" not in point.stats  # never present: not invented as zero


def test_history_falls_back_to_coarser_rollups_after_retention(
    make_store: StoreFactory, make_series: Series, t0: dt.datetime
) -> None:
    store = make_store(retention=Retention(raw_days=1))
    store.ingest(make_series(4 * 3600))
    assert store.sweep(now=t0 + dt.timedelta(days=1, hours=3)) == 3 * 3600
    history = store.history("house", t0, t0 + dt.timedelta(minutes=10), points=1000)
    assert {p.resolution for p in history} == {"minute"}
    assert len(history) == 10


def test_history_rejects_bad_arguments(store: SqlStore, t0: dt.datetime) -> None:
    with pytest.raises(StoreError, match="points"):
        store.history("house", t0, t0 + DAY, points=0)
    with pytest.raises(StoreError, match="time zone"):
        store.history("house", t0.replace(tzinfo=None), t0 + DAY)


def test_energy_today_and_month_follow_local_midnight(
    make_store: StoreFactory, make_series: Series
) -> None:
    amsterdam = ZoneInfo("Europe/Amsterdam")
    store = make_store(local_tz=amsterdam)
    # 22:00 UTC on Feb 29 to 02:00 UTC on Mar 1: local midnight (CET, +1) is at 23:00 UTC.
    start = dt.datetime(2024, 2, 29, 22, tzinfo=dt.UTC)
    readings = make_series(4 * 3600, start=start)
    store.ingest(readings)
    now = start + dt.timedelta(hours=4)
    totals = store.energy_totals("house", now=now)
    assert totals is not None
    at_midnight = readings[3599]  # the last reading before 23:00:00 UTC
    assert totals.today.since == dt.datetime(2024, 2, 29, 23, tzinfo=dt.UTC)
    assert totals.today.forward_wh == pytest.approx(
        readings[-1].forward_active_energy_wh - at_midnight.forward_active_energy_wh
    )
    assert totals.today.reverse_wh == pytest.approx(
        readings[-1].reverse_active_energy_wh - at_midnight.reverse_active_energy_wh
    )
    assert totals.this_month == totals.today  # the 1st of March
    # An hour later, in UTC terms still March 1: still the same local day.
    assert store.energy_totals("house", now=now + dt.timedelta(hours=1)) == totals
    assert store.energy_totals("nobody", now=now) is None


def test_energy_month_uses_rollups_once_raw_rows_are_gone(
    make_store: StoreFactory, make_series: Series, t0: dt.datetime
) -> None:
    store = make_store(retention=Retention(raw_days=2))
    # One reading a minute from Feb 27 to Mar 5; the month starts 3 days before "now".
    start = t0 - dt.timedelta(days=3)
    readings = make_series(8 * 1440, start=start, step_s=60)
    store.ingest(readings)
    now = start + dt.timedelta(days=8, seconds=-30)  # Mar 4, 23:59:30
    store.sweep(now=now)
    totals = store.energy_totals("house", now=now)
    assert totals is not None
    before_month = readings[3 * 1440 - 1]  # 23:59 on Feb 29, read from minute buckets
    assert totals.this_month.forward_wh == pytest.approx(
        readings[-1].forward_active_energy_wh - before_month.forward_active_energy_wh
    )
    assert totals.today.forward_wh == pytest.approx(
        readings[-1].forward_active_energy_wh - readings[7 * 1440 - 1].forward_active_energy_wh
    )


def test_energy_since_first_reading_on_a_fresh_install(
    store: SqlStore, make_series: Series, t0: dt.datetime
) -> None:
    readings = make_series(600, start=t0 + dt.timedelta(hours=5))
    store.ingest(readings)
    totals = store.energy_totals("house", now=t0 + dt.timedelta(hours=6))
    assert totals is not None
    assert totals.today.forward_wh == pytest.approx(
        readings[-1].forward_active_energy_wh - readings[0].forward_active_energy_wh
    )


def test_sweep_deletes_only_expired_rows_in_batches(
    make_store: StoreFactory, make_series: Series, t0: dt.datetime
) -> None:
    retention = Retention(raw_days=1, minute_days=2, hour_days=3, day_days=0)
    store = make_store(retention=retention)
    store.ingest(make_series(5 * 1440, step_s=60))  # five days, a reading a minute
    store.ingest(make_series(600, meter="garage", step_s=60))  # the first ten hours
    now = t0 + dt.timedelta(days=5)
    deleted = store.sweep(now=now, batch_rows=500)
    # raw: 4 of house's 5 days and all of garage's; minute rollups: 3 days and garage's 600;
    # hour rollups: 2 days and garage's 10; day rollups are kept forever.
    assert deleted == (4 * 1440 + 600) + (3 * 1440 + 600) + (2 * 24 + 10) + 0
    assert store._q("SELECT count(*) FROM raw")[0][0] == 1440
    assert store._q("SELECT count(*) FROM rollup_minute")[0][0] == 2 * 1440
    assert store._q("SELECT count(*) FROM rollup_hour")[0][0] == 3 * 24
    assert store._q("SELECT count(*) FROM rollup_day")[0][0] == 5 + 1
    assert store.sweep(now=now) == 0


def test_retention_refuses_nonsense() -> None:
    with pytest.raises(ValidationError, match="raw_days"):
        Retention(raw_days=-1)
    assert Retention(day_days=0).keep("rollup_day") is None  # 0 keeps forever
    assert Retention(raw_days=3).keep("raw") == dt.timedelta(days=3)


def test_reopening_keeps_everything(make_store: StoreFactory, make_series: Series) -> None:
    first = make_store()
    first.ingest(make_series(100))
    before = _rollup_rows(first)
    first.close()
    again = make_store()
    assert again.schema_version() == MIGRATIONS[-1].version
    assert _rollup_rows(again) == before
    assert again.ingest(make_series(101)) == 1


def test_a_newer_schema_is_refused_and_left_alone(make_store: StoreFactory) -> None:
    store = make_store()
    store._q(
        "INSERT INTO schema_version (version, applied_at, description) VALUES (?, ?, ?)",
        (99, "2030-01-01", "from the future"),
    )
    store.close()
    with pytest.raises(SchemaTooNewError, match=r"version 99.*Upgrade mepgate"):
        make_store()


def test_a_migration_step_upgrades_without_losing_data(
    make_store: StoreFactory, make_series: Series
) -> None:
    store = make_store()
    store.ingest(make_series(50))
    version = MIGRATIONS[-1].version + 1
    step = Migration(
        version, "test: a note per meter", lambda d: ["ALTER TABLE meter ADD note TEXT"]
    )
    store._migrate((*MIGRATIONS, step))
    store._migrate((*MIGRATIONS, step))  # idempotent
    assert store.schema_version() == version
    assert store._q("SELECT count(*) FROM raw")[0][0] == 50
    assert store._q("SELECT name, note FROM meter") == [("house", None)]


def test_size_is_reported(store: SqlStore, make_series: Series) -> None:
    empty = store.size_bytes()
    store.ingest(make_series(5000))
    assert store.size_bytes() > empty > 0


def test_async_store_runs_off_the_event_loop(store: SqlStore, make_series: Series) -> None:
    async def scenario() -> tuple[int, Reading | None, list[str]]:
        wrapped = AsyncStore(store)
        count = await wrapped.ingest(make_series(10))
        return count, await wrapped.latest("house"), await wrapped.meters()

    count, latest, meters = asyncio.run(scenario())
    assert (count, meters) == (10, ["house"])
    assert latest is not None


def test_a_young_installation_gets_fine_history_not_one_day_point(
    store: SqlStore, make_series: Series
) -> None:
    """Ten seconds of data in a day view: raw points, not the single day bucket (whose start,
    midnight, lies before the first reading)."""
    first = dt.datetime(2026, 11, 26, 9, 4, 41, tzinfo=dt.UTC)
    store.ingest(make_series(10, start=first))
    end = first + dt.timedelta(seconds=10)
    points = store.history("house", end - DAY, end, points=500)
    assert len(points) == 10
    assert {p.resolution for p in points} == {"raw"}


def test_a_meters_state_is_kept_replaced_and_removed(store: SqlStore) -> None:
    """What a poller keeps across restarts (its evidence for a new baseline)."""
    assert store.state("house", "story") is None
    store.set_state("house", "story", '{"length": 1}')
    store.set_state("house", "story", '{"length": 2}')  # replaced, not added
    store.set_state("garage", "story", "other")
    assert store.state("house", "story") == '{"length": 2}'
    assert store.state("house", "other") is None
    assert store.meters() == []  # a state alone does not make a meter with readings
    store.set_state("house", "story", None)
    assert store.state("house", "story") is None
    assert store.state("garage", "story") == "other"
    store.set_state("nobody", "story", None)  # removing what is not there is fine
    assert asyncio.run(AsyncStore(store).state("garage", "story")) == "other"
