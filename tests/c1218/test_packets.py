"""Packets, splitting to a packet size, reassembly, duplicates."""

from __future__ import annotations

import pytest

from mepgate.c1218.errors import PacketError, ReassemblyError
from mepgate.c1218.packets import DuplicateFilter, Packet, Reassembler, split
from mepgate.errors import LocalProtocolError


def test_split_a_long_message_into_counted_packets() -> None:
    packets = split(bytes(range(20)), 16, False, packets=3)  # 8 data bytes per packet
    assert [p.ctrl for p in packets] == [0xC0, 0xA0, 0x80]
    assert [p.seq for p in packets] == [2, 1, 0]
    assert [len(p.data) for p in packets] == [8, 8, 4]
    reassembler = Reassembler(packets=3)
    assert [reassembler.add(p) for p in packets] == [None, None, bytes(range(20))]


def test_a_message_that_fits_is_one_plain_packet() -> None:
    assert split(b"\x00", 64, True) == [Packet(b"\x00", True)]


def test_more_packets_than_negotiated_are_refused_both_ways() -> None:
    with pytest.raises(LocalProtocolError, match="needs 3 packets"):
        split(bytes(20), 16, False, packets=2)
    reassembler = Reassembler(packets=2)
    with pytest.raises(ReassemblyError, match="2 were negotiated"):
        reassembler.add(split(bytes(20), 16, False)[0])


def test_out_of_order_packets_are_a_reassembly_error() -> None:
    first, second, third = split(bytes(20), 16, False)
    reassembler = Reassembler(packets=3)
    reassembler.add(first)
    with pytest.raises(ReassemblyError, match="out of order"):
        reassembler.add(third)
    assert not reassembler.pending
    with pytest.raises(ReassemblyError, match="without its first"):
        reassembler.add(second)


def test_duplicates_are_same_toggle_and_crc() -> None:
    seen = DuplicateFilter()
    packet = Packet(b"\x20", False)
    assert not seen.is_duplicate(packet)
    assert seen.is_duplicate(packet)
    assert not seen.is_duplicate(Packet(b"\x20", True))  # toggled: a new packet
    assert not seen.is_duplicate(Packet(b"\x20", False))


def test_a_damaged_packet_does_not_parse() -> None:
    raw = bytearray(Packet(b"\x20", False).to_bytes())
    raw[6] ^= 1
    with pytest.raises(PacketError, match="CRC mismatch"):
        Packet.parse(bytes(raw))
