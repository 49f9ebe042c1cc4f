"""``/api/v1/energy``: energy imported and exported today and this month."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, check_meter
from mepgate.web.schemas import EnergyOut

router = APIRouter(prefix="/api/v1/energy", tags=["energy"], responses=UNAUTHORIZED)


@router.get("/{meter}", responses=NOT_FOUND)
async def get_energy(meter: str, view: ViewDep, _: ReaderDep) -> EnergyOut:
    """Today's and this month's import/export (local time zone of the storage settings)."""
    totals = await view.store.energy_totals(check_meter(view, meter))
    if totals is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"meter {meter!r} has no history yet")
    return EnergyOut.of(meter, totals)
