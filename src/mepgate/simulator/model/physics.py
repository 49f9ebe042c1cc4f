"""The simulated installation: per-phase load, a solar inverter, the grid's voltage and frequency.

Everything is a pure function of the seed and the simulated time step, so two meters built
with the same seed show the same values no matter how often, or when, a client asks.  Values
are constant within one step of :data:`STEP_S` simulated seconds; the energy registers
integrate exactly that piecewise-constant power (:mod:`.registers`), so a client that samples
BT28 once per step can reproduce BT23 to the watt-hour.

Signs follow the meter's view: positive active power is imported (forward), negative is
exported (reverse); reactive power is positive when inductive (Q1/Q2).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

STEP_S = 10
"""Simulated seconds per step of constant electrical values."""
STEP_US = STEP_S * 1_000_000

NOMINAL_VOLTAGE_V = 230.0
NOMINAL_FREQUENCY_HZ = 50.0
MAX_FREQUENCY_DEVIATION_HZ = 0.05
MAX_VOLTAGE_DEVIATION = 0.04  # +-4 % (EN 50160 allows 10 %; a healthy feeder stays closer)
_VOLTAGE_DROP_V_PER_KW = 0.6  # feeder impedance: import pulls the voltage down, export up
_SOLAR_START_H, _SOLAR_END_H = 6.0, 20.0
_CLOUD_PERIOD_STEPS = 30  # clouds change every 5 minutes
_APPLIANCE_PERIOD_STEPS = 12  # appliances switch every 2 minutes


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadShape:
    """The seeded parameters of one installation (drawn once per meter)."""

    seed: int
    phases: int
    utc_offset_s: int
    base_load_w: tuple[float, ...]
    evening_peak_w: tuple[float, ...]
    morning_peak_w: tuple[float, ...]
    appliance_w: tuple[float, ...]
    solar_peak_w: float
    load_power_factor: tuple[float, ...]

    @classmethod
    def draw(cls, seed: int, *, phases: int, utc_offset_s: int) -> LoadShape:
        rng = random.Random(seed)

        def per_phase(lo: float, hi: float) -> tuple[float, ...]:
            return tuple(rng.uniform(lo, hi) for _ in range(phases))

        scale = 3.0 / phases  # a single-phase house has all its load on L1
        return cls(
            seed=seed,
            phases=phases,
            utc_offset_s=utc_offset_s,
            base_load_w=tuple(w * scale for w in per_phase(80.0, 220.0)),
            evening_peak_w=tuple(w * scale for w in per_phase(500.0, 1400.0)),
            morning_peak_w=tuple(w * scale for w in per_phase(200.0, 700.0)),
            appliance_w=tuple(w * scale for w in per_phase(300.0, 1500.0)),
            solar_peak_w=rng.uniform(3000.0, 6000.0),
            load_power_factor=per_phase(0.88, 0.97),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseValues:
    """One phase during one step, in the integer units the meter reports."""

    active_power_w: int  # signed: + import, - export
    reactive_power_var: int  # signed: + inductive
    apparent_power_va: int
    voltage_mv: int
    current_ma: int
    power_factor_milli: int

    @property
    def forward_active_power_w(self) -> int:
        return max(self.active_power_w, 0)

    @property
    def reverse_active_power_w(self) -> int:
        return max(-self.active_power_w, 0)

    @property
    def quadrant(self) -> int:
        """1..4: Q1 (+P +Q), Q2 (-P +Q), Q3 (-P -Q), Q4 (+P -Q)."""
        if self.active_power_w >= 0:
            return 1 if self.reactive_power_var >= 0 else 4
        return 2 if self.reactive_power_var >= 0 else 3


@dataclass(frozen=True, kw_only=True, slots=True)
class Electrical:
    """All phases during one step.  Totals are exact sums of the phases (net metering)."""

    step: int
    phases: tuple[PhaseValues, ...]
    frequency_mhz: int

    @property
    def active_power_w(self) -> int:
        return sum(p.active_power_w for p in self.phases)

    @property
    def reactive_power_var(self) -> int:
        return sum(p.reactive_power_var for p in self.phases)

    @property
    def apparent_power_va(self) -> int:
        return sum(p.apparent_power_va for p in self.phases)

    @property
    def forward_active_power_w(self) -> int:
        return max(self.active_power_w, 0)

    @property
    def reverse_active_power_w(self) -> int:
        return max(-self.active_power_w, 0)

    @property
    def quadrant(self) -> int:
        total = PhaseValues(
            active_power_w=self.active_power_w,
            reactive_power_var=self.reactive_power_var,
            apparent_power_va=0,
            voltage_mv=0,
            current_ma=0,
            power_factor_milli=0,
        )
        return total.quadrant


_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """SplitMix64's finaliser: a cheap, well-spread integer hash."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
    return x ^ (x >> 31)


