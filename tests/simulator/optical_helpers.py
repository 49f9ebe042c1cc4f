"""A few lines of C12.18 client over :mod:`mepgate.c1218` for the optical simulator tests:
packets out, the meter's bytes back in, every response packet acknowledged."""

from __future__ import annotations

from dataclasses import dataclass, field

from mepgate.c1218.buffer import NEED_DATA, Acked, Naked, PacketBuffer, PacketReceived
from mepgate.c1218.packets import ACK, Packet, split
from mepgate.simulator.optical import OpticalServer, Transmit


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
