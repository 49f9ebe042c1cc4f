"""History back-fill from the meter's load profile (BT61..BT64), a :class:`MeterJob`.

On each new session (the first after a start, and every one after the link was lost) and then
once per profile interval, the job reads BT63 (where the profile stands: valid blocks, the
newest block's sequence number and element, its valid intervals) and works out which
intervals the store lacks from what it persisted (the newest interval *number* stored: block
sequence number times intervals per block plus the index in the block, so an interval is
never read or stored twice).  It then reads just those with partial reads of BT64 -- each
block's header (its end time and simple status: MEP guide, BT64 "End time", "Simple Status")
and the missing intervals, at most ``client.max_read`` bytes per step -- and stores them, with
the progress, in one transaction per step.  A restart continues where the store says it
stopped.  On first installation the whole valid profile is read.

The profile is INT32 snapshots (MEP guide, BT62 "Format" 32: the register value at each
interval's end).  Interval ``k`` of a block of ``n`` recorded intervals ended ``n - 1 - k``
intervals before the block's end time.  Meter times become gateway times by the meter's clock
offset (:meth:`JobContext.gateway_time`) only when the offset is half an interval or more: a
smaller one is taken as none.  The profile's intervals are the billing periods on the meter's
grid (the snapshot "13:00" closes the hour 12:00-13:00 the grid company bills), BT52's whole
seconds and a read's latency make the offset uncertain by a second or more, and moving a
snapshot by less than half an interval would only put it in the wrong hour.  Hours are compared
with the live readings only while the offset is within :data:`COMPARE_OFFSET_S`.

A profile that wrapped before the gateway came back has lost its oldest intervals: the job
says how many (and how long that is) in its status and the log.  Each interval's status
flags (power fail, clock reset forward/backward, DST) are stored with it.

Where live readings and the profile both cover an hour, the two energies are compared
(:meth:`~mepgate.store.Store.compare_profile`); disagreements are counted, kept with the
progress, logged and shown as a warning.  The history takes each hour's registers from the
profile where it has them (what the grid company bills); the live readings stay in their own
columns and are never overwritten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mepgate.client import MeterClient, MeterRefusedError
from mepgate.errors import MepgateError
from mepgate.service.jobs import JobContext, JobStatus
from mepgate.store import AsyncStore, HourComparison, ProfileInterval, StoreError
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.ids import TableId
from mepgate.tables.load_profile import (
    BT62,
    BT63,
    DataSetStatus,
    decode_lp_block_header,
    decode_lp_intervals,
    interval_offset,
    lp_block_header_layout,
    lp_interval_layout,
)

log = logging.getLogger(__name__)

NAME = "backfill"
STATE = "backfill"
"""The store's name (:meth:`~mepgate.store.Store.state`) for the back-fill's progress."""
INT32_SNAPSHOT = 32
"""BT62 "Format": INT32 snapshot data, the register values at interval ends."""
COMPARE_OFFSET_S = 10.0
"""Beyond this clock offset, the live readings' hours and the profile's are not the same hours:
they are not compared."""
CHANNEL_SOURCES = {
    0: "forward_active_energy_wh",
    1: "reverse_active_energy_wh",
    2: "import_reactive_energy_varh",
    3: "export_reactive_energy_varh",
}
"""BT62 channel sources (MEP guide, BT22 source IDs) the store keeps."""
CHECK_DELAY_S = 2.0
"""After an interval's expected end, wait this long (gateway time) before looking for it."""
COMPARE_DELAY_S = 5.0
"""Compare hours this many seconds (the poller's clock) after their profile was stored: the
live readings of the hour's last seconds are then in the store (batches every 2 s)."""
RETRY_S = (5.0, 30.0, 300.0)
LOG_RUN_AT_LEAST = 12
"""Runs of at least this many intervals are logged at info (start, every 10 %, end); the one
new interval every period is not."""
RECENT_KEPT = 5


class UnsupportedProfileError(MepgateError):
    """The meter has no load profile the job can read (the message says what is missing)."""


