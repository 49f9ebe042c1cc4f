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


def test_a_single_packet_inside_a_multi_packet_message_is_an_error() -> None:
    first, _, _ = split(bytes(20), 16, False)
    reassembler = Reassembler(packets=3)
    reassembler.add(first)
    assert reassembler.pending
    assert reassembler.held == 8
    with pytest.raises(ReassemblyError, match="single packet"):
        reassembler.add(Packet(b"\x00", True))
    assert not reassembler.pending
    assert reassembler.add(Packet(b"\x00", True)) == b"\x00"


def test_a_new_first_packet_starts_the_message_over() -> None:
    old = split(bytes(20), 16, False)
    new = split(b"\x01" * 20, 16, True)
    reassembler = Reassembler(packets=3)
    reassembler.add(old[0])
    assert [reassembler.add(p) for p in new] == [None, None, b"\x01" * 20]


def test_a_one_packet_multi_message_is_whole_at_once() -> None:
    assert Reassembler().add(Packet(b"ab", False, first=True, multi=True)) == b"ab"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"first": True}, "first packet outside"),
        ({"seq": 1}, "single packet with sequence number"),
        ({"seq": 256, "multi": True}, "0..255"),
        ({"identity": -1}, "0..255"),
    ],
)
def test_impossible_packets_are_refused(kwargs: dict[str, int | bool], problem: str) -> None:
    with pytest.raises(LocalProtocolError, match=problem):
        Packet(b"", False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\xee\x00\x00\x00\x00", "too short"),
        (b"\xef\x00\x00\x00\x00\x00\x00\x00", "starts with 0xEE"),
        (b"\xee\x00\x00\x00\x00\x02\x00\x00\x00", "says 2 data bytes but it carries 1"),
        (Packet(b"", False).to_bytes()[:2] + b"\x04" + Packet(b"", False).to_bytes()[3:], "bits"),
    ],
)
def test_bytes_that_are_no_packet_do_not_parse(raw: bytes, problem: str) -> None:
    with pytest.raises(PacketError, match=problem):
        Packet.parse(raw)


def test_packet_sizes_below_the_overhead_carry_nothing() -> None:
    with pytest.raises(LocalProtocolError, match="smallest size is 9"):
        split(b"x", 8, False)
    assert [p.data for p in split(b"xyz", 9, False)] == [b"x", b"y", b"z"]


def test_the_next_message_toggle_follows_the_last_packet() -> None:
    pieces = split(bytes(30), 18, True)  # 10 data bytes each: three packets
    assert [p.toggle for p in pieces] == [True, False, True]


def test_duplicate_filter_reset_forgets_the_last_packet() -> None:
    seen = DuplicateFilter()
    packet = Packet(b"\x20", False)
    seen.is_duplicate(packet)
    seen.reset()
    assert not seen.is_duplicate(packet)
