"""History back-fill from the load profile (:mod:`mepgate.service.backfill`) on a real simulated
meter over TCP, with the real gateway and real SQLite/PostgreSQL stores.

The gap test runs the gateway's clock and the meter's at the same speed from one epoch
(:class:`~mepgate.service.clock.SpedClock`), so that two days pass in under a minute: the
gateway polls, stops for two simulated days while the meter records its profile, starts again,
and the history API's hour and day totals must then equal the meter's own register deltas (its
snapshots at those moments) within 1 Wh, with only the missing intervals read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from mepgate.client import LinkTiming
from mepgate.config import MeterConfig, Settings, StorageConfig, WebConfig
from mepgate.proto import AccessLevel
from mepgate.service.backfill import STATE, BackfillJob, Progress
from mepgate.service.clock import SpedClock
from mepgate.service.gateway import Gateway
from mepgate.service.poller import RetryPolicy
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, SimulatedMeter
from mepgate.simulator.model import LoadProfileShape, build_meter, ground_truth, model_of
from mepgate.simulator.model.load_profile import (
    STATUS_CLOCK_BACKWARD,
    STATUS_CLOCK_FORWARD,
    STATUS_POWER_FAIL,
)
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.tables.load_profile import lp_block_header_layout, lp_block_layout, lp_interval_layout
from mepgate.web import create_app

from ..support.wait import until

KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
MBK = DEFAULT_MBK.decode()
HOUR = dt.timedelta(hours=1)


class Rig:
    """A simulated meter served over TCP, and gateways started on one store, one clock."""

    def __init__(self, tmp_path: Path, store_url: str, meter: SimulatedMeter, clock: Any) -> None:
        self.tmp_path = tmp_path
        self.store_url = store_url
        self.meter = meter
        self.clock = clock
        self.sim = RunningSimulator(
            meter, keys=KEYS, timing=WireTiming(enabled=False), pty=False
        )
        self.sim.start()
        self.gateway: Gateway | None = None

    @property
    def model(self) -> Any:
        return model_of(self.meter)

    def settings(self, poll_interval: float = 1.0) -> Settings:
        assert self.sim.url is not None
        return Settings(
            meter=[
                MeterConfig(
                    name="house",
                    port=self.sim.url,
                    key=SecretStr(MBK),
                    poll_interval=poll_interval,
                )
            ],
            storage=StorageConfig(url=self.store_url, timezone="UTC"),
            web=WebConfig(public_dashboard=True),
        )

    async def start(self, poll_interval: float = 1.0) -> Gateway:
        self.gateway = Gateway(
            self.settings(poll_interval),
            data_dir=self.tmp_path,
            config_path=None,
            timing=LinkTiming.fast(),
            retry=RetryPolicy(initial=0.1, maximum=0.4),
            batch_interval=0.2,
            clock=self.clock,
        )
        await self.gateway.start()
        return self.gateway

    def job(self) -> BackfillJob:
        assert self.gateway is not None
        job = self.gateway._pollers["house"][0].jobs[0]
        assert isinstance(job, BackfillJob)
        return job

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None

    def advance(self) -> None:
        """Move the model to the meter's time now (no client is connected meanwhile)."""
        ground_truth(self.meter, time.monotonic())

    def recorded(self) -> dict[dt.datetime, int]:
        """The meter's own forward register at each interval end it holds (ground truth)."""
        return {
            interval.end: interval.values[0]
            for block in self.model.load_profile.blocks
            for interval in block
        }

    def close(self) -> None:
        self.sim.stop()


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Any]:
    rigs: list[Rig] = []

    def make(store_url: str, meter: SimulatedMeter, clock: Any) -> Rig:
        rig = Rig(tmp_path, store_url, meter, clock)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:  # each test stops its gateways in its own event loop
        rig.close()


def meter_at(clock: Any, speed: float, shape: LoadProfileShape, seed: int = 5) -> SimulatedMeter:
    """A meter whose clock reads the gateway's ``clock`` now and runs at ``speed``."""
    return build_meter(
        "gen4-3phase",
        seed=seed,
        start=clock(),
        speed=speed,
        origin=time.monotonic(),
        keys=KEYS,
        load_profile=shape,
    )


async def backfilled(rig: Rig, *, since: float, timeout: float = 60.0) -> None:
    """Wait until the job has planned and finished a run after ``since`` (monotonic)."""
    job = rig.job()
    gateway = rig.gateway
    assert gateway is not None
    task = gateway._pollers["house"][1]
    await until(
        lambda: job.status().state == "idle" and job.reads > 0 and not job._pieces,
        what="the back-fill to finish",
        tasks=[task],
        timeout=timeout,
    )


