"""What a sans-IO link machine asks for (actions) and how it is told what happened (events).

A protocol's decisions -- what to send, how long to wait, when to resend, when to give up --
live in a machine that reads no clock and touches no port (:mod:`mepgate.client.mep.machine`
for MEP; the optical port's C12.18 session will be the second).  The machine says what it
needs next as an action; :func:`mepgate.client.driver.drive` performs it and reports what
happened as an event, a method call carrying the time it happened::

    Transmit(data, not_before)  ->  machine.sent(at)
    Receive(until)              ->  machine.received(data, at) | machine.timed_out(at)
    Finished(result)            ->  drive() returns result
    Failed(error)               ->  drive() raises error
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from mepgate.errors import MepgateError

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Transmit:
    """Write ``data``, not before the time ``not_before`` (the link's pacing)."""

    data: bytes
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class Receive:
    """Read until ``until``; ``None``: only what has already arrived."""

    until: float | None


@dataclass(frozen=True, slots=True)
class Finished(Generic[R]):
    """The machine is done; ``result`` is its outcome."""

    result: R


@dataclass(frozen=True, slots=True)
class Failed:
    """The machine gave up; ``error`` says why (and what to do)."""

    error: MepgateError


Action = Transmit | Receive | Finished[R] | Failed


class Machine(Protocol[R]):
    """A sans-IO link machine: actions out, events in (times are the driver's clock)."""

    def next_action(self) -> Transmit | Receive | Finished[R] | Failed: ...

    def sent(self, at: float) -> None: ...

    def received(self, data: bytes, at: float) -> None: ...

    def timed_out(self, at: float) -> None: ...
