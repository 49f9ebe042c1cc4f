"""Energy per TOU tier, per hour and per day, and its cost at the configured ``[prices]``:
``/api/v1/energy/{meter}``, ``/api/v1/energy/{meter}/periods``, the dashboard's tiles and the
config page's prices section, on SQLite and PostgreSQL (the web fixtures' two days of the
simulator's readings, tier registers included)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mepgate.config import MeterConfig, PricesConfig, load_settings
from mepgate.web.formatting import num

from ..support.gateway import FakeGateway
from .forms import form_fields
from .support import reconfigure

PRICES = {"currency": "DKK", "import": 2.0, "tier1": 1.5, "tier2": 3.25, "export": 0.75}


def with_prices(gateway: FakeGateway, prices: dict[str, Any] | None = PRICES) -> None:
    update = {"prices": None if prices is None else PricesConfig.model_validate(prices)}
    reconfigure(gateway, gateway.settings.model_copy(update=update))


def expected_cost(tiers: list[dict[str, Any]], when: str, export_wh: float) -> dict[str, float]:
    """The cost of ``when`` ("today"/"month") from the tiers' energy, worked out here."""
    prices = {1: 1.5, 2: 3.25, 3: 2.0, 4: 2.0}
    imported = sum(t[f"{when}_import_wh"] / 1000 * prices[t["tier"]] for t in tiers)
    export = export_wh / 1000 * 0.75
    return {"import": imported, "export": export, "net": imported - export}


def test_energy_has_tiers_that_add_up_and_no_cost_without_prices(client: TestClient) -> None:
    body = client.get("/api/v1/energy/house").json()
    assert body["cost"] is None
    tiers = body["tiers"]
    assert [t["tier"] for t in tiers] == sorted(t["tier"] for t in tiers)
    assert tiers, "the simulator's meter has TOU tiers"
    for when in ("today", "month"):
        for direction in ("import", "export"):
            total = body[f"{when}_{direction}_wh"]
            by_tier = sum(t[f"{when}_{direction}_wh"] for t in tiers)
            assert by_tier == pytest.approx(total, abs=len(tiers)), (when, direction)
    assert body["today_import_wh"] > 0
    assert all(t["price_per_kwh"] is None and t["today_cost"] is None for t in tiers)


def test_cost_today_and_this_month_from_the_configured_prices(
    client: TestClient, gateway: FakeGateway
) -> None:
    with_prices(gateway)
    body = client.get("/api/v1/energy/house").json()
    cost = body["cost"]
    assert cost["currency"] == "DKK"
    tiers = body["tiers"]
    for when, key in (("today", "today"), ("month", "month")):
        want = expected_cost(tiers, key, body[f"{when}_export_wh"])
        assert cost[f"{when}_import"] == pytest.approx(want["import"])
        assert cost[f"{when}_export"] == pytest.approx(want["export"])
        assert cost[f"{when}_net"] == pytest.approx(want["net"])
    by_tier = {t["tier"]: t for t in tiers}
    assert by_tier[1]["price_per_kwh"] == 1.5
    assert by_tier[2]["price_per_kwh"] == 3.25
    if 3 in by_tier:
        assert by_tier[3]["price_per_kwh"] == 2.0  # no price of its own: the import price
    assert by_tier[2]["month_cost"] == pytest.approx(by_tier[2]["month_import_wh"] / 1000 * 3.25)


def test_a_flat_price_prices_the_total_register(client: TestClient, gateway: FakeGateway) -> None:
    with_prices(gateway, {"currency": "EUR", "import": 0.3})
    body = client.get("/api/v1/energy/house").json()
    assert body["cost"]["currency"] == "EUR"
    assert body["cost"]["month_import"] == pytest.approx(body["month_import_wh"] / 1000 * 0.3)
    assert body["cost"]["month_export"] is None  # no export price: nothing earned, not zero
    assert body["cost"]["month_net"] == pytest.approx(body["cost"]["month_import"])


