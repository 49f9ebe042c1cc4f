"""Letting simulated time pass at once while no gateway is running.

A test that needs days to pass while the gateway is stopped need not wait for them: the meter's
clock (and, when the gateway runs on a sped clock, the gateway's too, by the same amount) jumps
forward.  The meter's model integrates every step of the skipped time as it would have had the
days passed one by one (:meth:`MeterModel.advance` steps 10 simulated seconds at a time whatever
the distance), so its registers, load profile and self-reads are those of a meter that lived
through them; the gateway sees what it would see after a stop of that length.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from mepgate.service.clock import system_now
from mepgate.simulator.meter import SimulatedMeter
from mepgate.simulator.serve import RunningSimulator


class JumpingRealClock:
    """The computer's clock plus the real seconds jumped so far: the ``real`` of a
    :class:`~mepgate.service.clock.SpedClock` whose time line can skip forward."""

    def __init__(self) -> None:
        self.skipped = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return system_now() + self.skipped


def jump_meter(sim: RunningSimulator, meter: SimulatedMeter, real_s: float) -> None:
    """Move ``meter``'s clock on by what ``real_s`` front-end seconds would bring at its speed,
    and bring its model there (on the simulator's thread; no client should be connected)."""

    def jump() -> None:
        meter.clock = dataclasses.replace(meter.clock, origin=meter.clock.origin - real_s)
        meter.advance(time.monotonic())

    sim.call(jump)


def jump_both(
    sim: RunningSimulator, meter: SimulatedMeter, real: JumpingRealClock, real_s: float
) -> None:
    """Jump the meter's clock and the gateway's sped clock (whose ``real`` is ``real``) by the
    same ``real_s`` seconds: the meter's clock minus the gateway's stays what it was."""
    jump_meter(sim, meter, real_s)
    real.skipped += dt.timedelta(seconds=real_s)
