"""MEP/M-Bus device tables: ET13, ET14, ET16, ET50 (MEP guide, sections of those names).

All are arrays dimensioned by ET11: ET13/ET14/ET16 hold ET11.0 device entries of ET11.1 /
ET11.2 / ET11.5 bytes; the first four entries are M-Bus devices, the rest (one on Gen 3, two on
Gen 4) MEP clients.  ET50 holds ET11.34 MEP client entries sized by ET11.22.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import (
    LTIME_DATE,
    NI_FMAT1,
    U8,
    U16,
    U32,
    Array,
    Field,
    Kind,
    Layout,
    Raw,
    Records,
    Text,
    bits,
    fill,
    flag,
    list_table,
    packed,
)
from mepgate.tables.dimensions import Dimensions, MfgDimensions
from mepgate.tables.errors import InvalidDimensionError
from mepgate.tables.ids import TableId
from mepgate.tables.table import DimensionedTable
from mepgate.tables.timestamps import LTimeDate

#: ET11 "Number of Devices": one MEP client and 4 M-Bus devices (Gen 3), or two MEP clients.
MBUS_DEVICE_SLOTS = 4
_REREAD = "re-read ET11 (its entry sizes dimension this table)"

_SCHEDULE_FIELDS = [
    Field("billing_read_day", U8),
    Field("billing_read_hour", U8),
    Field("billing_read_minute", U8),
    Field("billing_read_frequency", U8),
    Field("status_read_frequency_min", U16),
    Field("baud_rate", U8),
    Field("device_alarm_bitmask", U8),
]


def _entry_slots(dims: Dimensions) -> tuple[int, ...]:
    """Indices of the ET13/ET14/ET16 entries (0..3 M-Bus, then MEP clients)."""
    return tuple(range(dims.mfg.number_of_devices))


def _padded(name: str, fields: list[Field], size: int) -> list[Field]:
    used = sum(f.kind.size for f in fields)
    if size < used:
        raise InvalidDimensionError(
            f"{name}: ET11 gives entries of {size} bytes, but the guide's entry needs {used}: "
            f"{_REREAD}"
        )
    return fields + ([fill(size - used)] if size > used else [])


# -- ET13 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceSchedule:
    """The first 9 bytes of every ET13 entry (``_SCHEDULE_FIELDS``), M-Bus device or MEP client."""

    billing_read_day: int | None = None
    billing_read_hour: int | None = None
    billing_read_minute: int | None = None
    billing_read_frequency: int | None = None
    status_read_frequency_min: int | None = None
    baud_rate: int | None = None
    device_alarm_bitmask: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class MBusDeviceConfig(DeviceSchedule):
    """ET13 entry of an M-Bus device."""

    customer_id: str | None = None
    app_reset_parameter: int | None = None
    security_key_length: int | None = None
    security_key: bytes | None = None
    ta_bit_times: int | None = None
    to_ms: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class MepClientConfig(DeviceSchedule):
    """ET13 entry of a MEP client: its alert flags and non-urgent downlink data."""

    scheduled_read_request: bool | None = None
    on_demand_request: bool | None = None
    mbus_change: bool | None = None
    delta_data_alert: bool | None = None
    downlink_data: bytes | None = None

    @property
    def alert_pending(self) -> bool:
        """Whether any alert flag asks the client to act (MEP guide, "Alert Sequence")."""
        return bool(
            self.scheduled_read_request
            or self.on_demand_request
            or self.mbus_change
            or self.delta_data_alert
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceConfiguration:
    """ET13 "MEP/M-Bus Device Configuration"."""

    entries: tuple[MBusDeviceConfig | MepClientConfig, ...] | None = None

    def mep_clients(self) -> tuple[MepClientConfig, ...]:
        return tuple(e for e in self.entries or () if isinstance(e, MepClientConfig))


def et13_entry_layout(dims: Dimensions, slot: int) -> Layout[MBusDeviceConfig | MepClientConfig]:
    """An ET13 entry: M-Bus for slots 0..3, MEP client after; ET11.1 bytes each."""
    size = dims.mfg.require("config_entry_size")
    if slot < MBUS_DEVICE_SLOTS:
        mbus = [
            *_SCHEDULE_FIELDS,
            Field("customer_id", Text(20)),
            Field("app_reset_parameter", U8),
            Field("security_key_length", U8),
            Field("security_key", Raw(32)),
            Field("ta_bit_times", U16),
            Field("to_ms", U16),
        ]
        return Layout("ET13 M-Bus entry", MBusDeviceConfig, _padded("ET13", mbus, size))
    if size < 9:
        raise InvalidDimensionError(f"ET13: ET11 entry size {size} < 9: {_REREAD}")
    mep = [
        *_SCHEDULE_FIELDS,
        packed(
            1,
            flag("scheduled_read_request", 0),
            flag("on_demand_request", 1),
            flag("mbus_change", 3),
            flag("delta_data_alert", 4),
        ),
        Field("downlink_data", Raw(size - 9)),
    ]
    return Layout("ET13 MEP entry", MepClientConfig, mep)


def et13_layout(dims: Dimensions) -> Layout[DeviceConfiguration]:
    """MEP guide, ET13: ARRAY[ET11.0] of ET11.1-byte entries."""
    kinds: list[Kind] = [et13_entry_layout(dims, s) for s in _entry_slots(dims)]
    return list_table("ET13", DeviceConfiguration, Field("entries", Records(kinds)), hint=_REREAD)


ET13 = DimensionedTable(TableId.ET13, DeviceConfiguration, et13_layout)


def mep_client_config_offset(dims: Dimensions, client: int = 1) -> int:
    """Offset of MEP client ``client``'s ET13 entry (its alert flags are 8 bytes further)."""
    return (MBUS_DEVICE_SLOTS + client - 1) * dims.mfg.require("config_entry_size")


