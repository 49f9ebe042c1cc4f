"""Which resolution answers a history query, and how far to downsample it.

The rule: the *finest* resolution whose data reaches back to the start of the range and
whose row count in the range is at most ``SCAN_BUDGET * points``; the rows are then grouped
in SQL into at most ``points`` intervals.  A query therefore reads at most
``SCAN_BUDGET * points`` rows through the ``(meter_id, bucket_start)`` primary key, whatever
the age of the database: a year view reads ~365 day rows, a month ~720 hour rows, a day
~1440 minute rows.  The range is first clipped to the oldest stored data, so a young
installation shows its few days at fine resolution instead of a handful of day points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .schema import RAW, ROLLUP_TIERS, Tier

SCAN_BUDGET = 2  # rows read per point returned, at most
MAX_POINTS = 10_000  # a chart has no use for more; bounds the work one request can ask for
TIERS: tuple[Tier, ...] = (RAW, *ROLLUP_TIERS)  # finest first


@dataclass(frozen=True, slots=True)
class Plan:
    """Read ``tier`` rows in ``[origin, end)`` (seconds); group them ``factor`` at a time."""

    tier: Tier
    origin: int
    end: int
    factor: int

    @property
    def width_s(self) -> int:
        return self.tier.step_s * self.factor


@dataclass(frozen=True, slots=True)
class Oldest:
    """A tier's oldest row: its start, and when a reading in it was taken (epoch seconds)."""

    start: int
    reading: int


def plan(start: int, end: int, points: int, oldest: Mapping[str, Oldest | None]) -> Plan | None:
    """Choose how to answer a query over ``[start, end)`` epoch seconds.

    ``oldest`` maps a tier name to its oldest stored row, or ``None``.  The range is clipped
    to the oldest *reading* -- not to a rollup bucket's start, which for a day bucket can lie
    up to a day before the first reading and would hide a young installation's fine data.
    Returns ``None`` when there is nothing to read.
    """
    present = [value.reading for value in oldest.values() if value is not None]
    if not present:
        return None
    start = max(start, min(present))
    if start >= end:
        return None
    usable: Sequence[Tier] = [
        tier
        for tier in TIERS
        if (first := oldest.get(tier.name)) is not None
        and first.start <= start // tier.step_s * tier.step_s + tier.step_s
    ] or [TIERS[-1]]
    chosen = usable[-1]
    for tier in usable:
        origin = start // tier.step_s * tier.step_s
        if -(-(end - origin) // tier.step_s) <= SCAN_BUDGET * points:
            chosen = tier
            break
    origin = start // chosen.step_s * chosen.step_s
    rows = -(-(end - origin) // chosen.step_s)
    return Plan(tier=chosen, origin=origin, end=end, factor=max(1, -(-rows // points)))
