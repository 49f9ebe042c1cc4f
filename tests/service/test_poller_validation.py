"""Validation beyond the digest (:mod:`mepgate.service.validate`): unit and property tests.

Plausible readings are built from physics (per phase: voltage, current, power factor, import or
export; totals as the net of the phases), so "valid" means "what a meter can show"; each rule
is then broken on its own and must be caught, by its own reason, and nothing else may raise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepgate.reading import (
    PHASES,
    TIER_ENERGY_FIELDS,
    TIER_REFRESH_S,
    VALUE_FIELDS,
    Reading,
)
from mepgate.service.validate import DEFAULT_LIMITS, Limits, Rejection, validate

T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def plausible(
    *,
    voltages: tuple[float, ...] = (230.0, 231.0, 229.0),
    currents: tuple[float, ...] = (5.0, 3.0, 0.5),
    factors: tuple[float, ...] = (0.95, 0.9, 1.0),
    exporting: tuple[bool, ...] = (False, False, True),
    at: dt.datetime = T0,
    forward_wh: float = 8_000_000.0,
    reverse_wh: float = 2_000_000.0,
    frequency_hz: float = 50.0,
) -> Reading:
    values: dict[str, Any] = {}
    net = 0.0
    for phase, v, i, pf, out in zip(PHASES, voltages, currents, factors, exporting, strict=True):
        power = round(v * i * pf)
        values[f"voltage_{phase}_v"] = v
        values[f"current_{phase}_a"] = i
        values[f"power_factor_{phase}"] = pf
        values[f"active_power_import_{phase}_w"] = 0.0 if out else power
        values[f"active_power_export_{phase}_w"] = power if out else 0.0
        net += -power if out else power
    return Reading(
        meter="house",
        at=at,
        forward_active_energy_wh=forward_wh,
        reverse_active_energy_wh=reverse_wh,
        active_power_import_w=max(net, 0.0),
        active_power_export_w=max(-net, 0.0),
        frequency_hz=frequency_hz,
        **values,
    )


phase_voltage = st.floats(0, 300)
phase_current = st.floats(0, 100)
power_factor = st.floats(0, 1)


@st.composite
def plausible_readings(draw: st.DrawFn) -> Reading:
    return plausible(
        voltages=tuple(draw(phase_voltage) for _ in PHASES),
        currents=tuple(draw(phase_current) for _ in PHASES),
        factors=tuple(draw(power_factor) for _ in PHASES),
        exporting=tuple(draw(st.booleans()) for _ in PHASES),
        frequency_hz=draw(st.floats(45, 55)),
        forward_wh=draw(st.floats(0, 1e9)),
        reverse_wh=draw(st.floats(0, 1e9)),
    )


# -- properties -----------------------------------------------------------------------------------
@given(plausible_readings())
def test_what_a_meter_can_show_is_valid(reading: Reading) -> None:
    assert validate(reading) == ()


@given(
    plausible_readings(),
    st.floats(0.1, 86_400),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_energy_rising_within_the_maximum_power_is_valid(
    reading: Reading, elapsed_s: float, forward_share: float, reverse_share: float
) -> None:
    most = DEFAULT_LIMITS.max_power_w * elapsed_s / 3600
    later = dataclasses.replace(
        reading,
        at=reading.at + dt.timedelta(seconds=elapsed_s),
        forward_active_energy_wh=reading.forward_active_energy_wh + forward_share * most,
        reverse_active_energy_wh=reading.reverse_active_energy_wh + reverse_share * most,
    )
    assert validate(later, reading) == ()


@given(plausible_readings(), st.floats(0.001, 1e6))
def test_energy_never_decreases(reading: Reading, drop_wh: float) -> None:
    later = dataclasses.replace(
        reading,
        at=reading.at + dt.timedelta(seconds=1),
        forward_active_energy_wh=reading.forward_active_energy_wh - drop_wh,
    )
    assert Rejection.ENERGY_DECREASED in validate(later, reading)


@given(plausible_readings(), st.floats(300.001, 1e6))
def test_voltage_above_300_v_is_caught(reading: Reading, volts: float) -> None:
    assert Rejection.VOLTAGE_RANGE in validate(dataclasses.replace(reading, voltage_l2_v=volts))


@given(plausible_readings(), st.one_of(st.floats(-1e6, 44.999), st.floats(55.001, 1e6)))
def test_frequency_outside_45_to_55_hz_is_caught(reading: Reading, hz: float) -> None:
    assert validate(dataclasses.replace(reading, frequency_hz=hz)) == (Rejection.FREQUENCY_RANGE,)


@given(plausible_readings(), st.one_of(st.floats(-10, -0.001), st.floats(1.001, 10)))
def test_power_factor_outside_0_to_1_is_caught(reading: Reading, factor: float) -> None:
    changed = dataclasses.replace(reading, power_factor_l3=factor)
    assert validate(changed) == (Rejection.POWER_FACTOR_RANGE,)


@given(plausible_readings(), st.floats(1.0, 1e5))
def test_a_total_that_disagrees_with_the_phases_is_caught(reading: Reading, off_w: float) -> None:
    phases = [
        (getattr(reading, f"active_power_import_{p}_w") or 0.0)
        - (getattr(reading, f"active_power_export_{p}_w") or 0.0)
        for p in PHASES
    ]
    limits = DEFAULT_LIMITS
    tolerance = max(
        limits.phase_sum_absolute_w, limits.phase_sum_relative * sum(abs(p) for p in phases)
    )
    wrong = reading.active_power_import_w or 0.0
    wrong += tolerance + off_w
    changed = dataclasses.replace(reading, active_power_import_w=wrong, active_power_export_w=0.0)
    assert Rejection.PHASE_SUM in validate(changed)


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {
            name: st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
            for name in VALUE_FIELDS
            if name not in ("forward_active_energy_wh", "reverse_active_energy_wh", "current_tier")
        }
    ),
    st.floats(allow_nan=True),
    st.floats(allow_nan=True),
)
def test_any_values_give_reasons_never_an_exception(
    values: dict[str, float | None], forward: float, reverse: float
) -> None:
    given_values: dict[str, Any] = values
    reading = Reading(
        meter="m",
        at=T0,
        forward_active_energy_wh=forward,
        reverse_active_energy_wh=reverse,
        **given_values,
    )
    reasons = validate(reading, plausible(at=T0 - dt.timedelta(seconds=1)))
    assert all(isinstance(r, Rejection) for r in reasons)
    finite = all(math.isfinite(v) for v in (forward, reverse, *values.values()) if v is not None)
    assert finite or reasons == (Rejection.NOT_FINITE,)


# -- single rules ---------------------------------------------------------------------------------
def test_a_1000_kwh_spike_is_caught() -> None:
    before = plausible()
    spike = dataclasses.replace(
        before,
        at=T0 + dt.timedelta(seconds=1),
        forward_active_energy_wh=before.forward_active_energy_wh + 1_000_000,
    )
    assert validate(spike, before) == (Rejection.ENERGY_JUMP,)


def with_register(reading: Reading, field: str, wh: float, **changes: Any) -> Reading:
    """``reading`` with register ``field`` (a name known only at run time) set to ``wh``."""
    values: dict[str, Any] = {field: wh, **changes}
    return dataclasses.replace(reading, **values)


@pytest.mark.parametrize("field", TIER_ENERGY_FIELDS)
def test_tier_registers_never_decrease_either(field: str) -> None:
    before = with_register(plausible(), field, 5_000.0)
    later = with_register(before, field, 4_999.0, at=T0 + dt.timedelta(seconds=1))
    assert validate(later, before) == (Rejection.ENERGY_DECREASED,)
    assert validate(with_register(later, field, 5_000.0), before) == ()


def test_tier_registers_may_catch_up_a_refresh_interval_but_not_1000_kwh() -> None:
    """Tier registers are re-read every TIER_REFRESH_S: one second after the previous reading
    they may show that interval's energy at once, never a glitch."""
    field = TIER_ENERGY_FIELDS[0]
    before = with_register(plausible(), field, 5_000.0)
    minute_at_full_power = DEFAULT_LIMITS.max_power_w * TIER_REFRESH_S / 3600
    second = T0 + dt.timedelta(seconds=1)
    caught_up = with_register(before, field, 5_000.0 + minute_at_full_power, at=second)
    assert validate(caught_up, before) == ()
    spike = with_register(caught_up, field, 5_000.0 + 1_000_000)
    assert validate(spike, before) == (Rejection.ENERGY_JUMP,)
    # Tiers not read before (None): nothing to compare against.
    first_read = with_register(plausible(), field, 5.0, at=second)
    assert validate(first_read, plausible()) == ()