# -- ET14 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceStatus:
    """ET14 entry (ET11.2 bytes; 36 in the guide)."""

    device_handle: int | None = None
    device_status: int | None = None  # 0 empty, 1/2 M-Bus up/down, 3/4 MEP up/down
    baud_rate: int | None = None
    billing_read_length: int | None = None
    read_attempts: int | None = None
    read_answers: int | None = None
    billing_data_collected: bool | None = None
    app_error_response: bool | None = None
    new_device_alarm: bool | None = None
    billing_read_overflow: bool | None = None
    failed_comms_on_read: bool | None = None
    serial_number_mismatch: bool | None = None
    mep_firmware_switchover_success: bool | None = None
    mep_firmware_switchover_failure: bool | None = None
    mbus_primary_address: int | None = None
    mep_device_alarms: int | None = None
    status_read_time: LTimeDate | None = None
    last_read_attempt: LTimeDate | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceStatusTable:
    """ET14 "MEP/M-Bus Device Status"."""

    auto_discovery_mode: bool
    device_occupancy: int  # bit n: slot n occupied (0..3 M-Bus, 4..5 MEP)
    entries: tuple[DeviceStatus, ...] | None = None

    def occupied(self, slot: int) -> bool:
        return bool(self.device_occupancy >> slot & 1)


def et14_entry_layout(dims: Dimensions) -> Layout[DeviceStatus]:
    """An ET14 entry; offsets in the guide are +6 (the table header)."""
    return mbus_status_layout(dims.mfg)


#: ET14's header before the entries: mode (1), reserved UINT32 (4), device occupancy (1).
ET14_HEADER_SIZE = 6


def mbus_status_layout(mfg: MfgDimensions) -> Layout[DeviceStatus]:
    """An ET14 entry from ET11 alone (a sub-meter reader needs nothing else)."""
    fields = [
        Field("device_handle", U16),
        Field("device_status", U8),
        Field("baud_rate", U8),
        Field("billing_read_length", U16),
        Field("read_attempts", U32),
        Field("read_answers", U32),
        packed(
            2,
            flag("billing_data_collected", 0),
            flag("app_error_response", 1),
            flag("new_device_alarm", 2),
            flag("billing_read_overflow", 3),
            flag("failed_comms_on_read", 4),
            flag("serial_number_mismatch", 5),
            flag("mep_firmware_switchover_success", 6),
            flag("mep_firmware_switchover_failure", 7),
        ),
        Field("mbus_primary_address", U8),
        fill(6),  # reserved LTIME_DATE
        Field("mep_device_alarms", U8),
        Field("status_read_time", LTIME_DATE),
        Field("last_read_attempt", LTIME_DATE),
    ]
    size = mfg.require("status_entry_size")
    return Layout("ET14 entry", DeviceStatus, _padded("ET14", fields, size), hint=_REREAD)


def et14_layout(dims: Dimensions) -> Layout[DeviceStatusTable]:
    """MEP guide, ET14: mode, reserved UINT32, occupancy, ARRAY[ET11.0] of entries."""
    return Layout(
        "ET14",
        DeviceStatusTable,
        [
            packed(1, flag("auto_discovery_mode", 0)),
            fill(4),
            Field("device_occupancy", U8),
            Field("entries", Array(et14_entry_layout(dims), dims.mfg.number_of_devices)),
        ],
        required=3,
        exact=True,
        hint=_REREAD,
    )


ET14 = DimensionedTable(TableId.ET14, DeviceStatusTable, et14_layout)


# -- ET16 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class MBusBillingRead:
    """ET16 record of an M-Bus device: the raw telegram (length-prefixed)."""

    timestamp: LTimeDate | None = None
    data_order_msb_first: bool | None = None
    fixed_data_structure: bool | None = None
    key_available: bool | None = None
    authentication: int | None = None
    security_failed: bool | None = None
    telegram_length: int | None = None
    telegram_area: bytes | None = None

    @property
    def telegram(self) -> bytes:
        return (self.telegram_area or b"")[: self.telegram_length or 0]


