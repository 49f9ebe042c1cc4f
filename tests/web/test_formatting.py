"""Numbers and energy totals as the pages show them: no minus zero, and today's and this
month's energy with the same precision (49 Wh read "Today 0.05 kWh" beside "This month
0.0 kWh": the store's totals were equal, the rounding differed)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from mepgate.web.formatting import num

from ..support.gateway import FakeGateway


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.mark.parametrize(
    ("value", "decimals", "scale", "shown"),
    [
        (-0.0, 0, 1.0, "0"),
        (-0.4, 0, 1.0, "0"),
        (-0.5, 0, 1.0, "0"),  # rounds (half to even) to zero: no sign either
        (-0.6, 0, 1.0, "\u22121"),
        (-0.0004, 3, 1.0, "0.000"),
        (-12.0, 3, 0.001, "\u22120.012"),
        (1262.167, 0, 1.0, "1\u2009262"),
        (None, 2, 1.0, "—"),
    ],
)
def test_numbers_have_no_minus_zero(value: object, decimals: int, scale: float, shown: str) -> None:
    assert num(value, decimals, scale) == shown


def test_today_and_this_month_show_the_same_energy_alike(
    client: TestClient, gateway: FakeGateway
) -> None:
    # A meter installed a moment ago: today's and this month's import are the same 49 Wh.
    assert gateway.sim is not None
    now = dt.datetime.now(dt.UTC)
    live = gateway.sim.reading_now()
    first = dataclasses.replace(live, meter="fresh", at=now - dt.timedelta(seconds=60))
    second = dataclasses.replace(
        first, at=now, forward_active_energy_wh=first.forward_active_energy_wh + 49
    )
    asyncio.run(gateway.store.ingest([first, second]))
    totals = asyncio.run(gateway.store.energy_totals("fresh"))
    assert totals is not None
    assert totals.today.forward_wh == totals.this_month.forward_wh == 49
    gateway.settings = gateway.settings.model_copy(
        update={
            "meter": [
                *gateway.settings.meter,
                gateway.settings.meter[0].model_copy(update={"name": "fresh"}),
            ]
        }
    )
    page = client.get("/").text
    section = page[page.index('data-meter="fresh"') :]
    today = re.search(r'data-f="today_import_wh"[^>]*>([^<]*)<', section)
    month = re.search(r'data-f="month_import_wh"[^>]*>([^<]*)<', section)
    assert today is not None
    assert month is not None
    assert today[1] == month[1] == "0.05"
