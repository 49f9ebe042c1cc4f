"""The optical client under the simulator's fault injection, against the real meter model:
1000 exchanges on a line that loses and damages packets, every decoded value equal to the
model's ground truth (the shape of test_faults.py, over C12.18)."""

from __future__ import annotations

import asyncio
import random

import pytest

from mepgate.c1218.keys import parse_password
from mepgate.client import DASHBOARD_FIELDS, MeterClient
from mepgate.client.optical import OpticalSession, OpticalTiming
from mepgate.simulator.meter import DEFAULT_RK
from mepgate.tables.ids import TableId
from mepgate.tables.registers import BT28, bt23_layout, bt28_layout

from .conftest import StartSim, mismatches
from .test_faults import CHUNK, check_bt23, read_in_chunks

FAULT_TIMING = OpticalTiming.fast()
"""Short waits: the simulator answers at once.  With C12.18's 2 s response timeout each of
the hundred-odd lost packets would cost 2 s; the rules (resend, NAK, ask again) are the same."""
FAULT_BAUD = 38400
"""The baud rate the client assumes (the simulator sends at once here): a missing packet is
waited for the response timeout plus one packet's time on the wire, and the three hundred-odd
missing or unrecognisable packets would cost 20 s more at 9600 baud."""
PACKET_SIZE = 64
"""C12.18's default packet, one per message: at 1 % byte damage a 64-byte packet gets through
about half the time, a 1024-byte one almost never -- on a line this bad a client keeps its
packets and reads small (test_faults.py reads MEP in 40-byte parts for the same reason)."""


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_1000_exchanges_with_drops_and_corruption_return_only_true_values(
    start_sim: StartSim, transport: str
) -> None:
    sim = start_sim("gen4", interface="optical", faults="drop=0.1,corrupt=0.01,hear=0.003,seed=11")
    truth = sim.truth()  # the model's clock is frozen: this stays the truth
    bt28_bytes = sim.table(TableId.BT28)
    rng = random.Random(5)
    session = OpticalSession(
        sim.port(transport),
        parse_password(DEFAULT_RK.decode()),
        timing=FAULT_TIMING,
        baud=FAULT_BAUD,
        packet_size=PACKET_SIZE,
        packets=1,
    )

    async def run() -> tuple[int, MeterClient]:
        reads = 0
        async with MeterClient(session) as client:
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
                    count = rng.randrange(4, CHUNK)
                    offset = rng.randrange(0, len(bt28_bytes) - count)
                    data = await client.read(TableId.BT28, offset=offset, count=count)
                    assert data == bt28_bytes[offset : offset + count]
                reads += 1
            return reads, client

    reads, client = asyncio.run(run())
    assert reads > 40
    assert client.max_read == PACKET_SIZE - 8 - 4
    stats = client.stats
    assert stats.frames_sent >= 1000
    # The faults really happened: the simulator lost and damaged what the meter sent, and the
    # client saw it (damaged or missing packets and ACKs, resends).
    port = sim.running.optical_port if transport == "tcp" else sim.running.optical_ports[-1]
    line = sim.running.call(lambda: port.stats)
    assert line.dropped > 20
    assert line.corrupted > 5
    assert line.corrupted_heard > 5
    assert stats.timeouts + stats.damaged_replies > 50
    assert stats.resends > 20
    assert sim.truth() == truth
