"""The client against the simulator's full meter model (``build_meter``), Gen 3 and Gen 4."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import pytest

from mepgate.client import DASHBOARD_FIELDS, LinkTiming, MeterClient
from mepgate.client.alerts import Ep39Type
from mepgate.proto import parse_key
from mepgate.simulator.meter import DEFAULT_MBK, SimulatedMeter
from mepgate.simulator.model import GroundTruth, build_meter, ground_truth, model_of
from mepgate.simulator.model.mep_port import PostType
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming


@pytest.fixture(params=["gen3-3phase", "gen4-3phase"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[RunningSimulator, SimulatedMeter]]:
    meter = build_meter(
        str(request.param),
        seed=3,
        start=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC),
        origin=time.monotonic(),
    )
    with RunningSimulator(meter, keys={}, timing=WireTiming(enabled=False), pty=False) as sim:
        yield sim, meter


def test_ep39_post_types_match_the_meter_model() -> None:
    for name in ("SCHEDULED_READ_DATA", "SCHEDULED_READ_DATA_WITH_ALARMS", "CLEAR_MBUS_ALERT"):
        assert int(Ep39Type[name]) == int(PostType[name]), name


def test_dimensions_reconfiguration_and_alerts_follow_the_model(
    served: tuple[RunningSimulator, SimulatedMeter],
) -> None:
    sim, meter = served
    assert sim.url is not None

    def truth() -> GroundTruth:
        return sim.call(lambda: ground_truth(meter, time.monotonic()))

    async def run() -> None:
        client = MeterClient(
            sim.url or "", parse_key(DEFAULT_MBK.decode()), timing=LinkTiming.fast()
        )
        async with client:
            dims = await client.dimensions()
            assert dims.register.number_of_present_values == truth().number_of_present_values
            assert client.idt_version == truth().idt_version
            values = await client.read_present(DASHBOARD_FIELDS)
            assert values.frequency_mhz is not None
            assert 45_000 < values.frequency_mhz < 55_000
            sim.call(meter.reconfigure)
            await client.read_bt28()
            assert client.idt_version == truth().idt_version
            dims = await client.dimensions()
            assert dims.register.number_of_present_values == truth().number_of_present_values
            sim.call(lambda: model_of(meter).post_on_demand_request(b"hello"))
            assert truth().alerts.on_demand_request
            await asyncio.sleep(1.3)  # alerts are held off for a second after a frame
            await client.read_present(DASHBOARD_FIELDS)
            assert client.stats.alerts_serviced >= 1
            assert not truth().alerts.on_demand_request

    asyncio.run(run())
