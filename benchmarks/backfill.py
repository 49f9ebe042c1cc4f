"""How close the load-profile back-fill comes to the line's limit while live polling goes on.

A simulated meter (``mepgate simulate`` in its own process, as a meter is its own device; wire
timing on, 9600 baud by default) installed ``--days`` ago with a 15-minute profile; the real
gateway (poller, back-fill job, SQLite store in a temporary
directory) polls it every second and back-fills the whole profile (a week: 672 intervals).
Printed:

* the back-fill's achieved BT64 bytes per second, divided by the **wire limit**: the BT64 data
  bytes the line could have carried in the time the live polls (and the job's own BT63 reads)
  left free.  Every exchange is timed by the simulator's timing model
  (:func:`mepgate.simulator.timing.model_exchange`: 10 bits per byte at the baud rate, the
  request and reply frames as sent, the meter's think time, its inter-segment pauses, and the
  100 ms throttle of back-to-back requests); the free time is the back-fill's duration less the
  modelled time of the other exchanges in it, and the limit fills it with reads of
  ``max_read`` bytes back to back.  Goal >= 0.9.
* the largest gap between two live readings during the back-fill (goal <= 2 s).

    .venv/bin/python benchmarks/backfill.py [--days 7] [--baud 9600]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

import mepgate.service.gateway as gateway_module
from mepgate.client import MeterClient
from mepgate.client.session import Reply
from mepgate.config import MeterConfig, Settings, StorageConfig
from mepgate.service.backfill import BackfillJob
from mepgate.service.gateway import Gateway
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.timing import WireTiming, model_exchange

Exchange = tuple[float, float, str, int, int]  # start, end, what, bytes sent, bytes received
LOG: list[Exchange] = []


class RecordingClient(MeterClient):
    """The gateway's client, noting each exchange's time and wire bytes."""

    async def _send(self, message: bytes, what: str, quiet: bool) -> Reply:
        sent, received = self.stats.bytes_sent, self.stats.bytes_received
        start = time.monotonic()
        reply = await super()._send(message, what, quiet)
        LOG.append(
            (
                start,
                time.monotonic(),
                what,
                self.stats.bytes_sent - sent,
                self.stats.bytes_received - received,
            )
        )
        return reply


def steady(sent: int, received: int, timing: WireTiming) -> float:
    """The modelled time of an exchange following another at once (as poll_efficiency.py)."""
    first = model_exchange(sent, received, timing)
    since = first.processing + first.reply_wire + first.pauses + first.request_wire
    return model_exchange(sent, received, timing, since_previous_service=since).total


def start_simulator(days: float, timing: WireTiming) -> tuple[subprocess.Popen[str], str]:
    """``mepgate simulate`` with a profile of ``days`` filled; its URL."""
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mepgate",
            "simulate",
            "--tcp",
            "127.0.0.1:0",
            "--baud",
            str(timing.baud),
            "--lp-interval",
            "15",
            "--lp-depth",
            str(days),
            "--lp-history",
            str(days),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert simulator.stdout is not None
    url = simulator.stdout.readline().strip()
    if not url.startswith("tcp://"):
        simulator.kill()
        raise SystemExit(f"the simulator did not start: {url!r}")
    return simulator, url


async def run(days: float, timing: WireTiming, poll_interval: float) -> None:
    readings: list[float] = []
    gateway_module.MeterClient = RecordingClient  # type: ignore[attr-defined]
    simulator, url = start_simulator(days, timing)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            job = await poll_and_backfill(url, Path(tmp), timing, poll_interval, readings)
    finally:
        simulator.terminate()
        simulator.wait(10)
    report(job, readings, timing)


async def poll_and_backfill(
    url: str, tmp: Path, timing: WireTiming, poll_interval: float, readings: list[float]
) -> BackfillJob:
    settings = Settings(
        meter=[
            MeterConfig(
                name="house",
                port=url,
                key=SecretStr(DEFAULT_MBK.decode()),
                poll_interval=poll_interval,
                baud=timing.baud,  # type: ignore[arg-type]
            )
        ],
        storage=StorageConfig(url=f"sqlite:///{tmp / 'mepgate.db'}", timezone="UTC"),
    )
    gateway = Gateway(settings, data_dir=tmp, config_path=None)
    await gateway.start()
    try:
        async with gateway.hub.subscribe() as queue:
            job = gateway._pollers["house"][0].jobs[0]
            assert isinstance(job, BackfillJob)
            started = time.monotonic()
            while not (job.reads and job.status().state == "idle" and not job._pieces):
                try:
                    await asyncio.wait_for(queue.get(), 1.0)
                    readings.append(time.monotonic())
                except TimeoutError:
                    pass
                if time.monotonic() - started > 3600:
                    raise SystemExit("the back-fill did not finish within an hour")
            for _ in range(3):  # a few readings after it, for the last gap
                await asyncio.wait_for(queue.get(), 10.0)
                readings.append(time.monotonic())
    finally:
        await gateway.stop()
    return job


def report(job: BackfillJob, readings: list[float], timing: WireTiming) -> None:
    bt64 = [e for e in LOG if e[2] == "reading BT64"]
    begin, end = bt64[0][0], bt64[-1][1]
    duration = end - begin
    others = [e for e in LOG if e[2] != "reading BT64" and begin <= e[0] < end]
    busy = sum(steady(e[3], e[4], timing) for e in others)
    free = duration - busy
    request = max(e[3] for e in bt64)
    biggest = max(bt64, key=lambda e: e[4])
    frame_overhead = biggest[4] - max_data(job)
    per_read = steady(request, max_data(job) + frame_overhead, timing)
    limit = max_data(job) * free / per_read / duration
    achieved = job.bytes_read / duration
    during = [t for t in readings if begin - 2 <= t <= end + 2]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    print(
        f"back-fill: {job.intervals_read} intervals, {job.bytes_read} bytes of BT64 in "
        f"{job.reads} reads ({job.headers_read} block headers) over {duration:.1f} s, while "
        f"{len(during)} live readings came"
    )
    print(
        f"line: {timing.baud} baud; other exchanges in that time {len(others)} "
        f"(modelled {busy:.1f} s); free {free:.1f} s; a {max_data(job)}-byte read "
        f"{per_read * 1000:.0f} ms ({request}-byte request, {max_data(job) + frame_overhead}-byte "
        "reply)"
    )
    print(
        f"achieved {achieved:.1f} B/s; wire limit {limit:.1f} B/s; ratio {achieved / limit:.3f} "
        f"(goal >= 0.9); largest live-poll gap {max(gaps, default=0):.2f} s (goal <= 2 s)"
    )


def max_data(job: BackfillJob) -> int:
    return job.max_read_seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0, help="profile depth and history")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(run(args.days, WireTiming(baud=args.baud), args.poll_interval))


if __name__ == "__main__":
    main()
