"""The dashboard at a glance in real headless Chromium against the real gateway polling the
built-in simulator, with ``[prices]`` configured and two days of the simulator's readings
(tier registers included) stored before it starts:

* the three charts (last hour live, kWh per hour for 24 hours, per day for 30 days) render
  with data, the bars equal ``/api/v1/energy/{meter}/periods`` and the live chart gains points
  as readings arrive;
* the tier tiles and the cost tiles show what the configured prices make of the tiers'
  energy (worked out here from the API's tier energies, not taken from its cost);
* at 390 px nothing scrolls sideways and the charts fit; no CSP violation on the way;
* the sub-meter tiles show the simulated gas and water meters' registers (equal to the API's
  and to the simulator's ground truth), and an outage the simulated meter logged (read by the
  gateway's events job) is shaded on the live hour where the API puts it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import zlib
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from mepgate.config import PricesConfig
from mepgate.service.gateway import default_store_url
from mepgate.simulator.embedded import EmbeddedSimulators
from mepgate.simulator.model import build_meter, ground_truth, model_of
from mepgate.simulator.model.happenings import Happening
from mepgate.simulator.serve import RunningSimulator
from mepgate.store import open_store

from ..support.gateway import SIM_PROFILE, reading_from_truth
from .support import LiveServer
from .test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    configured,
    gateway_server,
    wait_for_live,
)

PRICES = {"currency": "DKK", "import": 2.0, "tier1": 1.5, "tier2": 3.25, "export": 0.75}
TIER_PRICE = {1: 1.5, 2: 3.25, 3: 2.0, 4: 2.0}
CHARTS_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    yield context.new_page()
    context.close()


def fill_history(data_dir: Path, meter: str, days: int = 2, step_s: int = 300) -> None:
    """As test_browser's, with the tier registers (the gateway reads them at once too)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    model = build_meter(SIM_PROFILE, seed=zlib.crc32(meter.encode()), start=start)
    readings = [
        reading_from_truth(meter, ground_truth(model, float(t)))
        for t in range(0, days * 86400 - 600, step_s)
    ]
    with open_store(default_store_url(data_dir)) as store:
        store.ingest(readings)


@pytest.fixture
def server(data_dir: Path) -> Iterator[LiveServer]:
    configured(data_dir, prices=PricesConfig.model_validate(PRICES))
    fill_history(data_dir, "house")
    with gateway_server(data_dir) as live:
        yield live


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def csp_watch(page: Page) -> list[str]:
    """Errors in the page's console (a CSP violation is one) and uncaught exceptions."""
    problems: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        if message.type == "error":
            problems.append(f"{message.text} ({url})")

    page.on("console", seen)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def chart(page: Page, name: str, expression: str) -> Any:
    return page.evaluate(
        f"() => {{ const c = window.mepgateDashboard.house.{name}; {expression} }}"
    )


def number(text: str) -> float:
    return float(text.replace("\u2009", "").replace("\u2212", "-"))


def tile(page: Page, selector: str) -> float:
    return number(page.locator(f'section.meter[data-meter="house"] {selector}').inner_text())


