"""The receive buffer: packets, ACK/NAK, noise, bad CRCs, stale partial packets."""

from __future__ import annotations

import pytest

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
from mepgate.errors import LocalProtocolError

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
    buffer.feed(b"\x00" + IDENT.to_bytes())  # a packet follows it
    assert drain(buffer) == [Acked(0), PacketReceived(IDENT, IDENT.to_bytes())]
    buffer = PacketBuffer(expect_ack=True)
    buffer.feed(b"\x00")  # alone: the next byte decides, or the line going quiet
    assert drain(buffer) == []
    assert buffer.expire() == [Acked(0)]
    assert not buffer.expect_ack
    buffer = PacketBuffer()
    buffer.feed(b"\x00" + IDENT.to_bytes())  # no ACK due: data
    assert drain(buffer)[0] == Skipped(1)


def test_a_mep_reply_on_a_shared_uart_is_no_ack() -> None:
    """Every MEP reply begins with 0x00 (its length's high byte): with an ACK due, that is
    still no ACK -- the whole reply is skipped, and the ACK is still awaited."""
    mep_reply = b"\x00\x0b\x00\x01\x02" + bytes(range(0x30, 0x38))
    buffer = PacketBuffer(expect_ack=True)
    buffer.feed(mep_reply + bytes([ACK]))
    assert drain(buffer) == [Skipped(len(mep_reply)), Acked()]
    buffer = PacketBuffer(expect_ack=True)
    buffer.feed(mep_reply[:1])  # the reply's first byte alone, then the rest
    assert drain(buffer) == []
    buffer.feed(mep_reply[1:])
    assert drain(buffer) == [Skipped(len(mep_reply))]
    assert buffer.expect_ack


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


def test_ack_bytes_inside_a_bad_packet_are_data_not_acks() -> None:
    damaged = bytearray(Packet(bytes([ACK, NAK, 0, ACK]), False).to_bytes())
    damaged[-2] ^= 0x01
    buffer = PacketBuffer(expect_ack=True)
    buffer.feed(bytes(damaged))
    events = drain(buffer)
    assert [type(e) for e in events] == [BadPacket, Skipped]
    assert isinstance(events[1], Skipped)
    assert events[1].count == len(damaged) - 1
    assert buffer.expect_ack  # no ACK was reported
    buffer.feed(bytes([ACK]))
    assert drain(buffer) == [Acked()]  # after the bad packet's bytes, an ACK is an ACK again
    assert not buffer.expect_ack


def test_a_bad_packet_that_swallowed_a_good_one_gives_it_back() -> None:
    swallowing = bytearray(IDENT.to_bytes())
    swallowing[5] = 1 + len(IDENT.to_bytes())  # length now covers the next packet too
    buffer = PacketBuffer()
    buffer.feed(bytes(swallowing) + IDENT.to_bytes() + bytes(2))
    events = drain(buffer)
    assert isinstance(events[0], BadPacket)
    assert PacketReceived(IDENT, IDENT.to_bytes()) in events


def test_headers_that_cannot_be_a_packet_are_skipped_at_once() -> None:
    buffer = PacketBuffer(max_packet_size=64)
    too_long = bytes([0xEE, 0, 0, 0, 0, 64 - 8 + 1])  # one byte over the packet size
    unused_bits = bytes([0xEE, 0, 0x01, 0, 0, 1])
    first_not_multi = bytes([0xEE, 0, 0x40, 0, 0, 1])
    single_with_seq = bytes([0xEE, 0, 0x00, 3, 0, 1])
    for header in (too_long, unused_bits, first_not_multi, single_with_seq):
        buffer.feed(header)
        assert drain(buffer) == [Skipped(6)]
        assert buffer.held == 0


def test_a_partial_header_waits() -> None:
    buffer = PacketBuffer()
    buffer.feed(b"\xee\x00\x00")
    assert buffer.next_event() is NEED_DATA
    buffer.feed(IDENT.to_bytes()[3:])
    assert drain(buffer) == [PacketReceived(IDENT, IDENT.to_bytes())]


def test_expire_finds_a_whole_packet_behind_a_stale_start() -> None:
    buffer = PacketBuffer()
    stale = Packet(bytes(40), False).to_bytes()[:20]
    buffer.feed(stale + bytes([ACK]) + IDENT.to_bytes())
    assert drain(buffer) == []
    assert buffer.expire() == [Skipped(21), PacketReceived(IDENT, IDENT.to_bytes())]
    assert buffer.held == 0
    assert buffer.expire() == []


def test_zero_is_noise_unless_an_ack_is_due() -> None:
    buffer = PacketBuffer()
    buffer.feed(b"\x00")
    assert drain(buffer) == [Skipped(1)]
    buffer.expect_ack = True
    buffer.feed(b"\x00" + IDENT.to_bytes())
    assert drain(buffer) == [Acked(0), PacketReceived(IDENT, IDENT.to_bytes())]


def test_skipped_keeps_the_bytes_for_traces() -> None:
    buffer = PacketBuffer()
    buffer.feed(b"\x00\x0b\x01\x02")  # the start of a MEP reply on a shared UART
    (event,) = drain(buffer)
    assert event == Skipped(4)
    assert isinstance(event, Skipped)
    assert event.data == b"\x00\x0b\x01\x02"


def test_clear_forgets_everything() -> None:
    buffer = PacketBuffer()
    buffer.feed(IDENT.to_bytes()[:4])
    assert buffer.next_event() is NEED_DATA
    buffer.clear()
    assert buffer.held == 0
    buffer.feed(IDENT.to_bytes())
    assert drain(buffer) == [PacketReceived(IDENT, IDENT.to_bytes())]


def test_packet_size_out_of_range_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="max_packet_size"):
        PacketBuffer(max_packet_size=8)
    with pytest.raises(LocalProtocolError, match="max_packet_size"):
        PacketBuffer(max_packet_size=8193)
