"""The gateway's wall clock: the computer's, or -- for demos, tests and benchmarks -- one that
runs ``speed`` times faster from a fixed ``epoch``.

A sped clock reads ``epoch + (real now - epoch) * speed``: a gateway restarted with the same
speed and epoch continues on the same time line, and a simulated meter started with the same
two (``mepgate simulate --speed S --speed-epoch E``) keeps the same time, so that the meter's
clock minus the gateway's stays constant while days pass in minutes.  Readings, the store's
"now" (retention, energy totals) and the web pages' "now" all read this one clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], dt.datetime]


def system_now() -> dt.datetime:
    """This computer's clock, UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class SpedClock:
    """``epoch + (real now - epoch) * speed`` (UTC); ``real`` is the computer's clock."""

    speed: float
    epoch: dt.datetime
    real: Clock = system_now

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive (1 = real time), got {self.speed}")
        if self.epoch.tzinfo is None:
            raise ValueError("the speed epoch needs a time zone (e.g. 2026-01-01T00:00:00Z)")

    def __call__(self) -> dt.datetime:
        return self.epoch + (self.real() - self.epoch) * self.speed


def clock_for(speed: float, epoch: dt.datetime | None) -> Clock:
    """The computer's clock at speed 1 without an epoch; a :class:`SpedClock` otherwise (the
    epoch defaulting to now, for a run that is not continued)."""
    if speed == 1 and epoch is None:
        return system_now
    return SpedClock(speed, epoch or system_now())


def parse_epoch(text: str) -> dt.datetime:
    """An ISO 8601 time for ``--speed-epoch`` (UTC when it names no zone)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--speed-epoch {text!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
