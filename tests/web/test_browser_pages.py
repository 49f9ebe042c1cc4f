"""Browser tests beyond test_browser.py, in real headless Chromium against the app in a real
uvicorn, over the tests' :class:`FakeGateway` (whose meter statuses and readings the test sets
while the page is open) or the real gateway:

* a meter that stopped on a wrong key shows why, the advice and a link to the field to fix;
  when it recovers the page says so by itself;
* the "live" line counts a reading's age from the reading's own time: a page opened on an old
  reading, or sent an old one, says the values are stale;
* a console read of the load profile (BT64, 184 KB) on the real gateway and its built-in
  simulator (9600 Bd) shows its progress while the live readings keep coming, and stops when
  cancelled;
* the API docs load with every request outside the gateway refused;
* the history charts: numbers as on the dashboard (no "1,262.167", no "-0", axis labels that
  differ), dates in the browser's locale, and a message for a range without readings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from mepgate.config import MeterConfig, Settings
from mepgate.reading import Reading
from mepgate.service.view import LinkFailure, MeterStatus
from mepgate.store import open_store
from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..support.gateway import FakeGateway, SimMeter
from .conftest import ADMIN_PASSWORD
from .support import LiveServer
from .test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    configured,
    gateway_server,
    log_in,
    wait_for_live,
)

STATE_REFRESH_MS = 15_000  # the dashboard asks for the meters' states every 5 s

WRONG_KEY = LinkFailure(
    at=dt.datetime(2025, 3, 1, 11, 0, tzinfo=dt.UTC),
    message="the meter answered 0x0B (authentication failure) twice",
    diagnosis="wrong-key",
    advice="authentication failure (0x0B): the meter rejects the key; check the MBK",
)


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


class Meter:
    """The simulated meter whose readings and status the test hands the gateway."""

    def __init__(self) -> None:
        self.sim = SimMeter.installed_ago(dt.timedelta(hours=1))

    def status(self, **fields: object) -> MeterStatus:
        return dataclasses.replace(self.sim.status(), **fields)  # type: ignore[arg-type]


def serve(sqlite_url: str, data_dir: Path, statuses: list[MeterStatus]) -> LiveServer:
    settings = Settings.model_validate(
        {
            "meter": [MeterConfig(name="house", port="tcp://127.0.0.1:7777")],
            "storage": {"url": sqlite_url},
        }
    )
    AdminPassword(data_dir).set(ADMIN_PASSWORD)

    @contextlib.asynccontextmanager
    async def view() -> AsyncIterator[FakeGateway]:
        gateway = FakeGateway(settings, statuses, store_url=sqlite_url)
        try:
            yield gateway
        finally:
            await gateway.close()

    def app(gateway: object) -> FastAPI:
        assert isinstance(gateway, FakeGateway)
        return create_app(gateway, data_dir=data_dir)

    return LiveServer(view, app)


def test_a_wrong_key_is_named_on_the_dashboard_with_a_link_to_fix_it(
    sqlite_url: str, data_dir: Path, page: Page
) -> None:
    meter = Meter()
    stopped = meter.status(state="stopped", connected=False, last_errors=(WRONG_KEY,))
    with serve(sqlite_url, data_dir, [stopped]) as server:
        gateway = server.view
        assert isinstance(gateway, FakeGateway)
        page.goto(server.url + "/")
        house = page.locator('section.meter[data-meter="house"]')
        expect(house.locator("[data-status]")).to_contain_text("waiting for the first reading")
        diagnosis = house.locator("[data-diagnosis=wrong-key]")
        expect(diagnosis).to_contain_text("Wrong key")
        expect(diagnosis).to_contain_text("check the MBK")
        expect(diagnosis).to_contain_text("Authentication failure (0x0B)")
        fix = diagnosis.locator("a[data-fix]")
        expect(fix).to_have_text("Fix the key on the config page")
        expect(fix).to_have_attribute("href", "/config#field-meter-0-key")
        fix.click()  # the config page wants the login first
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#field-meter-0-key")).to_be_visible()
        page.goto(server.url + "/")
        fix.click()  # logged in: straight to the key's field
        expect(page.locator("#field-meter-0-key")).to_be_in_viewport()
        assert page.url.endswith("/config#field-meter-0-key")
        # The key was fixed: the poller polls and readings come; the open dashboard follows.
        page.goto(server.url + "/")
        expect(diagnosis).to_be_visible()
        gateway.statuses = [meter.status(state="polling")]
        server.call(_publish(gateway, meter.sim.reading_now()))
        expect(house.locator("[data-status]")).to_contain_text("live")
        expect(diagnosis).to_have_count(0, timeout=STATE_REFRESH_MS)


def test_the_live_line_counts_from_the_readings_own_time(
    sqlite_url: str, data_dir: Path, page: Page
) -> None:
    meter = Meter()
    old = meter.sim.reading_now()
    old = dataclasses.replace(old, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    with serve(sqlite_url, data_dir, [meter.status(state="polling")]) as server:
        gateway = server.view
        assert isinstance(gateway, FakeGateway)
        server.call(_publish(gateway, old))
        # A page opened on a five-minute-old reading says so at once.
        page.goto(server.url + "/")
        status = page.locator('section.meter[data-meter="house"] [data-status]')
        expect(status).to_contain_text("no new values for 5 min")
        expect(status).to_have_class("status stale")
        # A fresh reading: live.
        server.call(_publish(gateway, meter.sim.reading_now()))
        expect(status).to_contain_text("live")
        expect(status).not_to_have_class("status stale")
        # A reading arriving now but taken long ago (a gateway catching up) is not "live".
        late = dataclasses.replace(
            meter.sim.reading_now(), at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
        )
        server.call(_publish(gateway, late))
        expect(status).to_contain_text("no new values for 3 min")


async def _publish(gateway: FakeGateway, reading: object) -> None:
    gateway.publish([reading])  # type: ignore[list-item]


def test_a_long_console_read_shows_progress_keeps_polling_and_cancels(
    data_dir: Path, page: Page
) -> None:
    configured(data_dir)
    with gateway_server(data_dir) as live:
        page.goto(live.url + "/")
        wait_for_live(page)
        log_in(page, live.url)
        page.goto(live.url + "/console")
        page.select_option("[name=table]", "BT64")
        page.click(".console-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"/console\?job="), timeout=10_000)
        job = page.locator("#console-job")
        expect(job).to_have_attribute("data-state", "running")
        line = page.locator("#console-progress")
        expect(line).to_contain_text("of 184\u2009100 bytes")
        before = page.request.get(live.url + "/api/v1/reading/house").json()["at"]
        # The bar moves (console.js asks every second) while the readings keep coming.
        start = page.evaluate("document.getElementById('console-bar').value")
        page.wait_for_function(
            "(start) => document.getElementById('console-bar').value >= start + 3 * 465",
            arg=start,
            timeout=60_000,
        )
        expect(line).to_contain_text("left")
        after = page.request.get(live.url + "/api/v1/reading/house").json()["at"]
        assert after > before, "no reading while the console read ran"
        health = page.request.get(live.url + "/api/v1/health").json()
        assert health["meters"][0]["problems"] == [], health
        page.click("#console-cancel")
        expect(job).to_have_attribute("data-state", "cancelled", timeout=20_000)
        expect(job).to_contain_text("Cancelled")
        expect(line).not_to_contain_text("left")
        expect(page.locator("[name=table]")).to_have_value("BT64")  # the form as it was sent
        expect(page.locator("#console-cancel")).to_have_count(0)


def test_the_api_docs_load_with_no_network_outside_the_gateway(
    sqlite_url: str, data_dir: Path, browser: Browser
) -> None:
    meter = Meter()
    with serve(sqlite_url, data_dir, [meter.status(state="polling")]) as server:
        context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        outside: list[str] = []
        failed: list[str] = []

        def only_the_gateway(route: Route) -> None:
            if urlsplit(route.request.url).netloc == f"127.0.0.1:{server.port}":
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", only_the_gateway)
        page = context.new_page()
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(server.url + "/api/v1/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("mepgate")
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/health")).to_be_visible()
        page.locator(".opblock-summary-path", has_text="/api/v1/health").click()
        page.click("button.try-out__btn")
        page.click("button.execute")
        live = page.locator(".live-responses-table .response .response-col_status")
        expect(live).to_contain_text("200")
        context.close()
        assert outside == []
        assert failed == []


def serve_history(sqlite_url: str, data_dir: Path, readings: list[Reading]) -> LiveServer:
    """The app over a gateway whose store holds ``readings`` (and the hub the newest)."""
    meter = Meter()
    server = serve(sqlite_url, data_dir, [meter.status(state="polling")])
    if readings:
        with open_store(sqlite_url) as store:
            store.ingest(readings)
    return server


def steady_hour(meter: Meter) -> list[Reading]:
    """An hour of readings a minute apart: 1262.167 W imported, nothing exported, 0.4 Wh a
    minute on the register (tiny energy bars: their axis needs four decimals).  Each reading
    half a minute into its minute, the last one half a minute ago: the page's "last hour",
    asked for seconds later, still holds all sixty whichever second the test runs at."""
    base = meter.sim.reading_now()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return [
        dataclasses.replace(
            base,
            at=now - dt.timedelta(minutes=59 - n, seconds=30),
            forward_active_energy_wh=base.forward_active_energy_wh + 0.4 * n,
            active_power_import_w=1262.167,
            active_power_export_w=0.0,
        )
        for n in range(60)
    ]


def chart_labels(page: Page, chart: int, axis: int) -> list[str]:
    labels: list[str] = page.evaluate(
        "([c, a]) => document.getElementById('history').mepgateCharts[c].chart.axes[a]._values",
        [chart, axis],
    )
    return labels


@pytest.mark.parametrize(
    ("locale", "date", "clock", "day"),
    [
        ("de-DE", r"\d{2}\.\d{2}\.\d{4}", r"^\d{1,2}:\d{2}", r"\d{1,2}\. \w+\.?"),
        (
            "en-US",
            r"[A-Z][a-z]{2} \d{1,2}, \d{4}",
            r"^\d{1,2}:\d{2} [AP]M",
            r"[A-Z][a-z]{2} \d{1,2}",
        ),
    ],
)
def test_history_numbers_and_dates_read_well_in_the_browsers_locale(
    sqlite_url: str,
    data_dir: Path,
    browser: Browser,
    locale: str,
    date: str,
    clock: str,
    day: str,
) -> None:
    with serve_history(sqlite_url, data_dir, steady_hour(Meter())) as server:
        context = browser.new_context(viewport=DESKTOP, locale=locale)  # type: ignore[arg-type]
        page = context.new_page()
        page.goto(server.url + "/history")
        expect(page.locator("#history-status")).to_contain_text("points")
        with page.expect_response(re.compile(r"/api/v1/history\?")):
            page.click("button[data-range=hour]")
        expect(page.locator("#history-status")).to_contain_text("60 points")
        box = page.locator("#chart-power .u-over").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        legend = page.locator("#chart-power .u-legend .u-value")
        expect(legend.first).to_contain_text(re.compile(date))  # the moment, in the locale
        values = legend.all_inner_texts()[1:]  # net, import, export (W)
        assert values == ["1\u2009262", "1\u2009262", "0"], values
        energy = page.locator("#chart-energy .u-legend .u-value").all_inner_texts()[1:]
        assert energy == ["0.0004", "0.0000"], energy  # kWh a minute: 0.4 Wh
        assert not any(v.startswith(("-", "\u2212")) for v in values + energy)
        for chart in range(3):
            ticks = chart_labels(page, chart, 1)
            assert len(set(ticks)) == len(ticks), ticks  # every tick says something else
            assert not any("," in t for t in ticks), ticks
        times = chart_labels(page, 0, 0)
        assert times
        # Times of day in the locale; where the last hour crosses midnight, the tick at the
        # day change may show the day alone.
        days = [t for t in times if not re.search(clock, t)]
        assert len(days) <= 1, times
        assert all(re.fullmatch(day, t.strip()) for t in days), times
        context.close()


def test_a_range_without_readings_says_so(sqlite_url: str, data_dir: Path, page: Page) -> None:
    with serve_history(sqlite_url, data_dir, []) as server:
        page.goto(server.url + "/history")
        empty = page.locator("#history-empty")
        expect(empty).to_be_visible()
        expect(empty).to_contain_text("No readings between")
        assert page.locator("#chart-power canvas").count() == 1
        gateway = server.view
        assert isinstance(gateway, FakeGateway)
        server.call(gateway.store.ingest(steady_hour(Meter())))
        with page.expect_response(re.compile(r"/api/v1/history\?")):
            page.click("button[data-range=hour]")
        expect(page.locator("#history-status")).to_contain_text("60 points")
        expect(empty).to_be_hidden()
