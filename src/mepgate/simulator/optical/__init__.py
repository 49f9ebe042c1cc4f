"""The simulated meter's optical port (ANSI C12.18): the same meter, a second protocol.

* :mod:`.access` -- the keys (MK, PK, RK), the open tables and the hardware lock;
* :mod:`.server` -- :class:`OpticalServer`, the sans-IO C12.18 server;
* :func:`optical_server` -- an :class:`OpticalServer` over a :class:`SimulatedMeter`'s tables.
"""

from __future__ import annotations

from collections.abc import Mapping

from mepgate.simulator.meter import DEFAULT_MK, DEFAULT_PK, DEFAULT_RK, SimulatedMeter
from mepgate.simulator.model.meter_model import MeterModel
from mepgate.simulator.model.optical_port import OpticalSettings
from mepgate.simulator.optical.access import HardwareLock, OpticalAccess, OpticalKey
from mepgate.simulator.optical.server import OpticalServer, Transmit, TransmitKind

DEFAULT_OPTICAL_KEYS: Mapping[OpticalKey, bytes] = {
    OpticalKey.MK: DEFAULT_MK,
    OpticalKey.PK: DEFAULT_PK,
    OpticalKey.RK: DEFAULT_RK,
}
"""The simulator's demo keys (20 characters each, as grid companies hand them out)."""

__all__ = [
    "DEFAULT_OPTICAL_KEYS",
    "HardwareLock",
    "OpticalAccess",
    "OpticalKey",
    "OpticalServer",
    "OpticalSettings",
    "Transmit",
    "TransmitKind",
    "optical_server",
]


def optical_server(
    meter: SimulatedMeter,
    *,
    keys: Mapping[OpticalKey, bytes] | None = None,
    access: OpticalAccess | None = None,
    settings: OpticalSettings | None = None,
) -> OpticalServer:
    """The optical port of ``meter``: its tables, its procedure sequence memory, its speed.

    The port's timers and lockout come from the meter model's tables (ET51/ET55) when it is a
    :class:`MeterModel`; other stores use ``settings`` (default: as shipped, timers off).
    """
    model = meter.model
    fixed = settings if settings is not None else OpticalSettings()
    return OpticalServer(
        store=model,
        keys=keys if keys is not None else DEFAULT_OPTICAL_KEYS,
        procedures=meter.core.procedures,
        settings=model.optical_settings if isinstance(model, MeterModel) else lambda: fixed,
        access=access,
        speed=meter.clock.speed,
    )
