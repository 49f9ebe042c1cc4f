"""A noisy line for ten minutes, with a kill -9 halfway: does the gateway still deliver?

The simulated meter runs in this process (real wire timing at 9600 Bd, the guide's pacing) on a
loopback TCP port with ``--faults drop=0.1,corrupt=0.01,reboot=0.003``; its simulated clock
stands still, so its ground truth is one snapshot and every stored reading can be checked
against it.  ``mepgate serve`` (a real process, SQLite in a temporary directory, 1 s poll
interval) polls it for half the time, is killed with SIGKILL, started again on the same data,
and polls for the other half.

Prints: readings stored / expected (goal >= 0.95), stored values differing from the ground
truth (goal 0), the longest gap between stored readings outside the kill (goal <= 5 s), and
how often each diagnosis was logged (goal: noisy, not sequence-conflict).

    .venv/bin/python benchmarks/soak.py                 # 10 minutes
    .venv/bin/python benchmarks/soak.py --minutes 2     # a quicker look
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from mepgate.proto import AccessLevel
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK
from mepgate.simulator.model import build_meter, ground_truth
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming

KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
FAULTS = "drop=0.1,corrupt=0.01,reboot=0.003"
FROZEN = 1e-9
DIAGNOSIS = re.compile(r"\(([a-z-]+)\)\s*$")
TOLERANCE = {  # a reading's value may differ from the snapshot by BT28's own rounding
    "forward_active_energy_wh": 1.0,
    "reverse_active_energy_wh": 1.0,
    "active_power_import_w": 1.0,
    "active_power_export_w": 1.0,
    "voltage_l1_v": 0.001,
    "frequency_hz": 0.001,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve(config: Path, log: Path, level: str) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "mepgate", "serve", "--config", str(config), "--log-level", level],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="poll interval, s (the gateway's default)"
    )
    parser.add_argument("--log", action="store_true", help="print the gateway's log at the end")
    parser.add_argument("--log-level", default="info", help="the gateway's --log-level")
    args = parser.parse_args()
    half = args.minutes * 60 / 2

    meter = build_meter(
        "gen4-3phase",
        seed=args.seed,
        start=dt.datetime.now(dt.UTC),
        speed=FROZEN,
        origin=time.monotonic(),
        keys=KEYS,
    )
    simulator = RunningSimulator(
        meter, keys=KEYS, timing=WireTiming(), faults=f"{FAULTS},seed={args.seed}", pty=False
    )
    simulator.start()
    truth = simulator.call(lambda: ground_truth(meter, time.monotonic()))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        key_file = data / "mbk.txt"
        key_file.write_text(DEFAULT_MBK.decode() + "\n")
        key_file.chmod(0o600)
        config = data / "mepgate.toml"
        config.write_text(
            f'[[meter]]\nname = "soak"\nport = "{simulator.url}"\nkey_file = "{key_file}"\n'
            f"poll_interval = {args.interval}\n\n"
            f'[storage]\nurl = "sqlite:///{data}/mepgate.db"\ntimezone = "UTC"\n\n'
            f'[web]\nlisten = "127.0.0.1:{free_port()}"\n'
        )
        config.chmod(0o600)
        log = data / "serve.log"
        started = time.time()
        first = serve(config, log, args.log_level)
        time.sleep(half)
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = serve(config, log, args.log_level)
        time.sleep(half)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
        ended = time.time()
        with sqlite3.connect(data / "mepgate.db") as db:
            columns = [c[1] for c in db.execute("PRAGMA table_info(raw)")]
            rows = [dict(zip(columns, row, strict=True)) for row in db.execute(
                "SELECT * FROM raw ORDER BY t_ms"
            )]  # fmt: skip
        lines = log.read_text(errors="replace").splitlines()
    simulator.stop()

    times = [row["t_ms"] / 1000 for row in rows]
    gaps = [
        (b - a, a)
        for a, b in itertools.pairwise(times)
        if not (a <= killed_at <= b)  # the kill and restart are not the line's fault
    ]
    longest = max(gaps, default=(0.0, 0.0))
    # Expected: a reading each poll interval while the gateway polls -- from each run's first
    # reading to its end (starting up, identity and dimensions, is timed on its own below).
    before = [t for t in times if t < killed_at]
    after = [t for t in times if t > killed_at]
    polling = (killed_at - before[0] if before else 0.0) + (ended - after[0] if after else 0.0)
    expected = max(polling / args.interval, 1.0)
    starts = [
        (before[0] - started) if before else float("nan"),
        (after[0] - killed_at) if after else float("nan"),
    ]
    wrong = Counter(
        name
        for row in rows
        for name, tolerance in TOLERANCE.items()
        if row.get(name) is not None and abs(row[name] - _true(truth, name)) > tolerance
    )
    diagnoses = Counter(
        match[1] for line in lines if "meter soak:" in line and (match := DIAGNOSIS.search(line))
    )
    print(
        f"faults                {FAULTS} (seed {args.seed}), {args.minutes:g} min, "
        f"poll interval {args.interval:g} s, kill -9 halfway"
    )
    print(
        f"readings stored       {len(rows)} of ~{expected:.0f} expected: {len(rows) / expected:.3f}"
    )
    print(f"values off the truth  {sum(wrong.values())} {dict(wrong) or ''}")
    print(f"longest gap           {longest[0]:.1f} s (outside the kill)")
    worst = sorted(gaps, reverse=True)[:5]
    print(
        "longest gaps at       "
        + ", ".join(
            f"{gap:.1f} s at {dt.datetime.fromtimestamp(at, dt.UTC):%H:%M:%S}" for gap, at in worst
        )
    )
    print(f"first reading after   {starts[0]:.1f} s (start), {starts[1]:.1f} s (restart)")
    print(f"diagnoses logged      {dict(diagnoses) or 'none'}")
    print(f"tracebacks in the log {sum('Traceback' in line for line in lines)}")
    if args.log:
        print("\n".join(lines))


def _true(truth: object, name: str) -> float:
    electrical = truth.electrical  # type: ignore[attr-defined]
    values = {
        "forward_active_energy_wh": truth.forward_active_energy_wh,  # type: ignore[attr-defined]
        "reverse_active_energy_wh": truth.reverse_active_energy_wh,  # type: ignore[attr-defined]
        "active_power_import_w": electrical.forward_active_power_w,
        "active_power_export_w": electrical.reverse_active_power_w,
        "voltage_l1_v": electrical.phases[0].voltage_mv / 1000,
        "frequency_hz": electrical.frequency_mhz / 1000,
    }
    return float(values[name])


if __name__ == "__main__":
    main()
