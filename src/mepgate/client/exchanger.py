"""One request frame out, its reply back: pacing, timeouts, echo and garbage accounting.

This is the only place that waits on the line.  It knows nothing about keys or tables: the
caller passes the frame and a ``decode`` function that verifies a candidate reply (raising a
:class:`~mepgate.errors.RemoteProtocolError` for anything that is not the answer, which is
then given back to the :class:`~mepgate.proto.FrameBuffer` to re-synchronise).  Resending and
re-sequencing are the caller's decisions (MEP guide, "MEP Protocol Timing").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from mepgate.client.diagnosis import Observation
from mepgate.client.stats import LinkStatistics
from mepgate.client.timing import LinkTiming
from mepgate.errors import RemoteProtocolError
from mepgate.proto import ALERT, NEED_DATA, Alert, Frame, FrameBuffer, FramingError
from mepgate.proto.constants import wire_time
from mepgate.transport import Link

R = TypeVar("R")
Trace = Callable[[str, bytes], None]

_IDLE_POLL = 0.001
"""How long to look for bytes that arrived between requests (a zero wait would not read)."""


class Exchanger:
    """Sends frames on a :class:`~mepgate.transport.Link` under the MEP timing rules."""

    def __init__(
        self,
        link: Link,
        timing: LinkTiming,
        stats: LinkStatistics,
        *,
        minimum: int,
        trace: Trace | None = None,
    ) -> None:
        self.link = link
        self._timing = timing
        self._stats = stats
        self._buffer = FrameBuffer(minimum=minimum)
        self._trace = trace
        self._loop = asyncio.get_running_loop()
        self._last_send = -1e9
        self.alert_pending = False

    def use_minimum(self, minimum: int) -> None:
        """Switch framing (9 for RC4 replies, 1 for TLS replies); drops held bytes."""
        self._buffer = FrameBuffer(minimum=minimum)

    async def transact(
        self, frame: bytes, decode: Callable[[bytes], R], seen: Observation
    ) -> R | None:
        """Send ``frame`` once and return its decoded reply, or None when none came in time."""
        await self._drain_stale(seen)
        wait = self._last_send + self._timing.min_request_interval - self._loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_send = self._loop.time()
        if self._trace is not None:
            self._trace(">>", frame)
        await self.link.write(frame)
        self._stats.frames_sent += 1
        self._stats.bytes_sent += len(frame)
        seen.frames_sent += 1
        # The timeout runs from the request's last byte on the wire (MEP guide, "Response
        # timeout"); drain() returns when the OS has the bytes, not when the UART sent them.
        deadline = self._loop.time() + wire_time(len(frame), self.link.baud)
        deadline += self._timing.response_timeout
        last_rx = self._loop.time()
        while True:
            found = self._scan(frame, decode, seen)
            if found is not None:
                return found[0]
            now = self._loop.time()
            limit = deadline
            if self._buffer.pending:
                limit = max(deadline, last_rx + self._timing.frame_gap_timeout)
            if now >= limit:
                return self._expire(frame, decode, seen)
            data = await self.link.read(limit - now)
            if data:
                last_rx = self._loop.time()
                self._received(data, seen)

    # -- internals -----------------------------------------------------------------------------
    def _received(self, data: bytes, seen: Observation) -> None:
        if self._trace is not None:
            self._trace("<<", data)
        self._stats.bytes_received += len(data)
        seen.bytes_received += len(data)
        self._buffer.receive_data(data)

    async def _drain_stale(self, seen: Observation) -> None:
        """Take in what arrived between requests (alerts, late replies) before sending."""
        while data := await self.link.read(_IDLE_POLL):
            self._received(data, seen)
        while True:
            try:
                event = self._buffer.next_event()
            except FramingError as error:
                self._stats.garbage_bytes += error.discarded
                seen.garbage_bytes += error.discarded
                continue
            if event is NEED_DATA:
                return
            if isinstance(event, Alert):
                self._alert()

    def _alert(self) -> None:
        self._stats.alerts += 1
        self.alert_pending = True

    def _scan(
        self, frame: bytes, decode: Callable[[bytes], R], seen: Observation
    ) -> tuple[R] | None:
        while True:
            try:
                event = self._buffer.next_event()
            except FramingError as error:
                self._stats.garbage_bytes += error.discarded
                seen.garbage_bytes += error.discarded
                continue
            if event is NEED_DATA:
                return None
            found = self._consider(event, frame, decode, seen)
            if found is not None:
                return found

    def _consider(
        self, event: Frame | Alert, frame: bytes, decode: Callable[[bytes], R], seen: Observation
    ) -> tuple[R] | None:
        if isinstance(event, Alert):
            self._alert()
            return None
        if event.wire == frame:
            self._stats.echoed_frames += 1
            seen.echoed_frames += 1
            return None
        try:
            return (decode(event.wire),)
        except RemoteProtocolError:
            self._stats.damaged_replies += 1
            seen.damaged_replies += 1
            self._buffer.reject(event)
            return None

    def _expire(self, frame: bytes, decode: Callable[[bytes], R], seen: Observation) -> R | None:
        """The line went quiet mid-frame: rescan what is held, dropping the stale start."""
        found, dropped = self._buffer.expire()
        self._stats.garbage_bytes += dropped
        seen.garbage_bytes += dropped
        for index, event in enumerate(found):
            if isinstance(event, Frame) and event.wire != frame:
                try:
                    return decode(event.wire)
                except RemoteProtocolError:
                    self._stats.damaged_replies += 1
                    seen.damaged_replies += 1
                # A bogus frame may have swallowed the real reply: rescan from its second
                # byte, followed by everything found after it, in line order.
                rest = b"".join(_wire(e) for e in found[index + 1 :])
                self._buffer.receive_data(event.wire[1:] + rest)
                result = self._scan(frame, decode, seen)
                if result is not None:
                    return result[0]
                break
            self._consider(event, frame, decode, seen)
        self._buffer.expire()  # whatever is left cannot complete before the resend
        self._stats.timeouts += 1
        return None


def _wire(event: Frame | Alert) -> bytes:
    return event.wire if isinstance(event, Frame) else ALERT