def test_a_reading_not_newer_than_the_previous_is_caught() -> None:
    assert validate(plausible(), plausible()) == (Rejection.TIME_NOT_ADVANCING,)


def test_power_above_voltage_times_current_is_caught() -> None:
    reading = dataclasses.replace(plausible(), active_power_import_l1_w=2000.0)  # 230 V x 5 A
    assert Rejection.POWER_EXCEEDS_VI in validate(reading)


def test_negative_current_and_too_much_current_are_caught() -> None:
    assert Rejection.NEGATIVE in validate(dataclasses.replace(plausible(), current_l1_a=-1.0))
    too_much = dataclasses.replace(plausible(), current_l1_a=250.0)
    assert Rejection.CURRENT_RANGE in validate(too_much)


def test_not_a_number_is_one_reason() -> None:
    assert validate(dataclasses.replace(plausible(), voltage_l1_v=math.nan)) == (
        Rejection.NOT_FINITE,
    )


def test_values_the_meter_does_not_record_are_not_checked() -> None:
    bare = Reading(meter="old", at=T0, forward_active_energy_wh=1.0, reverse_active_energy_wh=0.0)
    assert validate(bare) == ()


def test_a_zero_phase_on_a_single_phase_meter_is_valid() -> None:
    single = plausible(voltages=(230.0, 0.0, 0.0), currents=(10.0, 0.0, 0.0))
    assert validate(single) == ()


def test_limits_can_be_tightened() -> None:
    strict = Limits(voltage_max_v=250.0)
    assert validate(plausible(voltages=(260.0, 230.0, 230.0)), limits=strict) == (
        Rejection.VOLTAGE_RANGE,
    )


def test_every_reason_has_a_description() -> None:
    assert all(reason.describe() for reason in Rejection)
