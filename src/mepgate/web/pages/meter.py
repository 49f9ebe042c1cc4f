"""``/meter``: identity, firmware, clock, link statistics and the last errors with advice."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mepgate.web.deps import ReaderDep, StateDep, require_setup_done
from mepgate.web.render import render
from mepgate.web.routers.meter import meters_out

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])


@router.get("/meter")
async def meter(request: Request, state: StateDep, session: ReaderDep) -> Response:
    meters = meters_out(state.view)
    return render(request, state, "meter.html", {"page": "meter", "meters": meters}, session)
