"""The events job (:mod:`mepgate.service.events`) on a real simulated meter over TCP: outages
injected in the model are read with the right times, only new entries are read, nothing twice
across a restart on the same database, a wrapped log, a reset log, an unknown code kept."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from mepgate.c1218.keys import parse_password
from mepgate.client import Backoff, MeterClient
from mepgate.client.optical import OpticalSession, OpticalTiming
from mepgate.errors import MepgateError
from mepgate.service.events import EventsJob, full_sequence, plan_elements, runs
from mepgate.service.jobs import JobContext
from mepgate.service.view import MeterIdentity
from mepgate.simulator.meter import DEFAULT_RK
from mepgate.simulator.model import MeterModel, model_of
from mepgate.simulator.model.events import EventId
from mepgate.simulator.model.happenings import EventSpecError, Happening, parse_events
from mepgate.simulator.model.load_profile import STATUS_POWER_FAIL
from mepgate.store import AsyncStore, MeterEvent, open_store
from mepgate.tables.events import HistoryLog
from mepgate.tables.ids import TableId

from ..conftest import SimulatorFactory
from .test_poller import fast_client

OFFSET = dt.timedelta(seconds=7)
"""The meter's clock runs this much ahead of the gateway's in these tests."""


def context(session: int = 1, serial: str | None = None) -> JobContext:
    identity = (
        None
        if serial is None
        else MeterIdentity(manufacturer="x", model="y", firmware="1", serial_number=serial)
    )
    return JobContext(
        meter="house",
        session=session,
        identity=identity,
        clock_offset=OFFSET,
        now=lambda: dt.datetime.now(dt.UTC),
        monotonic=lambda: 0.0,
        gateway_time=lambda t: t - OFFSET,
    )


PROGRESS: list[float] = []
"""The progress the job reported after each step of :func:`drain` (while working)."""


async def drain(job: EventsJob, client: MeterClient, ctx: JobContext) -> int:
    """Step the job until it is idle; return the steps taken (each one read)."""
    steps = 0
    PROGRESS.clear()
    while job.wants_to_run(ctx) and steps < 100:
        await job.step(client, ctx)
        steps += 1
        if (progress := job.status().progress) is not None:
            PROGRESS.append(progress)
    job_ctx_done = job.status()
    assert job_ctx_done.state in ("idle", "unsupported"), job_ctx_done
    return steps


async def pass_time(client: MeterClient, model: MeterModel, done: Callable[[], bool]) -> None:
    """Read the clock until ``done()``: the model lives as the meter is asked."""

    async def ticking() -> None:
        while not done():
            await client.read(TableId.BT52, offset=0, count=7)
            await asyncio.sleep(0.02)

    await asyncio.wait_for(ticking(), timeout=30)


def new_job(store: AsyncStore, seen: list[MeterEvent], *, tell_history: bool = True) -> EventsJob:
    """The job; ``tell_history``: the log found at the first read is told too (the gateway's
    job stores it only)."""
    return EventsJob(
        "house", store=lambda: store, on_events=seen.extend, interval=60, tell_history=tell_history
    )


@pytest.fixture
def store(tmp_path: Path) -> AsyncStore:
    return AsyncStore(open_store(f"sqlite:///{tmp_path / 'events.db'}"))


def test_pure_parts() -> None:
    assert full_sequence(70_000, 70_000 & 0xFFFF) == 70_000
    assert full_sequence(70_000, (70_000 - 3) & 0xFFFF) == 69_997
    header = HistoryLog(
        descending_order=False,
        overflow=True,
        circular_list=True,
        inhibit_overflow=False,
        number_of_valid_entries=100,
        last_entry_element=2,
        last_entry_sequence_number=250,
        number_of_unread_entries=0,
    )
    assert plan_elements(header, 100, 5) == [98, 99, 0, 1, 2]  # wraps at the capacity
    assert runs([98, 99, 0, 1, 2], 2) == [(98, 2), (0, 2), (2, 1)]
    assert parse_events("outage=300@600,tamper@900,clock=-30@1200") == (
        Happening("outage", 600, 300),
        Happening("tamper", 900, 0),
        Happening("clock", 1200, -30),
    )
    with pytest.raises(EventSpecError):
        parse_events("outage@5")


def client_for(url: str, interface: str) -> MeterClient:
    if interface == "mep":
        return fast_client(url)
    # The optical port with the read-only key (BT71/BT74: MK, PK or RK, optical guide).
    session = OpticalSession(url, parse_password(DEFAULT_RK.decode()), timing=OpticalTiming.fast())
    return MeterClient(session, backoff=Backoff(initial=0.05, maximum=0.1, attempts=1))


@pytest.mark.parametrize("interface", ["mep", "optical"])
def test_an_outage_is_read_with_its_times_and_flags(
    simulator_factory: SimulatorFactory, store: AsyncStore, interface: str
) -> None:
    sim = simulator_factory(profile="gen4-3phase", speed=600, interface=interface)
    model = model_of(sim.meter)
    seen: list[MeterEvent] = []

    async def scenario() -> None:
        async with client_for(sim.url or "", interface) as client:
            job = new_job(store, seen)
            await drain(job, client, context())
            before = len(seen)
            at = model.snapshot().simulated_time + dt.timedelta(minutes=5)
            model.schedule(Happening("outage", value_s=1800), at=at)
            model.schedule(Happening("tamper"), at=at + dt.timedelta(hours=1))
            await pass_time(client, model, lambda: len(model.events.history) >= before + 3)
            job._due = -1  # its next turn (the interval is the poller's business)
            await drain(job, client, context())
        truth = model.happenings.outages[-1]
        assert truth.end is not None
        assert truth.end - truth.start == dt.timedelta(seconds=1800)
        new = seen[before:]
        assert [e.code for e in new] == [1, 2, 47]
        assert [e.words for e in new] == [
            "power down (outage began)",
            "power up (outage ended)",
            "tamper attempt",
        ]
        assert new[0].meter_time == truth.start
        assert new[1].meter_time == truth.end
        assert new[0].gateway_time == truth.start - OFFSET
        outages = await store.outages("house")
        assert [(o.start, o.end, o.duration_s) for o in outages][-1] == (
            truth.start - OFFSET,
            truth.end - OFFSET,
            1800.0,
        )
        # Every load profile interval the outage overlaps carries the power-fail flag.
        intervals = [i for block in model.load_profile.blocks for i in block]
        length = dt.timedelta(seconds=model.load_profile.interval_s)
        overlapping = [i for i in intervals if i.end > truth.start and i.end - length < truth.end]
        assert overlapping
        assert all(i.status & STATUS_POWER_FAIL for i in overlapping)
        outside = [i for i in intervals if i.end <= truth.start and not i.status]
        assert outside or intervals[0].end > truth.start

    asyncio.run(scenario())


def test_nothing_twice_across_a_restart_and_only_new_entries_read(
    simulator_factory: SimulatorFactory, store: AsyncStore
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    model = model_of(sim.meter)
    now = model.snapshot().meter_clock
    for n in range(5):
        model.events.log(now - dt.timedelta(minutes=10 - n), EventId.TAMPER_ATTEMPT)
    first: list[MeterEvent] = []
    second: list[MeterEvent] = []

    async def scenario() -> None:
        async with fast_client(sim.url or "") as client:
            # A new installation: the log as found is stored, but it is history, not news.
            await drain(new_job(store, first, tell_history=False), client, context(serial="A1"))
            assert first == []
            first.extend(reversed(await store.events("house")))
            # The gateway restarts on the same database: a new job, the cursor from the store.
            again = new_job(store, second, tell_history=False)
            steps = await drain(again, client, context(serial="A1"))
            assert second == []
            assert steps == 2  # BT71 and BT74's header: no record read again
            model.events.log(model.snapshot().meter_clock, EventId.PRIMARY_POWER_DOWN)
            again._due = -1
            steps = await drain(again, client, context(serial="A1"))
            assert steps == 2  # the header, then the one new record
        assert [e.code for e in second] == [1]
        assert len({e.sequence for e in first}) == len(first) >= 5
        stored = await store.events("house", limit=1000)
        assert len(stored) == len({(e.sequence, e.meter_time) for e in stored})
        assert len(stored) == len(first) + 1

    asyncio.run(scenario())


def test_a_wrapped_log_a_reset_log_and_an_unknown_code(
    simulator_factory: SimulatorFactory, store: AsyncStore
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    model = model_of(sim.meter)
    capacity = model.events.actual.number_of_history_entries
    seen: list[MeterEvent] = []

    async def scenario() -> None:
        async with fast_client(sim.url or "") as client:
            job = new_job(store, seen)
            await drain(job, client, context())
            start = len(seen)
            # More events than the log holds between two reads: the newest `capacity` are read,
            # in pieces of at most max_read bytes, and the loss is said.
            base = model.snapshot().meter_clock
            extra = capacity + 30
            for n in range(extra):
                model.events.log(base + dt.timedelta(seconds=n), EventId.TAMPER_ATTEMPT, argument=n)
            job._due = -1
            steps = await drain(job, client, context())
            got = seen[start:]
            assert len(got) == capacity
            assert [int.from_bytes(e.argument, "little") for e in got] == list(range(30, extra))
            assert job.possibly_lost == 30
            assert "overwritten" in job.status().detail
            record = 12 + model.events.actual.history_argument_length
            assert steps >= 1 + capacity * record // client.max_read
            # Its progress through the pieces, as the meter page shows it.
            assert sorted(PROGRESS) == PROGRESS
            assert len(PROGRESS) == steps - 1  # after the header and each piece but the last
            assert PROGRESS[0] == 0
            assert all(0 <= p < 1 for p in PROGRESS)
            # A manufacturer id and an id no table knows: kept, in words, with the argument.
            model.events.log(base + dt.timedelta(hours=1), 0x805, argument=0xBEEF)
            model.events.log(base + dt.timedelta(hours=1, seconds=1), 0x3FF, argument=0x0102)
            job._due = -1
            await drain(job, client, context())
            assert [e.words for e in seen[-2:]] == [
                "manufacturer event 5 (argument efbe)",
                "event 1023 (argument 0201)",
            ]
            # The meter is reset: its sequence numbers start again; its new entries are read.
            model.events.reset()
            model.events.log(base + dt.timedelta(hours=2), EventId.PRIMARY_POWER_UP)
            job._due = -1
            before = len(seen)
            await drain(job, client, context())
            assert [(e.code, e.sequence) for e in seen[before:]] == [(2, 1)]

    asyncio.run(scenario())


def test_a_swapped_meter_has_its_whole_log_read(
    simulator_factory: SimulatorFactory, store: AsyncStore
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    model = model_of(sim.meter)
    now = model.snapshot().meter_clock
    for n in range(3):
        model.events.log(now - dt.timedelta(minutes=5 - n), EventId.TAMPER_ATTEMPT)
    seen: list[MeterEvent] = []

    async def scenario() -> None:
        async with fast_client(sim.url or "") as client:
            await drain(new_job(store, seen), client, context(serial="A1"))
            assert len(seen) == 3
            # Another meter on the port (another serial number), its log at the same sequence
            # numbers: read whole, since the cursor is the other meter's.
            model.events.reset()
            for n in range(3):
                model.events.log(now + dt.timedelta(minutes=n), EventId.PRIMARY_POWER_UP)
            await drain(new_job(store, seen), client, context(serial="B2"))

    asyncio.run(scenario())
    assert [e.code for e in seen[3:]] == [2, 2, 2]
    assert [e.sequence for e in seen[3:]] == [1, 2, 3]


def test_a_noisy_line_delays_events_but_loses_or_repeats_none(
    simulator_factory: SimulatorFactory, store: AsyncStore
) -> None:
    sim = simulator_factory(profile="gen4-3phase", faults="corrupt=0.02,seed=3")
    model = model_of(sim.meter)
    now = model.snapshot().meter_clock
    for n in range(60):
        model.events.log(now - dt.timedelta(minutes=60 - n), EventId.TAMPER_ATTEMPT, argument=n)
    seen: list[MeterEvent] = []
    clock = [0.0]
    ctx = dataclasses.replace(context(), monotonic=lambda: clock[0])
    failures: list[str] = []

    async def scenario() -> None:
        async with fast_client(sim.url or "") as client:
            job = new_job(store, seen)
            for _ in range(400):
                if not job.wants_to_run(ctx):
                    if job.status().state == "idle":
                        break
                    clock[0] += 1.0  # waiting out the retry delay after a failure
                    continue
                try:
                    await job.step(client, ctx)
                except MepgateError as error:
                    job.failed(error, ctx)
                    failures.append(job.status().state)
                    assert not job.wants_to_run(ctx)  # it waits before trying again
            assert job.status().state == "idle"

    asyncio.run(scenario())
    assert failures  # the line did damage some replies (else this test proves nothing)
    assert set(failures) == {"failed"}
    assert [int.from_bytes(e.argument, "little") for e in seen] == list(range(60))


def test_a_first_read_interrupted_goes_on_as_history_after_a_restart(
    simulator_factory: SimulatorFactory, store: AsyncStore
) -> None:
    sim = simulator_factory(profile="gen4-3phase")
    model = model_of(sim.meter)
    now = model.snapshot().meter_clock
    for n in range(60):
        model.events.log(now - dt.timedelta(minutes=60 - n), EventId.TAMPER_ATTEMPT, argument=n)
    told: list[MeterEvent] = []

    async def scenario() -> None:
        async with fast_client(sim.url or "") as client:
            first = new_job(store, told, tell_history=False)
            for _ in range(3):  # BT71, the header, the first piece: then the gateway stops
                await first.step(client, context())
            assert 0 < len(await store.events("house")) < 60
            again = new_job(store, told, tell_history=False)
            await drain(again, client, context())
            assert len(await store.events("house")) == 60
            assert told == []  # the rest of the log as found is history too
            model.events.log(model.snapshot().meter_clock, EventId.PRIMARY_POWER_DOWN)
            again._due = -1
            await drain(again, client, context())
        assert [e.code for e in told] == [1]  # what came after is news

    asyncio.run(scenario())


def test_sequence_numbers_taken_by_the_alternate_log_are_no_loss(
    simulator_factory: SimulatorFactory, store: AsyncStore
) -> None:
    """MEP guide, BT74: the sequence numbers are shared with the alternate log (ET79), so the
    primary log has gaps; a gap in a log that is not full lost nothing."""
    sim = simulator_factory(profile="gen4-3phase")
    model = model_of(sim.meter)
    now = model.snapshot().meter_clock
    seen: list[MeterEvent] = []

    def log(code: EventId, minute: int) -> None:
        model.events.log(now + dt.timedelta(minutes=minute), code)

    async def scenario() -> None:
        async with fast_client(sim.url or "") as client:
            job = new_job(store, seen)
            log(EventId.PRIMARY_POWER_DOWN, 0)
            await drain(job, client, context())
            model.events.skip_sequence_numbers(5)  # five numbers went to ET79 meanwhile
            log(EventId.PRIMARY_POWER_UP, 1)
            job._due = -1
            await drain(job, client, context())
            assert job.possibly_lost == 0

    asyncio.run(scenario())
    assert [(e.code, e.sequence) for e in seen] == [(1, 1), (2, 7)]
