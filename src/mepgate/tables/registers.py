"""Register data: BT23 "Current Register Data" and BT28 "Present Register Data".

Both are dimensioned by BT21; BT28's values are identified by BT27's source ids, BT23's
summations by their position (the guide numbers them 0..18).  Cumulative energy summations are
stored in units of ET55's "Energy Register Unit" (1, 10 or 100 Wh/varh); :func:`register_totals`
applies it so every ``*_wh`` / ``*_varh`` / ``*_vah`` field really is in that unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from mepgate.tables._layout import (
    NI_FMAT1,
    NI_FMAT2,
    STIME_DATE,
    TIME,
    U8,
    Array,
    Field,
    Layout,
)
from mepgate.tables.dimensions import ActualRegister, Dimensions
from mepgate.tables.ids import TableId
from mepgate.tables.sources import SOURCE_FIELDS, source_field
from mepgate.tables.table import DimensionedTable
from mepgate.tables.timestamps import STimeDate, TimeOfDay

_REREAD = "re-read BT21 and BT27 (the meter's register configuration may have changed)"

# -- BT23 --------------------------------------------------------------------------------------
#: MEP guide, BT23 "Current Register Data": the summation numbers 0..18 of a data block.
SUMMATION_FIELDS = (
    "forward_active_energy_wh",
    "reverse_active_energy_wh",
    "import_reactive_energy_varh",
    "export_reactive_energy_varh",
    "power_outage_duration_s",
    "power_outage_count",
    "forward_plus_reverse_active_energy_wh",
    "forward_minus_reverse_active_energy_wh",
    "pulse_input_1_count",
    "pulse_input_2_count",
    "error_count",
    "q1_reactive_energy_varh",
    "q2_reactive_energy_varh",
    "q3_reactive_energy_varh",
    "q4_reactive_energy_varh",
    "q1_apparent_energy_vah",
    "q2_apparent_energy_vah",
    "q3_apparent_energy_vah",
    "q4_apparent_energy_vah",
)
_ENERGY_SUFFIXES = ("_wh", "_varh", "_vah")
SUMMATION_SIZE = NI_FMAT1.size  # bytes of one summation on the wire


@dataclass(frozen=True, kw_only=True, slots=True)
class DemandRecord:
    """BT23 DmdRcd: one demand register; optional parts follow BT21's flags."""

    event_times: tuple[STimeDate, ...] | None = None  # IF BT21 date/time field
    cumulative_demand: int | None = None  # IF BT21 cumulative demand
    continuous_cumulative_demand: int | None = None  # IF BT21 continuous cumulative demand
    demands: tuple[int, ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DataBlock:
    """BT23 data block (the totals, or one tier): summations, demands, coincidents."""

    summations: tuple[int, ...] | None = None
    demands: tuple[DemandRecord, ...] | None = None
    coincidents: tuple[tuple[int, ...], ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CurrentRegisterData:
    """BT23 as sent (raw register counts; see :func:`register_totals` for units)."""

    nbr_demand_resets: int | None = None  # IF BT21 demand reset counter
    total: DataBlock | None = None
    tiers: tuple[DataBlock, ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RegisterTotals:
    """One BT23 data block's summations by name, energies scaled to Wh / varh / VAh."""

    energy_register_unit: int
    forward_active_energy_wh: int | None = None
    reverse_active_energy_wh: int | None = None
    import_reactive_energy_varh: int | None = None
    export_reactive_energy_varh: int | None = None
    power_outage_duration_s: int | None = None
    power_outage_count: int | None = None
    forward_plus_reverse_active_energy_wh: int | None = None
    forward_minus_reverse_active_energy_wh: int | None = None
    pulse_input_1_count: int | None = None
    pulse_input_2_count: int | None = None
    error_count: int | None = None
    q1_reactive_energy_varh: int | None = None
    q2_reactive_energy_varh: int | None = None
    q3_reactive_energy_varh: int | None = None
    q4_reactive_energy_varh: int | None = None
    q1_apparent_energy_vah: int | None = None
    q2_apparent_energy_vah: int | None = None
    q3_apparent_energy_vah: int | None = None
    q4_apparent_energy_vah: int | None = None


def register_totals(block: DataBlock, energy_register_unit: int) -> RegisterTotals:
    """Name a data block's summations; multiply energies by ET55's energy register unit."""
    named: dict[str, int] = {}
    for name, raw in zip(SUMMATION_FIELDS, block.summations or (), strict=False):
        named[name] = raw * energy_register_unit if name.endswith(_ENERGY_SUFFIXES) else raw
    return RegisterTotals(energy_register_unit=energy_register_unit, **named)


def _demand_record_layout(reg: ActualRegister) -> Layout[DemandRecord]:
    occ = reg.number_of_occurrences
    fields: list[Field] = []
    if reg.date_time_field:
        fields.append(Field("event_times", Array(STIME_DATE, occ)))
    if reg.cumulative_demand:
        fields.append(Field("cumulative_demand", NI_FMAT1))
    if reg.continuous_cumulative_demand:
        fields.append(Field("continuous_cumulative_demand", NI_FMAT1))
    fields.append(Field("demands", Array(NI_FMAT2, occ)))
    return Layout("BT23 DmdRcd", DemandRecord, fields, required=0, hint=_REREAD)


def _data_block_layout(reg: ActualRegister) -> Layout[DataBlock]:
    return Layout(
        "BT23 data block",
        DataBlock,
        [
            Field("summations", Array(NI_FMAT1, reg.number_of_summations)),
            Field("demands", Array(_demand_record_layout(reg), reg.number_of_demands)),
            Field(
                "coincidents",
                Array(Array(NI_FMAT2, reg.number_of_occurrences), reg.number_of_coincident_values),
            ),
        ],
        required=0,
        hint=_REREAD,
    )


def bt23_layout(reg: ActualRegister) -> Layout[CurrentRegisterData]:
    """MEP guide, BT23 "Current Register Data": [resets] + total block + BT21.7 tier blocks.

    Any prefix ending on a field boundary decodes (clients often read only the first summations).
    """
    block = _data_block_layout(reg)
    fields: list[Field] = []
    if reg.demand_reset_counter:
        fields.append(Field("nbr_demand_resets", U8))
    fields += [Field("total", block), Field("tiers", Array(block, reg.number_of_tiers))]
    return Layout("BT23", CurrentRegisterData, fields, required=0, exact=True, hint=_REREAD)


def tier_summation_spans(reg: ActualRegister, summations: int) -> tuple[tuple[int, int], ...]:
    """``(offset, count)`` in BT23 of the first ``summations`` summations of each tier data
    block, tier 0 first (MEP guide, BT23: the tier blocks follow the total block).

    Empty when BT21 configures no tiers or no summations.
    """
    count = min(summations, reg.number_of_summations) * SUMMATION_SIZE
    if count == 0:
        return ()
    block = _data_block_layout(reg)
    first = bt23_layout(reg).offset_of("tiers") + block.offset_of("summations")
    return tuple((first + tier * block.size, count) for tier in range(reg.number_of_tiers))


def decode_data_block(data: bytes, reg: ActualRegister) -> DataBlock:
    """Decode one BT23 data block, or a prefix of it (a partial read of its first summations)."""
    return _data_block_layout(reg).decode(data)


# Any prefix read at offset 0 decodes; encoding leaves trailing ``None`` parts out.
BT23 = DimensionedTable(TableId.BT23, CurrentRegisterData, lambda dims: bt23_layout(dims.register))


# -- BT28 --------------------------------------------------------------------------------------
#: The guide's BT28 present values 0..83 as source ids: what BT27 lists on a meter whose
#: selection has not been changed.  Firmware before 3.10 has 22 of them, 3.10: 26, 3.50: 41,
#: 3.70: 55, 4.0: 72, 4.10: 75, 4.30: 84.
GUIDE_PRESENT_VALUE_SOURCES: tuple[int, ...] = (
    *range(8, 26),
    *range(81, 85),
    *range(104, 108),
    *range(185, 200),
    *range(202, 245),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class PresentValues:
    """BT28 present values by name (``None``: the meter does not record that source)."""

    forward_active_power_w: int | None = None
    reverse_active_power_w: int | None = None
    import_reactive_power_var: int | None = None
    export_reactive_power_var: int | None = None
    rms_current_l1_ma: int | None = None
    rms_current_l2_ma: int | None = None
    rms_current_l3_ma: int | None = None
    rms_voltage_l1_mv: int | None = None
    rms_voltage_l2_mv: int | None = None
    rms_voltage_l3_mv: int | None = None
    power_factor_l1_milli: int | None = None
    frequency_mhz: int | None = None
    apparent_power_va: int | None = None
    power_factor_l2_milli: int | None = None
    power_factor_l3_milli: int | None = None
    sin_phase_angle_l1_milli: int | None = None
    sin_phase_angle_l2_milli: int | None = None
    sin_phase_angle_l3_milli: int | None = None
    forward_active_power_post_ct_vt_w: int | None = None
    reverse_active_power_post_ct_vt_w: int | None = None
    import_reactive_power_post_ct_vt_var: int | None = None
    export_reactive_power_post_ct_vt_var: int | None = None
    q1_reactive_power_var: int | None = None
    q2_reactive_power_var: int | None = None
    q3_reactive_power_var: int | None = None
    q4_reactive_power_var: int | None = None
    forward_active_power_l1_w: int | None = None
    forward_active_power_l2_w: int | None = None
    forward_active_power_l3_w: int | None = None
    reverse_active_power_l1_w: int | None = None
    reverse_active_power_l2_w: int | None = None
    reverse_active_power_l3_w: int | None = None
    forward_active_power_l1_post_ct_vt_w: int | None = None
    forward_active_power_l2_post_ct_vt_w: int | None = None
    forward_active_power_l3_post_ct_vt_w: int | None = None
    reverse_active_power_l1_post_ct_vt_w: int | None = None
    reverse_active_power_l2_post_ct_vt_w: int | None = None
    reverse_active_power_l3_post_ct_vt_w: int | None = None
    rms_current_l1_post_ct_ma: int | None = None
    rms_current_l2_post_ct_ma: int | None = None
    rms_current_l3_post_ct_ma: int | None = None
    continuous_rms_voltage_l1_mv: int | None = None
    continuous_rms_voltage_l2_mv: int | None = None
    continuous_rms_voltage_l3_mv: int | None = None
    average_rms_voltage_l1_mv: int | None = None
    average_rms_voltage_l2_mv: int | None = None
    average_rms_voltage_l3_mv: int | None = None
    average_forward_active_power_w: int | None = None
    average_reverse_active_power_w: int | None = None
    average_forward_active_power_l1_w: int | None = None
    average_forward_active_power_l2_w: int | None = None
    average_forward_active_power_l3_w: int | None = None
    average_reverse_active_power_l1_w: int | None = None
    average_reverse_active_power_l2_w: int | None = None
    average_reverse_active_power_l3_w: int | None = None
    apparent_power_q1_va: int | None = None
    apparent_power_q2_va: int | None = None
    apparent_power_q3_va: int | None = None
    apparent_power_q4_va: int | None = None
    apparent_power_q1_l1_va: int | None = None
    apparent_power_q2_l1_va: int | None = None
    apparent_power_q3_l1_va: int | None = None
    apparent_power_q4_l1_va: int | None = None
    apparent_power_q1_l2_va: int | None = None
    apparent_power_q2_l2_va: int | None = None
    apparent_power_q3_l2_va: int | None = None
    apparent_power_q4_l2_va: int | None = None
    apparent_power_q1_l3_va: int | None = None
    apparent_power_q2_l3_va: int | None = None
    apparent_power_q3_l3_va: int | None = None
    apparent_power_q4_l3_va: int | None = None
    neutral_current_ma: int | None = None
    average_rms_current_l1_ma: int | None = None
    average_rms_current_l2_ma: int | None = None
    average_rms_current_l3_ma: int | None = None
    voltage_angle_l1_l2_centideg: int | None = None
    voltage_angle_l2_l3_centideg: int | None = None
    voltage_angle_l3_l1_centideg: int | None = None
    import_reactive_power_l1_var: int | None = None
    import_reactive_power_l2_var: int | None = None
    import_reactive_power_l3_var: int | None = None
    export_reactive_power_l1_var: int | None = None
    export_reactive_power_l2_var: int | None = None
    export_reactive_power_l3_var: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PresentDemand:
    """BT28 PresDmdRcd."""

    time_remaining: TimeOfDay | None = None  # IF BT21 time remaining
    value: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PresentRegisterData:
    """BT28 as sent, plus the BT27 source of each value and the values by name."""

    present_demands: tuple[PresentDemand, ...] | None = None
    present_values: tuple[int, ...] | None = None
    present_value_sources: tuple[int, ...] = ()
    readings: PresentValues = PresentValues()

    def by_source(self) -> dict[int, int]:
        """Source id -> value for every value present."""
        return dict(zip(self.present_value_sources, self.present_values or (), strict=False))


_PRESENT_VALUE_NAMES = frozenset(SOURCE_FIELDS[s] for s in GUIDE_PRESENT_VALUE_SOURCES)


def present_value_sources(dims: Dimensions) -> tuple[int, ...]:
    """BT27's present value sources, or the guide's default order when BT27 was not read."""
    n = dims.register.number_of_present_values
    if dims.present_selection is not None:
        return dims.present_selection.present_value_sources[:n]
    return GUIDE_PRESENT_VALUE_SOURCES[:n]


def _build_bt28(
    sources: tuple[int, ...],
    *,
    present_demands: tuple[PresentDemand, ...] | None,
    present_values: tuple[int, ...] | None,
) -> PresentRegisterData:
    named = {
        source_field(s): v
        for s, v in zip(sources, present_values or (), strict=False)
        if source_field(s) in _PRESENT_VALUE_NAMES
    }
    return PresentRegisterData(
        present_demands=present_demands,
        present_values=present_values,
        present_value_sources=sources,
        readings=PresentValues(**named),
    )


def bt28_layout(dims: Dimensions) -> Layout[PresentRegisterData]:
    """MEP guide, BT28 "Present Register Data": ARRAY[BT21.8] of PresDmdRcd, ARRAY[BT21.9].

    The guide's offset formula omits the 4-byte size of each present value; the layout
    uses (3 if BT21 time remaining else 0) + 4 bytes per present demand, then 4 per value.
    A table with fewer values than BT21 announces (older firmware, or a short read) decodes the
    values it has.
    """
    reg = dims.register
    demand_fields = [Field("value", NI_FMAT2)]
    if reg.time_remaining:
        demand_fields.insert(0, Field("time_remaining", TIME))
    demand = Layout("BT28 PresDmdRcd", PresentDemand, demand_fields, hint=_REREAD)
    return Layout(
        "BT28",
        partial(_build_bt28, present_value_sources(dims)),
        [
            Field("present_demands", Array(demand, reg.number_of_present_demands)),
            Field("present_values", Array(NI_FMAT1, reg.number_of_present_values)),
        ],
        required=0,
        exact=True,
        hint=_REREAD,
    )


# The value names come from BT27 (``dims.present_selection``); encoding uses the raw
# ``present_demands`` / ``present_values``.
BT28 = DimensionedTable(TableId.BT28, PresentRegisterData, bt28_layout)


def present_values_in_order(readings: PresentValues, dims: Dimensions) -> tuple[int, ...]:
    """Raw BT28 values in BT27 order from named readings (missing names encode as 0)."""
    return tuple(getattr(readings, source_field(s), None) or 0 for s in present_value_sources(dims))
