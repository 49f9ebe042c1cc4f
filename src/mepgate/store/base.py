"""The store's interface and the value objects it returns.

Concurrency decision: the store API is **synchronous** and thread-safe (one connection per
store, guarded by a lock); the asyncio gateway uses :class:`mepgate.store.AsyncStore`, which
runs every call in a worker thread with :func:`asyncio.to_thread`.  Blocking database work
therefore never stalls the event loop, and the same store serves the CLI and tests without a
loop.  A retention sweep takes the lock one small batch at a time, so ingest interleaves.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from mepgate.reading import Reading

from .rollup import Bucket
from .self_reads import BillingPeriod, SelfRead


@dataclass(frozen=True, slots=True)
class FieldStats:
    mean: float
    min: float
    max: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryPoint:
    """One chart point: the readings in ``[t, t + width)`` summarised per field.

    ``stats`` holds only fields that had values; ``*_energy_wh`` are the registers' values at
    the last reading of the interval (``None`` if none).  ``width`` is zero for a single raw
    reading.
    """

    t: dt.datetime
    width: dt.timedelta
    resolution: str  # "raw", "minute", "hour" or "day": where the point was read from
    stats: Mapping[str, FieldStats]
    forward_active_energy_wh: float | None
    reverse_active_energy_wh: float | None
    energy_source: str | None = None  # "live" or "profile": where the registers above came from
    profile_intervals: int = 0  # the meter's load profile intervals in the point


# Extended interval status, common nibble (MEP guide, "Extended Status Field Description").
PROFILE_FLAGS: tuple[tuple[int, str], ...] = (
    (0b0001, "dst"),
    (0b0010, "power-fail"),
    (0b0100, "clock-forward"),
    (0b1000, "clock-backward"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileInterval:
    """One interval of the meter's load profile, as read from it (INT32 snapshots: the
    registers at the interval's end).

    ``number`` is its place in the meter's profile (block sequence number times intervals per
    block, plus its index in the block): unique per meter, rising.  ``end`` is the interval's
    end on the gateway's clock, ``meter_end`` on the meter's.  ``status`` is the extended
    status's common nibble (:data:`PROFILE_FLAGS`), ``channel_status`` the channels' nibbles
    (channel 0 lowest).
    """

    number: int
    end: dt.datetime
    meter_end: dt.datetime
    interval_s: int
    status: int = 0
    channel_status: int = 0
    forward_active_energy_wh: float | None = None
    reverse_active_energy_wh: float | None = None
    import_reactive_energy_varh: float | None = None
    export_reactive_energy_varh: float | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(name for bit, name in PROFILE_FLAGS if self.status & bit)


@dataclass(frozen=True, slots=True, kw_only=True)
class HourComparison:
    """One hour that live readings and the load profile both cover: the energy imported by
    the live registers' delta and by the profile's (Wh), and whether they agree."""

    start: dt.datetime
    live_wh: float
    profile_wh: float
    tolerance_wh: float

    @property
    def agrees(self) -> bool:
        return abs(self.live_wh - self.profile_wh) <= self.tolerance_wh


@dataclass(frozen=True, slots=True)
class EnergyDelta:
    forward_wh: float  # imported
    reverse_wh: float  # exported
    since: dt.datetime  # the local boundary (midnight, 1st of the month) in UTC
    # The same per TOU tier (tier 1 first, ``mepgate.reading.TIERS``): ``None`` for a tier whose
    # registers were not stored at either end (a meter without it, rows from before schema v2).
    tier_forward_wh: tuple[float | None, ...] = ()
    tier_reverse_wh: tuple[float | None, ...] = ()


@dataclass(frozen=True, slots=True)
class EnergyPeriod:
    """The energy of one local hour or day ``[start, end)``: ``delta`` is ``None`` when no
    reading was stored in it (the gateway was not running, or before the first reading)."""

    start: dt.datetime
    end: dt.datetime
    delta: EnergyDelta | None


@dataclass(frozen=True, slots=True)
class EnergyTotals:
    today: EnergyDelta
    this_month: EnergyDelta
    at: dt.datetime  # the newest reading the totals include


class Store(abc.ABC):
    """Long-term history of readings: SQLite (:class:`SqliteStore`) or PostgreSQL."""

    @abc.abstractmethod
    def ingest(self, readings: Sequence[Reading]) -> int:
        """Store a batch in one transaction (raw rows and all rollups); return how many readings
        were new (a reading whose meter and time are already stored is skipped)."""

    @abc.abstractmethod
    def merge_buckets(self, buckets: Iterable[Bucket]) -> None:
        """Fast path for imports and benchmarks: merge pre-aggregated buckets with the same
        upsert as :meth:`ingest`, without raw rows."""

    @abc.abstractmethod
    def history(
        self, meter: str, start: dt.datetime, end: dt.datetime, points: int = 500
    ) -> list[HistoryPoint]:
        """At most ``points`` points over ``[start, end)``, oldest first."""

    @abc.abstractmethod
    def ingest_profile(
        self,
        meter: str,
        intervals: Sequence[ProfileInterval],
        *,
        state: tuple[str, str] | None = None,
    ) -> int:
        """Store load profile intervals and their place in the rollups, with ``state`` (a
        :meth:`set_state` name and value: the back-fill's progress) in the same transaction;
        an interval already stored (same meter and number) is skipped.  Returns how many were
        new."""

    @abc.abstractmethod
    def profile(
        self, meter: str, start: dt.datetime, end: dt.datetime, limit: int = 5000
    ) -> list[ProfileInterval]:
        """The stored profile intervals ending in ``[start, end)``, oldest first."""

    @abc.abstractmethod
    def compare_profile(
        self, meter: str, start: dt.datetime, end: dt.datetime, *, edge_s: float
    ) -> list[HourComparison]:
        """Each whole hour in ``[start, end)`` that both the live readings and the profile
        cover: the profile has snapshots at both of its ends, and a live reading lies within
        ``edge_s`` seconds before each end."""

    @abc.abstractmethod
    def latest(self, meter: str) -> Reading | None:
        """The newest raw reading (``None`` if none is within raw retention)."""

    @abc.abstractmethod
    def recent(self, meter: str, count: int) -> list[Reading]:
        """The ``count`` newest raw readings, oldest first (fewer if fewer are stored)."""

    @abc.abstractmethod
    def state(self, meter: str, name: str) -> str | None:
        """The text kept as ``name`` for ``meter`` (:meth:`set_state`), ``None`` if none."""

    @abc.abstractmethod
    def set_state(self, meter: str, name: str, value: str | None) -> None:
        """Keep ``value`` as ``name`` for ``meter`` across restarts (``None`` removes it)."""

    @abc.abstractmethod
    def meters(self) -> list[str]:
        """Names of all meters that ever had a reading stored, sorted."""

    @abc.abstractmethod
    def energy_totals(self, meter: str, now: dt.datetime | None = None) -> EnergyTotals | None:
        """Energy imported/exported since local midnight and since the 1st of the month."""

    @abc.abstractmethod
    def energy_periods(
        self, meter: str, period: str, count: int, now: dt.datetime | None = None
    ) -> list[EnergyPeriod]:
        """The ``count`` latest local hours or days (``period``: "hour" or "day"), oldest
        first, the current (unfinished) one last: energy per period from the registers."""

    @abc.abstractmethod
    def add_self_reads(self, reads: Sequence[SelfRead]) -> int:
        """Store billing self-reads (BT26); return how many were new (see
        :mod:`mepgate.store.self_reads`)."""

    @abc.abstractmethod
    def self_reads(self, meter: str) -> list[SelfRead]:
        """The meter's stored self-reads, oldest first."""

    @abc.abstractmethod
    def billing_periods(self, meter: str) -> list[BillingPeriod]:
        """Each period between consecutive self-reads beside the gateway's own energy."""

    @abc.abstractmethod
    def sweep(self, now: dt.datetime | None = None, batch_rows: int = 2000) -> int:
        """Delete rows past their retention, ``batch_rows`` per transaction; return the count."""

    @abc.abstractmethod
    def size_bytes(self) -> int:
        """Bytes the store occupies on disk."""

    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
