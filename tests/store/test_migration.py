"""Schema upgrades on the real engines: a database written at the previous schema version, with
readings in it, is upgraded when the newer mepgate opens it and keeps every row.

The old database is made the way the old mepgate made it: only its migrations ran, and its
rows were written through its frozen column lists (``V1_FIELDS`` and friends).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from mepgate.reading import TIER_ENERGY_FIELDS, Reading
from mepgate.store import SqlStore
from mepgate.store.rollup import aggregate, epoch_ms
from mepgate.store.schema import (
    MIGRATIONS,
    ROLLUP_TIERS,
    V1_FIELDS,
    V1_LAST_FIELDS,
    rollup_columns,
)

Series = Callable[..., list[Reading]]
StoreFactory = Callable[..., SqlStore]
V1_ROLLUP = rollup_columns(V1_FIELDS, V1_LAST_FIELDS)
NEWEST = MIGRATIONS[-1].version


def _open_at_v1(make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> SqlStore:
    """A store on which only migration 1 has run (what mepgate with schema v1 created)."""
    migrate = SqlStore._migrate

    def only_v1(self: SqlStore, migrations: Sequence[Any] = MIGRATIONS[:1]) -> None:
        migrate(self, MIGRATIONS[:1])

    with monkeypatch.context() as patch:
        patch.setattr(SqlStore, "_migrate", only_v1)
        store = make_store()
    assert store.schema_version() == 1
    return store


def _write_v1(store: SqlStore, readings: list[Reading]) -> None:
    """Raw rows and rollups exactly as schema v1 holds them."""
    store._q("INSERT INTO meter (name) VALUES (?)", ("house",))
    meter_id = store._q("SELECT id FROM meter WHERE name = ?", ("house",))[0][0]
    for r in readings:
        values = r.values()
        store._q(
            f"INSERT INTO raw (meter_id, t_ms, {', '.join(V1_FIELDS)})"
            f" VALUES ({', '.join('?' * (2 + len(V1_FIELDS)))})",
            (meter_id, epoch_ms(r.at), *(values[f] for f in V1_FIELDS)),
        )
    for bucket in aggregate(readings):
        row = dict(zip(rollup_columns(), bucket.row(), strict=True))
        store._q(
            f"INSERT INTO {bucket.tier.table} (meter_id, bucket_start, last_at_ms,"
            f" {', '.join(V1_ROLLUP)}) VALUES ({', '.join('?' * (3 + len(V1_ROLLUP)))})",
            (meter_id, bucket.start, bucket.last_at_ms, *(row[c] for c in V1_ROLLUP)),
        )


def _v1_contents(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    out = {"raw": [tuple(r) for r in store._q(f"SELECT t_ms, {', '.join(V1_FIELDS)} FROM raw")]}
    for tier in ROLLUP_TIERS:
        out[tier.name] = [
            tuple(r)
            for r in store._q(
                f"SELECT bucket_start, last_at_ms, {', '.join(V1_ROLLUP)} FROM {tier.table}"
                " ORDER BY bucket_start"
            )
        ]
    return out


def test_a_v1_database_with_readings_is_upgraded_and_keeps_them(
    make_store: StoreFactory, make_series: Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = make_series(200)
    # Schema v1 knew no tier registers: the old gateway's readings had none.
    no_tiers: dict[str, Any] = dict.fromkeys(TIER_ENERGY_FIELDS)
    old = [dataclasses.replace(r, **no_tiers) for r in series[:100]]
    v1 = _open_at_v1(make_store, monkeypatch)
    _write_v1(v1, old)
    before = _v1_contents(v1)
    v1.close()

    store = make_store()  # the current mepgate opens it: migrations 2.. run
    assert store.schema_version() == NEWEST >= 2
    assert [row[0] for row in store._q("SELECT version FROM schema_version ORDER BY version")] == [
        m.version for m in MIGRATIONS
    ]
    assert _v1_contents(store) == before
    assert store.latest("house") == old[-1]  # tier registers unknown: None, not 0
    points = store.history("house", old[0].at, old[-1].at + dt.timedelta(seconds=1), points=10)
    assert points
    assert points[-1].forward_active_energy_wh == old[-1].forward_active_energy_wh

    # New readings carry tiers and merge into the buckets the old version wrote.
    new = series[100:]
    assert store.ingest(new) == len(new)
    assert store.latest("house") == new[-1]
    assert store._q("SELECT count(*) FROM raw")[0][0] == len(series)
    columns = ["forward_active_energy_tier1_wh_n", "forward_active_energy_tier1_wh_min"]
    columns += ["forward_active_energy_tier1_wh_last", "forward_active_energy_wh_n"]
    minute = epoch_ms(series[100].at) // 60_000 * 60  # holds old readings 60..99, new 100..119
    [(tier_n, tier_min, tier_last, total_n)] = store._q(
        f"SELECT {', '.join(columns)} FROM rollup_minute WHERE bucket_start = ?", (minute,)
    )
    assert (tier_n, total_n) == (20, 60)
    assert tier_min == new[0].forward_active_energy_tier1_wh
    assert tier_last == series[119].forward_active_energy_tier1_wh
    assert store.energy_totals("house", now=new[-1].at) is not None
