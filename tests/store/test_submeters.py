"""M-Bus sub-meters in the store (schema v7), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mepgate.config import Retention
from mepgate.store import SqlStore
from mepgate.store.submeters import SubmeterDevice, SubmeterStore
from tests.store.conftest import StoreFactory

T0 = dt.datetime(2024, 3, 1, 22, 30, tzinfo=dt.UTC)  # 23:30 in Amsterdam
GAS = SubmeterDevice(
    meter="house",
    slot=1,
    identification="12082058",
    manufacturer="LGB",
    medium="gas",
    medium_code=3,
    unit="m³",
)


def test_readings_deltas_and_hour_day_rollups(make_store: StoreFactory) -> None:
    store = make_store(retention=Retention(), local_tz=ZoneInfo("Europe/Amsterdam"))
    sub = SubmeterStore(store)
    values = [100.0, 100.25, 100.5, 101.0, 102.0]  # 22:30, 23:00, 23:30, 00:00, 00:30 UTC
    for i, value in enumerate(values):
        assert sub.add(GAS, T0 + dt.timedelta(minutes=30 * i), value) is not None
    assert sub.add(GAS, T0, 100.0) is None  # the same reading again: nothing changes
    raw = sub.history("house", 1, T0, T0 + dt.timedelta(hours=3), "raw")
    assert [p.delta for p in raw] == [0.0, 0.25, 0.25, 0.5, 1.0]
    hours = sub.history("house", 1, T0, T0 + dt.timedelta(hours=3), "hour")
    assert [(p.at.hour, p.delta, p.value) for p in hours] == [
        (22, 0.0, 100.0),
        (23, 0.5, 100.5),
        (0, 1.5, 102.0),
    ]
    days = sub.history("house", 1, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1), "day")
    # Local days: 1 March ends at 23:00 UTC (midnight in Amsterdam); 2 March has the rest.
    assert [(p.at, p.delta) for p in days] == [
        (dt.datetime(2024, 2, 29, 23, tzinfo=dt.UTC), 0.0),
        (dt.datetime(2024, 3, 1, 23, tzinfo=dt.UTC), 2.0),
    ]
    latest = sub.latest("house")
    assert [(s.device, s.value, s.at) for s in latest] == [(GAS, 102.0, T0 + dt.timedelta(hours=2))]


def test_a_swapped_device_is_a_new_row_and_not_consumption(store: SqlStore) -> None:
    sub = SubmeterStore(store)
    start = T0.replace(minute=0)
    sub.add(GAS, start, 5000.0)
    sub.add(GAS, start + dt.timedelta(minutes=10), 5000.5)
    new = SubmeterDevice(
        meter="house",
        slot=1,
        identification="99999999",
        manufacturer="ELS",
        medium="gas",
        medium_code=3,
        unit="m³",
    )
    assert sub.add(new, start + dt.timedelta(minutes=20), 3.0) == 0.0
    assert sub.add(new, start + dt.timedelta(minutes=40), 3.5) == 0.5
    hours = sub.history("house", 1, start, start + dt.timedelta(hours=1), "hour")
    assert [p.delta for p in hours] == [1.0]  # 0.5 on the old device + 0.5 on the new
    assert [s.device.identification for s in sub.latest()] == ["99999999"]


def test_history_survives_a_reopen(make_store: StoreFactory) -> None:
    first = make_store(retention=Retention())
    SubmeterStore(first).add(GAS, T0, 42.0)
    first.close()
    again = make_store(retention=Retention())
    assert [s.value for s in SubmeterStore(again).latest("house")] == [42.0]
