"""Dimension tables (BT21, BT22, BT27, ET11, ET55) and the :class:`Dimensions` they add up to.

Most MEP tables are dimensioned: their length and field offsets follow from other tables
(MEP guide, "Dynamic Sizing of Tables").  Read these once per session (and again whenever ET04's
"IDT Version" changes, or a request fails with an invalid sequence number) and hand the
resulting :class:`Dimensions` to the dependent decoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mepgate.tables._layout import (
    U8,
    U16,
    U32,
    Array,
    BoolSet,
    Field,
    Layout,
    bits,
    fill,
    flag,
    packed,
)
from mepgate.tables.errors import InvalidDimensionError
from mepgate.tables.ids import TableId
from mepgate.tables.table import DimensionedTable, FixedTable

if TYPE_CHECKING:
    from mepgate.tables.events import ActualLog
    from mepgate.tables.load_profile import ActualLoadProfile

_REREAD = "re-read BT21 (and BT22/BT27) and check that they belong to this meter"


# -- BT21 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class ActualRegister:
    """BT21: actual dimensions of the register tables BT22..BT28."""

    season_info_field: bool
    date_time_field: bool
    demand_reset_counter: bool
    demand_reset_lock: bool
    cumulative_demand: bool
    continuous_cumulative_demand: bool
    time_remaining: bool
    self_read_inhibit_overflow: bool
    self_read_sequence_number: bool
    daily_self_read: bool
    weekly_self_read: bool
    self_read_demand_reset: int
    number_of_self_reads: int
    number_of_summations: int
    number_of_demands: int
    number_of_coincident_values: int
    number_of_occurrences: int
    number_of_tiers: int
    number_of_present_demands: int
    number_of_present_values: int


# MEP guide, BT21 "Actual Register".  The tier count is byte 7 (the old ESP32 firmware read
# it from another byte); the two flag bytes come first.
BT21_LAYOUT: Layout[ActualRegister] = Layout(
    "BT21",
    ActualRegister,
    [
        packed(
            1,
            flag("season_info_field", 0),
            flag("date_time_field", 1),
            flag("demand_reset_counter", 2),
            flag("demand_reset_lock", 3),
            flag("cumulative_demand", 4),
            flag("continuous_cumulative_demand", 5),
            flag("time_remaining", 6),
        ),
        packed(
            1,
            flag("self_read_inhibit_overflow", 0),
            flag("self_read_sequence_number", 1),
            flag("daily_self_read", 2),
            flag("weekly_self_read", 3),
            bits("self_read_demand_reset", 4, 5),
        ),
        Field("number_of_self_reads", U8),
        Field("number_of_summations", U8),
        Field("number_of_demands", U8),
        Field("number_of_coincident_values", U8),
        Field("number_of_occurrences", U8),
        Field("number_of_tiers", U8),
        Field("number_of_present_demands", U8),
        Field("number_of_present_values", U8),
    ],
)


BT21 = FixedTable(TableId.BT21, ActualRegister, BT21_LAYOUT)


# -- BT22 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class DataSelection:
    """BT22: which source id each BT23 summation / demand / coincident register holds."""

    summation_sources: tuple[int, ...]
    demand_sources: tuple[int, ...]
    demand_is_maximum: tuple[bool, ...]
    coincident_sources: tuple[int, ...]
    coincident_demand_index: tuple[int, ...]


def bt22_layout(register: ActualRegister) -> Layout[DataSelection]:
    """MEP guide, BT22 "Data Selection": arrays dimensioned by BT21.3, BT21.4, BT21.5."""
    return Layout(
        "BT22",
        DataSelection,
        [
            Field("summation_sources", Array(U8, register.number_of_summations)),
            Field("demand_sources", Array(U8, register.number_of_demands)),
            Field("demand_is_maximum", BoolSet(register.number_of_demands)),
            Field("coincident_sources", Array(U8, register.number_of_coincident_values)),
            Field("coincident_demand_index", Array(U8, register.number_of_coincident_values)),
        ],
        exact=True,
        hint=_REREAD,
    )


BT22 = DimensionedTable(TableId.BT22, DataSelection, lambda dims: bt22_layout(dims.register))


# -- BT27 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class PresentRegisterSelection:
    """BT27: the source id of each BT28 present demand and present value, in table order."""

    present_demand_sources: tuple[int, ...]
    present_value_sources: tuple[int, ...]


def bt27_layout(register: ActualRegister) -> Layout[PresentRegisterSelection]:
    """MEP guide, BT27 "Present Register Selection": ARRAY[BT21.8] then ARRAY[BT21.9]."""
    return Layout(
        "BT27",
        PresentRegisterSelection,
        [
            Field("present_demand_sources", Array(U8, register.number_of_present_demands)),
            Field("present_value_sources", Array(U8, register.number_of_present_values)),
        ],
        exact=True,
        hint=_REREAD,
    )


BT27 = DimensionedTable(
    TableId.BT27, PresentRegisterSelection, lambda dims: bt27_layout(dims.register)
)


# -- ET11 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class MfgDimensions:
    """ET11 "MFG Dimension Table".  Fields later firmware added are ``None`` when absent."""

    number_of_devices: int
    config_entry_size: int | None = None
    status_entry_size: int | None = None
    on_demand_queue_size: int | None = None
    on_demand_entry_size: int | None = None
    data_entry_size: int | None = None
    transaction_request_length: int | None = None
    transaction_response_length: int | None = None
    on_demand_write_entry_size: int | None = None
    phase_measurement_data_size: int | None = None
    config_entry_2_size: int | None = None
    number_of_group_ids: int | None = None
    number_of_harmonics: int | None = None
    mbus_multicast_message_length: int | None = None
    et22_alarm_size: int | None = None
    mep_data_sources: int | None = None
    et48_entry_count: int | None = None
    max_critical_event_bitmaps: int | None = None
    et57_entry_count: int | None = None
    time_based_relay_switches: int | None = None
    mep_data_alert_sources: int | None = None
    ram_only_transaction_request_length: int | None = None
    ram_only_transaction_response_length: int | None = None
    mep_channel_count: int | None = None  # firmware 4.0 and higher
    error_caution_screen_count: int | None = None  # firmware 4.30 and higher

    def require(self, name: str) -> int:
        """A dimension a decoder cannot do without; raises if this ET11 read lacked it."""
        value: int | None = getattr(self, name)
        if value is None or value == 0:
            raise InvalidDimensionError(
                f"ET11 field {name!r} is {value!r}, but a table layout depends on it: read all "
                "of ET11 (not a prefix) before decoding ET13/ET14/ET16/ET50"
            )
        return value


# MEP guide, ET11 "MFG Dimension Table".
ET11_LAYOUT: Layout[MfgDimensions] = Layout(
    "ET11",
    MfgDimensions,
    [
        Field("number_of_devices", U8),
        Field("config_entry_size", U8),
        Field("status_entry_size", U8),
        Field("on_demand_queue_size", U8),
        Field("on_demand_entry_size", U8),
        Field("data_entry_size", U16),
        Field("transaction_request_length", U16),
        Field("transaction_response_length", U16),
        Field("on_demand_write_entry_size", U8),
        Field("phase_measurement_data_size", U8),
        Field("config_entry_2_size", U8),
        fill(4),  # 14..17 reserved for internal use
        Field("number_of_group_ids", U8),
        Field("number_of_harmonics", U8),
        Field("mbus_multicast_message_length", U8),
        Field("et22_alarm_size", U8),
        Field("mep_data_sources", U8),
        Field("et48_entry_count", U8),
        Field("max_critical_event_bitmaps", U8),
        Field("et57_entry_count", U8),
        Field("time_based_relay_switches", U8),
        Field("mep_data_alert_sources", U8),
        Field("ram_only_transaction_request_length", U16),
        Field("ram_only_transaction_response_length", U16),
        fill(2),  # 32, 33 reserved (firmware 4.0+)
        Field("mep_channel_count", U8),
        fill(3),  # 35 reserved UINT8, 36 reserved UINT16
        Field("error_caution_screen_count", U8),
    ],
    required=1,
)


# Any prefix ending on a field boundary decodes; encoding leaves trailing ``None`` fields
# out, as older firmware does.
ET11 = FixedTable(TableId.ET11, MfgDimensions, ET11_LAYOUT)


# -- ET55 --------------------------------------------------------------------------------------
#: Values of ET55 "Energy Register Unit": Wh (varh) per count of a cumulative energy register.
ENERGY_REGISTER_UNITS = (1, 10, 100)
#: Offset of "Step Tariff Thresholds" in ET55: Gen 3 meters and modules / Gen 4 meters.
_ET55_STEP_TARIFF_OFFSET = {3: 146, 4: 147}


@dataclass(frozen=True, kw_only=True, slots=True)
class MeterConfiguration:
    """ET55 "Meter Configuration" -- the tariff and energy-unit fields mepgate uses.

    The display/PLC settings between offset 4 and the step tariff thresholds are not decoded
    (they encode as zeros).
    """

    consumption_based_tariff_enabled: bool
    step_tariff_enabled: bool
    step_tariff_thresholds: tuple[int, ...]
    step_tariff_source: int
    step_tariff_tou_id: int
    step_tariff_reset_day: int
    step_tariff_reset_hour: int
    step_tariff_reset_minute: int
    step_tariff_reset_second: int
    mains_cycles_for_rms_voltage: int
    average_rms_voltage_period_s: int
    average_rms_voltage_count: int
    delta_adsup_mv: int
    delta_adinf_mv: int
    delta_prsup_mv: int
    delta_prinf_mv: int
    mvd_time_threshold_lower_cycles: int
    mvd_time_threshold_upper_cycles: int
    mvd_sag_low_percent: int
    mvd_sag_high_percent: int
    mvd_swell_low_percent: int
    energy_register_unit: int
    house_icon_control: int | None = None  # firmware 4.0 and higher
    mbus_discovery_auto_confirmation: bool | None = None


def et55_layout(register: ActualRegister, generation: int) -> Layout[MeterConfiguration]:
    """MEP guide, ET55 "Meter Configuration".

    The offsets after the step tariff thresholds move with the tier count ("A = 146 + 4 *
    (BT20.7 - 1)", 147 on Gen 4).  BT21.7 stands in for BT20.7: the guide's own example reads
    the same tier count (4) from both.
    """
    tiers = register.number_of_tiers
    if tiers < 1 or generation not in _ET55_STEP_TARIFF_OFFSET:
        raise InvalidDimensionError(
            f"ET55 needs at least one tier (BT21 says {tiers}) and generation 3 or 4 "
            f"(got {generation}): {_REREAD}"
        )
    fields = [
        fill(3),
        packed(1, flag("consumption_based_tariff_enabled", 1), flag("step_tariff_enabled", 5)),
        fill(_ET55_STEP_TARIFF_OFFSET[generation] - 4),
        Field("step_tariff_thresholds", Array(U32, tiers - 1)),
        Field("step_tariff_source", U8),  # offset A
        Field("step_tariff_tou_id", U32),
        Field("step_tariff_reset_day", U8),
        Field("step_tariff_reset_hour", U8),
        Field("step_tariff_reset_minute", U8),
        Field("step_tariff_reset_second", U8),
        fill(1),
        Field("mains_cycles_for_rms_voltage", U16),
        Field("average_rms_voltage_period_s", U16),
        Field("average_rms_voltage_count", U16),
        Field("delta_adsup_mv", U32),
        Field("delta_adinf_mv", U32),
        Field("delta_prsup_mv", U32),
        Field("delta_prinf_mv", U32),
        Field("mvd_time_threshold_lower_cycles", U16),
        Field("mvd_time_threshold_upper_cycles", U16),
        Field("mvd_sag_low_percent", U8),
        Field("mvd_sag_high_percent", U8),
        Field("mvd_swell_low_percent", U8),
        Field("energy_register_unit", U8),  # offset A + 39
    ]
    required = len(fields)
    if generation == 4:
        fields.append(
            packed(1, bits("house_icon_control", 0, 1), flag("mbus_discovery_auto_confirmation", 2))
        )
    return Layout("ET55", MeterConfiguration, fields, required=required, hint=_REREAD)


ET55 = DimensionedTable(
    TableId.ET55,
    MeterConfiguration,
    lambda dims: et55_layout(dims.register, dims.generation),
)


def energy_register_unit_offset(register: ActualRegister, generation: int) -> int:
    """Where to partial-read the one-byte ET55 "Energy Register Unit"."""
    return et55_layout(register, generation).offset_of("energy_register_unit")


# -- Dimensions --------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class Dimensions:
    """Everything the dimensioned decoders need, from the tables named on each field."""

    register: ActualRegister  # BT21
    mfg: MfgDimensions  # ET11
    present_selection: PresentRegisterSelection | None = None  # BT27
    load_profile: ActualLoadProfile | None = None  # BT61
    history: ActualLog | None = None  # BT71
    energy_register_unit: int = 1  # ET55 "Energy Register Unit"
    mfg_status_length: int = 9  # BT00.17 "Manufacturer Status Length" (sizes BT03)

    def __post_init__(self) -> None:
        if self.energy_register_unit not in ENERGY_REGISTER_UNITS:
            raise InvalidDimensionError(
                f"ET55 energy register unit is {self.energy_register_unit}; the guide allows "
                f"only {ENERGY_REGISTER_UNITS}. Re-read ET55 (offset from "
                "energy_register_unit_offset())"
            )

    @property
    def generation(self) -> int:
        """4 for Gen 4 meters (ET11 has "MEP Channel Count"), otherwise 3."""
        return 4 if self.mfg.mep_channel_count is not None else 3

    @property
    def mep_channel_count(self) -> int:
        """ET50 entries: ET11.34 on firmware 4.0+, one MEP client before that."""
        return self.mfg.mep_channel_count or 1
