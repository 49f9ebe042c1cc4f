"""The meter model through the wire: what a client reads, decoded with the real decoders.

Every exchange goes through ``SimulatedMeter.handle`` with request frames from
``prepare_request`` and replies verified by ``Exchange.decode`` (digest included).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from mepgate.mbus import decode_long_header_data, main_value
from mepgate.proto import (
    ClientSequence,
    LocalProtocolError,
    ProcedureCall,
    ProcedureResponse,
    ProcedureResult,
    ReadRequest,
    ResponseCode,
    WriteRequest,
    prepare_request,
)
from mepgate.proto.procedures import (
    EP16_CHANGE_CLOCK_BY_DELTA,
    EP39_POST_MEP_DATA,
    MepPostType,
)
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK, SimulatedMeter
from mepgate.simulator.model import build_meter, ground_truth, model_of
from mepgate.simulator.model.events import EventId
from mepgate.simulator.model.physics import STEP_S
from mepgate.tables.clock import BT52, BT55
from mepgate.tables.dimensions import (
    BT21,
    BT27,
    ET11,
    Dimensions,
    energy_register_unit_offset,
)
from mepgate.tables.events import BT74
from mepgate.tables.identity import BT01, ET03, ET04
from mepgate.tables.ids import TableId
from mepgate.tables.load_profile import BT61, BT63, decode_lp_block, lp_block_layout
from mepgate.tables.mep import ET13, ET16, ET50, DeviceData
from mepgate.tables.profiles import PROFILES
from mepgate.tables.registers import (
    BT23,
    BT28,
    RegisterTotals,
    bt23_layout,
    register_totals,
)

START = dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 local: solar export
EVENING = dt.datetime(2025, 6, 1, 17, 0, tzinfo=dt.UTC)  # 18:00 local: import
ALL_PROFILES = sorted(PROFILES)
CHUNK = 400  # bytes per partial read (a reply carries at most ~465)


class Client:
    """A MEP client in a few lines: sequence adoption on 0x0C, digest-verified replies."""

    def __init__(self, meter: SimulatedMeter, key: bytes = DEFAULT_MBK) -> None:
        self.meter, self.key = meter, key
        self.sequence = ClientSequence(1)
        self.now = 0.0

    def send(self, message: bytes) -> tuple[int, bytes]:
        for _ in range(2):
            exchange = prepare_request(message, self.sequence.take(), self.key)
            reply = exchange.decode(self.meter.handle(exchange.frame, self.now), self.key)
            if reply.next_sequence is None:
                return reply.code, reply.data
            self.sequence.adopt(reply.next_sequence)
        raise AssertionError("the meter refused the adopted sequence number")

    def read(self, table_id: int, offset: int | None = None, count: int = 0x200) -> bytes:
        code, data = self.send(
            ReadRequest(table_id=table_id, offset=offset, count=count).to_bytes()
        )
        assert code == ResponseCode.OK, f"reading {table_id:#06x} gave {code:#04x}"
        return data

    def read_range(self, table_id: int, offset: int, count: int) -> bytes:
        return b"".join(
            self.read(table_id, o, min(CHUNK, offset + count - o))
            for o in range(offset, offset + count, CHUNK)
        )

    def write(self, table_id: int, data: bytes, offset: int | None = None) -> int:
        return self.send(WriteRequest(table_id=table_id, offset=offset, data=data).to_bytes())[0]

    def call(self, number: int, parameters: bytes, psn: int, response_table: int) -> int:
        call = ProcedureCall(number=number, psn=psn, parameters=parameters)
        assert self.write(TableId.BT07, call.to_bytes()) == ResponseCode.OK
        response = ProcedureResponse.from_bytes(self.read(response_table))
        assert response.answers(call)
        return response.result


def dims_of(meter: SimulatedMeter) -> Dimensions:
    return model_of(meter).dims


def totals(data: bytes, dims: Dimensions) -> RegisterTotals:
    """BT23's total block (a read from offset 0) by name, in Wh."""
    total = BT23.decode(data, dims).total
    assert total is not None
    return register_totals(total, dims.energy_register_unit)


