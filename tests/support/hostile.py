"""A hostile fake meter: real MEP where it behaves, one named misbehaviour where it does not.

``HostileMeter(behaviour)`` serves a gen4 meter model (:func:`mepgate.simulator.model.build_meter`)
through the protocol core's server role on a loopback TCP port, in a thread of its own, and
misbehaves in one of these ways (:data:`BEHAVIOURS`):

* ``noise`` -- a byte every 100 ms that never forms a frame, and no answer;
* ``accept-close`` -- every connection closed at once (ser2net while its port is taken);
* ``zero-reads`` -- partial reads answered "ok" with 0 bytes;
* ``short`` -- partial reads answered "ok" with half the bytes asked for;
* ``endless`` -- whole reads refused as too long, partial reads answered with data wherever
  they ask, even past the table's end;
* ``alert-flood`` -- thousands of alert sequences before every reply;
* ``spread-bt27`` -- BT21 announces 240 present values and BT27 lists the dashboard's sources
  far apart, so that one read of all of them would not fit a reply (the meter refuses those).

The first four must end every command with a named diagnosis; the last two are a meter that
works, and must be read correctly (the model's ground truth is :attr:`HostileMeter.model`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from types import TracebackType

from mepgate.proto import ALERT, AccessLevel, Frame, FrameBuffer, ReadRequest, parse_request
from mepgate.proto.codes import ResponseCode
from mepgate.proto.constants import MAX_READ_DATA
from mepgate.proto.errors import FramingError, MalformedMessageError
from mepgate.proto.messages import encode_read_reply
from mepgate.simulator.core import MeterCore
from mepgate.simulator.faults import NOISE_FLOOR
from mepgate.simulator.meter import DEFAULT_MAK, DEFAULT_MBK
from mepgate.simulator.model import MeterModel, build_meter, model_of
from mepgate.tables.dimensions import PresentRegisterSelection
from mepgate.tables.registers import GUIDE_PRESENT_VALUE_SOURCES

BEHAVIOURS = (
    "noise",
    "accept-close",
    "zero-reads",
    "short",
    "endless",
    "alert-flood",
    "spread-bt27",
)
KEYS = {AccessLevel.BASIC: DEFAULT_MBK, AccessLevel.ADVANCED: DEFAULT_MAK}
START = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
FLOOD = 5_000
"""Alert sequences sent before each reply by ``alert-flood`` (10 kB, past any one buffer)."""
SPREAD_VALUES = 240


class _HostileCore(MeterCore):
    def __init__(self, behaviour: str, model: MeterModel) -> None:
        super().__init__(keys=KEYS, store=model, sequence=4242)
        self.behaviour = behaviour

    def execute(self, message: bytes, level: AccessLevel) -> bytes:
        try:
            request = parse_request(message)
        except MalformedMessageError:
            return super().execute(message, level)
        if not isinstance(request, ReadRequest):
            return super().execute(message, level)
        if self.behaviour == "endless":
            if request.offset is None:
                return bytes([ResponseCode.OPERATION_NOT_POSSIBLE])  # "too long, read parts"
            content = self._store.table(request.table_id) or b""
            data = content[request.offset : request.offset + request.count]
            return encode_read_reply(data.ljust(min(request.count, MAX_READ_DATA), b"\x00"))
        reply = super().execute(message, level)
        if request.offset is None or reply[:1] != bytes([ResponseCode.OK]):
            return reply
        data = reply[3:]
        if self.behaviour == "zero-reads":
            return encode_read_reply(b"")
        if self.behaviour == "short":
            return encode_read_reply(data[: len(data) // 2])
        return reply


def _spread(model: MeterModel) -> None:
    """BT21: 240 present values; BT27: the guide's sources, each followed by fillers, so the
    dashboard's values lie hundreds of bytes apart."""
    dims = model.dims
    filler = 0  # source id 0: no quantity, reads as zero
    sources: list[int] = []
    for source in GUIDE_PRESENT_VALUE_SOURCES:
        sources += [source, *([filler] * 2)]
    sources = sources[:SPREAD_VALUES]
    selection = dims.present_selection
    model.dims = dataclasses.replace(
        dims,
        register=dataclasses.replace(dims.register, number_of_present_values=len(sources)),
        present_selection=PresentRegisterSelection(
            present_demand_sources=selection.present_demand_sources if selection else (),
            present_value_sources=tuple(sources),
        ),
    )


class HostileMeter:
    """A fake meter on ``tcp://127.0.0.1:PORT`` (:attr:`url`) that misbehaves as named."""

    def __init__(self, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; known: {', '.join(BEHAVIOURS)}")
        self.behaviour = behaviour
        meter = build_meter("gen4-3phase", seed=11, start=START, speed=1e-9, keys=KEYS)
        self.model = model_of(meter)
        self.model.advance(START)
        if behaviour == "spread-bt27":
            _spread(self.model)
        self._core = _HostileCore(behaviour, self.model)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.connections = 0
        self.url = ""

    def __enter__(self) -> HostileMeter:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.url = future.result(timeout=10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _stop(self) -> None:
        self._stopping = True  # a noise stream does not end by itself: it checks this
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=2)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            if self.behaviour == "accept-close":
                return
            if self.behaviour == "noise":
                await self._noise(writer)
                return
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()

    async def _noise(self, writer: asyncio.StreamWriter) -> None:
        value = NOISE_FLOOR
        while not writer.is_closing() and not self._stopping:
            writer.write(bytes([value]))
            await writer.drain()
            value = NOISE_FLOOR + (value + 37) % (256 - NOISE_FLOOR)
            await asyncio.sleep(0.1)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = FrameBuffer(minimum=1, alerts=False)
        while data := await reader.read(4096):
            buffer.receive_data(data)
            for frame in _frames(buffer):
                with self._lock:
                    reply = self._core.handle(frame.wire)
                if self.behaviour == "alert-flood":
                    writer.write(ALERT * FLOOD)
                writer.write(reply)
                await writer.drain()


def _frames(buffer: FrameBuffer) -> Iterator[Frame]:
    while True:
        try:
            event = buffer.next_event()
        except FramingError:
            continue
        if not isinstance(event, Frame):
            return
        yield event
