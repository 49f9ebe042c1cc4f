"""Web hardening against a real uvicorn: ``mepgate serve`` / ``mepgate demo`` as subprocesses
spoken to in raw HTTP (forged ``X-Forwarded-For``, cross-site form posts, framing headers, the
setup token in the log), and the password check kept off the server's event loop."""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import IO
from urllib.parse import urlencode

import httpx
import pytest

from mepgate.config import load_settings
from mepgate.web import create_app
from mepgate.web.auth import LOGIN_FAILURES_ALLOWED, AdminPassword, hash_password

from ..support.gateway import FakeGateway, free_port
from .conftest import ADMIN_PASSWORD, TEST_KEY, csrf_of
from .support import LiveServer

MEPGATE = str(Path(sys.executable).with_name("mepgate"))
START_TIMEOUT_S = 60.0  # a hang guard: the gateway starts in a few seconds
READY = re.compile(r"dashboard at (http://\S+)|^(http://\S+)$")


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


class Raw:
    """HTTP/1.1 requests with exactly the headers given (plus the cookies received)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = dict(headers or {})
            if self.cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if form is not None:
                body = urlencode(form)
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("set-cookie") or []:
                cookie: SimpleCookie = SimpleCookie()
                cookie.load(header)
                for name, morsel in cookie.items():
                    self.cookies[name] = morsel.value
            return response.status, response.headers, text
        finally:
            connection.close()

    def csrf(self, path: str = "/login") -> str:
        return csrf_of(self.request("GET", path)[2])


class Gateway:
    """``mepgate ARGS`` running, its stderr read on a thread (the log, where the setup link is)."""

    def __init__(self, *args: str, data_dir: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [MEPGATE, *args, "--data-dir", str(data_dir), "--listen", self.listen_address()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("MEPGATE_")},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        for pipe in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()
        self._wait_ready()

    def listen_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.lines.put(line)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no URL announced; log: {''.join(self.log)}"
            with contextlib.suppress(queue.Empty):
                line = self.lines.get(timeout=remaining)
                self.log.append(line)
                if READY.search(line.strip()):
                    return
            assert self.process.poll() is None, f"exited; log: {''.join(self.log)}"

    def log_text(self) -> str:
        with contextlib.suppress(queue.Empty):
            while True:
                self.log.append(self.lines.get_nowait())
        return "".join(self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class NetworkGateway(Gateway):
    def listen_address(self) -> str:
        return f"0.0.0.0:{self.port}"  # reachable from the network: setup needs the token


@contextlib.contextmanager
def running(kind: type[Gateway], *args: str, data_dir: Path) -> Iterator[Gateway]:
    gateway = kind(*args, data_dir=data_dir)
    try:
        yield gateway
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.log_text()


def configured(tmp_path: Path) -> tuple[Path, Path]:
    """An empty configuration file and a data directory with the admin password set."""
    data_dir = tmp_path / "data"
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    config = tmp_path / "mepgate.toml"
    config.write_text('[storage]\ntimezone = "UTC"\n', encoding="utf-8")
    return config, data_dir


def test_serve_sends_the_security_headers(tmp_path: Path) -> None:
    config, data_dir = configured(tmp_path)
    with running(Gateway, "serve", "--config", str(config), data_dir=data_dir) as gateway:
        for path in ("/", "/login", "/api/v1/health", "/static/app.css"):
            status, headers, _ = Raw(gateway.port).request("GET", path)
            assert status == 200, path
            assert headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer"


def test_serve_ignores_forged_forwarded_for(tmp_path: Path) -> None:
    """Rotating ``X-Forwarded-For`` does not make each guess a new client (uvicorn trusts
    it from 127.0.0.1 unless told otherwise)."""
    config, data_dir = configured(tmp_path)
    with running(Gateway, "serve", "--config", str(config), data_dir=data_dir) as gateway:
        raw = Raw(gateway.port)
        token = raw.csrf()
        codes = []
        for n in range(LOGIN_FAILURES_ALLOWED + 3):
            forged = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"203.0.113.{n}"}
            form = {"csrf_token": token, "password": f"guess {n}"}
            codes.append(raw.request("POST", "/login", form, forged)[0])
        assert codes[:LOGIN_FAILURES_ALLOWED] == [401] * LOGIN_FAILURES_ALLOWED
        assert set(codes[LOGIN_FAILURES_ALLOWED:]) == {429}


def test_serve_refuses_cross_site_form_posts(tmp_path: Path) -> None:
    config, data_dir = configured(tmp_path)
    before = config.read_text()
    with running(Gateway, "serve", "--config", str(config), data_dir=data_dir) as gateway:
        raw = Raw(gateway.port)
        form = {"csrf_token": raw.csrf(), "password": ADMIN_PASSWORD}
        assert raw.request("POST", "/login", form)[0] == 303
        token = raw.csrf("/config")
        change = {"csrf_token": token, "web.listen": "0.0.0.0:8080"}
        evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        status, headers, body = raw.request("POST", "/config", change, evil)
        assert status == 403, body
        assert headers["X-Frame-Options"] == "DENY"
        # What a cross-site page can really send: no token (and a browser sends no
        # SameSite=Strict cookie either).
        assert raw.request("POST", "/config", {"web.listen": "0.0.0.0:8080"})[0] == 403
        # The gateway's own form still saves.
        assert raw.request("GET", "/config")[0] == 200
    assert config.read_text() == before
    assert load_settings(config, env={}).web.listen == "127.0.0.1:8080"


def setup_form(token: str, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "password": "a fine password",
        "password_repeat": "a fine password",
        "meter_name": "house",
        "meter_port": "tcp://127.0.0.1:7777",
        "meter_key": TEST_KEY,
        **extra,
    }


def test_serve_on_the_network_prints_a_setup_token_and_needs_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "mepgate.toml"
    with running(NetworkGateway, "serve", "--config", str(config), data_dir=data_dir) as gateway:
        links = re.findall(r"http://\S+/setup\?token=(\S+)", gateway.log_text())
        assert len(links) == 1, gateway.log_text()
        token = links[0]
        raw = Raw(gateway.port)
        status, _, page = raw.request("GET", "/setup")
        assert status == 200
        assert 'name="setup_token"' in page
        form = setup_form(csrf_of(page))
        assert raw.request("POST", "/setup", form)[0] == 403
        assert raw.request("POST", "/setup", {**form, "setup_token": "guess"})[0] == 403
        assert not AdminPassword(data_dir).is_set
        assert not config.exists()
        status, _, page = raw.request("GET", f"/setup?token={token}")
        assert f'value="{token}"' in page
        status, _, body = raw.request("POST", "/setup", {**form, "setup_token": token})
        assert status == 303, body
    assert AdminPassword(data_dir).check("a fine password")
    assert load_settings(config, env={}).meter[0].name == "house"


def test_demo_on_loopback_is_set_up_without_a_token(tmp_path: Path) -> None:
    """``mepgate demo`` listens on 127.0.0.1: its printed URL works, and so does its setup."""
    data_dir = tmp_path / "demo"
    with running(Gateway, "demo", data_dir=data_dir) as gateway:
        raw = Raw(gateway.port)
        assert raw.request("GET", "/")[0] == 200
        status, _, page = raw.request("GET", "/setup")
        assert 'name="setup_token"' not in page
        form = setup_form(
            csrf_of(page), meter_name="demo", meter_port="sim:gen4-3phase", meter_key=""
        )
        status, _, body = raw.request("POST", "/setup", form)
        assert status == 303, body
    assert AdminPassword(data_dir).check("a fine password")


# -- the password check runs off the event loop -------------------------------------------------
@contextlib.asynccontextmanager
async def as_view(gateway: FakeGateway) -> AsyncIterator[object]:
    yield gateway


def test_a_password_check_does_not_hold_up_the_server(gateway: FakeGateway, data_dir: Path) -> None:
    """The admin-password file is a FIFO here, so the check waits until the test writes the
    hash: meanwhile the server (the gateway's one event loop) must go on answering."""
    fifo = data_dir / "admin-password"
    os.mkfifo(fifo, 0o600)
    server = LiveServer(lambda: as_view(gateway), lambda v: create_app(v, data_dir=data_dir))  # type: ignore[arg-type]
    with server, httpx.Client(base_url=server.url, timeout=30) as browser:
        token = csrf_of(browser.get("/login").text)
        outcome: list[int] = []

        def log_in() -> None:
            form = {"csrf_token": token, "password": ADMIN_PASSWORD}
            outcome.append(browser.post("/login", data=form, follow_redirects=False).status_code)

        login = threading.Thread(target=log_in)
        login.start()
        writer = None
        try:
            deadline = time.monotonic() + 20  # hang guard
            while writer is None:  # the check has opened the FIFO once a writer can open it
                try:
                    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    assert time.monotonic() < deadline, "the login never read the password"
                    time.sleep(0.01)
            with httpx.Client(base_url=server.url, timeout=10) as other:
                health = other.get("/api/v1/health")  # while the check is still waiting
            assert health.status_code == 200
            assert login.is_alive()
            assert not outcome
        finally:
            if writer is not None:  # the hash lets the check (and the server) go on
                os.write(writer, hash_password(ADMIN_PASSWORD).encode() + b"\n")
                os.close(writer)
            login.join(40)
        assert outcome == [303]
