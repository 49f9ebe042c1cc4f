"""``/meter``: identity, firmware, clock, link statistics and the last errors with advice."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mepgate.web.deps import ReaderDep, StateDep, require_setup_done
from mepgate.web.render import render
from mepgate.web.routers.meter import meters_out
from mepgate.web.routers.submeters import submeters_of

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])


@router.get("/meter")
async def meter(request: Request, state: StateDep, session: ReaderDep) -> Response:
    meters = meters_out(state.view)
    now = dt.datetime.now(dt.UTC)
    reasons = {(s.meter, s.slot): s.why_unavailable(now) for s in state.view.hub.submeters.states()}
    submeters = [
        {**s.model_dump(), "reason": reasons.get((s.meter, s.slot))}
        for s in await submeters_of(state.view)
    ]
    context = {"page": "meter", "meters": meters, "submeters": submeters}
    return render(request, state, "meter.html", context, session)
