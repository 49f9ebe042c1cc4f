"""Jobs beside the live poll (:mod:`mepgate.service.jobs`): steps fit between polls, live
readings keep their pace, a failing job is named and polling goes on -- on a real simulated
meter over TCP, with the poller's clock virtual so that the pace is exact."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from mepgate.client import AuthenticationError, MeterClient, OutOfTimeError
from mepgate.reading import Reading
from mepgate.service.jobs import (
    FIRST_STEP_ESTIMATE_S,
    MAX_LIVE_GAP_S,
    JobContext,
    JobStatus,
    StepTimes,
    room_for_step,
    step_time_limit,
)
from mepgate.service.poller import MeterPoller
from mepgate.tables.ids import TableId

from .test_poller import FAST, VirtualTime, fast_client, meter_config, running, stopped


def test_a_step_fits_before_the_poll_is_due() -> None:
    assert room_for_step(
        now=10.0,
        last_reading_at=10.0,
        poll_due=11.0,
        poll_interval=1.0,
        poll_estimate=0.3,
        step_estimate=0.9,
    )


def test_a_step_may_delay_a_poll_only_within_the_live_gap() -> None:
    fits = dict(now=10.5, last_reading_at=10.0, poll_due=11.0, poll_interval=1.0)
    # 10.5 + 0.6 + 0.3 = 11.4 <= 10 + 2: the next reading is 1.4 s after the last one.
    assert room_for_step(**fits, poll_estimate=0.3, step_estimate=0.6)
    # 10.5 + 1.3 + 0.3 = 12.1 > 12: it would be 2.1 s.
    assert not room_for_step(**fits, poll_estimate=0.3, step_estimate=1.3)
    # 10.5 + 1.1 + 0.3 = 11.9: within 2 s, but not with the margin kept for what estimates miss.
    assert not room_for_step(**fits, poll_estimate=0.3, step_estimate=1.1)


def test_a_long_poll_interval_is_the_allowed_gap() -> None:
    assert room_for_step(
        now=10.0,
        last_reading_at=10.0,
        poll_due=70.0,
        poll_interval=60.0,
        poll_estimate=0.3,
        step_estimate=5.0,
    )
    assert MAX_LIVE_GAP_S == 2.0


def test_a_step_is_given_until_the_stretched_gap_and_at_least_one_try() -> None:
    # Last reading at 10, polls of 0.3 s, 1 s interval: the gap may stretch to 2 + 1 s, so a
    # step started at 10.2 has until 13 - 0.3 = 12.7.
    assert step_time_limit(
        now=10.2, last_reading_at=10.0, poll_interval=1.0, poll_estimate=0.3
    ) == pytest.approx(2.5)
    # Polls that take longer than the whole gap still leave a step its first read.
    assert step_time_limit(now=10.0, last_reading_at=10.0, poll_interval=1.0, poll_estimate=5.0)
    assert (
        step_time_limit(now=10.0, last_reading_at=10.0, poll_interval=60.0, poll_estimate=0.3)
        == 60.7
    )


def test_step_time_is_the_longest_recent_step() -> None:
    times = StepTimes()
    assert times.estimate("backfill") == FIRST_STEP_ESTIMATE_S
    for seconds in (0.5, 0.9, 0.4):
        times.add("backfill", seconds)
    assert times.estimate("backfill") == 0.9
    for _ in range(5):
        times.add("backfill", 0.3)
    assert times.estimate("backfill") == 0.3  # only the recent ones count
    assert times.estimate("events") == FIRST_STEP_ESTIMATE_S


class PieceJob:
    """Reads BT01 ``pieces`` times, one read per step; each step costs ``cost`` seconds of the
    poller's virtual clock (what a read of that size would take on the wire)."""

    def __init__(self, clock: VirtualTime, *, pieces: int, cost: float, table: int = 1) -> None:
        self.clock = clock
        self.left = pieces
        self.cost = cost
        self.table = table
        self.done_at: list[float] = []
        self.sessions: set[int] = set()
        self.errors: list[BaseException] = []
        self.name = "pieces"

    def wants_to_run(self, context: JobContext) -> bool:
        self.sessions.add(context.session)
        return self.left > 0

    async def step(self, client: MeterClient, context: JobContext) -> None:
        await client.read(self.table, offset=0, count=4)
        self.clock.now += self.cost
        self.left -= 1
        self.done_at.append(self.clock.now)

    def failed(self, error: BaseException, context: JobContext) -> None:
        self.errors.append(error)
        self.left = 0

    def status(self) -> JobStatus:
        if self.errors:
            return JobStatus(name=self.name, state="failed", last_error=str(self.errors[-1]))
        return JobStatus(name=self.name, state="working" if self.left else "idle")


def poller_with(
    port: str, readings: list[Reading], clock: VirtualTime, jobs: list[Any], interval: float
) -> MeterPoller:
    def received(reading: Reading) -> None:
        readings.append(reading)
        polled_at.append(clock.now)

    polled_at: list[float] = []
    poller = MeterPoller(
        meter_config(port, poll_interval=interval),
        connect=lambda: fast_client(port),
        on_reading=received,
        retry=FAST,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        jobs=jobs,
    )
    poller.polled_at = polled_at  # type: ignore[attr-defined]
    return poller


