"""The events job: the meter's event log (BT74) read incrementally beside the live poll.

Per session it reads BT71 once (the log's dimensions: entries, argument length), then -- at
session start and every :data:`EVENTS_INTERVAL_S` -- BT74's 11-byte header, and only the
records after the last sequence number stored, a few whole records per step (at most the
client's ``max_read`` bytes), oldest first.  MEP guide and optical guide, BT74: a circular
queue in ascending order; "Last Entry Element" is the newest record's index, "Last Entry
Sequence Number" its 32-bit sequence number, each record carries its low 16 bits.

Dedupe: the cursor (the last sequence number stored, the meter's serial number) is kept in the
store together with the events it covers (one transaction, :meth:`AsyncStore.add_events`), so
a restart on the same database never reports an event twice.  A header whose sequence number
went *down*, or a meter with another serial number, is a reset or swapped meter: its whole log
is read again (the store's key keeps what was already there from being stored twice).  More
new sequence numbers than the log holds means the log wrapped past entries never read: the
job says how many may be lost.  (Sequence numbers are shared with the alternate log ET79, so
some numbers are simply not in BT74: a gap is not a loss by itself.)

The meter's stamps are UTC on the meter's clock; each event keeps it and gets the gateway's
time as well (:attr:`JobContext.gateway_time`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mepgate.client import MeterClient, MeterRefusedError
from mepgate.errors import MepgateError
from mepgate.service.jobs import JobContext, JobStatus
from mepgate.store import EVENTS_CURSOR_STATE, AsyncStore, MeterEvent
from mepgate.tables.event_codes import event_words
from mepgate.tables.events import (
    BT71,
    BT74_HEADER_LAYOUT,
    HEADER_SIZE,
    ActualLog,
    HistoryEntry,
    HistoryLog,
    decode_entries,
    entry_offset,
    entry_size,
)
from mepgate.tables.ids import TableId

log = logging.getLogger(__name__)

EVENTS_INTERVAL_S = 60.0
"""How often the job looks at BT74's header for new events."""
RETRY_AFTER_S = 10.0
"""After a failed step, the job tries again this much later (the live poll goes on)."""
BT71_SIZE = 9


@dataclass(frozen=True, slots=True)
class Cursor:
    """What the job keeps in the store: the last sequence number stored, whose log, and
    whether the first read of the log (at installation) is still under way."""

    sequence: int
    serial: str | None = None
    installing: bool = False

    def to_json(self) -> str:
        data: dict[str, object] = {"sequence": self.sequence, "serial": self.serial}
        if self.installing:
            data["installing"] = True
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(int(data["sequence"]), data.get("serial"), bool(data.get("installing")))
        except (ValueError, KeyError, TypeError):
            log.warning("events cursor %r unreadable: reading the whole log again", text)
            return None


def full_sequence(last: int, low16: int) -> int:
    """A record's 32-bit sequence number from its low 16 bits and the header's newest number
    (at most 65535 entries lie between them)."""
    return last - ((last - low16) & 0xFFFF)


def plan_elements(header: HistoryLog, capacity: int, wanted: int) -> list[int]:
    """Array indexes of the ``wanted`` newest records, oldest first (the queue wraps at
    ``capacity``, BT71.5)."""
    count = min(wanted, header.number_of_valid_entries, capacity)
    newest = header.last_entry_element
    return [(newest - count + 1 + i) % capacity for i in range(count)]


def runs(elements: Sequence[int], per_read: int) -> list[tuple[int, int]]:
    """Consecutive indexes grouped as (first, count), at most ``per_read`` each."""
    out: list[tuple[int, int]] = []
    for element in elements:
        if out and out[-1][0] + out[-1][1] == element and out[-1][1] < per_read:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((element, 1))
    return out