def read_bt23(client: Client, dims: Dimensions) -> bytes:
    """All of BT23 in partial reads: on Gen 3/4 meters it is longer than one reply carries."""
    return client.read_range(TableId.BT23, 0, bt23_layout(dims.register).size)


def forward_reverse(client: Client, dims: Dimensions) -> tuple[int, int]:
    named = totals(read_bt23(client, dims), dims)
    assert named.forward_active_energy_wh is not None
    assert named.reverse_active_energy_wh is not None
    return named.forward_active_energy_wh, named.reverse_active_energy_wh


# -- acceptance: the old ESP32 firmware's exact requests -----------------------------------------
OLD_FIRMWARE_REQUESTS = (
    "30 0034 0200",
    "30 0001 0200",
    "30 0015 0200",
    "30 0803 0200",
    "30 080B 0200",
    "30 080D 0200",
    "30 0832 0200",
    "3F 0017 000000 000D",
    "30 001C 0200",
    "3F 080B 000001 0001",
)


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_old_firmware_requests_are_answered_with_verified_digests(profile: str) -> None:
    meter = build_meter(profile, seed=7, start=START)
    client = Client(meter)
    client.now = 90.0
    dims = dims_of(meter)
    replies = {}
    for text in OLD_FIRMWARE_REQUESTS:
        code, data = client.send(bytes.fromhex(text))
        assert code == ResponseCode.OK, text
        replies[text] = data
    truth = ground_truth(meter, client.now)

    clock = BT52.decode(replies["30 0034 0200"]).clock_calendar.to_datetime(dt.UTC)
    assert clock == truth.meter_clock.replace(microsecond=0) == START + dt.timedelta(seconds=90)
    bt01 = BT01.decode(replies["30 0001 0200"])
    assert (bt01.manufacturer, bt01.firmware[:4]) == ("ELON", PROFILES[profile]().firmware)
    assert BT21.decode(replies["30 0015 0200"]) == dims.register
    assert ET03.decode(replies["30 0803 0200"]).utility_serial_number.startswith("57")
    assert ET11.decode(replies["30 080B 0200"]) == dims.mfg
    assert ET13.decode(replies["30 080D 0200"], dims).mep_clients()[0].alert_pending is False
    assert ET50.decode(replies["30 0832 0200"], dims).entries is not None
    assert replies["3F 080B 000001 0001"] == bytes([dims.mfg.require("config_entry_size")])

    # BT23's first 13 bytes: the demand reset counter (if any) and the first summations.
    prefix = replies["3F 0017 000000 000D"]
    whole = prefix if dims.register.demand_reset_counter else prefix[:12]
    named = totals(whole, dims)
    assert named.forward_active_energy_wh == truth.forward_active_energy_wh
    assert named.reverse_active_energy_wh == truth.reverse_active_energy_wh

    bt28 = replies["30 001C 0200"]
    reg = dims.register
    assert len(bt28) == 4 * (reg.number_of_present_demands + reg.number_of_present_values)
    readings = BT28.decode(bt28, dims).readings
    assert readings.forward_active_power_w == truth.electrical.forward_active_power_w
    assert readings.reverse_active_power_w == truth.electrical.reverse_active_power_w
    assert readings.rms_voltage_l1_mv == truth.phases[0].voltage_mv
    assert readings.frequency_mhz == truth.frequency_mhz


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_bt28_length_follows_bt21_and_bt27_also_after_reconfiguration(profile: str) -> None:
    meter = build_meter(profile, seed=3, start=START)
    client = Client(meter)
    lengths = []
    for _ in range(2):
        bt21 = BT21.decode(client.read(TableId.BT21))
        dims = dataclasses.replace(dims_of(meter), register=bt21)
        bt27 = BT27.decode(client.read(TableId.BT27), dims)
        assert len(bt27.present_value_sources) == bt21.number_of_present_values
        bt28 = client.read(TableId.BT28)
        assert len(bt28) == 4 * (bt21.number_of_present_demands + bt21.number_of_present_values)
        lengths.append(len(bt28))
        meter.reconfigure()
    assert lengths[0] != lengths[1]


