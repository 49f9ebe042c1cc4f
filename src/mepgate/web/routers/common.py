"""Small helpers the API routers share."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status

from mepgate.reading import Reading
from mepgate.service.view import GatewayView
from mepgate.web.schemas import ErrorOut

Responses = dict[int | str, dict[str, Any]]

NOT_FOUND: Responses = {
    404: {"model": ErrorOut, "description": "No such meter, or nothing read yet"}
}
UNAUTHORIZED: Responses = {
    401: {"model": ErrorOut, "description": "Log in first (dashboard not public)"}
}


def meter_names(view: GatewayView) -> list[str]:
    """The configured meters, then any others the gateway reports, in order."""
    names = [m.name for m in view.settings.meter]
    names += [s.name for s in view.meters() if s.name not in names]
    return names


def check_meter(view: GatewayView, meter: str) -> str:
    if meter not in meter_names(view):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no meter named {meter!r}")
    return meter


def default_meter(view: GatewayView, meter: str | None) -> str:
    if meter is not None:
        return check_meter(view, meter)
    names = meter_names(view)
    if not names:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "no meter is configured yet; add one on the config page"
        )
    return names[0]


async def latest_reading(view: GatewayView, meter: str) -> Reading | None:
    """The newest reading: live from the hub, else the store's newest raw row."""
    live = view.hub.latest(meter)
    return live if live is not None else await view.store.latest(meter)
