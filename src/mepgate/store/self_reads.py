"""The meter's billing self-reads (BT26) in the store, and how they compare with the gateway's
own readings.

A self-read is what the grid company bills: the meter's registers at the end of each billing
period (monthly or daily, as the meter is configured).  The gateway keeps each one once (key:
meter, sequence number, the meter's time stamp) and compares every period between two
consecutive self-reads with the energy its own readings show for the same period: the
registers of its last reading before each self-read's moment (on its own clock), as the
dashboard's "this month" is computed.

Both sides read the same registers, so a gateway that polled around both self-reads agrees to
a few Wh.  A period is flagged as a **mismatch** when import or export differs by more than
:data:`TOLERANCE_WH` *and* more than :data:`TOLERANCE_FRACTION` of the meter's delta:

* 1 kWh, because the gateway's boundary cannot be exactly the meter's: the meter stamps a
  self-read to the minute, the gateway's last reading before it may be a poll interval older,
  and the meter's clock is matched to the gateway's to within seconds -- at the ~17 kW a
  25 A three-phase connection carries, a minute on either side of both boundaries is ~0.6 kWh;
* 0.5 %, so that a long, heavy period is not flagged for what is below any billing dispute
  (half a percent is under a class B meter's own allowed error).

Independently, a gap in the gateway's readings around a self-read longer than
:data:`BOUNDARY_GAP` is named in words (the gateway cannot place the boundary then), whether or
not the difference exceeds the tolerance.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .rollup import epoch_ms, from_epoch_ms
from .schema import ENERGY_FIELDS, ROLLUP_TIERS, V6_SELF_READ_ENERGY, Dialect

TOLERANCE_WH = 1000.0
TOLERANCE_FRACTION = 0.005
BOUNDARY_GAP = dt.timedelta(minutes=15)
"""Readings further apart than this around a self-read: the gateway cannot place it."""

_TIER_FIELDS = V6_SELF_READ_ENERGY[2:]


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfRead:
    """One billing self-read as the meter took it (energies in Wh)."""

    meter: str
    sequence: int
    meter_time: dt.datetime  # UTC on the meter's clock
    gateway_time: dt.datetime  # the same moment on the gateway's clock
    read_at: dt.datetime  # when the gateway read it
    local_time: str | None  # the stamp as the meter sent it (its local time), ISO
    season: int | None
    forward_active_energy_wh: float | None
    reverse_active_energy_wh: float | None
    tier_forward_active_energy_wh: tuple[float | None, ...] = ()
    tier_reverse_active_energy_wh: tuple[float | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Registers:
    """The gateway's registers at one of its readings."""

    at: dt.datetime
    forward_wh: float
    reverse_wh: float


@dataclass(frozen=True, slots=True)
class Boundary:
    """The gateway's readings around a self-read's moment (``None``: none on that side)."""

    at: dt.datetime  # the self-read on the gateway's clock
    before: Registers | None
    after: Registers | None

    @property
    def gap(self) -> tuple[dt.datetime | None, dt.datetime | None] | None:
        """The readings' times around ``at`` when they are more than :data:`BOUNDARY_GAP`
        apart (or one side has none), else ``None``."""
        before = self.before.at if self.before else None
        after = self.after.at if self.after else None
        if before is not None and after is not None and after - before <= BOUNDARY_GAP:
            return None
        return before, after

    @property
    def registers(self) -> Registers | None:
        """What the gateway takes as the registers at ``at``: its last reading before, else its
        first after (as "this month" does)."""
        return self.before or self.after


@dataclass(frozen=True, slots=True, kw_only=True)
class BillingPeriod:
    """One period between two consecutive self-reads, the meter's delta beside the gateway's."""

    start: SelfRead
    end: SelfRead
    meter_forward_wh: float | None
    meter_reverse_wh: float | None
    gateway_forward_wh: float | None
    gateway_reverse_wh: float | None
    start_boundary: Boundary
    end_boundary: Boundary
    verdict: str  # "agrees", "mismatch", "no gateway data"
    words: str

    @property
    def flagged(self) -> bool:
        return self.verdict != "agrees"


def _kwh(wh: float) -> str:
    return f"{wh / 1000:.3f} kWh"


def _when(value: dt.datetime | None) -> str:
    return "none" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _gap_words(boundary: Boundary) -> str | None:
    gap = boundary.gap
    if gap is None:
        return None
    before, after = gap
    at = _when(boundary.at)
    if before is None and after is None:
        return f"the gateway has no readings around the self-read at {at}"
    if before is None:
        return f"the gateway's readings begin only at {_when(after)}, after the self-read at {at}"
    if after is None:
        return f"the gateway has no readings after {_when(before)} (self-read at {at})"
    return (
        f"the gateway has no readings between {_when(before)} and {_when(after)}, around the "
        f"self-read at {at}"
    )


