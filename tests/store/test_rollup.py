"""The partial-aggregate rule, without a database."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from mepgate.reading import VALUE_FIELDS, Reading
from mepgate.store.rollup import Bucket, aggregate, combine, epoch_ms
from mepgate.store.schema import HOUR, LAST_FIELDS, MINUTE, STORED_FIELDS

START = dt.datetime(2024, 1, 1, 23, 58, tzinfo=dt.UTC)


def _reading(offset_s: int, power: float | None) -> Reading:
    return Reading(
        meter="m",
        at=START + dt.timedelta(seconds=offset_s),
        forward_active_energy_wh=1000.0 + offset_s,
        reverse_active_energy_wh=5.0,
        active_power_import_w=power,
    )


def test_every_reading_value_field_is_stored() -> None:
    """A field added to Reading needs a schema migration that adds its columns."""
    assert set(VALUE_FIELDS) == set(STORED_FIELDS)


readings_strategy = st.lists(
    st.tuples(st.integers(0, 3 * 3600), st.one_of(st.none(), st.floats(-1e6, 1e6))),
    min_size=1,
    max_size=60,
    unique_by=lambda pair: pair[0],
).map(lambda pairs: [_reading(t, p) for t, p in pairs])


def _as_rows(buckets: list[Bucket]) -> dict[tuple[str, str, int], tuple[object, ...]]:
    return {b.key: (b.last_at_ms, *b.row()) for b in buckets}


@settings(max_examples=60)
@given(readings_strategy, st.data())
def test_splitting_a_batch_does_not_change_the_buckets(
    readings: list[Reading], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(readings)))
    whole = aggregate(readings)
    parts: dict[tuple[str, str, int], Bucket] = {}
    for part in (readings[:cut], readings[cut:]):
        for bucket in aggregate(part):
            if bucket.key in parts:
                parts[bucket.key].merge(bucket)
            else:
                parts[bucket.key] = bucket
    mine, theirs = _as_rows(whole), _as_rows(list(parts.values()))
    assert mine.keys() == theirs.keys()
    for key, row in mine.items():  # sums may differ in the last bit with the order of addition
        for a, b in zip(row, theirs[key], strict=True):
            assert a == b or abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))  # type: ignore[arg-type]


def test_bucket_holds_min_max_sum_count_and_last_register() -> None:
    readings = [_reading(0, 10.0), _reading(30, None), _reading(59, 30.0), _reading(60, 99.0)]
    minute = {b.start: b for b in aggregate(readings) if b.tier is MINUTE}
    first = minute[epoch_ms(START) // 1000]
    power = STORED_FIELDS.index("active_power_import_w")
    assert (first.mins[power], first.maxs[power], first.sums[power]) == (10.0, 30.0, 40.0)
    assert first.counts[power] == 2
    assert first.counts[STORED_FIELDS.index("forward_active_energy_wh")] == 3
    assert first.lasts[LAST_FIELDS.index("forward_active_energy_wh")] == 1059.0
    assert len(minute) == 2


def test_buckets_follow_utc_hour_and_day_boundaries() -> None:
    readings = [_reading(t, 1.0) for t in (0, 119, 120, 3 * 3600)]
    hours = combine(combine((Bucket.of_reading(r) for r in readings), MINUTE), HOUR)
    starts = sorted(b.start for b in hours)
    assert [dt.datetime.fromtimestamp(s, dt.UTC).hour for s in starts] == [23, 0, 2]
    days = [b for b in aggregate(readings) if b.tier.name == "day"]
    assert len(days) == 2
