"""Web hardening through the real app: security headers and no inline code, client addresses
from trusted proxies only, login limits per address, per account and per device, the setup
token, cross-site posts.  (Raw HTTP against ``mepgate serve`` and a real browser:
test_security_live.py, test_browser_security.py.)"""

from __future__ import annotations

import asyncio
import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mepgate.web import create_app
from mepgate.web.auth import (
    ACCOUNT_BACKOFF,
    ADDRESS_BACKOFF,
    DEVICE_COOKIE,
    LOGIN_FAILURES_ALLOWED,
    AdminPassword,
)
from mepgate.web.security import CONTENT_SECURITY_POLICY

from ..support.gateway import FakeGateway
from .conftest import ADMIN_PASSWORD, TEST_KEY, csrf_of, log_in
from .support import reconfigure

PAGES = ("/", "/history", "/meter", "/console", "/config", "/login")


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def with_web(gateway: FakeGateway, **web: object) -> None:
    settings = gateway.settings
    reconfigure(gateway, settings.model_copy(update={"web": settings.web.model_copy(update=web)}))


def client_at(app: object, address: str) -> TestClient:
    """A client whose connection comes from ``address`` (the socket's peer)."""
    return TestClient(app, client=(address, 40000))  # type: ignore[arg-type]


def wrong_login(client: TestClient, **headers: str) -> int:
    token = csrf_of(client.get("/login").text)
    response: httpx.Response = client.post(
        "/login", data={"csrf_token": token, "password": "guess"}, headers=headers
    )
    return response.status_code


