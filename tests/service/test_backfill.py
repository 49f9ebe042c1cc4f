"""History back-fill from the load profile (:mod:`mepgate.service.backfill`) on a real simulated
meter over TCP, with the real gateway and real SQLite/PostgreSQL stores.

The gap test runs the gateway's clock and the meter's at the same speed from one epoch
(:class:`~mepgate.service.clock.SpedClock`), so that hours pass in seconds: the gateway polls,
stops for two simulated days while the meter records its profile (both clocks jump them at once,
:mod:`tests.support.time_jump`), starts again,
and the history API's hour and day totals must then equal the meter's own register deltas (its
snapshots at those moments) within 1 Wh, with only the missing intervals read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from mepgate.cli.main import cli
from mepgate.client import LinkTiming
from mepgate.config import MeterConfig, Settings, StorageConfig, WebConfig, save_settings
from mepgate.proto import AccessLevel
from mepgate.service.backfill import BackfillJob, Progress
from mepgate.service.clock import SpedClock
from mepgate.service.gateway import Gateway
from mepgate.service.poller import RetryPolicy
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, DEFAULT_RK, SimulatedMeter
from mepgate.simulator.model import LoadProfileShape, build_meter, model_of
from mepgate.simulator.model.load_profile import (
    STATUS_CLOCK_BACKWARD,
    STATUS_CLOCK_FORWARD,
    STATUS_POWER_FAIL,
)
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.tables.load_profile import lp_block_header_layout, lp_block_layout, lp_interval_layout
from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..support.time_jump import JumpingRealClock, jump_both
from ..support.wait import until

KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
MBK = DEFAULT_MBK.decode()
HOUR = dt.timedelta(hours=1)
FROZEN = 1e-9
"""A meter speed at which its clock stands still for a test's length: no interval closes while
the test compares what was stored with what the meter holds."""


class Rig:
    """A simulated meter served over TCP, and gateways started on one store, one clock."""

    def __init__(
        self,
        tmp_path: Path,
        store_url: str,
        meter: SimulatedMeter,
        clock: Any,
        interface: str = "mep",
    ) -> None:
        self.tmp_path = tmp_path
        self.store_url = store_url
        self.meter = meter
        self.clock = clock
        self.interface = interface
        self.sim = RunningSimulator(
            meter, keys=KEYS, timing=WireTiming(enabled=False), pty=False, interface=interface
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
                    key=SecretStr(MBK if self.interface == "mep" else DEFAULT_RK.decode()),
                    poll_interval=poll_interval,
                    interface=self.interface,  # type: ignore[arg-type]
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
        job: BackfillJob = self.gateway._pollers["house"][0].jobs[0]  # type: ignore[assignment]
        assert isinstance(job, BackfillJob)
        return job

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None

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

    def make(store_url: str, meter: SimulatedMeter, clock: Any, interface: str = "mep") -> Rig:
        rig = Rig(tmp_path, store_url, meter, clock, interface)
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


# -- the gap test ---------------------------------------------------------------------------------
SPEED = 3600.0  # a simulated hour per second


def test_gap_of_two_days_is_backfilled_exactly(
    make_rig: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mepgate.service.backfill")
    store_url = f"sqlite:///{tmp_path}/mepgate.db"
    real = JumpingRealClock()
    clock = SpedClock(SPEED, dt.datetime.now(dt.UTC).replace(microsecond=0), real)
    shape = LoadProfileShape(interval_min=15, depth_days=7, history=dt.timedelta(hours=12))
    rig: Rig = make_rig(store_url, meter_at(clock, SPEED, shape), clock)
    figures = asyncio.run(_gap_test(rig, real))
    print(figures)  # the report's figures (pytest -s)


async def _gap_test(rig: Rig, real: JumpingRealClock) -> dict[str, object]:
    started = time.monotonic()
    gateway = await rig.start()
    await backfilled(rig, since=started)
    first_run = rig.job().reads
    await asyncio.sleep(6)  # six simulated hours of live polling and profile updates
    before = rig.job().progress_record
    assert before is not None
    assert before.newest is not None
    stopped_at = rig.clock()
    await rig.stop()
    # Two simulated days without the gateway; the meter goes on recording its profile.  Both
    # clocks jump them at once (tests/support/time_jump.py): the meter's model still steps
    # through every simulated second of them.
    jump_both(rig.sim, rig.meter, real, 2 * 86_400 / SPEED)
    gateway = await rig.start()
    wanted = before.newest + 2 * 96

    def caught_up() -> bool:
        newest = (rig.job().progress_record or Progress()).newest
        return rig.job().status().state == "idle" and newest is not None and newest >= wanted

    await until(caught_up, what="the gap's intervals", timeout=60)
    job = rig.job()
    # What the restart read: only the intervals newer than those stored before the stop.
    dims = rig.model.dims
    header = lp_block_header_layout(dims).size
    size = lp_interval_layout(dims).size
    full = lp_block_layout(dims).size * dims.load_profile.data_set(1).number_of_blocks
    after = job.progress_record
    assert after is not None
    assert after.newest is not None
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


# -- first installation, a wrapped profile, an interruption ---------------------------------------
def profile_rows(store_url: str) -> list[tuple[int, int, int]]:
    """(number, end_ms, status) of every stored profile interval, and the rollups' count."""
    from mepgate.store import open_store  # noqa: PLC0415

    with open_store(store_url) as store:
        rows = store._q("SELECT number, end_ms, status FROM profile_interval ORDER BY number")
        return [(int(a), int(b), int(c)) for a, b, c in rows]


