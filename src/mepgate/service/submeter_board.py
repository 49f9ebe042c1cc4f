"""The M-Bus sub-meters' latest state, for the API, the pages, MQTT and Prometheus.

The sub-meter job (:mod:`mepgate.service.submeters`) writes it; the outputs read it and may
listen for changes.  A sub-meter is *available* while the meter says the device answers its
reads and the gateway has heard so within :data:`STALE_AFTER` -- a device that stopped
answering, or a meter that cannot be reached, leaves its last value shown as unavailable,
never as zero.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

log = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(minutes=5)
"""A sub-meter whose status the gateway has not confirmed for this long is unavailable (the
job checks ET14 every minute)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmeterState:
    """One sub-meter as the gateway knows it.

    ``value`` is in ``unit`` (``"m³"``, ``"kWh"``, ``"kg"``); ``at`` when the gateway read it
    from the meter; ``meter_read_at`` when the meter read the device (its own clock, local
    time as the meter keeps it).  ``checked_at``: the newest ET14 status that said the device
    answers.  ``reason``: why it is not available, in words.
    """

    meter: str
    slot: int  # 1..4 as the MEP guide numbers them
    identification: str
    manufacturer: str
    medium: str  # "gas", "water", "heat", "electricity", "other"
    medium_code: int
    medium_name: str
    unit: str
    value: float | None = None
    at: dt.datetime | None = None
    meter_read_at: dt.datetime | None = None
    answering: bool = False
    checked_at: dt.datetime | None = None
    reason: str | None = "not read yet"
    rejected: int = 0

    def available(self, now: dt.datetime) -> bool:
        return (
            self.answering
            and self.value is not None
            and self.checked_at is not None
            and now - self.checked_at <= STALE_AFTER
        )

    def why_unavailable(self, now: dt.datetime) -> str | None:
        if self.available(now):
            return None
        if self.answering and self.value is not None:
            return "no fresh status from the meter (is it reachable?)"
        return self.reason or "unknown"

    @property
    def key(self) -> str:
        """``"<meter>-mbus<slot>"``: stable per slot, for topics and metric labels."""
        return f"{self.meter}-mbus{self.slot}"


class SubmeterBoard:
    """The latest :class:`SubmeterState` per (meter, slot), and who wants to hear of changes."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, int], SubmeterState] = {}
        self._listeners: list[Callable[[], None]] = []

    def update(self, state: SubmeterState) -> None:
        key = (state.meter, state.slot)
        if self._states.get(key) == state:
            return
        self._states[key] = state
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener's bug must not stop the job
                log.exception("a sub-meter listener failed")

    def change(self, meter: str, slot: int, **changes: object) -> SubmeterState | None:
        """Update some fields of a known sub-meter (``None``: unknown)."""
        known = self._states.get((meter, slot))
        if known is None:
            return None
        new = replace(known, **changes)  # type: ignore[arg-type]
        self.update(new)
        return new

    def get(self, meter: str, slot: int) -> SubmeterState | None:
        return self._states.get((meter, slot))

    def states(self, meter: str | None = None) -> list[SubmeterState]:
        return sorted(
            (s for s in self._states.values() if meter is None or s.meter == meter),
            key=lambda s: (s.meter, s.slot),
        )

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after each change; returns the function that stops it."""
        self._listeners.append(callback)

        def stop() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return stop
