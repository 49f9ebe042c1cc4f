"""The self-reads job on a real gateway polling a real simulated meter over TCP, stored in
SQLite and PostgreSQL: the meter's daily self-reads (at ``--speed``, so days pass in seconds)
are stored with the values the meter took, only new ones are read after a restart and none is
stored twice; a meter without BT26 makes the job 'unsupported', in words, while polling goes on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mepgate.client import Backoff, LinkTiming, MepSession, MeterClient, OutOfTimeError
from mepgate.proto import parse_key
from mepgate.service.gateway import Gateway
from mepgate.service.jobs import JobStatus
from mepgate.service.self_reads import SelfReadJob
from mepgate.simulator.model import build_meter, model_of
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.store import AsyncStore, SqlStore, open_store
from mepgate.tables.ids import TableId
from mepgate.tables.self_reads import HEADER_SIZE, entry_layout, entry_offset
from mepgate.web import create_app
from mepgate.web.auth import AdminPassword

from ..conftest import SIM_KEYS
from ..support.jobs import virtual_context
from ..support.time_jump import jump_meter
from ..support.wait import until
from .test_gateway import gateway_for, meter, settings_with, stored
from .test_poller import MBK

START = dt.datetime(2026, 6, 29, 22, 50, tzinfo=dt.UTC)  # 23:50 local: a self-read soon
FIRST_MIDNIGHT = START + dt.timedelta(minutes=10)
"""The meter's first self-read; the next come a day apart (no change of summer time here)."""
DAY = dt.timedelta(days=1)
SPEED = 14_400.0  # a simulated day in six seconds
CHECK_EVERY_S = 0.3
AHEAD = dt.timedelta(hours=1)
"""How long before a self-read the meter's clock is put when days are skipped: one self-read
is always taken while the gateway is polling."""


@pytest.fixture
def check(store_url: str) -> Iterator[SqlStore]:
    store = open_store(store_url)
    yield store
    store.close()


def simulated(
    self_read: str, profile: str = "gen4-3phase", speed: float = SPEED, faults: str = ""
) -> RunningSimulator:
    sim = RunningSimulator(
        build_meter(
            profile,
            seed=3,
            start=START,
            speed=speed,
            origin=time.monotonic(),
            keys=SIM_KEYS,
            self_read=self_read,
        ),
        keys=SIM_KEYS,
        seed=3,
        timing=WireTiming(enabled=False),
        faults=faults,
        pty=False,
    )
    sim.start()
    return sim


