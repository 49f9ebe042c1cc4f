"""The async :class:`MeterClient`: reads, writes and procedure calls on one meter.

One request in flight at a time (the meter serves one), under the timing rules of
:mod:`~mepgate.client.timing`.  The client also keeps what a session needs: the dimension tables
(re-read when ET04's IDT version changes: MEP guide, "Dynamic Sizing of Tables"), the alert
duty (:mod:`~mepgate.client.alerts`), TLS when the meter requires it, and reconnecting with
backoff when the port goes away.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from types import TracebackType

from mepgate.client import alerts
from mepgate.client.channels import (
    RC4_MIN_FRAME,
    TLS_MIN_FRAME,
    Rc4Channel,
    Reply,
    TlsChannel,
    TlsRequiredError,
)
from mepgate.client.errors import MeterRefusedError, PortUnavailableError
from mepgate.client.exchanger import Exchanger, Trace
from mepgate.client.partial import PresentReadPlan, plan_present_read, plan_tier_read
from mepgate.client.stats import LinkStatistics
from mepgate.client.timing import LinkTiming
from mepgate.errors import LocalProtocolError, MepgateError
from mepgate.proto import ClientSequence, ProcedureCall, ProcedureResponse, ResponseCode
from mepgate.proto.constants import ALERT_INTERVAL, MAX_READ_DATA
from mepgate.proto.messages import ReadRequest, WriteRequest
from mepgate.proto.procedures import (
    BT07_PROCEDURE_INITIATE,
    BT08_PROCEDURE_RESPONSE,
    EP39_POST_MEP_DATA,
    ET59_MEP_PROCEDURE_RESPONSE,
    MepPostType,
    ProcedureSequence,
    ep39_parameters,
    procedure_name,
)
from mepgate.tables.dimensions import (
    BT21,
    BT27,
    ET11,
    Dimensions,
    energy_register_unit_offset,
)
from mepgate.tables.identity import ET04_LAYOUT
from mepgate.tables.ids import TableId, table_name
from mepgate.tables.registers import (
    BT28,
    PresentRegisterData,
    PresentValues,
    RegisterTotals,
)
from mepgate.tls import RECORD_OVERHEAD, KeyId
from mepgate.transport import EnableLine, Link, open_link

IDT_VERSION_OFFSET = ET04_LAYOUT.offset_of("idt_version")
TLS_MAX_READ_DATA = MAX_READ_DATA - 1 - RECORD_OVERHEAD
"""Table bytes one TLS-carried read reply can hold (one TLS code byte and a record header)."""
_PROCEDURE_POLLS = 10
_PROCEDURE_POLL_INTERVAL = 0.1  # MEP guide, "Calling Procedures": results within a second
_RECONFIGURATION_RETRIES = 3


class Security(Enum):
    """How to secure requests: ``AUTO`` starts with RC4 and switches if the meter wants TLS."""

    AUTO = "auto"
    RC4 = "rc4"
    TLS = "tls"


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


class ReconfiguredError(MepgateError):
    """(Internal) ET04's IDT version changed: requests built from old dimensions are void."""