def rollup_profile_count(store_url: str, table: str = "rollup_minute") -> int:
    from mepgate.store import open_store  # noqa: PLC0415

    with open_store(store_url) as store:
        return int(store._q(f"SELECT coalesce(sum(profile_n), 0) FROM {table}")[0][0])


def test_first_installation_reads_the_whole_wrapped_profile(make_rig: Any, store_url: str) -> None:
    """A meter installed three days ago with a two-day profile: it wrapped, and the gateway's
    first start reads all it holds -- exactly BT64's valid bytes, once."""
    clock = SpedClock(1.0, dt.datetime.now(dt.UTC))
    shape = LoadProfileShape(interval_min=15, depth_days=2, history=dt.timedelta(days=3))
    rig: Rig = make_rig(store_url, meter_at(clock, FROZEN, shape), clock)

    async def scenario() -> BackfillJob:
        await rig.start()
        try:
            await backfilled(rig, since=time.monotonic())
            return rig.job()
        finally:
            await rig.stop()

    job = asyncio.run(scenario())
    held = sum(len(block) for block in rig.model.load_profile.blocks)
    assert rig.model.load_profile.bt63().data_sets[0].overflow  # it wrapped
    rows = profile_rows(store_url)
    assert len(rows) == held == 192
    assert [n for n, _, _ in rows] == list(range(rows[0][0], rows[0][0] + held))
    assert rollup_profile_count(store_url) == held
    assert job.bytes_read == len(rig.model.load_profile.bt64_bytes())  # every block, once
    truth = {int(end.timestamp() * 1000): v for end, v in rig.recorded().items()}
    assert {end for _, end, _ in rows} == set(truth)
    status = job.status()
    assert status.state == "idle"
    assert status.warning is None  # nothing lost: the gateway never had older intervals
    # The command line says what the store holds (the gateway is not running: it says so).
    config = rig.tmp_path / "mepgate.toml"
    save_settings(rig.settings(), config)
    result = CliRunner().invoke(
        cli, ["backfill", "--status", "--config", str(config), "--gateway", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 0, result.output
    assert "the gateway does not answer at http://127.0.0.1:9" in result.output
    assert f"stored: {held} intervals" in result.output
    assert "compared with the live readings" in result.output


def test_a_gap_longer_than_the_profile_says_what_was_lost(make_rig: Any, tmp_path: Path) -> None:
    speed = 7200.0
    store_url = f"sqlite:///{tmp_path}/mepgate.db"
    real = JumpingRealClock()
    clock = SpedClock(speed, dt.datetime.now(dt.UTC).replace(microsecond=0), real)
    shape = LoadProfileShape(interval_min=15, depth_days=0.5)
    rig: Rig = make_rig(store_url, meter_at(clock, speed, shape), clock)

    async def scenario() -> tuple[Progress, str | None]:
        await rig.start()
        await asyncio.sleep(2)  # four simulated hours
        before = rig.job().progress_record
        await rig.stop()
        jump_both(rig.sim, rig.meter, real, 86_400 / speed)  # a day: twice the profile's depth
        await rig.start()
        try:
            await until(
                lambda: (
                    (rig.job().progress_record or Progress()).lost > 0
                    and rig.job().status().state == "idle"
                ),
                what="the loss noticed",
                timeout=30,
            )
            assert before is not None
            return rig.job().progress_record or Progress(), rig.job().status().warning
        finally:
            await rig.stop()

    progress, warning = asyncio.run(scenario())
    # More than half a day was overwritten (a day's gap, half a day of depth): the hole in the
    # stored numbers is exactly what the job says it lost.
    assert progress.lost > 48
    assert warning is not None
    assert f"{progress.lost} profile intervals were overwritten" in warning
    numbers = [n for n, _, _ in profile_rows(store_url)]
    assert len(numbers) == len(set(numbers))  # nothing twice
    holes = [b - a - 1 for a, b in itertools.pairwise(numbers) if b - a > 1]
    assert holes == [progress.lost]


# One database is enough here: this test is about the line; the store's side of it runs on
# SQLite and PostgreSQL in tests/store/.
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_interrupted_backfill_resumes_without_duplicates(make_rig: Any, store_url: str) -> None:
    """Stopped after a few reads of a three-day profile (three blocks, at 9600 Bd), started
    again: the rest is read, nothing twice."""
    clock = SpedClock(1.0, dt.datetime.now(dt.UTC))
    shape = LoadProfileShape(interval_min=15, depth_days=3, history=dt.timedelta(days=3))
    meter = meter_at(clock, FROZEN, shape)
    rig: Rig = make_rig(store_url, meter, clock)
    rig.sim.stop()
    rig.sim = RunningSimulator(meter, keys=KEYS, timing=WireTiming(), pty=False)  # 9600 Bd
    rig.sim.start()

    async def scenario() -> tuple[int, int, BackfillJob]:
        # Polls 2 s apart: room for the steps however busy the machine (the pace of steps
        # between 1 s polls is benchmarks/backfill.py's business).
        await rig.start(poll_interval=2.0)
        await until(lambda: rig.job().reads >= 4, what="a few reads", timeout=120)
        first = rig.job().intervals_read
        await rig.stop()
        stored_first = len(profile_rows(store_url))
        await rig.start(poll_interval=2.0)
        try:
            await backfilled(rig, since=time.monotonic(), timeout=300)
            return first, stored_first, rig.job()
        finally:
            await rig.stop()

    first, stored_first, second = asyncio.run(scenario())
    held = sum(len(block) for block in rig.model.load_profile.blocks)
    rows = profile_rows(store_url)
    assert 0 < stored_first < held
    assert len(rows) == len({n for n, _, _ in rows}) == held
    assert rollup_profile_count(store_url, "rollup_hour") == held  # each in the rollups once
    # The second run read only what the first had not stored.
    assert second.intervals_read == held - stored_first
    assert first >= stored_first


# -- flags, an outage and clock changes -----------------------------------------------------------
def test_outage_and_clock_changes_are_flagged_per_interval(make_rig: Any, store_url: str) -> None:
    from mepgate.proto import ProcedureCall  # noqa: PLC0415
    from mepgate.proto.procedures import EP16_CHANGE_CLOCK_BY_DELTA  # noqa: PLC0415

    speed = 60.0  # a one-minute interval per second
    clock = SpedClock(speed, dt.datetime.now(dt.UTC).replace(microsecond=0))
    shape = LoadProfileShape(interval_min=1, depth_days=1)
    meter = meter_at(clock, speed, shape)
    rig: Rig = make_rig(store_url, meter, clock)

    def change(seconds: int) -> None:
        delta = seconds.to_bytes(4, "little", signed=True)
        call = ProcedureCall(number=EP16_CHANGE_CLOCK_BY_DELTA, psn=1, parameters=delta)
        model_of(meter).run_procedure(call, AccessLevel.ADVANCED)

    async def scenario() -> tuple[Any, str]:
        await rig.start()
        try:
            await backfilled(rig, since=time.monotonic())
            await asyncio.to_thread(rig.sim.call, lambda: meter.reboot(time.monotonic(), 77))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(rig.sim.call, lambda: change(5))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(rig.sim.call, lambda: change(-5))
            await until(
                lambda: {2, 4, 8} <= {s & 0b1110 for _, _, s in profile_rows(store_url)},
                what="the flagged intervals stored",
                # A bound, not a speed goal: ~5 s alone; the reboot ends the session, and on a
                # busy machine its retries back off (1, 2, 4... s) before the rescan.
                timeout=120,
            )
            assert rig.gateway is not None
            AdminPassword(rig.tmp_path).set("correct horse battery staple")
            app = create_app(rig.gateway, data_dir=rig.tmp_path)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
                api = (await client.get("/api/v1/profile", params={"flagged": "true"})).json()
                page = (await client.get("/meter")).text
            return api, page
        finally:
            await rig.stop()

    api, page = asyncio.run(scenario())
    shown = {flag for i in api["intervals"] for flag in i["flags"]}
    assert {"power-fail", "clock-forward", "clock-backward"} <= shown
    assert api["backfill"]["stored"] >= len(api["intervals"])
    assert "History back-fill from the load profile" in page
    assert "Intervals with status flags" in page
    assert "power-fail" in page
    recorded = {
        int(i.end.timestamp() * 1000): i.status for b in rig.model.load_profile.blocks for i in b
    }
    for _, end, status in profile_rows(store_url):
        assert recorded[end] == status  # every stored flag is the meter's, none invented
    flagged = [s for s in recorded.values() if s]
    assert STATUS_POWER_FAIL in flagged
    assert STATUS_CLOCK_FORWARD in flagged
    assert STATUS_CLOCK_BACKWARD in flagged


# -- a meter without a load profile ---------------------------------------------------------------
def test_a_meter_without_a_load_profile_is_unsupported_and_polled(
    make_rig: Any, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path}/mepgate.db"
    clock = SpedClock(1.0, dt.datetime.now(dt.UTC))
    rig: Rig = make_rig(store_url, meter_at(clock, 1.0, LoadProfileShape(present=False)), clock)

    async def scenario() -> tuple[Any, int, Any]:
        gateway = await rig.start()
        try:
            await until(
                lambda: rig.job().status().state == "unsupported",
                what="the job unsupported",
            )
            count = gateway.meters()[0].readings_stored
            await until(
                lambda: gateway.meters()[0].readings_stored >= count + 3,
                what="readings going on",
            )
            app = create_app(gateway, data_dir=gateway.data_dir)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
                health = (await client.get("/api/v1/health")).json()
            return health, gateway.meters()[0].readings_stored, rig.job().status()
        finally:
            await rig.stop()

    health, stored, status = asyncio.run(scenario())
    assert status.detail.startswith("the meter has no load profile")
    assert "live polling is not affected" in status.detail
    meter = health["meters"][0]
    assert meter["problems"] == []
    assert any(w.startswith("backfill: the meter has no load profile") for w in meter["warnings"])
    assert stored > 0
    assert profile_rows(store_url) == []


# -- disagreements between the live readings and the profile ---------------------------------------
def test_disagreements_are_counted_kept_and_shown(store_url: str) -> None:
    """Four hours of live readings and of profile, the third hour 30 % apart: the job counts one
    disagreement in three hours compared, keeps it across a restart and names it as a
    warning; the history shows the profile's registers."""
    from mepgate.reading import Reading  # noqa: PLC0415
    from mepgate.service.jobs import JobContext  # noqa: PLC0415
    from mepgate.store import AsyncStore, ProfileInterval, open_store  # noqa: PLC0415

    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    store = open_store(store_url)
    quarter = dt.timedelta(minutes=15)
    store.ingest_profile(
        "house",
        [
            ProfileInterval(
                number=n,
                end=t0 + (n + 1) * quarter,
                meter_end=t0 + (n + 1) * quarter,
                interval_s=900,
                forward_active_energy_wh=10_000.0 + (n + 1) * 250.0,
                reverse_active_energy_wh=0.0,
            )
            for n in range(16)
        ],
    )
    live, wh = [], 10_000.0
    for s in range(0, 4 * 3600, 5):
        power = 1300.0 if s // 3600 == 2 else 1000.0
        wh += power * 5 / 3600
        live.append(
            Reading(
                meter="house",
                at=t0 + dt.timedelta(seconds=s + 4),
                forward_active_energy_wh=round(wh, 3),
                reverse_active_energy_wh=0.0,
                active_power_import_w=power,
            )
        )
    store.ingest(live)
    now = t0 + dt.timedelta(hours=4, minutes=5)

    def context() -> JobContext:
        return JobContext(
            meter="house",
            session=1,
            identity=None,
            clock_offset=dt.timedelta(seconds=1),
            now=lambda: now,
            monotonic=time.monotonic,
            gateway_time=lambda t: t,
        )

    async def compare(job: BackfillJob) -> None:
        job._progress = Progress.from_json(await AsyncStore(store).state("house", "backfill"))
        await job._compare(context())

    job = BackfillJob("house", lambda: AsyncStore(store), compare_edge_s=10)
    try:
        asyncio.run(compare(job))
        again = BackfillJob("house", lambda: AsyncStore(store), compare_edge_s=10)
        asyncio.run(compare(again))  # after a restart: the same hours are not counted twice
        points = store.history("house", t0, t0 + dt.timedelta(hours=4), points=4)
    finally:
        store.close()
    progress = again.progress_record
    assert progress is not None
    assert (progress.compared, progress.disagreements) == (3, 1)
    assert progress.recent[0]["hour"] == (t0 + dt.timedelta(hours=2)).isoformat()
    warning = again.status().warning
    assert warning is not None
    assert "1 of 3 hours disagree between the live readings and the meter's load profile" in warning
    assert [p.energy_source for p in points] == ["profile"] * 4
    assert points[2].forward_active_energy_wh == 10_000.0 + 12 * 250.0


def test_a_noisy_line_slows_the_backfill_but_stores_every_interval_once(
    make_rig: Any, tmp_path: Path
) -> None:
    """Replies lost and damaged: failed steps are retried by the job, polling goes on, and in
    the end every interval of the profile is stored exactly once."""
    store_url = f"sqlite:///{tmp_path}/mepgate.db"
    clock = SpedClock(1.0, dt.datetime.now(dt.UTC))
    shape = LoadProfileShape(interval_min=15, depth_days=2, history=dt.timedelta(days=2))
    meter = meter_at(clock, FROZEN, shape)
    rig: Rig = make_rig(store_url, meter, clock)
    rig.sim.stop()
    rig.sim = RunningSimulator(
        meter,
        keys=KEYS,
        timing=WireTiming(enabled=False),
        faults="drop=0.1,corrupt=0.0005,seed=4",
        pty=False,
    )
    rig.sim.start()

    async def scenario() -> tuple[int, int, dict[str, int]]:
        gateway = await rig.start(poll_interval=0.5)
        try:
            await backfilled(rig, since=time.monotonic(), timeout=120)
            status = gateway.meters()[0]
            return status.readings_stored, rig.job().reads, status.link
        finally:
            await rig.stop()

    readings, reads, link = asyncio.run(scenario())
    assert link["timeouts"] + link["damaged_replies"] > 0  # the line was noisy indeed
    held = sum(len(block) for block in rig.model.load_profile.blocks)
    numbers = [n for n, _, _ in profile_rows(store_url)]
    assert len(numbers) == len(set(numbers)) >= held - 1  # an interval may close meanwhile
    assert rollup_profile_count(store_url) == len(numbers)
    assert readings > 0
    assert reads >= 8  # 192 intervals, 3682 bytes: at least 8 reads of 465


def test_an_optical_meter_is_backfilled_the_same_way(make_rig: Any, tmp_path: Path) -> None:
    """Through the optical port (ANSI C12.18, the read-only key): the same intervals, once."""
    store_url = f"sqlite:///{tmp_path}/mepgate.db"
    clock = SpedClock(1.0, dt.datetime.now(dt.UTC))
    shape = LoadProfileShape(interval_min=15, depth_days=1, history=dt.timedelta(days=1))
    rig: Rig = make_rig(store_url, meter_at(clock, FROZEN, shape), clock, "optical")

    async def scenario() -> BackfillJob:
        await rig.start()
        try:
            await backfilled(rig, since=time.monotonic(), timeout=120)
            return rig.job()
        finally:
            await rig.stop()

    job = asyncio.run(scenario())
    truth = {int(end.timestamp() * 1000) for end in rig.recorded()}
    rows = profile_rows(store_url)
    assert {end for _, end, _ in rows} == truth
    assert len(rows) == len(truth) == 96
    assert job.bytes_read == len(rig.model.load_profile.bt64_bytes())
