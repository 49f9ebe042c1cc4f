"""The web console's requests: C12.18 requests to a meter, lent the poller's client.

The web page parses and checks what was typed (:func:`mepgate.proto.parse_request`) and passes
the parsed request; here it is sent to the meter between two poll cycles
(:meth:`MeterPoller.exchange`): the meter serves one request at a time.  Writes (table writes,
procedure calls through BT07) go only when ``web.console_writes`` allows them.  A full read of a
table the registry knows is decoded too.

Long reads share the link with live polling.  A read longer than one reply (a load profile,
BT64, is 184 KB: 400 replies, minutes at 9600 Bd) is sent in pieces of at most one reply's
worth (:attr:`MeterClient.max_read`), each piece its own :meth:`MeterPoller.exchange`, so the
poller's cycles run between two pieces and the live readings keep coming; one exchange for the
whole table held the link, and stopped the readings, for as long as it took.  How far a read is
goes into a :class:`ReadProgress`, which the caller hands over with :func:`tracking` around
``GatewayView.console`` (a context variable: the view's method keeps its signature), and
:meth:`ReadProgress.cancel` stops the read before its next piece.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

from mepgate.client import MeterClient, MeterLinkError, MeterRefusedError
from mepgate.errors import MepgateError
from mepgate.proto.codes import ResponseCode, describe_response_code
from mepgate.proto.messages import ReadRequest, WriteRequest
from mepgate.service.poller import MeterPoller
from mepgate.service.view import ConsoleError, ConsoleReply
from mepgate.tables import registry
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.events import BT71
from mepgate.tables.ids import TableId, table_name
from mepgate.tables.load_profile import BT61
from mepgate.tables.table import DimensionedTable, FixedTable
from mepgate.transport import PortUnavailableError

MAX_OFFSET = 0xFFFFFF
"""The largest offset a partial read can carry (MEP guide, Table 2.7: a 3-byte offset)."""

_LOAD_PROFILE_TABLES = frozenset(range(TableId.BT62, TableId.BT67 + 1))


@dataclass(slots=True, kw_only=True)
class ReadProgress:
    """How far a console read is: ``done`` bytes of ``total`` (``None`` while the table's size
    is unknown: a table the dimension tables do not size).  :meth:`cancel` stops the read
    before its next piece; the read then raises :class:`ConsoleCancelled`."""

    done: int = 0
    total: int | None = None
    pieces: int = 0
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def remaining_s(self) -> float | None:
        """The time left at the pace so far, when the size is known and a piece has come."""
        if self.total is None or self.done <= 0 or self.done >= self.total:
            return None
        return self.elapsed_s * (self.total - self.done) / self.done


class ConsoleCancelled(ConsoleError):  # noqa: N818 -- reads as what happened
    """A console read stopped by :meth:`ReadProgress.cancel`; the message says how far it got."""


_progress: ContextVar[ReadProgress | None] = ContextVar("mepgate_console_progress", default=None)


@contextlib.contextmanager
def tracking(progress: ReadProgress) -> Iterator[ReadProgress]:
    """Report the console reads made inside this block (in this task) to ``progress``."""
    token = _progress.set(progress)
    try:
        yield progress
    finally:
        _progress.reset(token)


async def console_exchange(
    pollers: Mapping[str, MeterPoller],
    meter: str,
    request: ReadRequest | WriteRequest,
    *,
    writes: bool,
) -> ConsoleReply:
    """Send ``request`` to ``meter`` (one of ``pollers``); writes only if ``writes``.

    A reply with an error code is a :class:`ConsoleReply` too; anything that prevents an answer
    raises :class:`ConsoleError` (:class:`ConsoleCancelled` when the read was cancelled).
    """
    poller = pollers.get(meter)
    if poller is None:
        known = ", ".join(pollers) or "none configured"
        raise ConsoleError(f"no meter called {meter!r}; meters: {known}")
    if isinstance(request, WriteRequest) and not writes:
        raise ConsoleError(
            "writes are disabled: set console_writes = true in the [web] section to allow "
            "table writes and procedure calls from the console"
        )
    try:
        if isinstance(request, ReadRequest):
            progress = _progress.get() or ReadProgress()
            return await _Read(poller, request, progress).run()

        async def write(client: MeterClient) -> None:
            await client.write(request.table_id, request.data, offset=request.offset)

        await poller.exchange(write)
        return _reply(ResponseCode.OK)
    except MeterRefusedError as error:
        return _reply(error.code)
    except (MeterLinkError, PortUnavailableError, TableDecodeError) as error:
        raise ConsoleError(str(error)) from None


@dataclass(frozen=True, slots=True)
class _Plan:
    max_read: int
    dims: Dimensions | None
    size: int | None  # the whole table's, from the dimension tables


class _Read:
    """One console read, in pieces of at most one reply each (one exchange per piece)."""

    def __init__(self, poller: MeterPoller, request: ReadRequest, progress: ReadProgress) -> None:
        self._poller = poller
        self._table = request.table_id
        self._whole = request.offset is None
        self._start = request.offset or 0
        self._count = None if request.offset is None else request.count
        self._progress = progress

    async def _exchange(self, operation: Callable[[MeterClient], Awaitable[bytes]]) -> bytes:
        if self._progress.cancelled:
            raise ConsoleCancelled(
                f"cancelled after {self._progress.done} of "
                f"{self._progress.total if self._progress.total is not None else '?'} bytes"
            )
        return await self._poller.exchange(operation)

    async def run(self) -> ConsoleReply:
        plan = await self._poller.exchange(self._plan)
        end = self._start + self._count if self._count is not None else plan.size
        self._progress.total = None if end is None else end - self._start
        if self._count is not None and self._count <= plan.max_read:
            data = await self._exchange(self._piece(self._start, self._count))  # as typed
            self._advance(data)
        elif self._whole and plan.size is not None and plan.size <= plan.max_read:
            data = await self._exchange(lambda client: client.read_table(self._table))
            self._advance(data)
        else:
            data = await self._pieces(plan.max_read, end)
        decoded = self._decoded(data, plan.dims) if self._whole else None
        return _reply(ResponseCode.OK, data, decoded)

    async def _plan(self, client: MeterClient) -> _Plan:
        """The reply size, and the table's dimensions and size where the tables tell them."""
        dims: Dimensions | None = None
        with contextlib.suppress(MepgateError):
            dims = await client.dimensions()
            # Load profiles and the event log are sized by tables the poller does not need.
            if self._table in _LOAD_PROFILE_TABLES and dims.load_profile is None:
                loads = BT61.decode(await client.read_table(TableId.BT61))
                dims = dataclasses.replace(dims, load_profile=loads)
            if self._table == TableId.BT74 and dims.history is None:
                events = BT71.decode(await client.read_table(TableId.BT71))
                dims = dataclasses.replace(dims, history=events)
        return _Plan(client.max_read, dims, None if dims is None else table_size(self._table, dims))

    async def _pieces(self, max_read: int, end: int | None) -> bytes:
        out = bytearray()
        piece = max_read
        while piece > 0:
            position = self._start + len(out)
            want = piece if end is None else min(piece, end - position)
            if want <= 0:
                break
            if position + want - 1 > MAX_OFFSET:
                raise ConsoleError(
                    f"{table_name(self._table)}: {len(out)} bytes read, and a request cannot "
                    f"reach past offset {MAX_OFFSET} (3-byte offsets)"
                )
            try:
                data = await self._exchange(self._piece(position, want))
            except MeterRefusedError as error:
                if not (self._whole and error.code == ResponseCode.TABLE_OPERATION_NOT_POSSIBLE):
                    if not out:
                        raise
                    raise ConsoleError(
                        f"{error} (at offset {position}, after {len(out)} bytes)"
                    ) from None
                if not out and piece == max_read:
                    # Smaller than one reply: one full read, as the client makes it.
                    data = await self._exchange(lambda client: client.read_table(self._table))
                    self._advance(data)
                    return data
                piece //= 2  # past the table's end: narrow down to its last bytes
                continue
            if len(data) > want:
                raise ConsoleError(
                    f"{table_name(self._table)}: the meter sent {len(data)} bytes for a read of "
                    f"{want} at offset {position}"
                )
            out += data
            self._advance(data)
            if len(data) < want:
                break  # the meter says the table ends here
        return bytes(out)

    def _piece(self, offset: int, count: int) -> Callable[[MeterClient], Awaitable[bytes]]:
        async def read(client: MeterClient) -> bytes:
            return await client.read(self._table, offset=offset, count=count)

        return read

    def _advance(self, data: bytes) -> None:
        self._progress.done += len(data)
        self._progress.pieces += 1

    def _decoded(self, data: bytes, dims: Dimensions | None) -> dict[str, object] | None:
        if dims is None or self._table not in registry.CODECS:
            return None
        try:
            value = registry.to_json(registry.decode_table(self._table, data, dims), dims)
        except MepgateError:
            return None
        return {k: v for k, v in value.items()} if isinstance(value, dict) else {"value": value}


def table_size(table: int, dims: Dimensions) -> int | None:
    """The size of ``table`` as its layout and ``dims`` give it (``None``: not known)."""
    codec = registry.CODECS.get(table)
    try:
        if isinstance(codec, DimensionedTable):
            layout: object = codec.layout_for(dims)
        elif isinstance(codec, FixedTable):
            layout = codec.codec
        else:
            return None
    except MepgateError:
        return None
    size = getattr(layout, "size", None)
    return size if isinstance(size, int) and size > 0 else None


def _reply(code: int, data: bytes = b"", decoded: dict[str, object] | None = None) -> ConsoleReply:
    return ConsoleReply(
        code=code, meaning=describe_response_code(code), data_hex=data.hex(), decoded=decoded
    )
