"""Every command against a hostile fake meter (tests/support/hostile.py) ends, with exit 1 and
a named diagnosis where the meter misbehaves, and with the true values where it merely makes
reading hard (an alert flood, spread-out present values).

The commands run as real processes, with the guide's timing, so each one's duration includes
all of its waits; a generous hang guard ends a command that would hang, and the 15 s the
issue asks of each is checked by benchmarks/hostile.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from mepgate.client import (
    DASHBOARD_FIELDS,
    Backoff,
    LinkTiming,
    MepSession,
    MeterClient,
    PortUnavailableError,
)
from mepgate.proto import parse_key
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model.present import named_present_values

from ..support.hostile import HostileMeter

HANG_GUARD_S = 120
MISBEHAVING = {
    "noise": "garbled",
    "accept-close": "port-busy",
    "zero-reads": "bad-reply",
    "short": "bad-reply",
    "endless": "bad-reply",
}
WORKS_ANYWAY = {("zero-reads", "call"), ("short", "call")}
"""A procedure call reads its result whole: partial reads that misbehave do not touch it."""
COMMANDS = {
    "info": ["info"],
    "read": ["read", "BT28"],
    "watch": ["watch", "--count", "2"],
    "dump": ["dump", "-o", "{tmp}/dump.json"],
    "call": ["call", "EP39", "0c"],
    "doctor": ["doctor"],
}


def mepgate(args: list[str], port: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mepgate", *args, "--port", port],
        env={"MEPGATE_KEY": DEFAULT_MBK.decode(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("behaviour", MISBEHAVING)
def test_a_misbehaving_meter_ends_every_command_with_a_named_diagnosis(
    behaviour: str, command: str, tmp_path: Path
) -> None:
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    with HostileMeter(behaviour) as meter:
        result = mepgate(args, meter.url)
    if (behaviour, command) in WORKS_ANYWAY:
        assert result.returncode == 0, result.stdout + result.stderr
        return
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    diagnosis = MISBEHAVING[behaviour]
    if command == "doctor":
        assert f"problem ({diagnosis})" in result.stdout
    else:
        assert diagnosis.replace("-", " ") in result.stderr.replace("-", " ") or any(
            words in result.stderr for words in ADVICE[diagnosis]
        ), result.stderr


ADVICE = {
    "garbled": ("never form a MEP frame",),
    "port-busy": ("busy",),
    "bad-reply": ("not what was asked", "the meter sent"),
}


@pytest.mark.parametrize("behaviour", ["alert-flood", "spread-bt27"])
def test_a_meter_that_is_merely_hard_to_read_is_read_right(behaviour: str) -> None:
    with HostileMeter(behaviour) as meter:

        async def read() -> dict[str, int | None]:
            session = MepSession(meter.url, parse_key(DEFAULT_MBK.decode()), timing=LinkTiming())
            async with MeterClient(session) as client:
                values = await client.read_present(DASHBOARD_FIELDS)
                await client.read_present(DASHBOARD_FIELDS)  # and again: alerts serviced
                return {name: getattr(values, name) for name in DASHBOARD_FIELDS}

        values = asyncio.run(read())
        for command in (["info"], ["watch", "--count", "2"], ["doctor"]):
            result = mepgate(command, meter.url)
            assert result.returncode == 0, result.stdout + result.stderr
    truth = named_present_values(meter.model.snapshot().electrical)
    assert values == {name: truth[name] for name in DASHBOARD_FIELDS}


def test_within_a_time_limit_a_lost_port_is_not_reconnected() -> None:
    # A job's step beside the live poll (MeterClient.time_limit) must not spend the live gap
    # on the client's reconnect back-off: the port's loss is raised at once, and the next poll
    # reconnects (or names the port busy).  Outside a limit the client does reconnect.
    with HostileMeter("accept-close") as meter:

        async def read(limit: float | None) -> None:
            session = MepSession(meter.url, parse_key(DEFAULT_MBK.decode()), timing=LinkTiming())
            client = MeterClient(session, backoff=Backoff(initial=0.01, maximum=0.01, attempts=3))
            try:
                if limit is None:
                    await client.read(0x0001, offset=0, count=4)
                else:
                    with client.time_limit(limit):
                        await client.read(0x0001, offset=0, count=4)
            finally:
                await client.close()

        with pytest.raises(PortUnavailableError):
            asyncio.run(read(30.0))
        assert meter.connections == 1
        with pytest.raises(PortUnavailableError):
            asyncio.run(read(None))
        assert meter.connections > 2
