"""The async :class:`MeterClient`: reads, writes and procedure calls on one meter, whatever
protocol carries them.

The client is the same for every protocol; a :class:`~mepgate.client.session.Session` carries
its C12.18 requests (:class:`~mepgate.client.mep.MepSession` for a MEP port).  The
client keeps what any session needs: the dimension tables (re-read when the session reports a
reconfiguration: MEP guide, "Dynamic Sizing of Tables"), partial-read plans
(:mod:`~mepgate.client.planning`), procedure sequence numbers, and reconnecting with backoff
when the port goes away.  One request is in flight at a time (a meter serves one).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, TypeVar

from mepgate.client.errors import (
    AnswerLostError,
    BadReplyError,
    MeterRefusedError,
    NoAnswerError,
    NoisyLineError,
    OpticalSessionError,
    OutOfTimeError,
    PortUnavailableError,
    ReconfiguredError,
)
from mepgate.client.planning import (
    IDT_VERSION_OFFSET,
    EnergyReadPlan,
    EnergyTotals,
    PresentReadPlan,
    plan_energy_read,
    plan_present_read,
)
from mepgate.client.session import Reply, Session
from mepgate.client.stats import LinkStatistics
from mepgate.errors import LocalProtocolError
from mepgate.proto import ProcedureCall, ProcedureResponse, ResponseCode
from mepgate.proto.messages import ReadRequest, WriteRequest
from mepgate.proto.procedures import (
    BT07_PROCEDURE_INITIATE,
    BT08_PROCEDURE_RESPONSE,
    ET59_MEP_PROCEDURE_RESPONSE,
    PSN_FIRST,
    PSN_LAST,
    ProcedureSequence,
    procedure_name,
)
from mepgate.tables import registry
from mepgate.tables.dimensions import BT21, BT27, ET11, Dimensions, energy_register_unit_offset
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.events import BT71
from mepgate.tables.ids import TableId, table_name
from mepgate.tables.load_profile import BT61
from mepgate.tables.registers import BT28, PresentRegisterData, PresentValues

PSN_COUNT = PSN_LAST - PSN_FIRST + 1
_PROCEDURE_POLLS = 10
_PROCEDURE_POLL_INTERVAL = 0.1  # MEP guide, "Calling Procedures": results within a second
_RECONFIGURATION_RETRIES = 3
PROCEDURE_RESPONSE_BYTES = 512
"""The most a procedure response table (BT08, ET59) may hold: its 4-byte header and the
procedure's result data, far less than a reply carries."""
SHORTEST_PART = 16
"""Parts of a table are halved on a noisy line down to this, before the read gives up."""
GROWN_TABLE_BYTES = 4096
"""How much longer than its layout a manufacturer table of fixed layout may be read."""
MAX_TABLE_BYTES = 1 << 20
"""The most a table of unknown size may hold (BT64 of a large load profile is ~200 KB): a meter
that keeps answering with data is stopped here, not at the 16 MB of a 3-byte offset."""
_PLANS_KEPT = 16

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
A = TypeVar("A")


