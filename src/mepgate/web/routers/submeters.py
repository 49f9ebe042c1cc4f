"""``/api/v1/submeters``: the M-Bus sub-meters (gas, water, heat) behind the meters, and their
history.

The list has exactly the fields a dashboard tile needs.  ``available`` is false while the
meter says the device does not answer, or the gateway has no fresh status for it: the value
is then the last one read, never zero.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict

from mepgate.service.submeter_board import SubmeterState
from mepgate.service.view import GatewayView
from mepgate.store import StoreError
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, check_meter
from mepgate.web.routers.history import EARLIEST, LATEST
from mepgate.web.schemas import _Out

router = APIRouter(prefix="/api/v1/submeters", tags=["submeters"], responses=UNAUTHORIZED)

Medium = Literal["gas", "water", "heat", "electricity", "other"]
Resolution = Literal["raw", "hour", "day"]


class SubmeterOut(_Out):
    """A sub-meter: ``slot`` 1..4 on its ``meter``; ``medium`` gas, water, heat, electricity
    or other; ``value`` in ``unit`` (m³ for gas and water, kWh for heat and electricity) as
    read ``at`` (UTC); ``available``: the device answers the meter's reads now."""

    meter: str
    slot: int
    identification: str
    manufacturer: str
    medium: Medium
    unit: str
    value: float | None
    at: dt.datetime | None
    available: bool


class SubmeterPointOut(_Out):
    """A reading (``raw``) or a bucket (``hour``/``day``: ``at`` its start, ``value`` the last
    reading in it, ``delta`` the consumption in it)."""

    at: dt.datetime
    value: float
    delta: float
    identification: str


class SubmeterHistoryOut(_Out):
    meter: str
    slot: int
    resolution: Resolution
    start: dt.datetime
    end: dt.datetime
    unit: str | None
    points: list[SubmeterPointOut]


class SubmeterHistoryQuery(BaseModel):
    """Times are ISO 8601 (UTC without a zone); defaults: the last 7 days, hourly."""

    model_config = ConfigDict(extra="forbid")

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    resolution: Resolution = "hour"


def _medium(text: str) -> Medium:
    known: tuple[Medium, ...] = ("gas", "water", "heat", "electricity")
    return next((m for m in known if m == text), "other")


def _out(state: SubmeterState, now: dt.datetime) -> SubmeterOut:
    return SubmeterOut(
        meter=state.meter,
        slot=state.slot,
        identification=state.identification,
        manufacturer=state.manufacturer,
        medium=_medium(state.medium),
        unit=state.unit,
        value=state.value,
        at=state.at,
        available=state.available(now),
    )


async def submeters_of(view: GatewayView, meter: str | None = None) -> list[SubmeterOut]:
    """The live board, completed from the store (a gateway that just started, or a meter
    whose job has not run yet: those are not available)."""
    now = dt.datetime.now(dt.UTC)
    out = {(s.meter, s.slot): _out(s, now) for s in view.hub.submeters.states(meter)}
    try:
        stored = await view.store.submeters.latest(meter)
    except StoreError:
        stored = []
    for row in stored:
        key = (row.device.meter, row.device.slot)
        if key in out:
            continue
        out[key] = SubmeterOut(
            meter=row.device.meter,
            slot=row.device.slot,
            identification=row.device.identification,
            manufacturer=row.device.manufacturer,
            medium=_medium(row.device.medium),
            unit=row.device.unit,
            value=row.value,
            at=row.at,
            available=False,
        )
    return [out[key] for key in sorted(out)]


@router.get("", responses=NOT_FOUND)
async def submeters(view: ViewDep, _: ReaderDep, meter: str | None = None) -> list[SubmeterOut]:
    """Every sub-meter (of ``meter`` when given)."""
    if meter is not None:
        check_meter(view, meter)
    return await submeters_of(view, meter)


def _utc(value: dt.datetime) -> dt.datetime:
    value = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    try:
        return min(max(value.astimezone(dt.UTC), EARLIEST), LATEST)
    except OverflowError:
        return EARLIEST


@router.get(
    "/{meter}/{slot}/history",
    responses={**NOT_FOUND, 422: {"description": "start is not before end, or a bad parameter"}},
)
async def submeter_history(
    meter: str,
    slot: int,
    query: Annotated[SubmeterHistoryQuery, Query()],
    view: ViewDep,
    _: ReaderDep,
) -> SubmeterHistoryOut:
    """A slot's readings (``raw``) or consumption per hour / local day, every device it had."""
    check_meter(view, meter)
    if not 1 <= slot <= 4:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"slot {slot}: M-Bus slots are 1..4")
    end = _utc(query.end) if query.end is not None else dt.datetime.now(dt.UTC)
    start = _utc(query.start) if query.start is not None else end - dt.timedelta(days=7)
    if start >= end:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "start must be before end (both ISO 8601)"
        )
    points = await view.store.submeters.history(meter, slot, start, end, query.resolution)
    known = view.hub.submeters.get(meter, slot)
    return SubmeterHistoryOut(
        meter=meter,
        slot=slot,
        resolution=query.resolution,
        start=start,
        end=end,
        unit=known.unit if known is not None else None,
        points=[
            SubmeterPointOut(at=p.at, value=p.value, delta=p.delta, identification=p.identification)
            for p in points
        ],
    )
