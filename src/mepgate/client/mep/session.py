"""The MEP port as a :class:`~mepgate.client.session.Session`: a link, the request machines of
:mod:`~mepgate.client.mep.machine`, and the duties between requests (alerts).

Security is per request: RC4 digests (optionally encrypted) by default; with
``Security.AUTO`` a meter that answers 0x0A ("TLS required") switches the session to TLS-PSK
for good (MEP guide, "Using TLS Security to secure MEP Ports").
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from enum import Enum

from mepgate.client.driver import Trace, drive
from mepgate.client.errors import OutOfTimeError, TlsRequiredError
from mepgate.client.mep.alerts import service_alerts
from mepgate.client.mep.machine import MepLink, Rc4Request, TlsRequest
from mepgate.client.planning import IDT_VERSION_OFFSET
from mepgate.client.session import Reply, TableAccess
from mepgate.client.stats import LinkStatistics
from mepgate.client.timing import LinkTiming
from mepgate.proto import ClientSequence
from mepgate.proto.constants import MAX_READ_DATA, MIN_REQUEST_INTERVAL, wire_time
from mepgate.proto.messages import ReadRequest
from mepgate.tables.ids import TableId
from mepgate.tls import RECORD_OVERHEAD, KeyId
from mepgate.transport import EnableLine, Link, open_link

IDT_PROBE = ReadRequest(table_id=TableId.ET04, offset=IDT_VERSION_OFFSET, count=1).to_bytes()
"""After a 0x0C: has the meter been reconfigured? (it then jumps its sequence counter)"""
TLS_MAX_READ_DATA = MAX_READ_DATA - 1 - RECORD_OVERHEAD
"""Table bytes one TLS-carried read reply can hold (one TLS code byte and a record header)."""


class Security(Enum):
    """How to secure requests: ``AUTO`` starts with RC4 and switches if the meter wants TLS."""

    AUTO = "auto"
    RC4 = "rc4"
    TLS = "tls"


class MepSession:
    """One meter's MEP port.  ``key`` is the 16 key bytes of
    :func:`~mepgate.proto.parse_key`; ``mep_client`` is our entry in ET13 (1..4) whose alert
    flags we service; ``link_factory`` replaces :func:`~mepgate.transport.open_link` (tests)."""

    interface = "mep"

    def __init__(
        self,
        port: str,
        key: bytes,
        *,
        baud: int = 9600,
        enable: EnableLine = EnableLine.NONE,
        encrypt: bool = False,
        security: Security = Security.AUTO,
        key_id: KeyId = KeyId.MBK,
        timing: LinkTiming | None = None,
        trace: Trace | None = None,
        handle_alerts: bool = True,
        mep_client: int = 1,
        link_factory: Callable[[], Awaitable[Link]] | None = None,
    ) -> None:
        self.port = port
        self._baud = baud
        self._enable = enable
        self._mode = security
        self._trace = trace
        self.handle_alerts = handle_alerts
        self.mep_client = mep_client
        self._link_factory = link_factory
        self.timing = timing or LinkTiming()
        self.stats = LinkStatistics()
        self._link: Link | None = None
        # The counter may start anywhere: the meter's first 0x0C tells the right number.
        self._state = MepLink(
            key=key,
            timing=self.timing,
            baud=baud,
            encrypt=encrypt,
            sequence=ClientSequence(random.getrandbits(31)),
            key_id=key_id,
            idt_probe=IDT_PROBE,
            tls=security is Security.TLS,
        )

    def __repr__(self) -> str:
        return f"MepSession({self.port!r}, security={self.security}, key=<hidden>)"

    # -- Session --------------------------------------------------------------------------------
    @property
    def idt_version(self) -> int | None:
        return self._state.idt_version

    @idt_version.setter
    def idt_version(self, version: int | None) -> None:
        self._state.idt_version = version

    @property
    def is_open(self) -> bool:
        return self._link is not None

    @property
    def security(self) -> str:
        return Security.TLS.value if self._state.tls else self._mode.value

    @property
    def max_read(self) -> int:
        # What a reply can carry -- less on a line that damages replies (MepLink.chunk).
        return self._state.chunk(TLS_MAX_READ_DATA if self._state.tls else MAX_READ_DATA)

    @property
    def read_timeout(self) -> float:
        """The response timeout a read's first try waits now (learnt from the meter's answers
        on this connection: :meth:`~mepgate.client.mep.machine.MepLink.read_timeout`)."""
        return self._state.read_timeout()

    @property
    def merge_gap(self) -> int:
        # Reading a gap is worth it while it takes less wire time than a request's minimum
        # spacing (MEP guide, "Response timing": one request per 100 ms) -- less on a line
        # that damages replies (MepLink.merge_gap).
        return self._state.merge_gap(int(MIN_REQUEST_INTERVAL / wire_time(1, self._baud)))

    async def open(self) -> None:
        if self._link_factory is not None:
            self._link = await self._link_factory()
        else:
            self._link = await open_link(self.port, baud=self._baud, enable=self._enable)
        self._state.connection_opened()

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    async def request(
        self, message: bytes, what: str, *, housekeeping: bool, deadline: float | None = None
    ) -> Reply:
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            raise OutOfTimeError(f"{what}: not started, its time was up")
        while True:
            link = self._link
            if link is None:
                await self.open()
                continue
            machine: Rc4Request | TlsRequest
            if self._state.tls:
                machine = TlsRequest(self._state, message, what, give_up_at=deadline)
            else:
                machine = Rc4Request(
                    self._state,
                    message,
                    what,
                    check_configuration=not housekeeping,
                    give_up_at=deadline,
                )
            if self._trace is not None:
                self._state.heard = []
            try:
                return await drive(machine, link, trace=self._trace)
            except TlsRequiredError:
                if self._mode is Security.RC4:
                    raise
                self._state.use_tls()
            finally:
                for seen in machine.observations():
                    self.stats.absorb(seen)
                self._print_heard()

    def _print_heard(self) -> None:
        heard, self._state.heard = self._state.heard, None
        if self._trace is not None and heard:
            for direction, data in heard:
                self._trace(direction, data)

    async def after_request(self, client: TableAccess) -> None:
        """Answer the meter's alerts when one is due, so that it stops alerting."""
        now = asyncio.get_running_loop().time()
        if not self.handle_alerts or not self._state.alert_due(now):
            return
        self._state.alerts_serviced(now)
        await service_alerts(client, self.mep_client)
        self.stats.alerts_serviced += 1
