"""Self-reads and readings of one simulated meter (the real model, daily self-reads), as the
gateway would have stored them: for the store, API and page tests of billing periods."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mepgate.reading import Reading
from mepgate.simulator.model import SelfReadTruth, build_meter, ground_truth
from mepgate.store import SelfRead

from .gateway import reading_from_truth

START = dt.datetime(2026, 6, 29, 20, tzinfo=dt.UTC)  # 21:00 local: first self-read in 2 h


@dataclass(frozen=True)
class BillingHistory:
    readings: list[Reading]
    truths: tuple[SelfReadTruth, ...]

    def self_reads(self, meter: str) -> list[SelfRead]:
        return [as_stored(meter, t) for t in self.truths]

    def without(self, start: dt.datetime, end: dt.datetime) -> list[Reading]:
        """The readings, less those in ``[start, end)`` (the gateway was not running)."""
        return [r for r in self.readings if not start <= r.at < end]


def as_stored(meter: str, truth: SelfReadTruth) -> SelfRead:
    """A self-read as the gateway stores it, its clock the meter's (readings are stamped so)."""
    return SelfRead(
        meter=meter,
        sequence=truth.sequence,
        meter_time=truth.meter_time,
        gateway_time=truth.meter_time,
        read_at=truth.meter_time + dt.timedelta(minutes=5),
        local_time=truth.local_time.isoformat(),
        season=0,
        forward_active_energy_wh=float(truth.forward_active_energy_wh),
        reverse_active_energy_wh=float(truth.reverse_active_energy_wh),
        tier_forward_active_energy_wh=tuple(float(w) for w in truth.tier_forward_active_energy_wh),
        tier_reverse_active_energy_wh=tuple(float(w) for w in truth.tier_reverse_active_energy_wh),
    )


def billing_history(
    meter: str, *, days: int = 3, step_s: int = 60, seed: int = 11
) -> BillingHistory:
    """Readings every ``step_s`` for ``days`` days from :data:`START`, and the meter's daily
    self-reads meanwhile (ground truth)."""
    sim = build_meter("gen4-3phase", seed=seed, start=START, self_read="daily")
    readings = []
    truth = None
    for t in range(0, days * 86_400, step_s):
        truth = ground_truth(sim, float(t))
        readings.append(reading_from_truth(meter, truth))
    assert truth is not None
    return BillingHistory(readings, truth.self_reads)
