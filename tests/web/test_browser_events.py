"""Browser test (real Chromium): an outage injected in a simulated meter (real TCP) that the
real gateway read from the meter's event log is listed on the events page and shaded on the
history page's charts."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from mepgate.config import save_settings
from mepgate.config.settings import MeterConfig, Settings
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import model_of
from mepgate.simulator.model.happenings import Happening
from mepgate.web.auth import AdminPassword

from ..conftest import SimulatorFactory
from .conftest import ADMIN_PASSWORD
from .test_browser import DESKTOP, FIRST_READING_S, PHONE, browser, gateway_server, page, shots

__all__ = ["browser", "page", "shots"]  # the fixtures this module uses


def test_the_events_page_lists_an_outage_and_the_history_chart_shades_it(
    simulator_factory: SimulatorFactory,
    data_dir: Path,
    page: Page,
    shots: Callable[[Page, str], Path],
) -> None:
    sim = simulator_factory(profile="gen4-3phase")  # real time
    model = model_of(sim.meter)
    start = sim.call(lambda: model.snapshot().simulated_time)
    model.schedule(Happening("outage", value_s=3), at=start + dt.timedelta(seconds=1))
    time.sleep(4.5)  # the outage passes (in simulated time, which runs at real speed) ...
    sim.call(lambda: sim.meter.advance(time.monotonic()))  # ... and the model lives it
    (truth,) = model.happenings.outages
    assert truth.end is not None
    key_file = data_dir / "house.key"
    key_file.write_text(DEFAULT_MBK.decode() + "\n")
    key_file.chmod(0o600)
    save_settings(
        Settings(meter=[MeterConfig(name="house", port=sim.url or "", key_file=key_file)]),
        data_dir / "mepgate.toml",
    )
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    with gateway_server(data_dir) as server:
        # The events job reads the log when the session starts, after the first reading.
        deadline = time.monotonic() + FIRST_READING_S / 1000
        while True:
            page.goto(server.url + "/events")
            if page.locator("tr.outage").count() or time.monotonic() > deadline:
                break
            page.wait_for_timeout(500)
        outage = page.locator("tr.outage")
        expect(outage).to_have_count(1)
        expect(outage).to_contain_text("3 s")
        events = page.locator("tr.event")
        expect(events).to_have_count(2)
        expect(events.nth(0)).to_contain_text("power up (outage ended)")  # newest first
        expect(events.nth(1)).to_contain_text("power down (outage began)")
        shots(page, "events-desktop")
        page.set_viewport_size(PHONE)  # type: ignore[arg-type]
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the events page scrolls sideways on a phone"
        shots(page, "events-phone")
        page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
        api = page.request.get(server.url + "/api/v1/outages?meter=house").json()
        assert len(api) == 1
        assert api[0]["duration_s"] == 3.0

        page.goto(server.url + "/history")
        expect(page.locator("#history-status")).to_contain_text("points", timeout=10_000)
        expect(page.locator("#history")).to_have_attribute("data-outages", "1")
        power = page.locator("#chart-power .uplot")
        expect(power).to_have_attribute("data-outages-shown", "1")
        # The shading is there in the canvas's pixels: reddish where the outage is, not
        # some way off it at the same height.
        colours = page.evaluate(
            """() => {
                 const root = document.getElementById('history');
                 const u = root.mepgateCharts[0].chart, o = root.mepgateOutages[0];
                 const x = Math.round(u.valToPos(o.start, 'x', true));
                 const y = Math.round(u.bbox.top + 3);
                 const ctx = u.ctx;
                 const at = (px) => Array.from(ctx.getImageData(px, y, 1, 1).data);
                 return { on: at(x), off: at(Math.max(Math.round(u.bbox.left) + 2, x - 60)) };
               }"""
        )
        on, off = colours["on"], colours["off"]
        assert on[0] - on[1] > 20, colours  # red over green: the outage's tint
        assert abs(off[0] - off[1]) < 10, colours
        for chart in ("#chart-energy", "#chart-voltage"):
            expect(page.locator(f"{chart} .uplot")).to_have_attribute("data-outages-shown", "1")
        shots(page, "history-outage")
