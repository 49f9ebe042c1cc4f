"""Reads beside the live poll: back-fill, events, self-reads, sub-meters, in small pieces.

The meter serves one request at a time, and the live values must keep coming.  A
:class:`MeterJob` therefore never owns the link: between two polls the poller asks its jobs in
turn whether they want to run and lets one do *one step* -- one read of at most the client's
``max_read`` bytes (or one short procedure) -- as long as the next live reading can still follow
the previous one within :data:`MAX_LIVE_GAP_S` (or within the poll interval, when that is
longer).  How long a step takes is learnt per job (the longest of its recent steps), so a
noisy line that makes steps slow makes the poller give them less room, not the live values.

A job keeps its own schedule (:meth:`MeterJob.wants_to_run`), its own progress and its own
failures: a step that fails on a noisy line, is refused by the meter or cannot be decoded is
handed to :meth:`MeterJob.failed` (the job decides when to try again and says why in its
:class:`JobStatus`), and polling goes on.  Only a link that is gone (the transport closed, the
session lost) ends the session, as it would for a poll.

Jobs are told about each new session (:attr:`JobContext.session` changes): the first session
after a start, and every one after the link was lost, is where a back-fill looks for a gap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mepgate.client import MeterClient
    from mepgate.service.view import MeterIdentity

MAX_LIVE_GAP_S = 2.0
"""Live readings follow each other within this many seconds while jobs run (or within the
poll interval, when it is longer)."""

FIRST_STEP_ESTIMATE_S = 1.0
"""What a job's step is assumed to take before one was measured (a 465-byte read at 9600 Bd
with its request and the meter's think time is about 0.6 s)."""

GAP_MARGIN_S = 0.25
"""Kept free of the live gap for what estimates miss: a reply's think time varies, the event
loop is busy, a step takes a little longer than the longest of its recent ones."""

STEP_OVERRUN_S = 1.0
"""A step that takes longer than its estimate (a noisy line making its reads resend) may
stretch the live gap by this much more than :data:`MAX_LIVE_GAP_S` (or the poll interval);
then its reads are not asked again (:meth:`~mepgate.client.MeterClient.time_limit`), the step
fails on the line and the job goes on later.  A bound on every gap, not a goal: the
estimates keep gaps within the goal."""

MIN_STEP_TIME_S = 0.5
"""The least time a step that was let run is given: its first read on the line once."""

STEPS_REMEMBERED = 5
"""A job's step time estimate is the longest of its last this many steps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    """What a job is doing, for the health, the meter page and the log.

    ``state`` is ``"idle"`` (nothing to do until its next turn), ``"working"`` (``progress``
    0..1 when the job knows how far it is, ``detail`` says what in words), ``"failed"`` (the
    last step failed: ``last_error`` in words; the job tries again by itself) or
    ``"unsupported"`` (the meter does not have what the job reads: ``detail`` says what).
    """

    name: str
    state: str = "idle"
    progress: float | None = None
    detail: str = ""
    last_error: str | None = None
    last_success_at: dt.datetime | None = None
    warning: str | None = None
    """Something the job found that the user should know while it works on (the back-fill's
    disagreements between the live readings and the meter's profile): a health warning."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext:
    """What a job step may know about the meter and the gateway.

    ``now`` is the gateway's clock (UTC), ``monotonic`` the poller's; ``gateway_time`` turns one
    of the meter's own timestamps (load profile, events, self-reads) into the gateway's time by
    the meter's clock offset as last read (unchanged when the offset is unknown);
    ``clock_offset`` is that offset (meter minus gateway), ``None`` before BT52 was read.
    ``session`` counts the poller's sessions (connections), from 1.
    """

    meter: str
    session: int
    identity: MeterIdentity | None
    clock_offset: dt.timedelta | None
    now: Callable[[], dt.datetime]
    monotonic: Callable[[], float]
    gateway_time: Callable[[dt.datetime], dt.datetime]


class MeterJob(Protocol):
    """Work a poller does between polls, one bounded step at a time (see the module doc)."""

    @property
    def name(self) -> str:
        """A short stable name: ``"backfill"``, ``"events"``, ``"self-reads"``, ``"m-bus"``."""
        ...

    def wants_to_run(self, context: JobContext) -> bool:
        """Whether the job has a step to do now (cheap: no I/O)."""
        ...

    async def step(self, client: MeterClient, context: JobContext) -> None:
        """Do one step: at most one read of ``client.max_read`` bytes (or one procedure)."""
        ...

    def failed(self, error: BaseException, context: JobContext) -> None:
        """The last step failed with ``error`` (a noisy line, a refusal, an undecodable table,
        or a bug): note it, decide when to try again."""
        ...

    def status(self) -> JobStatus:
        """The job's state now."""
        ...


class StepTimes:
    """How long a job's steps take: the longest of the last :data:`STEPS_REMEMBERED`."""

    def __init__(self) -> None:
        self._recent: dict[str, list[float]] = {}

    def estimate(self, job: str) -> float:
        recent = self._recent.get(job)
        return max(recent) if recent else FIRST_STEP_ESTIMATE_S

    def add(self, job: str, seconds: float) -> None:
        recent = self._recent.setdefault(job, [])
        recent.append(seconds)
        del recent[:-STEPS_REMEMBERED]


def room_for_step(
    *,
    now: float,
    last_reading_at: float,
    poll_due: float,
    poll_interval: float,
    poll_estimate: float,
    step_estimate: float,
) -> bool:
    """Whether a job step of ``step_estimate`` seconds fits before the next poll.

    It fits when it ends before the poll is due, or when the poll it delays (``poll_estimate``
    seconds) still ends within ``max(poll_interval, MAX_LIVE_GAP_S)`` of the last reading
    (``last_reading_at``), less :data:`GAP_MARGIN_S`.  All times are the poller's monotonic clock.
    """
    if now + step_estimate <= poll_due:
        return True
    allowed = max(poll_interval, MAX_LIVE_GAP_S)
    return now + step_estimate + poll_estimate <= last_reading_at + allowed - GAP_MARGIN_S


def step_time_limit(
    *, now: float, last_reading_at: float, poll_interval: float, poll_estimate: float
) -> float:
    """How long a step let run at ``now`` may take, in seconds: until the poll it delays
    (``poll_estimate`` seconds) would end :data:`STEP_OVERRUN_S` past the allowed gap after the
    last reading (``last_reading_at``), but at least :data:`MIN_STEP_TIME_S`.  Times are the
    poller's monotonic clock."""
    allowed = max(poll_interval, MAX_LIVE_GAP_S) + STEP_OVERRUN_S
    return max(MIN_STEP_TIME_S, last_reading_at + allowed - poll_estimate - now)