@dataclass(frozen=True, kw_only=True, slots=True)
class MepBillingRead:
    """ET16 record of a MEP client: the data it last posted."""

    timestamp: LTimeDate | None = None
    read_count: int | None = None
    data_length: int | None = None
    data_area: bytes | None = None

    @property
    def data(self) -> bytes:
        return (self.data_area or b"")[: self.data_length or 0]


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceData:
    """ET16 "MEP/M-Bus Device Data"."""

    entries: tuple[MBusBillingRead | MepBillingRead, ...] | None = None


def et16_entry_layout(dims: Dimensions, slot: int) -> Layout[MBusBillingRead | MepBillingRead]:
    """An ET16 record (ET11.5 bytes): timestamp, response info, then M-Bus or MEP data."""
    return device_data_layout(dims.mfg, slot)


def device_data_layout(mfg: MfgDimensions, slot: int) -> Layout[MBusBillingRead | MepBillingRead]:
    """An ET16 record from ET11 alone."""
    size = mfg.require("data_entry_size")
    if size < 11:
        raise InvalidDimensionError(f"ET16: ET11 data entry size {size} < 11: {_REREAD}")
    if slot < MBUS_DEVICE_SLOTS:
        return Layout(
            "ET16 M-Bus record",
            MBusBillingRead,
            [
                Field("timestamp", LTIME_DATE),
                packed(
                    1,
                    flag("data_order_msb_first", 0),
                    flag("fixed_data_structure", 1),
                    flag("key_available", 2),
                    bits("authentication", 3, 4),
                    flag("security_failed", 5),
                ),
                Field("telegram_length", U8),
                Field("telegram_area", Raw(size - 8)),
            ],
            hint=_REREAD,
        )
    return Layout(
        "ET16 MEP record",
        MepBillingRead,
        [
            Field("timestamp", LTIME_DATE),
            fill(1),  # response info: not applicable to MEP clients
            Field("read_count", U16),
            Field("data_length", U16),
            Field("data_area", Raw(size - 11)),
        ],
        hint=_REREAD,
    )


def et16_layout(dims: Dimensions) -> Layout[DeviceData]:
    """MEP guide, ET16: ARRAY[ET11.0] of ET11.5-byte records."""
    kinds: list[Kind] = [et16_entry_layout(dims, s) for s in _entry_slots(dims)]
    return list_table("ET16", DeviceData, Field("entries", Records(kinds)), hint=_REREAD)


ET16 = DimensionedTable(TableId.ET16, DeviceData, et16_layout)


# -- ET50 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class MepInbound:
    """ET50 entry of one MEP client."""

    identification: bytes | None = None
    registered: bool | None = None
    et59_response: bool | None = None
    mbus_alerts: bool | None = None
    delta_data_alerts: bool | None = None
    icon_display_control: tuple[int, ...] | None = None
    display_data: tuple[int, ...] | None = None
    house_icon: int | None = None  # 0 off, 1 on, 2 flash
    short_bar: int | None = None
    medium_bar: int | None = None
    long_bar: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class MepInboundDataSpace:
    """ET50 "MEP Inbound Data Space"."""

    entries: tuple[MepInbound, ...] | None = None


def et50_entry_layout(dims: Dimensions) -> Layout[MepInbound]:
    """An ET50 entry: 30-byte id, flags (30), icons (31), data (31 + 2n), icon bytes (31 + 6n)."""
    n = dims.mfg.require("mep_data_sources")
    return Layout(
        "ET50 entry",
        MepInbound,
        [
            Field("identification", Raw(30)),
            packed(
                1,
                flag("registered", 0),
                flag("et59_response", 1),
                flag("mbus_alerts", 2),
                flag("delta_data_alerts", 3),
            ),
            Field("icon_display_control", Array(U16, n)),
            Field("display_data", Array(NI_FMAT1, n)),
            packed(1, bits("house_icon", 0, 3), bits("short_bar", 4, 7)),
            packed(1, bits("medium_bar", 0, 3), bits("long_bar", 4, 7)),
            fill(2),
        ],
        hint=_REREAD,
    )


def et50_layout(dims: Dimensions) -> Layout[MepInboundDataSpace]:
    """MEP guide, ET50: ARRAY[ET11.34] (one entry before firmware 4.0)."""
    return list_table(
        "ET50",
        MepInboundDataSpace,
        Field("entries", Array(et50_entry_layout(dims), dims.mep_channel_count)),
        hint=_REREAD,
    )


ET50 = DimensionedTable(TableId.ET50, MepInboundDataSpace, et50_layout)