async def history(gateway: Gateway, start: dt.datetime, end: dt.datetime, points: int) -> Any:
    app = create_app(gateway, data_dir=gateway.data_dir)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get(
            "/api/v1/history",
            params={
                "meter": "house",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "points": points,
            },
        )
    assert response.status_code == 200, response.text
    return response.json()


# -- the gap test -----------------------------------------------------------------------------------
SPEED = 3600.0  # a simulated hour per second


def test_gap_of_two_days_is_backfilled_exactly(
    make_rig: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mepgate.service.backfill")
    store_url = f"sqlite:///{tmp_path}/mepgate.db"
    clock = SpedClock(SPEED, dt.datetime.now(dt.UTC).replace(microsecond=0))
    shape = LoadProfileShape(interval_min=15, depth_days=7, history=dt.timedelta(hours=12))
    rig = make_rig(store_url, meter_at(clock, SPEED, shape), clock)
    figures = asyncio.run(_gap_test(rig))
    print(figures)  # the report's figures (pytest -s)


async def _gap_test(rig: Rig) -> dict[str, object]:
    started = time.monotonic()
    gateway = await rig.start()
    await backfilled(rig, since=started)
    first_run = rig.job().reads
    await asyncio.sleep(6)  # six simulated hours of live polling and profile updates
    before = rig.job().progress_record
    assert before is not None and before.newest is not None
    stopped_at = rig.clock()
    await rig.stop()
    # Two simulated days without the gateway; the meter goes on recording its profile.
    gap_end = time.monotonic() + 2 * 86_400 / SPEED
    while time.monotonic() < gap_end:
        rig.advance()
        await asyncio.sleep(0.5)
    restarted = time.monotonic()
    gateway = await rig.start()
    await until(
        lambda: rig.job().progress_record is not None
        and rig.job().status().state == "idle"
        and rig.job().reads > 0
        and (rig.job().progress_record or Progress()).newest is not None
        and (rig.job().progress_record or Progress()).newest
        >= before.newest + 2 * 96,
        what="the gap's intervals",
        timeout=60,
    )
    job = rig.job()
    # What the restart read: only the intervals newer than those stored before the stop.
    dims = rig.model.dims
    header = lp_block_header_layout(dims).size
    size = lp_interval_layout(dims).size
    full = lp_block_layout(dims).size * dims.load_profile.data_set(1).number_of_blocks
    after = job.progress_record
    assert after is not None and after.newest is not None
    assert job.intervals_read == after.newest - before.newest
    assert job.bytes_read == job.intervals_read * size + job.headers_read * header
    assert job.bytes_read < full
    await asyncio.sleep(2)
    end = rig.clock()
    await rig.stop()
    gateway = await rig.start()  # the same store, read through the web API
    try:
        truth = rig.recorded()
        first_hour = min(t for t in truth if t.minute == 0) + HOUR
        last_hour = max(t for t in truth if t.minute == 0 and t <= end) - HOUR
        hours = await history(gateway, first_hour - HOUR, last_hour + HOUR, 500)
        points = {dt.datetime.fromisoformat(p["t"]): p for p in hours["points"]}
        assert all(p["resolution"] == "hour" for p in hours["points"])
        checked = 0
        hour = first_hour
        while hour < last_hour:
            previous, this = points[hour - HOUR], points[hour]
            got = this["forward_active_energy_wh"] - previous["forward_active_energy_wh"]
            expected = truth[hour + HOUR] - truth[hour]
            assert abs(got - expected) <= 1, (hour, got, expected)
            assert this["energy_source"] == "profile"
            checked += 1
            hour += HOUR
        assert checked >= 48
        days = await history(gateway, first_hour - dt.timedelta(days=1), end, 10)
        day_points = {dt.datetime.fromisoformat(p["t"]): p for p in days["points"]}
        day_checked = 0
        for day, point in sorted(day_points.items()):
            nxt = day + dt.timedelta(days=1)
            if day - dt.timedelta(days=1) in day_points and day in truth and nxt in truth:
                prev = day_points[day - dt.timedelta(days=1)]
                got = point["forward_active_energy_wh"] - prev["forward_active_energy_wh"]
                assert point["resolution"] == "day"
                assert abs(got - (truth[nxt] - truth[day])) <= 1, (day, got)
                day_checked += 1
        assert day_checked >= 1
    finally:
        await rig.stop()
    return {
        "first installation reads": first_run,
        "gap read bytes": job.bytes_read,
        "gap intervals": job.intervals_read,
        "block headers": job.headers_read,
        "full profile bytes": full,
        "hours checked": checked,
        "days checked": day_checked,
        "stopped at": stopped_at.isoformat(),
        "took s": round(time.monotonic() - started, 1),
    }
