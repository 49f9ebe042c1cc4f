"""The client under the simulator's fault injection, against the real meter model: nothing
corrupted is ever returned (every decoded value equals the model's ground truth), the link
recovers from reboots and reconfigurations, and failures carry the right diagnosis."""

from __future__ import annotations

import asyncio
import random
import re

import pytest
from click.testing import CliRunner

from mepgate.cli.main import cli
from mepgate.client import DASHBOARD_FIELDS, LinkTiming, MepSession, MeterClient
from mepgate.client.diagnosis import Diagnosis
from mepgate.proto import parse_key
from mepgate.simulator.model import GroundTruth
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.ids import TableId
from mepgate.tables.registers import (
    BT23,
    BT28,
    bt23_layout,
    bt28_layout,
    register_totals,
)

from .conftest import MBK_TEXT, Sim, StartSim, mismatches

FAULT_TIMING = LinkTiming(
    response_timeout=0.02,
    min_request_interval=0.0,
    frame_gap_timeout=0.02,
    max_silent_sends=25,
    max_sends=60,
)
CHUNK = 40
"""Bytes per partial read on a noisy line: a 40-byte reply survives 1 % byte corruption about
half the time, a whole 350-byte BT28 almost never (which is why a client on a bad line reads
in parts)."""


def client_for(port: str, timing: LinkTiming = FAULT_TIMING) -> MeterClient:
    return MeterClient(MepSession(port, parse_key(MBK_TEXT), timing=timing))


