"""``/api/v1/health``: is the gateway up and reading?  Open without login (for monitors)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter

from mepgate import __version__
from mepgate.web.deps import StateDep
from mepgate.web.schemas import HealthOut, MeterHealthOut

router = APIRouter(prefix="/api/v1/health", tags=["health"])


@router.get("")
async def health(state: StateDep) -> HealthOut:
    now = dt.datetime.now(dt.UTC)
    meters = [
        MeterHealthOut(
            name=s.name,
            connected=s.connected,
            last_reading_at=s.last_reading_at,
            last_reading_age_s=(now - s.last_reading_at).total_seconds()
            if s.last_reading_at is not None
            else None,
        )
        for s in state.view.meters()
    ]
    verdict: Literal["ok", "degraded", "setup"]
    if not state.view.settings.meter:
        verdict = "setup"
    elif all(m.connected for m in meters):
        verdict = "ok"
    else:
        verdict = "degraded"
    return HealthOut(
        status=verdict,
        version=__version__,
        admin_password_set=state.auth.password.is_set,
        meters=meters,
    )
