"""Where a reading's time goes on the soak's noisy line, the client alone on it.

The simulated meter (real wire timing at 9600 Bd, the guide's pacing) runs in this process
with ``--faults drop=0.1,corrupt=0.01,reboot=0.003`` (as benchmarks/soak.py); one
:class:`~mepgate.client.MeterClient` takes readings back to back, each what the poller reads
(BT23's first two summations, then the dashboard's BT28 values).  Every frame sent is timed
from the moment its request machine made it (draining and the 100 ms pacing included) to the
moment its fate was decided, and filed by that fate:

    ok        the reply arrived whole
    damaged   a reply of the right size failed its digest (the meter acted on the request)
    timeout   nothing usable came within the response timeout
    0x0C      the meter refused the sequence number (and named the one it wants)
    other     any other code (0x0B, ...)

Prints the time per reading (mean, p50, p90, p99), the share of the time each fate took, and
how many frames of each fate a reading costs on average.

    .venv/bin/python benchmarks/link_time.py                 # 300 readings
    .venv/bin/python benchmarks/link_time.py --readings 100 --seed 11
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
from collections import Counter, defaultdict

from mepgate.client import MepSession, MeterClient
from mepgate.client.mep import machine
from mepgate.proto import AccessLevel
from mepgate.proto.codes import ResponseCode
from mepgate.proto.frames import Response
from mepgate.service.poller import ENERGY_SUMMATIONS, TRANSIENT_POLL_ERRORS, present_fields
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK
from mepgate.simulator.model import build_meter
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming

KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
FAULTS = "drop=0.1,corrupt=0.01,reboot=0.003"
FROZEN = 1e-9

spent: defaultdict[str, float] = defaultdict(float)
frames: Counter[str] = Counter()
failed: list[float] = []
story: list[str] = []  # the current reading's frames, in order: o ok, d damaged, t timeout, c 0x0C
slowest: list[tuple[float, str, str]] = []  # (seconds, frames, what the requests were)


def instrument() -> None:
    """File each frame's time under its fate (benchmark only: wraps the machine's methods)."""
    original_new = machine.Rc4Request._new_attempt
    original_decide = machine.Rc4Request._decide

    started: dict[int, float] = {}

    def new_attempt(self: machine.Rc4Request) -> machine.Attempt[Response]:
        started[id(self)] = time.monotonic()
        return original_new(self)

    def decide(self: machine.Rc4Request, reply: Response | None) -> None:
        if reply is None:
            fate = "damaged" if self._attempt.damaged_reply else "timeout"
        elif reply.code == ResponseCode.OK:
            fate = "ok"
        elif reply.code == ResponseCode.INVALID_SEQUENCE_NUMBER:
            fate = "0x0C"
        else:
            fate = "other"
        spent[fate] += time.monotonic() - started[id(self)]
        frames[fate] += 1
        story.append({"ok": "o", "damaged": "d", "timeout": "t", "0x0C": "c"}.get(fate, "?"))
        original_decide(self, reply)

    machine.Rc4Request._new_attempt = new_attempt  # type: ignore[method-assign]
    machine.Rc4Request._decide = decide  # type: ignore[method-assign]


async def take(port: str, readings: int) -> tuple[list[float], float, MeterClient]:
    client = MeterClient(MepSession(port, DEFAULT_MBK))
    fields = present_fields()
    durations: list[float] = []
    async with client:
        await client.dimensions()
        spent.clear()
        frames.clear()
        began = time.monotonic()
        for _ in range(readings):
            start = time.monotonic()
            story.clear()
            requests = client.stats.requests
            try:
                await client.read_energy_totals(ENERGY_SUMMATIONS)
                await client.read_present(fields)
            except TRANSIENT_POLL_ERRORS:
                failed.append(time.monotonic() - start)  # a missed poll: the poller goes on
                slowest.append((failed[-1], "".join(story), "failed"))
                continue
            durations.append(time.monotonic() - start)
            asked = f"{client.stats.requests - requests} requests"
            slowest.append((durations[-1], "".join(story), asked))
        total = time.monotonic() - began
    return durations, total, client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--faults", default=FAULTS)
    args = parser.parse_args()
    meter = build_meter(
        "gen4-3phase",
        seed=args.seed,
        start=dt.datetime.now(dt.UTC),
        speed=FROZEN,
        origin=time.monotonic(),
        keys=KEYS,
    )
    simulator = RunningSimulator(
        meter, keys=KEYS, timing=WireTiming(), faults=f"{args.faults},seed={args.seed}", pty=False
    )
    simulator.start()
    instrument()
    try:
        durations, total, client = asyncio.run(take(simulator.url or "", args.readings))
    finally:
        simulator.stop()
    cuts = statistics.quantiles(durations, n=100)
    per = total / args.readings
    print(f"line carries  {len(durations) / total:.2f} readings/s ({per:.3f} s per try)")
    print(f"faults        {args.faults} (seed {args.seed}), {args.readings} readings")
    print(f"failed        {len(failed)} readings (missed polls), {sum(failed):.1f} s in them")
    print(
        f"per reading   mean {statistics.fmean(durations):.3f} s, p50 {cuts[49]:.3f}, "
        f"p90 {cuts[89]:.3f}, p99 {cuts[98]:.3f}, max {max(durations):.3f} s"
    )
    accounted = sum(spent.values())
    print(f"in frames     {accounted / total:.1%} of {total:.1f} s (the rest: between requests)")
    for fate in ("ok", "damaged", "timeout", "0x0C", "other"):
        if frames[fate]:
            print(
                f"  {fate:<9} {frames[fate] / args.readings:5.2f} frames/reading, "
                f"{spent[fate] / args.readings:.3f} s/reading ({spent[fate] / total:5.1%}), "
                f"{spent[fate] / frames[fate] * 1000:.0f} ms each"
            )
    print("slowest       (frames: o ok, d damaged, t timeout, c 0x0C)")
    for seconds, frames_, asked in sorted(slowest, reverse=True)[:6]:
        print(f"  {seconds:5.2f} s  {frames_}  ({asked})")
    session = client.session
    assert isinstance(session, MepSession)
    print(f"read size     {session.max_read} bytes at the end (MepLink.chunk)")
    print(f"read timeout  {session.read_timeout * 1000:.0f} ms at the end (learnt)")
    stats = client.stats.as_dict()
    keys = (
        "sequence_resyncs",
        "sequence_conflicts",
        "late_replies",
        "idt_changes",
        "alerts_serviced",
    )
    print("link stats    " + ", ".join(f"{k} {stats.get(k, 0)}" for k in keys))


if __name__ == "__main__":
    main()