def compare(start: SelfRead, end: SelfRead, first: Boundary, last: Boundary) -> BillingPeriod:
    """The verdict for the period from self-read ``start`` to ``end`` (see the module doc)."""

    def delta(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else b - a

    meter_fwd = delta(start.forward_active_energy_wh, end.forward_active_energy_wh)
    meter_rev = delta(start.reverse_active_energy_wh, end.reverse_active_energy_wh)
    a, b = first.registers, last.registers
    gw_fwd = gw_rev = None
    if a is not None and b is not None:
        gw_fwd, gw_rev = b.forward_wh - a.forward_wh, b.reverse_wh - a.reverse_wh
    gaps = [w for w in (_gap_words(first), _gap_words(last)) if w]
    if gw_fwd is None or gw_rev is None or meter_fwd is None or meter_rev is None:
        words = "no gateway readings for this period" if gw_fwd is None else "no meter values"
        return BillingPeriod(
            start=start,
            end=end,
            meter_forward_wh=meter_fwd,
            meter_reverse_wh=meter_rev,
            gateway_forward_wh=gw_fwd,
            gateway_reverse_wh=gw_rev,
            start_boundary=first,
            end_boundary=last,
            verdict="no gateway data",
            words=words + (": " + "; ".join(gaps) if gaps else ""),
        )
    off: list[str] = []
    for name, meter, gateway in (("import", meter_fwd, gw_fwd), ("export", meter_rev, gw_rev)):
        allowed = max(TOLERANCE_WH, TOLERANCE_FRACTION * abs(meter))
        if abs(gateway - meter) > allowed:
            off.append(
                f"{name} differs by {_kwh(gateway - meter)} (meter {_kwh(meter)}, gateway "
                f"{_kwh(gateway)}; allowed {_kwh(allowed)})"
            )
    if off:
        cause = (
            "; ".join(gaps) + ", so its energy for the period is not the meter's"
            if gaps
            else "the gateway's stored readings disagree with the meter's registers (a "
            "replaced meter, a register reset, or readings stored from another meter)"
        )
        words = (
            f"mismatch: {'; '.join(off)}. Cause: {cause}. The meter's self-read is what the "
            "grid company bills."
        )
        verdict = "mismatch"
    else:
        worst = max(abs(gw_fwd - meter_fwd), abs(gw_rev - meter_rev))
        words = f"agrees: within {worst:.0f} Wh"
        if gaps:
            words += " (although " + "; ".join(gaps) + ")"
        verdict = "agrees"
    return BillingPeriod(
        start=start,
        end=end,
        meter_forward_wh=meter_fwd,
        meter_reverse_wh=meter_rev,
        gateway_forward_wh=gw_fwd,
        gateway_reverse_wh=gw_rev,
        start_boundary=first,
        end_boundary=last,
        verdict=verdict,
        words=words,
    )


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


class SelfReadsMixin(abc.ABC):
    """The self-read part of :class:`~mepgate.store.sql.SqlStore` (same SQL on both engines)."""

    dialect: Dialect

    @abc.abstractmethod
    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[None]: ...

    @abc.abstractmethod
    def _ids_for(self, names: Any) -> dict[str, int]: ...

    @abc.abstractmethod
    def _find_meter(self, name: str) -> int | None: ...

    _lock: Any
    _meter_ids: dict[str, int]

    def add_self_reads(self, reads: Sequence[SelfRead]) -> int:
        """Store self-reads in one transaction; return how many were new (one already stored,
        same meter, sequence number and time stamp, is skipped)."""
        if not reads:
            return 0
        columns = (
            "meter_id, sequence, meter_time_ms, local_time, season, gateway_time_ms,"
            f" read_at_ms, {', '.join(V6_SELF_READ_ENERGY)}"
        )
        placeholders = ", ".join("?" * (7 + len(V6_SELF_READ_ENERGY)))
        insert = (
            f"INSERT INTO self_read ({columns}) VALUES ({placeholders})"
            " ON CONFLICT (meter_id, sequence, meter_time_ms) DO NOTHING"
        )
        new = 0
        with self._lock:
            with self._transaction():
                ids = self._ids_for(sorted({r.meter for r in reads}))
                for r in reads:
                    tiers = [*r.tier_forward_active_energy_wh[:4]]
                    tiers += [None] * (4 - len(tiers))
                    rev = [*r.tier_reverse_active_energy_wh[:4]]
                    rev += [None] * (4 - len(rev))
                    key = (ids[r.meter], r.sequence, epoch_ms(r.meter_time))
                    known = self._q(
                        "SELECT 1 FROM self_read WHERE meter_id = ? AND sequence = ?"
                        " AND meter_time_ms = ?",
                        key,
                    )
                    if known:
                        continue
                    self._q(
                        insert,
                        (
                            *key,
                            r.local_time,
                            r.season,
                            epoch_ms(r.gateway_time),
                            epoch_ms(r.read_at),
                            r.forward_active_energy_wh,
                            r.reverse_active_energy_wh,
                            *tiers,
                            *rev,
                        ),
                    )
                    new += 1
            self._meter_ids.update(ids)
        return new

    def self_reads(self, meter: str) -> list[SelfRead]:
        """The meter's stored self-reads, oldest first (by the meter's time stamp)."""
        with self._lock:
            meter_id = self._find_meter(meter)
            if meter_id is None:
                return []
            rows = self._q(
                "SELECT sequence, meter_time_ms, local_time, season, gateway_time_ms, read_at_ms,"
                f" {', '.join(V6_SELF_READ_ENERGY)} FROM self_read WHERE meter_id = ?"
                " ORDER BY meter_time_ms, sequence",
                (meter_id,),
            )
        return [self._self_read(meter, row) for row in rows]

    @staticmethod
    def _self_read(meter: str, row: Sequence[Any]) -> SelfRead:
        energy = [_optional(v) for v in row[6:]]
        return SelfRead(
            meter=meter,
            sequence=int(row[0]),
            meter_time=from_epoch_ms(int(row[1])),
            local_time=None if row[2] is None else str(row[2]),
            season=None if row[3] is None else int(row[3]),
            gateway_time=from_epoch_ms(int(row[4])),
            read_at=from_epoch_ms(int(row[5])),
            forward_active_energy_wh=energy[0],
            reverse_active_energy_wh=energy[1],
            tier_forward_active_energy_wh=tuple(energy[2:6]),
            tier_reverse_active_energy_wh=tuple(energy[6:10]),
        )

    def _around(self, meter_id: int, at: dt.datetime) -> Boundary:
        """The gateway's last reading before ``at`` and first at or after it, from the raw rows
        or, once those are swept, the rollups (a bucket's last reading and its first value)."""
        fwd, rev = ENERGY_FIELDS
        at_ms = epoch_ms(at)
        before_rows = list(
            self._q(
                f"SELECT t_ms, {fwd}, {rev} FROM raw WHERE meter_id = ? AND t_ms < ?"
                " ORDER BY t_ms DESC LIMIT 1",
                (meter_id, at_ms),
            )
        )
        for tier in ROLLUP_TIERS:
            before_rows += self._q(
                f"SELECT last_at_ms, {fwd}_last, {rev}_last FROM {tier.table}"
                " WHERE meter_id = ? AND bucket_start <= ? AND last_at_ms < ?"
                " ORDER BY bucket_start DESC LIMIT 1",
                (meter_id, at_ms // 1000 - tier.step_s, at_ms),
            )
        before_rows = [r for r in before_rows if r[1] is not None and r[2] is not None]
        before: Registers | None = None
        if before_rows:
            r = max(before_rows, key=lambda row: int(row[0]))
            before = Registers(from_epoch_ms(int(r[0])), float(r[1]), float(r[2]))
        after_rows = self._q(
            f"SELECT t_ms, {fwd}, {rev} FROM raw WHERE meter_id = ? AND t_ms >= ?"
            f" AND {fwd} IS NOT NULL ORDER BY t_ms LIMIT 1",
            (meter_id, at_ms),
        )
        after: Registers | None = None
        if after_rows:
            r = list(after_rows[0])
            after = Registers(from_epoch_ms(int(r[0])), float(r[1]), float(r[2]))
        else:
            for tier in ROLLUP_TIERS:  # the bucket's start: its first reading is no earlier
                rows = self._q(
                    f"SELECT bucket_start, {fwd}_min, {rev}_min FROM {tier.table}"
                    f" WHERE meter_id = ? AND bucket_start >= ? AND {fwd}_min IS NOT NULL"
                    " ORDER BY bucket_start LIMIT 1",
                    (meter_id, -(-at_ms // 1000)),
                )
                if rows:
                    r = rows[0]
                    after = Registers(from_epoch_ms(int(r[0]) * 1000), float(r[1]), float(r[2]))
                    break
        return Boundary(at=at, before=before, after=after)

    def billing_periods(self, meter: str) -> list[BillingPeriod]:
        """Each period between consecutive stored self-reads, oldest first, compared with the
        gateway's readings (see the module doc)."""
        reads = self.self_reads(meter)
        if len(reads) < 2:
            return []
        with self._lock:
            meter_id = self._find_meter(meter)
            if meter_id is None:
                return []
            bounds = [self._around(meter_id, r.gateway_time) for r in reads]
        return [
            compare(a, b, first, last)
            for a, b, first, last in zip(reads, reads[1:], bounds, bounds[1:], strict=False)
        ]


__all__ = [
    "BOUNDARY_GAP",
    "TOLERANCE_FRACTION",
    "TOLERANCE_WH",
    "BillingPeriod",
    "Boundary",
    "Registers",
    "SelfRead",
    "SelfReadsMixin",
    "compare",
]
