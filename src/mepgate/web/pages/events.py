"""``/events``: the meters' event logs, newest first, and their outages; filter by meter."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mepgate.web.deps import ReaderDep, StateDep, require_setup_done
from mepgate.web.render import render
from mepgate.web.routers.common import meter_names

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_setup_done)])

PAGE_EVENTS = 200
"""Events the page lists (the API gives more, by time range)."""


@router.get("/events")
async def events_page(
    request: Request, state: StateDep, session: ReaderDep, meter: str | None = None
) -> Response:
    names = meter_names(state.view)
    chosen = meter if meter in names else None
    store = state.view.store
    found = await store.events(chosen, limit=PAGE_EVENTS)
    outages = list(reversed(await store.outages(chosen)))[:PAGE_EVENTS]
    # The events job of each meter shown: what it is doing, or why it cannot.
    jobs = [
        (status.name, job)
        for status in state.view.meters()
        if chosen is None or status.name == chosen
        for job in status.jobs
        if job.name == "events"
    ]
    return render(
        request,
        state,
        "events.html",
        {
            "page": "events",
            "meter": chosen or "",
            "events": found,
            "outages": outages,
            "jobs": jobs,
        },
        session,
    )
