"""The meter's MEP/M-Bus side: ET13, ET14, ET15, ET16, ET50, alert conditions and EP39.

MEP guide, "Alert Sequence": while a condition in ET13's "Alert Flags" is set the meter sends
``00 00`` once per second; the condition ends when the client does what the flag asks --
EP39 with scheduled read data (scheduled read request), reading ET15 (on-demand request),
EP39 with "Clear M-Bus Alert" (M-Bus change).  The M-Bus devices (:mod:`.mbus`, one to four,
a water meter by default) sit in slots 1..4 (table entries 0..3).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from mepgate.proto import ProcedureResult
from mepgate.proto.procedures import MepPostType
from mepgate.simulator.model.mbus import MBusDevice
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import InvalidDimensionError
from mepgate.tables.mep import (
    MBUS_DEVICE_SLOTS,
    DeviceConfiguration,
    DeviceData,
    DeviceStatus,
    DeviceStatusTable,
    MBusBillingRead,
    MBusDeviceConfig,
    MepBillingRead,
    MepClientConfig,
    MepInbound,
    MepInboundDataSpace,
    device_data_layout,
)
from mepgate.tables.recurring import (
    ET45_ENTRY_HEAD,
    ET45_ENTRY_HEAD_SIZE,
    ET45_HEADER,
    ET45_TABLE_NUMBER,
    RESULT_SUCCESS,
    ActualDimension,
    RecurringEntryHead,
    RecurringLogHeader,
    encode_et36,
)
from mepgate.tables.timestamps import LTimeDate

#: ET13 "Baud Rate" codes (MEP guide, ET13) -> bits per second.
BAUD_RATE_BPS = {
    0: 9600,
    1: 300,
    2: 600,
    3: 1200,
    4: 2400,
    5: 4800,
    6: 9600,
    7: 14400,
    8: 19200,
    9: 28800,
    10: 38400,
    11: 57600,
    12: 115200,
}
MBUS_DEFAULT_BAUD_CODE = 4
_NEVER = LTimeDate(year=2000, month=0, day=0, hour=0, minute=0, second=0)
# ET14 "Device Status" values.
_STATUS_EMPTY, _STATUS_MBUS_UP, _STATUS_MBUS_DOWN, _STATUS_MEP_UP = 0, 1, 2, 3
_ET16_RECORD_HEADER = 8  # timestamp (6), response info, telegram length (MEP guide, ET16)


@dataclasses.dataclass(slots=True)
class AlertFlags:
    """ET13 "Alert Flags" of MEP client 1 (set and cleared by the meter only)."""

    scheduled_read_request: bool = False
    on_demand_request: bool = False
    mbus_change: bool = False
    delta_data_alert: bool = False

    @property
    def pending(self) -> bool:
        return (
            self.scheduled_read_request
            or self.on_demand_request
            or self.mbus_change
            or self.delta_data_alert
        )


class MepPort:
    """State behind ET13..ET16 and ET50 for MEP client 1 and the M-Bus devices."""

    def __init__(
        self, dims: Dimensions, *, devices: list[MBusDevice], et16_compat: bool = True
    ) -> None:
        self.dims = dims
        self.alerts = AlertFlags()
        self.devices = {device.slot: device for device in devices}
        # MEP guide, ET16: a device's first read goes to ET16; later scheduled reads go to ET45,
        # and to ET16 as well while the compatibility setting says so (``et16_compat``).
        self.et16_compat = et16_compat
        self.et16_reads: dict[int, tuple[bytes, LTimeDate]] = {}
        self.log = RecurringLog(dims)
        self.posted = MepBillingRead(timestamp=_NEVER, read_count=0, data_length=0)
        self.on_demand_queue: list[bytes] = []
        self.config = _initial_config(dims, self.devices)
        self.inbound = MepInboundDataSpace(
            entries=tuple(_initial_inbound(dims) for _ in range(dims.mep_channel_count))
        )

    # -- settings a client writes ------------------------------------------------------------
    @property
    def client(self) -> MepClientConfig:
        entry = (self.config.entries or ())[MBUS_DEVICE_SLOTS]
        if not isinstance(entry, MepClientConfig):  # pragma: no cover - ET13's layout decides
            raise InvalidDimensionError(
                f"ET13 slot {MBUS_DEVICE_SLOTS} must be a MEP client entry: check ET11"
            )
        return entry

    @property
    def baud_rate_bps(self) -> int:
        """The MEP port speed ET13 asks for (unknown codes fall back to the default 9600)."""
        return BAUD_RATE_BPS.get(self.client.baud_rate or 0, 9600)

    @property
    def et59_response(self) -> bool:
        entries = self.inbound.entries or ()
        return bool(entries and entries[0].et59_response)

    @property
    def mbus_alerts_enabled(self) -> bool:
        entries = self.inbound.entries or ()
        return bool(entries and entries[0].mbus_alerts)

    # -- tables ------------------------------------------------------------------------------
    def et13(self) -> DeviceConfiguration:
        """ET13 with the meter-owned alert flags merged into MEP client 1's entry."""
        entries = list(self.config.entries or ())
        entries[MBUS_DEVICE_SLOTS] = dataclasses.replace(
            self.client,
            scheduled_read_request=self.alerts.scheduled_read_request,
            on_demand_request=self.alerts.on_demand_request,
            mbus_change=self.alerts.mbus_change,
            delta_data_alert=self.alerts.delta_data_alert,
        )
        return DeviceConfiguration(entries=tuple(entries))

    def et14(self) -> DeviceStatusTable:
        size = self.dims.mfg.require("data_entry_size")
        entries = []
        for slot in range(self.dims.mfg.number_of_devices):
            device = self.devices.get(slot)
            if device is not None:
                shown = self.et16_reads.get(slot, (b"", _NEVER))[0]
                stored = min(len(shown), size - _ET16_RECORD_HEADER)
                entries.append(
                    _status(
                        handle=device.handle,
                        status=_STATUS_MBUS_UP if device.answering else _STATUS_MBUS_DOWN,
                        baud=MBUS_DEFAULT_BAUD_CODE,
                        length=_ET16_RECORD_HEADER + stored if stored else 0,
                        reads=device.answers,
                        attempts=device.attempts,
                        failed=not device.answering,
                        at=device.read_at or _NEVER,
                        address=slot + 1,
                    )
                )
            elif slot == MBUS_DEVICE_SLOTS:
                entries.append(
                    _status(
                        handle=0x0100 + slot,
                        status=_STATUS_MEP_UP,
                        baud=self.client.baud_rate or 0,
                        length=self.posted.data_length or 0,
                        reads=self.posted.read_count or 0,
                        at=self.posted.timestamp or _NEVER,
                        address=0,
                    )
                )
            else:
                entries.append(
                    _status(handle=0, status=_STATUS_EMPTY, baud=0, length=0, reads=0, at=_NEVER)
                )
        occupancy = 1 << MBUS_DEVICE_SLOTS
        for slot in self.devices:
            occupancy |= 1 << slot
        return DeviceStatusTable(
            auto_discovery_mode=False, device_occupancy=occupancy, entries=tuple(entries)
        )

    def et15_bytes(self) -> bytes:
        """ET15 "MEP/M-Bus On-demand Requests" (no codec in mepgate.tables yet).

        MEP guide, ET15: pointers byte, ARRAY[ET11.3] of ET11.4-byte requests (transaction,
        handle, type, result), ARRAY[ET11.3] of ET11.11-byte write messages (length + data),
        then the ET11.20-byte multicast message (length + data).
        """
        mfg = self.dims.mfg
        slots = mfg.require("on_demand_queue_size")
        entry_size = mfg.require("on_demand_entry_size")
        write_size = mfg.require("on_demand_write_entry_size")
        multicast_size = mfg.require("mbus_multicast_message_length")
        queue = self.on_demand_queue[-slots:]
        requests = bytearray()
        writes = bytearray()
        for n in range(slots):
            if n < len(queue):
                data = queue[n][: write_size - 1]
                request = (n + 1).to_bytes(2, "little") + (0x0100 + MBUS_DEVICE_SLOTS).to_bytes(
                    2, "little"
                )
                requests += (request + bytes([4, 1])).ljust(entry_size, b"\0")  # write data, done
                writes += (bytes([len(data)]) + data).ljust(write_size, b"\0")
            else:
                requests += bytes(entry_size)
                writes += bytes(write_size)
        pointers = len(queue) % slots
        return bytes([pointers]) + bytes(requests) + bytes(writes) + bytes(multicast_size)

    def et16(self) -> DeviceData:
        size = self.dims.mfg.require("data_entry_size")
        entries: list[MBusBillingRead | MepBillingRead] = []
        for slot in range(self.dims.mfg.number_of_devices):
            if slot < MBUS_DEVICE_SLOTS:
                telegram, read_at = self.et16_reads.get(slot, (b"", _NEVER))
                entries.append(billing_read(telegram, read_at, size))
            else:
                posted = self.posted if slot == MBUS_DEVICE_SLOTS else MepBillingRead()
                data = (posted.data_area or b"")[: size - 11]
                entries.append(
                    MepBillingRead(
                        timestamp=posted.timestamp or _NEVER,
                        read_count=posted.read_count or 0,
                        data_length=len(data),
                        data_area=data.ljust(size - 11, b"\0"),
                    )
                )
        return DeviceData(entries=tuple(entries))

    # -- what happens ------------------------------------------------------------------------
    def read_mbus_devices(self, when: dt.datetime, local: dt.datetime) -> None:
        """The scheduled M-Bus billing reads (UTC ``when``; ET16 stamps them in ``local``
        time); an M-Bus change alert if a reading moved."""
        for slot, device in self.devices.items():
            before = device.reported
            answers = device.answers
            device.scheduled_read(when, local)
            if device.answers != answers and device.read_at is not None:
                if answers == 0 or self.et16_compat:
                    self.et16_reads[slot] = (device.telegram, device.read_at)
                if answers > 0:
                    self.log.add(device.handle, device.telegram, device.read_at)
            if device.reported != before and self.mbus_alerts_enabled:
                self.alerts.mbus_change = True

    def post_on_demand_request(self, data: bytes) -> None:
        """The head end queues data for the MEP client (ET15): the on-demand alert rises."""
        self.on_demand_queue.append(bytes(data))
        self.alerts.on_demand_request = True

    def on_demand_read(self) -> None:
        """The client read ET15: the on-demand request is serviced."""
        self.alerts.on_demand_request = False

    def post_mep_data(self, parameters: bytes, when: dt.datetime) -> ProcedureResult:
        """EP39 "Post MEP Data": store the posted data and clear what the post answers."""
        if not parameters:
            return ProcedureResult.INVALID_PARAMETER
        try:
            post = MepPostType(parameters[0])
        except ValueError:
            return ProcedureResult.INVALID_PARAMETER
        if post in (MepPostType.SCHEDULED_READ_DATA, MepPostType.SCHEDULED_READ_DATA_WITH_ALARMS):
            self.alerts.scheduled_read_request = False
        elif post is MepPostType.CLEAR_MBUS_ALERT:
            self.alerts.mbus_change = False
            return ProcedureResult.COMPLETED
        elif post is MepPostType.CLEAR_DELTA_DATA_ALERT:
            self.alerts.delta_data_alert = False
            return ProcedureResult.COMPLETED
        self.posted = MepBillingRead(
            timestamp=LTimeDate.from_datetime(when),
            read_count=((self.posted.read_count or 0) + 1) & 0xFFFF,
            data_length=len(parameters) - 1,
            data_area=parameters[1:],
        )
        return ProcedureResult.COMPLETED


