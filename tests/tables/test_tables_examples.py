"""Worked bytes from the MEP guide, older firmware, table ids, and error messages."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest

from mepgate.errors import LocalProtocolError, RemoteProtocolError
from mepgate.proto.procedures import ProcedureCall
from mepgate.tables import clock, dimensions, events, identity, load_profile, mep, registers, status
from mepgate.tables._layout import Field, Layout
from mepgate.tables.dimensions import Dimensions, PresentRegisterSelection
from mepgate.tables.errors import (
    InvalidDimensionError,
    TruncatedTableError,
    UnknownTableError,
)
from mepgate.tables.ids import TableId, describe, parse_table_id, table_name
from mepgate.tables.profiles import PROFILES, gen3_1phase, gen3_3phase, gen4_3phase
from mepgate.tables.registry import decode_table, to_json
from mepgate.tables.sources import SOURCE_FIELDS

G4 = gen4_3phase().dims
G3 = gen3_3phase().dims
G3_1P = gen3_1phase().dims


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- BT21 -------------------------------------------------------------------------------------
def test_bt21_guide_transaction_example() -> None:
    # MEP guide, "Example Transaction - Multiple Commands": third response, BT21 offset 0.
    reg = dimensions.BT21.decode(h("3F 0E 0C 0F 08 00 01 04 08 1A"))
    assert reg.date_time_field
    assert reg.demand_reset_counter
    assert reg.continuous_cumulative_demand
    assert not reg.time_remaining
    assert reg.self_read_sequence_number
    assert reg.weekly_self_read
    assert (
        reg.number_of_self_reads,
        reg.number_of_summations,
        reg.number_of_demands,
        reg.number_of_coincident_values,
        reg.number_of_occurrences,
        reg.number_of_tiers,
        reg.number_of_present_demands,
        reg.number_of_present_values,
    ) == (12, 15, 8, 0, 1, 4, 8, 26)


def test_bt21_tier_count_is_byte_7() -> None:
    # Every count byte distinct, so reading the tiers from any other byte would show.
    reg = dimensions.BT21.decode(h("00 00 02 03 04 05 06 07 08 09"))
    assert reg.number_of_tiers == 7
    assert reg.number_of_occurrences == 6
    assert reg.number_of_present_demands == 8
    one_tier = replace(reg, number_of_tiers=1)
    block = registers.bt23_layout(reg).offset_of("tiers")  # no counter: total block at 0
    assert registers.bt23_layout(reg).size == block * 8
    assert registers.bt23_layout(one_tier).size == block * 2


# -- BT23 -------------------------------------------------------------------------------------
# MEP guide, RC4 Example 1: response data of a 44-byte BT23 read at offset 0.
RC4_EXAMPLE_1_BT23 = h(
    "00 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 00 08 00 00 00 03 00"
    "00 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 00 00 00 06 00 00 00"
)


def test_bt23_rc4_example_1() -> None:
    # 44 bytes = 11 summations without a demand reset counter: a meter whose demand is not
    # configured (the gen3-1phase profile).  LSB first: 8 s outage, 3 outages, 6 errors.
    assert len(RC4_EXAMPLE_1_BT23) == 44
    data = registers.BT23.decode(RC4_EXAMPLE_1_BT23, G3_1P)
    assert data.nbr_demand_resets is None
    assert data.total is not None
    assert data.total.summations == (0, 0, 0, 0, 8, 3, 0, 0, 0, 0, 6)
    assert data.total.demands == ()
    assert data.tiers is None  # the read stopped before the tier blocks
    totals = registers.register_totals(data.total, 1)
    assert totals.forward_active_energy_wh == 0
    assert totals.power_outage_duration_s == 8
    assert totals.power_outage_count == 3
    assert totals.error_count == 6
    assert totals.q1_reactive_energy_varh is None  # not among 11 summations


def test_bt23_dabbler_13_byte_prefix_and_energy_unit() -> None:
    # The ESP32 firmware reads 13 bytes of BT23: counter + 3 summations on a demand meter.
    raw = h("0210270000E803000005000000")
    data = registers.BT23.decode(raw, G3)
    assert data.nbr_demand_resets == 2
    assert data.total is not None
    assert data.total.summations == (10000, 1000, 5)
    assert data.total.demands is None
    totals = registers.register_totals(data.total, 10)  # ET55 unit: 10 Wh per count
    assert totals.forward_active_energy_wh == 100000
    assert totals.reverse_active_energy_wh == 10000
    assert totals.import_reactive_energy_varh == 50
    assert totals.energy_register_unit == 10


def test_bt23_counts_are_not_scaled_by_energy_unit() -> None:
    block = registers.DataBlock(summations=(1, 1, 1, 1, 7, 3, 1, 1, 4, 5, 6))
    totals = registers.register_totals(block, 100)
    assert totals.forward_minus_reverse_active_energy_wh == 100
    assert (totals.power_outage_duration_s, totals.power_outage_count) == (7, 3)
    assert (totals.pulse_input_1_count, totals.pulse_input_2_count, totals.error_count) == (
        4,
        5,
        6,
    )


def test_bt23_truncated_mid_summation_names_field_and_remedy() -> None:
    with pytest.raises(TruncatedTableError) as err:
        registers.BT23.decode(h("02 10 27 00 00 E8 03"), G3)
    message = str(err.value)
    assert "BT23.total.summations[1]" in message
    assert "needs 4 byte(s) at offset 5" in message
    assert "re-read BT21" in message
    assert isinstance(err.value, RemoteProtocolError)


# -- BT28 -------------------------------------------------------------------------------------
def _bt28_bytes(values: list[int], demands: int = 8) -> bytes:
    return b"".join(v.to_bytes(4, "little", signed=True) for v in [0] * demands + values)


def test_bt28_gen4_layout_names_guide_positions() -> None:
    values = list(range(1000, 1084))
    values[1] = -250  # reverse active power: signed
    data = registers.BT28.decode(_bt28_bytes(values), G4)
    r = data.readings
    assert r.forward_active_power_w == 1000
    assert r.reverse_active_power_w == -250
    assert r.rms_current_l1_ma == 1004
    assert r.rms_voltage_l1_mv == 1007
    assert r.power_factor_l1_milli == 1010
    assert r.frequency_mhz == 1011
    assert r.forward_active_power_l1_w == 1026
    assert r.average_forward_active_power_w == 1047
    assert r.apparent_power_q1_va == 1055
    assert r.neutral_current_ma == 1071
    assert r.export_reactive_power_l3_var == 1083
    assert data.by_source()[19] == 1011


def test_bt28_gen3_table_on_gen4_dimensions_decodes_what_it_has() -> None:
    # A firmware 3.70 meter sends 55 present values; decoding with dimensions that announce
    # 84 must not fail (the old ESP32 decoder rejected such tables).
    data = registers.BT28.decode(_bt28_bytes(list(range(55))), G4)
    assert data.present_values is not None
    assert len(data.present_values) == 55
    assert data.readings.average_reverse_active_power_l3_w == 54
    assert data.readings.apparent_power_q1_va is None
    assert data.readings.average_rms_current_l1_ma is None


def test_bt28_gen3_profile_and_shorter_firmware() -> None:
    data = registers.BT28.decode(_bt28_bytes(list(range(55))), G3)
    assert data.readings.rms_voltage_l3_mv == 9
    assert data.readings.neutral_current_ma is None  # not a 3.70 source
    # firmware 3.10: 26 values only
    old = registers.BT28.decode(_bt28_bytes(list(range(26))), G3)
    assert old.readings.q4_reactive_power_var == 25
    assert old.readings.forward_active_power_l1_w is None


def test_bt28_names_follow_bt27_not_position() -> None:
    reg = replace(G3.register, number_of_present_demands=0, number_of_present_values=3)
    dims = Dimensions(
        register=reg,
        mfg=G3.mfg,
        present_selection=PresentRegisterSelection(
            present_demand_sources=(), present_value_sources=(19, 15, 185)
        ),
    )
    data = registers.BT28.decode(_bt28_bytes([50012, 231500, -1800], demands=0), dims)
    assert data.readings.frequency_mhz == 50012
    assert data.readings.rms_voltage_l1_mv == 231500
    assert data.readings.forward_active_power_l1_w == -1800
    assert data.readings.forward_active_power_w is None
    assert registers.present_values_in_order(data.readings, dims) == (50012, 231500, -1800)


def test_bt28_truncated_mid_value_raises() -> None:
    with pytest.raises(TruncatedTableError, match=r"present_values\[2\]"):
        registers.BT28.decode(_bt28_bytes([1, 2, 3])[:-1], G4)


def test_present_values_fields_are_the_guide_sources() -> None:
    names = {f.name for f in fields(registers.PresentValues)}
    assert names == {SOURCE_FIELDS[s] for s in registers.GUIDE_PRESENT_VALUE_SOURCES}
    assert len(registers.GUIDE_PRESENT_VALUE_SOURCES) == 84
    assert registers.GUIDE_PRESENT_VALUE_SOURCES[11] == 19  # value 11 = frequency
    assert registers.GUIDE_PRESENT_VALUE_SOURCES[41] == 202  # continuous RMS voltage L1


# -- ET11 / ET14 / ET04 from the guide's transaction example -----------------------------------
def test_et11_guide_example_prefix() -> None:
    # The example reads 10 bytes, which splits the UINT16 at offset 9: the 9 whole-field
    # bytes decode, the 10th is reported as a cut field.
    raw = h("05 42 24 05 06 05 02 01 03 F9")
    with pytest.raises(TruncatedTableError, match="transaction_response_length"):
        dimensions.ET11.decode(raw)
    et11 = dimensions.ET11.decode(raw[:9])
    assert et11.number_of_devices == 5
    assert et11.config_entry_size == 66
    assert et11.status_entry_size == 36
    assert et11.on_demand_queue_size == 5
    assert et11.on_demand_entry_size == 6
    assert et11.data_entry_size == 517
    assert et11.transaction_request_length == 0x0301
    assert et11.transaction_response_length is None
    assert et11.mep_channel_count is None


def test_et11_gen3_length_has_no_mep_channel_count() -> None:
    gen3 = dimensions.ET11.encode(G3.mfg)
    assert len(gen3) == 32
    assert dimensions.ET11.decode(gen3).mep_channel_count is None
    assert Dimensions(register=G3.register, mfg=dimensions.ET11.decode(gen3)).generation == 3
    gen4 = dimensions.ET11.decode(dimensions.ET11.encode(G4.mfg))
    assert gen4.mep_channel_count == 2
    assert Dimensions(register=G4.register, mfg=gen4).generation == 4


def test_et14_guide_example_prefix() -> None:
    table = mep.ET14.decode(h("00 00 00 00 00 11 01 00 01 04 2F 00"), G3)
    assert table.occupied(0)
    assert table.occupied(4)
    assert not table.occupied(1)
    assert table.entries is not None
    first = table.entries[0]
    assert (first.device_handle, first.device_status, first.baud_rate) == (1, 1, 4)
    assert first.billing_read_length == 47
    assert first.read_attempts is None


def test_et04_max_te_registers_at_55_and_older_firmware() -> None:
    raw = bytearray(68)
    raw[55] = 4  # the guide's example: "ET04 offset 55, count 1" -> 04
    raw[60:62] = (230).to_bytes(2, "little")
    info = identity.ET04.decode(bytes(raw))
    assert info.max_total_energy_registers == 4
    assert info.rated_voltage_v == 230
    assert info.idt_version is None
    assert info.security_mode is None
    with pytest.raises(TruncatedTableError, match="at least 68 bytes"):
        identity.ET04.decode(bytes(67))


# -- procedures, ET50, BT01 --------------------------------------------------------------------
def test_bt07_ep17_example_via_registry() -> None:
    # MEP guide, "Calling Procedures" example: table data 11 08 07 00 F8 03.
    call = decode_table(TableId.BT07, h("11 08 07 00 F8 03"), G4)
    assert isinstance(call, ProcedureCall)
    assert call.number == 0x0811  # EP17 = 2048 + 17
    assert call.psn == 7
    assert call.parameters == h("00 F8 03")  # action 0, handle 0x03F8 LSB first


def test_et50_rc4_example_2_registered_flag() -> None:
    # RC4 Example 2 writes 01 at ET50 offset 0x1E: "MEP Device Registered".
    size = mep.et50_entry_layout(G3).size
    raw = bytearray(size)
    raw[0x1E] = 0x01
    space = mep.ET50.decode(bytes(raw), G3)
    assert space.entries is not None
    entry = space.entries[0]
    assert entry.registered
    assert not entry.et59_response
    assert len(space.entries) == 1  # Gen 3: one MEP client


def test_et13_alert_flags_of_the_mep_client() -> None:
    offset = mep.mep_client_config_offset(G3)
    assert offset == 4 * 66
    raw = bytearray(5 * 66)
    raw[offset + 8] = 0b0001_0010  # on-demand request + delta data alert
    config = mep.ET13.decode(bytes(raw), G3)
    (client,) = config.mep_clients()
    assert client.on_demand_request
    assert client.delta_data_alert
    assert not client.scheduled_read_request
    assert client.alert_pending
    assert client.downlink_data == bytes(57)


@pytest.mark.parametrize(
    ("word", "expected"), [(0x3018, "3.00.24"), (0x3155, "3.10.21")], ids=["3.00.24", "3.10.21"]
)
def test_bt01_firmware_formula_examples(word: int, expected: str) -> None:
    raw = b"ELON" + b"MTR3000 " + bytes(2) + word.to_bytes(2, "big")
    info = identity.BT01.decode(raw)
    assert info.manufacturer == "ELON"
    assert info.model == "MTR3000 "
    assert info.firmware == expected


# -- clocks, events, status, load profile ------------------------------------------------------
def test_bt55_tier_and_season_bits() -> None:
    raw = h("18 05 1F 17 3B 3A") + bytes([0b0010_1001]) + bytes([0b0100_0101, 0b0010_0011])
    local = clock.BT55.decode(raw)
    assert local.clock_calendar.to_datetime() is not None
    assert str(local.clock_calendar.to_datetime()) == "2024-05-31 23:59:58"
    assert local.day_of_week == 1
    assert local.dst_in_effect
    assert local.time_zone_applied
    assert (local.current_tier, local.tier_drive) == (5, 1)
    assert (local.special_schedule_active, local.season) == (3, 2)


def test_bt52_all_zero_stamp_is_not_a_datetime() -> None:
    utc = clock.BT52.decode(bytes(7))
    assert utc.clock_calendar.year == 2000
    assert utc.clock_calendar.to_datetime() is None


def test_bt74_entry_event_id_is_12_bits() -> None:
    header = h("06") + (3).to_bytes(2, "little") + (2).to_bytes(2, "little")
    header += (70000).to_bytes(4, "little") + (1).to_bytes(2, "little")
    entry = h("18 01 02 03 04 05") + h("70 11") + h("FD FF") + h("23 F1") + h("AA BB")
    log = events.BT74.decode(header + entry, G4)
    assert log.overflow
    assert log.circular_list
    assert not log.descending_order
    assert log.last_entry_sequence_number == 70000
    assert log.entries is not None
    (first,) = log.entries
    assert first.event_id == 0x123
    assert first.user_id == events.USER_ID_MEP
    assert first.sequence_number == 0x1170
    assert first.argument == h("AA BB")


def test_bt03_manufacturer_alarm_names() -> None:
    raw = bytearray(4 + 9)
    raw[2] = 0b0010_0000  # standard status bit 13: reverse energy
    raw[4] = 0b0001_0000  # mfg byte 4 bit 4: phase loss
    raw[9] = 0b0000_0001  # BT03.9.0: control relay (2) open
    alarms = status.BT03.decode(bytes(raw), G4)
    assert alarms.reverse_energy
    assert not alarms.power_failure
    assert alarms.active_mfg_alarms() == ("phase_loss", "control_relay_2_open")


def test_lp_extended_status_nibbles() -> None:
    # Byte 0 high nibble: common status; then one nibble per channel (0 low, 1 high, 2 low).
    kind = load_profile.ExtendedStatus(3)
    assert kind.size == 2
    interval = Layout("x", load_profile.Interval, [Field("status", kind)])
    value = interval.decode(h("24 43"))
    assert value.status == load_profile.IntervalStatus(common_flags=2, channels=(4, 4, 3))
    assert value.status.power_fail
    assert interval.encode(value) == h("24 43")


# -- dimensions, profiles, ids ------------------------------------------------------------------
def test_energy_register_unit_must_be_1_10_or_100() -> None:
    with pytest.raises(InvalidDimensionError, match=r"\(1, 10, 100\)"):
        Dimensions(register=G4.register, mfg=G4.mfg, energy_register_unit=7)


def test_et55_energy_register_unit_offset_moves_with_tiers_and_generation() -> None:
    assert dimensions.energy_register_unit_offset(G3.register, 3) == 146 + 4 * 3 + 39
    eight = replace(G4.register, number_of_tiers=8)
    assert dimensions.energy_register_unit_offset(eight, 4) == 147 + 4 * 7 + 39
    with pytest.raises(InvalidDimensionError):
        dimensions.et55_layout(replace(G4.register, number_of_tiers=0), 4)


def test_profiles() -> None:
    assert set(PROFILES) == {"gen4-3phase", "gen3-3phase", "gen3-1phase"}
    assert G4.register.number_of_summations == 19
    assert G4.register.number_of_present_values == 84
    assert G4.generation == 4
    assert G4.mep_channel_count == 2
    assert G3.register.number_of_present_values == 55
    assert G3.generation == 3
    assert gen3_1phase().phases == 1
    # gen3-1phase's total block is exactly the guide's 44-byte BT23 read
    assert registers.bt23_layout(G3_1P.register).offset_of("tiers") == 44


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BT28", 28),
        ("bt28", 28),
        (" BT00 ", 0),
        ("ET13", 0x080D),
        ("et3", 0x0803),
        ("28", 28),
        ("0x001C", 28),
        ("0X080d", 2061),
        ("2061", 2061),
    ],
)
def test_parse_table_id_accepts(text: str, expected: int) -> None:
    assert parse_table_id(text) == expected


@pytest.mark.parametrize("text", ["", "BT", "XT12", "BT2048", "0x10000", "65536", "-1", "28h"])
def test_parse_table_id_rejects_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(UnknownTableError, match=r"BTn or ETn.*0x001C") as err:
        parse_table_id(text)
    assert isinstance(err.value, LocalProtocolError)


def test_names_and_descriptions() -> None:
    assert table_name(2061) == "ET13"
    assert table_name(28) == "BT28"
    assert describe(2061) == "ET13 MEP/M-Bus Device Configuration (0x080D)"
    assert "not described" in describe(0x0099)
    assert int(TableId.ET55) == 2103
    assert TableId.BT28.describe() == "BT28 Present Register Data"


def test_registry_json_view_of_bt23() -> None:
    dims = replace(G3_1P, energy_register_unit=10)
    raw = RC4_EXAMPLE_1_BT23[:4] + (1234).to_bytes(4, "little")
    value = decode_table(TableId.BT23, raw, dims)
    doc = to_json(value, dims)
    assert isinstance(doc, dict)
    total = doc["total_registers"]
    assert isinstance(total, dict)
    assert total["reverse_active_energy_wh"] == 12340
    assert json.loads(json.dumps(doc)) == doc
    clock_doc = to_json(clock.BT52.decode(h("18 05 1F 17 3B 3A 00")))
    assert isinstance(clock_doc, dict)
    calendar = clock_doc["clock_calendar"]
    assert isinstance(calendar, dict)
    assert calendar["iso"] == "2024-05-31T23:59:58"
