"""Auth through the real app: first-run setup, login/logout, CSRF, login limits, access rules."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mepgate.config import MeterConfig, load_settings
from mepgate.web import create_app
from mepgate.web.auth import (
    ADDRESS_BACKOFF,
    LOGIN_FAILURES_ALLOWED,
    SESSION_COOKIE,
    AdminPassword,
    hash_password,
    verify_password,
)

from ..support.gateway import FakeGateway
from .conftest import ADMIN_PASSWORD, TEST_KEY, csrf_of, log_in
from .support import reconfigure


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """Auth does not depend on the engine: SQLite only here."""
    return sqlite_url


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_scrypt_hash_verifies_and_salts() -> None:
    one, two = hash_password("hunter22"), hash_password("hunter22")
    assert one != two
    assert one.startswith("scrypt$16384$8$1$")
    assert verify_password("hunter22", one)
    assert not verify_password("hunter23", one)
    assert not verify_password("hunter22", "garbage")


def test_first_run_setup_writes_config_key_file_and_password(
    gateway: FakeGateway, data_dir: Path
) -> None:
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": []}))  # a brand new gateway
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        page = client.get("/", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/setup"
        assert client.get("/api/v1/health").json()["status"] == "setup"
        form = client.get("/setup")
        token = csrf_of(form.text)
        fields = {
            "csrf_token": token,
            "password": "a fine password",
            "password_repeat": "a fine password",
            "meter_name": "house",
            "meter_port": "tcp://127.0.0.1:7777",
            "meter_key": TEST_KEY,
        }
        bad = client.post("/setup", data={**fields, "password_repeat": "other"})
        assert bad.status_code == 422
        assert "differ" in bad.text
        assert TEST_KEY not in bad.text
        done = client.post("/setup", data=fields, follow_redirects=False)
        assert done.status_code == 303
        assert client.get("/config").status_code == 200  # logged in by the setup
        assert client.get("/setup", follow_redirects=False).status_code == 303
        assert client.get("/api/v1/health").json()["admin_password_set"] is True
    password_file = data_dir / "admin-password"
    key_file = data_dir / "house.key"
    for path in (password_file, key_file, gateway.config_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert key_file.read_text().strip() == TEST_KEY
    assert AdminPassword(data_dir).check("a fine password")
    saved = load_settings(gateway.config_path, env={})
    assert saved.meter[0].key_file == key_file
    assert TEST_KEY not in gateway.config_path.read_text()


def test_login_logout_and_session_cookie(client: TestClient) -> None:
    assert client.get("/config", follow_redirects=False).headers["location"] == (
        "/login?next=/config"
    )
    token = csrf_of(client.get("/login").text)
    wrong = client.post("/login", data={"csrf_token": token, "password": "nope"})
    assert wrong.status_code == 401
    response = client.post(
        "/login",
        data={"csrf_token": token, "password": ADMIN_PASSWORD, "next": "/config"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/config"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain http on localhost
    config = client.get("/config")
    assert config.status_code == 200
    logout = client.post(
        "/logout", data={"csrf_token": csrf_of(config.text)}, follow_redirects=False
    )
    assert logout.status_code == 303
    assert client.get("/config", follow_redirects=False).status_code == 303


def test_secure_cookie_behind_https(gateway: FakeGateway, data_dir: Path) -> None:
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    app = create_app(gateway, data_dir=data_dir)
    with TestClient(app, base_url="https://gateway.local") as client:
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login",
            data={"csrf_token": token, "password": ADMIN_PASSWORD},
            follow_redirects=False,
        )
        assert "Secure" in response.headers["set-cookie"]


def test_login_redirect_stays_on_this_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login",
            data={"csrf_token": token, "password": ADMIN_PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"


def test_a_copied_cookie_stops_working_after_logout(client: TestClient) -> None:
    log_in(client)
    cookie = client.cookies[SESSION_COOKIE]
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/config").text)})
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/config", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_forms_without_the_right_csrf_token_are_refused(
    admin: TestClient, gateway: FakeGateway, token: str | None
) -> None:
    data = {"web.listen": "0.0.0.0:9999"}
    if token is not None:
        data["csrf_token"] = token
    before = gateway.settings
    response = admin.post("/config", data=data)
    assert response.status_code == 403
    assert "security token" in response.text
    assert gateway.settings == before
    console = admin.post("/console", data={**data, "meter": "house", "request_hex": "300001"})
    assert console.status_code == 403
    assert gateway.console_requests == []
    logout = admin.post("/logout", data=data)
    assert logout.status_code == 403
    assert admin.get("/config").status_code == 200  # still logged in


def test_login_itself_needs_the_csrf_token(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"password": ADMIN_PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/config", follow_redirects=False).status_code == 303


def test_login_rate_limit_per_client(gateway: FakeGateway, data_dir: Path) -> None:
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    clock = FakeClock()
    with TestClient(create_app(gateway, data_dir=data_dir, clock=clock)) as client:
        token = csrf_of(client.get("/login").text)
        for _ in range(LOGIN_FAILURES_ALLOWED):
            assert (
                client.post("/login", data={"csrf_token": token, "password": "x"}).status_code
                == 401
            )
        blocked = client.post("/login", data={"csrf_token": token, "password": ADMIN_PASSWORD})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        clock.now += ADDRESS_BACKOFF.base + 1
        ok = client.post(
            "/login",
            data={"csrf_token": token, "password": ADMIN_PASSWORD},
            follow_redirects=False,
        )
        assert ok.status_code == 303


def test_private_dashboard_needs_login(gateway: FakeGateway, data_dir: Path) -> None:
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    reconfigure(
        gateway,
        gateway.settings.model_copy(
            update={"web": gateway.settings.web.model_copy(update={"public_dashboard": False})}
        ),
    )
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        for path in ("/api/v1/reading", "/api/v1/history", "/api/v1/meter", "/getDashDataWS"):
            assert client.get(path).status_code == 401, path
        assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
        assert client.get("/api/v1/health").status_code == 200
        log_in(client)
        assert client.get("/api/v1/reading").status_code == 200
        assert client.get("/").status_code == 200


def test_public_dashboard_is_open_but_admin_pages_are_not(client: TestClient) -> None:
    for path in ("/", "/history", "/meter"):
        assert client.get(path).status_code == 200, path
    for path in ("/config", "/console"):
        assert client.get(path, follow_redirects=False).status_code == 303, path
    assert client.post("/config", data={}).status_code in (303, 401)


def test_demo_gateway_shows_values_before_setup_and_keeps_the_simulator_key(
    gateway: FakeGateway, data_dir: Path
) -> None:
    """``mepgate demo``: a simulated meter is configured but no admin password is set yet."""
    demo = MeterConfig(name="demo", port="sim:gen4-3phase")
    reconfigure(gateway, gateway.settings.model_copy(update={"meter": [demo]}))
    with TestClient(create_app(gateway, data_dir=data_dir)) as client:
        assert client.get("/").status_code == 200
        assert client.get("/api/v1/health").json()["admin_password_set"] is False
        assert client.get("/config", follow_redirects=False).headers["location"] == "/setup"
        page = client.get("/setup")
        assert "leave blank to keep the configured key" in page.text
        done = client.post(
            "/setup",
            data={
                "csrf_token": csrf_of(page.text),
                "password": "a fine password",
                "password_repeat": "a fine password",
                "meter_name": "demo",
                "meter_port": "sim:gen4-3phase",
                "meter_key": "",
            },
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
    assert gateway.settings.meter == [demo]
    assert not (data_dir / "demo.key").exists()
