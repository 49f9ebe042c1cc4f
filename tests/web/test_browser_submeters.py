"""The history page's sub-meter charts in real Chromium, against the real gateway.

Two days of a simulated meter's M-Bus sub-meters (gas, water, heat: the simulator's devices,
read by the meter on the hour) are stored as the gateway stores what it reads, stamped with
each read's time -- the cheapest honest way to get hourly bars: a gateway stamps a reading
with its own clock, so a simulator at ``--speed`` would put days of reads into one hour.  The
gateway then polls the meter (``sim:``, its own gas and water meters, new devices in slots 1
and 2).  Each chart's bars are the API's consumption per hour and per day, which is the
simulated registers' increase; a meter without sub-meters has no such section; at 390 px
nothing scrolls sideways; no CSP violation.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from mepgate.config import save_settings
from mepgate.config.settings import MeterConfig, Settings
from mepgate.service.gateway import default_store_url
from mepgate.simulator.embedded import SIM_KEY_TEXT
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import build_meter, ground_truth
from mepgate.store import open_store
from mepgate.store.submeters import SubmeterDevice, SubmeterStore
from mepgate.web.auth import AdminPassword

from ..conftest import SimulatorFactory
from ..support.gateway import SIM_PROFILE
from .conftest import ADMIN_PASSWORD
from .support import LiveServer
from .test_browser import FIRST_READING_S, PHONE, browser, gateway_server, page, shots

__all__ = ["browser", "page", "shots"]  # the fixtures this module uses

MEDIA = ("gas", "water", "heat")
HOURS = 48
LOADED_MS = 20_000

Reads = dict[int, list[tuple[dt.datetime, float]]]
"""Per slot, the simulated device's answered reads: (read time, value)."""


def fill_submeters(data_dir: Path, meter: str) -> Reads:
    """``HOURS`` hours of the hourly M-Bus reads of a simulated meter (its own seed: other
    devices than the live meter's) in the store the gateway will open, up to the last hour."""
    now = dt.datetime.now(dt.UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=HOURS)
    model = build_meter(
        SIM_PROFILE, seed=zlib.crc32(meter.encode()) + 1, start=start, speed=1.0, mbus=MEDIA
    )
    reads: Reads = {}
    with open_store(default_store_url(data_dir)) as store:
        submeters = SubmeterStore(store)
        for hour in range(HOURS):
            for truth in ground_truth(model, hour * 3600 + 1.0).mbus:
                assert truth.read_at is not None
                assert truth.read_at < now
                device = SubmeterDevice(
                    meter=meter,
                    slot=truth.slot,
                    identification=truth.identification,
                    manufacturer=truth.manufacturer,
                    medium=truth.medium,
                    medium_code=truth.medium_code,
                    unit=truth.unit,
                )
                submeters.add(device, truth.read_at, truth.value)
                reads.setdefault(truth.slot, []).append((truth.read_at, truth.value))
    assert all(len(r) == HOURS and r[-1][1] > r[0][1] for r in reads.values())
    return reads


@pytest.fixture
def submeter_server(
    data_dir: Path, simulator_factory: SimulatorFactory
) -> Iterator[tuple[LiveServer, Reads]]:
    """``house`` (``sim:``, with stored sub-meter history) and ``flat`` (a simulated meter on
    TCP without M-Bus devices)."""
    flat = simulator_factory(profile="gen4-3phase", mbus=())
    keys = {}
    for name, text in (("house", SIM_KEY_TEXT), ("flat", DEFAULT_MBK.decode())):
        keys[name] = data_dir / f"{name}.key"
        keys[name].write_text(text + "\n")
        keys[name].chmod(0o600)
    save_settings(
        Settings(
            meter=[
                MeterConfig(name="house", port=f"sim:{SIM_PROFILE}", key_file=keys["house"]),
                MeterConfig(name="flat", port=flat.url or "", key_file=keys["flat"]),
            ]
        ),
        data_dir / "mepgate.toml",
    )
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    reads = fill_submeters(data_dir, "house")
    with gateway_server(data_dir) as live:
        yield live, reads


def console_errors(page: Page) -> list[str]:
    problems: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", seen)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


CHARTS = """() => document.getElementById('history').mepgateSubmeters.map((c) => ({
  slot: c.slot, medium: c.medium, unit: c.unit, resolution: c.resolution,
  x: Array.from(c.chart.data[0]), y: Array.from(c.chart.data[1]),
  min: c.chart.scales.x.min, max: c.chart.scales.x.max }))"""

DRAWN = """(i) => { const c = document.getElementById('history').mepgateSubmeters[i].chart;
  const d = c.ctx.getImageData(c.bbox.left, c.bbox.top, c.bbox.width, c.bbox.height).data;
  let n = 0; for (let k = 3; k < d.length; k += 4) if (d[k] > 0) n++; return n; }"""


