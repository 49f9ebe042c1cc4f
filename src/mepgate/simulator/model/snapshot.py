"""Ground truth: what the simulated meter *really* measures, for tests to compare decoded values
with.  Units are in the names; energies are given both as the register shows them (whole Wh,
floored) and exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mepgate.simulator.model.mbus import MBusTruth
from mepgate.simulator.model.mep_port import AlertFlags
from mepgate.simulator.model.physics import Electrical, PhaseValues
from mepgate.simulator.model.self_reads import SelfReadTruth


@dataclass(frozen=True, kw_only=True, slots=True)
class GroundTruth:
    """The model's state at ``simulated_time`` (the last time it was advanced to)."""

    simulated_time: dt.datetime  # UTC, the SimClock's view
    meter_clock: dt.datetime  # UTC, what BT52 shows (differs after EP16)
    electrical: Electrical
    current_tier: int  # 0-based, as BT55
    forward_active_energy_wh: int
    reverse_active_energy_wh: int
    forward_active_energy_exact_wh: float
    reverse_active_energy_exact_wh: float
    tier_forward_active_energy_wh: tuple[int, ...]
    tier_reverse_active_energy_wh: tuple[int, ...]
    power_outage_count: int
    power_outage_duration_s: int
    idt_version: int
    number_of_present_values: int
    alerts: AlertFlags  # a copy, taken with the snapshot
    water_volume_l: int  # the (first) water sub-meter's last read, litres; 0 without one
    mep_baud_rate_bps: int
    load_profile_intervals: int
    mbus: tuple[MBusTruth, ...] = ()  # the M-Bus sub-meters, by slot
    self_reads: tuple[SelfReadTruth, ...] = ()  # every self-read taken (BT26), oldest first

    @property
    def phases(self) -> tuple[PhaseValues, ...]:
        return self.electrical.phases

    @property
    def active_power_w(self) -> int:
        """Signed total (+ import, - export); BT28 shows it as forward / reverse."""
        return self.electrical.active_power_w

    @property
    def frequency_mhz(self) -> int:
        return self.electrical.frequency_mhz
