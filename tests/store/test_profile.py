"""The load profile in the store (schema v4): intervals stored once, placed in the rollups beside
the live readings, the history taking the newer of the two, and each hour compared -- on SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from mepgate.reading import Reading
from mepgate.store import ProfileInterval, SqlStore

from .conftest import StoreFactory, reading

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
QUARTER = dt.timedelta(minutes=15)


def interval(
    n: int, forward: float, *, status: int = 0, start: dt.datetime = T0
) -> ProfileInterval:
    end = start + (n + 1) * QUARTER
    return ProfileInterval(
        number=n,
        end=end,
        meter_end=end,
        interval_s=900,
        status=status,
        forward_active_energy_wh=forward,
        reverse_active_energy_wh=100.0 + n,
        import_reactive_energy_varh=7.0,
        export_reactive_energy_varh=None,
    )


def profile_series(count: int, wh_per_interval: float = 250.0) -> list[ProfileInterval]:
    return [interval(n, 10_000.0 + (n + 1) * wh_per_interval) for n in range(count)]


def test_intervals_are_stored_once_with_their_flags(store: SqlStore) -> None:
    series = profile_series(8)
    series[2] = interval(2, series[2].forward_active_energy_wh or 0, status=0b0010)
    assert store.ingest_profile("house", series, state=("backfill", '{"newest": 7}')) == 8
    assert store.ingest_profile("house", series[4:]) == 0  # read again: nothing twice
    assert store.state("house", "backfill") == '{"newest": 7}'  # in the same transaction
    got = store.profile("house", T0, T0 + dt.timedelta(days=1))
    assert [i.number for i in got] == list(range(8))
    assert got[2].flags == ("power-fail",)
    assert got[0].export_reactive_energy_varh is None
    assert got[0] == series[0]
    counts = store._q("SELECT sum(profile_n) FROM rollup_hour")[0][0]
    assert counts == 8


def test_the_history_takes_the_profile_where_it_covers_the_hour(store: SqlStore) -> None:
    # Two hours of profile (intervals ending 00:15 .. 02:00), live readings in the second hour
    # only, up to 01:59:50; the third hour has only live readings.
    store.ingest_profile("house", profile_series(8))
    live = [
        Reading(
            meter="house",
            at=T0 + dt.timedelta(hours=1, seconds=s),
            forward_active_energy_wh=11_000.0 + s / 3.6,  # a little off the profile
            reverse_active_energy_wh=0.0,
        )
        for s in range(0, 3600, 10)
    ]
    live += [
        Reading(
            meter="house",
            at=T0 + dt.timedelta(hours=2, minutes=m),
            forward_active_energy_wh=12_100.0 + m,
            reverse_active_energy_wh=0.0,
        )
        for m in range(30)
    ]
    store.ingest(live)
    points = store.history("house", T0, T0 + dt.timedelta(hours=3), points=3)
    assert [p.resolution for p in points] == ["hour"] * 3
    assert [p.energy_source for p in points] == ["profile", "profile", "live"]
    assert [p.profile_intervals for p in points] == [4, 4, 0]
    assert points[0].forward_active_energy_wh == 11_000.0
    assert points[1].forward_active_energy_wh == 12_000.0  # the profile's, not 11_997.2
    assert points[2].forward_active_energy_wh == 12_129.0
    assert "active_power_import_w" not in points[0].stats  # a profile brings no live values
    # Grouped points (a day of hours into one) follow the same rule.
    day = store.history("house", T0, T0 + dt.timedelta(hours=3), points=1)
    assert day[0].forward_active_energy_wh == 12_129.0
    assert day[0].energy_source == "live"


def test_energy_totals_count_the_profile(make_store: StoreFactory) -> None:
    store = make_store()
    # Yesterday evening live, then a gap back-filled from the profile, then live again.
    before = [reading(i, start=T0 - dt.timedelta(hours=1), wh_per_step=0.1) for i in range(60)]
    store.ingest(before)
    start_wh = before[-1].forward_active_energy_wh
    series = [interval(n, start_wh + (n + 1) * 100.0, start=T0) for n in range(16)]
    store.ingest_profile("house", series)
    totals = store.energy_totals("house", now=T0 + dt.timedelta(hours=4, minutes=1))
    assert totals is not None
    assert totals.today.forward_wh == 1600.0  # 16 intervals of 100 Wh, all from the profile


def test_the_dashboards_hour_bars_count_the_profile(make_store: StoreFactory) -> None:
    """A gap back-filled from the profile is energy in the hours it covers (the dashboard's
    bars, :meth:`SqlStore.energy_periods`), not a hole followed by a lump."""
    store = make_store()
    before = [reading(i, start=T0 - dt.timedelta(hours=1), wh_per_step=0.1) for i in range(60)]
    store.ingest(before)
    start_wh = before[-1].forward_active_energy_wh
    store.ingest_profile("house", [interval(n, start_wh + (n + 1) * 100.0) for n in range(16)])
    hours = store.energy_periods("house", "hour", 5, now=T0 + dt.timedelta(hours=4, minutes=1))
    assert [h.start for h in hours[:4]] == [T0 + dt.timedelta(hours=k) for k in range(4)]
    assert [h.delta.forward_wh if h.delta else None for h in hours[:4]] == [400.0] * 4


def test_hours_are_compared_and_disagreements_found(store: SqlStore) -> None:
    # The profile: 1000 Wh per hour.  Live readings every 5 s with 1000 W -- except in the
    # third hour, where the live registers rose 1300 Wh.
    store.ingest_profile("house", profile_series(16, wh_per_interval=250.0))
    live: list[Reading] = []
    wh = 10_000.0
    for s in range(0, 4 * 3600, 5):
        hour = s // 3600
        wh += (1300.0 if hour == 2 else 1000.0) * 5 / 3600
        at = T0 + dt.timedelta(seconds=s + 4)
        live.append(
            Reading(
                meter="house",
                at=at,
                forward_active_energy_wh=round(wh, 3),
                reverse_active_energy_wh=0.0,
                active_power_import_w=1300.0 if hour == 2 else 1000.0,
            )
        )
    store.ingest(live)
    found = store.compare_profile("house", T0, T0 + dt.timedelta(hours=4), edge_s=10)
    assert [c.start for c in found] == [T0 + dt.timedelta(hours=h) for h in (1, 2, 3)]
    assert [c.agrees for c in found] == [True, False, True]
    bad = found[1]
    assert bad.profile_wh == 1000.0
    assert abs(bad.live_wh - 1300.0) < 2
    assert bad.tolerance_wh < 10
    # Live readings further from the hour's end than edge_s: that hour is not compared.
    assert store.compare_profile("house", T0, T0 + dt.timedelta(hours=4), edge_s=0.5) == []
