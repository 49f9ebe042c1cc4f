"""How close the optical client polls to the fastest the C12.18 timing rules allow.

Against the simulator's optical port with wire timing on (9600 baud), for ``--duration``
seconds each: (a) the dashboard's partial BT28 reads (:data:`mepgate.client.DASHBOARD_FIELDS`,
what the gateway's poller reads every poll) and (b) full BT28 reads, each once with the
default 64-byte packets (one packet per message: no negotiation needed) and once with the
packet size and count the meter grants to Negotiate.

The limit of one exchange (a request message and its response message) is what C12.18 and the
meter allow when the client loses no time at all: every packet's bytes at 10 bits per byte,
each packet acknowledged with one ACK byte after the turn-around (C12.18's pause before
answering on a half-duplex line, :data:`mepgate.c1218.constants.TURN_AROUND`, the same for
meter and client), and the meter's think time before each response packet as the simulator
models it (:attr:`mepgate.simulator.timing.WireTiming.processing`).  Messages are split into
packets of the size in force (8 bytes of header and CRC each).  The ratio printed is the sum
of those limits over the exchanges made divided by the time they took; for (a) it also prints
live updates per second.  Goals: ratio >= 0.9 and >= 2 updates per second at 9600 baud.

    .venv/bin/python benchmarks/optical_efficiency.py --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mepgate.c1218.constants import DEFAULT_PACKET_SIZE, PACKET_OVERHEAD, TURN_AROUND
from mepgate.c1218.keys import Password, parse_password
from mepgate.c1218.services import encode_request, parse_request
from mepgate.client import DASHBOARD_FIELDS, MeterClient, Reply
from mepgate.client.optical import OpticalSession
from mepgate.proto import ResponseCode
from mepgate.proto.constants import wire_time
from mepgate.simulator.meter import DEFAULT_RK
from mepgate.simulator.model import build_meter
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.tables.ids import TableId

READ_RESPONSE_OVERHEAD = 4
"""A read response message around the table bytes: ok, count (2), checksum."""


@dataclass(frozen=True, slots=True)
class Exchange:
    request: int  # bytes of the C12.18 request message
    response: int  # bytes of the response message


class RecordingSession(OpticalSession):
    """An :class:`OpticalSession` that notes each exchange's message sizes."""

    def __init__(self, port: str, password: Password, **options: object) -> None:
        super().__init__(port, password, **options)  # type: ignore[arg-type]
        self.exchanges: list[Exchange] = []

    async def request(
        self, message: bytes, what: str, *, housekeeping: bool, deadline: float | None = None
    ) -> Reply:
        reply = await super().request(message, what, housekeeping=housekeeping, deadline=deadline)
        request = len(encode_request(parse_request(message)))
        is_read = message[0] in (0x30, 0x3F) and reply.code == ResponseCode.OK
        response = len(reply.data) + READ_RESPONSE_OVERHEAD if is_read else 1
        self.exchanges.append(Exchange(request, response))
        return reply


def packets_of(size: int, packet_size: int) -> list[int]:
    """The sizes of the packets (header and CRC included) a message of ``size`` bytes takes."""
    room = packet_size - PACKET_OVERHEAD
    count = max(1, math.ceil(size / room))
    return [min(room, size - i * room) + PACKET_OVERHEAD for i in range(count)]


def exchange_limit(exchange: Exchange, packet_size: int, timing: WireTiming) -> float:
    """The shortest time C12.18 and the simulated meter allow for ``exchange``, from the first
    request byte to the client's ACK of the last response packet."""
    baud, turn, think = timing.baud, TURN_AROUND, timing.processing
    ack = wire_time(1, baud)
    request = packets_of(exchange.request, packet_size)
    response = packets_of(exchange.response, packet_size)
    total = sum(wire_time(size, baud) for size in request)
    total += (len(request) - 1) * (turn + ack + turn)  # the meter's ACK, then our next packet
    total += turn + think  # the meter ACKs the last one and thinks (its ACK fits in between)
    total += sum(wire_time(size, baud) for size in response)
    total += len(response) * (turn + ack)  # our ACK of each response packet
    total += (len(response) - 1) * (turn + think)  # the meter's next packet after our ACK
    return total


