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
    TIERS,
    VALUE_FIELDS,
    Reading,
    tier_energy_field,
)
from mepgate.service.validate import (
    DEFAULT_LIMITS,
    Limits,
    Rejection,
    Story,
    baseline_doubt,
    baseline_findings,
    check,
    describe,
    validate,
)

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


# -- power ranges, baselines and stories (issue 11, item 10) ------------------------------------
INT32_MAX = 2_147_483_647


@pytest.mark.parametrize("field", ["reactive_power_var", "active_power_import_w"])
@pytest.mark.parametrize("value", [INT32_MAX, -INT32_MAX])
def test_a_power_no_meter_can_carry_is_caught(field: str, value: float) -> None:
    values: dict[str, Any] = {field: float(value)}
    findings = check(dataclasses.replace(plausible(), **values))
    assert Rejection.POWER_RANGE in {f.reason for f in findings}
    assert any("2,147,483,647" in f.detail and field in f.detail for f in findings)


def test_reactive_power_up_to_the_meters_rating_is_valid() -> None:
    most = DEFAULT_LIMITS.max_power_w
    assert validate(dataclasses.replace(plausible(), reactive_power_var=-most)) == ()


def tiered(reading: Reading, forward: tuple[float, ...], reverse: tuple[float, ...]) -> Reading:
    values: dict[str, Any] = {}
    for direction, tiers in (("forward", forward), ("reverse", reverse)):
        for tier, wh in zip(TIERS, tiers, strict=False):
            values[tier_energy_field(direction, tier)] = wh
    return dataclasses.replace(reading, **values)


GOOD = tiered(
    plausible(forward_wh=8_000_002.0, reverse_wh=2_000_000.0),
    (2_400_000.0, 3_200_002.0, 1_600_000.0, 800_000.0),
    (600_000.0, 800_000.0, 400_000.0, 200_000.0),
)
ABSURD = dataclasses.replace(GOOD, forward_active_energy_wh=float(INT32_MAX))


def test_an_absurd_total_cannot_start_a_history() -> None:
    """The fake meter's first reading: 2,147,483,647 Wh while its tiers sum to 8,000,002 Wh."""
    assert validate(ABSURD) == ()  # on its own nothing else is wrong with it...
    findings = baseline_findings(ABSURD)
    assert [f.reason for f in findings] == [Rejection.TIER_SUM]  # ...but its tiers say so
    assert "2,147,483,647 Wh" in findings[0].detail
    assert "8,000,002 Wh" in findings[0].detail
    assert baseline_findings(GOOD) == ()


def test_tiers_may_lag_the_total_by_a_refresh_interval_at_full_power() -> None:
    lag = DEFAULT_LIMITS.max_power_w * TIER_REFRESH_S / 3600  # a minute at full power
    later = dataclasses.replace(GOOD, forward_active_energy_wh=8_000_002.0 + lag)
    assert baseline_findings(later) == ()
    ahead = dataclasses.replace(GOOD, forward_active_energy_wh=8_000_002.0 - 300.0)
    assert baseline_findings(ahead) == ()  # tiers read in a later request than the total
    untiered = plausible(forward_wh=float(INT32_MAX))
    assert baseline_findings(untiered) == ()  # no tiers read: nothing to cross-check


NOW = T0 + dt.timedelta(hours=1)


def test_a_stored_baseline_is_doubted_only_on_evidence() -> None:
    assert baseline_doubt(GOOD, [], NOW) is None
    # Implausible on its own: stored by a version with fewer checks.
    absurd_var = dataclasses.replace(GOOD, reactive_power_var=float(INT32_MAX))
    doubt = baseline_doubt(absurd_var, [], NOW)
    assert doubt is not None
    assert "power-out-of-range" in doubt
    # In the future of this computer's clock: stamped with a meter's clock at 2255.
    future = dataclasses.replace(GOOD, at=dt.datetime(2255, 6, 1, tzinfo=dt.UTC))
    doubt = baseline_doubt(future, [], NOW)
    assert doubt is not None
    assert "2255-06-01" in doubt
    # Its totals disagree with its tiers, and the reading before it does not vouch for it.
    before = dataclasses.replace(GOOD, at=GOOD.at - dt.timedelta(seconds=1))
    doubt = baseline_doubt(ABSURD, [before], NOW)
    assert doubt is not None
    assert "disagree with its tiers" in doubt
    assert baseline_doubt(ABSURD, [], NOW) is not None
    # A meter whose tiers do not add up (TOU enabled late): its history vouches for it.
    late = tiered(GOOD, (10.0, 20.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))
    late_before = dataclasses.replace(late, at=late.at - dt.timedelta(seconds=1))
    assert baseline_findings(late) != ()
    assert baseline_doubt(late, [late_before], NOW) is None


def test_findings_say_which_values_broke_the_rule() -> None:
    later = dataclasses.replace(
        GOOD, at=GOOD.at + dt.timedelta(seconds=1), forward_active_energy_wh=7_999_000.0
    )
    [finding] = check(later, GOOD)
    assert finding.reason is Rejection.ENERGY_DECREASED
    assert str(finding) == (
        "energy-decreased: forward_active_energy_wh went from 8,000,002 Wh to 7,999,000 Wh"
    )
    assert describe(check(plausible(), plausible())).startswith("time-not-advancing: taken at")


def test_a_story_is_readings_that_agree_with_each_other() -> None:
    story = Story()
    second = dt.timedelta(seconds=1)
    for n in range(3):  # a replaced meter: lower than the baseline, rising plausibly
        story.add(dataclasses.replace(GOOD, at=T0 + n * second))
    assert story.length == 3
    assert story.span_s == 2.0
    # A glitch that contradicts the story starts a new one: glitches tell no story.
    story.add(dataclasses.replace(ABSURD, at=T0 + 3 * second))
    assert story.length == 1
    assert story.span_s == 0.0
    story.add(dataclasses.replace(GOOD, at=T0 + 4 * second))  # decreased from the glitch
    assert story.length == 1
    story.clear()
    assert story.length == 0


def test_a_story_is_kept_as_text_across_restarts() -> None:
    story = Story()
    for n in range(3):
        story.add(dataclasses.replace(GOOD, at=T0 + dt.timedelta(seconds=n)))
    text = story.to_json()
    assert text is not None
    again = Story.from_json(text, GOOD.meter)
    assert (again.first, again.last, again.length) == (story.first, story.last, 3)
    assert Story().to_json() is None
    for broken in (None, "", "{", '{"length": 2}', '{"length": 1, "first": 5, "last": {}}'):
        assert Story.from_json(broken, "m").length == 0  # gathered again, never a failure
