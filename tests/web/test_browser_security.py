"""Web hardening in a real browser (headless Chromium through Playwright) against the real
gateway in a real uvicorn: the CSP blocks injected inline code and breaks none of the pages,
framing is refused, a cross-site form post changes nothing, and the first-run setup asks for
the token printed in the log."""

from __future__ import annotations

import http.server
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from mepgate.config import load_settings
from mepgate.simulator.embedded import SIM_KEY_TEXT
from mepgate.web.auth import AdminPassword

from ..support.gateway import SIM_PROFILE, free_port
from .conftest import ADMIN_PASSWORD
from .support import LiveServer
from .test_browser import CHROMIUM, CHROMIUM_ARGS, configured, fill_history, gateway_server

FRAME_WAIT_S = 20.0  # a hang guard for a frame to load or fail


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def csp_reports(page: Page) -> list[str]:
    """Chromium's console messages about the Content-Security-Policy, as they come."""
    seen: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            seen.append(message.text)

    page.on("console", note)
    return seen


@pytest.fixture
def server(data_dir: Path) -> Iterator[LiveServer]:
    """The real gateway polling the built-in simulator, with history, admin password set."""
    configured(data_dir)
    fill_history(data_dir, "house")
    with gateway_server(data_dir) as live:
        yield live


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#password", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    expect(page.locator("#logout")).to_be_visible()


class OtherSite:
    """A page on another site (``localhost`` is another site than ``127.0.0.1``)."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://localhost:{self.server.server_port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtherSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


def test_the_csp_blocks_an_injected_inline_script(server: LiveServer, page: Page) -> None:
    """As if an attacker got markup into a page: the gateway's own headers come with it."""
    reports = csp_reports(page)
    injected = (
        "<script>window.injected = 'script ran'</script>"
        "<img src='/static/none.png' onerror=\"window.injected = 'handler ran'\">"
        '<a id="js" href="javascript:window.injected=\'link ran\'">x</a>'
    )

    def inject(route: Route) -> None:
        response = route.fetch()
        body = response.text().replace("</main>", injected + "</main>")
        route.fulfill(response=response, body=body)

    page.route(server.url + "/login", inject)
    page.goto(server.url + "/login")
    expect(page.locator("#password")).to_be_visible()
    page.click("#js")
    # Chromium reports each refusal; once all three are in, nothing injected has run.
    deadline = time.monotonic() + FRAME_WAIT_S
    while len(reports) < 3:
        assert time.monotonic() < deadline, f"CSP reports: {reports}"
        page.wait_for_timeout(50)
    assert page.evaluate("window.injected") is None
    assert any("inline script" in r for r in reports), reports
    # The page's own script (forms.js, a file from this origin) did run: the history's
    # meter choice is wired to submit (checked in test_no_page_breaks_under_the_csp).


def test_no_page_breaks_under_the_csp(server: LiveServer, page: Page) -> None:
    reports = csp_reports(page)
    page.goto(server.url + "/")
    expect(page.locator("[data-status]")).to_contain_text("live", timeout=30_000)
    page.goto(server.url + "/history")
    expect(page.locator("#history-status")).to_contain_text("points", timeout=10_000)
    assert page.locator("#chart-power canvas").count() == 1
    log_in(page, server.url)
    for path in ("/meter", "/console", "/config"):
        page.goto(server.url + path)
        expect(page.locator("h1").first).to_be_visible()
    assert reports == []


def test_history_meter_choice_submits_without_inline_code(data_dir: Path, page: Page) -> None:
    """The meter choice used an inline ``onchange``; forms.js wires it now."""
    configured(data_dir)
    config = data_dir / "mepgate.toml"
    config.write_text(
        config.read_text() + '\n[[meter]]\nname = "shed"\nport = "sim:gen4-3phase"\n'
        f'key_file = "{data_dir / "house.key"}"\n'
    )
    reports = csp_reports(page)
    with gateway_server(data_dir) as live:
        page.goto(live.url + "/history?meter=house")
        with page.expect_navigation():
            page.select_option("select[name=meter]", "shed")
        assert page.url.endswith("/history?meter=shed")
        expect(page.locator("#history")).to_have_attribute("data-meter", "shed")
    assert reports == []