@dataclass(slots=True)
class Progress:
    """What the back-fill persisted: kept as JSON in the store's meter state."""

    newest: int | None = None  # the newest interval number stored (in the store's numbering)
    base: int = 0  # store number = meter number + base (a profile that restarted from 0)
    lost: int = 0  # intervals overwritten in the meter before they could be read
    stored: int = 0
    compared: int = 0  # hours compared with the live readings
    disagreements: int = 0
    compared_until_ms: int | None = None
    recent: list[dict[str, object]] = field(default_factory=list)  # the newest disagreements

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Progress:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (ValueError, TypeError):
            log.warning("the back-fill's stored progress is unreadable; starting afresh")
            return cls()


@dataclass(frozen=True, slots=True)
class Part:
    """Part of a read: a block's header (``first`` None), or its intervals
    ``first..first+count-1``."""

    sequence: int  # the block's sequence number
    element: int  # the block's index in BT64
    first: int | None
    count: int
    size: int


@dataclass(frozen=True, slots=True)
class Piece:
    """One read of BT64: ``size`` bytes at ``offset``, the ``parts`` one after the other (a
    block's last intervals and the next block's header and first intervals may share one)."""

    offset: int
    size: int
    parts: tuple[Part, ...]

    @property
    def count(self) -> int:
        return sum(part.count for part in self.parts)

    @property
    def headers(self) -> int:
        return sum(part.first is None for part in self.parts)


@dataclass(slots=True)
class _Block:
    end: dt.datetime  # meter time (UTC) of its newest recorded interval
    recorded: int  # intervals recorded


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


