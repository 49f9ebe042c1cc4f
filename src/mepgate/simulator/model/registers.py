"""BT23's cumulative registers: energy integrated exactly from the piecewise-constant power.

Energy is kept in watt-microseconds (integers), so nothing is lost between steps and a
register reads ``floor(Wh)`` at every moment: the sub-Wh remainder stays in the accumulator.
Register names are the ones :data:`mepgate.tables.registers.SUMMATION_FIELDS` gives the
guide's summation numbers 0..18; a meter with fewer summations shows a prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mepgate.simulator.model.physics import Electrical
from mepgate.tables.registers import SUMMATION_FIELDS

WUS_PER_WH = 3_600 * 1_000_000
"""Watt-microseconds per watt-hour."""

#: Time-of-use schedule (local time): tier index from this hour on.  An assumption: a common
#: Nordic night / day / peak / evening split; BT55 reports the current tier (0-based).
TOU_SCHEDULE: tuple[tuple[int, int], ...] = ((0, 0), (6, 1), (17, 2), (21, 3))
TIER_COUNT = 4

_COUNTERS = frozenset(
    {
        "power_outage_duration_s",
        "power_outage_count",
        "pulse_input_1_count",
        "pulse_input_2_count",
        "error_count",
    }
)


def tier_at(local_seconds_of_day: int) -> int:
    """The tier (0-based) in force at a local time of day."""
    hour = local_seconds_of_day // 3600
    tier = 0
    for start_hour, schedule_tier in TOU_SCHEDULE:
        if hour >= start_hour:
            tier = schedule_tier
    return tier


@dataclass(slots=True)
class EnergyBlock:
    """One BT23 data block's energy accumulators (W*us, var*us, VA*us)."""

    forward_active_wus: int = 0
    reverse_active_wus: int = 0
    import_reactive_varus: int = 0
    export_reactive_varus: int = 0
    quadrant_reactive_varus: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    quadrant_apparent_vaus: list[int] = field(default_factory=lambda: [0, 0, 0, 0])

    def integrate(self, values: Electrical, duration_us: int) -> None:
        reactive = values.reactive_power_var
        self.forward_active_wus += values.forward_active_power_w * duration_us
        self.reverse_active_wus += values.reverse_active_power_w * duration_us
        self.import_reactive_varus += max(reactive, 0) * duration_us
        self.export_reactive_varus += max(-reactive, 0) * duration_us
        q = values.quadrant - 1
        self.quadrant_reactive_varus[q] += abs(reactive) * duration_us
        self.quadrant_apparent_vaus[q] += values.apparent_power_va * duration_us

    def energies_wh(self) -> dict[str, int]:
        """Whole Wh / varh / VAh per summation name (floored; remainders stay inside)."""
        forward = self.forward_active_wus // WUS_PER_WH
        reverse = self.reverse_active_wus // WUS_PER_WH
        named = {
            "forward_active_energy_wh": forward,
            "reverse_active_energy_wh": reverse,
            "import_reactive_energy_varh": self.import_reactive_varus // WUS_PER_WH,
            "export_reactive_energy_varh": self.export_reactive_varus // WUS_PER_WH,
            "forward_plus_reverse_active_energy_wh": forward + reverse,
            "forward_minus_reverse_active_energy_wh": forward - reverse,
        }
        for i, q in enumerate(("q1", "q2", "q3", "q4")):
            named[f"{q}_reactive_energy_varh"] = self.quadrant_reactive_varus[i] // WUS_PER_WH
            named[f"{q}_apparent_energy_vah"] = self.quadrant_apparent_vaus[i] // WUS_PER_WH
        return named

    def preset_wh(self, name: str, wh: int) -> None:
        """A register written by the MAK (BT23 is MAK-writable): the remainder restarts."""
        attribute = _PRESETTABLE.get(name)
        if attribute is not None:
            setattr(self, attribute, wh * WUS_PER_WH)


_PRESETTABLE = {
    "forward_active_energy_wh": "forward_active_wus",
    "reverse_active_energy_wh": "reverse_active_wus",
    "import_reactive_energy_varh": "import_reactive_varus",
    "export_reactive_energy_varh": "export_reactive_varus",
}


@dataclass(slots=True)
class CumulativeRegisters:
    """The total block, one block per tier, and the meter's event counters."""

    total: EnergyBlock = field(default_factory=EnergyBlock)
    tiers: list[EnergyBlock] = field(
        default_factory=lambda: [EnergyBlock() for _ in range(TIER_COUNT)]
    )
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))

    def integrate(self, values: Electrical, duration_us: int, tier: int) -> None:
        self.total.integrate(values, duration_us)
        self.tiers[tier].integrate(values, duration_us)

    def summations(
        self, count: int, *, tier: int | None = None, energy_register_unit: int = 1
    ) -> tuple[int, ...]:
        """BT23 summations 0..count-1 of the total block (``tier=None``) or one tier block.

        Energies are counted in ET55 "Energy Register Unit" (1, 10 or 100 Wh per count).
        Tier blocks carry energies only; the event counters are meter-wide (0 in tiers).
        """
        block = self.total if tier is None else self.tiers[tier]
        named = {k: v // energy_register_unit for k, v in block.energies_wh().items()}
        if tier is None:
            named.update(self.counters)
        return tuple(named.get(name, 0) for name in SUMMATION_FIELDS[:count])

    def continue_from(
        self, name: str, total_wh: int, tiers_wh: Sequence[int | None], *, tier: int
    ) -> None:
        """Raise energy register ``name`` to at least a previous meter's values, tiers included
        (as a MAK write to BT23 sets a replacement meter's registers).

        Each tier rises to its stored value, the total to its own, and the total stays the sum
        of the tiers, as a meter's does: whatever the total holds beyond the tiers goes to
        ``tier``, the tier in force.  A register never goes down.  ``tiers_wh`` lists tier 0
        first; ``None`` is a tier not stored.
        """
        now = [block.energies_wh()[name] for block in self.tiers]
        tiers = [max(wh, stored or 0) for wh, stored in zip(now, tiers_wh, strict=False)]
        tiers += now[len(tiers) :]
        total = max(self.total.energies_wh()[name], total_wh, sum(tiers))
        tiers[tier] += total - sum(tiers)
        # Every register set, unchanged ones too: their sub-Wh remainders restart together, so
        # the total stays exactly the sum of the tiers as both integrate on.
        for index, wh in enumerate(tiers):
            self.preset(name, wh, tier=index)
        self.preset(name, total)

    def preset(self, name: str, value: int, *, tier: int | None = None) -> None:
        """Set one register (a MAK write to BT23); energies in Wh."""
        if name in self.counters and tier is None:
            self.counters[name] = value
        else:
            (self.total if tier is None else self.tiers[tier]).preset_wh(name, value)
