"""Ten years of a 1 Hz meter: database size with default retention, and history query cost.

Run: ``python benchmarks/history_scale.py [--years 10] [--points 1000] [--keep DIR]``.

Fast synthetic path (documented, and checked at run time).  Writing 315 M raw rows would only
have them deleted again by raw retention, so the store is filled the way ten years of ingest
would leave it, without the raw detour:

* The synthetic signal is a real 1 Hz series: in hour ``h`` every field is
  ``B(h) + A(h) * W[s % 60]`` (``W`` a fixed 60-sample wave, ``A >= 0``) and each energy
  register rises linearly, ``E(h) + r(h) * s``.  Its minute and hour aggregates (min, max,
  sum, count, last) therefore have a closed form, computed here per bucket.
* Those buckets go through :meth:`Store.merge_buckets` -- the same upsert as ``ingest`` -- and
  day buckets are made from hour buckets by :func:`mepgate.store.rollup.combine`, the code
  ingest uses.  Hours for all ten years, minutes for the last 35 days.
* The newest 2 days (what raw retention keeps) go through the real ``ingest`` in batches.
* Before measuring, a sample hour is ingested reading by reading into a scratch store and
  compared with the closed-form buckets for that hour: the run aborts unless they agree
  (sums to 1e-9 relative: the order of float additions differs).

Then the default retention sweep runs and the database size is printed, and the year, month
and day views are timed against the same views of a store holding one day of data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mepgate.reading import TIERS, Reading, tier_energy_field
from mepgate.store import Bucket, SqlStore, open_store
from mepgate.store.rollup import combine
from mepgate.store.schema import (
    DAY,
    HOUR,
    LAST_FIELDS,
    MINUTE,
    ROLLUP_TIERS,
    STORED_FIELDS,
    Tier,
    rollup_columns,
)

START = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
METER = "house"
WAVE = [math.sin(2 * math.pi * k / 60) for k in range(60)]
W_MIN, W_MAX, W_SUM = min(WAVE), max(WAVE), math.fsum(WAVE)
ENERGY: dict[str, tuple[str, int | None]] = {
    "forward_active_energy_wh": ("active_power_import_w", None),
    "reverse_active_energy_wh": ("active_power_export_w", None),
    **{
        tier_energy_field(direction, tier): (power, tier)
        for direction, power in (
            ("forward", "active_power_import_w"),
            ("reverse", "active_power_export_w"),
        )
        for tier in TIERS
    },
}  # register -> the power driving it, and the tier it counts in (None: always)
INGEST_BATCH = 600  # readings per transaction in the real-ingest part
MINUTE_DAYS = 35  # matches the default minute retention
RAW_DAYS = 2  # matches the default raw retention


def hour_profile(h: int) -> dict[str, tuple[float, float]]:
    """(B, A) per non-energy field for hour ``h`` after START."""
    hod, doy = h % 24, (h // 24) % 365
    season = math.cos(2 * math.pi * doy / 365)
    load = 400 + 450 * (1 + math.sin(2 * math.pi * (hod - 7) / 24)) + 300 * season
    sun = max(0.0, math.sin(math.pi * (hod - 6) / 12)) * (1500 - 1000 * season)
    voltage = 230 + 2 * math.sin(2 * math.pi * hod / 24)
    return {
        "active_power_import_w": (load, 50.0),
        "active_power_export_w": (sun, 0.0),
        **{f"active_power_import_{p}_w": (load / 3, 20.0) for p in ("l1", "l2", "l3")},
        **{f"active_power_export_{p}_w": (sun / 3, 0.0) for p in ("l1", "l2", "l3")},
        **{f"voltage_{p}_v": (voltage, 1.5) for p in ("l1", "l2", "l3")},
        **{f"current_{p}_a": (load / 3 / voltage, 0.2) for p in ("l1", "l2", "l3")},
        **{f"power_factor_{p}": (0.95, 0.02) for p in ("l1", "l2", "l3")},
        "frequency_hz": (50.0, 0.02),
        "reactive_power_var": (150.0, 30.0),
        "current_tier": (1.0 if 7 <= hod < 23 else 2.0, 0.0),
    }


class Synthetic:
    """The synthetic meter: per-hour parameters and the energy registers at each hour start."""

    def __init__(self, hours: int) -> None:
        self.profiles = [hour_profile(h) for h in range(hours)]
        self.energy_at: list[dict[str, float]] = [{name: 0.0 for name in ENERGY}]
        for profile in self.profiles:
            previous = self.energy_at[-1]
            self.energy_at.append(
                {reg: previous[reg] + 3600 * self._rate(profile, reg) for reg in ENERGY}
            )

    @staticmethod
    def _rate(profile: dict[str, tuple[float, float]], register: str) -> float:
        power, tier = ENERGY[register]
        if tier is not None and profile["current_tier"][0] != tier:
            return 0.0  # a tier register stands still outside its tier
        return profile[power][0] / 3600  # Wh per second

    def rate(self, h: int, register: str) -> float:
        return self._rate(self.profiles[h], register)

    def readings(self, h: int) -> Iterator[Reading]:
        """The 3600 readings of hour ``h``, one per second."""
        profile, base = self.profiles[h], START + dt.timedelta(hours=h)
        for s in range(3600):
            w = WAVE[s % 60]
            values: dict[str, Any] = {name: b + a * w for name, (b, a) in profile.items()}
            values["current_tier"] = int(profile["current_tier"][0])
            for register in ENERGY:
                values[register] = self.energy_at[h][register] + self.rate(h, register) * s
            yield Reading(meter=METER, at=base + dt.timedelta(seconds=s), **values)

    def bucket(self, h: int, tier: Tier, minute: int = 0) -> Bucket:
        """Closed-form aggregates of minute ``minute`` of hour ``h`` (MINUTE), or of the hour."""
        minutes = 60 if tier is HOUR else 1
        s0 = 60 * minute
        s1 = s0 + 60 * minutes - 1
        n = 60 * minutes
        profile = self.profiles[h]
        mins: list[float | None] = []
        maxs: list[float | None] = []
        sums: list[float | None] = []
        for name in STORED_FIELDS:
            if name in ENERGY:
                e, r = self.energy_at[h][name], self.rate(h, name)
                mins.append(e + r * s0)
                maxs.append(e + r * s1)
                sums.append(n * e + r * (s0 + s1) * n / 2)
            else:
                b, a = profile[name]
                mins.append(b + a * W_MIN)
                maxs.append(b + a * W_MAX)
                sums.append(minutes * (60 * b + a * W_SUM))
        hour_start = (
            int((START - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds()) + 3600 * h
        )
        return Bucket(
            meter=METER,
            tier=tier,
            start=hour_start + s0,
            last_at_ms=(hour_start + s1) * 1000,
            mins=mins,
            maxs=maxs,
            sums=sums,
            counts=[n] * len(STORED_FIELDS),
            lasts=[maxs[STORED_FIELDS.index(reg)] for reg in LAST_FIELDS],
        )

    def fast_buckets(self, first_hour: int, end_hour: int, minute_from: int) -> Iterator[Bucket]:
        """Hour (and, from ``minute_from``, minute) buckets, day buckets via ``combine``."""
        for day_start in range(first_hour, end_hour, 24):
            hours = [self.bucket(h, HOUR) for h in range(day_start, min(day_start + 24, end_hour))]
            yield from hours
            yield from combine(hours, DAY)
            for h in range(max(day_start, minute_from), min(day_start + 24, end_hour)):
                yield from (self.bucket(h, MINUTE, m) for m in range(60))


def rollup_rows(store: SqlStore) -> dict[str, list[Sequence[Any]]]:
    columns = ", ".join(["bucket_start", "last_at_ms", *rollup_columns()])
    return {
        t.name: store._q(f"SELECT {columns} FROM {t.table} ORDER BY bucket_start")
        for t in ROLLUP_TIERS
    }


def check_fast_path(synthetic: Synthetic, h: int, workdir: Path) -> None:
    """Ingest hour ``h`` reading by reading and compare with its closed-form buckets."""
    with (
        open_store(f"sqlite:///{workdir}/ingest.db") as real,
        open_store(f"sqlite:///{workdir}/fast.db") as fast,
    ):
        readings = list(synthetic.readings(h))
        for i in range(0, 3600, INGEST_BATCH):
            real.ingest(readings[i : i + INGEST_BATCH])
        fast.merge_buckets(synthetic.fast_buckets(h, h + 1, minute_from=h))
        mine, theirs = rollup_rows(real), rollup_rows(fast)
    for tier, rows in mine.items():
        assert len(rows) == len(theirs[tier]), tier
        for a_row, b_row in zip(rows, theirs[tier], strict=True):
            for a, b in zip(a_row, b_row, strict=True):
                if a != b and not math.isclose(a, b, rel_tol=1e-9):
                    raise SystemExit(f"fast path disagrees with ingest in {tier}: {a} != {b}")


def fill(url: str, synthetic: Synthetic, hours: int, now: dt.datetime) -> SqlStore:
    store = open_store(url, clock=lambda: now)
    real_from = max(0, hours - 24 * RAW_DAYS)
    chunk: list[Bucket] = []
    for bucket in synthetic.fast_buckets(0, real_from, minute_from=hours - 24 * MINUTE_DAYS):
        chunk.append(bucket)
        if len(chunk) >= 20_000:
            store.merge_buckets(chunk)
            chunk = []
    store.merge_buckets(chunk)
    batch: list[Reading] = []
    for h in range(real_from, hours):
        for reading in synthetic.readings(h):
            batch.append(reading)
            if len(batch) == INGEST_BATCH:
                store.ingest(batch)
                batch = []
    store.ingest(batch)
    store.sweep()
    store._q("PRAGMA wal_checkpoint(TRUNCATE)")
    return store


def time_view(store: SqlStore, now: dt.datetime, span: dt.timedelta, points: int) -> float:
    samples = []
    for _ in range(30):
        started = time.perf_counter()
        result = store.history(METER, now - span, now, points=points)
        samples.append(time.perf_counter() - started)
        assert 0 < len(result) <= points
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="directory for the databases (default: tmp)")
    args = parser.parse_args()
    hours = round(args.years * 365.25) * 24
    now = START + dt.timedelta(hours=hours)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        synthetic = Synthetic(hours)
        check_fast_path(synthetic, hours - 1000, workdir)
        print(f"fast path == ingest on a sample hour: ok ({time.perf_counter() - started:.1f} s)")

        started = time.perf_counter()
        big = fill(f"sqlite:///{workdir}/years.db", synthetic, hours, now)
        fill_s = time.perf_counter() - started
        counts = {
            t: big._q(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("raw", "rollup_minute", "rollup_hour", "rollup_day")
        }
        page = big._q("PRAGMA page_size")[0][0]
        live = (big._q("PRAGMA page_count")[0][0] - big._q("PRAGMA freelist_count")[0][0]) * page
        size = big.size_bytes()
        print(
            f"\n{args.years:g} years at 1 Hz filled in {fill_s:.0f} s; rows after the default"
            f" retention sweep: {counts}"
        )
        print(
            f"DATABASE SIZE with default retention: {size / 1e6:.1f} MB on disk"
            f" ({live / 1e6:.1f} MB in use)   goal <= 1000 MB:"
            f" {'PASS' if size <= 1e9 else 'FAIL'}"
        )

        small_synthetic = Synthetic(24)
        small_now = START + dt.timedelta(hours=24)
        small = fill(f"sqlite:///{workdir}/day.db", small_synthetic, 24, small_now)
        print(
            f"\nhistory query, {args.points} points, median of 30"
            f" ({args.years:g} years of data vs 1 day of data):"
        )
        worst = 0.0
        for label, span in (
            ("year", dt.timedelta(days=365)),
            ("month", dt.timedelta(days=30)),
            ("day", dt.timedelta(days=1)),
        ):
            t_big = time_view(big, now, span, args.points)
            t_small = time_view(small, small_now, span, args.points)
            resolution = big.history(METER, now - span, now, args.points)[0].resolution
            worst = max(worst, t_big / t_small)
            print(
                f"  {label:5} view: {t_big * 1000:7.2f} ms vs {t_small * 1000:6.2f} ms"
                f"  ratio {t_big / t_small:4.2f}  (reads {resolution} rows)"
            )
        print(f"WORST RATIO: {worst:.2f}   goal <= 3: {'PASS' if worst <= 3 else 'FAIL'}")
        big.close()
        small.close()


if __name__ == "__main__":
    main()
