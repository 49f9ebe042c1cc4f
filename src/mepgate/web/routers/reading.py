"""``/api/v1/reading``: the newest reading of each meter."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import (
    NOT_FOUND,
    UNAUTHORIZED,
    check_meter,
    latest_reading,
    meter_names,
)
from mepgate.web.schemas import ReadingOut

router = APIRouter(prefix="/api/v1/reading", tags=["reading"], responses=UNAUTHORIZED)


@router.get("")
async def list_readings(view: ViewDep, _: ReaderDep) -> list[ReadingOut]:
    """The newest reading of every meter that has one."""
    readings = [await latest_reading(view, name) for name in meter_names(view)]
    return [ReadingOut.of(r) for r in readings if r is not None]


@router.get("/{meter}", responses=NOT_FOUND)
async def get_reading(meter: str, view: ViewDep, _: ReaderDep) -> ReadingOut:
    """The newest reading of ``meter``."""
    reading = await latest_reading(view, check_meter(view, meter))
    if reading is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"meter {meter!r} has no reading yet")
    return ReadingOut.of(reading)
