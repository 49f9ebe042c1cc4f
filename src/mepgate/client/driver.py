"""The async half of a sans-IO link machine: it moves bytes and keeps time, nothing else.

A protocol's decisions (what to send, how long to wait, when to resend, when to give up) live
in a machine that reads no clock and touches no port (:mod:`mepgate.client.mep.machine` for
MEP; the optical port's C12.18 session will be the second).  The machine says what it needs
next as an *action*; :func:`drive` performs it on a :class:`~mepgate.transport.Link` and
reports what happened as an *event* (a method call carrying the time it happened)::

    Transmit(data, not_before)  ->  machine.sent(at)
    Receive(until)              ->  machine.received(data, at) | machine.timed_out(at)
    Finished(result)            ->  drive() returns result
    Failed(error)               ->  drive() raises error
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from mepgate.errors import MepgateError
from mepgate.transport import Link

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Trace = Callable[[str, bytes], None]
Clock = Callable[[], float]

IDLE_POLL = 0.001
"""How long a ``Receive(until=None)`` looks for bytes that already arrived (a zero wait would
not read at all)."""


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


async def drive(
    machine: Machine[R], link: Link, *, clock: Clock | None = None, trace: Trace | None = None
) -> R:
    """Run ``machine`` on ``link`` until it finishes (its result) or fails (its error)."""
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
                if trace is not None:
                    trace("<<", data)
                machine.received(data, now())
            else:
                machine.timed_out(now())
        elif isinstance(action, Finished):
            return action.result
        else:
            raise action.error
