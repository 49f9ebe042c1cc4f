"""A few lines of C12.18 client over :mod:`mepgate.c1218` for the optical simulator tests:
packets out, the meter's bytes back in, every response packet acknowledged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from mepgate.c1218.buffer import (
    NEED_DATA,
    Acked,
    BadPacket,
    Naked,
    PacketBuffer,
    PacketReceived,
    Skipped,
)
from mepgate.c1218.constants import INTER_CHARACTER_TIMEOUT
from mepgate.c1218.packets import ACK, NAK, Packet, split
from mepgate.simulator.optical import OpticalServer, Transmit
from mepgate.simulator.serve.probe import LineProbe


@dataclass
class Wire:
    """What the meter sent back to one call, sorted."""

    acks: int = 0
    naks: int = 0
    packets: list[Packet] = field(default_factory=list)

    @property
    def message(self) -> bytes:
        return b"".join(p.data for p in self.packets)


class MemoryClient:
    """Drives an :class:`OpticalServer` directly, with the time passed in."""

    def __init__(self, server: OpticalServer, *, toggle: bool = False, now: float = 0.0) -> None:
        self.server = server
        self.toggle = toggle
        self.now = now
        self.packet_size = 64
        self.packets = 1

    def feed(self, data: bytes, *, ack: bool = True) -> Wire:
        """Give the server raw bytes; acknowledge each response packet (unless ``ack``)."""
        wire = Wire()
        pending = list(self.server.receive(data, self.now))
        while pending:
            self._sort(pending.pop(0), wire)
            if ack and wire.packets and not wire.packets[-1].last:
                pending += self.server.receive(bytes([ACK]), self.now)
        if ack and wire.packets:
            self.server.receive(bytes([ACK]), self.now)
        return wire

    def _sort(self, out: Transmit, wire: Wire) -> None:
        buffer = PacketBuffer(expect_ack=True)
        buffer.feed(out.data)
        while (event := buffer.next_event()) is not NEED_DATA:
            if isinstance(event, Acked):
                wire.acks += 1
            elif isinstance(event, Naked):
                wire.naks += 1
            elif isinstance(event, PacketReceived):
                wire.packets.append(event.packet)

    def request(self, message: bytes, *, ack: bool = True) -> bytes:
        """Send one request message (split to the negotiated size); its response message."""
        wire = Wire()
        for packet in split(message, self.packet_size, self.toggle, packets=self.packets):
            part = self.feed(packet.to_bytes(), ack=ack)
            wire.acks += part.acks
            wire.packets += part.packets
            self.toggle = not packet.toggle
        assert wire.acks >= 1, "the meter acknowledged nothing"
        return wire.message

    def packet(self, message: bytes) -> bytes:
        """The raw packet for a single-packet ``message`` with the next toggle value."""
        raw = Packet(message, self.toggle).to_bytes()
        self.toggle = not self.toggle
        return raw


class LineClient:
    """A C12.18 client over a real line (:class:`LineProbe`): ACKs every response packet,
    resends on NAK, and keeps every event it saw (NAKs, skipped non-C12.18 bytes)."""

    def __init__(self, probe: LineProbe, *, timeout: float = 3.0) -> None:
        self.probe = probe
        self.timeout = timeout
        self.toggle = False
        self.buffer = PacketBuffer()
        self.naks = 0
        self.skipped = b""
        self.duplicates = 0

    def _events(self, deadline: float) -> Iterator[object]:
        while True:
            while (event := self.buffer.next_event()) is not NEED_DATA:
                yield event
            left = deadline - time.monotonic()
            if left <= 0:
                return
            chunk = self.probe._read_chunk(min(left, INTER_CHARACTER_TIMEOUT))
            if chunk:
                self.buffer.feed(chunk)
            elif self.buffer.held:
                yield from self.buffer.expire()  # a stale partial packet (damaged length)

    def request(self, message: bytes, *, retries: int = 6) -> bytes:
        """Send a single-packet request and return the response message.  A packet the meter
        did not acknowledge goes again unchanged (a resend); an acknowledged request whose
        response never came is asked again as a new packet (flipped toggle)."""
        raw = self._next(message)
        for _ in range(retries):
            # Bytes that came before our request (MEP replies on a shared UART) are not an
            # answer to it: set them aside, as a client flushes its input before sending.
            self.skipped += bytes(self.buffer._buf)
            self.skipped += b"".join(chunk for _, chunk in self.probe.read_raw(0.05))
            self.buffer.clear()
            self.buffer.expect_ack = True
            self.probe.send(raw)
            acked, got = self._answer(time.monotonic() + self.timeout)
            if got is not None:
                return got
            if acked:
                raw = self._next(message)
        raise AssertionError("no response from the optical port")

    def _next(self, message: bytes) -> bytes:
        raw = Packet(message, self.toggle).to_bytes()
        self.toggle = not self.toggle
        return raw

    def _answer(self, deadline: float) -> tuple[bool, bytes | None]:
        acked = False
        parts: list[bytes] = []
        last: tuple[bool, int] | None = None
        for event in self._events(deadline):
            if isinstance(event, Naked) and not acked:
                self.naks += 1
                return False, None
            if isinstance(event, Acked):
                acked = True
            elif isinstance(event, Skipped):
                self.skipped += event.data
            elif isinstance(event, BadPacket):
                self.probe.send(bytes([NAK]))
            elif isinstance(event, PacketReceived):
                self.probe.send(bytes([ACK]))
                key = (event.packet.toggle, event.packet.crc)
                if key == last:
                    self.duplicates += 1
                    continue
                last = key
                parts.append(event.packet.data)
                if event.packet.last:
                    return True, b"".join(parts)
        return acked, None
