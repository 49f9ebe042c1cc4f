"""Store fixtures: every store test runs against SQLite in a tmp dir and the local PostgreSQL.

``store_url`` and ``postgres_url`` are the shared ones of tests/conftest.py: each test gets a
fresh PostgreSQL schema, dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mepgate.config import Retention
from mepgate.reading import Reading
from mepgate.store import SqlStore, open_store

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)

StoreFactory = Callable[..., SqlStore]


@pytest.fixture
def make_store(store_url: str) -> Iterator[StoreFactory]:
    opened: list[SqlStore] = []

    def factory(**kwargs: object) -> SqlStore:
        store = open_store(store_url, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> SqlStore:
    return make_store(retention=Retention())


def reading(
    i: int,
    *,
    meter: str = "house",
    start: dt.datetime = T0,
    step_s: float = 1.0,
    wh_per_step: float = 0.5,
) -> Reading:
    """A plausible three-phase reading number ``i`` of a 1 Hz series (energy rises)."""
    power = 1500.0 + (i * 37) % 900
    return Reading(
        meter=meter,
        at=start + dt.timedelta(seconds=i * step_s),
        forward_active_energy_wh=10_000.0 + i * wh_per_step,
        reverse_active_energy_wh=2_000.0 + i * wh_per_step / 10,
        active_power_import_w=power,
        active_power_export_w=0.0,
        active_power_import_l1_w=power / 3,
        active_power_import_l2_w=power / 3,
        active_power_import_l3_w=power / 3,
        voltage_l1_v=230.0 + (i % 11) / 10,
        voltage_l2_v=231.0,
        voltage_l3_v=229.5,
        current_l1_a=power / 3 / 230,
        power_factor_l1=0.98,
        frequency_hz=50.0 - (i % 5) / 100,
        current_tier=1 + (i // 3600) % 2,
        # Tier 1 counts all the import here; the others stand still, tier 4 is not measured.
        forward_active_energy_tier1_wh=6_000.0 + i * wh_per_step,
        forward_active_energy_tier2_wh=3_000.0,
        forward_active_energy_tier3_wh=1_000.0,
        reverse_active_energy_tier1_wh=2_000.0 + i * wh_per_step / 10,
        reverse_active_energy_tier2_wh=0.0,
        reverse_active_energy_tier3_wh=0.0,
    )


def _series(n: int, **kwargs: Any) -> list[Reading]:
    return [reading(i, **kwargs) for i in range(n)]


Series = Callable[..., list[Reading]]


@pytest.fixture
def t0() -> dt.datetime:
    """2024-03-01 00:00 UTC: the start of every generated series unless told otherwise."""
    return T0


@pytest.fixture
def make_series() -> Series:
    """``make_series(n, meter=, start=, step_s=, wh_per_step=)``: n readings, energy rising."""
    return _series