def billing_read(telegram: bytes, read_at: LTimeDate, size: int) -> MBusBillingRead:
    """An ET16 record (MBR) of ``size`` bytes holding ``telegram`` (empty: no read yet)."""
    telegram = telegram[: size - _ET16_RECORD_HEADER]
    return MBusBillingRead(
        timestamp=read_at if telegram else _NEVER,
        data_order_msb_first=False,
        fixed_data_structure=False,
        key_available=False,
        authentication=0,
        security_failed=False,
        telegram_length=len(telegram),
        telegram_area=telegram.ljust(size - _ET16_RECORD_HEADER, b"\0"),
    )


class RecurringLog:
    """ET45 "MEP Recurring Read Log" (a circular queue) and ET36, which dimensions it.

    MEP guide, ET45: header (flags, valid entries, last entry element, last entry sequence
    number, unread entries), then entries of ET36's "Entry Size": length, identifier, handle,
    execution status, result, and an ET16-style record (MBR).
    """

    ENTRIES = 32

    def __init__(self, dims: Dimensions) -> None:
        self.dims = dims
        self.record_size = dims.mfg.require("data_entry_size")
        self.entry_size = ET45_ENTRY_HEAD_SIZE + self.record_size  # 525 with ET11's 517
        self.entries = [bytes(self.entry_size)] * self.ENTRIES
        self.valid = 0
        self.last = self.ENTRIES - 1
        self.sequence = 0
        self.unread = 0

    def add(self, handle: int, telegram: bytes, read_at: LTimeDate) -> None:
        record = billing_read(telegram, read_at, self.record_size)
        mbr = device_data_layout(self.dims.mfg, 0).encode(record)
        head = RecurringEntryHead(
            # Identifier, handle, status, result, the record's header and its telegram.
            length=6 + _ET16_RECORD_HEADER + (record.telegram_length or 0),
            identifier=0,
            namespace=2,  # OSGP
            handle=handle,
            execution_status=0,
            result=RESULT_SUCCESS,
        )
        self.last = (self.last + 1) % self.ENTRIES
        self.entries[self.last] = ET45_ENTRY_HEAD.encode(head) + mbr
        self.valid = min(self.valid + 1, self.ENTRIES)
        self.unread = min(self.unread + 1, self.ENTRIES)
        self.sequence = (self.sequence + 1) & 0xFFFF

    def et45_bytes(self) -> bytes:
        header = RecurringLogHeader(
            order=False,
            overflow=self.sequence > self.ENTRIES,
            list_type=True,
            inhibit_overflow=False,
            valid_entries=self.valid,
            last_entry_element=self.last if self.valid else 0,
            last_entry_sequence=self.sequence,
            unread_entries=self.unread,
        )
        return ET45_HEADER.encode(header) + b"".join(self.entries)

    def et36_bytes(self) -> bytes:
        """ET36's seven records; ET45's is the fifth, as the guide says."""

        def record(number: int, size: int, count: int) -> ActualDimension:
            return ActualDimension(
                table_number=number,
                extended=True,
                procedure=False,
                entry_size=size,
                max_entries=255 if number != ET45_TABLE_NUMBER else 253,
                current_entries=count,
            )

        return encode_et36(
            (
                record(31, 232, 0),
                record(32, 525, 0),
                record(38, 35, 0),
                record(41, 0, 0),
                record(ET45_TABLE_NUMBER, self.entry_size, self.ENTRIES),
                record(75, 143, 0),
                record(81, 12, 0),
            )
        )


