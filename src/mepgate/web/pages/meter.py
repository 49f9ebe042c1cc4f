"""``/meter``: identity, firmware, clock, link statistics and the last errors with advice, and
the load profile back-fill: its progress, what it stored or lost, the hours in which the live
readings and the profile disagree, and the intervals with status flags."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mepgate.service.backfill import STATE, Progress
from mepgate.service.view import view_now
from mepgate.store import ProfileInterval
from mepgate.web.deps import ReaderDep, StateDep, require_setup_done
from mepgate.web.render import render
from mepgate.web.routers.meter import meters_out
from mepgate.web.routers.submeters import submeters_of

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])

FLAGGED_SPAN = dt.timedelta(days=7)
FLAGGED_SHOWN = 20


@router.get("/meter")
async def meter(request: Request, state: StateDep, session: ReaderDep) -> Response:
    meters = meters_out(state.view)
    profiles: dict[str, tuple[Progress, list[ProfileInterval]]] = {}
    now = view_now(state.view)
    for m in meters:
        progress = Progress.from_json(await state.view.store.state(m.name, STATE))
        recent = await state.view.store.profile(m.name, now - FLAGGED_SPAN, now)
        flagged = [i for i in recent if i.status][-FLAGGED_SHOWN:]
        profiles[m.name] = (progress, flagged)
    reasons = {(s.meter, s.slot): s.why_unavailable(now) for s in state.view.hub.submeters.states()}
    submeters = [
        {**s.model_dump(), "reason": reasons.get((s.meter, s.slot))}
        for s in await submeters_of(state.view)
    ]
    context = {"page": "meter", "meters": meters, "submeters": submeters, "profiles": profiles}
    return render(request, state, "meter.html", context, session)
