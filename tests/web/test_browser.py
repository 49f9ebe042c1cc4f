"""Browser tests: real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against the real :class:`~mepgate.service.gateway.Gateway` polling the built-in simulator
(``sim:gen4-3phase``) through its client, served by a real uvicorn on a free loopback port.

Screenshots of the dashboard and history at desktop and phone widths go to the test's tmp dir
(``MEPGATE_SCREENSHOTS=DIR`` copies them there as well, to look at).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pydantic import SecretStr

from mepgate.config import load_settings, save_settings
from mepgate.config.settings import MeterConfig, MqttConfig, Settings
from mepgate.service.gateway import Gateway, default_store_url
from mepgate.simulator.embedded import SIM_KEY_TEXT, SIM_OPTICAL_KEY_TEXT, EmbeddedSimulators
from mepgate.simulator.model import build_meter, ground_truth
from mepgate.store import open_store
from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..support.gateway import SIM_PROFILE, reading_from_truth
from .conftest import ADMIN_PASSWORD
from .support import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MQTT_PASSWORD = "mqtt-secret-Xy7#q"
FIRST_READING_S = 30_000  # ms: identity, dimensions and the first BT28 over the simulator


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
    """Two days of the simulator's readings in the store the gateway will open.

    The same installation as the gateway's ``sim:`` meter (seeded by the meter's name, as
    :mod:`mepgate.simulator.embedded` does), started two days ago: its registers end above the
    live meter's, which then continues from the newest stored values.
    """
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    model = build_meter(SIM_PROFILE, seed=zlib.crc32(meter.encode()), start=start)
    readings = [
        reading_from_truth(meter, ground_truth(model, float(t)), tiers=False)
        for t in range(0, days * 86400 - 600, step_s)
    ]
    with open_store(default_store_url(data_dir)) as store:
        store.ingest(readings)


def gateway_server(data_dir: Path, simulated: EmbeddedSimulators | None = None) -> LiveServer:
    """The real gateway, configured from ``<data_dir>/mepgate.toml`` (absent: no meter yet),
    with the web app mounted as ``mepgate serve`` does; ``simulated``: the ``sim:`` meters'
    simulators (default: new ones, gas and water sub-meters on each, as ``mepgate serve``
    gives)."""
    config_path = data_dir / "mepgate.toml"

    @contextlib.asynccontextmanager
    async def view() -> AsyncIterator[object]:
        settings = load_settings(config_path if config_path.exists() else None, env={})
        gateway = Gateway(
            settings,
            data_dir=data_dir,
            config_path=config_path,
            simulated=simulated or EmbeddedSimulators(),  # as mepgate serve gives it
        )
        async with gateway:
            yield gateway

    return LiveServer(view, lambda gateway: create_app(gateway, data_dir=data_dir))  # type: ignore[arg-type]


def configured(data_dir: Path, **extra: object) -> Path:
    """A gateway configuration with one simulated meter whose key lives in a 0600 file."""
    key_file = data_dir / "house.key"
    key_file.write_text(SIM_KEY_TEXT + "\n")
    key_file.chmod(0o600)
    settings = Settings(
        meter=[MeterConfig(name="house", port=f"sim:{SIM_PROFILE}", key_file=key_file)],
        **extra,  # type: ignore[arg-type]
    )
    save_settings(settings, data_dir / "mepgate.toml")
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    return data_dir


@pytest.fixture
def server(data_dir: Path) -> Iterator[LiveServer]:
    configured(data_dir)
    fill_history(data_dir, "house")
    with gateway_server(data_dir) as live:
        yield live


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        copy_to = os.environ.get("MEPGATE_SCREENSHOTS")
        if copy_to:
            Path(copy_to).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(copy_to) / path.name)
        return path

    return take


def log_in(page: Page, url: str, password: str = ADMIN_PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    expect(page.locator("#logout")).to_be_visible()


def value(page: Page, field: str) -> str:
    return page.locator(f'section.meter[data-meter="house"] [data-f="{field}"]').inner_text()


def wait_for_live(page: Page) -> None:
    expect(page.locator("[data-status]")).to_contain_text("live", timeout=FIRST_READING_S)


def test_dashboard_shows_simulator_values_that_change(
    server: LiveServer, page: Page, shots: Callable[[Page, str], Path]
) -> None:
    page.goto(server.url + "/")
    wait_for_live(page)
    expect(page.locator(".hero-label")).to_contain_text("+ import from grid, \u2212 export to grid")
    first = {f: value(page, f) for f in ("net_power_w", "voltage_l1_v", "current_l2_a")}
    assert all(re.fullmatch("[\u2212\\d.\u2009]+", v) for v in first.values()), first
    voltage = float(first["voltage_l1_v"].replace("\u2009", ""))
    assert 200 < voltage < 260
    for field in ("frequency_hz", "power_factor_l3", "today_import_wh", "month_import_wh"):
        assert value(page, field) != "—", field
    # Playwright polls the page until one of the values differs (and fails after 20 s).
    page.wait_for_function(
        """(first) => Object.entries(first).some(([field, text]) => document.querySelector(
             `section.meter[data-meter="house"] [data-f="${field}"]`).innerText !== text)""",
        arg=first,
        timeout=20_000,
    )
    now = {f: value(page, f) for f in first}
    assert now != first, "the dashboard values did not change"
    # The page shows what the API says (the same reading, pushed by SSE).
    api = page.request.get(server.url + "/api/v1/reading/house").json()
    assert api["voltage_l1_v"] > 200
    shots(page, "dashboard-desktop")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.wait_for_timeout(300)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the dashboard scrolls sideways on a phone"
    shots(page, "dashboard-phone")


def test_history_chart_renders_and_zooms(
    server: LiveServer, page: Page, shots: Callable[[Page, str], Path]
) -> None:
    page.goto(server.url + "/history")
    chart = page.locator("#chart-power canvas")
    expect(chart).to_be_visible(timeout=10_000)
    expect(page.locator("#history-status")).to_contain_text("points", timeout=10_000)
    points = int(page.locator("#history").get_attribute("data-points") or 0)
    assert points >= 20  # a day of hourly rollups (the store picks the resolution)
    assert page.locator("#chart-energy canvas").count() == 1
    assert page.locator("#chart-voltage canvas").count() == 1
    # uPlot draws the series as canvas pixels: some of them are not background.
    drawn = page.evaluate(
        """() => { const c = document.querySelector('#chart-power canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                   return n; }"""
    )
    assert drawn > 1000
    shots(page, "history-desktop")
    with page.expect_response(re.compile(r"/api/v1/history\?")):  # the week, loaded
        page.click("button[data-range=week]")
    expect(page.locator("button[data-range=week]")).to_have_attribute("aria-pressed", "true")
    # Drag across the middle of the power chart: the selection is fetched again, finer.
    box = page.locator("#chart-power .u-over").bounding_box()
    assert box is not None
    with page.expect_response(re.compile(r"/api/v1/history\?")) as zoomed:
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
    body = zoomed.value.json()
    span = dt.datetime.fromisoformat(body["end"]) - dt.datetime.fromisoformat(body["start"])
    assert span < dt.timedelta(days=3)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.click("button[data-range=day]")
    page.wait_for_timeout(500)
    shots(page, "history-phone")


def test_login_logout_and_csrf_rejection(server: LiveServer, page: Page) -> None:
    page.goto(server.url + "/config")
    assert page.url.startswith(server.url + "/login?next=/config")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("Wrong password")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Configuration")
    cookie = next(c for c in page.context.cookies() if c["name"] == "mepgate_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    # A forged token, then none at all: the form is refused and nothing changes.
    before = server.view.settings if server.view else None  # type: ignore[attr-defined]
    page.evaluate("document.querySelector('#config-form [name=csrf_token]').value = 'forged'")
    page.click("#config-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Form refused")
    page.go_back()
    page.goto(server.url + "/config")
    page.evaluate("document.querySelector('#config-form [name=csrf_token]').remove()")
    page.click("#config-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Form refused")
    assert server.view.settings == before  # type: ignore[attr-defined]
    # Log out: the admin pages ask for the login again.
    page.goto(server.url + "/")
    page.click("#logout")
    expect(page.locator("#login-link")).to_be_visible()
    page.goto(server.url + "/config")
    assert page.url.startswith(server.url + "/login")


def test_first_run_setup_then_config_change_survives_a_restart(data_dir: Path, page: Page) -> None:
    with gateway_server(data_dir) as live:
        page.goto(live.url + "/")
        assert page.url == live.url + "/setup"
        page.fill("[name=password]", ADMIN_PASSWORD)
        page.fill("[name=password_repeat]", ADMIN_PASSWORD)
        page.fill("[name=meter_name]", "house")
        page.fill("[name=meter_port]", f"sim:{SIM_PROFILE}")
        page.fill("[name=meter_key]", SIM_KEY_TEXT)
        page.click("button[type=submit]")
        assert page.url == live.url + "/"
        wait_for_live(page)  # the gateway polls the meter set up a moment ago
        page.goto(live.url + "/config")
        page.fill("[name='meter.0.poll_interval']", "2.5")
        page.check("[name='web.console_writes']")
        page.click("#config-form button[type=submit]")
        expect(page.locator("[role=status]")).to_contain_text("Saved")
    assert (data_dir / "house.key").read_text().strip() == SIM_KEY_TEXT
    assert SIM_KEY_TEXT not in (data_dir / "mepgate.toml").read_text()
    with gateway_server(data_dir) as live:
        page.goto(live.url + "/config")  # the restart ended the session
        assert page.url.startswith(live.url + "/login")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("[name='meter.0.poll_interval']")).to_have_value("2.5")
        expect(page.locator("[name='web.console_writes']")).to_be_checked()
        page.goto(live.url + "/console")
        expect(page.locator("main")).to_contain_text("Writes are enabled")
        page.goto(live.url + "/")
        wait_for_live(page)


def _readable_paths(page: Page, url: str) -> list[str]:
    schema = page.request.get(url + "/api/v1/openapi.json").json()
    paths = [p.replace("{meter}", "house") for p in schema["paths"] if not p.endswith("stream")]
    return [*paths, "/api/v1/openapi.json", "/metrics"]


def test_no_key_or_password_in_any_page_or_response(
    data_dir: Path, page: Page, shots: Callable[[Page, str], Path]
) -> None:
    configured(
        data_dir,
        mqtt=MqttConfig(url="mqtt://127.0.0.1:1", username="ha", password=SecretStr(MQTT_PASSWORD)),
    )
    secrets = (SIM_KEY_TEXT, MQTT_PASSWORD, ADMIN_PASSWORD)
    seen: list[str] = []
    with gateway_server(data_dir) as live:
        page.goto(live.url + "/")
        wait_for_live(page)
        log_in(page, live.url)
        for path in ("/", "/history", "/meter", "/console", "/config", "/login"):
            page.goto(live.url + path)
            seen.append(page.content())
        page.goto(live.url + "/meter")
        expect(page.locator("[data-state]")).to_contain_text("polling")
        shots(page, "meter-desktop")
        page.set_viewport_size(PHONE)  # type: ignore[arg-type]
        page.goto(live.url + "/config")
        shots(page, "config-phone")
        page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
        page.goto(live.url + "/console")
        page.select_option("[name=table]", "BT01")
        page.click(".console-form button[type=submit]")
        expect(page.locator("#console-reply")).to_contain_text("Decoded")
        seen.append(page.content())
        shots(page, "console-desktop")
        for path in _readable_paths(page, live.url):
            response = page.request.get(live.url + path)
            assert response.status < 500, path
            seen.append(response.text() + str(response.headers))
        page.goto(live.url + "/")
        stream = page.evaluate(
            """async (url) => {
                 const controller = new AbortController();
                 const response = await fetch(url, {signal: controller.signal});
                 const reader = response.body.getReader();
                 let text = '';
                 const until = Date.now() + 3000;
                 while (Date.now() < until) {
                   const {value, done} = await reader.read();
                   if (done) break;
                   text += new TextDecoder().decode(value);
                   if (text.includes('event: energy')) break;
                 }
                 controller.abort();
                 return text;
               }""",
            live.url + "/api/v1/stream",
        )
        assert "event: reading" in stream
        seen.append(stream)
    assert len(seen) > 15
    for text in seen:
        for secret in secrets:
            assert secret not in text
    assert "mqtt://127.0.0.1:1" in "".join(seen)  # the config page was really crawled


def test_setup_of_an_optical_meter_reads_it_and_the_config_page_keeps_mep_settings_off(
    data_dir: Path, page: Page, shots: Callable[[Page, str], Path]
) -> None:
    with gateway_server(data_dir) as live:
        page.goto(live.url + "/setup")
        page.fill("[name=password]", ADMIN_PASSWORD)
        page.fill("[name=password_repeat]", ADMIN_PASSWORD)
        page.fill("[name=meter_name]", "house")
        page.fill("[name=meter_port]", f"sim:{SIM_PROFILE}")
        page.select_option("[name=meter_interface]", "optical")
        page.fill("[name=meter_key]", SIM_OPTICAL_KEY_TEXT)  # the simulator's read-only key
        shots(page, "setup-optical")
        page.click("button[type=submit]")
        assert page.url == live.url + "/"
        wait_for_live(page)  # read through the simulated meter's optical port
        page.goto(live.url + "/config")
        expect(page.locator("[name='meter.0.interface']")).to_have_value("optical")
        page.select_option("[name='meter.0.security']", "tls")
        page.click("#config-form button[type=submit]")
        error = page.locator("#field-meter-0-security .error")
        expect(error).to_contain_text("only for the MEP port")
        shots(page, "config-optical-error")
    saved = load_settings(data_dir / "mepgate.toml", env={})
    assert saved.meter[0].interface == "optical"
    assert saved.meter[0].security == "auto"
    assert SIM_OPTICAL_KEY_TEXT not in (data_dir / "mepgate.toml").read_text()
