"""Cutting a byte stream into MEP frames, whatever the chunking, with bounded memory.

Each side of the line feeds what it reads to :meth:`FrameBuffer.receive_data` and then asks
:meth:`FrameBuffer.next_event` until it returns :data:`NEED_DATA`.  Events are whole frames
(:class:`Frame`) and meter alerts (:class:`Alert`, the zero-length frame ``00 00``).

Re-synchronisation strategy (there is no start-of-frame marker in MEP, so the length field is
all there is):

1. A length outside ``minimum..476`` cannot start a frame: the first byte is dropped and the
   scan restarts one byte later; :class:`FramingError` reports the dropped bytes.
2. A plausible length whose bytes never arrive must not block the line forever.  The core has
   no clock, so the I/O layer calls :meth:`FrameBuffer.expire` when the line has been quiet
   longer than the intra-packet timeout (MEP guide, "Intra-packet timing": a sender never
   pauses 50 ms inside a frame).  That drops the stale partial frame.
3. A frame whose digest then fails to verify is handed back with :meth:`FrameBuffer.reject`:
   the scan resumes at its second byte, so real frames a bogus length swallowed are found.

Alerts: ``00 00`` is an alert only where a frame could start in the line's own order.  Bytes
given back by :meth:`~FrameBuffer.reject` or re-scanned by :meth:`~FrameBuffer.expire` were
inside something that looked like a frame; zeros there are table data (a damaged reply is full
of them), never the meter's alert, and are dropped as garbage.  A stray zero byte right before
a frame still reads as an alert followed by garbage; that is harmless to act on (the client
reads ET13 at most once a second), and the frame after is re-found by the steps above.

Memory: at most one incomplete frame (478 bytes) is kept between calls to ``next_event``;
``receive_data`` refuses to hold more than :data:`MAX_BUFFERED` unread bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mepgate.proto.constants import LENGTH_SIZE, MAX_MESSAGE
from mepgate.proto.errors import FramingError, LocalProtocolError

MAX_BUFFERED = 16 * (LENGTH_SIZE + MAX_MESSAGE)
"""Unread bytes we accept before insisting the caller drains events (a misuse guard)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole frame as it came off the line, length field included."""

    wire: bytes

    @property
    def body(self) -> bytes:
        return self.wire[LENGTH_SIZE:]


@dataclass(frozen=True, slots=True)
class Alert:
    """The meter's alert ``00 00``: read ET13's alert flags (MEP guide, "Alert Sequence")."""


class _NeedData(Enum):
    NEED_DATA = "need data"


NEED_DATA = _NeedData.NEED_DATA
Event = Frame | Alert | _NeedData


class FrameBuffer:
    """Receive-side framer.  ``minimum`` is the smallest valid length field for this stream:
    9 for RC4 responses (code + digest), 13 for RC4 requests, 1 for TLS frames."""

    def __init__(self, *, minimum: int, alerts: bool = True) -> None:
        if not 1 <= minimum <= MAX_MESSAGE:
            raise LocalProtocolError(f"minimum frame length must be 1..{MAX_MESSAGE}")
        self._minimum = minimum
        self._alerts = alerts
        self._buf = bytearray()
        self._inside = 0  # leading bytes that were inside a rejected or stale frame

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        if len(self._buf) + len(data) > MAX_BUFFERED:
            raise LocalProtocolError(
                f"more than {MAX_BUFFERED} unread bytes: "
                "call next_event() after each receive_data()"
            )
        self._buf += data

    def _consume(self, count: int) -> None:
        del self._buf[:count]
        self._inside = max(0, self._inside - count)

    def next_event(self) -> Event:
        """The next frame or alert, or :data:`NEED_DATA`.

        Raises :class:`FramingError` after dropping bytes that cannot start a frame; the
        buffer stays usable and any frame after the garbage comes with the next call.
        """
        dropped = bytearray()
        while len(self._buf) >= LENGTH_SIZE:
            length = int.from_bytes(self._buf[:LENGTH_SIZE], "big")
            if length == 0 and self._alerts and not self._inside:
                if dropped:
                    break
                self._consume(LENGTH_SIZE)
                return Alert()
            if not self._minimum <= length <= MAX_MESSAGE:
                dropped += self._buf[:1]
                self._consume(1)
                continue
            if dropped or len(self._buf) < LENGTH_SIZE + length:
                break
            wire = bytes(self._buf[: LENGTH_SIZE + length])
            self._consume(LENGTH_SIZE + length)
            return Frame(wire)
        if dropped:
            raise FramingError(
                f"dropped {len(dropped)} bytes that do not start a MEP frame (a wrong baud "
                "rate or level shifter shows as many of these)",
                discarded=len(dropped),
                data=bytes(dropped),
            )
        return NEED_DATA

    def reject(self, frame: Frame) -> None:
        """Give back a frame that failed verification: the scan resumes at its second byte.

        A bogus length can swallow real frames; rescanning finds them again.
        """
        self._buf[:0] = frame.wire[1:]
        self._inside += len(frame.wire) - 1

    def expire(self) -> tuple[list[Frame | Alert], int]:
        """The line went quiet mid-frame: rescan what is held, dropping the stale start.

        Returns the whole frames and alerts found behind the stale header, and how many
        bytes were dropped.  Afterwards nothing is pending.
        """
        found: list[Frame | Alert] = []
        dropped = 0
        self._inside = len(self._buf)  # all of it was behind the stale header
        while self._buf:
            self._consume(1)
            dropped += 1
            while True:
                try:
                    event = self.next_event()
                except FramingError as error:
                    dropped += error.discarded
                    continue
                if isinstance(event, _NeedData):
                    break
                found.append(event)
        return found, dropped
