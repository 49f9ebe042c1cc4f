"""``/api/v1/events`` (the meters' event logs, newest first) and ``/api/v1/outages`` (power
outages derived from them, for the charts' markers)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from mepgate.store import MeterEvent, Outage
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, check_meter
from mepgate.web.routers.history import _utc

MAX_EVENTS = 1000

router = APIRouter(prefix="/api/v1", tags=["events"], responses=UNAUTHORIZED)


class EventsQuery(BaseModel):
    """Times are ISO 8601 (UTC without a zone) on the gateway's clock; every meter when
    ``meter`` is not given."""

    model_config = ConfigDict(extra="forbid")

    meter: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_EVENTS)] = 100


class OutagesQuery(BaseModel):
    """Outages overlapping ``[start, end)`` (an open one reaches to now)."""

    model_config = ConfigDict(extra="forbid")

    meter: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None


class EventOut(BaseModel):
    """One event of a meter's log (BT74).  ``time`` is the gateway's clock, ``meter_time``
    the meter's own stamp; ``code`` the 12-bit event id, ``key`` its short name (``other``
    when unknown), ``argument`` hex."""

    meter: str
    sequence: int
    time: dt.datetime
    meter_time: dt.datetime
    code: int
    key: str
    words: str
    argument: str
    user_id: int | None

    @classmethod
    def of(cls, event: MeterEvent) -> EventOut:
        return cls(
            meter=event.meter,
            sequence=event.sequence,
            time=event.gateway_time,
            meter_time=event.meter_time,
            code=event.code,
            key=event.key,
            words=event.words,
            argument=event.argument.hex(),
            user_id=event.user_id,
        )


class OutageOut(BaseModel):
    """A power outage on the gateway's clock; ``end`` and ``duration_s`` are null while the
    power-up has not been read (an open outage)."""

    meter: str
    start: dt.datetime
    end: dt.datetime | None
    duration_s: float | None

    @classmethod
    def of(cls, outage: Outage) -> OutageOut:
        return cls(
            meter=outage.meter, start=outage.start, end=outage.end, duration_s=outage.duration_s
        )


def _range(
    start: dt.datetime | None, end: dt.datetime | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    begin = None if start is None else _utc(start)
    finish = None if end is None else _utc(end)
    if begin is not None and finish is not None and begin >= finish:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "start must be before end (both ISO 8601)"
        )
    return begin, finish


@router.get("/events", responses={**NOT_FOUND, 422: {"description": "a bad parameter"}})
async def events(
    query: Annotated[EventsQuery, Query()], view: ViewDep, _: ReaderDep
) -> list[EventOut]:
    meter = None if query.meter is None else check_meter(view, query.meter)
    start, end = _range(query.start, query.end)
    found = await view.store.events(meter, start, end, query.limit)
    return [EventOut.of(e) for e in found]


@router.get("/outages", responses={**NOT_FOUND, 422: {"description": "a bad parameter"}})
async def outages(
    query: Annotated[OutagesQuery, Query()], view: ViewDep, _: ReaderDep
) -> list[OutageOut]:
    meter = None if query.meter is None else check_meter(view, query.meter)
    start, end = _range(query.start, query.end)
    return [OutageOut.of(o) for o in await view.store.outages(meter, start, end)]