def _status(
    *,
    handle: int,
    status: int,
    baud: int,
    length: int,
    reads: int,
    at: LTimeDate,
    address: int = 0,
    attempts: int | None = None,
    failed: bool = False,
) -> DeviceStatus:
    return DeviceStatus(
        device_handle=handle,
        device_status=status,
        baud_rate=baud,
        billing_read_length=length,
        read_attempts=reads if attempts is None else attempts,
        read_answers=reads,
        billing_data_collected=reads > 0,
        app_error_response=False,
        new_device_alarm=False,
        billing_read_overflow=False,
        failed_comms_on_read=failed,
        serial_number_mismatch=False,
        mep_firmware_switchover_success=False,
        mep_firmware_switchover_failure=False,
        mbus_primary_address=address,
        mep_device_alarms=0,
        status_read_time=at,
        last_read_attempt=at,
    )


def _initial_config(dims: Dimensions, devices: dict[int, MBusDevice]) -> DeviceConfiguration:
    size = dims.mfg.require("config_entry_size")
    entries: list[MBusDeviceConfig | MepClientConfig] = []
    for slot in range(dims.mfg.number_of_devices):
        if slot < MBUS_DEVICE_SLOTS:
            device = devices.get(slot)
            entries.append(
                MBusDeviceConfig(
                    billing_read_day=0,
                    billing_read_hour=0,
                    billing_read_minute=0,
                    billing_read_frequency=0 if device else 4,  # hourly / never
                    status_read_frequency_min=0,
                    baud_rate=MBUS_DEFAULT_BAUD_CODE,
                    device_alarm_bitmask=0,
                    customer_id=f"{device.medium.upper()}-{slot + 1}" if device else "",
                    app_reset_parameter=0,
                    security_key_length=0,
                    security_key=bytes(32),
                    ta_bit_times=0,
                    to_ms=0,
                )
            )
        else:
            entries.append(
                MepClientConfig(
                    billing_read_day=0,
                    billing_read_hour=0,
                    billing_read_minute=0,
                    billing_read_frequency=4,  # never: scheduled reads come from the model
                    status_read_frequency_min=0,
                    baud_rate=0,  # 9600, the MEP default
                    device_alarm_bitmask=0,
                    scheduled_read_request=False,
                    on_demand_request=False,
                    mbus_change=False,
                    delta_data_alert=False,
                    downlink_data=bytes(size - 9),
                )
            )
    return DeviceConfiguration(entries=tuple(entries))


def _initial_inbound(dims: Dimensions) -> MepInbound:
    sources = dims.mfg.require("mep_data_sources")
    return MepInbound(
        identification=bytes(30),
        registered=True,
        et59_response=False,
        mbus_alerts=False,
        delta_data_alerts=False,
        icon_display_control=(0,) * sources,
        display_data=(0,) * sources,
        house_icon=0,
        short_bar=0,
        medium_bar=0,
        long_bar=0,
    )
