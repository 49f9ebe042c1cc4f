"""The simulated M-Bus sub-meters, read over the wire as a client would (ET11, ET14, ET16)."""

from __future__ import annotations

import pytest

from mepgate.errors import LocalProtocolError
from mepgate.mbus import decode_long_header_data, main_value, manufacturer_code
from mepgate.simulator.model import build_meter, ground_truth, model_of
from mepgate.simulator.model.mbus import parse_mbus
from mepgate.tables import mep
from mepgate.tables.dimensions import ET11
from mepgate.tables.ids import TableId
from mepgate.tables.mep import (
    ET13,
    ET14,
    ET14_HEADER_SIZE,
    MBusBillingRead,
    MBusDeviceConfig,
    device_data_layout,
    et16_entry_layout,
    mbus_status_layout,
)
from mepgate.tables.recurring import (
    ET45_ENTRY_HEAD,
    ET45_ENTRY_HEAD_SIZE,
    ET45_HEADER,
    ET45_HEADER_SIZE,
    decode_et36,
    et45_dimensions,
    et45_entry_offset,
)
from tests.simulator.test_model import START, Client


def read_slots(client: Client) -> tuple[list[object], list[MBusBillingRead]]:
    """ET14's entries and the ET16 records of the four M-Bus slots."""
    dims = model_of(client.meter).dims
    mfg = ET11.decode(client.read(TableId.ET11))
    assert mfg.number_of_devices == dims.mfg.number_of_devices
    status = ET14.decode(client.read(TableId.ET14), dims)
    size = mfg.require("data_entry_size")
    records = []
    for slot in range(4):
        raw = client.read_range(TableId.ET16, slot * size, size)
        record = et16_entry_layout(dims, slot).decode(raw)
        assert isinstance(record, MBusBillingRead)
        records.append(record)
    return list(status.entries or ()), records


def test_four_media_decode_to_ground_truth_and_advance_with_time() -> None:
    meter = build_meter(
        "gen4-3phase",
        seed=3,
        start=START,
        speed=3600.0,
        mbus=("gas", "water", "heat", "electricity"),
    )
    client = Client(meter)
    dims = model_of(meter).dims
    first: dict[int, float] = {}
    for now in (0.0, 30.0):  # the first read at commissioning, then 30 simulated hours later
        client.now = now
        truth = {t.slot: t for t in ground_truth(meter, now).mbus}
        statuses, records = read_slots(client)
        table = ET14.decode(client.read(TableId.ET14), dims)
        assert [table.occupied(s) for s in range(4)] == [True] * 4
        for slot in range(4):
            status, record = statuses[slot], records[slot]
            t = truth[slot + 1]
            assert getattr(status, "device_status", None) == 1  # M-Bus device up
            assert getattr(status, "device_handle", None) == slot + 1
            # "Billing Read Length" counts the record's timestamp, info and length bytes.
            assert getattr(status, "billing_read_length", None) == 8 + len(record.telegram)
            assert record.telegram[-1] == 0  # the zero terminator
            telegram = decode_long_header_data(record.telegram)
            assert telegram.header is not None
            assert telegram.header.identification == t.identification
            assert telegram.header.manufacturer == t.manufacturer
            assert telegram.header.category == t.medium
            main = main_value(telegram)
            assert main is not None
            assert (main.value, main.unit) == (t.value, t.unit)
            if now:
                assert t.reads == 31
                assert main.value >= first[slot]
            else:
                first[slot] = main.value
    assert any(t.value > first[t.slot - 1] for t in ground_truth(meter, 30.0).mbus)
    config = ET13.decode(client.read(TableId.ET13), dims).entries or ()
    assert isinstance(config[0], MBusDeviceConfig)
    assert config[0].customer_id == "GAS-1"


def test_a_device_that_stops_answering_goes_down_and_its_data_stays_stale() -> None:
    meter = build_meter(
        "gen3-3phase",
        seed=5,
        start=START,
        speed=3600.0,
        mbus=("gas", "water"),
        mbus_stops={2: 3 * 3600},
    )
    client = Client(meter)
    client.now = 2.0
    before = ground_truth(meter, 2.0).mbus[1]
    client.now = 10.0
    statuses, records = read_slots(client)
    water = ground_truth(meter, 10.0).mbus[1]
    assert not water.responding
    assert water.value == ground_truth(meter, 3.0).mbus[1].value  # the last answer's
    assert getattr(statuses[1], "device_status", None) == 2  # M-Bus device down
    assert getattr(statuses[1], "failed_comms_on_read", None) is True
    assert getattr(statuses[1], "read_attempts", 0) > getattr(statuses[1], "read_answers", 0)
    main = main_value(decode_long_header_data(records[1].telegram))
    assert main is not None
    assert main.value == water.value >= before.value
    assert getattr(statuses[0], "device_status", None) == 1  # the gas meter still answers


