"""``/api/v1/profile``: the meter's load profile as the back-fill stored it, and its progress.

Each interval carries its status flags (power fail, clock reset forward/backward, DST); the
``backfill`` part says what the back-fill persisted: intervals stored, intervals lost to a
profile that wrapped before the gateway could read them, and the hours in which the live
readings and the profile disagree (the history shows the profile's).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from mepgate.service.backfill import STATE, Progress
from mepgate.service.view import view_now
from mepgate.store import ProfileInterval
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, default_meter
from mepgate.web.routers.history import utc

MAX_INTERVALS = 5000
DEFAULT_SPAN = dt.timedelta(days=1)

router = APIRouter(prefix="/api/v1/profile", tags=["profile"], responses=UNAUTHORIZED)


class ProfileQuery(BaseModel):
    """Times are ISO 8601 (UTC without a zone).  Defaults: the last 24 hours of the first
    meter; ``flagged`` keeps only intervals with a status flag."""

    model_config = ConfigDict(extra="forbid")

    meter: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    flagged: bool = False
    limit: Annotated[int, Field(ge=1, le=MAX_INTERVALS)] = 1000


class ProfileIntervalOut(BaseModel):
    number: int
    end: dt.datetime
    meter_end: dt.datetime
    interval_s: int
    flags: list[str]
    forward_active_energy_wh: float | None
    reverse_active_energy_wh: float | None
    import_reactive_energy_varh: float | None
    export_reactive_energy_varh: float | None

    @classmethod
    def of(cls, interval: ProfileInterval) -> ProfileIntervalOut:
        return cls(
            number=interval.number,
            end=interval.end,
            meter_end=interval.meter_end,
            interval_s=interval.interval_s,
            flags=list(interval.flags),
            forward_active_energy_wh=interval.forward_active_energy_wh,
            reverse_active_energy_wh=interval.reverse_active_energy_wh,
            import_reactive_energy_varh=interval.import_reactive_energy_varh,
            export_reactive_energy_varh=interval.export_reactive_energy_varh,
        )


class BackfillOut(BaseModel):
    """What the back-fill persisted (``newest``: the newest interval number stored)."""

    newest: int | None
    stored: int
    lost: int
    hours_compared: int
    hours_disagreeing: int
    recent_disagreements: list[dict[str, object]]

    @classmethod
    def of(cls, progress: Progress) -> BackfillOut:
        return cls(
            newest=progress.newest,
            stored=progress.stored,
            lost=progress.lost,
            hours_compared=progress.compared,
            hours_disagreeing=progress.disagreements,
            recent_disagreements=list(progress.recent),
        )


class ProfileOut(BaseModel):
    meter: str
    start: dt.datetime
    end: dt.datetime
    backfill: BackfillOut
    intervals: list[ProfileIntervalOut]


@router.get("", responses={**NOT_FOUND, 422: {"description": "start is not before end"}})
async def profile(
    query: Annotated[ProfileQuery, Query()], view: ViewDep, _: ReaderDep
) -> ProfileOut:
    meter = default_meter(view, query.meter)
    end = _utc(query.end) if query.end is not None else view_now(view)
    start = _utc(query.start) if query.start is not None else end - DEFAULT_SPAN
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start must be before end")
    intervals = await view.store.profile(meter, start, end, MAX_INTERVALS)
    if query.flagged:
        intervals = [i for i in intervals if i.status]
    progress = Progress.from_json(await view.store.state(meter, STATE))
    return ProfileOut(
        meter=meter,
        start=start,
        end=end,
        backfill=BackfillOut.of(progress),
        intervals=[ProfileIntervalOut.of(i) for i in intervals[-query.limit :]],
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return utc(value)
