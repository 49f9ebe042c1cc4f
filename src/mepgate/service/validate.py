"""Plausibility checks on a reading, beyond the digest: what a meter cannot physically show.

A digest proves the bytes are the meter's; it does not prove the meter (or a decoder after a
silent reconfiguration) made sense.  Users' worst complaint is glitches -- 1000 kWh spikes,
zeros, values from corrupted frames (FIELD-NOTES.md) -- so every reading passes these checks
before it is stored or published.  A reading that fails is counted by reason and dropped.

Three questions, three functions:

* :func:`validate` -- may this reading follow the last accepted one (the *baseline*)?
* :func:`baseline_findings` -- may this reading *start* a history, with nothing to compare it
  with?  Its energy totals must agree with its tier registers: one absurd first reading
  (2,147,483,647 Wh while the tiers sum to 8,000,002 Wh) would otherwise become the baseline
  and every real reading after it would fail "energy decreased".
* :func:`baseline_doubt` -- may the newest *stored* reading serve as the baseline after a
  restart?  Not when it is implausible on its own or stamped in the future.

:func:`check` and :func:`baseline_findings` give :class:`Finding` s: the reason and the values
that broke the rule, in words, for the log and the meter page.

Pure: no clock, no I/O; the caller passes the time where one matters.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from mepgate.reading import (
    PHASES,
    TIER_ENERGY_FIELDS,
    TIER_REFRESH_S,
    TIERS,
    VALUE_FIELDS,
    Reading,
    tier_energy_field,
)


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
    POWER_RANGE = "power-out-of-range"
    POWER_EXCEEDS_VI = "power-exceeds-voltage-times-current"
    PHASE_SUM = "phase-sum-mismatch"
    TIER_SUM = "tier-sum-mismatch"

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
    Rejection.POWER_RANGE: "an active or reactive power is beyond what the meter can carry",
    Rejection.POWER_EXCEEDS_VI: "a phase's active power exceeds its voltage times its current",
    Rejection.PHASE_SUM: "the phases' net power does not add up to the total",
    Rejection.TIER_SUM: "an energy total disagrees with the sum of its tier registers",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: the reason, and the values that broke it in words."""

    reason: Rejection
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


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

    def most_energy_wh(self, seconds: float) -> float:
        """The most an energy register can rise in ``seconds``, with margin and slack."""
        return 1.5 * self.max_power_w * seconds / 3600 + self.energy_slack_wh


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
_POWERS = (
    "active_power_import_w",
    "active_power_export_w",
    *(f"active_power_{d}_{p}_w" for d in ("import", "export") for p in PHASES),
    "reactive_power_var",
)
FUTURE_TOLERANCE = dt.timedelta(seconds=2)
"""How far a stored reading may lie ahead of the gateway's clock and still be its baseline:
the gateway stamps readings with its own clock, so more than a small step of that clock means
the reading was stamped by something else (an older version used the meter's clock)."""


