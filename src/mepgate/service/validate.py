"""Plausibility checks on a reading, beyond the digest: what a meter cannot physically show.

A digest proves the bytes are the meter's; it does not prove the meter (or a decoder after a
silent reconfiguration) made sense.  Users' worst complaint is glitches -- 1000 kWh spikes,
zeros, values from corrupted frames (FIELD-NOTES.md) -- so every reading passes these checks
before it is stored or published.  A reading that fails is counted by reason and dropped.

Pure: no clock, no I/O; :func:`validate` looks at the reading and the last accepted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from mepgate.reading import PHASES, TIER_ENERGY_FIELDS, TIER_REFRESH_S, Reading


class Rejection(StrEnum):
    """Why a reading was not stored (the value is the key in ``MeterStatus.rejection_reasons``)."""

    NOT_FINITE = "not-finite"
    NEGATIVE = "negative-value"
    TIME_NOT_ADVANCING = "time-not-advancing"
    ENERGY_DECREASED = "energy-decreased"
    ENERGY_JUMP = "energy-jump"
    VOLTAGE_RANGE = "voltage-out-of-range"
    CURRENT_RANGE = "current-out-of-range"
    FREQUENCY_RANGE = "frequency-out-of-range"
    POWER_FACTOR_RANGE = "power-factor-out-of-range"
    POWER_EXCEEDS_VI = "power-exceeds-voltage-times-current"
    PHASE_SUM = "phase-sum-mismatch"

    def describe(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Rejection.NOT_FINITE: "a value is not a finite number",
    Rejection.NEGATIVE: "an import, export, current or energy value is negative",
    Rejection.TIME_NOT_ADVANCING: "the reading is not newer than the previous one",
    Rejection.ENERGY_DECREASED: "an energy register went backwards",
    Rejection.ENERGY_JUMP: "an energy register rose faster than the meter's maximum power allows",
    Rejection.VOLTAGE_RANGE: "a phase voltage is outside 0-300 V",
    Rejection.CURRENT_RANGE: "a phase current is above what a direct-connected meter carries",
    Rejection.FREQUENCY_RANGE: "the frequency is outside 45-55 Hz",
    Rejection.POWER_FACTOR_RANGE: "a power factor is outside 0-1",
    Rejection.POWER_EXCEEDS_VI: "a phase's active power exceeds its voltage times its current",
    Rejection.PHASE_SUM: "the phases' net power does not add up to the total",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The physical bounds; the defaults suit direct-connected 230/400 V residential meters."""

    voltage_max_v: float = 300.0
    current_max_a: float = 200.0  # direct-connected meters are rated up to 100 A; margin for CTs
    frequency_min_hz: float = 45.0
    frequency_max_hz: float = 55.0
    # Active power may exceed V x I by this much: the meter samples the three quantities over
    # slightly different windows, and rounds each to whole units (W, mV, mA).
    power_vi_relative: float = 0.05
    power_vi_absolute_w: float = 20.0
    # Net power of the phases vs the total: the same rounding, three times, plus timing.
    phase_sum_relative: float = 0.05
    phase_sum_absolute_w: float = 30.0
    # An energy register may rise by at most max_power_w x elapsed time (x 1.5) plus a slack
    # of two register units at the coarsest ET55 unit (100 Wh): a 1000 kWh glitch never passes.
    energy_slack_wh: float = 200.0

    @property
    def max_power_w(self) -> float:
        return len(PHASES) * self.voltage_max_v * self.current_max_a


DEFAULT_LIMITS = Limits()
_ENERGY_FIELDS = ("forward_active_energy_wh", "reverse_active_energy_wh")
_NON_NEGATIVE = (
    *_ENERGY_FIELDS,
    *TIER_ENERGY_FIELDS,
    "active_power_import_w",
    "active_power_export_w",
    *(f"active_power_{d}_{p}_w" for d in ("import", "export") for p in PHASES),
    *(f"current_{p}_a" for p in PHASES),
)