async def measure(
    port: str,
    duration: float,
    step: Callable[[MeterClient], Awaitable[object]],
    packet_size: int | None,
) -> tuple[RecordingSession, list[Exchange], int, float]:
    options: dict[str, object] = {}
    if packet_size is not None:
        options = {"packet_size": packet_size, "packets": 1}
    session = RecordingSession(port, parse_password(DEFAULT_RK.decode()), **options)
    client = MeterClient(session)
    async with client:
        await client.dimensions()
        await step(client)  # warm up: session, timers, plan
        await step(client)
        first = len(session.exchanges)
        start, steps = time.monotonic(), 0
        while time.monotonic() - start < duration:
            await step(client)
            steps += 1
        elapsed = time.monotonic() - start
    return session, session.exchanges[first:], steps, elapsed


def report(
    name: str,
    session: RecordingSession,
    exchanges: list[Exchange],
    steps: int,
    elapsed: float,
    timing: WireTiming,
) -> tuple[float, float]:
    size = session.link_state.packet_size
    count = session.link_state.packets
    limit = sum(exchange_limit(e, size, timing) for e in exchanges)
    ratio = limit / elapsed
    request = sum(e.request for e in exchanges) / max(len(exchanges), 1)
    response = sum(e.response for e in exchanges) / max(len(exchanges), 1)
    stats = session.stats
    print(
        f"{name}: {len(exchanges)} exchanges in {elapsed:.1f} s = "
        f"{len(exchanges) / elapsed:.2f}/s ({steps / elapsed:.2f} updates/s, "
        f"{len(exchanges) / max(steps, 1):.1f} exchanges each); packets {size} bytes x {count}; "
        f"mean request {request:.0f} B, response {response:.0f} B; limit at {timing.baud} baud "
        f"{len(exchanges) / limit:.2f}/s; ratio {ratio:.3f} "
        f"(timeouts {stats.timeouts}, resends {stats.resends}, NAKs {stats.naks}, "
        f"sessions {stats.sessions})"
    )
    return ratio, steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--profile", default="gen4-3phase")
    args = parser.parse_args()
    timing = WireTiming()  # 9600 baud: the optical port's rate
    meter = build_meter(
        args.profile,
        seed=1,
        start=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC),
        origin=time.monotonic(),
    )
    cases: list[tuple[str, Callable[[MeterClient], Awaitable[object]], int | None]] = [
        ("(a) dashboard read set, 64-byte packets", _dashboard, DEFAULT_PACKET_SIZE),
        ("(a) dashboard read set, negotiated", _dashboard, None),
        ("(b) full BT28, 64-byte packets", _full, DEFAULT_PACKET_SIZE),
        ("(b) full BT28, negotiated", _full, None),
    ]
    verdicts = []
    with RunningSimulator(meter, keys={}, timing=timing, pty=False, interface="optical") as sim:
        assert sim.url is not None
        for name, step, size in cases:
            result = asyncio.run(measure(sim.url, args.duration, step, size))
            ratio, updates = report(name, *result, timing)
            verdicts.append((name, ratio, updates, step is _dashboard))
    print("goals: ratio >= 0.9; dashboard updates >= 2/s")
    for name, ratio, updates, dashboard in verdicts:
        met = ratio >= 0.9 and (not dashboard or updates >= 2.0)
        print(f"  {name}: {'met' if met else 'NOT met'}")


async def _dashboard(client: MeterClient) -> object:
    return await client.read_present(DASHBOARD_FIELDS)


async def _full(client: MeterClient) -> object:
    return await client.read_table(TableId.BT28)


if __name__ == "__main__":
    main()
