"""How close the client polls to the fastest the MEP timing rules allow.

Against the simulator with wire timing on (9600 baud by default), for ``--duration`` seconds
each: (a) full BT28 reads back to back, (b) partial reads of just the values a dashboard needs
(:data:`mepgate.client.DASHBOARD_FIELDS`).  Prints achieved exchanges per second divided by
the limit the simulator's timing model (:mod:`mepgate.simulator.timing`) gives for exchanges
of the same sizes, and, for (b), live updates per second.  Goals: ratio >= 0.95, >= 4 updates/s.

    .venv/bin/python benchmarks/poll_efficiency.py --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable

from mepgate.client import DASHBOARD_FIELDS, MepSession, MeterClient
from mepgate.proto import parse_key
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import build_meter
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming, model_exchange
from mepgate.tables.ids import TableId


def limit_per_second(request_size: int, reply_size: int, timing: WireTiming) -> float:
    """Exchanges per second the timing model allows for back-to-back exchanges of these sizes."""
    first = model_exchange(request_size, reply_size, timing)
    since = first.processing + first.reply_wire + first.pauses + first.request_wire
    steady = model_exchange(request_size, reply_size, timing, since_previous_service=since)
    return 1.0 / steady.total


async def measure(
    port: str, duration: float, step: Callable[[MeterClient], Awaitable[object]]
) -> tuple[MeterClient, int, float]:
    client = MeterClient(MepSession(port, parse_key(DEFAULT_MBK.decode())))
    async with client:
        await client.dimensions()
        await step(client)  # warm up: sequence number, plan
        before = client.stats.as_dict()
        start, steps = time.monotonic(), 0
        while time.monotonic() - start < duration:
            await step(client)
            steps += 1
        elapsed = time.monotonic() - start
        for name, value in before.items():  # count the measured run only
            setattr(client.stats, name, getattr(client.stats, name) - value)
    return client, steps, elapsed


def report(name: str, client: MeterClient, steps: int, elapsed: float, timing: WireTiming) -> None:
    stats = client.stats
    request = round(stats.bytes_sent / max(stats.frames_sent, 1))
    reply = round(stats.bytes_received / max(stats.replies, 1))
    achieved = stats.frames_sent / elapsed
    limit = limit_per_second(request, reply, timing)
    print(
        f"{name}: {stats.frames_sent} exchanges in {elapsed:.1f} s = {achieved:.2f}/s; "
        f"limit for {request}-byte requests, {reply}-byte replies at {timing.baud} baud: "
        f"{limit:.2f}/s; ratio {achieved / limit:.3f}; updates {steps / elapsed:.2f}/s "
        f"(timeouts {stats.timeouts}, resends {stats.resends})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--profile", default="gen4-3phase")
    args = parser.parse_args()
    timing = WireTiming(baud=args.baud)
    meter = build_meter(
        args.profile,
        seed=1,
        start=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC),
        origin=time.monotonic(),
    )
    with RunningSimulator(meter, keys={}, timing=timing, pty=False) as sim:
        assert sim.url is not None
        full = asyncio.run(measure(sim.url, args.duration, lambda c: c.read_table(TableId.BT28)))
        report("(a) full BT28", *full, timing)
        part = asyncio.run(
            measure(sim.url, args.duration, lambda c: c.read_present(DASHBOARD_FIELDS))
        )
        report("(b) dashboard partial read", *part, timing)


if __name__ == "__main__":
    main()