def _wh(value: float) -> str:
    return f"{value:,.0f} Wh"


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the three questions --------------------------------------------------------------------
def validate(
    reading: Reading, previous: Reading | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[Rejection, ...]:
    """Every reason ``reading`` is implausible (empty: it may be stored).

    ``previous`` is the meter's last *accepted* reading: energy registers (totals and tiers)
    never decrease and rise at most as fast as the meter's maximum power allows.  Values that
    are ``None`` (not recorded by this meter) are not checked.
    """
    return tuple(dict.fromkeys(f.reason for f in check(reading, previous, limits)))


def check(
    reading: Reading, previous: Reading | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[Finding, ...]:
    """:func:`validate`'s findings, each with the values that broke the rule."""
    values = reading.values()
    bad = [n for n, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:  # every comparison below would be meaningless
        return (Finding(Rejection.NOT_FINITE, ", ".join(f"{n} = {values[n]}" for n in bad)),)
    found: list[Finding] = []
    negative = [n for n in _NON_NEGATIVE if (values[n] or 0) < 0]
    if negative:
        found.append(
            Finding(Rejection.NEGATIVE, ", ".join(f"{n} = {values[n]:g}" for n in negative))
        )
    if previous is not None:
        found += _against_previous(reading, previous, limits)
    found += _ranges(reading, limits)
    found += _consistency(reading, limits)
    return tuple(found)


def baseline_findings(reading: Reading, limits: Limits = DEFAULT_LIMITS) -> tuple[Finding, ...]:
    """Why ``reading`` cannot start a history on its own (empty: it can).

    With no previous reading to compare with, the meter's own registers cross-check each
    other: each energy total is the sum of its tier registers (BT23's total block and tier
    blocks, MEP guide "BT23").  The tiers are read up to :data:`TIER_REFRESH_S` before the
    total (and in a later request of the same read), so they may differ by what that long at
    full power adds, plus a register unit per tier.  Tiers not read are not checked.
    """
    found: list[Finding] = []
    most = limits.most_energy_wh(TIER_REFRESH_S) + len(TIERS) * limits.energy_slack_wh
    for direction in ("forward", "reverse"):
        name = f"{direction}_active_energy_wh"
        tiers = [getattr(reading, tier_energy_field(direction, t)) for t in TIERS]
        known = [wh for wh in tiers if wh is not None]
        if not known:
            continue
        total, parts = getattr(reading, name), sum(known)
        if abs(total - parts) > most:
            found.append(
                Finding(
                    Rejection.TIER_SUM,
                    f"{name} is {_wh(total)} but its tiers sum to {_wh(parts)}",
                )
            )
    return tuple(found)


def baseline_doubt(
    newest: Reading,
    earlier: Sequence[Reading],
    now: dt.datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> str | None:
    """Why the newest stored reading must not be the baseline after a restart (``None``: it
    may be).

    ``earlier`` are the readings stored just before it, oldest first.  A stored reading is
    doubted when it is implausible on its own (stored by an older version with fewer checks),
    when it lies in the future of the gateway's clock (an older version stamped readings with
    the meter's clock), or when its totals disagree with its tiers and the reading stored
    before it does not vouch for it either: a reading that followed its predecessor
    plausibly is the meter's real state, even on a meter whose tiers do not add up.
    """
    alone = check(newest, None, limits)
    if alone:
        return "it is implausible: " + "; ".join(map(str, alone))
    if newest.at > now + FUTURE_TOLERANCE:
        return f"it is stamped {_utc(newest.at)}, after this computer's clock ({_utc(now)})"
    tiers = baseline_findings(newest, limits)
    if tiers and not (earlier and not check(newest, earlier[-1], limits)):
        return "its totals disagree with its tiers: " + "; ".join(map(str, tiers))
    return None


class Story:
    """Readings rejected against the baseline that agree with each other, each plausible after
    the one before (:func:`validate`): the evidence that the baseline, not the meter, is wrong
    (a replaced meter, reset registers, a clock set back, a bad baseline).  A reading that does
    not follow the story starts a new one: glitches that contradict each other tell none."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self.first: Reading | None = None
        self.last: Reading | None = None
        self.length = 0

    def add(self, reading: Reading) -> None:
        if self.last is None or validate(reading, self.last, self._limits):
            self.first, self.length = reading, 0
        self.last = reading
        self.length += 1

    @property
    def span_s(self) -> float:
        """Seconds from the story's first reading to its newest."""
        if self.first is None or self.last is None:
            return 0.0
        return (self.last.at - self.first.at).total_seconds()

    def clear(self) -> None:
        self.first = self.last = None
        self.length = 0

    def to_json(self) -> str | None:
        """The story as a text to keep across restarts (``None``: there is none)."""
        if self.first is None or self.last is None:
            return None
        return json.dumps(
            {"length": self.length, "first": _as_dict(self.first), "last": _as_dict(self.last)}
        )

    @classmethod
    def from_json(cls, text: str | None, meter: str, limits: Limits = DEFAULT_LIMITS) -> Story:
        """The story kept as ``text`` by :meth:`to_json`; an empty one if there is none, or if
        the text is not one (a story is evidence to gather again, never worth a failure)."""
        story = cls(limits)
        if text is None:
            return story
        try:
            data = json.loads(text)
            first, last = _from_dict(meter, data["first"]), _from_dict(meter, data["last"])
            length = int(data["length"])
        except (ValueError, TypeError, KeyError):
            return story
        if length > 0:
            story.first, story.last, story.length = first, last, length
        return story


def _as_dict(reading: Reading) -> dict[str, object]:
    return {"at": reading.at.isoformat(), **reading.values()}


def _from_dict(meter: str, data: dict[str, object]) -> Reading:
    """A reading from :func:`_as_dict`; ``ValueError``/``TypeError``/``KeyError`` if it is not."""
    at = dt.datetime.fromisoformat(str(data["at"]))
    if at.tzinfo is None:
        raise ValueError("a reading's time without a time zone")
    values: dict[str, float | int | None] = {}
    for name in VALUE_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, int | float):
            raise TypeError(f"{name} is not a number")
        values[name] = value
    forward, reverse = values.pop(_ENERGY_FIELDS[0]), values.pop(_ENERGY_FIELDS[1])
    if forward is None or reverse is None:
        raise ValueError("a reading without its energy totals")
    return Reading(
        meter=meter,
        at=at,
        forward_active_energy_wh=float(forward),
        reverse_active_energy_wh=float(reverse),
        **values,  # type: ignore[arg-type]
    )


def describe(findings: Sequence[Finding]) -> str:
    """``findings`` in one line, for the log and the meter page."""
    return "; ".join(map(str, findings))


# -- the rules ------------------------------------------------------------------------------
def _against_previous(reading: Reading, previous: Reading, limits: Limits) -> list[Finding]:
    elapsed_s = (reading.at - previous.at).total_seconds()
    if elapsed_s <= 0:
        detail = f"taken at {_utc(reading.at)}, the previous one at {_utc(previous.at)}"
        return [Finding(Rejection.TIME_NOT_ADVANCING, detail)]
    out: list[Finding] = []
    # Tier registers are re-read only every TIER_REFRESH_S: between two readings they may show
    # what that long (not just the time between the readings) at full power adds.
    for names, seconds in (
        (_ENERGY_FIELDS, elapsed_s),
        (TIER_ENERGY_FIELDS, max(elapsed_s, TIER_REFRESH_S)),
    ):
        most_wh = limits.most_energy_wh(seconds)
        for name in names:
            now, before = getattr(reading, name), getattr(previous, name)
            if now is None or before is None:
                continue  # tiers not read (yet): nothing to compare
            rise = now - before
            if rise < 0:
                detail = f"{name} went from {_wh(before)} to {_wh(now)}"
                out.append(Finding(Rejection.ENERGY_DECREASED, detail))
            elif rise > most_wh:
                detail = (
                    f"{name} rose from {_wh(before)} to {_wh(now)} in {elapsed_s:,.0f} s "
                    f"(at most {_wh(most_wh)})"
                )
                out.append(Finding(Rejection.ENERGY_JUMP, detail))
    return out


def _ranges(reading: Reading, limits: Limits) -> list[Finding]:
    out: list[Finding] = []
    for phase in PHASES:
        voltage = getattr(reading, f"voltage_{phase}_v")
        if voltage is not None and not 0 <= voltage <= limits.voltage_max_v:
            out.append(Finding(Rejection.VOLTAGE_RANGE, f"voltage_{phase}_v = {voltage:g} V"))
        current = getattr(reading, f"current_{phase}_a")
        if current is not None and current > limits.current_max_a:
            out.append(Finding(Rejection.CURRENT_RANGE, f"current_{phase}_a = {current:g} A"))
        factor = getattr(reading, f"power_factor_{phase}")
        if factor is not None and not 0 <= factor <= 1:
            out.append(Finding(Rejection.POWER_FACTOR_RANGE, f"power_factor_{phase} = {factor:g}"))
    frequency = reading.frequency_hz
    low, high = limits.frequency_min_hz, limits.frequency_max_hz
    if frequency is not None and not low <= frequency <= high:
        out.append(Finding(Rejection.FREQUENCY_RANGE, f"frequency_hz = {frequency:g} Hz"))
    # No power, active or reactive, exceeds what the meter's phases can carry at all (the
    # apparent power bounds both): 2,147,483,647 var is a corrupt value, not a load.
    for name in _POWERS:
        power = getattr(reading, name)
        if power is not None and abs(power) > limits.max_power_w:
            detail = f"{name} = {power:,.0f} (at most {limits.max_power_w:,.0f})"
            out.append(Finding(Rejection.POWER_RANGE, detail))
    return out


def _consistency(reading: Reading, limits: Limits) -> list[Finding]:
    out: list[Finding] = []
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
            detail = f"{phase}: {max(imported, exported):,.0f} W at {voltage:g} V x {current:g} A"
            out.append(Finding(Rejection.POWER_EXCEEDS_VI, detail))
    total = reading.net_power_w
    if total is not None and len(phase_net) == len(PHASES):
        scale = sum(abs(p) for p in phase_net)
        tolerance = max(limits.phase_sum_absolute_w, limits.phase_sum_relative * scale)
        if abs(sum(phase_net) - total) > tolerance:
            detail = f"the phases net {sum(phase_net):,.0f} W, the total {total:,.0f} W"
            out.append(Finding(Rejection.PHASE_SUM, detail))
    return out
