"""Subprocess for the crash test: ingest numbered batches forever, printing each committed id.

Usage: ``python crash_writer.py STORAGE_URL BATCH_SIZE``.  Batch ``k`` holds the readings at
seconds ``k * BATCH_SIZE`` .. ``(k + 1) * BATCH_SIZE - 1`` after 2024-01-01 UTC.
"""

from __future__ import annotations

import datetime as dt
import sys

from mepgate.reading import Reading
from mepgate.store import open_store

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def batch(k: int, size: int) -> list[Reading]:
    return [
        Reading(
            meter="crash",
            at=START + dt.timedelta(seconds=k * size + i),
            forward_active_energy_wh=float(k * size + i),
            reverse_active_energy_wh=0.0,
            active_power_import_w=float(i),
            voltage_l1_v=230.0,
        )
        for i in range(size)
    ]


def main() -> None:
    url, size = sys.argv[1], int(sys.argv[2])
    store = open_store(url)
    print("ready", flush=True)
    k = 0
    while True:
        store.ingest(batch(k, size))
        print(k, flush=True)
        k += 1


if __name__ == "__main__":
    main()