def _noise(shape: LoadShape, key: int, index: int) -> float:
    """A reproducible uniform number in [0, 1) for (seed, key, index).

    A hash, not a shared generator: the value of a step does not depend on which steps were
    evaluated before it (clients poll at arbitrary times), and it costs a microsecond.
    """
    h = _mix64((shape.seed * 0x9E3779B97F4A7C15 + key) & _MASK64)
    return _mix64(h ^ (index & _MASK64)) / 2.0**64


# Noise keys: one stream per quantity (phase-specific ones add the phase index).
_CLOUD, _FREQUENCY, _APPLIANCE, _JITTER, _PF, _VOLTAGE = 1, 2, 10, 20, 30, 40


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def _solar_fraction(shape: LoadShape, hour: float, step: int) -> float:
    if not _SOLAR_START_H < hour < _SOLAR_END_H:
        return 0.0
    day = math.sin(math.pi * (hour - _SOLAR_START_H) / (_SOLAR_END_H - _SOLAR_START_H))
    cloud = 0.55 + 0.45 * _noise(shape, _CLOUD, step // _CLOUD_PERIOD_STEPS)
    return day * cloud


def _phase(shape: LoadShape, p: int, hour: float, step: int, solar_w: float) -> PhaseValues:
    appliance_on = _noise(shape, _APPLIANCE + p, step // _APPLIANCE_PERIOD_STEPS) > 0.8
    load_w = (
        shape.base_load_w[p]
        + shape.evening_peak_w[p] * _bump(hour, 19.5, 2.0)
        + shape.morning_peak_w[p] * _bump(hour, 7.5, 1.0)
        + (shape.appliance_w[p] if appliance_on else 0.0)
        + 30.0 * _noise(shape, _JITTER + p, step)
    )
    active_w = round(load_w - solar_w / shape.phases)
    if active_w >= 0:
        pf, sign = shape.load_power_factor[p] + 0.02 * _noise(shape, _PF + p, step), 1
    else:  # the inverter draws a little reactive power while exporting (Q3)
        pf, sign = 0.99 + 0.009 * _noise(shape, _PF + p, step), -1
    reactive_var = sign * round(abs(active_w) * math.tan(math.acos(min(pf, 1.0))))
    apparent_va = round(math.hypot(active_w, reactive_var))
    swing = 0.012 * math.sin(2 * math.pi * hour / 24.0 + p) + 0.003 * (
        2 * _noise(shape, _VOLTAGE + p, step) - 1
    )
    voltage_v = NOMINAL_VOLTAGE_V * (1 + swing) - _VOLTAGE_DROP_V_PER_KW * active_w / 1000.0
    limit = NOMINAL_VOLTAGE_V * MAX_VOLTAGE_DEVIATION
    voltage_v = min(max(voltage_v, NOMINAL_VOLTAGE_V - limit), NOMINAL_VOLTAGE_V + limit)
    return PhaseValues(
        active_power_w=active_w,
        reactive_power_var=reactive_var,
        apparent_power_va=apparent_va,
        voltage_mv=round(voltage_v * 1000),
        current_ma=round(apparent_va / voltage_v * 1000),
        power_factor_milli=round(1000 * abs(active_w) / apparent_va) if apparent_va else 1000,
    )


def electrical_at(shape: LoadShape, step: int) -> Electrical:
    """The electrical values during step ``step`` (steps of :data:`STEP_S` since the epoch)."""
    local_s = step * STEP_S + shape.utc_offset_s
    hour = (local_s % 86_400) / 3600.0
    solar_w = shape.solar_peak_w * _solar_fraction(shape, hour, step)
    drift = 0.03 * math.sin(2 * math.pi * step / 97.0) + 0.015 * (
        2 * _noise(shape, _FREQUENCY, step) - 1
    )
    drift = max(-MAX_FREQUENCY_DEVIATION_HZ, min(MAX_FREQUENCY_DEVIATION_HZ, drift))
    return Electrical(
        step=step,
        phases=tuple(_phase(shape, p, hour, step, solar_w) for p in range(shape.phases)),
        frequency_mhz=round((NOMINAL_FREQUENCY_HZ + drift) * 1000),
    )
