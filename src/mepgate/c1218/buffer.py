"""Cutting the optical line's byte stream into C12.18 packets, ACKs and NAKs, bounded.

Each side feeds what it reads to :meth:`PacketBuffer.feed` and asks :meth:`PacketBuffer.next_event`
until it returns :data:`NEED_DATA`.  The events:

* :class:`PacketReceived` -- a packet whose CRC is good (the receiver ACKs it, then checks it
  with a :class:`~mepgate.c1218.packets.DuplicateFilter`);
* :class:`Acked` / :class:`Naked` -- a bare ACK (0x06) or NAK (0x15).  With ``expect_ack``
  set, a 0x00 byte also counts as an ACK (some meters send one; both open readers accept it)
  when a packet's start follows it or the line goes quiet after it (:meth:`~PacketBuffer.expire`)
  -- not when other bytes follow: a MEP reply on a shared UART begins with 0x00;
  reporting an ACK or NAK clears ``expect_ack``, since one is due per packet sent;
* :class:`BadPacket` -- something that starts and ends like a packet but whose CRC fails: the
  receiver NAKs it.  Only its ``EE`` is consumed: the scan resumes at the byte after it, so a
  real packet a damaged length field swallowed is found again;
* :class:`Skipped` -- bytes that are not C12.18 (on Gen 2/3 meters MEP replies show up on the
  optical side; an echoing IR head; noise), counted.

Inside bytes given back after a bad or stale packet only a new ``EE`` counts: a 0x06, 0x15 or
0x00 there is data, never an ACK or NAK.

The core has no clock: when the line has been quiet for the inter-character timeout with a
partial packet held, the caller calls :meth:`PacketBuffer.expire`.

Memory: after the events are drained, at most one incomplete packet is held (less than
``max_packet_size`` bytes); :meth:`~PacketBuffer.feed` refuses more than :attr:`~PacketBuffer.room`
bytes, so the buffer never holds more than :attr:`~PacketBuffer.bound` (``max_packet_size`` +
:data:`MAX_FEED`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from mepgate.c1218.constants import (
    HEADER_SIZE,
    MAX_FEED,
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    PACKET_OVERHEAD,
)
from mepgate.c1218.errors import PacketError
from mepgate.c1218.packets import ACK, NAK, STP, Packet, ctrl_problem
from mepgate.errors import LocalProtocolError


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """A packet with a good CRC, and its bytes as they came off the line."""

    packet: Packet
    raw: bytes


@dataclass(frozen=True, slots=True)
class Acked:
    """The peer acknowledged our packet; ``byte`` is 0x06, or 0x00 where an ACK was due."""

    byte: int = ACK


@dataclass(frozen=True, slots=True)
class Naked:
    """The peer refused our packet (a bad CRC on its side): send it again."""


@dataclass(frozen=True, slots=True)
class BadPacket:
    """Bytes framed like a packet that failed the check (``reason`` says how): NAK them."""

    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Skipped:
    """``count`` bytes that are not C12.18 (``data`` holds them, for traces)."""

    count: int
    data: bytes = field(default=b"", compare=False)


class _NeedData(Enum):
    NEED_DATA = "need data"


NEED_DATA: Final = _NeedData.NEED_DATA
LineEvent = PacketReceived | Acked | Naked | BadPacket | Skipped
"""What the line brought (every event but :data:`NEED_DATA`)."""
Event = LineEvent | _NeedData


class PacketBuffer:
    """Receive side of a C12.18 link.  ``max_packet_size`` bounds the packets it waits for
    (header and CRC included); a header announcing more is taken for noise."""

    def __init__(self, *, max_packet_size: int = MAX_PACKET_SIZE, expect_ack: bool = False) -> None:
        if not MIN_PACKET_SIZE <= max_packet_size <= MAX_PACKET_SIZE:
            raise LocalProtocolError(
                f"max_packet_size must be {MIN_PACKET_SIZE}..{MAX_PACKET_SIZE}, "
                f"got {max_packet_size}"
            )
        self.max_packet_size = max_packet_size
        self.expect_ack = expect_ack
        self._buf = bytearray()
        self._inside = 0  # leading bytes that were inside a bad or stale packet

    @property
    def held(self) -> int:
        """Bytes held that have not been reported yet."""
        return len(self._buf)

    @property
    def bound(self) -> int:
        """The most bytes the buffer ever holds."""
        return self.max_packet_size + MAX_FEED

    @property
    def room(self) -> int:
        """Bytes :meth:`feed` accepts now."""
        return self.bound - len(self._buf)

    def feed(self, data: bytes) -> None:
        """Add bytes read from the line.  Drain events before feeding more: more than
        :attr:`room` bytes are refused (:class:`LocalProtocolError`, nothing is added)."""
        if len(data) > self.room:
            raise LocalProtocolError(
                f"{len(data)} bytes do not fit ({self.room} free of {self.bound}): call "
                "next_event() until NEED_DATA after each feed(), and feed at most "
                f"{MAX_FEED} bytes at once"
            )
        self._buf += data

    def clear(self) -> None:
        """Forget everything held (a new connection)."""
        self._buf.clear()
        self._inside = 0

    def _consume(self, count: int) -> bytes:
        taken = bytes(self._buf[:count])
        del self._buf[:count]
        self._inside = max(0, self._inside - count)
        return taken

    def _is_signal(self, at: int) -> bool:
        """Whether the byte at ``at`` is an ACK/NAK, or a 0x00 for an ACK (see
        :meth:`_zero_ack`)."""
        if self._inside > at:
            return False
        byte = self._buf[at]
        return byte in (ACK, NAK) or self._zero_ack(at)

    def _zero_ack(self, at: int) -> bool:
        """A 0x00 stands for an ACK only where one is due and when a packet's start follows
        it (or nothing yet: :meth:`next_event` waits for the next byte, :meth:`expire` takes
        a lone one).  On a shared UART every MEP reply begins with 0x00 (its length's high
        byte), followed by more length and data: that is not the meter's ACK."""
        if self._buf[at] != 0 or not self.expect_ack:
            return False
        return at + 1 >= len(self._buf) or self._buf[at + 1] == STP

    def _plausible_header(self) -> bool:
        """Whether the six bytes at the front can head a packet we accept."""
        length = int.from_bytes(self._buf[4:6], "big")
        if length + PACKET_OVERHEAD > self.max_packet_size:
            return False
        return ctrl_problem(self._buf[2], self._buf[3]) is None

    def next_event(self) -> Event:
        """The next event, or :data:`NEED_DATA` when the bytes held do not make one yet."""
        skipped = 0
        while skipped < len(self._buf):
            byte = self._buf[skipped]
            if byte == STP or self._is_signal(skipped):
                if skipped:
                    break
                if byte != STP:
                    if byte == 0 and len(self._buf) == 1:
                        return NEED_DATA  # an ACK if a packet or nothing follows
                    self._consume(1)
                    self.expect_ack = False
                    return Naked() if byte == NAK else Acked(byte)
                if len(self._buf) < HEADER_SIZE:
                    return NEED_DATA
                if not self._plausible_header():
                    skipped = 1
                    continue
                size = PACKET_OVERHEAD + int.from_bytes(self._buf[4:6], "big")
                if len(self._buf) < size:
                    return NEED_DATA
                raw = bytes(self._buf[:size])
                try:
                    packet = Packet.parse(raw)
                except PacketError as error:
                    # Resynchronise from the byte after the EE; what follows was inside.
                    self._consume(1)
                    self._inside = max(self._inside, size - 1)
                    return BadPacket(str(error), raw)
                self._consume(size)
                return PacketReceived(packet, raw)
            skipped += 1
        if skipped:
            data = self._consume(skipped)
            return Skipped(len(data), data)
        return NEED_DATA

    def expire(self) -> list[LineEvent]:
        """The line went quiet with a partial packet held: drop its start and rescan the rest.

        Returns the events found in what was held (whole packets behind the stale start, bad
        packets, skipped bytes, and :class:`Acked` for a lone 0x00 where an ACK is due; never
        :data:`NEED_DATA`); afterwards nothing is held.
        """
        found: list[LineEvent] = []
        while self._buf:
            next_event = self.next_event()
            if next_event is NEED_DATA and self._zero_ack(0) and not self._inside:
                self._consume(1)  # a lone 0x00 where an ACK is due, the line quiet after it
                self.expect_ack = False
                next_event = Acked(0)
            if next_event is NEED_DATA:
                self._inside = max(self._inside, len(self._buf))
                data = self._consume(1)
                event: LineEvent = Skipped(1, data)
            else:
                event = next_event
            previous = found[-1] if found else None
            if isinstance(event, Skipped) and isinstance(previous, Skipped):
                event = Skipped(previous.count + event.count, previous.data + event.data)
                found.pop()
            found.append(event)
        return found