def skip_to_a_self_read(sim: RunningSimulator, passed: int) -> None:
    """Jump the meter's clock (no gateway connected) to ``AHEAD`` before its self-read after
    the next ``passed`` ones: those are taken on the way, as a meter left alone for those days
    takes them (:mod:`tests.support.time_jump`); the next is taken while the gateway polls."""
    meter = sim.meter
    now = sim.call(lambda: meter.clock.at(time.monotonic()))
    upcoming = max(0, -((FIRST_MIDNIGHT - now) // DAY))  # the first self-read not yet taken
    target = FIRST_MIDNIGHT + (upcoming + passed) * DAY - AHEAD
    jump_meter(sim, meter, (target - now).total_seconds() / meter.clock.speed)


async def api_and_page(gateway: Gateway, data_dir: Path) -> tuple[dict[str, Any], str]:
    """``/api/v1/self-reads`` and the history page of the running gateway's web app."""
    AdminPassword(data_dir).set("correct horse battery staple")
    app = create_app(gateway, data_dir=data_dir)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as web:
        api = await web.get("/api/v1/self-reads", params={"meter": "house"})
        page = await web.get("/history", params={"meter": "house"})
    assert api.status_code == 200, api.text
    assert page.status_code == 200, page.text
    body: dict[str, Any] = api.json()
    return body, html.unescape(page.text)


def job_status(gateway: Gateway, name: str) -> JobStatus:
    status = next(m for m in gateway.meters() if m.name == name)
    return next(j for j in status.jobs if j.name == "self-reads")


def job_of(gateway: Gateway, name: str) -> SelfReadJob:
    poller, _ = gateway._pollers[name]
    return next(j for j in poller.jobs if isinstance(j, SelfReadJob))


def test_self_reads_are_stored_as_taken_and_never_twice(
    store_url: str, tmp_path: Path, check: SqlStore
) -> None:
    sim = simulated("daily")
    # The meter has lived two days before the gateway comes: two self-reads wait in BT26, a
    # third is taken while it polls.
    skip_to_a_self_read(sim, passed=2)
    settings = settings_with([meter("house", sim.url or "")], store_url)
    first_run: list[int] = []
    pages: list[tuple[dict[str, Any], str]] = []

    async def run(at_least: int) -> SelfReadJob:
        gateway = gateway_for(settings, tmp_path, self_read_interval=CHECK_EVERY_S)
        async with gateway:
            await until(
                lambda: len(check.self_reads("house")) >= at_least,
                what=f"{at_least} self-reads stored",
                timeout=60,
            )
            job = job_of(gateway, "house")
            status = job_status(gateway, "house")
            assert status.state in ("idle", "working"), status
            pages.append(await api_and_page(gateway, tmp_path))
            return job

    try:
        job = asyncio.run(run(3))
        first_run[:] = [r.sequence for r in check.self_reads("house")]
        assert job.stored == len(first_run)
        # A day without the gateway (a self-read taken meanwhile), then a restart: the job
        # starts from the newest stored sequence number.
        skip_to_a_self_read(sim, passed=1)
        again = asyncio.run(run(len(first_run) + 2))
        truths = {t.sequence: t for t in model_of(sim.meter).snapshot().self_reads}
    finally:
        sim.stop()
    reads = check.self_reads("house")
    sequences = [r.sequence for r in reads]
    assert sequences == sorted(set(sequences))  # each once, in order
    assert sequences[: len(first_run)] == first_run
    assert again.stored == len(reads) - len(first_run)  # the restart stored only new ones
    assert again.duplicates == 0  # ... and read none it already had
    api, page = pages[-1]
    assert [r["sequence"] for r in api["self_reads"]] == sequences[: len(api["self_reads"])]
    assert len(api["self_reads"]) >= len(first_run) + 2
    assert len(api["periods"]) == len(api["self_reads"]) - 1
    for shown in api["self_reads"]:
        truth = truths[shown["sequence"]]
        assert shown["forward_active_energy_wh"] == truth.forward_active_energy_wh
        assert shown["reverse_active_energy_wh"] == truth.reverse_active_energy_wh
        assert shown["local_time"] == truth.local_time.isoformat()
        kwh = f"{truth.forward_active_energy_wh / 1000:,.3f}".replace(",", "\u2009")
        row = page.split(f'data-sequence="{truth.sequence}"', 1)[1].split("</tr>", 1)[0]
        assert kwh in row
        assert truth.local_time.strftime("%Y-%m-%d %H:%M") in row
    for read in reads:
        truth = truths[read.sequence]
        assert read.local_time == truth.local_time.isoformat()
        assert read.meter_time == truth.meter_time  # the local stamp put back on UTC
        assert read.forward_active_energy_wh == truth.forward_active_energy_wh
        assert read.reverse_active_energy_wh == truth.reverse_active_energy_wh
        assert read.tier_forward_active_energy_wh == truth.tier_forward_active_energy_wh
        assert read.tier_reverse_active_energy_wh == truth.tier_reverse_active_energy_wh
        assert read.local_time.endswith("T00:00:00")  # daily, at local midnight


def test_a_meter_without_bt26_is_unsupported_and_polling_goes_on(
    store_url: str, tmp_path: Path
) -> None:
    sim = simulated("off", profile="gen3-1phase", speed=1.0)  # real time: readings are valid
    settings = settings_with([meter("flat", sim.url or "")], store_url)

    async def run() -> None:
        gateway = gateway_for(settings, tmp_path, self_read_interval=CHECK_EVERY_S)
        async with gateway:
            await until(
                lambda: job_status(gateway, "flat").state == "unsupported",
                what="the job unsupported",
            )
            polled = stored(gateway, "flat")
            await until(lambda: stored(gateway, "flat") >= polled + 5, what="more readings")
            status = job_status(gateway, "flat")
            assert "no self-read table (BT26)" in status.detail
            assert "live values, history and the other jobs are not affected" in status.detail
            assert status.last_error is None

    try:
        asyncio.run(run())
    finally:
        sim.stop()


# One database is enough here: this test is about the line; the store's side of it runs on
# SQLite and PostgreSQL in tests/store/.
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_self_reads_come_whole_over_a_noisy_line(
    store_url: str, tmp_path: Path, check: SqlStore
) -> None:
    # Lost and damaged frames: steps fail on the line, the job goes on where it was, and every
    # stored self-read is still exactly the meter's.
    # A slower simulated clock: a lost frame costs the client a timeout, which must stay short
    # in simulated time for the clocks' comparison (see SelfReadJob._read_local_offset).
    sim = simulated("daily", speed=3600.0, faults="drop=0.05,corrupt=0.02,seed=5")
    skip_to_a_self_read(sim, passed=2)  # two waiting in BT26, a third taken while polling
    settings = settings_with([meter("house", sim.url or "")], store_url)

    async def run() -> None:
        gateway = gateway_for(settings, tmp_path, self_read_interval=CHECK_EVERY_S)
        async with gateway:
            await until(
                lambda: len(check.self_reads("house")) >= 3, what="3 self-reads", timeout=90
            )

    try:
        asyncio.run(run())
        truths = {t.sequence: t for t in model_of(sim.meter).snapshot().self_reads}
    finally:
        sim.stop()
    reads = check.self_reads("house")
    assert [r.sequence for r in reads] == sorted({r.sequence for r in reads})
    for read in reads:
        truth = truths[read.sequence]
        assert read.forward_active_energy_wh == truth.forward_active_energy_wh
        assert read.tier_reverse_active_energy_wh == truth.tier_reverse_active_energy_wh
        assert read.meter_time == truth.meter_time


Asked = tuple[int, int, int]
"""A read as asked: table, offset, count."""


class LosingClient(MeterClient):
    """A real client on a real link whose every read is lost once, the first time it is asked
    at its place: the request is not started and fails as a read lost on the line does
    (:meth:`~mepgate.client.MeterClient.time_limit` of 0 s, :class:`OutOfTimeError`), then is
    read as asked.  A read's place is its index among its step's reads (the test counts from 0
    at each step) and, for BT26's header, how many headers were read before: each header
    check, each piece of each entry and each of the three clock reads is lost once."""

    def __init__(self, url: str) -> None:
        session = MepSession(url, parse_key(MBK), timing=LinkTiming.fast(), handle_alerts=False)
        super().__init__(session, backoff=Backoff(initial=0.05, maximum=0.1, attempts=1))
        self.losing = False
        self.in_step = 0
        self.headers = 0
        self.lost: list[tuple[Asked, int]] = []  # and its index in its step
        self.read_ok: list[Asked] = []
        self._lost_at: set[tuple[Asked, int, int]] = set()

    async def read(
        self, table: int, *, offset: int | None = None, count: int | None = None
    ) -> bytes:
        asked = (table, offset or 0, count or 0)
        header = asked == (TableId.BT26, 0, HEADER_SIZE)
        place = (asked, self.in_step, self.headers if header else 0)
        self.in_step += 1
        if self.losing and place not in self._lost_at:
            self._lost_at.add(place)
            self.lost.append((asked, self.in_step - 1))
            with self.time_limit(0.0):
                await super().read(table, offset=offset, count=count)
            raise AssertionError(f"{asked} was read in no time")
        data = await super().read(table, offset=offset, count=count)
        self.read_ok.append(asked)
        self.headers += header
        return data


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_every_self_read_step_lost_once_on_the_line_goes_on_where_it_was(
    check: SqlStore,
) -> None:
    # The job stepped directly against a real simulated meter over TCP, on a virtual monotonic
    # clock, every read it makes lost once (LosingClient): the header check, every piece of
    # every entry, the BT52/BT55/BT52 clock reads (each at its place in their step) and the
    # header read again after each entry.  The job must go on where it was: every piece read
    # once (none twice, none skipped), every self-read stored once, exactly the meter's.
    # Real time at the meter (speed 1), an hour before its next self-read: the list does not
    # change while the job reads it.
    sim = simulated("daily", speed=1.0)
    skip_to_a_self_read(sim, passed=3)  # three self-reads waiting in BT26
    truths = sim.call(lambda: model_of(sim.meter).snapshot().self_reads)
    capacity = sim.call(lambda: model_of(sim.meter).self_reads.capacity)
    listed = truths[-capacity:]  # those BT26 holds
    store = AsyncStore(check)
    job = SelfReadJob("house", store=lambda: store)
    clock = [0.0]
    context = virtual_context(clock)
    pieces: list[Asked] = []
    failures: list[str] = []

    async def scenario() -> LosingClient:
        client = LosingClient(sim.url or "")
        async with client:
            reg = (await client.dimensions()).register  # as the poll has read them
            size = entry_layout(reg).size
            for truth in listed:
                start = entry_offset(reg, truth.element)
                for at in range(0, size, client.max_read):
                    pieces.append((TableId.BT26, start + at, min(client.max_read, size - at)))
            client.losing = True
            for _ in range(500):
                if job.stored == len(listed) and job.status().state == "idle":
                    break
                if not job.wants_to_run(context):
                    clock[0] += 1.0  # the job's retry interval passes
                    continue
                client.in_step = 0
                try:
                    await job.step(client, context)
                except OutOfTimeError as error:
                    failures.append(str(error))
                    job.failed(error, context)
            return client

    try:
        client = asyncio.run(scenario())
        assert sim.call(lambda: model_of(sim.meter).snapshot().self_reads) == truths
    finally:
        sim.stop()
    reads = check.self_reads("house")
    assert [r.sequence for r in reads] == [t.sequence for t in listed]
    for read, truth in zip(reads, listed, strict=True):  # each exactly the meter's, whole
        assert read.local_time == truth.local_time.isoformat()
        assert read.meter_time == truth.meter_time
        assert read.forward_active_energy_wh == truth.forward_active_energy_wh
        assert read.reverse_active_energy_wh == truth.reverse_active_energy_wh
        assert read.tier_forward_active_energy_wh == truth.tier_forward_active_energy_wh
        assert read.tier_reverse_active_energy_wh == truth.tier_reverse_active_energy_wh
    assert job.stored == len(listed)
    assert job.duplicates == 0
    # Went on where it was: each piece of each entry read once, in order -- none read again
    # after a lost step, none skipped.
    entry_reads = [a for a in client.read_ok if a[0] == TableId.BT26 and a[1] >= HEADER_SIZE]
    assert entry_reads == pieces, (entry_reads, pieces)
    # The faults really hit what they target: every entry piece, the header check and the
    # header after each entry, BT52 before and after BT55, BT55.
    lost = [asked for asked, _ in client.lost]
    assert len(pieces) > len(listed)  # entries in more than one piece
    assert set(pieces) <= set(lost), lost
    assert lost.count((TableId.BT26, 0, HEADER_SIZE)) == 1 + len(listed)
    clocks = [(table, at) for (table, _, _), at in client.lost if table != TableId.BT26]
    bt55 = [at for table, at in clocks if table == TableId.BT55]
    bt52 = [at for table, at in clocks if table == TableId.BT52]
    assert bt55, clocks
    assert min(bt52) < min(bt55) < max(bt52), clocks  # BT52 before and after BT55
    assert len(failures) == len(client.lost)  # each lost read failed its step, and only it
    assert all("time" in f for f in failures), failures
