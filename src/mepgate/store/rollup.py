"""Partial aggregates ("buckets") and the one rule for combining them.

A :class:`Bucket` summarises some readings of one meter inside one rollup interval: per field
min, max, sum and count, plus the newest energy registers.  Ingest turns a batch of readings
into minute buckets, combines those into hour and day buckets, and upserts all of them; the
upsert in SQL (``store/sql.py``) applies exactly :meth:`Bucket.merge`, so a bucket's row is the
same whether its readings arrived in one batch or in many (tests check this).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mepgate.reading import Reading

from .errors import StoreError
from .schema import LAST_FIELDS, MINUTE, ROLLUP_TIERS, STORED_FIELDS, Tier

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LAST_INDEX = tuple(STORED_FIELDS.index(name) for name in LAST_FIELDS)


def epoch_ms(at: dt.datetime) -> int:
    """Exact integer milliseconds since the epoch; a naive datetime is refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise StoreError(f"reading time {at.isoformat()} has no time zone: pass an aware UTC time")
    return (at - EPOCH) // dt.timedelta(milliseconds=1)


def from_epoch_ms(t_ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=t_ms)


def _smaller(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


def _larger(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def _plus(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else a + b


@dataclass(slots=True)
class Bucket:
    """Aggregates of one meter's readings in ``[start, start + tier.step_s)`` (epoch seconds)."""

    meter: str
    tier: Tier
    start: int
    last_at_ms: int
    mins: list[float | None]
    maxs: list[float | None]
    sums: list[float | None]
    counts: list[int]
    lasts: list[float | None]

    @classmethod
    def of_reading(cls, reading: Reading, tier: Tier = MINUTE) -> Bucket:
        t_ms = epoch_ms(reading.at)
        values = reading.values()
        row: list[float | None] = [
            None if (value := values[name]) is None else float(value) for name in STORED_FIELDS
        ]
        return cls(
            meter=reading.meter,
            tier=tier,
            start=t_ms // (tier.step_s * 1000) * tier.step_s,
            last_at_ms=t_ms,
            mins=list(row),
            maxs=list(row),
            sums=list(row),
            counts=[0 if v is None else 1 for v in row],
            lasts=[row[i] for i in _LAST_INDEX],
        )

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.meter, self.tier.name, self.start)

    def merge(self, other: Bucket) -> None:
        """Absorb ``other`` (same meter, same interval or a finer one inside it)."""
        self.mins = [_smaller(a, b) for a, b in zip(self.mins, other.mins, strict=True)]
        self.maxs = [_larger(a, b) for a, b in zip(self.maxs, other.maxs, strict=True)]
        self.sums = [_plus(a, b) for a, b in zip(self.sums, other.sums, strict=True)]
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        # The newer reading's registers win; on a tie the incoming one (as the SQL upsert).
        if other.last_at_ms >= self.last_at_ms:
            self.last_at_ms = other.last_at_ms
            self.lasts = list(other.lasts)

    def coarsened(self, tier: Tier) -> Bucket:
        """A copy of this bucket as a partial aggregate of the coarser ``tier``."""
        return Bucket(
            meter=self.meter,
            tier=tier,
            start=self.start // tier.step_s * tier.step_s,
            last_at_ms=self.last_at_ms,
            mins=list(self.mins),
            maxs=list(self.maxs),
            sums=list(self.sums),
            counts=list(self.counts),
            lasts=list(self.lasts),
        )

    def row(self) -> list[float | int | None]:
        """Values in :func:`mepgate.store.schema.rollup_columns` order."""
        out: list[float | int | None] = []
        for i in range(len(STORED_FIELDS)):
            out += [self.mins[i], self.maxs[i], self.sums[i], self.counts[i]]
        return out + list(self.lasts)


def combine(buckets: Iterable[Bucket], tier: Tier) -> list[Bucket]:
    """Merge finer buckets into ``tier`` buckets, one per (meter, interval), in first-seen order."""
    merged: dict[tuple[str, int], Bucket] = {}
    for bucket in buckets:
        start = bucket.start // tier.step_s * tier.step_s
        found = merged.get((bucket.meter, start))
        if found is None:
            merged[(bucket.meter, start)] = bucket.coarsened(tier)
        else:
            found.merge(bucket)
    return list(merged.values())


def aggregate(readings: Sequence[Reading]) -> list[Bucket]:
    """Minute, hour and day partial aggregates of a batch, ready for the upsert."""
    minutes = combine((Bucket.of_reading(r) for r in readings), MINUTE)
    out = list(minutes)
    finer = minutes
    for tier in ROLLUP_TIERS[1:]:
        finer = combine(finer, tier)
        out += finer
    return out