def test_charts_render_with_data_and_the_live_hour_grows(
    server: LiveServer, page: Page, shots: Callable[[Page, str], Path]
) -> None:
    errors = csp_watch(page)
    page.goto(server.url + "/")
    wait_for_live(page)
    for name in ("live", "hours", "days"):
        expect(page.locator(f'[data-chart="{name}"] canvas')).to_have_count(1)
    page.wait_for_function(
        """() => { const d = window.mepgateDashboard && window.mepgateDashboard.house;
                   return d && d.hours.data[0].length === 24 && d.days.data[0].length === 30
                          && d.live.data[0].length > 5; }""",
        timeout=CHARTS_MS,
    )
    # The bars are the API's periods, matched by time (an hour may turn in between); the
    # current hour moves, so it is left out.
    api = page.request.get(server.url + "/api/v1/energy/house/periods?period=hour&count=24")
    periods = api.json()["periods"][:-1]
    by_middle = {
        (
            dt.datetime.fromisoformat(p["start"]).timestamp()
            + dt.datetime.fromisoformat(p["end"]).timestamp()
        )
        / 2: p
        for p in periods
    }
    x, bars = chart(page, "hours", "return [c.data[0], c.data[1]];")
    assert len(bars) == 24
    matched = [(bar, by_middle[t]) for t, bar in zip(x, bars, strict=True) if t in by_middle]
    assert len(matched) >= 22
    for bar, period in matched:
        assert bar == pytest.approx(period["import_wh"] / 1000)
    assert sum(b is not None and b > 0 for b in bars) >= 20  # two days of history: all hours
    days = chart(page, "days", "return c.data[1];")
    assert days[:27] == [None] * 27  # before the simulated meter was installed
    assert all(d is not None and d > 0 for d in days[-2:])
    # uPlot drew the bars: some pixels of the hour chart are not background.
    drawn = page.evaluate(
        """() => { const c = document.querySelector('[data-chart="hours"] canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                   return n; }"""
    )
    assert drawn > 2000
    # The live hour: seeded from the history, then a point per reading from the stream.
    before = chart(page, "live", "return c.data[0].length;")
    newest = chart(page, "live", "return c.data[0][c.data[0].length - 1];")
    page.wait_for_function(
        "(n) => window.mepgateDashboard.house.live.data[0].length >= n + 3",
        arg=before,
        timeout=CHARTS_MS,
    )
    after = chart(page, "live", "return [c.data[0].length, c.data[0][c.data[0].length - 1]];")
    assert after[1] > newest
    reading = page.request.get(server.url + "/api/v1/reading/house").json()
    assert after[1] <= dt.datetime.fromisoformat(reading["at"]).timestamp()  # a real reading's
    assert chart(page, "live", "return c.data[2].filter((v) => v !== null).length;") > 5
    # Sub-meters and outages, as their APIs answered when the page asked: the demo meter's
    # gas and water meters (once read), no outage.
    page.wait_for_function(
        "() => Object.values(window.mepgateDashboard.house.answered).every(Boolean)",
        timeout=CHARTS_MS,
    )
    told = page.evaluate(
        "() => { const d = window.mepgateDashboard.house;"
        " return [d.submeters.length, d.outages.length]; }"
    )
    assert told[1] == 0
    assert page.locator("[data-outage-note]").is_hidden()
    expect(page.locator("[data-submeters] .tile")).to_have_count(told[0])
    assert page.locator("[data-submeters]").is_hidden() == (told[0] == 0)
    shots(page, "dashboard-charts-1280")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    right = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('[data-chart] canvas')]
                 .map((c) => c.getBoundingClientRect().right))"""
    )
    assert right <= PHONE["width"]
    shots(page, "dashboard-charts-390")
    # Light on the CPU: a burst of 50 readings is drawn in at most two redraws (one a second).
    burst = page.evaluate(
        """async () => {
             const live = window.mepgateDashboard.house.live;
             let draws = 0;
             const setData = live.setData.bind(live);
             live.setData = (data, reset) => { draws++; return setData(data, reset); };
             const before = live.data[0].length;
             const last = live.data[0][before - 1];
             for (let i = 1; i <= 50; i++) {
               document.dispatchEvent(new CustomEvent("mepgate:reading", { detail: {
                 meter: "house", at: new Date((last + i / 100) * 1000).toISOString(),
                 active_power_import_w: 1000 + i, active_power_export_w: 0, net_power_w: 1000 + i,
               } }));
             }
             await new Promise((done) => setTimeout(done, 1500));
             return { draws: draws, added: live.data[0].length - before };
           }"""
    )
    assert burst["added"] >= 50
    assert 1 <= burst["draws"] <= 2
    assert errors == []


SNAPSHOT = """() => {
  const section = document.querySelector('section.meter[data-meter="house"]');
  const tiers = {}, costs = {};
  section.querySelectorAll('[data-tier]').forEach((tile) => {
    const shown = { price: tile.querySelector('small').textContent };
    tile.querySelectorAll('[data-t]').forEach((v) => { shown[v.dataset.t] = v.textContent; });
    tiers[tile.dataset.tier] = shown;
  });
  section.querySelectorAll('[data-c]').forEach((v) => { costs[v.dataset.c] = v.textContent; });
  return { energy: window.mepgateDashboard.house.energy, tiers: tiers, costs: costs };
}"""
"""The energy totals the page last received from the stream and its tiles, read at once (the
next totals may come at any moment)."""


def test_tier_and_cost_tiles_show_the_configured_prices_result(
    server: LiveServer, page: Page
) -> None:
    errors = csp_watch(page)
    page.goto(server.url + "/")
    wait_for_live(page)
    expect(page.locator("[data-costs]")).to_be_visible()
    page.wait_for_function("() => window.mepgateDashboard.house.energy !== null", timeout=20_000)
    snapshot = page.evaluate(SNAPSHOT)
    energy = snapshot["energy"]
    assert {t["tier"] for t in energy["tiers"]} >= {1, 2}
    assert set(snapshot["tiers"]) == {str(t["tier"]) for t in energy["tiers"]}
    # Worked out here from the tiers' energy and the configured prices: tier 1 and 2 have
    # their own, tiers 3 and 4 take the import price.
    cost = {"today": 0.0, "month": 0.0}
    for t in energy["tiers"]:
        shown = snapshot["tiers"][str(t["tier"])]
        assert number(shown["month_import_wh"]) == pytest.approx(
            t["month_import_wh"] / 1000, abs=0.051
        )
        assert number(shown["today_import_wh"]) == pytest.approx(
            t["today_import_wh"] / 1000, abs=0.0051
        )
        for when in ("today", "month"):
            mine = t[f"{when}_import_wh"] / 1000 * TIER_PRICE[t["tier"]]
            cost[when] += mine
            assert number(shown[f"{when}_cost"]) == pytest.approx(mine, abs=0.0051)
        assert shown["price"] == f"at {TIER_PRICE[t['tier']]:.2f}/kWh"
    for when in ("today", "month"):
        earned = energy[f"{when}_export_wh"] / 1000 * 0.75
        assert number(snapshot["costs"][f"{when}_import"]) == pytest.approx(cost[when], abs=0.006)
        assert number(snapshot["costs"][f"{when}_export"]) == pytest.approx(earned, abs=0.0051)
        assert number(snapshot["costs"][f"{when}_net"]) == pytest.approx(
            cost[when] - earned, abs=0.006
        )
    assert cost["month"] > 1  # two days at a few kW: real money, not a rounding
    # The stream's totals are the API's, a few seconds older at most: never ahead of them.
    api = page.request.get(server.url + "/api/v1/energy/house").json()
    assert api["cost"]["currency"] == "DKK"
    assert dt.datetime.fromisoformat(energy["at"]) <= dt.datetime.fromisoformat(api["at"])
    assert energy["month_import_wh"] <= api["month_import_wh"]
    # The tier in force is marked, as the reading says.
    current = page.request.get(server.url + "/api/v1/reading/house").json()["current_tier"]
    expect(page.locator(f'[data-tier="{current}"] .badge')).to_have_text("now")
    assert errors == []


OUTAGE_S = 4


def off_loop(work: Coroutine[Any, Any, object]) -> None:
    """Run ``work`` in its own event loop, off this thread (Playwright's loop runs here)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result(timeout=60)


def until_answered(page: Page, condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded, :data:`CHARTS_MS`) for ``condition``, asked every half second."""
    deadline = time.monotonic() + CHARTS_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(500)


@pytest.fixture
def outage_server(data_dir: Path) -> Iterator[tuple[LiveServer, RunningSimulator]]:
    """The gateway on its ``sim:`` meter (gas and water sub-meters, as ``mepgate serve``
    gives), whose simulator started first and lived a power outage of :data:`OUTAGE_S` before
    the gateway's first session: the events job finds it in the meter's log at once."""
    configured(data_dir)
    sims = EmbeddedSimulators()
    try:
        off_loop(sims.url_for("house", f"sim:{SIM_PROFILE}"))
        sim = sims.running("house")
        assert sim is not None
        model = model_of(sim.meter)
        start = sim.call(lambda: model.snapshot().simulated_time)
        model.schedule(Happening("outage", value_s=OUTAGE_S), at=start + dt.timedelta(seconds=1))
        time.sleep(OUTAGE_S + 1.5)  # the simulated clock runs at real speed
        sim.call(lambda: sim.meter.advance(time.monotonic()))  # the model lives the outage
        with gateway_server(data_dir, sims) as live:
            yield live, sim
    finally:
        off_loop(sims.close())  # the gateway closed them already, unless it never started


def test_submeter_tiles_and_outage_shading_from_a_simulated_meter(
    outage_server: tuple[LiveServer, RunningSimulator],
    page: Page,
    shots: Callable[[Page, str], Path],
) -> None:
    server, sim = outage_server
    (truth,) = model_of(sim.meter).happenings.outages
    assert truth.end is not None
    errors = csp_watch(page)
    page.goto(server.url + "/")
    wait_for_live(page)

    # The gateway's events job reads the log after the first reading; the page asks again a
    # minute later, so it is reloaded until the API has the outage.
    def api(path: str) -> Any:
        return page.request.get(f"{server.url}/api/v1/{path}?meter=house").json()

    until_answered(page, lambda: api("outages") != [], "the outage in /api/v1/outages")
    until_answered(
        page,
        lambda: [s["available"] for s in api("submeters")] == [True, True],
        "both sub-meters read",
    )
    page.reload()
    wait_for_live(page)
    # Sub-meter tiles: the API's values, which are the simulated devices' registers (they
    # change once a simulated hour: not during this test).
    listed = api("submeters")
    mbus = sim.call(lambda: ground_truth(sim.meter, time.monotonic()).mbus)
    assert [(s["medium"], s["value"], s["unit"]) for s in listed] == [
        (t.medium, t.value, t.unit) for t in mbus
    ]
    box = page.locator("[data-submeters]")
    expect(box).to_be_visible(timeout=CHARTS_MS)
    expect(box.locator(".tile")).to_have_count(2)
    for t in mbus:
        tile = box.locator(f'[data-submeter="{t.slot}"]')
        expect(tile).to_contain_text(f"{t.medium.capitalize()} {t.identification}")
        expect(tile.locator(".unit")).to_have_text(t.unit)
        assert number(tile.locator(".value").inner_text()) == pytest.approx(t.value, abs=0.0005)
    # The outage: one in the last 24 hours, shaded where the API puts it on the live hour.
    (outage,) = api("outages")
    assert outage["duration_s"] == OUTAGE_S
    expect(page.locator("[data-outage-note]")).to_have_text(
        "1 power outage in the last 24 hours (shaded)", timeout=CHARTS_MS
    )
    shown = page.evaluate("() => window.mepgateDashboard.house.outages")
    start = dt.datetime.fromisoformat(outage["start"]).timestamp()
    end = dt.datetime.fromisoformat(outage["end"]).timestamp()
    assert shown == [{"start": pytest.approx(start), "end": pytest.approx(end)}]
    page.wait_for_timeout(1200)  # the next redraw of the live hour
    # A column of the plot is painted top to bottom and red-tinted inside the outage (the best
    # column of its span: a grid line may cross one), only the grid and the lines outside.
    columns = """([from, to]) => { const u = window.mepgateDashboard.house.live;
                   const a = Math.floor(u.valToPos(from, 'x', true));
                   const b = Math.max(a + 2, Math.ceil(u.valToPos(to, 'x', true)));
                   const out = [];
                   for (let x = a; x < b; x++) {
                     const d = u.ctx.getImageData(x, u.bbox.top, 1, u.bbox.height).data;
                     let n = 0, red = 0;
                     for (let i = 0; i < d.length; i += 4) {
                       if (d[i + 3] > 0) { n++; if (d[i] > d[i + 1]) red++; }
                     }
                     out.push([n / (d.length / 4), red / Math.max(n, 1)]);
                   }
                   return out; }"""
    inside = max(page.evaluate(columns, [start, end]), key=lambda c: (c[0] > 0.9, c[1]))
    outside = min(page.evaluate(columns, [start - 600, start - 600]))  # ten minutes before
    assert inside[0] > 0.9, inside
    assert inside[1] > 0.8, inside  # red-tinted
    assert outside[0] < 0.5, outside
    shots(page, "dashboard-submeters-outage-1280")
    assert errors == []
