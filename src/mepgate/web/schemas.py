"""The API's output schemas (what the JSON looks like) and their conversions from the service.

Input schemas (query parameters and forms) live next to the route that takes them; these
models are only ever built from the gateway's own objects, never from a request.  None of them
has a field that could carry a key or a password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Literal, Self, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from mepgate.config import PricesConfig
from mepgate.reading import TIERS, Reading
from mepgate.service.view import LinkFailure, MeterIdentity, MeterStatus
from mepgate.store import EnergyPeriod, EnergyTotals, HistoryPoint
from mepgate.web.energy_costs import cost_of
from mepgate.web.meter_state import Diagnosis, MeterState


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class _ReadingOutBase(_Out):
    """What the API adds to a :class:`Reading`: the signed net powers
    (:meth:`Reading.net_powers`, ``None`` unless both import and export are known)."""

    net_power_w: float | None = None
    net_power_l1_w: float | None = None
    net_power_l2_w: float | None = None
    net_power_l3_w: float | None = None

    @classmethod
    def of(cls, reading: Reading) -> Self:
        return cls.model_validate(
            {"meter": reading.meter, "at": reading.at, **reading.net_powers(), **reading.values()}
        )


if TYPE_CHECKING:

    class ReadingOut(_ReadingOutBase):
        """One validated snapshot (its fields are :class:`Reading`'s, see below)."""

else:
    # The reading's fields come from the Reading dataclass itself: one list, not two.
    _HINTS = get_type_hints(Reading)
    ReadingOut = create_model(
        "ReadingOut",
        __base__=_ReadingOutBase,
        __doc__=(
            "One validated snapshot.  Import and export are both >= 0; ``net_power_w`` is "
            "signed (+ the house draws from the grid, - it exports)."
        ),
        **{
            f.name: (_HINTS[f.name], ... if f.default is MISSING else f.default)
            for f in fields(Reading)
        },
    )


class TierEnergyOut(_Out):
    """One TOU tier's energy today and this month (``None``: its registers are unknown), the
    import price that applies to it and what its imported energy cost (with ``[prices]``)."""

    tier: int
    today_import_wh: float | None
    today_export_wh: float | None
    month_import_wh: float | None
    month_export_wh: float | None
    price_per_kwh: float | None = None
    today_cost: float | None = None
    month_cost: float | None = None


class CostOut(_Out):
    """What today's and this month's energy cost at the configured ``[prices]``: ``*_import``
    the imported energy, ``*_export`` what the exported energy earned (``None`` without an
    export price), ``*_net`` the difference.  ``None``: unknown (an imported kWh of a tier
    whose registers are unknown, or without a price)."""

    currency: str
    today_import: float | None
    today_export: float | None
    today_net: float | None
    month_import: float | None
    month_export: float | None
    month_net: float | None


def _tier_value(values: tuple[float | None, ...], tier: int) -> float | None:
    return values[tier - 1] if tier - 1 < len(values) else None


class EnergyOut(_Out):
    """Energy imported and exported since local midnight and since the 1st of the month;
    ``tiers``: the same per TOU tier (the tiers whose registers are known); ``cost``: what it
    cost, when the configuration has ``[prices]``."""

    meter: str
    at: dt.datetime
    today_import_wh: float
    today_export_wh: float
    today_since: dt.datetime
    month_import_wh: float
    month_export_wh: float
    month_since: dt.datetime
    tiers: list[TierEnergyOut] = []
    cost: CostOut | None = None

    @classmethod
    def of(cls, meter: str, totals: EnergyTotals, prices: PricesConfig | None = None) -> EnergyOut:
        today, month = totals.today, totals.this_month
        costs = (cost_of(today, prices), cost_of(month, prices)) if prices else None
        tiers = []
        for tier in TIERS:
            values = [
                _tier_value(getattr(delta, name), tier)
                for delta in (today, month)
                for name in ("tier_forward_wh", "tier_reverse_wh")
            ]
            if all(v is None for v in values):
                continue
            tiers.append(
                TierEnergyOut(
                    tier=tier,
                    today_import_wh=values[0],
                    today_export_wh=values[1],
                    month_import_wh=values[2],
                    month_export_wh=values[3],
                    price_per_kwh=prices.import_price_of(tier) if prices else None,
                    today_cost=_tier_value(costs[0].tiers, tier) if costs else None,
                    month_cost=_tier_value(costs[1].tiers, tier) if costs else None,
                )
            )
        cost = None
        if prices is not None and costs is not None:
            cost = CostOut(
                currency=prices.currency,
                today_import=costs[0].import_cost,
                today_export=costs[0].export_credit,
                today_net=costs[0].net,
                month_import=costs[1].import_cost,
                month_export=costs[1].export_credit,
                month_net=costs[1].net,
            )
        return cls(
            meter=meter,
            at=totals.at,
            today_import_wh=today.forward_wh,
            today_export_wh=today.reverse_wh,
            today_since=today.since,
            month_import_wh=month.forward_wh,
            month_export_wh=month.reverse_wh,
            month_since=month.since,
            tiers=tiers,
            cost=cost,
        )


class EnergyPeriodOut(_Out):
    """One local hour or day ``[start, end)``: the energy imported and exported in it and,
    with ``[prices]``, its net cost (``None``: no reading in the period, or unknown)."""

    start: dt.datetime
    end: dt.datetime
    import_wh: float | None
    export_wh: float | None
    cost: float | None = None

    @classmethod
    def of(cls, period: EnergyPeriod, prices: PricesConfig | None) -> EnergyPeriodOut:
        delta = period.delta
        if delta is None:
            return cls(start=period.start, end=period.end, import_wh=None, export_wh=None)
        return cls(
            start=period.start,
            end=period.end,
            import_wh=delta.forward_wh,
            export_wh=delta.reverse_wh,
            cost=cost_of(delta, prices).net if prices is not None else None,
        )


class EnergyPeriodsOut(_Out):
    """The energy of the latest local hours or days, oldest first; the last one is the
    current, unfinished period.  ``currency``: of the costs (``None`` without ``[prices]``)."""

    meter: str
    period: Literal["hour", "day"]
    currency: str | None
    periods: list[EnergyPeriodOut]


class StatsOut(_Out):
    mean: float
    min: float
    max: float


class HistoryPointOut(_Out):
    t: dt.datetime
    width_s: float
    resolution: Literal["raw", "minute", "hour", "day"]
    stats: dict[str, StatsOut]
    forward_active_energy_wh: float | None
    reverse_active_energy_wh: float | None
    energy_source: Literal["live", "profile"] | None = Field(
        default=None,
        description="Where the registers above come from: the live readings, or the meter's "
        "load profile (read back after a gap; preferred where it covers the point's end).",
    )
    profile_intervals: int = Field(
        default=0, description="The meter's load profile intervals in the point."
    )

    @classmethod
    def of(cls, point: HistoryPoint) -> HistoryPointOut:
        return cls(
            t=point.t,
            width_s=point.width.total_seconds(),
            resolution=point.resolution,  # type: ignore[arg-type]
            stats={
                name: StatsOut(mean=s.mean, min=s.min, max=s.max) for name, s in point.stats.items()
            },
            forward_active_energy_wh=point.forward_active_energy_wh,
            reverse_active_energy_wh=point.reverse_active_energy_wh,
            energy_source=point.energy_source,  # type: ignore[arg-type]
            profile_intervals=point.profile_intervals,
        )


class HistoryOut(_Out):
    meter: str
    start: dt.datetime
    end: dt.datetime
    points: list[HistoryPointOut]


class JobOut(_Out):
    """A read beside the live poll (back-fill, events, self-reads, sub-meters): ``state`` is
    ``idle``, ``working`` (``progress`` 0..1 when known), ``failed`` (``last_error`` says why;
    it tries again by itself) or ``unsupported`` (the meter lacks what it reads)."""

    name: str
    state: str
    progress: float | None
    detail: str
    last_error: str | None
    last_success_at: dt.datetime | None
    warning: str | None = None


class MeterOut(_Out):
    """``state``: starting, polling, retrying (next try at ``next_retry_at``) or stopped.

    ``problems`` say, in words, why the meter is not being read (any of them makes
    ``/api/v1/health`` degraded); ``warnings`` are worth knowing but do not.  ``diagnosis`` is
    the last error while the meter is not polling: what it is, the advice, and where to fix it.
    ``clock_offset_s`` is the meter's clock minus the gateway's (BT52).
    """

    name: str
    port: str
    connected: bool
    state: str
    next_retry_at: dt.datetime | None
    identity: MeterIdentity | None  # the service's dataclass: one list of fields, not two
    meter_clock: dt.datetime | None
    clock_offset_s: float | None
    last_reading_at: dt.datetime | None
    stale_after_s: float
    readings_stored: int
    readings_rejected: int
    rejected_in_a_row: int
    last_rejection: str | None
    rejection_reasons: dict[str, int]
    link: dict[str, int]
    last_errors: list[LinkFailure]
    problems: list[str]
    warnings: list[str]
    diagnosis: Diagnosis | None
    reading_problem: str | None  # of the problems: no reading yet, or the newest too old
    clock_warning: str | None  # of the warnings: the meter's clock too far off
    jobs: list[JobOut] = []  # reads beside the live poll: the back-fill's progress...

    @classmethod
    def of(cls, status: MeterStatus, judged: MeterState) -> MeterOut:
        return cls(
            name=status.name,
            port=status.port,
            connected=status.connected,
            state=status.state,
            next_retry_at=status.next_retry_at,
            identity=status.identity,
            meter_clock=status.meter_clock,
            clock_offset_s=status.clock_offset_s,
            last_reading_at=status.last_reading_at,
            stale_after_s=judged.stale_after_s,
            readings_stored=status.readings_stored,
            readings_rejected=status.readings_rejected,
            rejected_in_a_row=status.rejected_in_a_row,
            last_rejection=status.last_rejection,
            rejection_reasons=dict(status.rejection_reasons),
            link=dict(status.link),
            last_errors=list(status.last_errors),
            problems=list(judged.problems),
            warnings=list(judged.warnings),
            diagnosis=judged.diagnosis,
            reading_problem=judged.reading,
            clock_warning=judged.clock,
            jobs=[JobOut.model_validate(job) for job in status.jobs],
        )


class MeterHealthOut(_Out):
    """One meter's part of the health: ``problems`` (each makes the health ``degraded``) and
    ``warnings`` in words, with the counts behind them."""

    name: str
    connected: bool
    state: str
    last_reading_at: dt.datetime | None
    last_reading_age_s: float | None
    stale_after_s: float
    readings_stored: int
    readings_rejected: int
    rejected_in_a_row: int
    last_rejection: str | None
    clock_offset_s: float | None
    problems: list[str]
    warnings: list[str]
    jobs: list[JobOut] = []

    @classmethod
    def of(cls, status: MeterStatus, judged: MeterState) -> MeterHealthOut:
        return cls(
            name=status.name,
            connected=status.connected,
            state=status.state,
            last_reading_at=status.last_reading_at,
            last_reading_age_s=judged.last_reading_age_s,
            stale_after_s=judged.stale_after_s,
            readings_stored=status.readings_stored,
            readings_rejected=status.readings_rejected,
            rejected_in_a_row=status.rejected_in_a_row,
            last_rejection=status.last_rejection,
            clock_offset_s=status.clock_offset_s,
            problems=list(judged.problems),
            warnings=list(judged.warnings),
            jobs=[JobOut.model_validate(job) for job in status.jobs],
        )


class HealthOut(_Out):
    """``ok``: every meter polls and its newest reading is at most 3 poll intervals old;
    ``degraded``: some meter has a problem (each meter's ``problems`` say which, in words: not
    polling and why, no reading yet, a reading too old, readings rejected); ``setup``: no meter
    is configured yet.  ``admin_password_set`` is false until the setup page has been used."""

    status: Literal["ok", "degraded", "setup"]
    version: str
    admin_password_set: bool
    meters: list[MeterHealthOut]


class ErrorOut(_Out):
    detail: str


class DashDataOut(BaseModel):
    """The Dabbler MEP module's ``/getDashDataWS`` JSON: the same names, units and integer
    values (Wh, W, mHz, mA, mV), so scripts written for it keep working.  The ``*_Avg_W``
    fields are means over the last minute (the firmware showed BT28's demand averages).
    Built by :func:`mepgate.outputs.compat.dabbler_json`; this model documents it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    esp_sw: str = Field("mepgate", alias="ESP_SW")
    esp_sw_by: str = Field("mepgate", alias="ESP_SW_By")
    esp_sw_version: str = Field(alias="ESP_SW_Version")
    meter_manufacturer: str = Field(alias="Meter_Manufacturer")
    meter_model: str = Field(alias="Meter_Model")
    meter_sw_version: str = Field(alias="Meter_SW_Version")
    utility_sn: str = Field(alias="Utility_SN")
    current_date_time_string: str = Field(alias="CurrentDateTimeString")
    current_date_time: str = Field(alias="CurrentDateTime")
    fwd_act_wh: int = Field(alias="Fwd_Act_Wh")
    rev_act_wh: int = Field(alias="Rev_Act_Wh")
    fwd_w: int = Field(alias="Fwd_W")
    rev_w: int = Field(alias="Rev_W")
    freq_mhz: int = Field(alias="Freq_mHz")
    l1_rms_a: int = Field(alias="L1_RMS_A")
    l2_rms_a: int = Field(alias="L2_RMS_A")
    l3_rms_a: int = Field(alias="L3_RMS_A")
    l1_rms_v: int = Field(alias="L1_RMS_V")
    l2_rms_v: int = Field(alias="L2_RMS_V")
    l3_rms_v: int = Field(alias="L3_RMS_V")
    l1_fwd_w: int = Field(alias="L1_Fwd_W")
    l2_fwd_w: int = Field(alias="L2_Fwd_W")
    l3_fwd_w: int = Field(alias="L3_Fwd_W")
    l1_rev_w: int = Field(alias="L1_Rev_W")
    l2_rev_w: int = Field(alias="L2_Rev_W")
    l3_rev_w: int = Field(alias="L3_Rev_W")
    fwd_avg_w: int = Field(alias="Fwd_Avg_W")
    rev_avg_w: int = Field(alias="Rev_Avg_W")
    l1_fwd_avg_w: int = Field(alias="L1_Fwd_Avg_W")
    l2_fwd_avg_w: int = Field(alias="L2_Fwd_Avg_W")
    l3_fwd_avg_w: int = Field(alias="L3_Fwd_Avg_W")
    l1_rev_avg_w: int = Field(alias="L1_Rev_Avg_W")
    l2_rev_avg_w: int = Field(alias="L2_Rev_Avg_W")
    l3_rev_avg_w: int = Field(alias="L3_Rev_Avg_W")
