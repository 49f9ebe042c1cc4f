"""The client under the simulator's fault injection: nothing corrupted is ever returned, the
link recovers from reboots and reconfigurations, and failures carry the right diagnosis."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from click.testing import CliRunner

from mepgate.cli.main import cli
from mepgate.client import DASHBOARD_FIELDS, LinkTiming, MeterClient
from mepgate.client.diagnosis import Diagnosis
from mepgate.proto import parse_key
from mepgate.tables.ids import TableId
from mepgate.tables.registers import decode_bt28

from .conftest import MBK_TEXT, StartSim

FAULT_TIMING = LinkTiming(
    response_timeout=0.03,
    min_request_interval=0.0,
    frame_gap_timeout=0.03,
    max_silent_sends=25,
    max_sends=60,
)


def client_for(port: str, timing: LinkTiming = FAULT_TIMING) -> MeterClient:
    return MeterClient(port, parse_key(MBK_TEXT), timing=timing)


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_1000_exchanges_with_drops_and_corruption_return_only_true_values(
    start_sim: StartSim, transport: str
) -> None:
    sim = start_sim("gen4", faults="drop=0.1,corrupt=0.01,seed=11")
    truth_bytes = sim.model.bt28_bytes()
    truth = sim.model.truth()
    rng = random.Random(5)

    async def run() -> tuple[int, int]:
        reads = 0
        async with client_for(sim.port(transport)) as client:
            while client.stats.frames_sent < 1000:
                if reads % 10 == 0:
                    values = await client.read_present(DASHBOARD_FIELDS)
                    for name in DASHBOARD_FIELDS:
                        assert getattr(values, name) == getattr(truth, name), name
                else:
                    count = rng.randrange(4, 40)
                    offset = rng.randrange(0, len(truth_bytes) - count)
                    data = await client.read(TableId.BT28, offset=offset, count=count)
                    assert data == truth_bytes[offset : offset + count]
                reads += 1
            return reads, client.stats.damaged_replies + client.stats.timeouts

    reads, trouble = asyncio.run(run())
    assert reads > 200
    assert trouble > 100  # the faults really happened


def test_meter_reboot_is_recovered(start_sim: StartSim) -> None:
    sim = start_sim("gen3", faults="reboot=0.05,seed=3")

    async def run() -> int:
        async with client_for(sim.port("tcp")) as client:
            for _ in range(150):
                data = await client.read_table(TableId.BT28)
                assert decode_bt28(data, await client.dimensions()).readings == sim.model.truth()
            return client.stats.sequence_resyncs

    resyncs = asyncio.run(run())
    assert sim.model.reboots >= 2
    assert resyncs >= sim.model.reboots


def test_reconfiguration_rereads_dimensions_and_decodes_the_new_layout(start_sim: StartSim) -> None:
    sim = start_sim("gen4")

    async def run() -> None:
        async with client_for(sim.port("pty"), LinkTiming.fast()) as client:
            before = await client.read_bt28()
            assert len(before.present_values or ()) == 84
            partial_before = await client.read_present(DASHBOARD_FIELDS)
            sim.running.call(sim.running.meter.reconfigure)
            after = await client.read_bt28()
            assert client.stats.idt_changes == 1
            assert len(after.present_values or ()) == 74
            assert after.readings == sim.model.truth()
            assert (await client.dimensions()).register.number_of_present_values == 74
            assert await client.read_present(DASHBOARD_FIELDS) == partial_before

    asyncio.run(run())


def test_alerts_are_serviced_until_the_meter_stops_alerting(start_sim: StartSim) -> None:
    sim = start_sim("gen4")

    async def run() -> None:
        async with client_for(sim.port("tcp"), LinkTiming.fast()) as client:
            await client.dimensions()
            sim.running.call(lambda: sim.model.raise_alert(0x01 | 0x02 | 0x08))
            await asyncio.sleep(1.3)  # the meter holds alerts off for 1 s after a frame
            await client.read(TableId.BT28, offset=0, count=4)
            assert client.stats.alerts >= 1
            assert client.stats.alerts_serviced == 1

    asyncio.run(run())
    assert sim.model.alert_flags == 0
    assert sorted(sim.model.ep39_posts) == [0, 4]


FAULT_DIAGNOSES = {
    "disabled": (Diagnosis.NO_ANSWER, "ENABLE line"),
    "echo": (Diagnosis.ECHO, "TX and RX are bridged"),
    "wrongbaud": (Diagnosis.GARBLED, "baud rate"),
}


@pytest.mark.parametrize("fault", [*FAULT_DIAGNOSES, "wrongkey"])
def test_doctor_and_info_name_the_cause(start_sim: StartSim, fault: str) -> None:
    sim = start_sim("gen3", faults="" if fault == "wrongkey" else fault)
    diagnosis, words = FAULT_DIAGNOSES.get(fault, (Diagnosis.WRONG_KEY, "20 characters exactly"))
    key = "WRONG-KEY-WRONG-KEY!" if fault == "wrongkey" else MBK_TEXT
    args = ["--port", sim.port("pty"), "--timeout", "0.05"]
    started = time.monotonic()
    doctor = CliRunner().invoke(cli, ["doctor", *args], env={"MEPGATE_KEY": key})
    assert doctor.exit_code == 1
    assert f"problem ({diagnosis.value})" in doctor.stdout
    assert words in doctor.stdout
    info = CliRunner().invoke(cli, ["info", *args], env={"MEPGATE_KEY": key})
    assert info.exit_code == 1
    assert words in info.stderr
    assert key not in doctor.output + info.output
    assert time.monotonic() - started < 10


def test_repeated_sequence_errors_blame_another_client(start_sim: StartSim) -> None:
    sim = start_sim("gen4")

    async def run() -> str:
        async with (
            client_for(sim.port("tcp"), LinkTiming.fast()) as client,
            client_for(sim.port("pty"), LinkTiming.fast()) as other,
        ):
            await client.read(TableId.BT01, offset=0, count=4)
            # The other client keeps moving the shared sequence counter on.
            for _ in range(3):
                await other.read(TableId.BT01, offset=0, count=4)
            await client.read(TableId.BT01, offset=0, count=4)
            return f"{client.stats.sequence_resyncs}"

    assert int(asyncio.run(run())) >= 2
