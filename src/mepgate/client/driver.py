"""The async half of a sans-IO link machine (:mod:`~mepgate.client.actions`): it moves bytes
and keeps time, nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from mepgate.client.actions import Finished, Machine, Receive, Transmit
from mepgate.transport import Link

R = TypeVar("R")
Trace = Callable[[str, bytes], None]
Clock = Callable[[], float]

IDLE_POLL = 0.001
"""How long a ``Receive(until=None)`` looks for bytes that already arrived (a zero wait would
not read at all)."""


async def drive(
    machine: Machine[R], link: Link, *, clock: Clock | None = None, trace: Trace | None = None
) -> R:
    """Run ``machine`` on ``link`` until it finishes (its result) or fails (its error).
    ``trace`` sees every frame written (what is read the machine cuts into frames itself)."""
    now = clock or asyncio.get_running_loop().time
    while True:
        action = machine.next_action()
        if isinstance(action, Transmit):
            wait = action.not_before - now()
            if wait > 0:
                await asyncio.sleep(wait)
            if trace is not None:
                trace(">>", action.data)
            await link.write(action.data)
            machine.sent(now())
        elif isinstance(action, Receive):
            timeout = IDLE_POLL if action.until is None else action.until - now()
            data = await link.read(timeout)
            if data:
                machine.received(data, now())
            else:
                machine.timed_out(now())
        elif isinstance(action, Finished):
            return action.result
        else:
            raise action.error
