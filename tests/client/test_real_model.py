"""The client against the simulator's full meter model (``build_meter``), Gen 3 and Gen 4:
dimensions, reconfiguration and the alert duty, checked against the model's ground truth."""

from __future__ import annotations

import asyncio

import pytest

from mepgate.client import DASHBOARD_FIELDS, LinkTiming, MepSession, MeterClient
from mepgate.proto import parse_key
from mepgate.proto.procedures import MepPostType

from .conftest import MBK_TEXT, StartSim, mismatches


def client_for(port: str) -> MeterClient:
    return MeterClient(MepSession(port, parse_key(MBK_TEXT), timing=LinkTiming.fast()))


@pytest.mark.parametrize("profile", ["gen3", "gen4"])
def test_dimensions_and_reconfiguration_follow_the_model(start_sim: StartSim, profile: str) -> None:
    sim = start_sim(profile)

    async def run() -> None:
        async with client_for(sim.port("tcp")) as client:
            dims = await client.dimensions()
            assert dims.register.number_of_present_values == sim.truth().number_of_present_values
            assert client.idt_version == sim.truth().idt_version
            assert not mismatches(await client.read_present(DASHBOARD_FIELDS), sim.truth())
            sim.running.call(sim.meter.reconfigure)
            after = await client.read_bt28()
            assert client.idt_version == sim.truth().idt_version
            assert client.stats.idt_changes == 1
            count = (await client.dimensions()).register.number_of_present_values
            assert count == sim.truth().number_of_present_values
            assert len(after.present_values or ()) == count
            assert not mismatches(after.readings, sim.truth())

    asyncio.run(run())


def test_every_alert_flag_is_serviced_until_the_model_stops_alerting(start_sim: StartSim) -> None:
    """The EP39 post types the client sends are the ones the model acts on (one definition,
    :class:`~mepgate.proto.procedures.MepPostType`), so every flag clears."""
    sim = start_sim("gen4")

    def raise_every_alert() -> None:
        sim.model.post_on_demand_request(b"hello")
        alerts = sim.model.mep.alerts
        alerts.scheduled_read_request = alerts.mbus_change = alerts.delta_data_alert = True

    async def run() -> None:
        async with client_for(sim.port("tcp")) as client:
            await client.dimensions()
            sim.running.call(raise_every_alert)
            assert sim.truth().alerts.pending
            await asyncio.sleep(1.3)  # the meter holds alerts off for a second after a frame
            await client.read_present(DASHBOARD_FIELDS)
            assert client.stats.alerts >= 1
            assert client.stats.alerts_serviced == 1

    posted_before = sim.running.call(lambda: sim.model.mep.posted.read_count or 0)
    asyncio.run(run())
    alerts = sim.truth().alerts
    assert not alerts.pending, alerts
    assert sim.running.call(lambda: sim.model.mep.posted.read_count) == posted_before + 1
    assert int(MepPostType.CLEAR_DELTA_DATA_ALERT) == 12  # MEP guide, "Delta Data Alerts", step 5