class EventsJob:
    """The :class:`~mepgate.service.jobs.MeterJob` that reads a meter's event log.

    ``store`` gives the gateway's store (it may be reopened), ``on_events`` is told the events
    that were new (stored), oldest first: the gateway hands them to the hub (MQTT, pages).
    The log as found at the very first read of a meter (no cursor stored: a new installation)
    is history, not news: it is stored but not told, unless ``tell_history``."""

    name = "events"

    def __init__(
        self,
        meter: str,
        *,
        store: Callable[[], AsyncStore | None],
        on_events: Callable[[list[MeterEvent]], None],
        interval: float = EVENTS_INTERVAL_S,
        tell_history: bool = False,
    ) -> None:
        self._meter = meter
        self._tell_history = tell_history
        self._history = False  # this round reads the log as found at installation
        self._store = store
        self._on_events = on_events
        self._interval = interval
        self._session = 0
        self._log: ActualLog | None = None
        self._cursor: Cursor | None = None
        self._cursor_loaded = False
        self._header: HistoryLog | None = None
        self._restart = False
        self._pending: list[tuple[int, int]] = []  # (first element, count) still to read
        self._planned = 0  # records in this round's plan (for the progress)
        self._due = 0.0
        self._unsupported: str | None = None
        self._state = "idle"
        self._detail = "waiting for the first session"
        self._last_error: str | None = None
        self._last_success: dt.datetime | None = None
        self.read_events = 0
        self.possibly_lost = 0
        self._newest: MeterEvent | None = None

    # -- MeterJob --------------------------------------------------------------------------
    def wants_to_run(self, context: JobContext) -> bool:
        if context.session != self._session:
            return True  # a new session: BT71 again, and a look at the log at once
        if self._unsupported is not None:
            return False
        # Its next round (or the rest of this one) once due; after a failure, RETRY_AFTER_S.
        return context.monotonic() >= self._due

    async def step(self, client: MeterClient, context: JobContext) -> None:
        if context.session != self._session:
            self._session = context.session
            self._log = None  # BT71 once per session (the log may have been re-dimensioned)
            self._header = None
            self._pending = []
            self._unsupported = None
        if not self._cursor_loaded:
            store = self._store()
            if store is None:
                raise StoreClosedError()
            self._cursor = Cursor.from_json(await store.state(self._meter, EVENTS_CURSOR_STATE))
            self._cursor_loaded = True
        self._state = "working"
        if self._log is None:
            try:
                data = await client.read(TableId.BT71, offset=0, count=BT71_SIZE)
            except MeterRefusedError as refused:
                self._unsupported = f"the meter does not serve its event log (BT71): {refused}"
                self._state = "unsupported"
                return
            self._log = BT71.decode(data)
            self._detail = f"event log of {self._log.number_of_history_entries} entries"
            return
        if self._header is None or not self._pending:
            await self._read_header(client, context)
            return
        await self._read_records(client, context)

    def failed(self, error: BaseException, context: JobContext) -> None:
        self._state = "failed"
        self._last_error = str(error) or type(error).__name__
        self._header = None  # start again from the header: the log may have moved on ...
        self._log = None  # ... and from BT71: it may have been re-dimensioned
        self._pending = []
        self._due = context.monotonic() + RETRY_AFTER_S

    def status(self) -> JobStatus:
        if self._unsupported is not None:
            return JobStatus(name=self.name, state="unsupported", detail=self._unsupported)
        progress = None
        if self._state == "working" and self._pending and self._planned:
            progress = 1 - sum(n for _, n in self._pending) / self._planned
        return JobStatus(
            name=self.name,
            state=self._state,
            progress=progress,
            detail=self._detail,
            last_error=self._last_error if self._state == "failed" else None,
            last_success_at=self._last_success,
        )

    # -- steps ---------------------------------------------------------------------------
    async def _read_header(self, client: MeterClient, context: JobContext) -> None:
        assert self._log is not None
        header = BT74_HEADER_LAYOUT.decode(
            await client.read(TableId.BT74, offset=0, count=HEADER_SIZE)
        )
        if header.descending_order:
            self._unsupported = (
                "the meter lists its event log newest first (BT74 order 1), which the guides "
                "do not describe: the events job reads ascending logs only"
            )
            return
        capacity = self._log.number_of_history_entries
        last = header.last_entry_sequence_number
        serial = context.identity.serial_number if context.identity is not None else None
        cursor = self._cursor
        whole = min(header.number_of_valid_entries, capacity)
        swapped = cursor is not None and None not in (cursor.serial, serial)
        swapped = swapped and cursor is not None and cursor.serial != serial
        installing = cursor is None or cursor.installing
        self._history = installing and not self._tell_history
        if cursor is None or swapped or last < cursor.sequence:
            if cursor is not None:
                log.warning(
                    "meter %s: its event log %s (sequence %d, stored up to %d): reading it whole",
                    self._meter,
                    "belongs to another meter" if swapped else "was reset",
                    last,
                    cursor.sequence,
                )
            self._restart, wanted = True, whole
        else:
            self._restart, wanted = False, last - cursor.sequence
            if wanted > whole >= capacity:  # a full log: the oldest of them were overwritten
                lost = wanted - whole
                self.possibly_lost += lost
                log.warning(
                    "meter %s: %d events were logged since the last read but the log holds %d: "
                    "up to %d may have been overwritten before they were read (read more often,"
                    " or keep the gateway running)",
                    self._meter,
                    wanted,
                    whole,
                    lost,
                )
        self._header = header
        per_read = max(1, client.max_read // entry_size(self._log))
        self._pending = runs(plan_elements(header, capacity, wanted), per_read)
        if not self._pending:
            if cursor is None or cursor.sequence != last or cursor.serial != serial:
                await self._keep([], Cursor(last, serial))
            self._finished(context)
        else:
            self._planned = sum(n for _, n in self._pending)
            self._detail = f"reading {self._planned} new events"

    async def _read_records(self, client: MeterClient, context: JobContext) -> None:
        assert self._log is not None
        assert self._header is not None
        first, count = self._pending[0]
        size = entry_size(self._log)
        data = await client.read(
            TableId.BT74, offset=entry_offset(self._log, first), count=count * size
        )
        entries = decode_entries(data, self._log)
        self._pending.pop(0)
        last = self._header.last_entry_sequence_number
        floor = -1 if self._restart or self._cursor is None else self._cursor.sequence
        serial = context.identity.serial_number if context.identity is not None else None
        events = [
            event
            for entry in entries
            if (event := self._event(entry, last, context)) is not None
            and floor < event.sequence <= last
        ]
        done = not self._pending
        top = max((e.sequence for e in events), default=None)
        cursor: Cursor | None = None  # None: the stored cursor stays
        if done:
            cursor = Cursor(last, serial)
        elif top is not None:  # part of the way: a first read goes on as such after a restart
            cursor = Cursor(top, serial, installing=self._history)
        await self._keep(events, cursor)
        if done:
            self._finished(context)

    async def _keep(self, events: list[MeterEvent], cursor: Cursor | None) -> None:
        store = self._store()
        if store is None:
            raise StoreClosedError()
        fresh = await store.add_events(
            self._meter, events, None if cursor is None else cursor.to_json()
        )
        if cursor is not None:
            self._cursor = cursor
            self._restart = False  # the stored cursor is this log's from now on
        self.read_events += len(fresh)
        if fresh:
            newest = self._newest = fresh[-1]
            log.info(
                "meter %s: %d new event(s), the newest: %s at %s",
                self._meter,
                len(fresh),
                newest.words,
                newest.gateway_time.isoformat(timespec="seconds"),
            )
            if not self._history:
                self._on_events(fresh)

    def _finished(self, context: JobContext) -> None:
        self._state = "idle"
        self._last_error = None
        self._last_success = context.now()
        self._due = context.monotonic() + self._interval
        detail = f"{self.read_events} events read since the gateway started"
        if self._newest is not None:
            detail += f"; the newest: {self._newest.words}"
        if self.possibly_lost:
            detail += f"; up to {self.possibly_lost} overwritten before they could be read"
        self._detail = detail

    def _event(self, entry: HistoryEntry, last: int, context: JobContext) -> MeterEvent | None:
        if entry.sequence_number is None or entry.event_id is None or entry.time is None:
            return None
        code = entry.event_id
        argument = entry.argument or b""
        words = event_words(code, argument)
        meter_time = entry.time.to_datetime(dt.UTC)
        if meter_time is None:  # an invalid stamp: kept, on the gateway's clock, and said so
            meter_time = context.now()
            words += " (the meter's time stamp was not a valid time)"
        gateway_time = context.gateway_time(meter_time)
        # To the millisecond, as stored: what is published is what the API shows.
        gateway_time = gateway_time.replace(microsecond=gateway_time.microsecond // 1000 * 1000)
        return MeterEvent(
            meter=self._meter,
            sequence=full_sequence(last, entry.sequence_number),
            meter_time=meter_time,
            gateway_time=gateway_time,
            code=code,
            argument=argument,
            user_id=entry.user_id,
            words=words,
        )


class StoreClosedError(MepgateError):
    def __init__(self) -> None:
        super().__init__("the store is not open (being reopened): events are read later")
