"""The JSON API against SQLite and PostgreSQL stores, through the real app (TestClient)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from typing import Any

from fastapi.testclient import TestClient

from mepgate.outputs.compat import DASH_FIELDS
from mepgate.reading import VALUE_FIELDS, Reading

from ..support.gateway import FakeGateway


def known_series(gateway: FakeGateway) -> list[Reading]:
    """Three readings of "house" with round values, 20 s apart and an hour after the fixture's
    live reading (so the last minute holds these three only), published in order."""
    assert gateway.sim is not None
    at = gateway.sim.now + dt.timedelta(hours=1)
    common: dict[str, Any] = {
        "meter": "house",
        "reverse_active_energy_wh": 2000.4,
        "voltage_l1_v": 230.1,
        "voltage_l2_v": 229.5,
        "voltage_l3_v": 231.0,
        "current_l1_a": 5.432,
        "current_l2_a": 1.0,
        "current_l3_a": 0.25,
        "power_factor_l1": 0.98,
        "power_factor_l2": -0.95,
        "power_factor_l3": 1.0,
        "frequency_hz": 50.02,
        "reactive_power_var": -40.0,
        "current_tier": 2,
    }
    series = [
        Reading(
            at=at + dt.timedelta(seconds=20 * n),
            forward_active_energy_wh=12345.6 + n,
            active_power_import_w=imported,
            active_power_export_w=exported,
            active_power_import_l1_w=l1,
            active_power_export_l1_w=0.0,
            active_power_import_l2_w=0.0,
            active_power_export_l2_w=exported,
            active_power_import_l3_w=imported - l1,  # no L3 export reported
            **common,
        )
        for n, (imported, exported, l1) in enumerate(
            ((100.0, 0.0, 100.0), (200.0, 30.0, 150.0), (600.0, 60.0, 200.0))
        )
    ]
    gateway.publish(series)
    return series


def test_reading_latest_per_meter(client: TestClient, gateway: FakeGateway) -> None:
    last = known_series(gateway)[-1]
    listing = client.get("/api/v1/reading")
    assert listing.status_code == 200
    [body] = listing.json()
    one = client.get("/api/v1/reading/house").json()
    assert body == one
    assert one["meter"] == "house"
    assert dt.datetime.fromisoformat(one["at"]) == last.at
    for name in VALUE_FIELDS:
        assert one[name] == getattr(last, name)
    assert one["forward_active_energy_wh"] == 12347.6
    assert one["active_power_import_w"] == 600.0
    assert one["reactive_power_var"] == -40.0
    assert one["active_power_export_l3_w"] is None
    # The signed net powers: import minus export, unknown where a side is not reported.
    assert one["net_power_w"] == 540.0
    assert one["net_power_l1_w"] == 200.0
    assert one["net_power_l2_w"] == -60.0
    assert one["net_power_l3_w"] is None
    assert client.get("/api/v1/reading/garage").status_code == 404


def test_history_bounded_points_over_any_range(client: TestClient, gateway: FakeGateway) -> None:
    assert gateway.sim is not None
    end = gateway.sim.now
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


def test_history_takes_times_at_the_edges_of_the_calendar(client: TestClient) -> None:
    for start, end in [
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 once in UTC
        ("0001-01-01T00:00:00", "9999-12-31T23:59:59-01:00"),  # after year 9999 in UTC
    ]:
        params = {"start": start, **({"end": end} if end else {})}
        response = client.get("/api/v1/history", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["start"].startswith("1970-01-01")


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
    client: TestClient, gateway: FakeGateway
) -> None:
    known_series(gateway)
    body = client.get("/getDashDataWS").json()
    assert list(body) == list(DASH_FIELDS)  # the firmware's names, in its order
    assert body["Meter_Manufacturer"] == "ELON"
    assert body["Meter_Model"] == "83334-3I"
    assert {k: body[k] for k in DASH_FIELDS[9:]} == {
        "Fwd_Act_Wh": 12348,  # Wh, whole
        "Rev_Act_Wh": 2000,
        "Fwd_W": 600,
        "Rev_W": 60,
        "Freq_mHz": 50020,
        "L1_RMS_A": 5432,  # mA
        "L2_RMS_A": 1000,
        "L3_RMS_A": 250,
        "L1_RMS_V": 230100,  # mV
        "L2_RMS_V": 229500,
        "L3_RMS_V": 231000,
        "L1_Fwd_W": 200,
        "L2_Fwd_W": 0,
        "L3_Fwd_W": 400,
        "L1_Rev_W": 0,
        "L2_Rev_W": 60,
        "L3_Rev_W": 0,  # not reported: 0, as the firmware printed it
        # Means of the last minute: the three readings of the series.
        "Fwd_Avg_W": 300,  # (100 + 200 + 600) / 3
        "Rev_Avg_W": 30,  # (0 + 30 + 60) / 3
        "L1_Fwd_Avg_W": 150,
        "L2_Fwd_Avg_W": 0,
        "L3_Fwd_Avg_W": 150,  # (0 + 50 + 400) / 3
        "L1_Rev_Avg_W": 0,
        "L2_Rev_Avg_W": 30,
        "L3_Rev_Avg_W": 0,
    }
    assert all(
        isinstance(body[k], int) for k in body if k.endswith(("_W", "_Wh", "_A", "_V", "_mHz"))
    )


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
