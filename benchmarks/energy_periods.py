"""What the dashboard's bars cost the store: ``energy_periods`` (24 local hours, 30 local days)
and ``energy_totals`` (today, this month, per tier) on SQLite and PostgreSQL.

Run: ``python benchmarks/energy_periods.py [--days 40] [--postgres postgresql://...]``.

The store gets ``--days`` of one reading a minute (tier registers included) through the real
``ingest``, with the default retention swept (raw rows only for the last 2 days) and, on
PostgreSQL, vacuumed, as a gateway that ran that long holds them.  Each query is timed over
repeats; the median is printed.  A dashboard asks for the hours once a minute and for the
days every ten minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from zoneinfo import ZoneInfo

from mepgate.config import Retention
from mepgate.reading import Reading
from mepgate.store import SqlStore, open_store

ZONE = ZoneInfo("Europe/Copenhagen")
REPEATS = 20


def readings(days: int, now: dt.datetime) -> list[Reading]:
    start = now - dt.timedelta(days=days)
    out: list[Reading] = []
    forward = reverse = 0.0
    tiers = [0.0, 0.0, 0.0, 0.0]
    for i in range(days * 1440):
        at = start + dt.timedelta(minutes=i)
        step = 10.0 + (i % 37)
        forward += step
        reverse += (i % 5) / 2
        tiers[at.hour % 4] += step
        out.append(
            Reading(
                meter="house",
                at=at,
                forward_active_energy_wh=forward,
                reverse_active_energy_wh=reverse,
                forward_active_energy_tier1_wh=tiers[0],
                forward_active_energy_tier2_wh=tiers[1],
                forward_active_energy_tier3_wh=tiers[2],
                forward_active_energy_tier4_wh=tiers[3],
                active_power_import_w=step * 60,
            )
        )
    return out


def median_ms(call: object) -> float:
    assert callable(call)
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def measure(name: str, store: SqlStore, days: int, settle: object = None) -> None:
    now = dt.datetime.now(dt.UTC)
    batch = readings(days, now)
    began = time.perf_counter()
    for k in range(0, len(batch), 5000):
        store.ingest(batch[k : k + 5000])
    store.sweep(now=now)
    if callable(settle):
        settle()  # PostgreSQL: vacuum the swept rows, as autovacuum would soon
    print(f"{name}: {len(batch)} readings ingested in {time.perf_counter() - began:.1f} s")
    hours = median_ms(lambda: store.energy_periods("house", "hour", 24, now=now))
    month = median_ms(lambda: store.energy_periods("house", "day", 30, now=now))
    totals = median_ms(lambda: store.energy_totals("house", now=now))
    print(f"{name}: 24 hours {hours:.1f} ms, 30 days {month:.1f} ms, totals {totals:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--postgres", help="a PostgreSQL URL (a scratch schema is made in it)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        open_store(f"sqlite:///{folder}/bench.db", local_tz=ZONE, retention=Retention()) as s,
    ):
        measure("sqlite", s, args.days)
    if args.postgres:
        import psycopg  # noqa: PLC0415 -- only with --postgres

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            try:
                separator = "&" if "?" in args.postgres else "?"
                url = f"{args.postgres}{separator}options=-csearch_path%3D{schema}"
                with open_store(url, local_tz=ZONE, retention=Retention()) as store:
                    tables = ("raw", "rollup_minute", "rollup_hour", "rollup_day")

                    def vacuum() -> None:
                        for table in tables:
                            admin.execute(f"VACUUM ANALYZE {schema}.{table}")

                    measure("postgresql", store, args.days, vacuum)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
