"""``mepgate simulate --events``: the grammar in the help, usage errors, and a scheduled outage
and tamper attempt in the simulated meter's BT74 as a client reads it."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest

from mepgate.tables.events import (
    BT71,
    BT74_HEADER_LAYOUT,
    HEADER_SIZE,
    decode_entries,
    entry_offset,
)
from mepgate.tables.ids import TableId

from ..service.test_poller import fast_client
from .test_frontend_cli import MEPGATE, STARTUP, _start, _stop, run_simulate

__all__ = ["run_simulate"]  # the fixture this module uses


def test_simulate_help_documents_the_events_grammar() -> None:
    result = subprocess.run(
        [str(MEPGATE), "simulate", "--help"], capture_output=True, text=True, check=True
    )
    for word in ("--events", "outage=S@T", "tamper@T", "clock=D@T"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("events", "complaint"),
    [
        ("outage@5", "an outage lasts > 0 s"),
        ("flood=3@5", "unknown kind 'flood'"),
        ("tamper", "say when with @T"),
        ("clock=0@5", "a clock set needs a delta"),
    ],
)
def test_simulate_events_usage_errors_exit_2(events: str, complaint: str) -> None:
    result = subprocess.run(
        [str(MEPGATE), "simulate", "--tcp", "127.0.0.1:0", "--events", events],
        capture_output=True,
        text=True,
        timeout=STARTUP,
        check=False,
    )
    assert result.returncode == 2
    assert complaint in result.stderr


def test_scheduled_events_are_in_the_meters_log(
    run_simulate: list[subprocess.Popen[str]],
) -> None:
    process, url = _start(
        run_simulate,
        "--tcp", "127.0.0.1:0", "--no-timing", "--speed", "600",
        "--events", "outage=120@1,tamper@200",
    )  # fmt: skip

    async def read_log() -> list[tuple[int, int]]:
        async with fast_client(url) as client:
            log = BT71.decode(await client.read(TableId.BT71, offset=0, count=9))
            for _ in range(200):  # 200 simulated seconds pass in a third of a real second
                header = BT74_HEADER_LAYOUT.decode(
                    await client.read(TableId.BT74, offset=0, count=HEADER_SIZE)
                )
                if header.number_of_valid_entries >= 3:
                    break
                await asyncio.sleep(0.05)
            size = 12 + log.history_argument_length
            data = await client.read(TableId.BT74, offset=entry_offset(log, 0), count=3 * size)
            entries = decode_entries(data, log)
            times = [e.time.to_datetime() for e in entries if e.time is not None]
            assert (times[1] - times[0]).total_seconds() == 120  # type: ignore[operator]
            return [(e.event_id or 0, e.sequence_number or 0) for e in entries]

    assert asyncio.run(read_log()) == [(1, 1), (2, 2), (47, 3)]
    _stop(process, signal.SIGTERM)
