"""The history page's "Billing self-reads" section: the meter's self-reads (BT26) and, for each
billing period, the meter's energy beside the gateway's (:mod:`mepgate.store.self_reads`)."""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.service.view import GatewayView
from mepgate.store import BillingPeriod, SelfRead, StoreError
from mepgate.store.self_reads import TOLERANCE_FRACTION, TOLERANCE_WH


@dataclass(frozen=True, slots=True)
class BillingSection:
    self_reads: list[SelfRead]  # newest first
    periods: list[BillingPeriod]  # newest first
    tolerance: str
    error: str | None = None

    @property
    def flagged(self) -> int:
        return sum(p.flagged for p in self.periods)


def tolerance_words() -> str:
    return (
        f"more than {TOLERANCE_WH / 1000:g} kWh and more than {TOLERANCE_FRACTION * 100:g} % "
        "of the meter's energy for the period"
    )


async def billing_section(view: GatewayView, meter: str) -> BillingSection:
    try:
        reads = await view.store.self_reads(meter)
        periods = await view.store.billing_periods(meter)
    except StoreError as error:  # the page still shows the charts
        return BillingSection([], [], tolerance_words(), error=str(error))
    return BillingSection(reads[::-1], periods[::-1], tolerance_words())
