"""The JSON API against SQLite and PostgreSQL stores, through the real app (TestClient)."""

from __future__ import annotations

import datetime as dt
import importlib.util

from fastapi.testclient import TestClient

from mepgate.outputs.compat import DASH_FIELDS
from mepgate.reading import VALUE_FIELDS

from .support import LocalGateway


def test_reading_latest_per_meter(client: TestClient, gateway: LocalGateway) -> None:
    live = gateway.hub.latest("house")
    assert live is not None
    listing = client.get("/api/v1/reading")
    assert listing.status_code == 200
    [body] = listing.json()
    one = client.get("/api/v1/reading/house").json()
    assert body == one
    assert one["meter"] == "house"
    for name in VALUE_FIELDS:
        assert one[name] == getattr(live, name)
    assert one["net_power_w"] == live.net_power_w
    assert one["net_power_l1_w"] == (live.active_power_import_l1_w or 0) - (
        live.active_power_export_l1_w or 0
    )
    assert client.get("/api/v1/reading/garage").status_code == 404


def test_history_bounded_points_over_any_range(client: TestClient, gateway: LocalGateway) -> None:
    end = gateway.now
    start = end - dt.timedelta(days=2)
    response = client.get(
        "/api/v1/history",
        params={"meter": "house", "start": start.isoformat(), "end": end.isoformat(), "points": 50},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meter"] == "house"
    assert 10 <= len(body["points"]) <= 50
    first = body["points"][0]
    assert first["resolution"] in ("raw", "minute", "hour", "day")
    stats = first["stats"]["voltage_l1_v"]
    assert 200 < stats["min"] <= stats["mean"] <= stats["max"] < 260
    times = [p["t"] for p in body["points"]]
    assert times == sorted(times)
    # Defaults: the first meter, the last 24 hours.
    default = client.get("/api/v1/history").json()
    assert default["meter"] == "house"
    span = dt.datetime.fromisoformat(default["end"]) - dt.datetime.fromisoformat(default["start"])
    assert span == dt.timedelta(days=1)
    assert default["points"]


def test_history_rejects_bad_ranges(client: TestClient) -> None:
    assert client.get("/api/v1/history", params={"points": 0}).status_code == 422
    assert client.get("/api/v1/history", params={"points": 100_000}).status_code == 422
    backwards = {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
    assert client.get("/api/v1/history", params=backwards).status_code == 422
    assert client.get("/api/v1/history", params={"meter": "garage"}).status_code == 404
    assert client.get("/api/v1/history", params={"start": "yesterday"}).status_code == 422


def test_energy_today_and_month(client: TestClient) -> None:
    body = client.get("/api/v1/energy/house").json()
    assert body["today_import_wh"] >= 0
    assert (
        body["month_import_wh"] >= body["today_import_wh"]
        or body["month_since"] > body["today_since"]
    )


def test_meter_and_health(client: TestClient) -> None:
    [meter] = client.get("/api/v1/meter").json()
    assert meter["name"] == "house"
    assert meter["identity"]["manufacturer"] == "ELON"
    assert meter["last_errors"][0]["diagnosis"] == "no-answer"
    assert client.get("/api/v1/meter/house").json() == meter
    assert client.get("/api/v1/meter/garage").status_code == 404
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok"
    assert health["meters"][0]["connected"] is True


def test_get_dash_data_ws_keeps_the_old_firmware_format(
    client: TestClient, gateway: LocalGateway
) -> None:
    live = gateway.hub.latest("house")
    assert live is not None
    body = client.get("/getDashDataWS").json()
    assert body["Fwd_Act_Wh"] == round(live.forward_active_energy_wh)
    assert body["Rev_Act_Wh"] == round(live.reverse_active_energy_wh)
    assert body["Fwd_W"] == round(live.active_power_import_w or 0)
    assert body["Rev_W"] == round(live.active_power_export_w or 0)
    assert body["Freq_mHz"] == round((live.frequency_hz or 0) * 1000)
    assert body["L1_RMS_V"] == round((live.voltage_l1_v or 0) * 1000)  # mV
    assert body["L2_RMS_A"] == round((live.current_l2_a or 0) * 1000)  # mA
    assert body["L3_Fwd_W"] == round(live.active_power_import_l3_w or 0)
    assert body["Meter_Manufacturer"] == "ELON"
    assert all(
        isinstance(body[k], int) for k in body if k.endswith(("_W", "_Wh", "_A", "_V", "_mHz"))
    )
    assert list(body) == list(DASH_FIELDS)  # the firmware's names, in its order


def test_openapi_documents_the_api(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/reading",
        "/api/v1/reading/{meter}",
        "/api/v1/history",
        "/api/v1/meter",
        "/api/v1/health",
        "/api/v1/stream",
        "/getDashDataWS",
    } <= paths
    assert not any(p in paths for p in ("/", "/config", "/console", "/login", "/setup"))
    assert client.get("/api/v1/docs").status_code == 200


def test_metrics_mounted_when_the_prometheus_output_exists(client: TestClient) -> None:
    response = client.get("/metrics")
    if importlib.util.find_spec("mepgate.outputs.prometheus") is None:
        assert response.status_code == 404
        return
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "house" in response.text