def wait_for_frame(page: Page, gateway_url: str) -> None:
    """Until the gateway's frame has loaded or failed, and the control frame has loaded."""
    deadline = time.monotonic() + FRAME_WAIT_S
    while True:
        urls = [frame.url for frame in page.frames]
        failed = any(u.startswith("chrome-error://") for u in urls)
        framed = any(u.startswith(gateway_url) for u in urls)
        control = page.frame_locator("#control").locator("#mine").count() == 1
        if control and (failed or framed):
            return
        assert time.monotonic() < deadline, urls
        page.wait_for_timeout(50)


def test_another_site_cannot_frame_the_gateway(server: LiveServer, page: Page) -> None:
    reports = csp_reports(page)
    attacker = (
        f'<iframe id="gateway" src="{server.url}/config"></iframe>'
        f'<iframe id="control" srcdoc="<p id=mine>a frame that may load</p>"></iframe>'
    )
    with OtherSite(attacker) as site:
        page.goto(site.url)
        wait_for_frame(page, server.url)
    assert not any(frame.url.startswith(server.url) for frame in page.frames)
    assert any("frame-ancestors" in r for r in reports), reports


def test_a_cross_site_form_post_changes_nothing(server: LiveServer, page: Page) -> None:
    log_in(page, server.url)
    assert server.view is not None
    before = server.view.settings  # type: ignore[attr-defined]
    attacker = f"""
      <form id="evil" method="post" action="{server.url}/config">
        <input name="csrf_token" value="guessed">
        <input name="web.listen" value="0.0.0.0:8080">
        <input name="web.public_dashboard" value="on">
        <button type="submit">win a prize</button>
      </form>
      <form id="logout" method="post" action="{server.url}/logout">
        <button type="submit">log out</button>
      </form>"""
    with OtherSite(attacker) as site:
        page.goto(site.url)
        with page.expect_response(f"{server.url}/config") as posted:
            page.click("#evil button")
        assert posted.value.status == 403
        assert posted.value.request.all_headers().get("sec-fetch-site") == "cross-site"
        page.goto(site.url)
        with page.expect_response(f"{server.url}/logout") as logout:
            page.click("#logout button")
        assert logout.value.status == 403
    assert server.view.settings == before  # type: ignore[attr-defined]
    page.goto(server.url + "/config")  # still logged in
    expect(page.locator("h1")).to_have_text("Configuration")


# -- the setup token ------------------------------------------------------------------------------
def test_first_run_setup_from_the_network_needs_the_printed_link(
    data_dir: Path, page: Page, caplog: pytest.LogCaptureFixture
) -> None:
    """A new gateway reachable from the network (``listen = 0.0.0.0:...``): no admin yet."""
    caplog.set_level(logging.WARNING)
    (data_dir / "mepgate.toml").write_text('[web]\nlisten = "0.0.0.0:8080"\n')
    with gateway_server(data_dir) as live:
        link = re.findall(r"http://\S+/setup\?token=(\S+)", caplog.text)
        assert len(link) == 1, caplog.text
        page.goto(live.url + "/")
        assert page.url == live.url + "/setup"
        expect(page.locator("#setup-token")).to_be_visible()
        fill_setup(page)
        page.fill("#setup-token", "a guess")
        page.click("button[type=submit]")
        expect(page.locator("[role=alert]")).to_contain_text("Setup token")
        assert not AdminPassword(data_dir).is_set
        page.goto(f"{live.url}/setup?token={link[0]}")  # the link as printed (host aside)
        expect(page.locator("#setup-token")).to_have_value(link[0])
        fill_setup(page)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url == live.url + "/"
        expect(page.locator("#logout")).to_be_visible()
    assert AdminPassword(data_dir).check(ADMIN_PASSWORD)
    assert load_settings(data_dir / "mepgate.toml", env={}).meter[0].name == "house"


def fill_setup(page: Page) -> None:
    page.fill("[name=password]", ADMIN_PASSWORD)
    page.fill("[name=password_repeat]", ADMIN_PASSWORD)
    page.fill("[name=meter_name]", "house")
    page.fill("[name=meter_port]", f"sim:{SIM_PROFILE}")
    page.fill("[name=meter_key]", SIM_KEY_TEXT)
