"""A meter's clock never decides where a reading lands (issue 11, item 9): readings are stamped
with the gateway's clock, the meter's offset is measured, shown and logged, and no clock value
deletes or hides data.

The simulated meter's clock is set as a real one's is: it starts where ``build_meter`` puts it
(2000 after a flat RTC battery, 2255 from a corrupt write), and EP16 ("Change System Clock By
Delta") moves it, run in the simulator's thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from mepgate.client import LinkTiming, MepSession, MeterClient
from mepgate.config import MeterConfig, Settings, StorageConfig
from mepgate.proto import AccessLevel, ProcedureCall, parse_key
from mepgate.proto.procedures import EP16_CHANGE_CLOCK_BY_DELTA
from mepgate.reading import Reading
from mepgate.service.gateway import Gateway
from mepgate.service.poller import MeterPoller, RetryPolicy
from mepgate.service.view import MeterStatus
from mepgate.simulator.meter import DEFAULT_MBK, SimulatedMeter
from mepgate.simulator.model import build_meter, model_of
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.store import SqlStore, open_store

from ..conftest import SIM_KEYS
from ..support.wait import until

MBK = DEFAULT_MBK.decode()


def meter_at(start: dt.datetime) -> SimulatedMeter:
    return build_meter("gen4-3phase", seed=6, start=start, origin=time.monotonic(), keys=SIM_KEYS)


def serve(meter: SimulatedMeter) -> RunningSimulator:
    sim = RunningSimulator(
        meter, keys=SIM_KEYS, timing=WireTiming(enabled=False), pty=False, tcp=("127.0.0.1", 0)
    )
    sim.start()
    return sim


def gateway_for(port: str, store_url: str, tmp_path: Path) -> Gateway:
    meter = MeterConfig(name="house", port=port, key=SecretStr(MBK), poll_interval=0.2)
    settings = Settings(meter=[meter], storage=StorageConfig(url=store_url, timezone="UTC"))
    return Gateway(
        settings,
        data_dir=tmp_path,
        timing=LinkTiming.fast(),
        retry=RetryPolicy(initial=0.1, maximum=0.4),
        batch_interval=0.2,
        sweep_interval=0.2,  # the retention sweep runs all along
    )


def row_counts(url: str) -> dict[str, int]:
    with open_store(url) as store:
        assert isinstance(store, SqlStore)
        return {
            table: int(store._q(f"SELECT count(*) FROM {table}")[0][0])
            for table in ("raw", "rollup_minute", "rollup_hour", "rollup_day")
        }


@pytest.mark.parametrize("year", [2000, 2255])
def test_a_meter_clock_years_off_neither_deletes_nor_hides_readings(
    year: int, store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    meter = meter_at(dt.datetime(year, 6, 1, 12, tzinfo=dt.UTC))
    sim = serve(meter)
    truth = model_of(meter).snapshot()
    began = dt.datetime.now(dt.UTC)
    history = [  # what the gateway stored before, at its own time: within every retention
        Reading(
            meter="house",
            at=began.replace(microsecond=0) - dt.timedelta(hours=hours),  # the store keeps ms
            forward_active_energy_wh=float(truth.forward_active_energy_wh - 500 * hours),
            reverse_active_energy_wh=float(truth.reverse_active_energy_wh - 100 * hours),
        )
        for hours in (20, 1)
    ]
    with open_store(store_url) as store:
        store.ingest(history)
    before = row_counts(store_url)

    async def scenario() -> MeterStatus:
        async with gateway_for(sim.url or "", store_url, tmp_path) as gateway:
            await until(lambda: gateway.meters()[0].readings_stored >= 5, what="readings stored")
            await asyncio.sleep(0.5)  # a few retention sweeps (every 0.2 s) meanwhile
            return gateway.meters()[0]

    try:
        status = asyncio.run(scenario())
    finally:
        sim.stop()
    ended = dt.datetime.now(dt.UTC)
    assert status.readings_rejected == 0, status.last_rejection
    # The offset is measured and shown: the meter's clock minus the gateway's.
    expected = (dt.datetime(year, 6, 1, 12, tzinfo=dt.UTC) - began).total_seconds()
    assert status.clock_offset_s is not None
    assert abs(status.clock_offset_s - expected) < 60
    assert status.meter_clock is not None
    assert status.meter_clock.year == year
    assert "its clock is" in caplog.text
    assert ("behind" if year == 2000 else "ahead of") in caplog.text
    with open_store(store_url) as store:
        store.sweep()  # once more, after the last reading: still nothing of it goes
        stored = store.recent("house", 1000)
        shown = store.history("house", began - dt.timedelta(hours=2), ended, points=1000)
    # Nothing deleted: the history from before and every reading of this run are there.
    assert stored[: len(history)] == history
    new = stored[len(history) :]
    assert len(new) >= status.readings_stored >= 5  # and the last batch, stored on stop
    # Stamped with the gateway's clock, so the history shows them where they belong.
    assert all(began <= r.at <= ended for r in new)
    assert sum(point.t >= began - dt.timedelta(minutes=1) for point in shown) >= 1
    after = row_counts(store_url)
    assert after["raw"] == before["raw"] + len(new)
    assert all(after[table] >= before[table] > 0 for table in before)


def test_a_clock_set_back_on_the_meter_rejects_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A meter an hour ahead, set right (EP16, -3600 s) while polled: readings stamped with its
    clock went an hour back and were rejected as "time not advancing" for 300 readings."""
    caplog.set_level(logging.INFO)
    meter = meter_at(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    sim = serve(meter)
    port = sim.url or ""
    readings: list[Reading] = []
    poller = MeterPoller(
        MeterConfig(name="house", port=port, poll_interval=0.1),
        connect=lambda: MeterClient(MepSession(port, parse_key(MBK), timing=LinkTiming.fast())),
        on_reading=readings.append,
        retry=RetryPolicy(initial=0.1, maximum=0.4),
        clock_interval=0.3,  # BT52 re-read often: the correction is seen within the test
    )

    def set_back() -> None:
        delta = (-3600).to_bytes(4, "little", signed=True)
        call = ProcedureCall(number=EP16_CHANGE_CLOCK_BY_DELTA, psn=1, parameters=delta)
        model_of(meter).run_procedure(call, AccessLevel.ADVANCED)

    def offset() -> float:
        return poller.status().clock_offset_s or 0.0

    async def scenario() -> None:
        task = asyncio.create_task(poller.run())
        try:
            await until(lambda: len(readings) >= 3, tasks=[task], what="readings")
            assert 3500 < offset() < 3700
            # The meter's own timestamps (load profile, events) go on this computer's clock.
            assert poller.meter_clock is not None
            placed = poller.gateway_time(poller.meter_clock)
            assert abs(placed - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
            await asyncio.to_thread(sim.call, set_back)
            await until(lambda: abs(offset()) < 60, tasks=[task], what="the offset corrected")
            count = len(readings)
            await until(lambda: len(readings) >= count + 5, tasks=[task], what="more readings")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        sim.stop()
    assert poller.readings_rejected == 0, poller.last_rejection
    assert [r.at for r in readings] == sorted(r.at for r in readings)
    assert "its clock is 1 h 0 min ahead of" in caplog.text
    assert "agrees with this computer's again" in caplog.text
