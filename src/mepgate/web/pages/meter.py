"""``/meter``: identity, firmware, clock, link statistics and the last errors with advice."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mepgate.web.deps import ReaderDep, StateDep, require_setup_done
from mepgate.web.render import render
from mepgate.web.schemas import MeterOut

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])


@router.get("/meter")
async def meter(request: Request, state: StateDep, session: ReaderDep) -> Response:
    meters = [MeterOut.of(s) for s in state.view.meters()]
    return render(request, state, "meter.html", {"page": "meter", "meters": meters}, session)
