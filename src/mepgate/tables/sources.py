"""Measurement source ids (MEP guide, BT22 "Data Selection", list "Source IDs").

BT22 (summations, demands) and BT27 (present values) name their registers by these ids.  Each id
maps to one field name that states its unit; tier sources use the guide's 0-based tier index
(``T0`` is shown as "Tier 1" on the meter's LCD).
"""

from __future__ import annotations

_TIER_ITEMS = (
    "forward_active_energy_wh",
    "reverse_active_energy_wh",
    "import_reactive_energy_varh",
    "export_reactive_energy_varh",
    "power_off_min",
    "power_outage_count",
    "forward_plus_reverse_active_energy_wh",
    "forward_minus_reverse_active_energy_wh",
    "pulse_input_1_count",
    "pulse_input_2_count",
    "error_count",
)
_PHASES = ("l1", "l2", "l3")
_QUADRANTS = ("q1", "q2", "q3", "q4")


def _build() -> dict[int, str]:
    names: list[str] = [
        "forward_active_energy_wh",  # 0
        "reverse_active_energy_wh",
        "import_reactive_energy_varh",
        "export_reactive_energy_varh",
        "power_off_s",
        "power_outage_count",
        "forward_plus_reverse_active_energy_wh",
        "forward_minus_reverse_active_energy_wh",
        "forward_active_power_w",  # 8
        "reverse_active_power_w",
        "import_reactive_power_var",
        "export_reactive_power_var",
        *(f"rms_current_{p}_ma" for p in _PHASES),  # 12
        *(f"rms_voltage_{p}_mv" for p in _PHASES),  # 15
        "power_factor_l1_milli",  # 18
        "frequency_mhz",
        "apparent_power_va",
        "power_factor_l2_milli",
        "power_factor_l3_milli",
        *(f"sin_phase_angle_{p}_milli" for p in _PHASES),  # 23
        "pulse_input_1_count",  # 26
        "pulse_input_2_count",
        "error_count",
        *(f"tier{t}_{item}" for t in range(4) for item in _TIER_ITEMS),  # 29..72
        *(f"mep_device{d}_counter{c}" for d in range(1, 5) for c in (1, 2)),  # 73..80
        "forward_active_power_post_ct_vt_w",  # 81
        "reverse_active_power_post_ct_vt_w",
        "import_reactive_power_post_ct_vt_var",
        "export_reactive_power_post_ct_vt_var",
        "unused_85",
        "unused_86",
        "unused_87",
        *(f"present_demand_{n}" for n in range(1, 9)),  # 88..95
        *(f"previous_demand_{n}" for n in range(1, 9)),  # 96..103
        *(f"{q}_reactive_power_var" for q in _QUADRANTS),  # 104
        *(f"{q}_reactive_energy_varh" for q in _QUADRANTS),  # 108
        *(f"mapped_source_{n}" for n in range(112, 164)),  # 112..163
        *(f"min_voltage_{p}_mv" for p in _PHASES),  # 164
        *(f"max_voltage_{p}_mv" for p in _PHASES),  # 167
        "max_forward_active_power_w",  # 170
        "max_reverse_active_power_w",
        *(f"max_reactive_power_{q}_var" for q in _QUADRANTS),  # 172
        "timestamp_previous_source",  # 176
        "max_forward_active_power_post_ct_vt_w",
        "max_reverse_active_power_post_ct_vt_w",
        *(f"max_forward_active_power_{p}_post_ct_vt_w" for p in _PHASES),  # 179
        *(f"max_reverse_active_power_{p}_post_ct_vt_w" for p in _PHASES),  # 182
        *(f"forward_active_power_{p}_w" for p in _PHASES),  # 185
        *(f"reverse_active_power_{p}_w" for p in _PHASES),  # 188
        *(f"forward_active_power_{p}_post_ct_vt_w" for p in _PHASES),  # 191
        *(f"reverse_active_power_{p}_post_ct_vt_w" for p in _PHASES),  # 194
        *(f"rms_current_{p}_post_ct_ma" for p in _PHASES),  # 197
        "reserved_200",
        "load_profile_interval_time_adjustment",
        *(f"continuous_rms_voltage_{p}_mv" for p in _PHASES),  # 202
        *(f"average_rms_voltage_{p}_mv" for p in _PHASES),  # 205
        "average_forward_active_power_w",  # 208
        "average_reverse_active_power_w",
        *(f"average_forward_active_power_{p}_w" for p in _PHASES),  # 210
        *(f"average_reverse_active_power_{p}_w" for p in _PHASES),  # 213
        *(f"apparent_power_{q}_va" for q in _QUADRANTS),  # 216
        *(f"apparent_power_{q}_{p}_va" for p in _PHASES for q in _QUADRANTS),  # 220..231
        "neutral_current_ma",  # 232
        *(f"average_rms_current_{p}_ma" for p in _PHASES),  # 233
        "voltage_angle_l1_l2_centideg",  # 236 (1/100 degree)
        "voltage_angle_l2_l3_centideg",
        "voltage_angle_l3_l1_centideg",
        *(f"import_reactive_power_{p}_var" for p in _PHASES),  # 239
        *(f"export_reactive_power_{p}_var" for p in _PHASES),  # 242..244
    ]
    return dict(enumerate(names))


#: source id -> unit-explicit field name (ids 0..244 of the guide's list).
SOURCE_FIELDS: dict[int, str] = _build()
#: field name -> source id.
SOURCE_IDS: dict[str, int] = {name: sid for sid, name in SOURCE_FIELDS.items()}


def source_field(source_id: int) -> str:
    """The field name for a source id; ids the guide does not list get ``source_<id>``."""
    return SOURCE_FIELDS.get(source_id, f"source_{source_id}")
