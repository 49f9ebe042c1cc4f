"""``/api/v1/meter``: identity, clock, link statistics and recent errors of each meter."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from mepgate.service.view import GatewayView, view_now
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.meter_state import assess
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED
from mepgate.web.schemas import MeterOut

router = APIRouter(prefix="/api/v1/meter", tags=["meter"], responses=UNAUTHORIZED)


def meters_out(view: GatewayView) -> list[MeterOut]:
    """Every meter's status, judged now (:func:`~mepgate.web.meter_state.assess`)."""
    now = view_now(view)
    return [MeterOut.of(s, assess(s, view.settings, now)) for s in view.meters()]


@router.get("")
async def list_meters(view: ViewDep, _: ReaderDep) -> list[MeterOut]:
    return meters_out(view)


@router.get("/{meter}", responses=NOT_FOUND)
async def get_meter(meter: str, view: ViewDep, _: ReaderDep) -> MeterOut:
    for out in meters_out(view):
        if out.name == meter:
            return out
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no meter named {meter!r}")
