"""``/api/v1/history``: at most ``points`` chart points for any time range."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from mepgate.service.view import view_now
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, default_meter
from mepgate.web.schemas import HistoryOut, HistoryPointOut

MAX_POINTS = 5000
DEFAULT_SPAN = dt.timedelta(days=1)
# The store keeps milliseconds since 1970; anything outside this range cannot hold data.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)

router = APIRouter(prefix="/api/v1/history", tags=["history"], responses=UNAUTHORIZED)


class HistoryQuery(BaseModel):
    """Times are ISO 8601; without a zone they are UTC.  Defaults: the last 24 hours of the
    first meter, 500 points."""

    model_config = ConfigDict(extra="forbid")

    meter: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    points: Annotated[int, Field(ge=1, le=MAX_POINTS)] = 500


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC (UTC when it names no zone), clamped to the range the store holds."""
    return _utc(value)


def _utc(value: dt.datetime) -> dt.datetime:
    value = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        return EARLIEST if value.year < EARLIEST.year else LATEST
    return min(max(value, EARLIEST), LATEST)


@router.get(
    "",
    responses={**NOT_FOUND, 422: {"description": "start is not before end, or a bad parameter"}},
)
async def history(
    query: Annotated[HistoryQuery, Query()], view: ViewDep, _: ReaderDep
) -> HistoryOut:
    meter = default_meter(view, query.meter)
    end = _utc(query.end) if query.end is not None else view_now(view)
    if query.start is not None:
        start = _utc(query.start)
    else:
        start = max(end - DEFAULT_SPAN, EARLIEST) if end > EARLIEST + DEFAULT_SPAN else EARLIEST
    if start >= end:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "start must be before end (both ISO 8601)"
        )
    points = await view.store.history(meter, start, end, query.points)
    return HistoryOut(
        meter=meter, start=start, end=end, points=[HistoryPointOut.of(p) for p in points]
    )
