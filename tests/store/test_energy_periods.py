"""Energy per local hour and day, and per TOU tier, from the registers (SQLite and PostgreSQL).

The series: a reading every 5 minutes; each adds 5 Wh import and 1 Wh export to the total
registers and the same to the tier in force (tier 1 in even UTC hours, tier 2 in odd ones),
so every number below is known exactly.  The days span the spring-forward night in
Copenhagen (31 March 2024 has 23 hours).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from mepgate.reading import Reading
from mepgate.store import SqlStore, StoreError

StoreFactory = Callable[..., SqlStore]
CPH = ZoneInfo("Europe/Copenhagen")
STEP = dt.timedelta(minutes=5)
START = dt.datetime(2024, 3, 29, tzinfo=CPH).astimezone(dt.UTC)  # local midnight, 23:00 UTC
NOW = dt.datetime(2024, 4, 1, 12, 2, 30, tzinfo=CPH).astimezone(dt.UTC)
IMPORT_WH, EXPORT_WH = 5.0, 1.0


def series(
    start: dt.datetime, end: dt.datetime, *, skip: tuple[dt.datetime, dt.datetime] | None = None
) -> list[Reading]:
    out: list[Reading] = []
    tiers_f, tiers_r = [100.0, 200.0, 300.0], [10.0, 20.0, 30.0]
    forward, reverse = 1000.0, 50.0
    at = start
    while at <= end:
        tier = 0 if at.hour % 2 == 0 else 1
        forward += IMPORT_WH
        reverse += EXPORT_WH
        tiers_f[tier] += IMPORT_WH
        tiers_r[tier] += EXPORT_WH
        if skip is None or not skip[0] <= at < skip[1]:
            out.append(
                Reading(
                    meter="house",
                    at=at,
                    forward_active_energy_wh=forward,
                    reverse_active_energy_wh=reverse,
                    forward_active_energy_tier1_wh=tiers_f[0],
                    forward_active_energy_tier2_wh=tiers_f[1],
                    forward_active_energy_tier3_wh=tiers_f[2],
                    reverse_active_energy_tier1_wh=tiers_r[0],
                    reverse_active_energy_tier2_wh=tiers_r[1],
                    reverse_active_energy_tier3_wh=tiers_r[2],
                    active_power_import_w=60.0,
                    current_tier=tier + 1,
                )
            )
        at += STEP
    return out


@pytest.fixture
def cph_store(make_store: StoreFactory) -> SqlStore:
    store = make_store(local_tz=CPH)
    store.ingest(series(START, NOW))
    return store


def test_days_follow_local_midnight_and_a_23_hour_day(cph_store: SqlStore) -> None:
    days = cph_store.energy_periods("house", "day", 5, now=NOW)
    local_starts = [p.start.astimezone(CPH) for p in days]
    assert [(d.month, d.day, d.hour) for d in local_starts] == [
        (3, 28, 0),
        (3, 29, 0),
        (3, 30, 0),
        (3, 31, 0),
        (4, 1, 0),
    ]
    assert days[3].end - days[3].start == dt.timedelta(hours=23)  # clocks went forward
    assert days[-1].end == dt.datetime(2024, 4, 2, tzinfo=CPH)
    assert days[0].delta is None  # before the first reading
    # The first day counts from its first reading (nothing before it to subtract).
    first = days[1].delta
    assert first is not None
    assert first.forward_wh == (24 * 12 - 1) * IMPORT_WH
    full, short = days[2].delta, days[3].delta
    assert full is not None
    assert full.forward_wh == 24 * 12 * IMPORT_WH
    assert full.reverse_wh == 24 * 12 * EXPORT_WH
    assert short is not None
    assert short.forward_wh == 23 * 12 * IMPORT_WH
    # Per tier: the tiers share the day and add up to the total; tier 3 never counted.
    assert short.tier_forward_wh[0] is not None
    assert short.tier_forward_wh[1] is not None
    assert short.tier_forward_wh[0] + short.tier_forward_wh[1] == short.forward_wh
    assert short.tier_forward_wh[2] == 0.0
    assert short.tier_forward_wh[3] is None  # the meter has no tier 4 (never stored)
    assert full.tier_forward_wh[0] == full.tier_forward_wh[1] == 12 * 12 * IMPORT_WH


def test_hours_add_up_to_today_and_tiers_follow_the_hour(cph_store: SqlStore) -> None:
    hours = cph_store.energy_periods("house", "hour", 24, now=NOW)
    assert len(hours) == 24
    assert hours[-1].start == dt.datetime(2024, 4, 1, 12, tzinfo=CPH)
    assert all(b.start - a.start == dt.timedelta(hours=1) for a, b in itertools.pairwise(hours))
    for period in hours[:-1]:
        assert period.delta is not None
        assert period.delta.forward_wh == 12 * IMPORT_WH
        tier = 0 if period.start.hour % 2 == 0 else 1  # UTC hours
        assert period.delta.tier_forward_wh[tier] == 12 * IMPORT_WH
        assert period.delta.tier_forward_wh[1 - tier] == 0.0
    current = hours[-1].delta  # the reading at 12:00 local so far
    assert current is not None
    assert current.forward_wh == 1 * IMPORT_WH
    totals = cph_store.energy_totals("house", now=NOW)
    assert totals is not None
    today = [p for p in hours if p.start >= totals.today.since]
    assert len(today) == 13
    assert sum(p.delta.forward_wh for p in today if p.delta) == totals.today.forward_wh
    assert sum(p.delta.reverse_wh for p in today if p.delta) == totals.today.reverse_wh
    # The totals carry the tiers too: today's tier 1 and tier 2 add up to the total.
    tier1, tier2 = totals.today.tier_forward_wh[:2]
    assert tier1 is not None
    assert tier2 is not None
    assert tier1 + tier2 == totals.today.forward_wh
    assert totals.this_month.tier_forward_wh[0] == totals.today.tier_forward_wh[0]  # April 1st


def test_a_period_without_readings_is_unknown_not_zero(make_store: StoreFactory) -> None:
    store = make_store(local_tz=CPH)
    gap = (NOW - dt.timedelta(hours=5), NOW - dt.timedelta(hours=3))
    store.ingest(series(NOW - dt.timedelta(hours=8), NOW, skip=gap))
    hours = {p.start: p.delta for p in store.energy_periods("house", "hour", 8, now=NOW)}
    empty = [start for start, delta in hours.items() if delta is None]
    assert empty == [dt.datetime(2024, 4, 1, 7, tzinfo=CPH), dt.datetime(2024, 4, 1, 8, tzinfo=CPH)]
    after = hours[dt.datetime(2024, 4, 1, 9, tzinfo=CPH)]
    # The energy of the gap shows in the first hour with readings again (what the meter says):
    # from the reading at 06:57:30 to the one at 09:57:30.
    assert after is not None
    assert after.forward_wh == 3 * 12 * IMPORT_WH
    assert store.energy_periods("nobody", "day", 3, now=NOW)[0].delta is None


def test_periods_are_bounded_and_named(cph_store: SqlStore) -> None:
    with pytest.raises(StoreError, match="period"):
        cph_store.energy_periods("house", "week", 3, now=NOW)
    with pytest.raises(StoreError, match="count"):
        cph_store.energy_periods("house", "hour", 0, now=NOW)
    with pytest.raises(StoreError, match="count"):
        cph_store.energy_periods("house", "hour", 100_000, now=NOW)
