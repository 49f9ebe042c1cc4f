"""How faithfully the simulator keeps MEP wire time: measured ÷ modelled, for full BT28 reads.

Starts a ``gen4-3phase`` simulated meter on a localhost TCP port with timing on at 9600 baud,
sends the old firmware's full BT28 read (``30 001C 0200``, FIELD-NOTES.md) repeatedly, and
times each exchange from the request's write to the reply's last byte.  The model
(:func:`mepgate.simulator.timing.model_exchange`) is request wire time + processing + reply
wire time + 25 ms pauses between 117-byte segments (MEP guide, "MEP Protocol Timing").
Expect 1.00 ± 0.05.  Run: ``python benchmarks/sim_timing.py [--exchanges N] [--baud B]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from mepgate.proto import AccessLevel, ClientSequence, ResponseCode, prepare_request
from mepgate.proto.constants import DEFAULT_BAUD, MIN_REQUEST_INTERVAL
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK
from mepgate.simulator.model import build_meter
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.serve.probe import LineProbe
from mepgate.simulator.timing import WireTiming, model_exchange

BT28_FULL_READ = bytes.fromhex("30001C0200")  # full read of table 28, 'up to 512 bytes'
TOLERANCE = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description="Simulator wire timing: measured / modelled.")
    parser.add_argument("--exchanges", type=int, default=10, help="BT28 reads to time")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    parser.add_argument("--profile", default="gen4-3phase")
    args = parser.parse_args()

    timing = WireTiming(baud=args.baud)
    keys = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
    meter = build_meter(
        args.profile,
        seed=1,
        start=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC),
        origin=time.monotonic(),
        keys=keys,
    )
    measured: list[float] = []
    modelled: list[float] = []
    with (
        RunningSimulator(meter, keys=keys, timing=timing, pty=False) as sim,
        LineProbe.open(sim.url or "") as probe,
    ):
        sequence = ClientSequence(0)
        for _ in range(args.exchanges + 1):
            exchange = prepare_request(BT28_FULL_READ, sequence.take(), DEFAULT_MBK)
            sent = time.monotonic()
            probe.send(exchange.frame)
            reply = probe.next_frame(timeout=2.0)
            response = exchange.decode(reply.wire, DEFAULT_MBK)
            # Keep the 100 ms request throttle out of the next exchange (it is in the model,
            # model_exchange(since_previous_service=...), but not what this measures).
            time.sleep(MIN_REQUEST_INTERVAL)
            if response.next_sequence is not None:  # the first one learns the number
                sequence.adopt(response.next_sequence)
                continue
            if response.code != ResponseCode.OK:
                raise SystemExit(f"BT28 read refused: {response.code:#04x}")
            measured.append(reply.last - sent)
            modelled.append(model_exchange(len(exchange.frame), len(reply.wire), timing).total)
    model = model_exchange(len(exchange.frame), len(reply.wire), timing)
    ratios = [m / e for m, e in zip(measured, modelled, strict=True)]
    ratio = sum(measured) / sum(modelled)
    print(f"{args.profile}, {args.baud} baud, timing on, TCP localhost")
    print(
        f"BT28 exchange: request {len(exchange.frame)} B, reply {len(reply.wire)} B "
        f"({len(timing.segments(len(reply.wire)))} segments)"
    )
    print(
        f"modelled: {model.total * 1000:.1f} ms = wire {model.request_wire * 1000:.1f} + "
        f"{model.reply_wire * 1000:.1f} ms, pauses {model.pauses * 1000:.0f} ms, "
        f"processing {model.processing * 1000:.0f} ms"
    )
    print(
        f"measured: mean {statistics.mean(measured) * 1000:.1f} ms over {len(measured)} "
        f"exchanges (per-exchange ratio {min(ratios):.3f}..{max(ratios):.3f})"
    )
    verdict = "within" if abs(ratio - 1) <= TOLERANCE else "OUTSIDE"
    print(f"measured / modelled = {ratio:.3f}  ({verdict} 1.00 ± {TOLERANCE:.2f})")


if __name__ == "__main__":
    main()
