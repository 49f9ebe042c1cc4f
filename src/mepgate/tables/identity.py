"""Identity tables: BT00, BT01, ET03, ET04 (MEP guide, chapter 4, sections of the same names)."""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import (
    I16,
    LTIME_DATE,
    U8,
    U16,
    U32,
    Array,
    Field,
    Layout,
    Raw,
    Text,
    bits,
    fill,
    flag,
    packed,
)
from mepgate.tables.ids import TableId
from mepgate.tables.table import FixedTable
from mepgate.tables.timestamps import LTimeDate


# -- BT00 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class GeneralConfiguration:
    """BT00 "General Configuration" (the fields before the tables-used bit sets)."""

    data_order_msb_first: bool
    char_format: int
    time_format: int
    data_access_method: int
    id_format_bcd: bool
    integer_format: int
    ni_format_1: int
    ni_format_2: int
    manufacturer: str
    nameplate_type: int
    default_set_used: int
    max_procedure_parameter_length: int
    max_response_data_length: int
    standard_version: int
    standard_revision: int
    dim_basic_tables_used: int
    dim_extended_tables_used: int
    dim_basic_procedures_used: int
    dim_extended_procedures_used: int
    manufacturer_status_length: int
    number_of_pending_tables: int


# MEP guide, BT00 "General Configuration"; the rest of the table is reserved.
BT00_LAYOUT: Layout[GeneralConfiguration] = Layout(
    "BT00",
    GeneralConfiguration,
    [
        packed(1, flag("data_order_msb_first", 0), bits("char_format", 1, 3)),
        packed(
            1,
            bits("time_format", 0, 2),
            bits("data_access_method", 3, 4),
            flag("id_format_bcd", 5),
            bits("integer_format", 6, 7),
        ),
        packed(1, bits("ni_format_1", 0, 3), bits("ni_format_2", 4, 7)),
        Field("manufacturer", Text(4)),
        Field("nameplate_type", U8),
        Field("default_set_used", U8),
        Field("max_procedure_parameter_length", U8),
        Field("max_response_data_length", U8),
        Field("standard_version", U8),
        Field("standard_revision", U8),
        Field("dim_basic_tables_used", U8),
        Field("dim_extended_tables_used", U8),
        Field("dim_basic_procedures_used", U8),
        Field("dim_extended_procedures_used", U8),
        Field("manufacturer_status_length", U8),
        Field("number_of_pending_tables", U8),
    ],
)


# Bytes after offset 18 are ignored; encoding writes the 19 described bytes.
BT00 = FixedTable(TableId.BT00, GeneralConfiguration, BT00_LAYOUT)


# -- BT01 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class ManufacturerInformation:
    """BT01 "General Manufacturer Information"."""

    manufacturer: str
    model: str
    firmware_version: int
    firmware_revision: int

    @property
    def firmware(self) -> str:
        """``"x.yy.zz"``: bytes 14 and 15 form one word, version byte high (0x3018 = 3.00.24)."""
        word = self.firmware_version << 8 | self.firmware_revision
        return f"{word >> 12}.{(word >> 5) & 0x7F:02d}.{word & 0x1F:02d}"


# MEP guide, BT01.  The guide's "Reserved 5..15" row overlaps the model (4..11) and the version
# bytes; bytes 12 and 13 are taken as the reserved ones.
BT01_LAYOUT: Layout[ManufacturerInformation] = Layout(
    "BT01",
    ManufacturerInformation,
    [
        Field("manufacturer", Text(4)),
        Field("model", Text(8)),
        fill(2),
        Field("firmware_version", U8),
        Field("firmware_revision", U8),
    ],
)


BT01 = FixedTable(TableId.BT01, ManufacturerInformation, BT01_LAYOUT)


# -- ET03 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class UtilityInformation:
    """ET03 "Utility Information"."""

    utility_serial_number: str
    image_crc: int | None = None


# MEP guide, ET03: serial 0..29, reserved 30..136, image CRC (UINT16) at 137.  The guide's next
# "Reserved 138..142" row overlaps the CRC's second byte; the CRC is taken as 137..138 and the
# table as 143 bytes.
ET03_LAYOUT: Layout[UtilityInformation] = Layout(
    "ET03",
    UtilityInformation,
    [
        Field("utility_serial_number", Text(30)),
        fill(107),
        Field("image_crc", U16),
        fill(4),
    ],
    required=1,
)


