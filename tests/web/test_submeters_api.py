"""``/api/v1/submeters`` and the meter page's sub-meter section, from the gateway's sub-meter
board and a real store (the values themselves are checked end to end in
tests/outputs/test_submeters.py)."""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi.testclient import TestClient

from mepgate.service.submeter_board import SubmeterState
from mepgate.store.submeters import SubmeterDevice

from ..support.gateway import FakeGateway


def _state(
    gateway: FakeGateway, slot: int, medium: str, value: float, *, up: bool
) -> SubmeterState:
    meter = gateway.settings.meter[0].name
    now = dt.datetime.now(dt.UTC)
    return SubmeterState(
        meter=meter,
        slot=slot,
        identification=f"1234567{slot}",
        manufacturer="ELS",
        medium=medium,
        medium_code=3 if medium == "gas" else 7,
        medium_name=medium,
        unit="m³",
        value=value,
        at=now,
        answering=up,
        checked_at=now,
        reason=None if up else "the meter's last read of this device got no answer",
    )


def test_the_list_has_exactly_the_tile_fields_and_unavailable_keeps_the_value(
    client: TestClient, gateway: FakeGateway
) -> None:
    meter = gateway.settings.meter[0].name
    gateway.hub.submeters.update(_state(gateway, 1, "gas", 4821.305, up=True))
    gateway.hub.submeters.update(_state(gateway, 2, "water", 12.5, up=False))
    listed = client.get("/api/v1/submeters", params={"meter": meter}).json()
    assert [set(s) for s in listed] == [
        {"meter", "slot", "identification", "manufacturer", "medium", "unit", "value", "at",
         "available"}
    ] * 2  # fmt: skip
    assert [(s["slot"], s["medium"], s["value"], s["available"]) for s in listed] == [
        (1, "gas", 4821.305, True),
        (2, "water", 12.5, False),  # unavailable: the last value, not zero
    ]
    assert client.get("/api/v1/submeters").json() == listed  # every meter
    assert client.get("/api/v1/submeters", params={"meter": "nope"}).status_code == 404
    page = client.get("/meter").text
    assert "M-Bus sub-meters" in page
    assert "4\u2009821.305 m³" in page  # thin space between thousands
    assert "got no answer" in page


def test_history_by_resolution_and_its_errors(client: TestClient, gateway: FakeGateway) -> None:
    meter = gateway.settings.meter[0].name
    device = SubmeterDevice(
        meter=meter, slot=1, identification="12345671", manufacturer="ELS", medium="gas",
        medium_code=3, unit="m³",
    )  # fmt: skip
    start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start -= dt.timedelta(hours=3)
    for i, value in enumerate((100.0, 100.5, 101.75)):
        asyncio.run(gateway.store.submeters.add(device, start + dt.timedelta(hours=i), value))
    url = f"/api/v1/submeters/{meter}/1/history"
    raw = client.get(url, params={"resolution": "raw"}).json()
    assert [p["value"] for p in raw["points"]] == [100.0, 100.5, 101.75]
    hours = client.get(url).json()  # hourly by default
    assert hours["resolution"] == "hour"
    assert [p["delta"] for p in hours["points"]] == [0.0, 0.5, 1.25]
    end = start.isoformat()
    assert client.get(url, params={"start": end, "end": end}).status_code == 422
    assert client.get(url, params={"resolution": "week"}).status_code == 422
    assert client.get(f"/api/v1/submeters/{meter}/5/history").status_code == 404
    assert client.get("/api/v1/submeters/nope/1/history").status_code == 404
