"""``/api/v1/energy``: energy imported and exported today and this month (per TOU tier, and
what it cost with ``[prices]``), and per local hour or day."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, check_meter
from mepgate.web.schemas import EnergyOut, EnergyPeriodOut, EnergyPeriodsOut

MAX_COUNT = {"hour": 24 * 40, "day": 400}
"""Periods one request may ask for: 40 days of hours, 400 days."""

router = APIRouter(prefix="/api/v1/energy", tags=["energy"], responses=UNAUTHORIZED)


@router.get("/{meter}", responses=NOT_FOUND)
async def get_energy(meter: str, view: ViewDep, _: ReaderDep) -> EnergyOut:
    """Today's and this month's import/export (local time zone of the storage settings), per
    TOU tier too, and what it cost at the configured ``[prices]`` (``cost``; ``null`` without)."""
    totals = await view.store.energy_totals(check_meter(view, meter))
    if totals is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"meter {meter!r} has no history yet")
    return EnergyOut.of(meter, totals, view.settings.prices)


@router.get(
    "/{meter}/periods",
    responses={**NOT_FOUND, 422: {"description": "count out of range, or a bad period"}},
)
async def get_energy_periods(
    meter: str,
    view: ViewDep,
    _: ReaderDep,
    period: Literal["hour", "day"] = "hour",
    count: Annotated[int, Query(ge=1, le=max(MAX_COUNT.values()))] = 24,
) -> EnergyPeriodsOut:
    """Energy per local hour or day (``period``), the latest ``count`` of them, oldest first,
    the current one last: the difference of the meter's registers at the periods' boundaries
    (``null`` for a period without any stored reading).  Up to 960 hours or 400 days."""
    name = check_meter(view, meter)
    if count > MAX_COUNT[period]:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"count: at most {MAX_COUNT[period]} for period={period}",
        )
    prices = view.settings.prices
    periods = await view.store.energy_periods(name, period, count)
    return EnergyPeriodsOut(
        meter=name,
        period=period,
        currency=prices.currency if prices is not None else None,
        periods=[EnergyPeriodOut.of(p, prices) for p in periods],
    )
