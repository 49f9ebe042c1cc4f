"""Console requests running in the background, so a long read shows its progress and can stop.

A read of a large table (BT64, 184 KB) takes minutes: the gateway sends it in pieces between
its poll cycles (:mod:`mepgate.service.console`).  The console page starts a :class:`ConsoleJob`
for every request, shows the reply at once when it came quickly, and otherwise a progress bar
(``console.js`` asks ``/api/v1/console/jobs/{id}``) with a cancel button.  One job per meter
runs at a time; the last :data:`MAX_JOBS` are kept for their replies.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from mepgate.proto import ReadRequest, WriteRequest
from mepgate.service.console import ConsoleCancelled, ReadProgress, tracking
from mepgate.service.view import ConsoleError, ConsoleReply, GatewayView

MAX_JOBS = 8
"""Finished jobs kept (with their replies, up to a table's size each) for the page to show."""


@dataclass(slots=True, kw_only=True)
class ConsoleJob:
    id: str
    meter: str
    request_hex: str
    progress: ReadProgress
    task: asyncio.Task[ConsoleReply] = field(repr=False)
    form: dict[str, str] = field(default_factory=dict)  # what was typed, to show it again
    ended: float | None = None  # time.monotonic() when it ended

    @property
    def elapsed_s(self) -> float:
        return (self.ended or time.monotonic()) - self.progress.started

    @property
    def state(self) -> str:
        """``running``, ``done`` (a reply, maybe with an error code), ``cancelled``, ``failed``."""
        if not self.task.done():
            return "running"
        error = self.error_of()
        if error is None:
            return "done"
        return "cancelled" if isinstance(error, ConsoleCancelled) else "failed"

    def error_of(self) -> BaseException | None:
        if self.task.cancelled():
            return ConsoleCancelled("stopped: the gateway is shutting down")
        return self.task.exception()

    @property
    def reply(self) -> ConsoleReply | None:
        if not self.task.done() or self.error_of() is not None:
            return None
        return self.task.result()

    def finished(self, task: asyncio.Task[ConsoleReply]) -> None:
        self.ended = time.monotonic()
        # The page reads the outcome when it asks; nobody may ask (a closed tab), and an
        # exception never retrieved would be logged as an error.
        if not task.cancelled():
            task.exception()

    @property
    def message(self) -> str:
        """What went wrong, in words (empty while running or when a reply came)."""
        error = self.error_of() if self.task.done() else None
        return str(error) if error is not None else ""


class ConsoleJobs:
    def __init__(self) -> None:
        self._jobs: OrderedDict[str, ConsoleJob] = OrderedDict()

    def start(
        self,
        view: GatewayView,
        meter: str,
        request: ReadRequest | WriteRequest,
        form: dict[str, str] | None = None,
    ) -> ConsoleJob:
        """Send ``request`` in the background; :class:`ConsoleError` while ``meter`` is busy
        with another console request (the meter serves one at a time)."""
        for job in self._jobs.values():
            if job.meter == meter and job.state == "running":
                raise ConsoleError(
                    f"a console request to {meter!r} is still running "
                    f"({job.progress.done} bytes so far): wait for it or cancel it"
                )
        progress = ReadProgress()

        async def run() -> ConsoleReply:
            with tracking(progress):
                return await view.console(meter, request)

        task = asyncio.create_task(run(), name=f"mepgate-console-{meter}")
        job = ConsoleJob(
            id=secrets.token_urlsafe(9),
            meter=meter,
            request_hex=request.to_bytes().hex(" ").upper(),
            progress=progress,
            task=task,
            form=dict(form or {}),
        )
        task.add_done_callback(job.finished)
        self._jobs[job.id] = job
        self._forget_old()
        return job

    def get(self, job_id: str) -> ConsoleJob | None:
        return self._jobs.get(job_id)

    def cancel_all(self) -> None:
        """Stop every running job before its next piece (the server is shutting down)."""
        for job in self._jobs.values():
            job.progress.cancel()

    def _forget_old(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.state != "running"]
        while len(self._jobs) > MAX_JOBS and finished:
            del self._jobs[finished.pop(0)]
