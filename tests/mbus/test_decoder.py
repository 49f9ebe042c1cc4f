"""EN 13757-3 decoding from real devices' frames, and totality on arbitrary bytes.

The frames below are public M-Bus test data: the libmbus project's captured responses
(github.com/rscada/libmbus, ``test/test-frames/<name>.hex``), with the values that project's
decoder gives for them (``test/test-frames/<name>.norm.xml``) as the expected facts.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepgate.mbus import (
    MBusDecodeError,
    decode_application,
    decode_frame,
    decode_long_header_data,
    main_value,
    manufacturer_code,
    manufacturer_field,
)
from mepgate.mbus.encode import bcd_record, int_record, long_frame, long_header


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# rscada/libmbus test/test-frames/LGB_G350.hex -- a Landis+Gyr G350 gas meter.
LGB_G350 = h(
    "68 40 40 68 08 01 72 58 20 08 12 E2 30 40 03 40 00 00 00 2F 2F 4C 13 92 40 83 10 46 6D 00"
    " 00 08 16 27 00 0D 78 11 34 31 38 35 30 32 38 30 32 31 39 35 37 31 30 30 47 89 40 FD 1A 01"
    " 01 FD 17 00 01 FD 67 0F 38 16"
)
# rscada/libmbus test/test-frames/EFE_Engelmann-WaterStar.hex -- a warm water meter.
EFE_WATERSTAR = h(
    "68 51 51 68 08 0B 72 54 02 99 04 C5 14 00 06 0C 27 00 00 04 78 2E 25 4C 00 04 6D 0A 0C CD"
    " 13 04 13 4C 01 00 00 44 13 4B 01 00 00 84 01 13 4C 01 00 00 42 6C BF 1C 02 6C DF 1C 04 3B"
    " 00 00 00 00 14 3B 16 08 00 00 02 23 A7 04 01 FD 17 00 04 90 28 08 00 00 00 3F 16"
)
# rscada/libmbus test/test-frames/SEN_Sensus-PolluTherm.hex -- a heat meter.
SEN_POLLUTHERM = h(
    "68 41 41 68 08 00 72 89 16 35 24 AE 4C 0B 04 54 10 00 00 0C 07 00 00 00 00 0C 14 00 00 00"
    " 00 0C 3C 00 00 00 00 0C 2C 00 00 00 00 32 5A 00 00 32 5E 00 00 33 60 00 00 00 0C 78 89 16"
    " 35 24 0C FD 10 89 16 35 24 CE 16"
)
# rscada/libmbus test/test-frames/ACW_Itron-CYBLE-M-Bus-14.hex -- a water meter module.
ACW_CYBLE = h(
    "68 56 56 68 08 01 72 23 15 01 09 77 04 14 07 25 00 00 00 0C 78 23 15 01 09 0D 7C 08 44 49"
    " 20 2E 74 73 75 63 0A 35 35 37 36 37 30 41 4C 39 30 04 6D 1A 0E CD 13 02 7C 09 65 6D 69 74"
    " 20 2E 74 61 62 D4 09 04 13 1F 00 00 00 04 93 7F 00 00 00 00 44 13 1F 00 00 00 0F 00 01 1F"
    " A9 16"
)


def test_gas_meter_header_volume_and_date_time() -> None:
    telegram = decode_frame(LGB_G350)
    header = telegram.header
    assert header is not None
    assert header.identification == "12082058"
    assert header.manufacturer == "LGB"
    assert (header.version, header.medium, header.access_number) == (64, 3, 64)
    assert (header.status, header.signature) == (0, 0)
    assert header.category == "gas"
    volume, when, fabrication, output, errors, supplier = telegram.records
    # DIF 0x4C (8-digit BCD, storage 1), VIF 0x13 (volume, 10^-3 m³): 10834.092 m³.
    assert (volume.quantity, volume.unit, volume.storage) == ("volume", "m³", 1)
    assert volume.scaled == 10834.092
    # DIF 0x46 (48 bits), VIF 0x6D: date and time (type I), 2016-07-22 08:00:00.
    assert when.value == dt.datetime(2016, 7, 22, 8, 0, 0)
    # DIF 0x0D (variable length), VIF 0x78: fabrication number as text.
    assert (fabrication.quantity, fabrication.value) == ("fabrication_number", "G0017591208205814")
    # DIF 0x89 0x40 (subunit 1), VIF 0xFD 0x1A: digital output 1.
    assert (output.quantity, output.subunit, output.value) == ("digital_output", 1, 1)
    assert (errors.quantity, errors.value) == ("error_flags", 0)
    assert (supplier.quantity, supplier.value) == ("special_supplier_information", 15)
    main = main_value(telegram)
    assert main is not None
    assert (main.value, main.unit) == (10834.092, "m³")


def test_water_meter_storage_numbers_dates_flow_and_on_time() -> None:
    telegram = decode_frame(EFE_WATERSTAR)
    header = telegram.header
    assert header is not None
    assert (header.identification, header.manufacturer) == ("04990254", "EFE")
    assert (header.medium, header.category, header.access_number, header.status) == (
        6,
        "water",
        12,
        0x27,
    )
    r = telegram.records
    assert r[0].quantity == "fabrication_number"
    assert r[0].value == 4990254
    assert r[1].value == dt.datetime(2014, 3, 13, 12, 10)  # type F
    assert [(x.storage, x.scaled, x.unit) for x in r[2:5]] == [
        (0, 0.332, "m³"),
        (1, 0.331, "m³"),
        (2, 0.332, "m³"),  # DIF 0x84 DIFE 0x01: storage 2
    ]
    assert r[5].value == dt.date(2013, 12, 31)  # type G, storage 1
    assert r[6].value == dt.date(2014, 12, 31)
    assert (r[7].quantity, r[7].unit, r[7].scaled) == ("volume_flow", "m³/h", 0.0)
    assert (r[8].function, r[8].scaled) == ("maximum", 2.07)
    # VIF 0x23: on time in days; 1191 d = 102902400 s as libmbus reports it.
    assert (r[9].quantity, r[9].unit, r[9].value) == ("on_time", "d", 1191)
    assert isinstance(r[9].value, int)
    assert r[9].value * 86400 == 102902400
    assert (r[10].quantity, r[10].value) == ("error_flags", 0)
    # VIF 0x90 with VIFE 0x28: volume 10^-6 m³, 8 -> 0.000008 m³.
    assert (r[11].unit, r[11].vifes, r[11].scaled) == ("m³", (0x28,), 8e-6)
    main = main_value(telegram)
    assert main is not None
    assert (main.value, main.unit, main.record.storage) == (0.332, "m³", 0)


def test_heat_meter_energy_power_temperatures() -> None:
    telegram = decode_frame(SEN_POLLUTHERM)
    header = telegram.header
    assert header is not None
    assert (header.identification, header.manufacturer, header.medium) == ("24351689", "SEN", 4)
    assert header.category == "heat"
    r = telegram.records
    assert [(x.quantity, x.unit, x.info.exponent) for x in r[:7]] == [
        ("energy", "Wh", 4),  # VIF 0x07: 10^4 Wh
        ("volume", "m³", -2),  # VIF 0x14
        ("volume_flow", "m³/h", -2),  # VIF 0x3C
        ("power", "W", 1),  # VIF 0x2C
        ("flow_temperature", "°C", -1),  # VIF 0x5A
        ("return_temperature", "°C", -1),  # VIF 0x5E
        ("temperature_difference", "K", -3),  # VIF 0x60
    ]
    assert [x.function for x in r[4:7]] == ["error"] * 3  # DIF 0x32/0x33: value during error
    assert r[8].quantity == "customer_location"
    assert r[8].value == 24351689
    main = main_value(telegram)
    assert main is not None
    assert (main.quantity, main.unit, main.value) == ("energy", "kWh", 0.0)


def test_plain_text_vif_and_manufacturer_specific_data() -> None:
    telegram = decode_frame(ACW_CYBLE)
    header = telegram.header
    assert header is not None
    assert (header.identification, header.manufacturer, header.version) == ("09011523", "ACW", 20)
    r = telegram.records
    assert (r[1].quantity, r[1].value) == ("cust. ID", "09LA076755")  # VIF 0x7C, LVAR text
    assert r[2].value == dt.datetime(2014, 3, 13, 14, 26)
    assert (r[3].quantity, r[3].value) == ("bat. time", 2516)
    assert [(x.storage, x.scaled) for x in r[4:] if x.quantity == "volume"] == [
        (0, 0.031),
        (0, 0.0),
        (1, 0.031),
    ]
    # DIF 0x0F: the rest is the manufacturer's, kept raw.
    assert telegram.manufacturer_data == h("00 01 1F")
    main = main_value(telegram)
    assert main is not None
    assert (main.value, main.unit) == (0.031, "m³")


def test_manufacturer_code_round_trip() -> None:
    assert manufacturer_code(0x30E2) == "LGB"  # the G350's header bytes E2 30
    assert manufacturer_field("LGB") == 0x30E2
    assert manufacturer_code(manufacturer_field("ELS")) == "ELS"


def test_data_field_codings() -> None:
    # Integers are signed (type B); BCD with a leading F is negative; real32; 12-digit BCD.
    records = decode_application(
        h("78")
        + bytes([0x01, 0x13, 0xFF])  # int8 -1
        + bytes([0x03, 0x13])
        + (70000).to_bytes(3, "little")
        + bytes([0x07, 0x13])
        + (2**40).to_bytes(8, "little")
        + bytes([0x0A, 0x13])
        + h("34 F2")  # BCD -234
        + bytes([0x0E, 0x03])
        + h("12 90 78 56 34 12")  # 123456789012 Wh
        + bytes([0x05, 0x2B])
        + h("00 00 C0 3F")  # real32 1.5 W
        + bytes([0x0D, 0x13, 0xC2])
        + h("45 23")  # variable: BCD 2345
        + bytes([0x0D, 0x13, 0xE3])
        + h("01 00 80")  # variable: 3-byte binary (negative)
        + bytes([0x0C, 0xFB, 0x01])
        + h("12 00 00 00")  # 12 MWh (second extension table)
        + bytes([0x0C, 0x93, 0x7D])
        + h("05 00 00 00")  # VIFE x1000
    ).records
    values = [r.value for r in records]
    assert values[:7] == [-1, 70000, 2**40, -234, 123456789012, 1.5, 2345]
    assert values[7] == int.from_bytes(h("01 00 80"), "little", signed=True)
    assert (records[8].unit, records[8].scaled) == ("Wh", 12_000_000.0)
    assert records[9].scaled == 5.0  # 5 x 10^-3 m³ x 1000


def test_short_header_and_et16_layout() -> None:
    short = decode_application(h("7A 05 00 00 00") + bcd_record(0x13, 1234))
    assert short.header is not None
    assert short.header.identification is None
    assert short.header.access_number == 5
    # ET16 stores the long header without the CI byte, then the records and a zero terminator.
    header = long_header(
        identification=12345678, manufacturer="ELS", version=1, medium=7, access_number=9
    )
    telegram = decode_long_header_data(header + bcd_record(0x13, 42_017) + b"\0")
    assert telegram.header is not None
    assert (telegram.header.identification, telegram.header.manufacturer) == ("12345678", "ELS")
    main = main_value(telegram)
    assert main is not None
    assert main.value == 42.017


def test_frame_errors_are_named() -> None:
    good = long_frame(
        h("72")
        + long_header(identification=1, manufacturer="ABC", version=0, medium=3, access_number=0)
        + int_record(0x13, 5)
    )
    assert decode_frame(good).records[0].value == 5
    broken = bytearray(good)
    broken[-2] ^= 0xFF
    with pytest.raises(MBusDecodeError, match="checksum"):
        decode_frame(bytes(broken))
    with pytest.raises(MBusDecodeError, match="acknowledgement"):
        decode_frame(h("E5"))
    with pytest.raises(MBusDecodeError, match="CI field 0x76"):
        decode_application(h("76 00"))
    with pytest.raises(MBusDecodeError, match="not BCD"):
        decode_application(h("78 0A 13 AB 00"))
    with pytest.raises(MBusDecodeError, match="DIF chain is cut"):
        decode_application(h("78 84"))
    with pytest.raises(MBusDecodeError, match="only 1 left"):
        decode_application(h("78 04 13 00"))
    with pytest.raises(MBusDecodeError, match="more than 10 DIFEs"):
        decode_application(h("78 84") + b"\x80" * 11 + h("00 13"))


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_value_or_a_named_error(data: bytes) -> None:
    for decode in (decode_application, decode_long_header_data, decode_frame):
        try:
            telegram = decode(data)
        except MBusDecodeError:
            continue
        for record in telegram.records:
            _ = (record.scaled, record.quantity, record.unit, record.is_current)
        main_value(telegram)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_records_after_a_valid_header(data: bytes) -> None:
    header = long_header(identification=1, manufacturer="ABC", version=0, medium=7, access_number=0)
    try:
        telegram = decode_long_header_data(header + data)
    except MBusDecodeError:
        return
    main_value(telegram)