# -- acceptance: consistency over one simulated hour ---------------------------------------------
@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_one_simulated_hour_is_consistent(profile: str) -> None:
    meter = build_meter(profile, seed=11, start=START, speed=10.0)  # an hour in 360 s
    client = Client(meter)
    dims = dims_of(meter)
    forward_0, reverse_0 = forward_reverse(client, dims)
    forward_wh_s = reverse_wh_s = 0  # the integral of what BT28 shows, in W*s
    for step in range(3600 // STEP_S):
        client.now = (step * STEP_S + STEP_S / 2) / 10.0  # mid-step, front-end seconds
        readings = BT28.decode(client.read(TableId.BT28), dims).readings
        forward, reverse = readings.forward_active_power_w or 0, readings.reverse_active_power_w
        forward_wh_s += forward * STEP_S
        reverse_wh_s += (reverse or 0) * STEP_S
        per_phase = [
            (getattr(readings, f"forward_active_power_{p}_w") or 0)
            - (getattr(readings, f"reverse_active_power_{p}_w") or 0)
            for p in ("l1", "l2", "l3")
        ]
        assert sum(per_phase) == forward - (reverse or 0)
    client.now = 360.0
    forward_1, reverse_1 = forward_reverse(client, dims)
    assert abs((forward_1 - forward_0) - forward_wh_s / 3600) <= 1
    assert abs((reverse_1 - reverse_0) - reverse_wh_s / 3600) <= 1
    assert forward_wh_s + reverse_wh_s > 0

    clock = BT52.decode(client.read(TableId.BT52)).clock_calendar.to_datetime(dt.UTC)
    assert clock == START + dt.timedelta(hours=1)

    # Load profile: four 15-minute snapshots whose differences add up to BT23's change.
    status = BT63.decode(client.read(TableId.BT63), dims).data_sets
    assert status is not None
    assert status[0].number_of_valid_intervals == 4
    lp_dims = dataclasses.replace(dims, load_profile=BT61.decode(client.read(TableId.BT61)))
    size = lp_block_layout(lp_dims).size
    block = decode_lp_block(client.read_range(TableId.BT64, 0, size), lp_dims)
    snapshots = [i.values for i in (block.intervals or ())[:4] if i.values is not None]
    assert block.interval_recorded is not None
    assert sum(block.interval_recorded) == 4
    previous = [(forward_0, reverse_0), *snapshots[:-1]]
    steps = [s[0] - p[0] for p, s in zip(previous, snapshots, strict=True)]
    assert sum(steps) == forward_1 - forward_0
    assert snapshots[-1][1] - reverse_0 == reverse_1 - reverse_0


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_tiers_sum_to_the_total_and_bt55_names_the_current_tier(profile: str) -> None:
    meter = build_meter(profile, seed=5, start=EVENING, speed=3600.0)
    client = Client(meter)
    client.now = 6.0  # six simulated hours: 18:00 .. 00:00 local crosses three tiers
    dims = dims_of(meter)
    data = read_bt23(client, dims)
    tiers = [register_totals(t, 1) for t in BT23.decode(data, dims).tiers or ()]
    total = totals(data, dims)
    # Each register floors its own remainder, so the tiers' sum may trail by < 1 Wh each.
    for name in ("forward_active_energy_wh", "reverse_active_energy_wh"):
        tier_sum = sum(getattr(t, name) or 0 for t in tiers)
        assert 0 <= getattr(total, name) - tier_sum < len(tiers)
    bt55 = BT55.decode(client.read(TableId.BT55))
    assert bt55.current_tier == ground_truth(meter, client.now).current_tier == 0  # night


# -- physics -------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_a_simulated_day_is_plausible_and_every_phase_imports_and_exports(profile: str) -> None:
    meter = build_meter(profile, seed=21, start=START.replace(hour=0), speed=1.0)
    seen_import: set[int] = set()
    seen_export: set[int] = set()
    for minute in range(0, 24 * 60, 10):
        truth = ground_truth(meter, minute * 60.0)
        assert 49_950 <= truth.frequency_mhz <= 50_050
        for n, phase in enumerate(truth.phases):
            assert 220_800 <= phase.voltage_mv <= 239_200
            assert 850 <= phase.power_factor_milli <= 1000
            assert phase.apparent_power_va >= abs(phase.active_power_w)
            (seen_import if phase.active_power_w > 0 else seen_export).add(n)
    assert seen_import == seen_export == set(range(len(truth.phases)))
    assert truth.forward_active_energy_exact_wh > 0
    assert truth.reverse_active_energy_exact_wh > 0


def test_same_seed_same_values_whatever_the_polling_different_seed_different() -> None:
    a = build_meter("gen4-3phase", seed=1, start=START)
    b = build_meter("gen4-3phase", seed=1, start=START)
    c = build_meter("gen4-3phase", seed=2, start=START)
    for t in (5.0, 17.0, 300.0):  # b is polled only at the end
        ground_truth(a, t)
    assert ground_truth(a, 900.0) == ground_truth(b, 900.0)
    assert ground_truth(c, 900.0).electrical != ground_truth(a, 900.0).electrical


def test_speed_runs_simulated_time_faster() -> None:
    meter = build_meter("gen3-1phase", seed=1, start=START, speed=60.0, origin=100.0)
    client = Client(meter)
    client.now = 160.0  # one front-end minute after the origin: one simulated hour
    clock = BT52.decode(client.read(TableId.BT52)).clock_calendar.to_datetime(dt.UTC)
    assert clock == START + dt.timedelta(hours=1)


# -- events: reboot, reconfiguration, clock changes ----------------------------------------------
def event_ids(client: Client, dims: Dimensions) -> list[int]:
    assert dims.history is not None
    size = 11 + dims.history.number_of_history_entries * (12 + dims.history.history_argument_length)
    log = BT74.decode(client.read_range(TableId.BT74, 0, size), dims)
    return [e.event_id or 0 for e in (log.entries or ())[: log.number_of_valid_entries]]


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_reboot_counts_an_outage_logs_it_and_restarts_the_sequence(profile: str) -> None:
    meter = build_meter(profile, seed=4, start=START)
    client = Client(meter)
    dims = dims_of(meter)
    before = totals(read_bt23(client, dims), dims)
    client.now = 30.0
    meter.reboot(client.now, sequence=123_456)
    stale = prepare_request(ReadRequest(table_id=TableId.BT01).to_bytes(), 5, DEFAULT_MBK)
    reply = stale.decode(meter.handle(stale.frame, client.now), DEFAULT_MBK)
    assert reply.next_sequence == 123_457
    after = totals(read_bt23(client, dims), dims)
    assert after.power_outage_count == (before.power_outage_count or 0) + 1
    assert (after.power_outage_duration_s or 0) > (before.power_outage_duration_s or 0)
    assert event_ids(client, dims)[-2:] == [EventId.PRIMARY_POWER_DOWN, EventId.PRIMARY_POWER_UP]


def test_reconfiguration_bumps_the_idt_version_and_the_sequence_by_25() -> None:
    meter = build_meter("gen4-3phase", seed=4, start=START)
    client = Client(meter)
    idt = ET04.decode(client.read(TableId.ET04)).idt_version
    last = client.sequence.last
    meter.reconfigure()
    code, data = client.send(ReadRequest(table_id=TableId.ET04).to_bytes())
    assert code == ResponseCode.OK  # the client's own first try was refused with 0x0C
    assert client.sequence.last == last + 1 + 25 + 1
    assert ET04.decode(data).idt_version == (idt or 0) + 1
    truth = ground_truth(meter, client.now)
    assert truth.number_of_present_values == 75
    assert BT21.decode(client.read(TableId.BT21)).number_of_present_values == 75


def test_ep16_shifts_the_clock_logs_it_and_answers_in_et59_when_et50_asks() -> None:
    meter = build_meter("gen3-3phase", seed=8, start=START)
    client = Client(meter)
    dims = dims_of(meter)
    # ET50.30 bit 1 "ET59 Response" (bit 0 "registered" stays set); the MBK may write ET50.
    assert client.write(TableId.ET50, bytes([0b011]), offset=30) == ResponseCode.OK
    delta = (3600).to_bytes(4, "little", signed=True)
    result = client.call(EP16_CHANGE_CLOCK_BY_DELTA, delta, psn=5, response_table=TableId.ET59)
    assert result == ProcedureResult.COMPLETED
    clock = BT52.decode(client.read(TableId.BT52)).clock_calendar.to_datetime(dt.UTC)
    assert clock == START + dt.timedelta(hours=1)
    assert ground_truth(meter, client.now).simulated_time == START
    ids = event_ids(client, dims)
    assert ids[-2:] == [EventId.TIME_CHANGED_OLD_TIME, EventId.TIME_CHANGED_NEW_TIME]
    mak = Client(meter, DEFAULT_MAK)  # the MBK may call only EP16/EP17/EP39/EP61
    mak.sequence.adopt(client.sequence.last)
    unknown = mak.call(2048 + 99, b"", psn=6, response_table=TableId.ET59)
    assert unknown == ProcedureResult.UNRECOGNIZED_PROCEDURE
    short = client.call(EP16_CHANGE_CLOCK_BY_DELTA, b"\x01", psn=7, response_table=TableId.ET59)
    assert short == ProcedureResult.INVALID_PARAMETER


# -- alerts --------------------------------------------------------------------------------------
def mep_client_alerts(client: Client, dims: Dimensions) -> tuple[bool, bool, bool]:
    entry = ET13.decode(client.read(TableId.ET13), dims).mep_clients()[0]
    return (
        bool(entry.scheduled_read_request),
        bool(entry.on_demand_request),
        bool(entry.mbus_change),
    )


def test_no_alerts_by_default() -> None:
    meter = build_meter("gen4-3phase", seed=2, start=START, speed=3600.0)
    assert not meter.alert_pending(24.0)  # a simulated day later


def test_scheduled_read_request_is_cleared_by_ep39_with_scheduled_read_data() -> None:
    meter = build_meter(
        "gen4-3phase", seed=2, start=START, speed=60.0, scheduled_read_interval_min=15
    )
    client = Client(meter)
    dims = dims_of(meter)
    assert not meter.alert_pending(14.0)
    client.now = 16.0
    assert meter.alert_pending(client.now)
    assert mep_client_alerts(client, dims) == (True, False, False)
    posted = bytes([MepPostType.SCHEDULED_READ_DATA]) + b"reading 42"
    result = client.call(EP39_POST_MEP_DATA, posted, psn=5, response_table=TableId.BT08)
    assert result == ProcedureResult.COMPLETED
    assert not meter.alert_pending(client.now)
    record = (decode_et16_prefix(client, dims).entries or ())[4]
    assert record.timestamp is not None
    assert getattr(record, "data", b"") == b"reading 42"
    client.now = 31.0  # the next period raises it again
    assert meter.alert_pending(client.now)


def decode_et16_prefix(client: Client, dims: Dimensions) -> DeviceData:
    size = dims.mfg.require("data_entry_size") * dims.mfg.number_of_devices
    return ET16.decode(client.read_range(TableId.ET16, 0, size), dims)


def test_mbus_change_alert_needs_et50_flag_and_is_cleared_by_ep39() -> None:
    meter = build_meter("gen3-3phase", seed=6, start=START, speed=3600.0)
    client = Client(meter)
    dims = dims_of(meter)
    client.now = 5.0  # five hourly water meter reads without the ET50 flag: no alert
    assert not meter.alert_pending(client.now)
    assert client.write(TableId.ET50, bytes([0b101]), offset=30) == ResponseCode.OK
    client.now = 30.0
    assert meter.alert_pending(client.now)
    assert mep_client_alerts(client, dims) == (False, False, True)
    telegram = decode_et16_prefix(client, dims).entries
    assert telegram is not None
    water = ground_truth(meter, client.now).water_volume_l
    main = main_value(decode_long_header_data(getattr(telegram[0], "telegram", b"")))
    assert main is not None
    assert main.value == water / 1000  # litres counted, m³ decoded
    clear = bytes([MepPostType.CLEAR_MBUS_ALERT])
    assert client.call(EP39_POST_MEP_DATA, clear, psn=9, response_table=TableId.BT08) == 0
    assert not meter.alert_pending(client.now)


def test_on_demand_alert_is_cleared_by_reading_et15() -> None:
    meter = build_meter("gen4-3phase", seed=6, start=START)
    client = Client(meter)
    model_of(meter).post_on_demand_request(b"tariff change")
    assert meter.alert_pending(client.now)
    assert mep_client_alerts(client, dims_of(meter)) == (False, True, False)
    assert b"tariff change" in client.read(TableId.ET15)
    assert not meter.alert_pending(client.now)


# -- writes ----------------------------------------------------------------------------------------
def test_mak_writes_persist_and_the_mbk_may_not_write_bt23() -> None:
    meter = build_meter("gen4-3phase", seed=9, start=EVENING, speed=3600.0)
    mbk, mak = Client(meter), Client(meter, DEFAULT_MAK)
    dims = dims_of(meter)
    preset = (1_000_000).to_bytes(4, "little")
    assert mbk.write(TableId.BT23, preset, offset=1) == ResponseCode.NO_PERMISSION
    assert mak.write(TableId.BT23, preset, offset=1) == ResponseCode.OK
    assert forward_reverse(mak, dims)[0] == 1_000_000
    mak.now = 2.0  # the register keeps integrating from the preset (evening: import)
    assert forward_reverse(mak, dims)[0] > 1_000_000

    # ET13 baud rate of MEP client 1 (entry 4, offset 6): code 5 = 4800 baud.
    baud_offset = 4 * dims.mfg.require("config_entry_size") + 6
    assert mak.write(TableId.ET13, bytes([5]), offset=baud_offset) == ResponseCode.OK
    assert ground_truth(meter, mak.now).mep_baud_rate_bps == 4800
    assert ET13.decode(mak.read(TableId.ET13), dims).mep_clients()[0].baud_rate == 5
    assert mbk.write(TableId.ET13, bytes([0]), offset=baud_offset) == ResponseCode.NO_PERMISSION


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(LocalProtocolError, match="gen3-1phase"):
        build_meter("gen5", seed=1, start=START)


def test_et55_energy_register_unit_written_by_the_mak_scales_bt23() -> None:
    meter = build_meter("gen3-3phase", seed=9, start=EVENING)
    mak = Client(meter, DEFAULT_MAK)
    dims = dims_of(meter)
    offset = energy_register_unit_offset(dims.register, dims.generation)
    forward_wh = forward_reverse(mak, dims)[0]
    assert mak.write(TableId.ET55, bytes([10]), offset=offset) == ResponseCode.OK
    unit = mak.read(TableId.ET55, offset, 1)[0]
    scaled = dataclasses.replace(dims, energy_register_unit=unit)
    assert unit == 10
    assert forward_reverse(mak, scaled)[0] == forward_wh // 10 * 10
    assert mak.write(TableId.ET55, bytes([7]), offset=offset) == (
        ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
    )
