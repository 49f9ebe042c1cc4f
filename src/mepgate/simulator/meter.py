"""A whole simulated meter: the request handler, the model behind its tables, simulated time.

This is the one object the front ends (pty, TCP, in-process) talk to.  It reads no clock of
its own: every call passes ``now``, the front end's monotonic time in seconds, and the meter
maps it to simulated time (``speed`` times faster, from ``start``).

The front end owns the wire: byte timing, segmentation, alerts' pacing and fault injection.
The meter owns meaning: replies, alert conditions, reboots and reconfigurations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from mepgate.proto import AccessLevel
from mepgate.proto.sequence import RECONFIGURATION_STEP
from mepgate.simulator.core import MeterCore, TableStore

DEFAULT_MBK = b"MEPGATE-DEMO-MBK0000"
"""The simulator's default MBK (20 characters, as grid companies hand them out)."""
DEFAULT_MAK = b"MEPGATE-DEMO-MAK0000"
"""The simulator's default MAK."""
DEFAULT_MK = b"MEPGATE-DEMO-MK00000"
"""The simulator's default optical Unique Key (MK, 20 characters)."""
DEFAULT_PK = b"MEPGATE-DEMO-PK00000"
"""The simulator's default optical Provisioning Key (PK)."""
DEFAULT_RK = b"MEPGATE-DEMO-RK00000"
"""The simulator's default optical Read-only Key (RK)."""


@dataclass(frozen=True, slots=True)
class SimClock:
    """Maps the front end's monotonic seconds to simulated wall-clock time."""

    origin: float  # front-end monotonic time at which simulated time is ``start``
    start: dt.datetime
    speed: float = 1.0

    def at(self, now: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(now - self.origin) * self.speed)

    def elapsed(self, now: float) -> float:
        """Simulated seconds since ``start``."""
        return (now - self.origin) * self.speed


class ModelStore(TableStore, Protocol):
    """What a meter model adds to a table store: time, and the events a meter lives through."""

    def advance(self, when: dt.datetime) -> None:
        """Bring every value up to simulated time ``when`` (never backwards)."""

    def alert_pending(self) -> bool:
        """Whether an ET13 alert condition is pending (the meter then sends ``00 00``)."""

    def reboot(self, when: dt.datetime) -> None:
        """A power cycle: outage counters advance, an event is logged."""

    def reconfigure(self) -> None:
        """Re-dimension a table and bump ET04's IDT version ("Dynamic Sizing of Tables")."""


class SimulatedMeter:
    """A meter: keys, a sequence counter, a model, and simulated time."""

    def __init__(
        self,
        *,
        model: ModelStore,
        clock: SimClock,
        keys: Mapping[AccessLevel, bytes],
        sequence: int,
        tls_required: bool = False,
    ) -> None:
        self.model = model
        self.clock = clock
        self.core = MeterCore(keys=keys, store=model, sequence=sequence, tls_required=tls_required)

    def handle(self, wire: bytes, now: float) -> bytes:
        """The reply frame to one whole request frame received at ``now``."""
        self.model.advance(self.clock.at(now))
        return self.core.handle(wire)

    def advance(self, now: float) -> None:
        """Bring the model to front-end time ``now`` (before another port reads it)."""
        self.model.advance(self.clock.at(now))

    def alert_pending(self, now: float) -> bool:
        self.model.advance(self.clock.at(now))
        return self.model.alert_pending()

    def reboot(self, now: float, sequence: int) -> None:
        """Power cycle: the sequence counter restarts at ``sequence`` (pass a seeded random)."""
        self.model.reboot(self.clock.at(now))
        self.core.reset_sequence(sequence)

    def reconfigure(self) -> None:
        self.model.reconfigure()
        self.core.advance_sequence(RECONFIGURATION_STEP)