# A 30-byte prefix gives just the serial number.
ET03 = FixedTable(TableId.ET03, UtilityInformation, ET03_LAYOUT)


# -- ET04 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class SystemInformation:
    """ET04 "System Information" (the fields a MEP client uses; others are skipped)."""

    plc_sequence_number: int
    transceiver_id: bytes
    subnet_id: int
    node_id: int
    explicit_message_received: bool
    force_neuron_config: bool
    request_neuron_state: bool
    disable_plc_encryption: bool
    disable_neuron_eeprom_lock: bool
    neuron_phase: int
    rated_frequency_hz: int
    program_id: bytes
    self_identification: bytes
    pk_access_disabled: int
    max_power_outages_recorded: int
    max_total_energy_registers: int
    registration_current_ma: int
    max_current_a: int
    rated_voltage_v: int
    inactive_voltage_l1: bool
    inactive_voltage_l2: bool
    inactive_voltage_l3: bool
    separate_voltage_current_phases: bool
    inactive_current_l1: bool
    inactive_current_l2: bool
    inactive_current_l3: bool
    dst_off_time_delta_min: int
    self_read_hour: int
    self_read_minute: int
    stop_mode_days: int
    neuron_state: int | None = None
    phase: int | None = None
    plc_comm_threshold_min: int | None = None
    broadcast_time: LTimeDate | None = None
    broadcast_base: int | None = None
    broadcast_delta: int | None = None
    reverse_energy_current_threshold_ma: int | None = None
    plc_signal: int | None = None
    idt_version: int | None = None
    security_mode: int | None = None  # 0 = RC4, 2 = OSGP-AES-128-PSK (3.13, 3.80+)
    mep_sequence_numbers: tuple[int, ...] | None = None  # firmware 4.0+


# MEP guide, ET04 "System Information".  Skipped ranges are settings a MEP client must not
# write; they encode as zeros.
ET04_LAYOUT: Layout[SystemInformation] = Layout(
    "ET04",
    SystemInformation,
    [
        Field("plc_sequence_number", U32),
        Field("transceiver_id", Raw(6)),
        Field("subnet_id", U8),
        Field("node_id", U8),
        packed(
            1,
            flag("explicit_message_received", 0),
            flag("force_neuron_config", 1),
            flag("request_neuron_state", 2),
            flag("disable_plc_encryption", 3),
            flag("disable_neuron_eeprom_lock", 4),
            bits("neuron_phase", 5, 7),
        ),
        Field("rated_frequency_hz", U8),
        Field("program_id", Raw(8)),
        Field("self_identification", Raw(30)),
        Field("pk_access_disabled", U8),
        Field("max_power_outages_recorded", U8),
        fill(1),  # 54 unused
        Field("max_total_energy_registers", U8),
        Field("registration_current_ma", U16),
        Field("max_current_a", U16),
        Field("rated_voltage_v", U16),
        packed(
            1,
            flag("inactive_voltage_l1", 0),
            flag("inactive_voltage_l2", 1),
            flag("inactive_voltage_l3", 2),
            flag("separate_voltage_current_phases", 3),
            flag("inactive_current_l1", 4),
            flag("inactive_current_l2", 5),
            flag("inactive_current_l3", 6),
        ),
        Field("dst_off_time_delta_min", I16),
        Field("self_read_hour", U8),
        Field("self_read_minute", U8),
        Field("stop_mode_days", U8),
        fill(4),  # 68..70 mfg status, 71 access / test point flags
        Field("neuron_state", U8),
        Field("phase", U8),
        Field("plc_comm_threshold_min", U16),
        Field("broadcast_time", LTIME_DATE),
        Field("broadcast_base", U32),
        Field("broadcast_delta", U16),
        Field("reverse_energy_current_threshold_ma", U16),
        Field("plc_signal", U8),
        fill(25),  # 91..115 PLC tuning, NVM size, MEP seq copy, premise and voltage settings
        Field("idt_version", U8),
        fill(10),  # 117..126 tilt timer, registration current, alarm settings, key usage count
        Field("security_mode", U8),
        fill(1),  # 128 FCM message count
        Field("mep_sequence_numbers", Array(U32, 2)),
    ],
    required=20,
)


# Fields past the end of the data (older firmware) are ``None``.
ET04 = FixedTable(TableId.ET04, SystemInformation, ET04_LAYOUT)
