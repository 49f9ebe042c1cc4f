"""``/history``: zoomable charts (uPlot) over ``/api/v1/history``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mepgate.web.deps import ReaderDep, StateDep, require_setup_done
from mepgate.web.pages.billing import billing_section
from mepgate.web.render import render
from mepgate.web.routers.common import meter_names

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])


@router.get("/history")
async def history(
    request: Request, state: StateDep, session: ReaderDep, meter: str | None = None
) -> Response:
    names = meter_names(state.view)
    chosen = meter if meter in names else (names[0] if names else "")
    billing = await billing_section(state.view, chosen) if chosen else None
    return render(
        request,
        state,
        "history.html",
        {"page": "history", "meter": chosen, "billing": billing},
        session,
    )