def validate(
    reading: Reading, previous: Reading | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[Rejection, ...]:
    """Every reason ``reading`` is implausible (empty: it may be stored).

    ``previous`` is the meter's last *accepted* reading: energy registers (totals and tiers)
    never decrease and rise at most as fast as the meter's maximum power allows.  Values that
    are ``None`` (not recorded by this meter) are not checked.
    """
    values = reading.values()
    if any(isinstance(v, float) and not math.isfinite(v) for v in values.values()):
        return (Rejection.NOT_FINITE,)  # every comparison below would be meaningless
    found: list[Rejection] = []
    if any((values[name] or 0) < 0 for name in _NON_NEGATIVE):
        found.append(Rejection.NEGATIVE)
    if previous is not None:
        found += _against_previous(reading, previous, limits)
    found += _ranges(reading, limits)
    found += _consistency(reading, limits)
    return tuple(dict.fromkeys(found))


def _against_previous(reading: Reading, previous: Reading, limits: Limits) -> list[Rejection]:
    elapsed_s = (reading.at - previous.at).total_seconds()
    if elapsed_s <= 0:
        return [Rejection.TIME_NOT_ADVANCING]
    out: list[Rejection] = []
    # Tier registers are re-read only every TIER_REFRESH_S: between two readings they may show
    # what that long (not just the time between the readings) at full power adds.
    for names, seconds in (
        (_ENERGY_FIELDS, elapsed_s),
        (TIER_ENERGY_FIELDS, max(elapsed_s, TIER_REFRESH_S)),
    ):
        most_wh = 1.5 * limits.max_power_w * seconds / 3600 + limits.energy_slack_wh
        for name in names:
            now, before = getattr(reading, name), getattr(previous, name)
            if now is None or before is None:
                continue  # tiers not read (yet): nothing to compare
            rise = now - before
            if rise < 0:
                out.append(Rejection.ENERGY_DECREASED)
            elif rise > most_wh:
                out.append(Rejection.ENERGY_JUMP)
    return out


def _ranges(reading: Reading, limits: Limits) -> list[Rejection]:
    out: list[Rejection] = []
    for phase in PHASES:
        voltage = getattr(reading, f"voltage_{phase}_v")
        if voltage is not None and not 0 <= voltage <= limits.voltage_max_v:
            out.append(Rejection.VOLTAGE_RANGE)
        current = getattr(reading, f"current_{phase}_a")
        if current is not None and current > limits.current_max_a:
            out.append(Rejection.CURRENT_RANGE)
        factor = getattr(reading, f"power_factor_{phase}")
        if factor is not None and not 0 <= factor <= 1:
            out.append(Rejection.POWER_FACTOR_RANGE)
    frequency = reading.frequency_hz
    low, high = limits.frequency_min_hz, limits.frequency_max_hz
    if frequency is not None and not low <= frequency <= high:
        out.append(Rejection.FREQUENCY_RANGE)
    return out


def _consistency(reading: Reading, limits: Limits) -> list[Rejection]:
    out: list[Rejection] = []
    phase_net: list[float] = []
    for phase in PHASES:
        imported = getattr(reading, f"active_power_import_{phase}_w")
        exported = getattr(reading, f"active_power_export_{phase}_w")
        if imported is None or exported is None:
            continue
        phase_net.append(imported - exported)
        voltage = getattr(reading, f"voltage_{phase}_v")
        current = getattr(reading, f"current_{phase}_a")
        if voltage is None or current is None:
            continue
        apparent = voltage * current
        most = apparent * (1 + limits.power_vi_relative) + limits.power_vi_absolute_w
        if max(imported, exported) > most:
            out.append(Rejection.POWER_EXCEEDS_VI)
    total = reading.net_power_w
    if total is not None and len(phase_net) == len(PHASES):
        scale = sum(abs(p) for p in phase_net)
        tolerance = max(limits.phase_sum_absolute_w, limits.phase_sum_relative * scale)
        if abs(sum(phase_net) - total) > tolerance:
            out.append(Rejection.PHASE_SUM)
    return out