async def read_in_chunks(client: MeterClient, table: int, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        count = min(CHUNK, size - len(out))
        out += await client.read(table, offset=len(out), count=count)
    return bytes(out)


def check_bt23(
    data: bytes, dims: Dimensions, truth: GroundTruth, earlier: GroundTruth | None = None
) -> None:
    """BT23 decoded with :mod:`mepgate.tables` equals the model's registers (ET55 unit).

    With ``earlier`` (the truth before the read), the outage count may lie between the two:
    a reboot can happen after the reply left (on a late resend of the same request)."""
    decoded = BT23.decode(data, dims)
    unit = dims.energy_register_unit
    if decoded.total is None:
        raise AssertionError("BT23 decoded without its total block")
    total = register_totals(decoded.total, unit)
    assert total.forward_active_energy_wh == truth.forward_active_energy_wh // unit * unit
    assert total.reverse_active_energy_wh == truth.reverse_active_energy_wh // unit * unit
    first = (earlier or truth).power_outage_count
    assert first <= (total.power_outage_count or 0) <= truth.power_outage_count
    tiers = [register_totals(block, unit) for block in decoded.tiers or ()]
    assert [t.forward_active_energy_wh for t in tiers] == [
        wh // unit * unit for wh in truth.tier_forward_active_energy_wh
    ]


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_1000_exchanges_with_drops_and_corruption_return_only_true_values(
    start_sim: StartSim, transport: str
) -> None:
    sim = start_sim("gen4", faults="drop=0.1,corrupt=0.01,seed=11")
    truth = sim.truth()  # the model's clock is frozen: this stays the truth
    bt28_bytes = sim.table(TableId.BT28)
    rng = random.Random(5)

    async def run() -> tuple[int, int]:
        reads = 0
        async with client_for(sim.port(transport)) as client:
            dims = await client.dimensions()
            assert dims.register.number_of_present_values == truth.number_of_present_values
            bt28_size = bt28_layout(dims).size
            bt23_size = bt23_layout(dims.register).size
            while client.stats.frames_sent < 1000:
                kind = reads % 10
                if kind == 0:
                    assert not mismatches(await client.read_present(DASHBOARD_FIELDS), truth)
                elif kind == 1:
                    data = await read_in_chunks(client, TableId.BT28, bt28_size)
                    assert not mismatches(BT28.decode(data, dims).readings, truth)
                elif kind == 2:
                    check_bt23(await read_in_chunks(client, TableId.BT23, bt23_size), dims, truth)
                else:
                    count = rng.randrange(4, 40)
                    offset = rng.randrange(0, len(bt28_bytes) - count)
                    data = await client.read(TableId.BT28, offset=offset, count=count)
                    assert data == bt28_bytes[offset : offset + count]
                reads += 1
            return reads, client.stats.damaged_replies + client.stats.timeouts

    reads, trouble = asyncio.run(run())
    assert reads > 40
    assert trouble > 300  # the faults really happened
    assert sim.truth() == truth


def test_meter_reboots_are_recovered_and_counted_in_bt23(start_sim: StartSim) -> None:
    sim = start_sim("gen3", faults="reboot=0.05,seed=3")

    async def run() -> int:
        async with client_for(sim.port("tcp")) as client:
            dims = await client.dimensions()
            for _ in range(30):
                readings = (await client.read_bt28()).readings
                assert not mismatches(readings, sim.truth())
                # The outage counter moves with every reboot: BT23 shows the latest.
                before = sim.truth()
                check_bt23(await client.read_table(TableId.BT23), dims, sim.truth(), before)
            return client.stats.sequence_resyncs

    outages_before = sim.truth().power_outage_count
    resyncs = asyncio.run(run())
    assert sim.running.reboots >= 2
    assert sim.truth().power_outage_count == outages_before + sim.running.reboots
    # Each reboot restarts the counter: the next request meets 0x0C (two reboots between
    # sends of one request share one).
    assert resyncs >= sim.running.reboots // 2


@pytest.mark.parametrize("faults", ["", "drop=0.1,reboot=0.02,seed=4"])
def test_reconfiguration_rereads_dimensions_and_decodes_the_new_layout(
    start_sim: StartSim, faults: str
) -> None:
    sim = start_sim("gen4", faults=faults)
    full = sim.truth().number_of_present_values
    fewer = sim.model.profile.reconfigured_present_values

    async def run() -> None:
        async with client_for(sim.port("pty")) as client:
            before = await client.read_bt28()
            assert len(before.present_values or ()) == full
            partial_before = await client.read_present(DASHBOARD_FIELDS)
            idt = client.idt_version
            sim.running.call(sim.meter.reconfigure)
            after = await client.read_bt28()
            assert client.stats.idt_changes == 1
            assert client.idt_version == sim.truth().idt_version != idt
            assert len(after.present_values or ()) == fewer
            assert (await client.dimensions()).register.number_of_present_values == fewer
            assert not mismatches(after.readings, sim.truth())
            assert await client.read_present(DASHBOARD_FIELDS) == partial_before
            sim.running.call(sim.meter.reconfigure)  # and back
            assert len((await client.read_bt28()).present_values or ()) == full
            assert client.stats.idt_changes == 2

    asyncio.run(run())


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
    doctor = CliRunner().invoke(cli, ["doctor", *args], env={"MEPGATE_KEY": key})
    assert doctor.exit_code == 1
    assert f"problem ({diagnosis.value})" in doctor.stdout
    assert words in doctor.stdout
    info = CliRunner().invoke(cli, ["info", *args], env={"MEPGATE_KEY": key})
    assert info.exit_code == 1
    assert words in info.stderr
    assert key not in doctor.output + info.output


def doctor_says(sim: Sim) -> str:
    result = CliRunner().invoke(
        cli,
        ["doctor", "--port", sim.port("tcp"), "--sim-timing"],
        env={"MEPGATE_KEY": MBK_TEXT},
    )
    assert "Traceback" not in result.output
    first = result.stdout.splitlines()[0]  # "link to ...: ok (ok)" / "...: problem (noisy)"
    return first.rsplit("(", 1)[1].rstrip(")")


@pytest.mark.parametrize(
    "faults",
    ["drop=0.1,corrupt=0.01", "corrupt=0.03", "drop=0.3,corrupt=0.02", "drop=0.5"],
)
def test_doctor_calls_a_lossy_or_damaging_line_noisy_whatever_the_seed(
    start_sim: StartSim, faults: str
) -> None:
    seeds = range(1, 11) if faults == "drop=0.1,corrupt=0.01" else range(1, 4)
    verdicts = []
    for seed in seeds:
        sim = start_sim("gen4", pty=False, faults=f"{faults},seed={seed}")
        verdicts.append(doctor_says(sim))
        stats = sim.running.port.stats  # read once the doctor is done: no race
        assert stats.dropped + stats.corrupted > 0  # the faults really happened
    assert verdicts == ["noisy"] * len(seeds)


def test_doctor_calls_a_clean_line_ok_every_time(start_sim: StartSim) -> None:
    verdicts = [doctor_says(start_sim("gen4", pty=False, seed=seed)) for seed in range(1, 11)]
    assert verdicts == ["ok"] * 10


def test_doctor_reports_loss_and_damage_rates(start_sim: StartSim) -> None:
    sim = start_sim("gen4", pty=False, faults="drop=0.3,seed=4")
    result = CliRunner().invoke(
        cli,
        ["doctor", "--port", sim.port("tcp"), "--timeout", "0.05"],
        env={"MEPGATE_KEY": MBK_TEXT},
    )
    assert result.exit_code == 1
    lost = re.search(r"lost (\d+) \(([\d.]+)%\)", result.stdout)
    assert lost is not None
    assert int(lost[1]) > 0
    assert 10 <= float(lost[2]) <= 60  # about the 30 % dropped
    assert "of requests got no answer in time" in result.stdout


def test_tls_required_meter_with_dropped_replies_rehandshakes_and_reads_true_values(
    start_sim: StartSim,
) -> None:
    sim: Sim = start_sim("gen4", tls_required=True, faults="drop=0.1,seed=8")
    truth = sim.truth()

    async def run() -> MeterClient:
        async with client_for(sim.port("tcp"), LinkTiming.fast()) as client:
            for _ in range(40):
                assert not mismatches(await client.read_present(DASHBOARD_FIELDS), truth)
            assert not mismatches((await client.read_bt28()).readings, truth)
            return client

    client = asyncio.run(run())
    assert client.security == "tls"
    assert client.stats.timeouts >= 5  # replies really were lost
    assert client.stats.tls_handshakes >= 2  # and the session was set up again


@pytest.mark.parametrize("seed", range(1, 7))
def test_a_tls_meter_on_a_slightly_noisy_line_is_not_taken_for_a_wrong_key(
    start_sim: StartSim, seed: int
) -> None:
    sim: Sim = start_sim("gen4", tls_required=True, faults=f"corrupt=0.003,seed={seed}")
    truth = sim.truth()

    async def run() -> MeterClient:
        async with client_for(sim.port("tcp"), LinkTiming.fast()) as client:
            for _ in range(20):
                assert not mismatches(await client.read_present(DASHBOARD_FIELDS), truth)
            return client

    client = asyncio.run(run())  # a TlsSessionError ("different MBK") would fail the test
    assert client.security == "tls"
    assert sim.running.call(lambda: sim.running.port.stats.corrupted) > 0  # noise did happen