class BackfillJob:
    """Reads the intervals of the meter's load profile the store lacks (module doc)."""

    def __init__(
        self,
        meter: str,
        store: Callable[[], AsyncStore | None],
        *,
        compare_edge_s: float = 5.0,
        compare_offset_s: float = COMPARE_OFFSET_S,
        data_set: int = 1,
    ) -> None:
        self.meter = meter
        self._store = store
        self._edge_s = compare_edge_s
        self._compare_offset_s = compare_offset_s
        self._data_set = data_set
        self._session: int | None = None
        self._progress: Progress | None = None
        self._dims: Dimensions | None = None
        self._channels: tuple[str | None, ...] | None = None
        self._scales: tuple[float, ...] = ()
        self._pieces: deque[Piece] = deque()
        self._blocks: dict[int, _Block] = {}
        self._check_at: dt.datetime | None = None  # gateway time of the next BT63 read
        self._retry_at: float | None = None  # the poller's monotonic clock
        self._failures = 0
        self._unsupported: str | None = None
        self._compare_at: float | None = None
        self._interval_s = 900
        # The run in progress (one BT63 plan): for the status and the log.
        self._run_total = 0
        self._run_done = 0
        self._run_logged = 0
        self._run_started: float | None = None
        self.bytes_read = 0  # BT64 bytes read since the job was made
        self.reads = 0  # BT64 reads since the job was made
        self.intervals_read = 0  # intervals among them
        self.headers_read = 0  # block headers among them
        self.max_read_seen = 0  # the client's max_read the last plan was made for
        self._state = "idle"
        self._detail = "waiting for the first session"
        self._last_error: str | None = None
        self._last_success: dt.datetime | None = None

    @property
    def name(self) -> str:
        return NAME

    # -- MeterJob ------------------------------------------------------------------------------
    def wants_to_run(self, context: JobContext) -> bool:
        if context.session != self._session:
            return True
        if self._unsupported is not None:
            return False
        if self._retry_at is not None and context.monotonic() < self._retry_at:
            return False
        if self._pieces or self._dims is None or self._channels is None:
            return True
        if self._compare_at is not None and context.monotonic() >= self._compare_at:
            return True
        return self._check_at is None or context.now() >= self._check_at

    async def step(self, client: MeterClient, context: JobContext) -> None:
        if context.session != self._session:
            self._new_session(context.session)
        if self._progress is None:
            store = self._need_store()
            self._progress = Progress.from_json(await store.state(self.meter, STATE))
        if self._dims is None:
            await self._read_dimensions(client)
        elif self._channels is None:
            await self._read_control(client)
        elif self._pieces:
            await self._read_piece(client, context)
        elif self._compare_at is not None and context.monotonic() >= self._compare_at:
            await self._compare(context)
        else:
            await self._read_status(client, context)
        self._failures = 0
        self._retry_at = None
        self._last_error = None
        if self._state == "failed":
            self._state = "working" if self._pieces else "idle"

    def failed(self, error: BaseException, context: JobContext) -> None:
        if isinstance(error, UnsupportedProfileError):
            self._unsupported = str(error)
            self._state, self._detail = "unsupported", str(error)
            log.info("meter %s: no back-fill from the load profile: %s", self.meter, error)
            return
        self._failures += 1
        delay = RETRY_S[min(self._failures, len(RETRY_S)) - 1]
        self._retry_at = context.monotonic() + delay
        self._state = "failed"
        self._last_error = f"{error} (trying again in {delay:g} s)"
        if self._failures == 1 or self._failures % 10 == 0:
            log.warning("meter %s: back-fill step failed: %s", self.meter, self._last_error)
        if isinstance(error, TableDecodeError):
            self._dims = None  # the profile's configuration may have changed: read it again
            self._pieces.clear()

    def status(self) -> JobStatus:
        progress = None
        if self._state == "working" and self._run_total:
            progress = self._run_done / self._run_total
        return JobStatus(
            name=NAME,
            state=self._state,
            progress=progress,
            detail=self._detail,
            last_error=self._last_error,
            last_success_at=self._last_success,
            warning=self._warning(),
        )

    def _warning(self) -> str | None:
        p = self._progress
        parts = []
        if p is not None and p.disagreements:
            parts.append(
                f"{p.disagreements} of {p.compared} hours disagree between the live readings "
                "and the meter's load profile (the history shows the profile's)"
            )
        if p is not None and p.lost:
            parts.append(
                f"{p.lost} profile intervals were overwritten in the meter before they could "
                "be read: the history has a gap there"
            )
        return "; ".join(parts) or None

    @property
    def progress_record(self) -> Progress | None:
        """What the job has persisted (``None`` before its first step)."""
        return self._progress

    # -- steps -----------------------------------------------------------------------------------
    def _new_session(self, session: int) -> None:
        self._session = session
        self._dims = None
        self._channels = None
        self._pieces.clear()
        self._blocks.clear()
        self._check_at = None
        self._retry_at = None
        self._failures = 0
        self._unsupported = None

    def _need_store(self) -> AsyncStore:
        store = self._store()
        if store is None:
            raise StoreError("the store is not open (being reopened); the back-fill waits")
        return store

    async def _read_dimensions(self, client: MeterClient) -> None:
        dims = await client.full_dimensions()
        lp = dims.load_profile
        if lp is None or not lp.data_sets or len(lp.data_sets) < self._data_set:
            raise UnsupportedProfileError(
                "the meter has no load profile (BT61 cannot be read), so gaps in the history "
                "cannot be filled from it; live polling is not affected"
            )
        self._dims = dims
        self._detail = "reading the load profile's configuration"

    async def _read_control(self, client: MeterClient) -> None:
        dims = self._dims
        assert dims is not None
        assert dims.load_profile is not None
        try:
            data = await client.read_table(TableId.BT62, dims=dims)
        except MeterRefusedError as error:
            raise UnsupportedProfileError(
                f"the meter refuses its load profile's control table BT62 ({error}); live "
                "polling is not affected"
            ) from None
        control = BT62.decode(data, dims)
        sets = control.data_sets or ()
        data_set = sets[self._data_set - 1] if len(sets) >= self._data_set else None
        if data_set is None or data_set.interval_format != INT32_SNAPSHOT:
            found = None if data_set is None else data_set.interval_format
            raise UnsupportedProfileError(
                f"the load profile's format is {found}, not INT32 snapshots (BT62 format 32): "
                "the back-fill reads only register snapshots; live polling is not affected"
            )
        names = tuple(CHANNEL_SOURCES.get(c.interval_source) for c in data_set.channels or ())
        if "forward_active_energy_wh" not in names:
            raise UnsupportedProfileError(
                "the load profile does not record forward active energy (BT62 channel sources "
                f"{[c.interval_source for c in data_set.channels or ()]}); nothing to back-fill"
            )
        unit = float(dims.energy_register_unit or 1)
        scalars = data_set.scalars or ()
        divisors = data_set.divisors or ()
        self._scales = tuple(
            unit
            * (scalars[i] if i < len(scalars) and scalars[i] else 1)
            / (divisors[i] if i < len(divisors) and divisors[i] else 1)
            for i in range(len(names))
        )
        self._channels = names

    async def _read_status(self, client: MeterClient, context: JobContext) -> None:
        dims = self._dims
        assert dims is not None
        assert dims.load_profile is not None
        assert self._progress is not None
        status = BT63.decode(await client.read_table(TableId.BT63, dims=dims), dims)
        sets = status.data_sets or ()
        if len(sets) < self._data_set:
            raise UnsupportedProfileError("BT63 describes no status for the load profile")
        self._plan(sets[self._data_set - 1], client.max_read, context)

    def _plan(self, status: DataSetStatus, max_read: int, context: JobContext) -> None:
        dims = self._dims
        progress = self._progress
        assert dims is not None
        assert dims.load_profile is not None
        assert progress is not None
        shape = dims.load_profile.data_set(self._data_set)
        interval = shape.interval_time_min * 60 if shape.interval_time_min != 84 else 86_400
        per_block, blocks = shape.intervals_per_block, shape.number_of_blocks
        if status.block_order_descending or status.interval_order_descending:
            raise UnsupportedProfileError(
                "the load profile is kept in descending order (BT63), which the back-fill "
                "does not read"
            )
        self._schedule(context, interval)
        last_sequence = status.last_block_sequence_number
        # A newest block with no interval yet: the newest is the previous block's last.
        newest = last_sequence * per_block + status.number_of_valid_intervals - 1
        oldest = (last_sequence - status.number_of_valid_blocks + 1) * per_block
        if status.number_of_valid_blocks == 0 or newest < oldest:
            self._state, self._detail = "idle", "the meter's load profile is empty"
            return
        if progress.newest is not None and progress.newest - progress.base > newest:
            # The meter's profile started again (a new meter, a cleared profile): continue
            # the store's numbering after what it holds.
            log.warning(
                "meter %s: the load profile restarted (its newest interval is older than the "
                "newest stored); reading it all again as new intervals",
                self.meter,
            )
            progress.base = progress.newest + 1 - oldest
        wanted = oldest if progress.newest is None else progress.newest - progress.base + 1
        if wanted < oldest:
            lost = oldest - wanted
            progress.lost += lost
            log.warning(
                "meter %s: %d load profile intervals (%s) were overwritten in the meter before "
                "the gateway could read them: the profile holds %s, the gap was longer; the "
                "history has a hole there",
                self.meter,
                lost,
                _duration(lost * interval),
                _duration(blocks * per_block * interval),
            )
            wanted = oldest
        if wanted > newest:
            self._state, self._detail = "idle", "up to date"
            self._last_success = context.now()
            return
        self.max_read_seen = max_read
        header = lp_block_header_layout(dims, self._data_set).size
        size = lp_interval_layout(dims, self._data_set).size
        # Each block's header (its end time and simple status time its intervals), then the
        # missing intervals; runs of contiguous bytes are packed into reads of at most
        # max_read, across block boundaries, split only between a header and an interval or
        # between two intervals (no read carries a byte that is not needed).
        units: list[tuple[int, Part]] = []  # (offset, part of one header or one interval)
        for sequence in range(wanted // per_block, newest // per_block + 1):
            element = (status.last_block_element - (last_sequence - sequence)) % blocks
            start = interval_offset(dims, element, 0, self._data_set) - header
            units.append((start, Part(sequence, element, None, 0, header)))
            low = max(wanted - sequence * per_block, 0)
            high = min(newest - sequence * per_block, per_block - 1)
            for index in range(low, high + 1):
                offset = interval_offset(dims, element, index, self._data_set)
                units.append((offset, Part(sequence, element, index, 1, size)))
        self._pieces = deque(_pack(units, max_read))
        pieces = list(self._pieces)
        self._run_total = newest - wanted + 1
        self._run_done = 0
        self._run_logged = 0
        self._run_started = context.monotonic()
        self._state = "working"
        self._detail = f"read 0 of {self._run_total} intervals"
        if self._run_total >= LOG_RUN_AT_LEAST:
            log.info(
                "meter %s: back-fill of %d load profile intervals (%s), %d bytes in %d reads "
                "between the polls",
                self.meter,
                self._run_total,
                _duration(self._run_total * interval),
                sum(p.size for p in pieces),
                len(pieces),
            )

    def _schedule(self, context: JobContext, interval: int) -> None:
        """The next BT63 read: just after the next interval ends on the meter's grid."""
        now = context.now()
        meter_now = now + (context.clock_offset or dt.timedelta(0))
        epoch_s = meter_now.timestamp()
        next_end = (epoch_s // interval + 1) * interval
        self._check_at = context.gateway_time(
            dt.datetime.fromtimestamp(next_end, dt.UTC)
        ) + dt.timedelta(seconds=CHECK_DELAY_S)
        self._interval_s = interval

    async def _read_piece(self, client: MeterClient, context: JobContext) -> None:
        dims, progress = self._dims, self._progress
        assert dims is not None
        assert progress is not None
        assert self._channels is not None
        piece = self._pieces[0]
        table = TableId(TableId.BT64 + self._data_set - 1)
        data = await client.read(table, offset=piece.offset, count=piece.size)
        self.bytes_read += len(data)
        self.reads += 1
        self.intervals_read += piece.count
        self.headers_read += piece.headers
        stored: list[ProfileInterval] = []
        newest = progress.newest
        position = 0
        for part in piece.parts:
            chunk = data[position : position + part.size]
            position += part.size
            if part.first is None:
                block = decode_lp_block_header(chunk, dims, self._data_set)
                end = block.end_time.to_datetime(dt.UTC) if block.end_time else None
                recorded = sum(block.interval_recorded or ())
                if end is None or recorded == 0:
                    raise UnsupportedProfileError(
                        f"block {part.element} of the load profile has no end time although "
                        "BT63 counts it valid"
                    )
                self._blocks[part.sequence] = _Block(end=end, recorded=recorded)
                continue
            block_info = self._blocks.get(part.sequence)
            if block_info is None:  # pragma: no cover - a block's header is always read first
                raise UnsupportedProfileError("a block's intervals were read before its header")
            decoded = decode_lp_intervals(chunk, dims, self._data_set)
            stored += self._intervals(part, decoded, block_info, context)
            newest = part.sequence * self._per_block() + part.first + part.count - 1
            newest += progress.base
        store = self._need_store()
        # The progress goes into the same transaction as the intervals: a restart continues
        # after the last step stored, never reads an interval twice, never stores one twice.
        candidate = dataclasses.replace(
            progress, newest=newest, stored=progress.stored + len(stored)
        )
        await store.ingest_profile(self.meter, stored, state=(STATE, candidate.to_json()))
        self._progress = candidate
        self._pieces.popleft()
        self._run_done += piece.count
        self._detail = f"read {self._run_done} of {self._run_total} intervals"
        self._log_progress(context)
        if not self._pieces:
            self._finished(context)

    def _per_block(self) -> int:
        assert self._dims is not None
        assert self._dims.load_profile is not None
        return self._dims.load_profile.data_set(self._data_set).intervals_per_block

    def _intervals(
        self,
        part: Part,
        decoded: tuple[object, ...],
        block: _Block,
        context: JobContext,
    ) -> list[ProfileInterval]:
        assert self._progress is not None
        assert part.first is not None
        out: list[ProfileInterval] = []
        interval = dt.timedelta(seconds=self._interval_s)
        per_block = self._per_block()
        for k, item in enumerate(decoded):
            index = part.first + k
            if index >= block.recorded:
                continue  # not recorded (simple status): its bytes mean nothing
            meter_end = block.end - (block.recorded - 1 - index) * interval
            end = context.gateway_time(meter_end)
            if abs((end - meter_end).total_seconds()) * 2 < self._interval_s:
                end = meter_end  # on the meter's grid: the billing periods (module doc)
            status = getattr(item, "status", None)
            values = getattr(item, "values", None) or ()
            channels: dict[str, float | None] = {}
            assert self._channels is not None
            for name, raw, scale in zip(self._channels, values, self._scales, strict=False):
                if name is not None:
                    channels[name] = raw * scale
            nibbles = tuple(status.channels) if status is not None else ()
            out.append(
                ProfileInterval(
                    number=part.sequence * per_block + index + self._progress.base,
                    end=end,
                    meter_end=meter_end,
                    interval_s=self._interval_s,
                    status=status.common_flags if status is not None else 0,
                    channel_status=sum(n << (4 * i) for i, n in enumerate(nibbles)),
                    **channels,
                )
            )
        return out

    def _log_progress(self, context: JobContext) -> None:
        if self._run_total < LOG_RUN_AT_LEAST:
            return
        tenth = self._run_done * 10 // self._run_total
        if tenth > self._run_logged and self._pieces:
            self._run_logged = tenth
            log.info(
                "meter %s: back-fill %d %%: %s",
                self.meter,
                tenth * 10,
                self._detail,
            )

    def _finished(self, context: JobContext) -> None:
        progress = self._progress
        assert progress is not None
        took = context.monotonic() - (self._run_started or context.monotonic())
        if self._run_total >= LOG_RUN_AT_LEAST:
            log.info(
                "meter %s: back-fill done: %d intervals in %.0f s (%d stored so far)",
                self.meter,
                self._run_total,
                took,
                progress.stored,
            )
        self._state = "idle"
        self._detail = f"up to date: {self._run_total} intervals read in the last run"
        self._last_success = context.now()
        if self._compare_at is None:  # one already due is not put off by newer runs
            self._compare_at = context.monotonic() + COMPARE_DELAY_S

    async def _compare(self, context: JobContext) -> None:
        """Compare the hours the profile now covers with the live readings (no meter read)."""
        self._compare_at = None
        progress = self._progress
        assert progress is not None
        offset = context.clock_offset
        if offset is not None and abs(offset.total_seconds()) > self._compare_offset_s:
            return  # the hours differ by the offset: comparing them would find its energy
        store = self._need_store()
        end = context.now()
        if progress.compared_until_ms is not None:
            start = dt.datetime.fromtimestamp(progress.compared_until_ms / 1000, dt.UTC)
        else:
            start = end - dt.timedelta(days=2)  # raw readings are kept about that long
        found = await store.compare_profile(self.meter, start, end, edge_s=self._edge_s)
        if not found:
            return
        bad = [c for c in found if not c.agrees]
        updated = dataclasses.replace(
            progress,
            compared=progress.compared + len(found),
            disagreements=progress.disagreements + len(bad),
            compared_until_ms=int((found[-1].start + dt.timedelta(hours=1)).timestamp() * 1000),
            recent=(progress.recent + [_describe(c) for c in bad])[-RECENT_KEPT:],
        )
        await store.set_state(self.meter, STATE, updated.to_json())
        self._progress = updated
        if bad:
            first = bad[0]
            log.warning(
                "meter %s: %d of %d hours disagree between the live readings and the meter's "
                "load profile, e.g. %s: live %.0f Wh, profile %.0f Wh (tolerance %.1f Wh); the "
                "history shows the profile's",
                self.meter,
                len(bad),
                len(found),
                first.start.strftime("%Y-%m-%d %H:00 UTC"),
                first.live_wh,
                first.profile_wh,
                first.tolerance_wh,
            )


def _pack(units: list[tuple[int, Part]], max_read: int) -> list[Piece]:
    """Contiguous units (one header or one interval each, in table order) packed into reads
    of at most ``max_read`` bytes; consecutive intervals of a block become one part."""
    pieces: list[Piece] = []
    offset, size, parts = 0, 0, list[Part]()
    for at, unit in units:
        if parts and (at != offset + size or size + unit.size > max_read):
            pieces.append(Piece(offset, size, tuple(parts)))
            parts, size = [], 0
        if not parts:
            offset = at
        last = parts[-1] if parts else None
        if (
            last is not None
            and unit.first is not None
            and last.first is not None
            and last.sequence == unit.sequence
        ):
            parts[-1] = Part(
                last.sequence, last.element, last.first, last.count + 1, last.size + unit.size
            )
        else:
            parts.append(unit)
        size += unit.size
    if parts:
        pieces.append(Piece(offset, size, tuple(parts)))
    return pieces


def _describe(comparison: HourComparison) -> dict[str, object]:
    return {
        "hour": comparison.start.isoformat(),
        "live_wh": round(comparison.live_wh, 1),
        "profile_wh": round(comparison.profile_wh, 1),
        "tolerance_wh": round(comparison.tolerance_wh, 1),
    }
