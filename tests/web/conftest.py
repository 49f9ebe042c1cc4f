"""Web fixtures: the app around the tests' :class:`~tests.support.gateway.FakeGateway`
(:func:`~.support.web_gateway`) on SQLite and PostgreSQL.

``store_url`` (tests/conftest.py) runs a test on both engines.  ``gateway`` has two days of
history and one live reading; ``client`` is a TestClient of the app with the admin password set
(:data:`ADMIN_PASSWORD`) and nobody logged in; ``admin`` is the same client logged in.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..support.gateway import FakeGateway
from .support import HISTORY_STEP_S, default_settings, web_gateway

ADMIN_PASSWORD = "correct horse battery staple"
TEST_KEY = "Aa1Bb2Cc3Dd4Ee5Ff6Gg"  # 20 characters, as a grid company hands them out


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mepgate.db"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def gateway(store_url: str, data_dir: Path) -> Iterator[FakeGateway]:
    gw = web_gateway(
        default_settings(store_url), store_url=store_url, config_path=data_dir / "mepgate.toml"
    )
    asyncio.run(gw.fill_history(HISTORY_STEP_S))
    reading = gw.publish_now()
    asyncio.run(gw.store.ingest([reading]))
    yield gw
    asyncio.run(gw.close())


@pytest.fixture
def client(gateway: FakeGateway, data_dir: Path) -> Iterator[TestClient]:
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    with TestClient(create_app(gateway, data_dir=data_dir)) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match[1]


def log_in(client: TestClient, password: str = ADMIN_PASSWORD) -> None:
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"csrf_token": token, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    log_in(client)
    return client
