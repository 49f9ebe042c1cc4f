"""What a protocol gives the :class:`~mepgate.client.MeterClient`: C12.18 requests carried to
one meter and their verified replies.

The client above it (tables, dimensions, partial-read plans, procedures, reconnecting) is the
same for every protocol; a :class:`Session` is the part that differs -- MEP with RC4 digests or
TLS-PSK today (:class:`~mepgate.client.mep.MepSession`), the optical port's C12.18 session next.
The poller, the CLI and the gateway only ever see the client.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from mepgate.client.stats import LinkStatistics
from mepgate.proto import ProcedureResponse
from mepgate.tables.dimensions import Dimensions


@dataclass(frozen=True, slots=True)
class Reply:
    """A verified C12.18 reply: its code and, for a successful read, the table data."""

    code: int
    data: bytes = b""


class TableAccess(Protocol):
    """What a session's housekeeping may do on the meter (the client's table operations)."""

    async def read(
        self, table: int, *, offset: int | None = None, count: int | None = None
    ) -> bytes: ...

    async def read_table(self, table: int) -> bytes: ...

    async def call(self, procedure: int, parameters: bytes = b"") -> ProcedureResponse: ...

    async def dimensions(self) -> Dimensions: ...

    def housekeeping(self) -> AbstractAsyncContextManager[None]:
        """Requests made inside are the client's own: no alert service, no reconfiguration
        check (they are part of one)."""
        ...


class Session(Protocol):
    """One protocol's way to one meter.  Opened and closed by the client; ``request`` raises
    :class:`~mepgate.transport.PortUnavailableError` when the port went away (the client then
    reconnects), :class:`~mepgate.client.errors.ReconfiguredError` when the meter changed its
    table layout (the client re-reads its dimensions), and a
    :class:`~mepgate.client.errors.MeterLinkError` naming the likely cause otherwise."""

    port: str
    interface: str
    """``mep`` or ``optical``: the words diagnoses are given in."""
    stats: LinkStatistics
    idt_version: int | None
    """ET04's IDT version the session watches for reconfigurations (None: not read yet)."""

    @property
    def is_open(self) -> bool: ...

    @property
    def security(self) -> str:
        """How requests are secured now, in the words of ``--security`` (e.g. ``rc4``)."""
        ...

    @property
    def max_read(self) -> int:
        """Table bytes to ask for in one read: what a reply can carry, or less where the line
        makes long replies costly (it may change from one request to the next)."""
        ...

    @property
    def merge_gap(self) -> int:
        """Bytes between two wanted ranges that are cheaper to read than a second request:
        partial-read plans merge ranges closer than this."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def request(
        self, message: bytes, what: str, *, housekeeping: bool, deadline: float | None = None
    ) -> Reply:
        """Send one C12.18 request ``message`` and return its verified reply; ``what`` names
        it in errors.  ``deadline`` (the event loop's clock): not started, nor sent again,
        after it (:class:`~mepgate.client.errors.OutOfTimeError`)."""
        ...

    async def after_request(self, client: TableAccess) -> None:
        """Duties between requests (MEP: answer the meter's alerts)."""
        ...
