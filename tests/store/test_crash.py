"""Crash safety: kill -9 a process in the middle of ingesting, then reopen the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mepgate.store import SqliteStore, open_store

WRITER = Path(__file__).with_name("crash_writer.py")
BATCH = 400
BATCHES_BEFORE_KILL = 25


def test_kill_9_during_ingest_loses_at_most_the_batch_in_flight(store_url: str) -> None:
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), store_url, str(BATCH)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    committed: list[int] = []
    try:
        assert writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while len(committed) < BATCHES_BEFORE_KILL and time.monotonic() < deadline:
            committed.append(int(writer.stdout.readline()))
        os.kill(writer.pid, signal.SIGKILL)  # lands in the next batch's transaction
        writer.wait(timeout=10)
        committed += [int(line) for line in writer.stdout.read().split()]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert len(committed) >= BATCHES_BEFORE_KILL
    assert committed == list(range(len(committed)))

    with open_store(store_url) as store:
        if isinstance(store, SqliteStore):
            assert store.integrity_check() == "ok"
        times = [row[0] for row in store._q("SELECT t_ms FROM raw ORDER BY t_ms")]
        stored = len(times)
        # Every acknowledged batch is there, complete; at most the one in flight besides.
        assert stored in (len(committed) * BATCH, (len(committed) + 1) * BATCH)
        assert times == [1_704_067_200_000 + 1000 * i for i in range(stored)]
        # Rollups were written in the same transactions as the raw rows.
        counted = store._q("SELECT sum(forward_active_energy_wh_n) FROM rollup_minute")[0][0]
        assert counted == stored
        assert store.ingest([]) == 0
