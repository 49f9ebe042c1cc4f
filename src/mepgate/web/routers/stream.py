"""``/api/v1/stream``: live readings as server-sent events.

Events: ``reading`` (a :class:`ReadingOut`), ``energy`` (an :class:`EnergyOut`, at most every
:data:`~mepgate.web.energy_totals.ENERGY_EVERY_S` per meter, the same totals for every
subscriber: :class:`~mepgate.web.energy_totals.SharedEnergyTotals`) and a comment line as
keep-alive.  The browser's
``EventSource`` reconnects by itself after ``retry`` milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from mepgate.reading import Reading
from mepgate.web.deps import ReaderDep, StateDep, WebState
from mepgate.web.routers.common import UNAUTHORIZED, check_meter, meter_names
from mepgate.web.schemas import EnergyOut, ReadingOut

RETRY_MS = 3000
KEEPALIVE_S = 15.0

router = APIRouter(prefix="/api/v1/stream", tags=["stream"], responses=UNAUTHORIZED)


def _event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


async def _events(state: WebState, request: Request, meters: set[str] | None) -> AsyncIterator[str]:
    view = state.view
    energy_sent: dict[str, float] = {}  # meter -> stamp of the totals this stream sent

    async def with_energy(reading: Reading) -> AsyncIterator[str]:
        yield _event("reading", ReadingOut.of(reading).model_dump_json())
        shared = await state.energy.get(reading.meter)
        if shared.totals is not None and energy_sent.get(reading.meter) != shared.stamp:
            energy_sent[reading.meter] = shared.stamp
            yield _event(
                "energy",
                EnergyOut.of(reading.meter, shared.totals, view.settings.prices).model_dump_json(),
            )

    yield f"retry: {RETRY_MS}\n\n"
    async with view.hub.subscribe() as queue:
        for name in sorted(meters) if meters is not None else meter_names(view):
            latest = view.hub.latest(name)
            if latest is not None:
                async for chunk in with_energy(latest):
                    yield chunk
        stopping = asyncio.ensure_future(state.closing.wait())
        getting: asyncio.Future[Reading] | None = None
        try:
            while not stopping.done() and not await request.is_disconnected():
                getting = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getting, stopping}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                if getting not in done:
                    await _cancel(getting)
                    getting = None
                    if not stopping.done():
                        yield ": keep-alive\n\n"
                    continue
                reading, getting = getting.result(), None
                if meters is None or reading.meter in meters:
                    async for chunk in with_energy(reading):
                        yield chunk
        finally:
            # A closed tab cancels the stream while it waits for the next reading: that wait
            # must end too, or it is destroyed pending ("Task was destroyed..." in the log).
            if getting is not None:
                await _cancel(getting)
            await _cancel(stopping)


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and let it finish (``asyncio.wait`` does not raise its cancellation)."""
    task.cancel()
    await asyncio.wait({task})


@router.get(
    "",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
)
async def stream(
    request: Request, state: StateDep, _: ReaderDep, meter: str | None = None
) -> StreamingResponse:
    """Readings of ``meter`` (default: every meter) as they arrive."""
    meters = {check_meter(state.view, meter)} if meter is not None else None
    return StreamingResponse(
        _events(state, request, meters),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
