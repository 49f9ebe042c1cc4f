"""The self-reads job: the meter's billing self-reads (BT26), read beside the live poll.

At each session start and every :data:`SELF_READ_INTERVAL_S` the job reads BT26's 6-byte list
header (MEP guide, BT26 and "Reading Historical Register Data") and works out from the last
entry's element and sequence number which entries are new to the store
(:func:`mepgate.tables.self_reads.entries_after`): the newest stored sequence number is the
job's memory, so nothing is read or stored twice across restarts.  Each new entry is read in
pieces of at most ``client.max_read`` bytes, one piece per step; once whole, the header is read
again (6 bytes): if a self-read taken meanwhile wrote over the entry's element
(:func:`~mepgate.tables.self_reads.overwritten`), the entry may mix two self-reads and the new
list is read instead; otherwise the entry is stored.

The meter stamps a self-read in its local (TOU, BT55) time.  Before the entries of a check
are converted, the job reads BT52, BT55 and BT52 again back to back in one step (three short
reads: the clocks must be read together to be compared; at a simulator's ``--speed`` even a
poll between them would move its clock by minutes) and takes BT55 less the middle of the two
BT52 times, rounded to 15 minutes, as the meter's local offset; the UTC stamp is then put on
the gateway's clock with :attr:`JobContext.gateway_time`.  A self-read taken under another
DST state than the meter's present one is an hour off (BT26 does not say which was in force).

A meter without BT26 (it refuses the read as unsupported) makes the job ``unsupported`` until
the next session, with words; polling is not affected.  A step lost on a noisy line is done
again after :data:`LINE_RETRY_S` (the entry's pieces read so far are kept, and an entry read
whole is kept while the header read after it is lost); any other failure starts over from the
header after :data:`RETRY_AFTER_S`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mepgate.client import MeterRefusedError, NoAnswerError, NoisyLineError
from mepgate.proto.codes import ResponseCode
from mepgate.service.jobs import JobContext, JobStatus
from mepgate.store import AsyncStore, SelfRead
from mepgate.tables.clock import BT52, BT55
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.ids import TableId
from mepgate.tables.registers import register_totals
from mepgate.tables.self_reads import (
    HEADER_SIZE,
    SelfReadEntry,
    SelfReadHeader,
    Wanted,
    decode_entry,
    decode_header,
    entries_after,
    entry_layout,
    entry_offset,
    overwritten,
)

if TYPE_CHECKING:
    from mepgate.client import MeterClient

log = logging.getLogger(__name__)

SELF_READ_INTERVAL_S = 600.0
"""How often the job looks for new self-reads (and at each session start)."""
RETRY_AFTER_S = 60.0
"""After a failed step, the job waits this long before it tries again (from the header)."""
LINE_RETRY_S = 5.0
"""After a step lost on a noisy line, the job goes on where it was after this long."""
LOCAL_OFFSET_STEP = dt.timedelta(minutes=15)
"""Time zones are whole quarter hours from UTC: BT55 - BT52 is rounded to this."""
OFFSET_ATTEMPTS = 5
"""Measurements of the local offset at most, while the BT52 reads around BT55 are too far apart
(then the one with the closest reads is taken)."""
_UNSUPPORTED = (ResponseCode.UNSUPPORTED_REQUEST, ResponseCode.UNRECOGNIZED_REQUEST)


def _round_offset(delta: dt.timedelta) -> dt.timedelta:
    step = LOCAL_OFFSET_STEP.total_seconds()
    return dt.timedelta(seconds=round(delta.total_seconds() / step) * step)


class SelfReadJob:
    """Reads new BT26 entries and stores them (:mod:`mepgate.store.self_reads`)."""

    name = "self-reads"

    def __init__(
        self,
        meter: str,
        store: Callable[[], AsyncStore | None],
        *,
        interval_s: float = SELF_READ_INTERVAL_S,
    ) -> None:
        self.meter = meter
        self._store = store
        self.interval_s = interval_s
        self._session = -1
        self._due = 0.0  # monotonic: the next header check
        self._last_seen: int | None = None
        self._memory_loaded = False
        self._header: SelfReadHeader | None = None
        self._pending: list[Wanted] = []
        self._batch = 0
        self._local_offset: dt.timedelta | None = None
        self._offset_attempts = 0
        self._best_offset: tuple[dt.timedelta, dt.timedelta] | None = None
        self._piece = bytearray()
        self._unverified: SelfRead | None = None  # an entry read whole, before the header check
        self._unsupported: str | None = None
        self._retry_at = 0.0  # monotonic: no step before (after a step lost on the line)
        self._error: str | None = None
        self._last_success: dt.datetime | None = None
        self.stored = 0  # self-reads stored by this job since the gateway started
        self.duplicates = 0  # entries read that the store had already
        self.bytes_read = 0
        self._newest: SelfRead | None = None

    # -- MeterJob ------------------------------------------------------------------------------
    def wants_to_run(self, context: JobContext) -> bool:
        if context.session != self._session:  # a new session: look at once
            self._session = context.session
            self._unsupported = None
            self._due = context.monotonic()
            self._reset_batch()
        if self._unsupported is not None or context.monotonic() < self._retry_at:
            return False
        return bool(self._pending) or context.monotonic() >= self._due

    async def step(self, client: MeterClient, context: JobContext) -> None:
        if not self._memory_loaded:
            await self._load_memory()
        if not self._pending:
            await self._check_header(client, context)
        elif self._local_offset is None:
            await self._read_local_offset(client, context)
        elif self._unverified is not None:
            await self._verify_and_store(client, await client.dimensions(), context)
        else:
            await self._read_piece(client, await client.dimensions(), context)

    def failed(self, error: BaseException, context: JobContext) -> None:
        if (
            isinstance(error, MeterRefusedError)
            and error.code in _UNSUPPORTED
            and not self._pending
        ):
            self._unsupported = (
                "this meter has no self-read table (BT26): it refused to read it "
                f"({error}). Billing self-reads are not available from it; live values, history "
                "and the other jobs are not affected"
            )
            log.info("meter %s: %s", self.meter, self._unsupported)
            return
        if isinstance(error, NoisyLineError | NoAnswerError):
            # A frame lost on the line: the piece was not added, so go on where it was.
            self._error = f"{error} -- going on in {LINE_RETRY_S:.0f} s"
            self._retry_at = context.monotonic() + LINE_RETRY_S
            log.info("meter %s: a self-read step was lost on the line: %s", self.meter, error)
            return
        self._error = f"{error} -- trying again in {RETRY_AFTER_S:.0f} s"
        log.warning("meter %s: reading its self-reads failed: %s", self.meter, self._error)
        self._due = context.monotonic() + RETRY_AFTER_S
        self._reset_batch()  # from the header again: the entry in progress from its start

    def status(self) -> JobStatus:
        if self._unsupported is not None:
            return JobStatus(name=self.name, state="unsupported", detail=self._unsupported)
        if self._error is not None:
            return JobStatus(
                name=self.name,
                state="failed",
                last_error=self._error,
                last_success_at=self._last_success,
                detail=self._summary(),
            )
        if self._pending:
            done = self._batch - len(self._pending)
            return JobStatus(
                name=self.name,
                state="working",
                progress=done / self._batch if self._batch else None,
                detail=f"reading new self-read {done + 1} of {self._batch} "
                f"(sequence {self._pending[0].sequence})",
                last_success_at=self._last_success,
            )
        return JobStatus(
            name=self.name, state="idle", detail=self._summary(), last_success_at=self._last_success
        )

    # -- steps -----------------------------------------------------------------------------------
    async def _load_memory(self) -> None:
        store = self._store()
        if store is None:
            return
        stored = await store.self_reads(self.meter)
        self._newest = stored[-1] if stored else None
        self._last_seen = stored[-1].sequence if stored else None
        self._memory_loaded = True

    async def _check_header(self, client: MeterClient, context: JobContext) -> None:
        data = await client.read(TableId.BT26, offset=0, count=HEADER_SIZE)
        self.bytes_read += len(data)
        header = decode_header(data)
        dims = await client.dimensions()  # read by the poll already: no request
        capacity = dims.register.number_of_self_reads
        self._due = context.monotonic() + self.interval_s
        if capacity == 0:
            self._unsupported = (
                "this meter keeps no self-reads: BT21 'Number of Self-reads' is 0 (the grid "
                "company has not configured them); live values and history are not affected"
            )
            return
        self._header = header
        self._pending = list(entries_after(header, capacity, self._last_seen))
        self._batch = len(self._pending)
        self._local_offset = None
        self._error = None
        if not self._pending:
            self._last_success = context.now()

    async def _read_local_offset(self, client: MeterClient, context: JobContext) -> None:
        before = await self._utc(client)
        local = BT55.decode(await client.read_table(TableId.BT55)).clock_calendar.to_datetime()
        after = await self._utc(client)
        self.bytes_read += 3 * 7
        if before is None or after is None or local is None:
            self._local_offset = dt.timedelta(0)
            log.warning(
                "meter %s: its clocks (BT52/BT55) are not valid times; its self-reads are taken "
                "as stamped in UTC",
                self.meter,
            )
            return
        # BT55 was read between the two BT52 reads: compare it with their middle, which is
        # within half the bracket of BT55's moment.  Rounded to 15 minutes that is exact while
        # the bracket is shorter than 15 minutes -- always on a real meter (a second or so), not
        # always on a sped-up simulator whose line lost a frame: then measure again.
        bracket = after - before
        offset = _round_offset(local - (before + bracket / 2))
        if self._best_offset is None or bracket < self._best_offset[0]:
            self._best_offset = (bracket, offset)
        self._offset_attempts += 1
        if bracket >= LOCAL_OFFSET_STEP and self._offset_attempts < OFFSET_ATTEMPTS:
            return
        self._local_offset = self._best_offset[1]  # the measurement with the closest reads
        self._offset_attempts, self._best_offset = 0, None

    @staticmethod
    async def _utc(client: MeterClient) -> dt.datetime | None:
        return BT52.decode(await client.read_table(TableId.BT52)).clock_calendar.to_datetime()

    async def _read_piece(self, client: MeterClient, dims: Dimensions, context: JobContext) -> None:
        wanted = self._pending[0]
        reg = dims.register
        size = entry_layout(reg).size
        start = entry_offset(reg, wanted.element) + len(self._piece)
        count = min(client.max_read, size - len(self._piece))
        self._piece += await client.read(TableId.BT26, offset=start, count=count)
        self.bytes_read += count
        self._error = None
        if len(self._piece) < size:
            return
        entry = decode_entry(bytes(self._piece), reg)
        self._piece.clear()
        self._unverified = self._converted(entry, wanted, dims, context)

    async def _verify_and_store(
        self, client: MeterClient, dims: Dimensions, context: JobContext
    ) -> None:
        """The header again after an entry: if a self-read taken meanwhile wrote over the
        entry's element, the entry may mix two self-reads -- read the new list instead."""
        read = self._unverified
        if read is None or self._header is None:  # pragma: no cover - step() made sure
            return
        data = await client.read(TableId.BT26, offset=0, count=HEADER_SIZE)
        # Only now: a header read lost on the line keeps the entry for the next try (it was
        # dropped before the read, and the whole entry read again after each such loss).
        self._unverified = None
        self.bytes_read += len(data)
        header = decode_header(data)
        capacity = dims.register.number_of_self_reads
        wanted = self._pending[0]
        if overwritten(self._header, header, capacity, wanted.element):
            log.info(
                "meter %s: a self-read was taken while its element %d was read; reading the "
                "list again",
                self.meter,
                wanted.element,
            )
            self._header = header
            self._pending = list(entries_after(header, capacity, self._last_seen))
            self._batch = len(self._pending)
            return
        store = self._store()
        if store is None:
            raise MeterRefusedError(
                ResponseCode.OPERATION_NOT_POSSIBLE, "storing a self-read: the store is closed"
            )
        new = await store.add_self_reads([read])
        self._header = header
        self.stored += new
        self.duplicates += 1 - new  # read although stored already (the list moved meanwhile)
        self._pending.pop(0)
        self._last_seen = wanted.sequence
        self._newest = read
        self._error = None
        self._last_success = context.now()
        log.info(
            "meter %s: self-read %d of %s stored (import %s Wh)",
            self.meter,
            read.sequence,
            read.local_time or read.meter_time.isoformat(),
            read.forward_active_energy_wh,
        )

    def _converted(
        self, entry: SelfReadEntry, wanted: Wanted, dims: Dimensions, context: JobContext
    ) -> SelfRead:
        local = entry.time.to_datetime() if entry.time is not None else None
        offset = self._local_offset or dt.timedelta(0)
        if local is not None:
            meter_time = (local - offset).replace(tzinfo=dt.UTC)
            gateway_time = context.gateway_time(meter_time)
        else:  # no stamp (BT21 date/time field off, or all zero): when the gateway read it
            gateway_time = context.now()
            meter_time = gateway_time + (context.clock_offset or dt.timedelta(0))
        unit = dims.energy_register_unit
        registers = entry.registers
        total = (
            register_totals(registers.total, unit)
            if registers is not None and registers.total is not None
            else None
        )
        tiers = [register_totals(b, unit) for b in (registers.tiers or ())] if registers else []

        def wh(value: int | None) -> float | None:
            return None if value is None else float(value)

        return SelfRead(
            meter=self.meter,
            sequence=wanted.sequence,
            meter_time=meter_time,
            gateway_time=gateway_time,
            read_at=context.now(),
            local_time=local.isoformat() if local is not None else None,
            season=entry.season,
            forward_active_energy_wh=wh(total.forward_active_energy_wh) if total else None,
            reverse_active_energy_wh=wh(total.reverse_active_energy_wh) if total else None,
            tier_forward_active_energy_wh=tuple(wh(t.forward_active_energy_wh) for t in tiers),
            tier_reverse_active_energy_wh=tuple(wh(t.reverse_active_energy_wh) for t in tiers),
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _reset_batch(self) -> None:
        self._unverified = None
        self._pending = []
        self._batch = 0
        self._piece.clear()
        self._local_offset = None

    def _summary(self) -> str:
        newest = self._newest
        if newest is None:
            return "no self-read found yet (the meter takes them on its schedule)"
        taken = newest.local_time or newest.meter_time.isoformat()
        return f"last self-read: sequence {newest.sequence}, taken {taken} (meter time)"
