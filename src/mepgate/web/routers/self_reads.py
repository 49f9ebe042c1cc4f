"""``/api/v1/self-reads``: the meter's billing self-reads (BT26) and each billing period beside
the gateway's own energy for it (:mod:`mepgate.store.self_reads`)."""

from __future__ import annotations

import datetime as dt
from typing import Self

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mepgate.store import BillingPeriod, Boundary, SelfRead
from mepgate.store.self_reads import BOUNDARY_GAP, TOLERANCE_FRACTION, TOLERANCE_WH
from mepgate.web.deps import ReaderDep, ViewDep
from mepgate.web.routers.common import NOT_FOUND, UNAUTHORIZED, default_meter

router = APIRouter(prefix="/api/v1/self-reads", tags=["self-reads"], responses=UNAUTHORIZED)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class SelfReadOut(_Out):
    """One self-read as the meter took it; energies in Wh (tiers 1..4, ``null`` if unknown)."""

    sequence: int = Field(description="BT26 sequence number (counts self-reads, wraps at 65536)")
    meter_time: dt.datetime = Field(description="When the meter took it, on its own clock (UTC)")
    gateway_time: dt.datetime = Field(description="The same moment on the gateway's clock")
    local_time: str | None = Field(description="The stamp as the meter sent it (its local time)")
    read_at: dt.datetime
    season: int | None
    forward_active_energy_wh: float | None
    reverse_active_energy_wh: float | None
    tier_forward_active_energy_wh: list[float | None]
    tier_reverse_active_energy_wh: list[float | None]

    @classmethod
    def of(cls, read: SelfRead) -> Self:
        return cls(
            sequence=read.sequence,
            meter_time=read.meter_time,
            gateway_time=read.gateway_time,
            local_time=read.local_time,
            read_at=read.read_at,
            season=read.season,
            forward_active_energy_wh=read.forward_active_energy_wh,
            reverse_active_energy_wh=read.reverse_active_energy_wh,
            tier_forward_active_energy_wh=list(read.tier_forward_active_energy_wh),
            tier_reverse_active_energy_wh=list(read.tier_reverse_active_energy_wh),
        )


class BoundaryOut(_Out):
    """The gateway's readings around a self-read: the last before and the first after it."""

    at: dt.datetime
    reading_before: dt.datetime | None
    reading_after: dt.datetime | None
    gap: bool = Field(description="The readings are further apart than boundary_gap_s")

    @classmethod
    def of(cls, boundary: Boundary) -> Self:
        return cls(
            at=boundary.at,
            reading_before=boundary.before.at if boundary.before else None,
            reading_after=boundary.after.at if boundary.after else None,
            gap=boundary.gap is not None,
        )


class PeriodOut(_Out):
    """A billing period: from one self-read to the next."""

    start_sequence: int
    end_sequence: int
    start: dt.datetime = Field(description="The first self-read, gateway clock")
    end: dt.datetime = Field(description="The second self-read, gateway clock")
    meter_forward_wh: float | None
    meter_reverse_wh: float | None
    gateway_forward_wh: float | None
    gateway_reverse_wh: float | None
    verdict: str = Field(description='"agrees", "mismatch" or "no gateway data"')
    flagged: bool
    words: str
    start_boundary: BoundaryOut
    end_boundary: BoundaryOut

    @classmethod
    def of(cls, period: BillingPeriod) -> Self:
        return cls(
            start_sequence=period.start.sequence,
            end_sequence=period.end.sequence,
            start=period.start.gateway_time,
            end=period.end.gateway_time,
            meter_forward_wh=period.meter_forward_wh,
            meter_reverse_wh=period.meter_reverse_wh,
            gateway_forward_wh=period.gateway_forward_wh,
            gateway_reverse_wh=period.gateway_reverse_wh,
            verdict=period.verdict,
            flagged=period.flagged,
            words=period.words,
            start_boundary=BoundaryOut.of(period.start_boundary),
            end_boundary=BoundaryOut.of(period.end_boundary),
        )


class ToleranceOut(_Out):
    """A period is a mismatch when import or export differs by more than both."""

    wh: float = TOLERANCE_WH
    fraction: float = TOLERANCE_FRACTION
    boundary_gap_s: float = BOUNDARY_GAP.total_seconds()


class SelfReadsOut(_Out):
    meter: str
    self_reads: list[SelfReadOut]
    periods: list[PeriodOut]
    tolerance: ToleranceOut = ToleranceOut()


@router.get("", responses=NOT_FOUND)
async def self_reads(view: ViewDep, _: ReaderDep, meter: str | None = None) -> SelfReadsOut:
    """The meter's self-reads, oldest first, and each billing period (between consecutive
    self-reads) beside the energy the gateway's own readings show for it."""
    name = default_meter(view, meter)
    reads = await view.store.self_reads(name)
    periods = await view.store.billing_periods(name)
    return SelfReadsOut(
        meter=name,
        self_reads=[SelfReadOut.of(r) for r in reads],
        periods=[PeriodOut.of(p) for p in periods],
    )
