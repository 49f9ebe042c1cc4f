"""The console's requests as background jobs, through the real app (TestClient): a quick reply is
shown at once and can be downloaded whole; a slow one leads to its progress page, keeps the
meter busy for other console requests, and ends on the page with its reply; the progress API
and the cancel form are the admin's only, the cancel form needs its CSRF token.

(A real long read, its progress, the live readings beside it and cancel run in the browser
tests and in tests/service/test_console.py.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mepgate.proto import ReadRequest, WriteRequest
from mepgate.service.view import ConsoleReply
from mepgate.simulator.model import model_of
from mepgate.web import create_app
from mepgate.web.auth import AdminPassword
from mepgate.web.pages import console as console_page

from ..support.gateway import FakeGateway
from .conftest import ADMIN_PASSWORD, csrf_of, log_in


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url


def job_of(html: str) -> str:
    match = re.search(r"/console/jobs/([\w-]+)/", html)
    assert match, "the page names no console request"
    return match[1]


def test_a_quick_reply_is_shown_at_once_and_downloads_whole(
    admin: TestClient, gateway: FakeGateway
) -> None:
    token = csrf_of(admin.get("/console").text)
    page = admin.post("/console", data={"csrf_token": token, "meter": "house", "table": "BT28"})
    assert page.status_code == 200
    assert 'id="console-reply"' in page.text
    job = job_of(page.text)
    assert gateway.sim is not None
    table = model_of(gateway.sim.meter).table(0x1C)
    assert table is not None
    data = admin.get(f"/console/jobs/{job}/data")
    assert data.headers["content-type"] == "application/octet-stream"
    assert data.content == table
    assert table.hex() in page.text  # shown whole: fewer bytes than the page's limit
    progress = admin.get(f"/api/v1/console/jobs/{job}").json()
    assert progress["state"] == "done"
    assert progress["meter"] == "house"
    assert admin.get("/api/v1/console/jobs/nonesuch").status_code == 404


def test_the_progress_api_and_the_cancel_form_are_the_admins(
    client: TestClient, admin: TestClient
) -> None:
    token = csrf_of(admin.get("/console").text)
    page = admin.post("/console", data={"csrf_token": token, "meter": "house", "table": "BT01"})
    job = job_of(page.text)
    refused = admin.post(f"/console/jobs/{job}/cancel", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    cancel = admin.post(
        f"/console/jobs/{job}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert cancel.status_code == 303
    assert cancel.headers["location"] == f"/console?job={job}"
    admin.post("/logout", data={"csrf_token": token})
    assert client.get(f"/api/v1/console/jobs/{job}").status_code == 401
    assert client.get(f"/console/jobs/{job}/data", follow_redirects=False).status_code == 303


class HeldGateway(FakeGateway):
    """A gateway whose console answers only when the test releases it."""

    release: asyncio.Event | None = None

    async def console(self, meter: str, request: ReadRequest | WriteRequest) -> ConsoleReply:
        self.release = asyncio.Event()
        await self.release.wait()
        return await super().console(meter, request)


@pytest.fixture
def held(gateway: FakeGateway, data_dir: Path) -> Iterator[tuple[TestClient, HeldGateway]]:
    """A logged-in client of the app around a :class:`HeldGateway` (the same meter)."""
    slow = HeldGateway(gateway.settings, gateway.statuses, sim=gateway.sim)
    slow._store = gateway._store
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    with TestClient(create_app(slow, data_dir=data_dir)) as client:
        log_in(client)
        yield client, slow


def test_a_slow_request_shows_its_progress_page_and_keeps_the_meter_busy(
    held: tuple[TestClient, HeldGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, gateway = held
    monkeypatch.setattr(console_page, "QUICK_REPLY_S", 0.05)
    token = csrf_of(admin.get("/console").text)
    started = admin.post(
        "/console",
        data={"csrf_token": token, "meter": "house", "table": "BT01"},
        follow_redirects=False,
    )
    assert started.status_code == 303
    job = started.headers["location"].removeprefix("/console?job=")
    running = admin.get(f"/console?job={job}").text
    assert 'data-state="running"' in running
    assert 'id="console-cancel"' in running
    busy = admin.post("/console", data={"csrf_token": token, "meter": "house", "table": "BT01"})
    assert busy.status_code == 422
    assert "still running" in busy.text
    assert gateway.release is not None
    assert admin.portal is not None
    admin.portal.call(gateway.release.set)
    done = admin.get(f"/api/v1/console/jobs/{job}").json()
    for _ in range(100):
        if done["state"] != "running":
            break
        done = admin.get(f"/api/v1/console/jobs/{job}").json()
    assert done["state"] == "done"
    page = admin.get(f"/console?job={job}").text
    assert 'id="console-reply"' in page
    assert "ELON" in page
