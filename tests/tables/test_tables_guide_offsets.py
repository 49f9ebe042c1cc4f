"""Layouts against the offsets and sizes printed in the MEP guide (not against each other)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mepgate.tables import clock, dimensions, events, identity, load_profile, mep, registers, status
from mepgate.tables._layout import LayoutInfo
from mepgate.tables.errors import TableLengthError
from mepgate.tables.profiles import gen3_3phase, gen4_3phase
from mepgate.tables.timestamps import STimeDate

G4 = gen4_3phase().dims
G3 = gen3_3phase().dims
assert G4.history is not None
G4_LOG = G4.history

# (layout, field, offset from the guide's "Offset" column)
GUIDE_OFFSETS: list[tuple[LayoutInfo, str, int]] = [
    (identity.BT00_LAYOUT, "manufacturer", 3),
    (identity.BT00_LAYOUT, "nameplate_type", 7),
    (identity.BT00_LAYOUT, "max_response_data_length", 10),
    (identity.BT00_LAYOUT, "dim_basic_tables_used", 13),
    (identity.BT00_LAYOUT, "manufacturer_status_length", 17),
    (identity.BT00_LAYOUT, "number_of_pending_tables", 18),
    (identity.BT01_LAYOUT, "model", 4),
    (identity.BT01_LAYOUT, "firmware_version", 14),
    (identity.BT01_LAYOUT, "firmware_revision", 15),
    (identity.ET03_LAYOUT, "image_crc", 137),
    (identity.ET04_LAYOUT, "transceiver_id", 4),
    (identity.ET04_LAYOUT, "subnet_id", 10),
    (identity.ET04_LAYOUT, "neuron_phase", 12),
    (identity.ET04_LAYOUT, "rated_frequency_hz", 13),
    (identity.ET04_LAYOUT, "program_id", 14),
    (identity.ET04_LAYOUT, "self_identification", 22),
    (identity.ET04_LAYOUT, "pk_access_disabled", 52),
    (identity.ET04_LAYOUT, "max_total_energy_registers", 55),
    (identity.ET04_LAYOUT, "registration_current_ma", 56),
    (identity.ET04_LAYOUT, "rated_voltage_v", 60),
    (identity.ET04_LAYOUT, "inactive_current_l3", 62),
    (identity.ET04_LAYOUT, "dst_off_time_delta_min", 63),
    (identity.ET04_LAYOUT, "stop_mode_days", 67),
    (identity.ET04_LAYOUT, "neuron_state", 72),
    (identity.ET04_LAYOUT, "broadcast_time", 76),
    (identity.ET04_LAYOUT, "reverse_energy_current_threshold_ma", 88),
    (identity.ET04_LAYOUT, "plc_signal", 90),
    (identity.ET04_LAYOUT, "idt_version", 116),
    (identity.ET04_LAYOUT, "security_mode", 127),
    (identity.ET04_LAYOUT, "mep_sequence_numbers", 129),
    (dimensions.BT21_LAYOUT, "time_remaining", 0),
    (dimensions.BT21_LAYOUT, "self_read_demand_reset", 1),
    (dimensions.BT21_LAYOUT, "number_of_summations", 3),
    (dimensions.BT21_LAYOUT, "number_of_tiers", 7),
    (dimensions.BT21_LAYOUT, "number_of_present_values", 9),
    (dimensions.ET11_LAYOUT, "data_entry_size", 5),
    (dimensions.ET11_LAYOUT, "transaction_request_length", 7),
    (dimensions.ET11_LAYOUT, "transaction_response_length", 9),
    (dimensions.ET11_LAYOUT, "config_entry_2_size", 13),
    (dimensions.ET11_LAYOUT, "number_of_group_ids", 18),
    (dimensions.ET11_LAYOUT, "mep_data_sources", 22),
    (dimensions.ET11_LAYOUT, "mep_data_alert_sources", 27),
    (dimensions.ET11_LAYOUT, "ram_only_transaction_response_length", 30),
    (dimensions.ET11_LAYOUT, "mep_channel_count", 34),
    (dimensions.ET11_LAYOUT, "error_caution_screen_count", 38),
    (clock.BT52_LAYOUT, "day_of_week", 6),
    (clock.BT55_LAYOUT, "dst_applied", 6),
    (clock.BT55_LAYOUT, "current_tier", 7),
    (clock.BT55_LAYOUT, "season", 7),
    (events.BT71_LAYOUT, "history_argument_length", 3),
    (events.BT71_LAYOUT, "number_of_history_entries", 5),
    (events.bt74_layout(G4), "number_of_valid_entries", 1),
    (events.bt74_layout(G4), "last_entry_element", 3),
    (events.bt74_layout(G4), "last_entry_sequence_number", 5),
    (events.bt74_layout(G4), "number_of_unread_entries", 9),
    (events.bt74_layout(G4), "entries", 11),
    (events.BT74_HEADER_LAYOUT, "last_entry_element", 3),
    (events.BT74_HEADER_LAYOUT, "number_of_unread_entries", 9),
    # BT74 record offsets relative to the record (the guide prints the first's: 11 + these).
    (events.bt74_entry_layout(G4_LOG), "sequence_number", 17 - 11),
    (events.bt74_entry_layout(G4_LOG), "user_id", 19 - 11),
    (events.bt74_entry_layout(G4_LOG), "event_id", 21 - 11),
    (events.bt74_entry_layout(G4_LOG), "argument", 23 - 11),
    (load_profile.lp_dimension_layout("BT61", 1), "simple_interval_status", 4),
    (load_profile.lp_dimension_layout("BT61", 1), "int32_supported", 6),
    (load_profile.lp_dimension_layout("BT61", 1), "data_sets", 7),
    (load_profile.DATA_SET_STATUS, "number_of_valid_blocks", 1),
    (load_profile.DATA_SET_STATUS, "last_block_sequence_number", 5),
    (load_profile.DATA_SET_STATUS, "number_of_unread_blocks", 9),
    (load_profile.DATA_SET_STATUS, "number_of_valid_intervals", 11),
    (status.bt03_layout(G4), "disconnect_switch_error", 1),
    (status.bt03_layout(G4), "neutral_current_deviation", 3),
    (status.bt03_layout(G4), "manufacturer_status", 4),
    # ET13 entry offsets are relative to the entry (the guide prints the first entry's).
    (mep.et13_entry_layout(G4, 0), "baud_rate", 6),
    (mep.et13_entry_layout(G4, 0), "customer_id", 8),
    (mep.et13_entry_layout(G4, 0), "security_key", 30),
    (mep.et13_entry_layout(G4, 0), "to_ms", 64),
    (mep.et13_entry_layout(G4, 4), "scheduled_read_request", 8),  # ET13 alert flags
    (mep.et13_entry_layout(G4, 4), "delta_data_alert", 8),
    (mep.et13_entry_layout(G4, 4), "downlink_data", 9),
    (mep.et16_entry_layout(G4, 0), "security_failed", 6),
    (mep.et16_entry_layout(G4, 0), "telegram_length", 7),
    (mep.et16_entry_layout(G4, 4), "read_count", 7),
    (mep.et16_entry_layout(G4, 4), "data_length", 9),
    (mep.et16_entry_layout(G4, 4), "data_area", 11),
    (mep.et50_entry_layout(G4), "registered", 30),
    (mep.et50_entry_layout(G4), "icon_display_control", 31),
    (mep.et50_entry_layout(G4), "display_data", 31 + 2 * 6),
    (mep.et50_entry_layout(G4), "house_icon", 31 + 6 * 6),
    (mep.et50_entry_layout(G4), "long_bar", 32 + 6 * 6),
    # ET55: A = 146 + 4 * (tiers - 1) on Gen 3, 147 + ... on Gen 4; unit at A + 39.
    (dimensions.et55_layout(G3.register, 3), "step_tariff_thresholds", 146),
    (dimensions.et55_layout(G3.register, 3), "step_tariff_source", 146 + 4 * 3),
    (dimensions.et55_layout(G3.register, 3), "mains_cycles_for_rms_voltage", 158 + 10),
    (dimensions.et55_layout(G3.register, 3), "energy_register_unit", 158 + 39),
    (dimensions.et55_layout(G4.register, 4), "energy_register_unit", 159 + 39),
    (dimensions.et55_layout(G4.register, 4), "house_icon_control", 159 + 40),
]


@pytest.mark.parametrize(
    ("layout", "field", "offset"),
    GUIDE_OFFSETS,
    ids=[f"{lay.name}.{f}" for lay, f, _ in GUIDE_OFFSETS],
)
def test_field_offset_matches_guide(layout: LayoutInfo, field: str, offset: int) -> None:
    assert layout.offset_of(field) == offset


def test_et14_entry_is_36_bytes_and_header_6() -> None:
    # Guide: entries start at offset 6; handle 6, status 8, attempts 12, alarms 20,
    # device alarms 29, status read timestamp 30, last read attempt 36 (first entry).
    entry = mep.et14_entry_layout(G4)
    assert entry.size == 36
    assert mep.et14_layout(G4).offset_of("entries") == 6
    expected = {
        "device_handle": 6,
        "device_status": 8,
        "billing_read_length": 10,
        "read_attempts": 12,
        "read_answers": 16,
        "billing_data_collected": 20,
        "mbus_primary_address": 22,
        "mep_device_alarms": 29,
        "status_read_time": 30,
        "last_read_attempt": 36,
    }
    assert {name: 6 + entry.offset_of(name) for name in expected} == expected


def test_fixed_table_sizes() -> None:
    assert identity.BT00_LAYOUT.size == 19
    assert identity.BT01_LAYOUT.size == 16
    assert identity.ET03_LAYOUT.size == 143
    assert identity.ET04_LAYOUT.size == 137
    assert dimensions.BT21_LAYOUT.size == 10
    assert dimensions.ET11_LAYOUT.size == 39
    assert clock.BT52_LAYOUT.size == 7
    assert clock.BT55_LAYOUT.size == 9
    assert load_profile.DATA_SET_STATUS.size == 13
    assert mep.et13_entry_layout(G4, 0).size == 66
    assert mep.et13_entry_layout(G4, 4).size == 66
    assert mep.et16_entry_layout(G4, 0).size == 517
    assert mep.et50_entry_layout(G4).size == 35 + 6 * 6


def test_bt23_size_follows_bt21_offset_chart() -> None:
    # Guide chart: A = 1 with the demand reset counter, B = A + 4 * summations,
    # C = B + demands * DmdRcd, D = C + coincidents * CoinRcd; then tiers repeat the block.
    reg = G3.register  # 15 summations, 8 demands, 1 occurrence, date/time + cum + cont
    lay = registers.bt23_layout(reg)
    dmd_rcd = 5 * 1 + 4 + 4 + 4 * 1
    block = 4 * 15 + 8 * dmd_rcd
    assert lay.offset_of("total") == 1
    assert lay.offset_of("tiers") == 1 + block
    assert lay.size == 1 + block * (1 + reg.number_of_tiers)


def test_bt28_offsets_follow_bt21_and_bt27() -> None:
    # Guide: present value n at (A + 4) * BT21.8 + 4n, A = 3 with time remaining.
    lay = registers.bt28_layout(G4)
    assert lay.offset_of("present_values") == 4 * 8
    assert lay.size == 4 * 8 + 4 * 84
    timed = dimensions.Dimensions(
        register=replace(G4.register, time_remaining=True),
        mfg=G4.mfg,
    )
    assert registers.bt28_layout(timed).offset_of("present_values") == 7 * 8


def test_bt64_block_size_follows_bt61() -> None:
    # Guide: block = STIME_DATE (5) [+ 4 * ch end readings] + SET((intervals + 7) / 8)
    # + intervals * ((ch / 2 + 1) + 4 * ch).
    block = load_profile.lp_block_layout(G4, 1)
    ch, n = 4, 96
    assert block.offset_of("interval_recorded") == 5
    assert block.offset_of("intervals") == 5 + (n + 7) // 8
    assert block.size == 5 + (n + 7) // 8 + n * ((ch // 2 + 1) + 4 * ch)
    assert load_profile.block_offset(G4, 3) == 3 * block.size


def test_bt64_interval_offsets_and_header_for_partial_reads() -> None:
    # Guide: an interval at 5 + SET((n + 7) / 8) + k * ((ch / 2 + 1) + 4 * ch) in its block.
    block = load_profile.lp_block_layout(G4, 1)
    header = load_profile.lp_block_header_layout(G4, 1)
    assert header.size == block.offset_of("intervals") == 5 + 12
    assert load_profile.lp_interval_layout(G4, 1).size == 3 + 16
    assert load_profile.interval_offset(G4, 2, 5) == 2 * block.size + 17 + 5 * 19
    value = load_profile.LoadProfileBlock(
        end_time=STimeDate(year=2025, month=3, day=1, hour=12, minute=15),
        interval_recorded=tuple(i < 2 for i in range(96)),
        intervals=tuple(
            load_profile.Interval(
                status=load_profile.IntervalStatus(common_flags=i % 3 * 2, channels=(0,) * 4),
                values=(1000 + i, 200, 30, 4),
            )
            for i in range(96)
        ),
    )
    data = block.encode(value)
    head = load_profile.decode_lp_block_header(data[: header.size], G4)
    assert head.end_time == value.end_time
    assert head.intervals is None
    assert head.interval_recorded == value.interval_recorded
    start = load_profile.interval_offset(G4, 0, 1)
    got = load_profile.decode_lp_intervals(data[start : start + 3 * 19], G4)
    assert [i.values for i in got] == [(1001, 200, 30, 4), (1002, 200, 30, 4), (1003, 200, 30, 4)]
    assert [i.status.common_flags for i in got if i.status] == [2, 4, 0]
    with pytest.raises(TableLengthError):
        load_profile.decode_lp_intervals(data[start : start + 20], G4)
