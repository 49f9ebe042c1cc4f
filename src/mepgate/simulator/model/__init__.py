"""The meter model behind the simulator: evolving, self-consistent tables for three profiles.

Build a whole simulated meter with :func:`build_meter`; compare what a client decoded with
:func:`ground_truth`.

* :mod:`.physics` -- the installation: per-phase load, solar export, voltage, frequency
* :mod:`.registers` -- BT23 energy integration and the TOU tiers
* :mod:`.present` -- BT28 present values and demands
* :mod:`.load_profile` (BT61..BT64), :mod:`.events` (BT74), :mod:`.self_reads` (BT26),
  :mod:`.mep_port` (ET13..ET16, ET50, alerts, EP39), :mod:`.mbus` (the M-Bus sub-meters behind
  ET14/ET16), :mod:`.nameplate` (BT00, BT01, BT03, BT22, ET03, ET04, ET55)
* :mod:`.profiles` -- ``gen4-3phase``, ``gen3-3phase``, ``gen3-1phase``
* :mod:`.meter_model` -- :class:`MeterModel`, the ``ModelStore`` tying it together
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping

from mepgate.errors import LocalProtocolError
from mepgate.proto import AccessLevel
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, SimClock, SimulatedMeter
from mepgate.simulator.model.load_profile import LoadProfileShape
from mepgate.simulator.model.mbus import MBusTruth
from mepgate.simulator.model.mep_port import AlertFlags
from mepgate.simulator.model.meter_model import DEFAULT_MBUS, MeterModel
from mepgate.simulator.model.profiles import SIM_PROFILES, UnknownProfileError, sim_profile
from mepgate.simulator.model.self_reads import DEFAULT_SCHEDULE, SCHEDULES, SelfReadTruth
from mepgate.simulator.model.snapshot import GroundTruth

__all__ = [
    "SIM_PROFILES",
    "AlertFlags",
    "GroundTruth",
    "LoadProfileShape",
    "MBusTruth",
    "MeterModel",
    "SelfReadTruth",
    "UnknownProfileError",
    "build_meter",
    "ground_truth",
    "model_of",
]

_SEQUENCE_RANGE = 1 << 31


def build_meter(
    profile: str,
    *,
    seed: int,
    start: dt.datetime,
    speed: float = 1.0,
    origin: float = 0.0,
    keys: Mapping[AccessLevel, bytes] | None = None,
    tls_required: bool = False,
    scheduled_read_interval_min: int | None = None,
    mbus: tuple[str, ...] | None = None,
    mbus_stops: dict[int, float] | None = None,
    mbus_et16_compat: bool = True,
    self_read: str = DEFAULT_SCHEDULE,
    load_profile: LoadProfileShape | None = None,
) -> SimulatedMeter:
    """A simulated meter of ``profile`` whose simulated clock reads ``start`` at front-end
    time ``origin`` and runs ``speed`` times faster than the front end's clock.

    ``seed`` fixes everything random: the installation, the noise, the serial number and the
    initial sequence number.  ``keys`` default to :data:`DEFAULT_MBK` / :data:`DEFAULT_MAK`.
    ``scheduled_read_interval_min`` raises ET13's scheduled read request alert every that many
    simulated minutes (off by default).  ``mbus`` names the M-Bus sub-meters in slots 1..4
    (``("gas", "water")``; default one water meter; ``()`` none); ``mbus_stops`` maps a slot to
    the simulated seconds after ``start`` when that device stops answering;
    ``mbus_et16_compat=False`` keeps ET16 at each device's first read (later reads go to ET45
    only, as the guide's compatibility setting allows).  ``self_read``: when the meter takes
    its billing self-reads (BT26): ``"monthly"`` (the 1st, 00:00 local), ``"daily"`` (00:00
    local) or ``"off"`` (a meter without BT26).  ``load_profile`` configures the load profile
    (interval, depth, history before ``start``, or none: :class:`LoadProfileShape`).
    """
    if speed <= 0:
        raise LocalProtocolError(f"speed must be positive (1.0 = real time), got {speed}")
    if scheduled_read_interval_min is not None and scheduled_read_interval_min <= 0:
        raise LocalProtocolError(
            "scheduled_read_interval_min must be a positive number of minutes, or None for off; "
            f"got {scheduled_read_interval_min}"
        )
    if self_read not in SCHEDULES:
        raise LocalProtocolError(
            f"self_read must be one of {', '.join(SCHEDULES)}; got {self_read!r}"
        )
    model = MeterModel(
        sim_profile(profile),
        seed=seed,
        start=start,
        scheduled_read_interval_min=scheduled_read_interval_min,
        mbus=DEFAULT_MBUS if mbus is None else mbus,
        mbus_stops=mbus_stops,
        mbus_et16_compat=mbus_et16_compat,
        self_read=self_read,
        load_profile=load_profile,
    )
    return SimulatedMeter(
        model=model,
        clock=SimClock(origin=origin, start=start, speed=speed),
        keys=keys
        if keys is not None
        else {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK},
        sequence=random.Random(f"{seed}:sequence").randrange(_SEQUENCE_RANGE),
        tls_required=tls_required,
    )


def model_of(meter: SimulatedMeter) -> MeterModel:
    """The :class:`MeterModel` of a meter built by :func:`build_meter`."""
    if not isinstance(meter.model, MeterModel):
        raise LocalProtocolError(
            f"this meter runs a {type(meter.model).__name__}, not a MeterModel: build it with "
            "mepgate.simulator.model.build_meter to get ground truth"
        )
    return meter.model


def ground_truth(meter: SimulatedMeter, now: float) -> GroundTruth:
    """What the meter really measures at front-end time ``now`` (advances the model)."""
    model = model_of(meter)
    model.advance(meter.clock.at(now))
    return model.snapshot()