class MeterClient:
    """An async client for one meter's MEP port.

    ``key`` is the 16 key bytes from :func:`~mepgate.proto.parse_key`.  Use as ``async with``.
    """

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
        backoff: Backoff | None = None,
        link_factory: Callable[[], Awaitable[Link]] | None = None,
    ) -> None:
        self.port = port
        self._key = key
        self._baud = baud
        self._enable = enable
        self._encrypt = encrypt
        self.security = security
        self._key_id = key_id
        self.timing = timing or LinkTiming()
        self._trace = trace
        self.handle_alerts = handle_alerts
        self.mep_client = mep_client
        self.backoff = backoff or Backoff()
        self.stats = LinkStatistics()
        # The counter may start anywhere: the meter's first 0x0C tells the right number.
        self._sequence = ClientSequence(random.getrandbits(31))
        self._psn = ProcedureSequence()
        self._link: Link | None = None
        self._ex: Exchanger | None = None
        self._channel: Rc4Channel | TlsChannel | None = None
        self._dims: Dimensions | None = None
        self.idt_version: int | None = None
        self._internal = False  # inside an IDT check or alert service
        self._link_factory = link_factory
        self._alerts_serviced_at = -ALERT_INTERVAL

    def __repr__(self) -> str:
        return f"MeterClient({self.port!r}, security={self.security.value}, key=<hidden>)"

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
        await self._connect()

    async def _connect(self) -> tuple[Exchanger, Rc4Channel | TlsChannel]:
        """Open the link; returns its exchanger and the channel of the current security."""
        if self._link_factory is not None:
            self._link = await self._link_factory()
        else:
            self._link = await open_link(self.port, baud=self._baud, enable=self._enable)
        tls = self.security is Security.TLS
        exchanger = Exchanger(
            self._link,
            self.timing,
            self.stats,
            minimum=TLS_MIN_FRAME if tls else RC4_MIN_FRAME,
            trace=self._trace,
        )
        channel = self._make_channel(exchanger, tls)
        self._ex, self._channel = exchanger, channel
        return exchanger, channel

    async def close(self) -> None:
        link, self._link, self._ex, self._channel = self._link, None, None, None
        if link is not None:
            await link.close()

    def _make_channel(self, exchanger: Exchanger, tls: bool) -> Rc4Channel | TlsChannel:
        if tls:
            exchanger.use_minimum(TLS_MIN_FRAME)
            return TlsChannel(
                exchanger, self._key, key_id=self._key_id, stats=self.stats, timing=self.timing
            )
        channel = Rc4Channel(
            exchanger,
            self._key,
            stats=self.stats,
            timing=self.timing,
            encrypt=self._encrypt,
            sequence=self._sequence,
        )
        channel.after_resync = self._after_resync
        return channel

    async def _reconnect(self, error: PortUnavailableError) -> None:
        await self.close()
        for delay in self.backoff.delays():
            await asyncio.sleep(delay)
            try:
                await self.connect()
            except PortUnavailableError:
                continue
            self.stats.reconnects += 1
            return
        raise error

    # -- requests ------------------------------------------------------------------------------
    async def _request(self, build: Callable[[], bytes], what: str) -> Reply:
        self.stats.requests += 1
        for _ in range(_RECONFIGURATION_RETRIES):
            try:
                reply = await self._send(build(), what)
            except ReconfiguredError:
                continue
            if self._alert_due():
                await self.service_alerts()
            return reply
        raise MeterRefusedError(
            ResponseCode.OPERATION_NOT_POSSIBLE, f"{what}: the meter kept reconfiguring"
        )

    def _alert_due(self) -> bool:
        """An alert was seen and the last service is a second old: a meter repeats a pending
        alert every second (MEP guide, "Alert Sequence"), while line noise can fake one."""
        if not self.handle_alerts or self._internal or self._ex is None:
            return False
        now = asyncio.get_running_loop().time()
        return self._ex.alert_pending and now - self._alerts_serviced_at >= ALERT_INTERVAL

    async def _send(self, message: bytes, what: str) -> Reply:
        while True:
            if self._ex is None or self._channel is None:
                exchanger, channel = await self._connect()
            else:
                exchanger, channel = self._ex, self._channel
            try:
                return await channel.request(message, what)
            except TlsRequiredError:
                if self.security is Security.RC4:
                    raise
                self.security = Security.TLS
                self._channel = self._make_channel(exchanger, tls=True)
            except PortUnavailableError as error:
                await self._reconnect(error)

    async def read(
        self, table: int, *, offset: int | None = None, count: int | None = None
    ) -> bytes:
        """Read table ``table``: whole, or ``count`` bytes at ``offset`` (a partial read)."""
        if offset is None and count is None:
            return await self.read_table(table)
        request = ReadRequest(table_id=table, offset=offset or 0, count=count or 0)
        return await self._read(request.to_bytes(), f"reading {table_name(table)}")

    async def _read(self, message: bytes, what: str) -> bytes:
        reply = await self._request(lambda: message, what)
        if reply.code != ResponseCode.OK:
            raise MeterRefusedError(reply.code, what)
        return reply.data

    @property
    def max_read(self) -> int:
        return TLS_MAX_READ_DATA if self.security is Security.TLS else MAX_READ_DATA

    async def read_table(self, table: int) -> bytes:
        """A whole table; tables too long for one reply are read in parts."""
        what = f"reading {table_name(table)}"
        reply = await self._request(lambda: ReadRequest(table_id=table).to_bytes(), what)
        if reply.code == ResponseCode.OK and len(reply.data) <= self.max_read:
            return reply.data
        if reply.code not in (ResponseCode.OK, ResponseCode.OPERATION_NOT_POSSIBLE):
            raise MeterRefusedError(reply.code, what)
        return await self._read_in_parts(table, what)

    async def _read_in_parts(self, table: int, what: str) -> bytes:
        out = bytearray()
        count = self.max_read
        while count:
            request = ReadRequest(table_id=table, offset=len(out), count=count)
            reply = await self._request(request.to_bytes, what)
            if reply.code == ResponseCode.OK:
                out += reply.data
                continue
            if reply.code != ResponseCode.TABLE_OPERATION_NOT_POSSIBLE:
                raise MeterRefusedError(reply.code, what)
            count //= 2  # past the end: narrow down to the table's last bytes
        return bytes(out)

    async def write(self, table: int, data: bytes, *, offset: int | None = None) -> None:
        message = WriteRequest(table_id=table, data=data, offset=offset).to_bytes()
        what = f"writing {table_name(table)}"
        reply = await self._request(lambda: message, what)
        if reply.code != ResponseCode.OK:
            raise MeterRefusedError(reply.code, what)

    async def call(self, procedure: int, parameters: bytes = b"") -> ProcedureResponse:
        """Run a procedure through BT07 and return its result (BT08 or ET59)."""
        call = ProcedureCall(number=procedure, psn=self._psn.take(), parameters=parameters)
        name = procedure_name(procedure)
        await self.write(BT07_PROCEDURE_INITIATE, call.to_bytes())
        for _ in range(_PROCEDURE_POLLS):
            for table in (BT08_PROCEDURE_RESPONSE, ET59_MEP_PROCEDURE_RESPONSE):
                try:
                    data = await self.read_table(table)
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
            self._dims = await self._load_dimensions()
        return self._dims

    def dims_or_none(self) -> Dimensions:
        """The dimensions read so far (for decoders); raises if none were read."""
        if self._dims is None:
            raise LocalProtocolError("read the dimensions first: await client.dimensions()")
        return self._dims

    async def _load_dimensions(self) -> Dimensions:
        was, self._internal = self._internal, True
        try:
            if self.idt_version is None:
                self.idt_version = await self._read_idt_version()
            register = BT21.decode(await self.read_table(TableId.BT21))
            mfg = ET11.decode(await self.read_table(TableId.ET11))
            dims = Dimensions(register=register, mfg=mfg)
            selection = BT27.decode(await self.read_table(TableId.BT27), dims)
            offset = energy_register_unit_offset(register, dims.generation)
            unit = (await self.read(TableId.ET55, offset=offset, count=1))[0]
            return Dimensions(
                register=register, mfg=mfg, present_selection=selection, energy_register_unit=unit
            )
        finally:
            self._internal = was

    async def _read_idt_version(self) -> int:
        data = await self.read(TableId.ET04, offset=IDT_VERSION_OFFSET, count=1)
        return data[0]

    async def _after_resync(self) -> None:
        """After a 0x0C: the meter may have been reconfigured (it then jumps its counter)."""
        if self._internal or self.idt_version is None:
            return
        self._internal = True
        try:
            version = await self._read_idt_version()
        finally:
            self._internal = False
        if version == self.idt_version:
            return
        self.stats.idt_changes += 1
        self.idt_version = version
        self._dims = None
        raise ReconfiguredError(f"IDT version changed to {version}")

    # -- present values ------------------------------------------------------------------------
    async def read_bt28(self) -> PresentRegisterData:
        """BT28, decoded with the current dimensions."""
        for _ in range(_RECONFIGURATION_RETRIES):
            dims = await self.dimensions()
            data = await self.read_table(TableId.BT28)
            if self._dims is dims:
                return BT28.decode(data, dims)
        raise MeterRefusedError(ResponseCode.OPERATION_NOT_POSSIBLE, "BT28 kept changing shape")

    async def plan(self, fields: tuple[str, ...]) -> PresentReadPlan:
        return plan_present_read(await self.dimensions(), fields, self._baud)

    async def read_present(self, fields: tuple[str, ...]) -> PresentValues:
        """Just the named BT28 values, read with the fewest byte ranges (partial reads)."""
        for _ in range(_RECONFIGURATION_RETRIES):
            plan = await self.plan(fields)
            parts: list[tuple[int, bytes]] = []
            for offset, count in plan.spans:
                parts.append((offset, await self.read(TableId.BT28, offset=offset, count=count)))
                if self._dims is not plan.dims:
                    break
            else:
                return plan.assemble(parts)
        raise MeterRefusedError(ResponseCode.OPERATION_NOT_POSSIBLE, "BT28 kept changing shape")

    async def read_tier_totals(self, summations: int) -> tuple[RegisterTotals, ...]:
        """The first ``summations`` summations of every BT23 tier block (tier 0 first), read
        with the fewest byte ranges; empty when the meter has no tiers."""
        for _ in range(_RECONFIGURATION_RETRIES):
            plan = plan_tier_read(await self.dimensions(), summations, self._baud)
            parts: list[tuple[int, bytes]] = []
            for offset, count in plan.spans:
                parts.append((offset, await self.read(TableId.BT23, offset=offset, count=count)))
                if self._dims is not plan.dims:
                    break
            else:
                return plan.assemble(parts)
        raise MeterRefusedError(ResponseCode.OPERATION_NOT_POSSIBLE, "BT23 kept changing shape")

    # -- alerts --------------------------------------------------------------------------------
    async def service_alerts(self) -> alerts.AlertFlags:
        """Read ET13's alert flags and do what each asks, so the meter stops alerting."""
        if self._ex is None:
            raise LocalProtocolError("connect() first")
        self._ex.alert_pending = False
        self._alerts_serviced_at = asyncio.get_running_loop().time()
        was, self._internal = self._internal, True
        try:
            dims = await self.dimensions()
            offset = alerts.alert_flags_offset(dims, self.mep_client)
            flags = alerts.AlertFlags.from_byte(
                (await self.read(TableId.ET13, offset=offset, count=1))[0]
            )
            if flags.scheduled_read_request:
                await self.call(
                    EP39_POST_MEP_DATA, ep39_parameters(MepPostType.SCHEDULED_READ_DATA)
                )
            if flags.mbus_change:
                await self.call(EP39_POST_MEP_DATA, ep39_parameters(MepPostType.CLEAR_MBUS_ALERT))
            if flags.delta_data_alert:
                await self.call(
                    EP39_POST_MEP_DATA, ep39_parameters(MepPostType.CLEAR_DELTA_DATA_ALERT)
                )
            if flags.on_demand_request:
                await self.read_table(TableId.ET15)
            self.stats.alerts_serviced += 1
            return flags
        finally:
            self._internal = was