@pytest.mark.parametrize("cost", [0.3, 0.7])
def test_job_steps_run_between_polls_and_live_readings_keep_within_the_gap(
    simulator_factory: Any, cost: float
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    job = PieceJob(clock, pieces=12, cost=cost)
    readings: list[Reading] = []
    poller = poller_with(sim.url or "", readings, clock, [job], interval=1.0)

    async def scenario() -> None:
        task = await running(poller, lambda: job.left == 0 and len(readings) >= 8)
        await stopped(task)

    asyncio.run(scenario())
    polled_at: list[float] = poller.polled_at  # type: ignore[attr-defined]
    gaps = [b - a for a, b in itertools.pairwise(polled_at)]
    assert job.done_at
    assert not job.errors
    assert max(gaps) <= MAX_LIVE_GAP_S  # virtual time: the poller's own accounting
    # The job really shared the line: steps happened between readings, not all before them.
    first, last = polled_at[0], polled_at[-1]
    assert sum(first < at < last for at in job.done_at) >= 4
    assert job.sessions == {1}


def status_after_the_job_failed(sim: Any, clock: VirtualTime, job: PieceJob) -> Any:
    """Poll ``sim`` with ``job`` until the job failed and three readings came; the poller's
    status then (it must still be polling)."""
    readings: list[Reading] = []
    poller = poller_with(sim.url or "", readings, clock, [job], interval=0.5)

    async def scenario() -> Any:
        task = await running(poller, lambda: bool(job.errors) and len(readings) >= 3)
        status = poller.status()
        await stopped(task)
        return status

    status = asyncio.run(scenario())
    assert status.state == "polling"
    assert [j.state for j in status.jobs] == ["failed"]
    return status


def test_a_job_the_meter_refuses_is_named_and_polling_goes_on(simulator_factory: Any) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    job = PieceJob(clock, pieces=3, cost=0.1, table=int(TableId.ET54) + 200)  # no such table
    status = status_after_the_job_failed(sim, clock, job)
    assert status.jobs[0].last_error


class BrokenJob(PieceJob):
    async def step(self, client: MeterClient, context: JobContext) -> None:
        raise KeyError("a bug")


def test_a_bug_in_a_job_does_not_stop_polling(simulator_factory: Any) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    job = BrokenJob(clock, pieces=1, cost=0.1)
    status_after_the_job_failed(sim, clock, job)
    assert isinstance(job.errors[0], KeyError)


def test_a_long_step_neither_holds_up_short_ones_nor_starves(simulator_factory: Any) -> None:
    """A step longer than the live gap allows (3 s against 2 s) still runs, once right after a
    poll; the short job's steps go on around it."""
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    long = PieceJob(clock, pieces=3, cost=3.0)
    long.name = "long"
    short = PieceJob(clock, pieces=10, cost=0.2)
    short.name = "short"
    readings: list[Reading] = []
    poller = poller_with(sim.url or "", readings, clock, [long, short], interval=1.0)

    async def scenario() -> None:
        task = await running(poller, lambda: long.left == short.left == 0 and len(readings) >= 4)
        await stopped(task)

    asyncio.run(scenario())
    polled_at: list[float] = poller.polled_at  # type: ignore[attr-defined]
    assert not long.errors
    assert not short.errors
    # Each long step ran alone after a poll: no gap between readings holds two of them.
    gaps = [b - a for a, b in itertools.pairwise(polled_at)]
    assert max(gaps) < 2 * long.cost
    # The short job was not held up behind the long one: it finished first.
    assert short.done_at[-1] < long.done_at[-1]


class WrongKeyJob(PieceJob):
    async def step(self, client: MeterClient, context: JobContext) -> None:
        raise AuthenticationError("reading ET36")


def test_a_link_verdict_from_a_jobs_read_does_not_end_polling(simulator_factory: Any) -> None:
    """Only the polls judge the link: a job's read that failed with a link error -- here the
    worst, a wrong key, which stops a poller -- is the job's failure; polling goes on."""
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    job = WrongKeyJob(clock, pieces=1, cost=0.1)
    status_after_the_job_failed(sim, clock, job)
    assert isinstance(job.errors[0], AuthenticationError)


class GreedyJob(PieceJob):
    """Ignores the one-read-per-step rule: reads on and on (or a read that kept resending)."""

    reads = 0

    async def step(self, client: MeterClient, context: JobContext) -> None:
        for _ in range(100_000):
            await client.read(self.table, offset=0, count=4)
            self.reads += 1


def test_a_step_that_overruns_is_cut_short_and_polling_goes_on(simulator_factory: Any) -> None:
    """Every wait has a bound: a step is given until the live gap would stretch past
    MAX_LIVE_GAP_S + STEP_OVERRUN_S (MeterClient.time_limit); its next request is then not
    started, the step fails on the line and the polls go on."""
    sim = simulator_factory(profile="gen4-3phase")
    clock = VirtualTime()
    job = GreedyJob(clock, pieces=1, cost=0.1)
    status = status_after_the_job_failed(sim, clock, job)
    assert isinstance(job.errors[0], OutOfTimeError)
    assert "time" in (status.jobs[0].last_error or "")
    assert 0 < job.reads < 100_000
