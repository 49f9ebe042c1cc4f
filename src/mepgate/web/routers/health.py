"""``/api/v1/health``: is the gateway up and reading?  Open without login (for monitors).

Each meter is judged by :func:`mepgate.web.meter_state.assess`, as on the dashboard: the health
is ``degraded`` while any meter has a problem (not polling, no reading yet, its newest reading
older than three poll intervals), and each meter says why.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from mepgate import __version__
from mepgate.service.view import view_now
from mepgate.web.deps import StateDep
from mepgate.web.meter_state import assess
from mepgate.web.schemas import HealthOut, MeterHealthOut

router = APIRouter(prefix="/api/v1/health", tags=["health"])


@router.get("")
async def health(state: StateDep) -> HealthOut:
    now = view_now(state.view)
    settings = state.view.settings
    meters = [MeterHealthOut.of(s, assess(s, settings, now)) for s in state.view.meters()]
    verdict: Literal["ok", "degraded", "setup"]
    if not settings.meter:
        verdict = "setup"
    elif meters and not any(m.problems for m in meters):
        verdict = "ok"
    else:
        verdict = "degraded"
    return HealthOut(
        status=verdict,
        version=__version__,
        admin_password_set=state.auth.password.is_set,
        meters=meters,
    )