def test_mbus_option_parsing() -> None:
    assert parse_mbus("gas, Water") == ("gas", "water")
    assert parse_mbus("none") == ()
    with pytest.raises(LocalProtocolError, match="unknown M-Bus medium 'oil'"):
        parse_mbus("gas,oil")
    with pytest.raises(LocalProtocolError, match="4 M-Bus slots"):
        parse_mbus("gas,gas,gas,gas,gas")
    meter = build_meter("gen3-1phase", seed=1, start=START, mbus=())
    assert ground_truth(meter, 0.0).mbus == ()


def test_et16_record_carries_the_telegram_at_the_guides_offsets() -> None:
    # MEP guide, ET16 (CI=0x72 response type): length 7, serial number 8 (4-byte BCD), Mfg ID
    # 12, version 14, medium 15, access number 16, status 17, signature 18, records from 20.
    meter = build_meter("gen4-3phase", seed=9, start=START, mbus=("heat",))
    client = Client(meter)
    dims = model_of(meter).dims
    mfg = ET11.decode(client.read(TableId.ET11))
    assert mbus_status_layout(mfg).size == 36
    assert mep.et14_layout(dims).offset_of("entries") == ET14_HEADER_SIZE
    raw = client.read_range(TableId.ET16, 0, mfg.require("data_entry_size"))
    heat = ground_truth(meter, 0.0).mbus[0]
    assert raw[8:12][::-1].hex() == heat.identification
    assert manufacturer_code(int.from_bytes(raw[12:14], "little")) == heat.manufacturer
    assert raw[15] == 0x04  # heat (outlet)
    assert raw[16] == heat.reads & 0xFF  # the access number counts the answers
    assert raw[20:22] == bytes([0x0C, 0x06])  # DIF 8-digit BCD, VIF energy 10^3 Wh
    length = raw[7]
    assert raw[8 + length - 1] == 0  # the zero terminator ends the telegram
    record = device_data_layout(mfg, 0).decode(raw)
    assert isinstance(record, MBusBillingRead)
    assert record.telegram == raw[8 : 8 + length]


def test_later_reads_go_to_et45_and_et16_keeps_the_first_without_compatibility() -> None:
    meter = build_meter(
        "gen4-3phase", seed=4, start=START, speed=3600.0, mbus=("gas",), mbus_et16_compat=False
    )
    client = Client(meter)
    first = ground_truth(meter, 0.0).mbus[0]
    client.now = 5.0  # five more hourly reads
    now = ground_truth(meter, 5.0).mbus[0]
    assert now.reads == 6
    _, records = read_slots(client)
    main = main_value(decode_long_header_data(records[0].telegram))
    assert main is not None
    assert main.value == first.value  # ET16: the first read only
    dims = decode_et36(client.read(TableId.ET36))
    log = et45_dimensions(dims)
    assert log is not None
    assert log.entry_size == 525
    assert log.current_entries is not None
    raw = client.read_range(TableId.ET45, 0, ET45_HEADER_SIZE + log.current_entries * 525)
    header = ET45_HEADER.decode(raw[:ET45_HEADER_SIZE])
    assert (header.valid_entries, header.last_entry_sequence) == (5, 5)
    start = et45_entry_offset(header.last_entry_element, 525)
    head = ET45_ENTRY_HEAD.decode(raw[start : start + ET45_ENTRY_HEAD_SIZE])
    assert (head.handle, head.result) == (1, 4)
    mfg = ET11.decode(client.read(TableId.ET11))
    record = device_data_layout(mfg, 0).decode(raw[start + 8 : start + 525])
    assert isinstance(record, MBusBillingRead)
    newest = main_value(decode_long_header_data(record.telegram))
    assert newest is not None
    assert newest.value == now.value  # ET45's newest entry: the latest read
    assert head.length == 6 + 8 + len(record.telegram)
