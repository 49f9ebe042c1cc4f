"""``/api/v1/meter``: identity, clock, link statistics and recent errors of each meter."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED
from mepgate.web.schemas import MeterOut

router = APIRouter(prefix="/api/v1/meter", tags=["meter"], responses=UNAUTHORIZED)


@router.get("")
async def list_meters(view: ViewDep, _: ReaderDep) -> list[MeterOut]:
    return [MeterOut.of(s) for s in view.meters()]


@router.get("/{meter}", responses=NOT_FOUND)
async def get_meter(meter: str, view: ViewDep, _: ReaderDep) -> MeterOut:
    for s in view.meters():
        if s.name == meter:
            return MeterOut.of(s)
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no meter named {meter!r}")
