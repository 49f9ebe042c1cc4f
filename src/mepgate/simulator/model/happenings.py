"""What a simulated meter lives through on a schedule: outages, tamper attempts, clock sets.

A schedule is a short spec (``simulate --events``), times in simulated seconds after the
simulator started::

    outage=S@T      the supply fails at T for S seconds: power down at T, power up at T + S
                    (BT74 events 1 and 2), the registers stand still, every load profile
                    interval that overlaps it carries the power-fail status flag
    tamper@T        a tamper attempt is logged at T (BT74 event 47)
    clock=D@T       the meter's clock is set by D seconds (+/-) at T (events 3 and 4, the
                    load profile's clock-changed flag)

Example: ``outage=300@600,tamper@900,clock=-30@1200``.  Tests schedule the same at absolute
simulated times (:meth:`Happenings.add`).  The ground truth is the model's: every event logged
(:attr:`~mepgate.simulator.model.events.EventLog.history`) and every outage's start and end
on the meter's clock (:attr:`Happenings.outages`).

Simplification: the simulated meter keeps answering on its ports during an outage (as if its
communication module had a battery); only its metering stops.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from mepgate.errors import LocalProtocolError

EVENTS_HELP = """\
Events schedule: comma-separated items, T in simulated seconds after start.
outage=S@T: the supply fails at T for S seconds (power down/up events, LP power-fail flag).
tamper@T: a tamper attempt is logged at T.
clock=D@T: the meter's clock is set by D seconds (+/-) at T."""

KINDS = ("outage", "tamper", "clock")


class EventSpecError(LocalProtocolError):
    """An ``--events`` string that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Happening:
    """One scheduled happening at ``at_s`` simulated seconds after start (or, once placed, at
    an absolute simulated time ``at``)."""

    kind: str
    at_s: float = 0.0
    value_s: float = 0.0  # outage duration, clock delta
    at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class OutageTruth:
    """An outage as the meter lived it: start and end on the meter's clock (UTC)."""

    start: dt.datetime
    end: dt.datetime | None


def parse_events(spec: str) -> tuple[Happening, ...]:
    """Parse ``outage=S@T,tamper@T,clock=D@T`` (see the module docstring)."""
    out: list[Happening] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        head, sep, when = item.partition("@")
        if not sep:
            raise EventSpecError(f"event {item!r}: say when with @T (seconds after start)")
        name, _, value = head.partition("=")
        try:
            at_s = float(when)
            number = float(value) if value else 0.0
        except ValueError:
            raise EventSpecError(
                f"event {item!r}: T and the value are numbers of seconds"
            ) from None
        if name not in KINDS:
            raise EventSpecError(f"event {item!r}: unknown kind {name!r} (one of {KINDS})")
        if at_s < 0 or (name == "outage" and number <= 0):
            raise EventSpecError(f"event {item!r}: times are >= 0, an outage lasts > 0 s")
        if name == "clock" and number == 0:
            raise EventSpecError(f"event {item!r}: a clock set needs a delta, e.g. clock=-30@T")
        out.append(Happening(name, at_s, number))
    return tuple(out)


class Happenings:
    """The schedule of one model, by simulated time (microseconds since the epoch)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # tests add from their thread, the simulator's runs
        self._due: list[tuple[int, Happening]] = []
        self.power_off_until_us: int | None = None
        self.outages: list[OutageTruth] = []

    def add(self, at_us: int, happening: Happening) -> None:
        with self._lock:
            self._due.append((at_us, happening))
            self._due.sort(key=lambda item: item[0])

    def next_us(self) -> int | None:
        """When the next happening (or the end of the outage in progress) is due."""
        with self._lock:
            times = [t for t, _ in self._due[:1]]
        if self.power_off_until_us is not None:
            times.append(self.power_off_until_us)
        return min(times) if times else None

    def pop_due(self, now_us: int) -> list[tuple[int, Happening]]:
        with self._lock:
            due = [item for item in self._due if item[0] <= now_us]
            self._due = self._due[len(due) :]
        return due

    @property
    def power_off(self) -> bool:
        return self.power_off_until_us is not None
