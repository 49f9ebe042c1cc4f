"""The event log tables (schema v5) on SQLite and PostgreSQL: an entry stored once however
often it is offered, the cursor kept in the same transaction, outages opened and closed by
power-down and power-up, the queries' ranges and order."""

from __future__ import annotations

import datetime as dt

import pytest

from mepgate.store import EVENTS_CURSOR_STATE, MeterEvent, SqlStore
from mepgate.store.schema import MIGRATIONS

from .conftest import T0, StoreFactory

OFFSET = dt.timedelta(seconds=30)  # the meter's clock is this much ahead


def event(sequence: int, code: int, seconds: float, *, meter: str = "house") -> MeterEvent:
    at = T0 + dt.timedelta(seconds=seconds)
    return MeterEvent(
        meter=meter,
        sequence=sequence,
        meter_time=at + OFFSET,
        gateway_time=at,
        code=code,
        argument=bytes([sequence & 0xFF, 0xAB]),
        user_id=0xFFFD,
        words=f"code {code}",
    )


def test_migration_5_is_there(store: SqlStore) -> None:
    assert 5 in [m.version for m in MIGRATIONS]
    assert store.schema_version() >= 5


def test_an_event_is_stored_once_and_the_cursor_with_it(store: SqlStore) -> None:
    first = [event(1, 1, 0), event(2, 2, 90)]
    assert store.add_events("house", first, '{"sequence": 2}') == first
    assert store.state("house", EVENTS_CURSOR_STATE) == '{"sequence": 2}'
    again = store.add_events("house", [*first, event(3, 47, 200)], '{"sequence": 3}')
    assert [e.sequence for e in again] == [3]
    assert store.state("house", EVENTS_CURSOR_STATE) == '{"sequence": 3}'
    stored = store.events("house")
    assert [e.sequence for e in stored] == [3, 2, 1]  # newest first
    assert stored[-1] == first[0]  # every field back as it went in
    # A reset meter: the same sequence number at another time is another event.
    assert len(store.add_events("house", [event(1, 2, 500)])) == 1


def test_a_failed_transaction_keeps_neither_events_nor_cursor(store: SqlStore) -> None:
    store.add_events("house", [event(1, 1, 0)], '{"sequence": 1}')
    broken = event(2, 2, 10)
    object.__setattr__(broken, "argument", None)  # cannot be stored: the insert fails
    with pytest.raises(AttributeError):
        store.add_events("house", [event(3, 47, 5), broken], '{"sequence": 3}')
    assert [e.sequence for e in store.events("house")] == [1]
    assert store.state("house", EVENTS_CURSOR_STATE) == '{"sequence": 1}'


def test_outages_open_close_and_range(store: SqlStore) -> None:
    store.add_events("house", [event(1, 1, 0), event(2, 2, 90), event(3, 1, 1000)])
    store.add_events("other", [event(1, 2, 50, meter="other")])  # no power-down seen: no outage
    outages = store.outages()
    assert [(o.meter, o.start, o.end, o.duration_s) for o in outages] == [
        ("house", T0, T0 + dt.timedelta(seconds=90), 90.0),
        ("house", T0 + dt.timedelta(seconds=1000), None, None),  # open: power still off
    ]
    assert outages[0].meter_start == T0 + OFFSET
    later = T0 + dt.timedelta(seconds=5000)
    assert [o.start for o in store.outages("house", start=later)] == [
        T0 + dt.timedelta(seconds=1000)
    ]  # an open outage reaches to now
    assert store.outages("house", end=T0) == []
    store.add_events("house", [event(4, 2, 1060)])
    assert store.outages("house")[-1].duration_s == 60.0
    window = store.events(
        "house", start=T0 + dt.timedelta(seconds=50), end=T0 + dt.timedelta(seconds=1001)
    )
    assert [e.sequence for e in window] == [3, 2]
    assert [e.sequence for e in store.events(limit=2)] == [4, 3]


def test_events_survive_reopening(make_store: StoreFactory) -> None:
    store = make_store()
    store.add_events("house", [event(1, 1, 0)], '{"sequence": 1}')
    store.close()
    reopened = make_store()
    assert [e.code for e in reopened.events("house")] == [1]
    assert reopened.add_events("house", [event(1, 1, 0)]) == []