def right_login(client: TestClient, **headers: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    response: httpx.Response = client.post(
        "/login",
        data={"csrf_token": token, "password": ADMIN_PASSWORD},
        headers=headers,
        follow_redirects=False,
    )
    return response


# -- headers and inline code ----------------------------------------------------------------------
class _InlineCode(HTMLParser):
    """Inline scripts, event-handler attributes, style attributes and <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        self.found.extend(f"{tag} {n}=" for n in names if n.startswith("on") or n == "style")
        for name, value in attrs:
            if name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.found.append(f"{tag} {name}=javascript:")


def test_every_response_carries_the_security_headers(admin: TestClient) -> None:
    for path in (*PAGES, "/api/v1/reading", "/api/v1/health", "/static/app.css", "/nowhere"):
        response = admin.get(path)
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "style-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp, path
        assert "unsafe-eval" not in csp, path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path


def test_no_page_has_inline_script_or_style(admin: TestClient, gateway: FakeGateway) -> None:
    """The CSP allows no inline code, so a page that had some would break: none has."""
    two = [*gateway.settings.meter, gateway.settings.meter[0].model_copy(update={"name": "shed"})]
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": two}))  # the meter choice
    for path in (*PAGES, "/history?meter=shed"):
        parser = _InlineCode()
        parser.feed(admin.get(path).text)
        assert parser.found == [], f"{path}: {parser.found}"
    assert "data-autosubmit" in admin.get("/history").text


def test_the_api_docs_page_runs_under_the_same_policy_as_every_page(client: TestClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert not re.findall(r"<script>(.*?)</script>", page.text, flags=re.DOTALL)  # no inline
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_cross_site_posts_are_refused_before_any_route(
    admin: TestClient, gateway: FakeGateway
) -> None:
    page = admin.get("/config")
    fields = {"csrf_token": csrf_of(page.text), "web.listen": "0.0.0.0:9999"}
    before = gateway.settings
    response = admin.post("/config", data=fields, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert response.headers["x-frame-options"] == "DENY"
    assert gateway.settings == before
    logout = admin.post("/logout", data=fields, headers={"Sec-Fetch-Site": "cross-site"})
    assert logout.status_code == 403
    assert admin.get("/config").status_code == 200  # still logged in
    # The same request from the gateway's own page goes through.
    same = admin.post(
        "/logout", data=fields, headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False
    )
    assert same.status_code == 303


# -- client addresses --------------------------------------------------------------------------
def test_forwarded_for_is_ignored_without_trusted_proxies(
    gateway: FakeGateway, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    app = create_app(gateway, data_dir=data_dir, clock=FakeClock())
    with client_at(app, "127.0.0.1") as client:
        codes = [
            wrong_login(client, **{"X-Forwarded-For": f"10.9.8.{n}"})
            for n in range(LOGIN_FAILURES_ALLOWED + 1)
        ]
    assert codes == [401] * LOGIN_FAILURES_ALLOWED + [429]
    # The log names the flood once, with the address the gateway sees.
    held = [r.getMessage() for r in caplog.records if "wrong passwords" in r.getMessage()]
    assert held == [
        "login: too many wrong passwords (per address); client 127.0.0.1, the next try waits 60 s"
    ]


def test_a_trusted_proxy_names_the_client(gateway: FakeGateway, data_dir: Path) -> None:
    with_web(gateway, trusted_proxies=("127.0.0.1", "fd00::/8"))
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    app = create_app(gateway, data_dir=data_dir, clock=FakeClock())
    with client_at(app, "127.0.0.1") as proxy:
        # The client forges the left part; the proxy appends what it saw (10.0.0.7).
        for n in range(LOGIN_FAILURES_ALLOWED):
            forged = {"X-Forwarded-For": f"192.0.2.{n}, 10.0.0.7"}
            assert wrong_login(proxy, **forged) == 401
        assert wrong_login(proxy, **{"X-Forwarded-For": "192.0.2.99, 10.0.0.7"}) == 429
        assert wrong_login(proxy, **{"X-Forwarded-For": "10.0.0.8"}) == 401  # someone else
        # Behind a chain of trusted proxies, the nearest untrusted hop is the client.
        assert wrong_login(proxy, **{"X-Forwarded-For": "10.0.0.7, fd00::1"}) == 429
        https = right_login(proxy, **{"X-Forwarded-For": "10.0.0.9", "X-Forwarded-Proto": "https"})
        assert https.status_code == 303
        assert "Secure" in https.headers["set-cookie"]
    with client_at(app, "192.0.2.50") as stranger:  # not a proxy: its headers mean nothing
        for _ in range(LOGIN_FAILURES_ALLOWED):
            assert wrong_login(stranger, **{"X-Forwarded-For": "10.0.0.10"}) == 401
        assert wrong_login(stranger, **{"X-Forwarded-For": "10.0.0.11"}) == 429
        plain = right_login(stranger, **{"X-Forwarded-Proto": "https"})
        assert plain.status_code == 429


def test_the_trusted_proxies_setting_is_validated() -> None:
    from mepgate.config import WebConfig  # noqa: PLC0415

    assert WebConfig(trusted_proxies="127.0.0.1, 10.0.0.0/8").trusted_proxies == (  # type: ignore[arg-type]
        "127.0.0.1",
        "10.0.0.0/8",
    )
    with pytest.raises(ValueError, match="IP addresses or networks"):
        WebConfig(trusted_proxies=("proxy.local",))


# -- login limits ---------------------------------------------------------------------------------
def test_the_address_limit_backs_off(gateway: FakeGateway, data_dir: Path) -> None:
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    clock = FakeClock()
    app = create_app(gateway, data_dir=data_dir, clock=clock)
    with client_at(app, "192.0.2.1") as client:
        for _ in range(LOGIN_FAILURES_ALLOWED):
            assert wrong_login(client) == 401
        assert wrong_login(client) == 429
        clock.now += ADDRESS_BACKOFF.base + 1
        assert wrong_login(client) == 401  # one more try, then twice as long a wait
        token = csrf_of(client.get("/login").text)
        blocked = client.post("/login", data={"csrf_token": token, "password": ADMIN_PASSWORD})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > ADDRESS_BACKOFF.base
        clock.now += ADDRESS_BACKOFF.base + 1
        assert right_login(client).status_code == 429
        clock.now += ADDRESS_BACKOFF.base
        assert right_login(client).status_code == 303


def test_guesses_from_many_addresses_are_limited_per_account(
    gateway: FakeGateway, data_dir: Path
) -> None:
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    clock = FakeClock()
    app = create_app(gateway, data_dir=data_dir, clock=clock)
    codes = []
    for n in range(ACCOUNT_BACKOFF.free + 3):
        with client_at(app, f"2001:db8::{n + 1:x}") as client:  # a new address each time
            codes.append(wrong_login(client))
    assert codes[: ACCOUNT_BACKOFF.free] == [401] * ACCOUNT_BACKOFF.free
    assert set(codes[ACCOUNT_BACKOFF.free :]) == {429}
    with client_at(app, "2001:db8::ffff") as fresh:
        refused = right_login(fresh)
        assert refused.status_code == 429
        assert "for this account" in refused.text
        clock.now += ACCOUNT_BACKOFF.wait(ACCOUNT_BACKOFF.free) + 1
        assert right_login(fresh).status_code == 303


def test_a_flood_through_a_tunnel_does_not_lock_the_admin_out(
    gateway: FakeGateway, data_dir: Path
) -> None:
    """Behind an SSH tunnel every client is 127.0.0.1: the admin's browser, which logged in
    here before, keeps getting in while an attacker on the same address is held back."""
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    app = create_app(gateway, data_dir=data_dir, clock=FakeClock())
    with client_at(app, "127.0.0.1") as admin_browser, client_at(app, "127.0.0.1") as attacker:
        first = right_login(admin_browser)
        assert first.status_code == 303
        assert admin_browser.cookies.get(DEVICE_COOKIE)
        assert "Path=/login" in first.headers["set-cookie"] or any(
            "path=/login" in c.lower() for c in first.headers.get_list("set-cookie")
        )
        admin_browser.post("/logout", data={"csrf_token": csrf_of(admin_browser.get("/").text)})
        for _ in range(ACCOUNT_BACKOFF.free + 5):
            wrong_login(attacker)
        assert wrong_login(attacker) == 429
        assert right_login(attacker).status_code == 429
        assert right_login(admin_browser).status_code == 303
        # A forged device cookie is no device: the attacker stays limited.
        attacker.cookies.set(DEVICE_COOKIE, "forged.cookie", path="/login")
        assert right_login(attacker).status_code == 429


def test_a_stolen_device_cookie_gives_few_tries_and_dies_with_the_password(
    admin: TestClient, data_dir: Path
) -> None:
    device = admin.cookies.get(DEVICE_COOKIE)
    assert device
    for _ in range(LOGIN_FAILURES_ALLOWED):
        assert wrong_login(admin) == 401
    assert wrong_login(admin) == 429
    AdminPassword(data_dir).set("a brand new password")
    admin.cookies.set(DEVICE_COOKIE, device, path="/login")
    # Now an unknown browser: the address has its own count (none so far).
    assert right_login(admin).status_code == 401


def test_concurrent_guesses_cannot_slip_past_the_limit(
    gateway: FakeGateway, data_dir: Path
) -> None:
    """Each attempt is counted before its (slow, threaded) password check."""
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    app = create_app(gateway, data_dir=data_dir, clock=FakeClock())

    async def flood() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            token = csrf_of((await client.get("/login")).text)

            async def guess(n: int) -> int:
                data = {"csrf_token": token, "password": f"guess {n}"}
                return (await client.post("/login", data=data)).status_code

            return await asyncio.gather(*(guess(n) for n in range(40)))

    codes = asyncio.run(flood())
    assert codes.count(401) == LOGIN_FAILURES_ALLOWED
    assert codes.count(429) == 40 - LOGIN_FAILURES_ALLOWED


# -- the setup token ------------------------------------------------------------------------------
def setup_fields(page: str, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": csrf_of(page),
        "password": "a fine password",
        "password_repeat": "a fine password",
        "meter_name": "house",
        "meter_port": "tcp://127.0.0.1:7777",
        "meter_key": TEST_KEY,
        **extra,
    }


def printed_setup_link(caplog: pytest.LogCaptureFixture) -> str:
    links: list[str] = re.findall(r"http://\S+/setup\?token=\S+", caplog.text)
    assert links, "no setup link in the log"
    return links[-1]


@pytest.fixture
def new_gateway(gateway: FakeGateway) -> FakeGateway:
    """A gateway with no admin password and no meter, reachable from the network."""
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": []}))
    with_web(gateway, listen="0.0.0.0:8080")
    return gateway


def test_setup_from_the_network_needs_the_token_from_the_log(
    new_gateway: FakeGateway, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    app = create_app(new_gateway, data_dir=data_dir)
    link = printed_setup_link(caplog)
    token = link.rpartition("token=")[2]
    with client_at(app, "192.0.2.66") as stranger:
        page = stranger.get("/setup")
        assert 'name="setup_token"' in page.text
        assert token not in page.text
        for guess in ("", "guess", token[:-1]):
            response = stranger.post("/setup", data=setup_fields(page.text, setup_token=guess))
            assert response.status_code == 403
            assert "Setup token" in response.text
        assert not AdminPassword(data_dir).is_set
        assert new_gateway.settings.meter == []
    with client_at(app, "192.0.2.10") as owner:
        page = owner.get(link.partition("8080")[2])  # the printed link fills the token in
        assert f'value="{token}"' in page.text
        done = owner.post(
            "/setup", data=setup_fields(page.text, setup_token=token), follow_redirects=False
        )
        assert done.status_code == 303, done.text
    assert AdminPassword(data_dir).check("a fine password")
    assert not app.state.web.auth.setup_token_ok(token)  # used up


def test_setup_on_loopback_needs_no_token_unless_through_a_proxy(
    gateway: FakeGateway, data_dir: Path
) -> None:
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": []}))
    app = create_app(gateway, data_dir=data_dir)  # listens on 127.0.0.1 (the default)
    with client_at(app, "127.0.0.1") as client:
        page = client.get("/setup")
        assert 'name="setup_token"' not in page.text
        proxied = {"X-Forwarded-For": "192.0.2.66"}
        via_proxy = client.post("/setup", data=setup_fields(page.text), headers=proxied)
        assert via_proxy.status_code == 403
        assert 'name="setup_token"' in client.get("/setup", headers=proxied).text
        assert not AdminPassword(data_dir).is_set
        done = client.post("/setup", data=setup_fields(page.text), follow_redirects=False)
        assert done.status_code == 303


def test_the_log_names_the_setup_link_only_while_setup_is_open(
    gateway: FakeGateway, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with_web(gateway, listen="192.0.2.5:8123")
    create_app(gateway, data_dir=data_dir)
    assert printed_setup_link(caplog).startswith("http://192.0.2.5:8123/setup?token=")
    caplog.clear()
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    create_app(gateway, data_dir=data_dir)
    assert "token=" not in caplog.text


def test_login_still_works_for_the_admin_after_logging_in_once(admin: TestClient) -> None:
    """The admin fixture logged in: it holds a device cookie for /login only."""
    cookie = next(c for c in admin.cookies.jar if c.name == DEVICE_COOKIE)
    assert cookie.path == "/login"
    admin.post("/logout", data={"csrf_token": csrf_of(admin.get("/config").text)})
    log_in(admin)


def test_the_setup_link_is_printed_once_and_again_when_setup_reopens(
    new_gateway: FakeGateway, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    app = create_app(new_gateway, data_dir=data_dir)
    assert "token=" not in caplog.text  # set up: no token
    with client_at(app, "192.0.2.66") as client:
        (data_dir / "admin-password").unlink()  # a forgotten password (docs/install.md)
        page = client.get("/setup")
        assert 'name="setup_token"' in page.text
        link = printed_setup_link(caplog)
        for _ in range(3):  # failed tries do not fill the log
            assert client.post("/setup", data=setup_fields(page.text)).status_code == 403
        assert caplog.text.count("/setup?token=") == 1
        token = link.rpartition("token=")[2]
        done = client.post(
            "/setup", data=setup_fields(page.text, setup_token=token), follow_redirects=False
        )
        assert done.status_code == 303
