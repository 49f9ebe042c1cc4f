"""Running the outputs (MQTT, ...) for as long as the gateway runs.

An :data:`Output` is a coroutine function the gateway runs with its :class:`GatewayView`.  The
supervisor restarts one ten seconds after it fails, lets one that returns by itself (not
configured) rest, and on :meth:`OutputSupervisor.stop` cancels them all, waiting a few seconds
at most: an output that does not end must not keep the readings from being stored.  The gateway
stops and starts them again after new settings, so each reads the new ``view.settings``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from mepgate.service.view import GatewayView

log = logging.getLogger(__name__)

Output = Callable[[GatewayView], Awaitable[None]]
"""An output: ``async def run(view)`` that runs until cancelled (subscribe to ``view.hub``,
read ``view.settings``).  Failures are logged and the output restarted."""

OUTPUT_STOP_TIMEOUT = 5.0  # seconds an output (MQTT) gets to say goodbye when we stop
OUTPUT_RESTART_DELAY = 10.0


class OutputSupervisor:
    """Runs ``outputs`` with ``view`` between :meth:`start` and :meth:`stop`."""

    def __init__(self, outputs: Sequence[Output], view: GatewayView) -> None:
        self._outputs = tuple(outputs)
        self._view = view
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._supervise(output), name=f"mepgate-output-{index}")
            for index, output in enumerate(self._outputs)
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        # An output that does not end must not keep the readings from being stored.
        _, pending = await asyncio.wait(tasks, timeout=OUTPUT_STOP_TIMEOUT)
        for task in pending:
            log.warning(
                "output %s did not stop within %.0f s; leaving it behind",
                task.get_name(),
                OUTPUT_STOP_TIMEOUT,
            )

    async def _supervise(self, output: Output) -> None:
        while True:
            try:
                await output(self._view)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("output %s failed; restarting it", _name_of(output))
            else:
                return  # it finished by itself (e.g. not configured)
            await asyncio.sleep(OUTPUT_RESTART_DELAY)


def _name_of(output: Output) -> str:
    return getattr(output, "__qualname__", None) or repr(output)
