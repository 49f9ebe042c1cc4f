"""How long each command takes against each hostile fake meter (tests/support/hostile.py).

Goal (issue: "never hang, always say why"): every command ends within 15 s, with the guide's
timing (9600 Bd pacing, 500 ms timeout) -- exit 1 and a named diagnosis where the meter
misbehaves, exit 0 where it is merely hard to read (a full ``dump`` of a working meter takes
as long as its ~200 kB of tables take, and is left out of the goal).  Prints one line per
command and the slowest.

    .venv/bin/python benchmarks/hostile.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.hostile import BEHAVIOURS, HostileMeter

from mepgate.simulator.meter import DEFAULT_MBK

COMMANDS = {
    "info": ["info"],
    "read": ["read", "BT28"],
    "watch": ["watch", "--count", "2"],
    "dump": ["dump", "-o", "{tmp}/dump.json"],
    "call": ["call", "EP39", "0c"],
    "doctor": ["doctor"],
}
GOAL_S = 15.0


def main() -> None:
    slowest = (0.0, "")
    with tempfile.TemporaryDirectory() as tmp:
        for behaviour in BEHAVIOURS:
            for name, args in COMMANDS.items():
                with HostileMeter(behaviour) as meter:
                    started = time.monotonic()
                    result = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "mepgate",
                            *(a.format(tmp=tmp) for a in args),
                            "--port",
                            meter.url,
                        ],
                        env={"MEPGATE_KEY": DEFAULT_MBK.decode(), "PATH": "/usr/bin:/bin"},
                        capture_output=True,
                        text=True,
                        timeout=300,
                        check=False,
                    )
                    took = time.monotonic() - started
                last = (result.stderr or result.stdout).strip().splitlines()
                said = last[-1][:70] if last else ""
                print(f"{behaviour:12} {name:7} exit {result.returncode}  {took:5.1f} s  {said}")
                if result.returncode != 0 or name != "dump":
                    # A working meter's dump reads everything (BT64 alone is ~180 kB): it takes
                    # what the data takes, and shows its progress.
                    slowest = max(slowest, (took, f"{behaviour} {name}"))
    verdict = "met" if slowest[0] <= GOAL_S else "NOT met"
    print(f"slowest: {slowest[1]} in {slowest[0]:.1f} s (goal {GOAL_S:g} s: {verdict})")


if __name__ == "__main__":
    main()
