"""The history page's "Billing self-reads" section and ``/api/v1/self-reads`` on a real store
(SQLite and PostgreSQL): the meter's self-reads beside the gateway's energy per billing period,
a gap in the gateway's readings across a self-read flagged as a mismatch in words."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..support.gateway import FakeGateway
from ..support.self_reads import BillingHistory, billing_history
from .conftest import ADMIN_PASSWORD
from .support import default_settings, web_gateway


@pytest.fixture(scope="module")
def history() -> BillingHistory:
    return billing_history("house")


@pytest.fixture
def billing_gateway(store_url: str, data_dir: Path) -> Iterator[FakeGateway]:
    gw = web_gateway(
        default_settings(store_url), store_url=store_url, config_path=data_dir / "mepgate.toml"
    )
    yield gw
    asyncio.run(gw.close())


@pytest.fixture
def page(billing_gateway: FakeGateway, data_dir: Path) -> Iterator[TestClient]:
    AdminPassword(data_dir).set(ADMIN_PASSWORD)
    with TestClient(create_app(billing_gateway, data_dir=data_dir)) as test_client:
        yield test_client


def fill(gateway: FakeGateway, history: BillingHistory, *, gap: bool) -> dt.datetime:
    boundary = history.truths[1].meter_time
    readings = (
        history.without(boundary - dt.timedelta(hours=6), boundary + dt.timedelta(hours=1))
        if gap
        else history.readings
    )
    asyncio.run(gateway.store.ingest(readings))
    asyncio.run(gateway.store.add_self_reads(history.self_reads("house")))
    return boundary


def test_the_page_without_self_reads_says_so(page: TestClient) -> None:
    text = page.get("/history").text
    assert "Billing self-reads" in text
    assert "No self-read has been read from this meter yet" in text
    body = page.get("/api/v1/self-reads").json()
    assert body["self_reads"] == []
    assert body["periods"] == []
    assert body["tolerance"] == {"wh": 1000.0, "fraction": 0.005, "boundary_gap_s": 900.0}


def test_self_reads_and_agreeing_periods_on_page_and_api(
    page: TestClient, billing_gateway: FakeGateway, history: BillingHistory
) -> None:
    fill(billing_gateway, history, gap=False)
    body = page.get("/api/v1/self-reads", params={"meter": "house"}).json()
    assert [r["sequence"] for r in body["self_reads"]] == [t.sequence for t in history.truths]
    for got, truth in zip(body["self_reads"], history.truths, strict=True):
        assert got["forward_active_energy_wh"] == truth.forward_active_energy_wh
        assert got["reverse_active_energy_wh"] == truth.reverse_active_energy_wh
        assert got["tier_forward_active_energy_wh"] == list(truth.tier_forward_active_energy_wh)
        assert got["local_time"] == truth.local_time.isoformat()
    assert [p["verdict"] for p in body["periods"]] == ["agrees", "agrees"]
    text = html.unescape(page.get("/history").text)
    assert 'id="billing-periods"' in text
    assert 'data-verdict="agrees"' in text
    assert "billing-flagged" not in text
    first = history.truths[0]
    row = text.split(f'data-sequence="{first.sequence}"', 1)[1].split("</tr>", 1)[0]
    assert "2026-06-30 00:00" in row  # the meter's local stamp
    kwh = f"{first.forward_active_energy_wh / 1000:,.3f}".replace(",", "\u2009")
    assert kwh in row


def test_a_gap_across_a_self_read_is_flagged_on_page_and_api(
    page: TestClient, billing_gateway: FakeGateway, history: BillingHistory
) -> None:
    fill(billing_gateway, history, gap=True)
    periods = page.get("/api/v1/self-reads").json()["periods"]
    assert [p["verdict"] for p in periods] == ["mismatch", "mismatch"]
    assert periods[0]["end_boundary"]["gap"] is True
    assert periods[0]["flagged"] is True
    assert (
        "no readings between 2026-06-30 16:59 UTC and 2026-07-01 00:00 UTC" in periods[0]["words"]
    )
    text = html.unescape(page.get("/history?meter=house").text)
    assert "2 billing periods flagged below." in text
    assert text.count('data-verdict="mismatch"') == 2
    assert "Mismatch</strong>: mismatch: import differs by" in text
    assert "what the grid company bills" in text


def test_an_unknown_meter_is_404(page: TestClient) -> None:
    assert page.get("/api/v1/self-reads", params={"meter": "nobody"}).status_code == 404
