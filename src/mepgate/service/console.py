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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from mepgate.client import MeterClient, MeterLinkError, MeterRefusedError
from mepgate.errors import MepgateError
from mepgate.proto.codes import ResponseCode, describe_response_code
from mepgate.proto.messages import ReadRequest, WriteRequest
from mepgate.service.poller import MeterPoller
from mepgate.service.view import ConsoleError, ConsoleReply
from mepgate.tables import registry
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import TableDecodeError
from mepgate.transport import PortUnavailableError

T = TypeVar("T")


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

    async def _exchange(self, operation: Callable[[MeterClient], Awaitable[T]]) -> T:
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
            data = await self._pieces(plan.dims)
        decoded = self._decoded(data, plan.dims) if self._whole else None
        return _reply(ResponseCode.OK, data, decoded)

    async def _plan(self, client: MeterClient) -> _Plan:
        """The reply size, and the table's dimensions and size where the tables tell them
        (with the load profile's and the event log's, which size BT62-BT67 and BT74)."""
        dims: Dimensions | None = None
        with contextlib.suppress(MepgateError):
            dims = await client.full_dimensions()
        size = None if dims is None else registry.table_size(self._table, dims)
        return _Plan(client.max_read, dims, size)

    async def _pieces(self, dims: Dimensions | None) -> bytes:
        """The client's own parts (:meth:`MeterClient.read_parts`: the table's bounds and end),
        taken one per exchange, so poll cycles run in between."""
        parts: AsyncIterator[bytes] | None = None
        end = None if self._count is None else self._start + self._count

        async def next_part(client: MeterClient) -> bytes | None:
            nonlocal parts
            if parts is None:
                parts = client.read_parts(self._table, start=self._start, end=end, dims=dims)
            return await anext(parts, None)

        out = bytearray()
        while (part := await self._exchange(next_part)) is not None:
            out += part
            self._advance(part)
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


def _reply(code: int, data: bytes = b"", decoded: dict[str, object] | None = None) -> ConsoleReply:
    return ConsoleReply(
        code=code, meaning=describe_response_code(code), data_hex=data.hex(), decoded=decoded
    )