def test_history_charts_each_submeters_consumption_per_hour_and_day(
    submeter_server: tuple[LiveServer, Reads],
    page: Page,
    shots: Callable[[Page, str], Path],
) -> None:
    server, reads = submeter_server
    errors = console_errors(page)
    # The live meter's gas and water meters read first: the buckets stay as they are then
    # (the meter reads its M-Bus devices once an hour; the new devices' first readings add
    # nothing), so the page and the API below see the same.
    deadline = time.monotonic() + FIRST_READING_S / 1000
    while [s["available"] for s in listed_of(page, server)] != [True, True, False]:
        assert time.monotonic() < deadline, listed_of(page, server)
        page.wait_for_timeout(500)
    page.goto(server.url + "/history?meter=house")
    expect(page.locator("#history")).to_have_attribute("data-submeters", "3", timeout=LOADED_MS)
    expect(page.locator("#submeters")).to_be_visible()
    boxes = page.locator("#submeter-charts .submeter")
    expect(boxes).to_have_count(3)
    assert [boxes.nth(i).get_attribute("data-medium") for i in range(3)] == list(MEDIA)
    expect(page.locator("#submeter-charts canvas")).to_have_count(6)
    charts = sorted(page.evaluate(CHARTS), key=lambda c: (c["slot"], c["resolution"] == "day"))
    assert [(c["slot"], c["resolution"]) for c in charts] == [
        (slot, resolution) for slot in (1, 2, 3) for resolution in ("hour", "day")
    ]
    listed = {
        s["slot"]: s for s in page.request.get(server.url + "/api/v1/submeters?meter=house").json()
    }
    for chart in charts:
        slot, resolution = chart["slot"], chart["resolution"]
        assert chart["medium"] == MEDIA[slot - 1] == listed[slot]["medium"]
        assert chart["unit"] == listed[slot]["unit"]
        half = 1800 if resolution == "hour" else 43200
        # The bars are the API's buckets (asked for the chart's span), by time.
        span = f"start={iso(chart['min'])}&end={iso(chart['max'])}&resolution={resolution}"
        api = page.request.get(f"{server.url}/api/v1/submeters/house/{slot}/history?{span}").json()
        by_x = {ts(p["at"]) + half: p["delta"] for p in api["points"]}
        drawn = dict(zip(chart["x"], chart["y"], strict=True))
        both = sorted(set(drawn) & set(by_x))
        assert [drawn[x] for x in both] == pytest.approx([by_x[x] for x in both])
        # Only an hour that turned meanwhile differs: the live devices' readings in it,
        # which add nothing (their first ones).
        assert [by_x.get(x, drawn.get(x)) for x in set(drawn) ^ set(by_x)] in (
            [],
            [0.0],
            [0.0, 0.0],
        )
        # ... which are the simulated device's consumption: each hour's bucket holds its
        # read's increase over the read before (the live device in slot 1 or 2 adds nothing
        # yet: a new device's first reading); the days hold all of it.
        truth = reads[slot]
        if resolution == "hour":
            expected = {
                ts_of(at) // 3600 * 3600 + half: value - truth[k - 1][1]
                for k, (at, value) in enumerate(truth)
                if k >= 1 and ts_of(at) >= chart["min"]
            }
            shown = {x: y for x, y in zip(chart["x"], chart["y"], strict=True) if x in expected}
            assert shown == pytest.approx(expected, abs=1e-9)
            assert len(shown) >= HOURS - 2
            assert any(v > 0 for v in expected.values())
        else:
            assert sum(chart["y"]) == pytest.approx(truth[-1][1] - truth[0][1], abs=1e-9)
            assert 2 <= len(chart["y"]) <= 4  # two days, local midnights
    # uPlot drew the bars: pixels inside each hour chart's plot that are not background.
    for i, chart in enumerate(page.evaluate(CHARTS)):
        if chart["resolution"] == "hour" and any(chart["y"]):
            assert page.evaluate(DRAWN, i) > 200, chart["medium"]
    shots(page, "history-submeters-1280")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    right = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('#submeter-charts canvas')]
                 .map((c) => c.getBoundingClientRect().right))"""
    )
    assert right <= PHONE["width"]
    shots(page, "history-submeters-390")
    # A meter without sub-meters: no such section.
    page.goto(server.url + "/history?meter=flat")
    expect(page.locator("#history")).to_have_attribute("data-submeters", "0", timeout=LOADED_MS)
    expect(page.locator("#submeters")).to_be_hidden()
    assert page.locator("#submeter-charts canvas").count() == 0
    assert errors == []


def listed_of(page: Page, server: LiveServer) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = page.request.get(
        server.url + "/api/v1/submeters?meter=house"
    ).json()
    return answer


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def ts_of(at: dt.datetime) -> int:
    return int(at.timestamp())


def iso(seconds: Any) -> str:
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).isoformat().replace("+00:00", "Z")