class _Plan(Protocol[T_co]):
    @property
    def dims(self) -> Dimensions: ...

    @property
    def table(self) -> int: ...

    @property
    def spans(self) -> tuple[tuple[int, int], ...]: ...

    def assemble(self, parts: list[tuple[int, bytes]]) -> T_co: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Reconnect delays: ``initial`` doubling up to ``maximum``; ``attempts`` None = forever."""

    initial: float = 0.5
    maximum: float = 30.0
    attempts: int | None = 5

    def delays(self) -> list[float]:
        count = self.attempts if self.attempts is not None else 1 << 30
        out, delay = [], self.initial
        for _ in range(min(count, 64)):
            out.append(delay)
            delay = min(delay * 2, self.maximum)
        return out


class MeterClient:
    """An async client for one meter, over ``session``.  Use as ``async with``."""

    def __init__(self, session: Session, *, backoff: Backoff | None = None) -> None:
        self._session = session
        self.backoff = backoff or Backoff()
        self._psn = ProcedureSequence()
        self._dims: Dimensions | None = None
        self._full = False  # _dims include BT61 and BT71 (full_dimensions)
        self._plans: dict[tuple[object, ...], object] = {}  # read plans, each with its dims
        self._quiet = 0  # > 0 inside the client's own housekeeping requests
        self._deadline: float | None = None  # the event loop's clock (time_limit)

    def __repr__(self) -> str:
        return f"MeterClient({self._session!r})"

    @property
    def session(self) -> Session:
        return self._session

    @property
    def port(self) -> str:
        return self._session.port

    @property
    def stats(self) -> LinkStatistics:
        return self._session.stats

    @property
    def security(self) -> str:
        return self._session.security

    @property
    def idt_version(self) -> int | None:
        return self._session.idt_version

    @property
    def max_read(self) -> int:
        return self._session.max_read

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> MeterClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the port (nothing to do when it is open: a second connection of ours would
        find it busy)."""
        if not self._session.is_open:
            await self._session.open()

    async def close(self) -> None:
        await self._session.close()

    async def _reconnect(self, error: PortUnavailableError, delays: Iterator[float]) -> None:
        """Open the port again after ``error``, waiting the backoff's next delays; ``delays``
        is shared by all reconnects of one request, so a port that opens and then fails at
        once (a busy serial server) ends the request instead of looping."""
        await self.close()
        for delay in delays:
            await asyncio.sleep(delay)
            try:
                await self.connect()
            except PortUnavailableError:
                continue  # what ended the request is the reason to report, not the reopening
            self.stats.reconnects += 1
            return
        raise error

    @asynccontextmanager
    async def housekeeping(self) -> AsyncIterator[None]:
        """Requests inside are the client's own (loading dimensions, answering alerts): they
        trigger no alert service and no reconfiguration check of their own."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    @contextlib.contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """Requests made inside start, and are sent again after a lost or damaged reply, only
        within ``seconds`` from now; one that would need more is given up with
        :class:`~mepgate.client.errors.OutOfTimeError`.  A request already on the line is never
        cut off (its reply is still waited for), and a write or procedure call, once started,
        is carried to its end; no reconnecting happens inside (the port's loss is raised).
        For reads beside the live poll, whose time is the gap between two live readings.
        Nested limits: the earlier end holds."""
        previous = self._deadline
        end = asyncio.get_running_loop().time() + max(0.0, seconds)
        self._deadline = end if previous is None else min(previous, end)
        try:
            yield
        finally:
            self._deadline = previous

    # -- requests ------------------------------------------------------------------------------
    async def _request(self, build: Callable[[], bytes], what: str) -> Reply:
        self.stats.requests += 1
        quiet = self._quiet > 0
        for _ in range(_RECONFIGURATION_RETRIES):
            try:
                reply = await self._send(build(), what, quiet)
            except ReconfiguredError:
                self._dims = None  # the request is planned again from new dimensions
                continue
            if not quiet:
                await self._session.after_request(self)
            return reply
        raise MeterRefusedError(
            ResponseCode.OPERATION_NOT_POSSIBLE, f"{what}: the meter kept reconfiguring"
        )

    async def _send(self, message: bytes, what: str, quiet: bool) -> Reply:
        if not self._session.is_open:
            await self.connect()
        delays = iter(self.backoff.delays())
        while True:
            try:
                return await self._session.request(
                    message, what, housekeeping=quiet, deadline=self._deadline
                )
            except PortUnavailableError as error:
                if self._deadline is not None:
                    raise  # no reconnecting within a time limit: the caller's next turn does
                await self._reconnect(error, delays)
            except NoAnswerError as error:
                if self._optical_side_busy(error):
                    raise OpticalSessionError(error.detail) from None
                raise

    def _optical_side_busy(self, error: NoAnswerError) -> bool:
        """Whether silence on this MEP link means the meter's optical port is in use: a Gen 2/3
        meter (one serial port for MEP and optical) that answered on this connection."""
        generation = self._dims.generation if self._dims is not None else None
        return (
            self._session.interface == "mep"
            and not isinstance(error, OpticalSessionError)
            and self.stats.replies > 0
            and generation is not None
            and generation < 4
        )

    async def read(
        self, table: int, *, offset: int | None = None, count: int | None = None
    ) -> bytes:
        """Read table ``table``: whole, or ``count`` bytes at ``offset`` (a partial read)."""
        if offset is None and count is None:
            return await self.read_table(table)
        request = ReadRequest(table_id=table, offset=offset or 0, count=count or 0)
        what = f"reading {table_name(table)}"
        reply = await self._request(request.to_bytes, what)
        if reply.code != ResponseCode.OK:
            raise MeterRefusedError(reply.code, what, interface=self._session.interface)
        if len(reply.data) != request.count:
            # C12.18 partial read: the count asked for, or an error code -- never less (a short
            # reply decoded as zeros showed 0 W per phase) and never more.
            raise BadReplyError(
                f"{what}: asked for {request.count} bytes at offset {request.offset}, "
                f"the meter sent {len(reply.data)}"
            )
        return reply.data

    async def read_table(
        self,
        table: int,
        *,
        limit: int = MAX_TABLE_BYTES,
        dims: Dimensions | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> bytes:
        """A whole table; tables too long for one reply are read in parts.  ``limit``: the
        most bytes to believe where the layouts do not tell the table's size; ``dims``: the
        dimensions to size it by, when they are being read (default: those read);
        ``progress``: told the bytes read so far after each part."""
        what = f"reading {table_name(table)}"
        for _ in range(_RECONFIGURATION_RETRIES):
            sizing = dims or self._dims
            if registry.table_size(table, sizing) is None:
                break
            # Sized by its layout: partial reads of known sizes (a damaged reply is known as
            # such at once, and a noisy line gets shorter reads) -- see read_parts.
            try:
                return await self._read_in_parts(table, what, limit, dims, progress)
            except ReconfiguredError:
                if dims is None:
                    await self.dimensions()  # the new layout sizes it
        reply = await self._request(lambda: ReadRequest(table_id=table).to_bytes(), what)
        if reply.code == ResponseCode.OK and len(reply.data) <= self.max_read:
            return reply.data
        if reply.code not in (ResponseCode.OK, ResponseCode.OPERATION_NOT_POSSIBLE):
            raise MeterRefusedError(reply.code, what, interface=self._session.interface)
        return await self._read_in_parts(table, what, limit, dims, progress)

    async def _read_in_parts(
        self,
        table: int,
        what: str,
        most: int,
        dims: Dimensions | None,
        progress: Callable[[int], None] | None,
    ) -> bytes:
        out = bytearray()
        async for part in self.read_parts(table, limit=most, dims=dims):
            out += part
            if progress is not None:
                progress(len(out))
        return bytes(out)

    async def read_parts(
        self,
        table: int,
        *,
        start: int = 0,
        end: int | None = None,
        limit: int = MAX_TABLE_BYTES,
        dims: Dimensions | None = None,
    ) -> AsyncIterator[bytes]:
        """``table`` from ``start`` to ``end`` (default: to its end), a reply's worth at a time,
        each part one request: callers that share the line (the web console while polling goes
        on) take the parts one by one, with the line free in between.

        Without ``end``: to the size the table's layout and ``dims`` (default: those read) give
        it, checked to end there -- a meter that sends data past the end its own dimension
        tables (or C12.19, for a standard table) give is not believed; a manufacturer table
        may have grown in newer firmware, and is read on to where the meter says it ends --
        or, for a table they do not size, until the meter says it ended (0x05), at most
        ``limit`` bytes.
        """
        what = f"reading {table_name(table)}"
        sizing = dims or self._dims
        size = None if end is not None else registry.table_size(table, sizing)
        stop = end if end is not None else start + (size or limit)
        position, count = start, self.max_read
        while count:
            if size is not None and dims is None and self._dims is not sizing:
                raise ReconfiguredError(f"{what}: the meter changed its table layout meanwhile")
            if position >= stop:
                if end is not None:
                    return
                if size is not None and await self.read_piece(table, stop, 1) is None:
                    return  # all of it: the meter says the table ends where its layout does
                if size is None or registry.table_is_fixed_by_its_layout(table):
                    raise BadReplyError(
                        f"{what}: the meter sends data past the table's end ({stop} bytes)"
                    )
                size, stop = None, stop + GROWN_TABLE_BYTES  # newer firmware: read on
                count = self.max_read
            count = min(count, stop - position, self.max_read)
            try:
                part = await self.read_piece(table, position, count)
            except OutOfTimeError:
                raise  # a shorter read would not be asked either: the time is up
            except NoisyLineError:
                if count < 2 * SHORTEST_PART:
                    raise
                count //= 2  # a line that damages long replies: ask for less
                continue
            if part is None:
                if end is not None:
                    raise MeterRefusedError(
                        ResponseCode.TABLE_OPERATION_NOT_POSSIBLE, f"{what} at {position}"
                    )
                count //= 2  # past the end: narrow down to the table's last bytes
                continue
            position += len(part)
            yield part

    async def read_piece(self, table: int, offset: int, count: int) -> bytes | None:
        """``count`` bytes of ``table`` at ``offset``; ``None`` when that is past its end (the
        meter answers 0x05).  One request: callers that share the line (the console, while
        polling goes on) read long tables piece by piece."""
        try:
            return await self.read(table, offset=offset, count=count)
        except MeterRefusedError as refused:
            if refused.code == ResponseCode.TABLE_OPERATION_NOT_POSSIBLE:
                return None
            raise

    async def write(self, table: int, data: bytes, *, offset: int | None = None) -> None:
        message = WriteRequest(table_id=table, data=data, offset=offset).to_bytes()
        what = f"writing {table_name(table)}"
        reply = await self._request(lambda: message, what)
        if reply.code != ResponseCode.OK:
            raise MeterRefusedError(reply.code, what, interface=self._session.interface)

    async def call(self, procedure: int, parameters: bytes = b"") -> ProcedureResponse:
        """Run a procedure through BT07 and return its result (BT08 or ET59)."""
        name = procedure_name(procedure)
        for attempt in range(PSN_COUNT):
            call = ProcedureCall(number=procedure, psn=self._psn.take(), parameters=parameters)
            try:
                await self.write(BT07_PROCEDURE_INITIATE, call.to_bytes())
                break
            except AnswerLostError:
                break  # the meter started it (never twice): its result will be in BT08/ET59
            except MeterRefusedError as refused:
                # MEP guide, "Procedure Header Fields": the meter refuses a PSN equal to its
                # last one with 0x04.  Every process starts at 5, so the one before us may
                # have used ours: try the next, once round the cycle at most.
                if refused.code != ResponseCode.OPERATION_NOT_POSSIBLE or attempt == PSN_COUNT - 1:
                    raise
        for _ in range(_PROCEDURE_POLLS):
            for table in (BT08_PROCEDURE_RESPONSE, ET59_MEP_PROCEDURE_RESPONSE):
                try:
                    data = await self.read_table(table, limit=PROCEDURE_RESPONSE_BYTES)
                except MeterRefusedError:
                    continue
                if len(data) >= 4:
                    response = ProcedureResponse.from_bytes(data)
                    if response.answers(call):
                        return response
            await asyncio.sleep(_PROCEDURE_POLL_INTERVAL)
        raise MeterRefusedError(
            ResponseCode.OPERATION_NOT_POSSIBLE,
            f"calling {name}: no result appeared in BT08 or ET59 within a second",
        )

    # -- dimensions ----------------------------------------------------------------------------
    async def dimensions(self) -> Dimensions:
        """BT21, BT27, ET11 and ET55's energy unit (read once, again after reconfiguration)."""
        if self._dims is None:
            self._full = False
            self._dims = await self._load_dimensions()
        return self._dims

    async def full_dimensions(self) -> Dimensions:
        """:meth:`dimensions` with the load profile's (BT61) and the event log's (BT71), where
        the meter has them: what BT62-BT67 and BT74 are decoded (and sized) by."""
        dims = await self.dimensions()
        if self._full:
            return dims
        extra: dict[str, object] = {}
        async with self.housekeeping():
            for name, table in (("load_profile", BT61), ("history", BT71)):
                with contextlib.suppress(MeterRefusedError, TableDecodeError):
                    extra[name] = table.decode(await self.read_table(table.table_id))
        if self._dims is dims:  # not reconfigured meanwhile
            self._dims = dataclasses.replace(dims, **extra)  # type: ignore[arg-type]
            self._full = True
        return await self.dimensions()

    @property
    def known_dimensions(self) -> Dimensions:
        """The dimensions read so far (for decoders); :meth:`dimensions` must have been
        awaited (raises :class:`~mepgate.errors.LocalProtocolError` otherwise)."""
        if self._dims is None:
            raise LocalProtocolError("read the dimensions first: await client.dimensions()")
        return self._dims

    async def _load_dimensions(self) -> Dimensions:
        async with self.housekeeping():
            if self._session.idt_version is None:
                data = await self.read(TableId.ET04, offset=IDT_VERSION_OFFSET, count=1)
                self._session.idt_version = data[0]
            register = BT21.decode(await self.read_table(TableId.BT21))
            mfg = ET11.decode(await self.read_table(TableId.ET11))
            dims = Dimensions(register=register, mfg=mfg)
            selection = BT27.decode(await self.read_table(TableId.BT27, dims=dims), dims)
            offset = energy_register_unit_offset(register, dims.generation)
            unit = (await self.read(TableId.ET55, offset=offset, count=1))[0]
        return Dimensions(
            register=register, mfg=mfg, present_selection=selection, energy_register_unit=unit
        )

    # -- planned reads -------------------------------------------------------------------------
    async def read_bt28(self) -> PresentRegisterData:
        """BT28, decoded with the current dimensions."""
        for _ in range(_RECONFIGURATION_RETRIES):
            dims = await self.dimensions()
            data = await self.read_table(TableId.BT28)
            if self._dims is dims:
                return BT28.decode(data, dims)
        raise MeterRefusedError(ResponseCode.OPERATION_NOT_POSSIBLE, "BT28 kept changing shape")

    async def plan(self, fields: tuple[str, ...]) -> PresentReadPlan:
        """The partial reads of BT28 that :meth:`read_present` makes for ``fields``."""
        dims = await self.dimensions()
        most, gap = self.max_read, self._session.merge_gap
        plan = self._plans.get(("present", fields, most, gap))
        if not isinstance(plan, PresentReadPlan) or plan.dims is not dims:
            plan = plan_present_read(dims, fields, gap, max_count=most)
            self._remember(("present", fields, most, gap), plan)
        return plan

    def _remember(self, key: tuple[object, ...], plan: object) -> None:
        """Keep a plan for the current dimensions (a few: callers ask for the same ones)."""
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()
        self._plans[key] = plan

    async def read_present(self, fields: tuple[str, ...]) -> PresentValues:
        """Just the named BT28 values, read with the fewest byte ranges (partial reads)."""
        return await self._planned(self.plan, fields)

    async def read_energy_totals(self, summations: int = 2, *, tiers: bool = False) -> EnergyTotals:
        """BT23's first ``summations`` summations (0 forward, 1 reverse active energy, ...) of
        the total block and, with ``tiers``, of every tier block, read with the fewest byte
        ranges (partial reads)."""

        async def plan(count: int) -> EnergyReadPlan:
            dims = await self.dimensions()
            most, gap = self.max_read, self._session.merge_gap
            known = self._plans.get(("energy", count, tiers, most, gap))
            if isinstance(known, EnergyReadPlan) and known.dims is dims:
                return known
            made = plan_energy_read(dims, count, gap, max_count=most, tiers=tiers)
            self._remember(("energy", count, tiers, most, gap), made)
            return made

        return await self._planned(plan, summations)

    async def _planned(self, make: Callable[[A], Awaitable[_Plan[T]]], arg: A) -> T:
        """Read a plan's ranges and assemble them; plan again if the meter reconfigured
        meanwhile (the ranges read may belong to the old layout)."""
        for _ in range(_RECONFIGURATION_RETRIES):
            plan = await make(arg)
            parts: list[tuple[int, bytes]] = []
            for offset, count in plan.spans:
                parts.append((offset, await self.read(plan.table, offset=offset, count=count)))
                if self._dims is not plan.dims:
                    break
            else:
                return plan.assemble(parts)
        raise MeterRefusedError(
            ResponseCode.OPERATION_NOT_POSSIBLE, f"{table_name(plan.table)} kept changing shape"
        )
