"""A reading: one validated snapshot of a meter's values, the currency of the gateway.

The poller makes readings from decoded tables; the store keeps them; the web pages, the
API, MQTT and Prometheus publish them.  Units are SI and named in every field; a value the
meter does not provide (older firmware, single-phase meters) is ``None``, never zero.

Time-of-use tiers are numbered from 1, as the meter's display shows them and as
``current_tier`` counts: tier 1 is BT55's tier 0 and BT23's first tier data block.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

PHASES = ("l1", "l2", "l3")
TIERS = (1, 2, 3, 4)
"""The TOU tiers a reading carries (both meter generations have 4: ``tables.profiles``); a meter
with fewer leaves the others ``None``."""
TIER_REFRESH_S = 60.0
"""Seconds between reads of the tier registers.  Between reads a reading carries the last values
read: only one tier counts at a time and the registers feed energy messages (sent each minute),
so re-reading four BT23 ranges every second would slow the live values for nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    meter: str
    at: dt.datetime  # the gateway's clock (UTC): a meter's clock may be years off
    # Energy registers (BT23), watt-hours.
    forward_active_energy_wh: float
    reverse_active_energy_wh: float
    # The same registers per TOU tier (BT23 tier blocks), watt-hours; see TIER_REFRESH_S.
    forward_active_energy_tier1_wh: float | None = None
    forward_active_energy_tier2_wh: float | None = None
    forward_active_energy_tier3_wh: float | None = None
    forward_active_energy_tier4_wh: float | None = None
    reverse_active_energy_tier1_wh: float | None = None
    reverse_active_energy_tier2_wh: float | None = None
    reverse_active_energy_tier3_wh: float | None = None
    reverse_active_energy_tier4_wh: float | None = None
    # Instantaneous values (BT28).  Import and export are both >= 0.
    active_power_import_w: float | None = None
    active_power_export_w: float | None = None
    active_power_import_l1_w: float | None = None
    active_power_import_l2_w: float | None = None
    active_power_import_l3_w: float | None = None
    active_power_export_l1_w: float | None = None
    active_power_export_l2_w: float | None = None
    active_power_export_l3_w: float | None = None
    voltage_l1_v: float | None = None
    voltage_l2_v: float | None = None
    voltage_l3_v: float | None = None
    current_l1_a: float | None = None
    current_l2_a: float | None = None
    current_l3_a: float | None = None
    power_factor_l1: float | None = None
    power_factor_l2: float | None = None
    power_factor_l3: float | None = None
    frequency_hz: float | None = None
    # Signed, + inductive: BT28's import minus export reactive power (merge_reactive_power).
    reactive_power_var: float | None = None
    current_tier: int | None = None

    @property
    def net_power_w(self) -> float | None:
        """Import minus export (:func:`net_power`): positive while the house draws from the
        grid."""
        return net_power(self.active_power_import_w, self.active_power_export_w)

    def phase_net_power_w(self, phase: str) -> float | None:
        """:func:`net_power` of one phase (``"l1"``.. of :data:`PHASES`)."""
        return net_power(
            getattr(self, f"active_power_import_{phase}_w"),
            getattr(self, f"active_power_export_{phase}_w"),
        )

    def net_powers(self) -> dict[str, float | None]:
        """The total and per-phase net powers by name (:data:`NET_POWER_FIELDS`)."""
        return {
            "net_power_w": self.net_power_w,
            **{f"net_power_{phase}_w": self.phase_net_power_w(phase) for phase in PHASES},
        }

    @property
    def reactive_power_import_var(self) -> float | None:
        """The import (inductive) part of ``reactive_power_var``: >= 0, as BT28 shows it."""
        reactive = self.reactive_power_var
        return None if reactive is None else max(reactive, 0.0)

    @property
    def reactive_power_export_var(self) -> float | None:
        """The export (capacitive) part of ``reactive_power_var``: >= 0, as BT28 shows it."""
        reactive = self.reactive_power_var
        return None if reactive is None else max(-reactive, 0.0)

    def values(self) -> dict[str, float | int | None]:
        """Every numeric field by name (for storage and publishing)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("meter", "at")
        }


VALUE_FIELDS = tuple(f.name for f in fields(Reading) if f.name not in ("meter", "at"))
NET_POWER_FIELDS = ("net_power_w", *(f"net_power_{phase}_w" for phase in PHASES))
"""The names of :meth:`Reading.net_powers`: derived, never stored (the store keeps import and
export, which the net follows from)."""
ACTIVE_POWER_FIELDS = (
    "active_power_import_w",
    "active_power_export_w",
    *(f"active_power_import_{phase}_w" for phase in PHASES),
    *(f"active_power_export_{phase}_w" for phase in PHASES),
)
"""The import and export active powers, total then per phase (W, each >= 0)."""


def net_power(imported: float | None, exported: float | None) -> float | None:
    """Import minus export (W), signed: + while the house draws from the grid, - while it
    feeds in.  ``None`` unless both are known: a side the meter does not report is unknown, not
    zero (an export taken as 0 would show a feeding-in house as drawing)."""
    if imported is None or exported is None:
        return None
    return imported - exported


def merge_reactive_power(imported_var: float | None, exported_var: float | None) -> float | None:
    """BT28's import and export reactive power (each >= 0) as the signed
    ``Reading.reactive_power_var``: import minus export, + inductive.  ``None`` without an
    import value; an export value alone is not enough.  :attr:`Reading.reactive_power_import_var`
    and :attr:`Reading.reactive_power_export_var` split it again."""
    if imported_var is None:
        return None
    return float(imported_var) - (exported_var or 0.0)


def tier_energy_field(direction: str, tier: int) -> str:
    """The field of tier ``tier`` (1-based) of ``direction`` ("forward" imported, "reverse"
    exported active energy): ``forward_active_energy_tier1_wh``..."""
    return f"{direction}_active_energy_tier{tier}_wh"


TIER_ENERGY_FIELDS: tuple[str, ...] = tuple(
    tier_energy_field(direction, tier) for direction in ("forward", "reverse") for tier in TIERS
)