def test_hours_and_days_add_up_to_today_and_this_month(
    client: TestClient, gateway: FakeGateway
) -> None:
    with_prices(gateway, {"currency": "DKK", "import": 2.0, "export": 0.5})
    energy = client.get("/api/v1/energy/house").json()
    hours = client.get("/api/v1/energy/house/periods", params={"period": "hour"}).json()
    assert hours["period"] == "hour"
    assert hours["currency"] == "DKK"
    periods = hours["periods"]
    assert len(periods) == 24  # the default count
    starts = [dt.datetime.fromisoformat(p["start"]) for p in periods]
    assert all(b - a == dt.timedelta(hours=1) for a, b in itertools.pairwise(starts))
    now = dt.datetime.now(dt.UTC)
    assert starts[-1] <= now < dt.datetime.fromisoformat(periods[-1]["end"])
    assert all(p["import_wh"] is not None for p in periods)  # two days of history
    for p in periods:
        assert p["cost"] == pytest.approx(p["import_wh"] / 1000 * 2.0 - p["export_wh"] / 1000 * 0.5)
    since = dt.datetime.fromisoformat(energy["today_since"])
    today = [p for p, start in zip(periods, starts, strict=True) if start >= since]
    # The store's local zone is UTC here: today is at most 24 hours, all of them listed.
    assert sum(p["import_wh"] for p in today) == pytest.approx(energy["today_import_wh"], abs=1)
    assert sum(p["export_wh"] for p in today) == pytest.approx(energy["today_export_wh"], abs=1)
    days = client.get("/api/v1/energy/house/periods?period=day&count=30").json()["periods"]
    assert len(days) == 30
    assert days[0]["import_wh"] is None  # long before the meter was installed
    assert days[-1]["import_wh"] == pytest.approx(energy["today_import_wh"], abs=1)
    month_start = dt.datetime.fromisoformat(energy["month_since"])
    month = [d for d in days if dt.datetime.fromisoformat(d["start"]) >= month_start]
    assert sum(d["import_wh"] or 0 for d in month) == pytest.approx(
        energy["month_import_wh"], abs=1
    )


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("period=hour&count=0", 422),
        ("period=hour&count=961", 422),
        ("period=day&count=401", 422),
        ("period=week", 422),
        ("period=day&count=400", 200),
    ],
)
def test_periods_are_bounded(client: TestClient, query: str, status: int) -> None:
    response = client.get(f"/api/v1/energy/house/periods?{query}")
    assert response.status_code == status, response.text
    if status == 422 and "count=4" in query:
        assert "at most 400 for period=day" in response.text


def test_periods_of_an_unknown_meter_are_404(client: TestClient) -> None:
    assert client.get("/api/v1/energy/nobody/periods").status_code == 404


def test_dashboard_tiles_show_the_apis_tiers_and_costs(
    client: TestClient, gateway: FakeGateway
) -> None:
    with_prices(gateway)
    page = client.get("/").text
    energy = client.get("/api/v1/energy/house").json()
    assert "data-costs" in page
    cost = energy["cost"]
    assert f'data-c="today_net">{num(cost["today_net"], 2)}<' in page
    assert f'data-c="month_net">{num(cost["month_net"], 2)}<' in page
    for tier in energy["tiers"]:
        assert f'data-tier="{tier["tier"]}"' in page
        assert f'data-t="month_import_wh">{num(tier["month_import_wh"], 1, 0.001)}<' in page
        assert f'data-t="month_cost">{num(tier["month_cost"], 2)}<' in page
    with_prices(gateway, None)
    page = client.get("/").text
    assert "data-costs" not in page
    assert 'data-t="month_import_wh"' in page  # the tiers without prices


def test_config_page_sets_and_clears_the_prices(admin: TestClient, gateway: FakeGateway) -> None:
    fields = form_fields(admin.get("/config").text, "config-form")
    assert fields["prices.tier1"] == ""
    fields.update({"prices.currency": "EUR", "prices.tier1": "0.25", "prices.export": "0.08"})
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    prices = gateway.settings.prices
    assert prices is not None
    assert (prices.currency, prices.tier1, prices.export, prices.import_price) == (
        "EUR",
        0.25,
        0.08,
        None,
    )
    saved = load_settings(gateway.config_path, env={})
    assert saved.prices == prices
    fields = form_fields(admin.get("/config").text, "config-form")
    assert fields["prices.tier1"] == "0.25"
    fields["prices.tier1"] = "9999"
    response = admin.post("/config", data=fields)
    assert response.status_code == 422
    assert "a price per kWh from -1000 to 1000" in response.text
    fields["prices.tier1"] = ""
    fields["prices.export"] = ""
    assert admin.post("/config", data=fields, follow_redirects=False).status_code == 303
    assert gateway.settings.prices is None  # no price left: no [prices] section


def test_cost_tiles_wait_with_dashes_for_a_meter_without_history(
    client: TestClient, gateway: FakeGateway
) -> None:
    settings = gateway.settings.model_copy(
        update={
            "meter": [MeterConfig(name="fresh", port="tcp://127.0.0.1:7001")],
            "prices": PricesConfig.model_validate(PRICES),
        }
    )
    reconfigure(gateway, settings)
    page = client.get("/").text
    assert 'data-meter="fresh"' in page
    assert 'data-c="today_net">—<' in page  # the stream's first totals fill them in
    assert 'data-c="month_export">—<' in page
    assert "data-tier=" not in page  # no tier known yet
    periods = client.get("/api/v1/energy/fresh/periods?period=day&count=3").json()
    assert [p["import_wh"] for p in periods["periods"]] == [None, None, None]
    assert client.get("/api/v1/energy/fresh").status_code == 404
