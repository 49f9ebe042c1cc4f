"""The receive buffer: packets, ACK/NAK, noise, bad CRCs, stale partial packets."""

from __future__ import annotations

from mepgate.c1218.buffer import (
    NEED_DATA,
    Acked,
    BadPacket,
    LineEvent,
    Naked,
    PacketBuffer,
    PacketReceived,
    Skipped,
)
from mepgate.c1218.packets import ACK, NAK, Packet

IDENT = Packet(b"\x20", False)


def drain(buffer: PacketBuffer) -> list[LineEvent]:
    events: list[LineEvent] = []
    while (event := buffer.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def test_noise_ack_nak_and_a_packet() -> None:
    buffer = PacketBuffer()
    buffer.feed(b"\x01\x02" + bytes([ACK, NAK]) + b"\x00" + IDENT.to_bytes())
    assert drain(buffer) == [
        Skipped(2),
        Acked(),
        Naked(),
        Skipped(1),
        PacketReceived(IDENT, IDENT.to_bytes()),
    ]


def test_a_zero_counts_as_ack_only_where_one_is_due() -> None:
    buffer = PacketBuffer(expect_ack=True)
    buffer.feed(b"\x00\x00")
    assert drain(buffer) == [Acked(0), Skipped(1)]


def test_a_bad_crc_is_a_bad_packet_then_resync() -> None:
    damaged = bytearray(IDENT.to_bytes())
    damaged[-1] ^= 0xFF
    buffer = PacketBuffer()
    buffer.feed(bytes(damaged) + IDENT.to_bytes())
    events = drain(buffer)
    assert isinstance(events[0], BadPacket)
    assert events[1:] == [Skipped(len(damaged) - 1), PacketReceived(IDENT, IDENT.to_bytes())]


def test_a_stale_partial_packet_expires() -> None:
    buffer = PacketBuffer()
    buffer.feed(IDENT.to_bytes()[:5])
    assert buffer.next_event() is NEED_DATA
    assert buffer.expire() == [Skipped(5)]
    assert buffer.held == 0
