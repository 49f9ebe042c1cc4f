"""``/``: live values of every meter, updated by server-sent events (``dashboard.js``), with
charts at a glance (``dashboard-charts.js``: the last hour live, energy per hour for 24 hours
and per day for 30 days), energy per TOU tier and, with ``[prices]``, its cost.

Beside the values, each meter's state in words (:mod:`mepgate.web.meter_state`): why it is not
being read, with the advice and a link to where to fix it, and how many readings were rejected
and why; ``dashboard.js`` refreshes it from ``/api/v1/meter``.  The "live" line counts a
reading's age from the reading's own time (corrected by the difference between the browser's
clock and the gateway's, ``data-server-now``), so a page opened on an old reading says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mepgate.service.view import view_now
from mepgate.web.deps import ReaderDep, StateDep, require_setup_done
from mepgate.web.render import render
from mepgate.web.routers.common import latest_reading, meter_names
from mepgate.web.routers.meter import meters_out
from mepgate.web.schemas import EnergyOut, ReadingOut

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])


def direction(net_w: float | None) -> str:
    if net_w is None:
        return ""
    if net_w > 0:
        return "importing from the grid"
    if net_w < 0:
        return "exporting to the grid"
    return "balanced"


@router.get("/")
async def dashboard(request: Request, state: StateDep, session: ReaderDep) -> Response:
    view = state.view
    statuses = {out.name: out for out in meters_out(view)}
    meters = []
    for name in meter_names(view):
        values: dict[str, Any] = {}
        reading = await latest_reading(view, name)
        if reading is not None:
            values.update(ReadingOut.of(reading).model_dump(mode="json"))
        totals = await view.store.energy_totals(name)
        if totals is not None:
            energy = EnergyOut.of(name, totals, view.settings.prices)
            values.update(energy.model_dump(mode="json"))
        meters.append(
            {
                "name": name,
                "data": values,
                "at": reading.at if reading else None,
                "direction": direction(values.get("net_power_w")),
                "tiers": values.get("tiers") or [],
                "cost": values.get("cost"),
                "status": statuses.get(name),
            }
        )
    return render(
        request,
        state,
        "dashboard.html",
        {
            "page": "dashboard",
            "meters": meters,
            "server_now": view_now(state.view).isoformat(),
            "prices": view.settings.prices,
        },
        session,
    )
