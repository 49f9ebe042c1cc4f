"""Each meter's state, in words, in ``/api/v1/health``, the meter API, the dashboard and the meter
page (:mod:`mepgate.web.meter_state`): a stale reading, readings rejected while nothing is
stored, a meter that stopped on a wrong key, a meter clock that is off.

The gateway is the tests' :class:`FakeGateway` with the statuses a poller reports; its hub holds
no reading, so each status's ``last_reading_at`` is what the API sees.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mepgate.config import MeterConfig, Settings
from mepgate.service.view import LinkFailure, MeterStatus
from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..support.gateway import FakeGateway, SimMeter
from .conftest import ADMIN_PASSWORD, log_in

NOW = dt.datetime(2025, 3, 1, 11, 0, tzinfo=dt.UTC)
REJECTION = "energy decreased: forward 1 000.0 Wh after 2 000.0 Wh"
WRONG_KEY = LinkFailure(
    at=NOW,
    message="the meter answered 0x0B (authentication failure) twice",
    diagnosis="wrong-key",
    advice="authentication failure (0x0B): the meter rejects the key; check the MBK",
)


def settings(sqlite_url: str, *meters: tuple[str, float]) -> Settings:
    return Settings.model_validate(
        {
            "meter": [
                MeterConfig(name=name, port="tcp://127.0.0.1:7777", poll_interval=interval)
                for name, interval in meters
            ],
            "storage": {"url": sqlite_url, "timezone": "Europe/Copenhagen"},
        }
    )


def status(name: str = "house", **fields: Any) -> MeterStatus:
    base = SimMeter.build(name).status(state="polling", readings_stored=10)
    return dataclasses.replace(base, **fields)


@pytest.fixture
def app_for(sqlite_url: str, data_dir: Path) -> Iterator[Any]:
    """``app_for(statuses, *meters)``: a TestClient of the app over those meter statuses."""
    clients: list[TestClient] = []
    gateways: list[FakeGateway] = []
    AdminPassword(data_dir).set(ADMIN_PASSWORD)

    def make(statuses: list[MeterStatus], *meters: tuple[str, float]) -> TestClient:
        gateway = FakeGateway(settings(sqlite_url, *meters), statuses, store_url=sqlite_url)
        gateways.append(gateway)
        client = TestClient(create_app(gateway, data_dir=data_dir))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
    for gateway in gateways:
        asyncio.run(gateway.close())


def health(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/health").json()
    return body


def test_health_is_degraded_when_the_newest_reading_is_older_than_three_poll_intervals(
    app_for: Any,
) -> None:
    fresh = status(last_reading_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=4))
    client = app_for([fresh], ("house", 2.0))
    body = health(client)
    assert body["status"] == "ok"
    assert body["meters"][0]["problems"] == []
    assert body["meters"][0]["stale_after_s"] == 6.0
    old = status(last_reading_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=40))
    body = health(app_for([old], ("house", 2.0)))
    assert body["status"] == "degraded"
    [problem] = body["meters"][0]["problems"]
    assert re.search(r"newest reading is 4\d s old, more than 3 poll intervals \(6 s\)", problem)
    assert body["meters"][0]["last_reading_age_s"] >= 40


def test_health_is_not_ok_while_readings_come_but_none_is_stored(app_for: Any) -> None:
    unstored = status(last_reading_at=dt.datetime.now(dt.UTC), readings_stored=0)
    body = health(app_for([unstored], ("house", 2.0)))
    assert body["status"] == "degraded"
    assert body["meters"][0]["problems"] == ["readings come, but none is stored yet"]


def test_health_is_not_ok_while_readings_are_rejected_and_nothing_is_stored(
    app_for: Any,
) -> None:
    rejecting = status(
        readings_stored=0,
        readings_rejected=42,
        rejected_in_a_row=42,
        last_rejection=REJECTION,
        rejection_reasons={"energy-decreased": 42},
    )
    client = app_for([rejecting], ("house", 1.0))
    body = health(client)
    assert body["status"] == "degraded"
    meter = body["meters"][0]
    assert meter["readings_rejected"] == 42
    assert meter["rejected_in_a_row"] == 42
    assert meter["last_rejection"] == REJECTION
    assert meter["problems"] == [
        "no reading yet",
        f"42 readings rejected in a row, the newest: {REJECTION}",
    ]
    dashboard = client.get("/").text
    assert "42 readings rejected (42 in a row); the latest: " in dashboard
    assert REJECTION in dashboard


def test_each_meter_says_why_it_is_not_read_and_where_to_fix_it(app_for: Any) -> None:
    fine = status("house", last_reading_at=dt.datetime.now(dt.UTC))
    stopped = status(
        "garage", state="stopped", connected=False, readings_stored=0, last_errors=(WRONG_KEY,)
    )
    client = app_for([fine, stopped], ("house", 1.0), ("garage", 1.0))
    body = health(client)
    assert body["status"] == "degraded"
    assert body["meters"][0]["problems"] == []
    assert body["meters"][1]["problems"][0] == f"stopped: Wrong key ({WRONG_KEY.message})"
    [garage] = [m for m in client.get("/api/v1/meter").json() if m["name"] == "garage"]
    assert garage["diagnosis"]["code"] == "wrong-key"
    assert garage["diagnosis"]["fix_href"] == "/config#field-meter-1-key"
    assert garage["diagnosis"]["guide_section"] == "Authentication failure (0x0B)"
    page = client.get("/").text
    section = page[page.index('data-meter="garage"') :]
    assert 'data-diagnosis="wrong-key"' in section
    assert "Wrong key" in section
    assert WRONG_KEY.advice in section
    assert 'href="/config#field-meter-1-key"' in section
    assert "waiting for the first reading" in section
    meter_page = client.get("/meter").text
    assert 'href="/config#field-meter-1-key" data-fix' in meter_page
    # The config page has the field the link points to.
    log_in(client)
    assert 'id="field-meter-1-key"' in client.get("/config").text


def test_troubleshooting_sections_named_exist_in_the_guide() -> None:
    from mepgate.web import meter_state  # noqa: PLC0415

    guide = (Path(__file__).parents[2] / meter_state.TROUBLESHOOTING_GUIDE).read_text()
    headings = set(re.findall(r"^## (.+)$", guide, re.MULTILINE))
    named = {section for _, section in meter_state._DIAGNOSES.values() if section}
    assert named <= headings, named - headings


def test_meter_clock_in_local_time_with_its_offset_and_a_warning_past_a_minute(
    app_for: Any,
) -> None:
    clock = dt.datetime(2025, 3, 1, 11, 0, 5, 123456, tzinfo=dt.UTC)
    now = dt.datetime.now(dt.UTC)
    near = status(meter_clock=clock, clock_offset_s=2.6, last_reading_at=now)
    page = app_for([near], ("house", 1.0)).get("/meter").text
    assert "2025-03-01 12:00:05 CET" in page  # Europe/Copenhagen, to the second
    assert "123456" not in page
    assert "the meter's own clock" in page
    assert "3 s ahead of the gateway's clock" in page
    assert "more than 60 s" not in page
    far = status(meter_clock=clock, clock_offset_s=-754.0, last_reading_at=now)
    client = app_for([far], ("house", 1.0))
    page = client.get("/meter").text
    assert "12 min 34 s behind the gateway's clock" in page
    assert "more than 60 s" in page
    body = health(client)
    assert body["status"] == "ok"  # a clock off is worth a warning, the readings still come
    assert body["meters"][0]["clock_offset_s"] == -754.0
    [warning] = body["meters"][0]["warnings"]
    assert warning == "the meter's clock is 12 min 34 s behind the gateway's"
    assert client.get("/api/v1/meter/house").json()["clock_offset_s"] == -754.0
