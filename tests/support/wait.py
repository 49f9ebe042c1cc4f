"""Waiting for a condition inside a test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

TIMEOUT_S = 15.0
"""How long :func:`until` waits by default: a bound on a hang, not a speed requirement."""


async def until(
    condition: Callable[[], bool],
    *,
    what: str = "the condition",
    tasks: Iterable[asyncio.Task[None]] = (),
    timeout: float = TIMEOUT_S,
    interval: float = 0.01,
) -> None:
    """Wait for ``condition``; fail at once if one of ``tasks`` (background work the condition
    depends on) ended, or after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        for task in tasks:
            if task.done():
                task.result()  # raises what killed it
                raise AssertionError(f"{task.get_name()} ended while waiting for {what}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
