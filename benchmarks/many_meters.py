"""One gateway process polling many simulated meters: CPU seconds per reading.

    python benchmarks/many_meters.py                      # 100 meters, 4 simulator processes, 60 s
    python benchmarks/many_meters.py --meters 20 --duration 20
    python benchmarks/many_meters.py --store postgresql://postgres@127.0.0.1:5432/test

The simulated meters run in ``--processes`` other processes (this script started again with
``--serve``), each serving its share on loopback TCP ports with the simulator's own front end
(:class:`~mepgate.simulator.serve.TcpFrontEnd` over a
:class:`~mepgate.simulator.model.MeterModel`).  Their wire timing is **off** (replies leave at
once, as ``mepgate simulate --no-timing``): pacing bytes at 9600 baud for 100 meters would cost
the simulator processes far more CPU than the gateway, and what is measured here is the
gateway.  The gateway keeps the MEP guide's client timing (100 ms between requests, 500 ms
timeout), validates every reading and stores it in batches (SQLite in a temporary directory
unless ``--store`` names a database), exactly as ``mepgate serve`` does.

Measured after every meter is polling (identity and dimensions read): the gateway process's
CPU time (user + system, all its threads: event loop and store workers) over ``--duration``
seconds, divided by the readings accepted in that time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from mepgate.config import MeterConfig, Settings, StorageConfig, WebConfig
from mepgate.proto import AccessLevel
from mepgate.service.gateway import Gateway
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK
from mepgate.simulator.model import build_meter
from mepgate.simulator.serve import MeterPort, TcpFrontEnd
from mepgate.simulator.timing import WireTiming

KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
PROFILE = "gen4-3phase"


# -- simulator processes --------------------------------------------------------------------------
async def serve_simulators(count: int, first_seed: int) -> None:
    """Serve ``count`` meters on loopback; print one ``tcp://`` URL per line, then ``ready``."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ends: list[TcpFrontEnd] = []
    for seed in range(first_seed, first_seed + count):
        meter = build_meter(PROFILE, seed=seed, start=start, origin=loop.time(), keys=KEYS)
        end = TcpFrontEnd(MeterPort(meter, timing=WireTiming(enabled=False)))
        print(await end.start("127.0.0.1", 0), flush=True)
        ends.append(end)
    print("ready", flush=True)
    await stop.wait()
    for end in ends:
        await end.close()


def start_simulators(meters: int, processes: int) -> tuple[list[subprocess.Popen[str]], list[str]]:
    share = -(-meters // processes)
    children: list[subprocess.Popen[str]] = []
    for index in range(processes):
        count = min(share, meters - index * share)
        if count <= 0:
            break
        children.append(
            subprocess.Popen(
                [sys.executable, __file__, "--serve", str(count), "--seed", str(index * share)],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    urls: list[str] = []
    for child in children:
        assert child.stdout is not None
        while (line := child.stdout.readline().strip()) != "ready":
            if not line:
                raise RuntimeError("a simulator process ended before it was ready")
            urls.append(line)
    return children, urls


# -- the gateway ----------------------------------------------------------------------------------
def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(urls: list[str], store_url: str, duration: float, interval: float) -> None:
    settings = Settings(
        meter=[
            MeterConfig(
                name=f"m{index:03d}",
                port=url,
                key=SecretStr(DEFAULT_MBK.decode()),
                poll_interval=interval,
            )
            for index, url in enumerate(urls)
        ],
        storage=StorageConfig(url=store_url, timezone="UTC"),
        web=WebConfig(),
    )
    with tempfile.TemporaryDirectory() as data_dir:
        gateway = Gateway(settings, data_dir=Path(data_dir))
        started = time.monotonic()
        async with gateway:
            while not all(m.state == "polling" for m in gateway.meters()):
                if time.monotonic() - started > 120:
                    states = {m.name: m.state for m in gateway.meters() if m.state != "polling"}
                    raise RuntimeError(f"meters not polling after 120 s: {states}")
                await asyncio.sleep(0.1)
            ready = time.monotonic() - started
            pollers = [poller for poller, _ in gateway._pollers.values()]
            readings_before = sum(p.readings_accepted for p in pollers)
            cpu_before, wall_before = cpu_seconds(), time.monotonic()
            await asyncio.sleep(duration)
            readings = sum(p.readings_accepted for p in pollers) - readings_before
            cpu = cpu_seconds() - cpu_before
            wall = time.monotonic() - wall_before
            statuses = gateway.meters()
        rejected = sum(m.readings_rejected for m in statuses)
        errors = sum(len(m.last_errors) for m in statuses)
        timeouts = sum(m.link.get("timeouts", 0) for m in statuses)
    meters = len(urls)
    print(f"meters                    {meters} (simulators in other processes, timing off)")
    print(f"all polling after         {ready:.1f} s")
    print(f"measured                  {wall:.1f} s at {interval:g} s per meter")
    rate, ideal = readings / wall, meters / interval
    print(f"readings                  {readings} ({rate:.1f}/s; ideal {ideal:.0f}/s)")
    print(f"gateway CPU               {cpu:.2f} s ({100 * cpu / wall:.1f} % of one core)")
    per_reading = cpu / max(readings, 1)
    print(f"CPU seconds per reading   {per_reading:.6f} s ({per_reading * 1000:.3f} ms)")
    print(f"rejected / link errors    {rejected} / {errors} (timeouts {timeouts})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--processes", type=int, default=4, help="simulator processes")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval per meter (s)")
    parser.add_argument("--store", help="storage URL (default: SQLite in a temporary directory)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # simulator process mode
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve_simulators(args.serve, args.seed))
        return
    children, urls = start_simulators(args.meters, args.processes)
    try:
        with tempfile.TemporaryDirectory() as directory:
            store_url = args.store or f"sqlite:///{directory}/many.db"
            asyncio.run(measure(urls, store_url, args.duration, args.interval))
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(10)


if __name__ == "__main__":
    main()
