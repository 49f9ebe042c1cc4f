"""The M-Bus sub-meter job: discover devices from ET11/ET14, read their data from ET16.

MEP guide, "Reading M-Bus Scheduled Read Data": a device commissioned on the meter gets a
slot 1..4; ET14's "Device Occupancy" bits say which slots are in use (poll about once a
minute), each ET14 entry has the device's handle, status ("up" / "down (lost
communications)"), the length of its latest billing read in ET16 ("Billing Read Length") and
counters of attempted and answered reads; ET16 holds the latest billing read per slot (its
size per entry is ET11 "Data Entry Size").  So the job:

1. reads ET11 once (the entry sizes);
2. every :data:`CHECK_INTERVAL_S` reads ET14 (in pieces of at most ``client.max_read``);
3. when a slot's answered-read counter, handle or billing read length moved, reads that
   slot's ET16 entry -- only its "Billing Read Length" bytes -- decodes the EN 13757-3
   telegram (:mod:`mepgate.mbus`), validates the value (a volume or energy never decreases
   unless the device was swapped: a new identification number), stores it and publishes it
   on the :class:`~mepgate.service.submeter_board.SubmeterBoard`.

Scheduled reads after a device's first one go to ET45, the recurring read log (and to ET16
too only if the meter's compatibility setting says so).  So the job also reads ET36 once
(ET45's entry size and count), then after each ET14 check ET45's header (6 bytes), the heads of
the entries posted since the last look (length and device handle) and, for a device in a slot,
the entry itself -- only its length's bytes (the guide's steps 5 to 7).  A read older than one
the gateway has (ET16's first read after ET45's later ones) is skipped.

A slot whose ET14 status says the device is down, or "failed comms on read", is unavailable
(its last value kept, never zero).  Every step is one read.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from mepgate.client import MeterRefusedError
from mepgate.mbus import MBusDecodeError, Telegram, decode_long_header_data, main_value
from mepgate.service.jobs import JobContext, JobStatus
from mepgate.service.submeter_board import SubmeterBoard, SubmeterState
from mepgate.store.submeters import SubmeterDevice
from mepgate.tables.dimensions import ET11_LAYOUT, MfgDimensions
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.ids import TableId, table_name
from mepgate.tables.mep import (
    ET14_HEADER_SIZE,
    MBUS_DEVICE_SLOTS,
    DeviceStatus,
    MBusBillingRead,
    device_data_layout,
    mbus_status_layout,
)
from mepgate.tables.recurring import (
    ET36_RECORD_SIZE,
    ET45_ENTRY_HEAD,
    ET45_ENTRY_HEAD_SIZE,
    ET45_HEADER,
    ET45_HEADER_SIZE,
    RESULT_SUCCESS,
    ActualDimension,
    decode_et36,
    et45_dimensions,
    et45_entry_offset,
)

if TYPE_CHECKING:
    from mepgate.client import MeterClient
    from mepgate.store import AsyncStore

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 60.0
"""How often ET14 is read (the guide: "approximately once per minute")."""
RETRY_AFTER_S = 30.0
"""After a failed step, the job waits this long before its next one."""
UNSUPPORTED_RETRY_S = 600.0
"""A meter that refused ET11/ET14 is asked again this much later."""
_STATUS_UP, _STATUS_DOWN = 1, 2  # ET14 "Device Status" of M-Bus devices
FIRST_LOOK_ENTRIES = 16
"""On the first look at ET45, this many of its newest entries are read (their heads, and the
whole entry of a device in a slot)."""
_ET16_PREFIX = 8  # ET16 record: timestamp (6), response info (1), telegram length (1)
_DECREASE_TOLERANCE = 1e-9


@dataclass(slots=True)
class _PendingRead:
    """A read of ``count`` bytes at ``offset`` of ``table``, in pieces; ``kind`` says what it
    is for (``"et36"``, ``"et14"``, ``"et16"``, ``"et45-header"``, ``"et45-head"``,
    ``"et45-entry"``), ``slot`` the M-Bus slot (0-based) or ``element`` the ET45 entry it
    concerns."""

    kind: str
    table: int
    offset: int
    count: int
    slot: int | None = None
    element: int | None = None
    data: bytearray = field(default_factory=bytearray)

    @property
    def done(self) -> bool:
        return len(self.data) >= self.count


@dataclass(frozen=True, slots=True)
class _Seen:
    handle: int
    answers: int
    length: int


class MBusJob:
    """Reads a meter's M-Bus sub-meters beside the live poll (see the module doc)."""

    def __init__(
        self,
        meter: str,
        *,
        board: SubmeterBoard,
        store: Callable[[], AsyncStore | None],
        check_interval: float = CHECK_INTERVAL_S,
    ) -> None:
        self.meter = meter
        self._board = board
        self._store = store
        self._check_interval = check_interval
        self._mfg: MfgDimensions | None = None
        self._loaded = False
        self._work: list[_PendingRead] = []  # the reads to do, the first one under way
        self._seen: dict[int, _Seen] = {}
        self._et45: ActualDimension | None = None  # ET45's dimensions (ET36), if it has one
        self._et36_read = False
        self._et45_sequence: int | None = None  # the newest ET45 entry taken
        self._et45_previous: int | None = None  # ... before the last look at the header
        self._handles: dict[int, int] = {}  # device handle -> slot (0-based), from ET14
        self._due = 0.0  # monotonic time of the next ET14 check
        self._state = "idle"
        self._detail = "waiting for the first check"
        self._found: int | None = None  # M-Bus devices ET14 listed at the last check
        self._last_error: str | None = None
        self._last_success: dt.datetime | None = None
        self.bytes_read = 0

    @property
    def name(self) -> str:
        return "m-bus"

    def __repr__(self) -> str:
        return f"MBusJob({self.meter!r})"

    # -- MeterJob ------------------------------------------------------------------------------
    def wants_to_run(self, context: JobContext) -> bool:
        if self._work:
            return True
        return context.monotonic() >= self._due  # the first check, the next, or a retry

    def status(self) -> JobStatus:
        return JobStatus(
            name=self.name,
            state=self._state,
            detail=self._summary(self._found) if self._found is not None else self._detail,
            last_error=self._last_error,
            last_success_at=self._last_success,
        )

    def failed(self, error: BaseException, context: JobContext) -> None:
        # Entries not read yet are read after the next ET14 check (it finds them new again);
        # ET45 entries not read yet are read after the next look at its header.
        for work in self._work:
            if work.kind == "et16" and work.slot is not None:
                self._seen.pop(work.slot, None)
            if work.kind in ("et45-head", "et45-entry"):
                self._et45_sequence = self._et45_previous  # look at those entries again
        self._work.clear()
        if isinstance(error, MeterRefusedError) and self._mfg is None:
            self._state = "unsupported"
            self._detail = f"the meter refused the M-Bus tables (ET11): {error}"
            self._found = None
            self._due = context.monotonic() + UNSUPPORTED_RETRY_S
            return
        self._state = "failed"
        self._last_error = str(error) or type(error).__name__
        self._due = context.monotonic() + RETRY_AFTER_S
        log.warning("meter %s: M-Bus sub-meters: %s (trying again)", self.meter, error)

    async def step(self, client: MeterClient, context: JobContext) -> None:
        if not self._loaded:
            await self._load()
            return
        if self._mfg is None:
            data = await client.read(TableId.ET11)
            self.bytes_read += len(data)
            self._mfg = ET11_LAYOUT.decode(data)
            self._check_dimensions(self._mfg)
            return
        if not self._et36_read and not self._work:
            await self._read_et36_count(client)
            return
        mfg = self._mfg
        if not self._work:
            size = ET14_HEADER_SIZE + mfg.number_of_devices * mfg.require("status_entry_size")
            self._work.append(_PendingRead("et14", TableId.ET14, 0, size))
        work = self._work[0]
        offset = work.offset + len(work.data)
        count = min(client.max_read, work.count - len(work.data))
        part = await client.read(work.table, offset=offset, count=count)
        self.bytes_read += len(part)
        if not part:
            raise TableDecodeError(f"{table_name(work.table)}: the meter sent no data")
        work.data += part
        if not work.done:
            return
        self._work.pop(0)
        data = bytes(work.data[: work.count])
        if work.kind == "et36":
            self._take_et36(data)
        elif work.kind == "et14":
            self._checked(data, mfg, context)
        elif work.kind == "et16" and work.slot is not None:
            await self._read_entry(work.slot, data, context)
        elif work.kind == "et45-header":
            self._log_header(data)
        elif work.kind == "et45-head" and work.element is not None:
            self._log_head(work.element, data)
        elif work.kind == "et45-entry" and work.slot is not None:
            await self._read_entry(work.slot, data, context)

    async def _read_et36_count(self, client: MeterClient) -> None:
        """ET36 once: ET45's entry size and count (a meter without it has no ET45 log).  Its
        record count first (one byte), then the records in pieces of ``max_read`` like any other
        read of this job (a line that damages long replies gets shorter ones; the whole table
        in one reply failed there again and again).  A read lost on the line is asked again at
        the job's next try: until ET36 was read, or refused, reads logged only in ET45 would
        never arrive."""
        try:
            data = await client.read(TableId.ET36, offset=0, count=1)
        except MeterRefusedError as refused:
            self._et36_read = True
            log.info("meter %s: no ET36 (%s): M-Bus reads from ET16 only", self.meter, refused)
            return
        self.bytes_read += len(data)
        count = data[0]
        if count == 0:
            self._et36_read = True
            return
        self._work.append(_PendingRead("et36", TableId.ET36, 0, 1 + count * ET36_RECORD_SIZE))

    def _take_et36(self, data: bytes) -> None:
        self._et36_read = True
        found = et45_dimensions(decode_et36(data))
        if found is not None and found.current_entries and found.entry_size:
            self._et45 = found

    def _log_header(self, data: bytes) -> None:
        """ET45's header: queue the heads of the entries posted since the last look (on the
        first look, the newest few: one per device is enough to be current)."""
        dims = self._et45
        if dims is None or not dims.current_entries or not dims.entry_size:
            return
        header = ET45_HEADER.decode(data)
        entries = dims.current_entries
        valid = min(header.valid_entries, entries)
        known = self._et45_sequence
        if known is None:
            new = min(valid, FIRST_LOOK_ENTRIES)
        else:
            new = min((header.last_entry_sequence - known) % 0x10000, valid)
        self._et45_previous, self._et45_sequence = known, header.last_entry_sequence
        elements = [(header.last_entry_element - back) % entries for back in range(new)]
        for element in reversed(elements):  # oldest first
            offset = et45_entry_offset(element, dims.entry_size)
            self._work.append(
                _PendingRead(
                    "et45-head", TableId.ET45, offset, ET45_ENTRY_HEAD_SIZE, element=element
                )
            )

    def _log_head(self, element: int, data: bytes) -> None:
        """An ET45 entry's head: if it is a successful read of a device in a slot, read the
        entry (only its length's bytes) next."""
        dims = self._et45
        head = ET45_ENTRY_HEAD.decode(data)
        slot = self._handles.get(head.handle)
        if dims is None or not dims.entry_size or slot is None:
            return
        if head.result != RESULT_SUCCESS or head.length <= ET45_ENTRY_HEAD_SIZE:
            return
        count = min(dims.entry_size, head.length + 2) - ET45_ENTRY_HEAD_SIZE
        offset = et45_entry_offset(element, dims.entry_size) + ET45_ENTRY_HEAD_SIZE
        self._work.insert(
            0, _PendingRead("et45-entry", TableId.ET45, offset, count, slot=slot, element=element)
        )

    # -- the steps ---------------------------------------------------------------------------
    async def _load(self) -> None:
        """The last stored value per slot: validation continues across restarts, and the
        pages show it (unavailable until the meter confirms the device).  A store that fails
        meanwhile is asked again at the job's next try."""
        store = self._store()
        if store is None:
            self._loaded = True
            return
        for stored in await store.submeters.latest(self.meter):
            device = stored.device
            if self._board.get(self.meter, device.slot) is not None:
                continue
            self._board.update(
                SubmeterState(
                    meter=self.meter,
                    slot=device.slot,
                    identification=device.identification,
                    manufacturer=device.manufacturer,
                    medium=device.medium,
                    medium_code=device.medium_code,
                    medium_name=device.medium,
                    unit=device.unit,
                    value=stored.value,
                    at=stored.at,
                    reason="not confirmed by the meter since the gateway started",
                )
            )
        self._loaded = True

    def _check_dimensions(self, mfg: MfgDimensions) -> None:
        for name in ("status_entry_size", "data_entry_size"):
            mfg.require(name)  # raises InvalidDimensionError (a TableDecodeError) when absent
        self._state = "idle"
        self._detail = "ET11 read; checking ET14 for devices"

    def _checked(self, data: bytes, mfg: MfgDimensions, context: JobContext) -> None:
        """ET14 read: which slots are occupied, which device answers, which has new data."""
        self._due = context.monotonic() + self._check_interval
        now = context.now()
        occupancy = data[5]
        layout = mbus_status_layout(mfg)
        entry_size = mfg.require("status_entry_size")
        slots = min(MBUS_DEVICE_SLOTS, mfg.number_of_devices)
        found = 0
        for slot in range(slots):
            start = ET14_HEADER_SIZE + slot * entry_size
            entry = layout.decode(data[start : start + entry_size])
            number = slot + 1
            if not occupancy >> slot & 1:
                self._seen.pop(slot, None)
                self._board.change(
                    self.meter, number, answering=False, reason="the meter lists no device here"
                )
                continue
            found += 1
            self._check_slot(slot, entry, now)
        if self._et45 is not None and found:
            self._work.append(_PendingRead("et45-header", TableId.ET45, 0, ET45_HEADER_SIZE))
        self._state = "idle"
        self._last_error = None
        self._last_success = now
        self._found = found

    def _check_slot(self, slot: int, entry: DeviceStatus, now: dt.datetime) -> None:
        number = slot + 1
        status = entry.device_status
        down = status == _STATUS_DOWN or bool(entry.failed_comms_on_read)
        if down:
            self._board.change(
                self.meter,
                number,
                answering=False,
                reason="the meter's last read of this device got no answer (ET14: down)",
            )
        elif status == _STATUS_UP:
            self._board.change(self.meter, number, answering=True, checked_at=now)
        seen = _Seen(
            handle=entry.device_handle or 0,
            answers=entry.read_answers or 0,
            length=entry.billing_read_length or 0,
        )
        if seen.handle:
            self._handles[seen.handle] = slot
        if seen.length <= _ET16_PREFIX or self._seen.get(slot) == seen:
            return
        self._seen[slot] = seen
        assert self._mfg is not None
        size = self._mfg.require("data_entry_size")
        self._work.append(
            _PendingRead("et16", TableId.ET16, slot * size, min(seen.length, size), slot=slot)
        )

    async def _read_entry(self, slot: int, data: bytes, context: JobContext) -> None:
        """An ET16 entry read: decode, validate, store, publish."""
        number = slot + 1
        mfg = self._mfg
        assert mfg is not None
        size = mfg.require("data_entry_size")
        record = device_data_layout(mfg, slot).decode(data.ljust(size, b"\0")[:size])
        if not isinstance(record, MBusBillingRead):  # pragma: no cover - slots 0..3 are M-Bus
            return
        if record.fixed_data_structure:
            self._slot_problem(
                number,
                "the device answers with the fixed data structure (CI 0x73), which mepgate "
                "does not decode",
            )
            return
        try:
            telegram = decode_long_header_data(record.telegram)
        except MBusDecodeError as error:
            self._slot_problem(number, f"its M-Bus data cannot be decoded: {error}")
            return
        await self._accept(number, telegram, record, context)

    def _slot_problem(self, number: int, problem: str) -> None:
        log.warning("meter %s: M-Bus slot %d: %s", self.meter, number, problem)
        self._last_error = f"slot {number}: {problem}"
        self._board.change(self.meter, number, answering=False, reason=problem)

    async def _accept(
        self, number: int, telegram: Telegram, record: MBusBillingRead, context: JobContext
    ) -> None:
        header = telegram.header
        main = main_value(telegram)
        if header is None or header.identification is None:
            self._slot_problem(number, "its data has no identification number")
            return
        if main is None or not math.isfinite(main.value):
            quantities = ", ".join(sorted({r.quantity for r in telegram.records})) or "none"
            self._slot_problem(
                number, f"no volume or energy register in its data (records: {quantities})"
            )
            return
        now = context.now()
        known = self._board.get(self.meter, number)
        meter_read_at = record.timestamp.to_datetime() if record.timestamp else None
        if (
            known is not None
            and known.identification == header.identification
            and known.meter_read_at is not None
            and meter_read_at is not None
            and meter_read_at <= known.meter_read_at
        ):
            return  # a read the gateway has (ET16's first read after ET45's newer ones)
        state = SubmeterState(
            meter=self.meter,
            slot=number,
            identification=header.identification,
            manufacturer=header.manufacturer or "",
            medium=header.category,
            medium_code=header.medium or 0,
            medium_name=header.medium_name,
            unit=main.unit,
            value=main.value,
            at=now,
            meter_read_at=meter_read_at,
            answering=known.answering if known is not None else True,
            checked_at=known.checked_at if known is not None else now,
            reason=None,
            rejected=known.rejected if known is not None else 0,
        )
        if known is not None and known.value is not None:
            same = known.identification == header.identification
            if same and main.value < known.value - _DECREASE_TOLERANCE:
                problem = (
                    f"{header.category} meter {header.identification} went back from "
                    f"{known.value:g} to {main.value:g} {main.unit} without a device swap: "
                    "reading rejected"
                )
                log.warning("meter %s: M-Bus slot %d: %s", self.meter, number, problem)
                self._last_error = f"slot {number}: {problem}"
                self._board.update(replace(known, rejected=known.rejected + 1))
                return
            if not same:
                log.info(
                    "meter %s: M-Bus slot %d: device %s replaced by %s",
                    self.meter,
                    number,
                    known.identification,
                    header.identification,
                )
        store = self._store()
        if store is not None:
            await store.submeters.add(device_of(state), now, main.value)
        self._board.update(state)

    def _summary(self, found: int) -> str:
        states = self._board.states(self.meter)
        if not found:
            return "no M-Bus devices on this meter (ET14 lists none); checking every minute"
        shown = ", ".join(
            f"slot {s.slot}: {s.medium} {s.value:.3f} {s.unit}"
            if s.value is not None
            else f"slot {s.slot}: {s.medium}"
            for s in states
        )
        return f"{found} M-Bus device(s) -- {shown}"


def device_of(state: SubmeterState) -> SubmeterDevice:
    return SubmeterDevice(
        meter=state.meter,
        slot=state.slot,
        identification=state.identification,
        manufacturer=state.manufacturer,
        medium=state.medium,
        medium_code=state.medium_code,
        unit=state.unit,
    )
