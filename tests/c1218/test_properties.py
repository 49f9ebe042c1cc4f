"""Property tests: round trips for every service, chunking, fuzzing, split and reassembly."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

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
from mepgate.c1218.constants import (
    MAX_PACKET_SIZE,
    MAX_PACKETS,
    MIN_PACKET_SIZE,
    PACKET_OVERHEAD,
)
from mepgate.c1218.errors import MessageError, ReassemblyError, ServiceError
from mepgate.c1218.packets import (
    ACK,
    NAK,
    STP,
    DuplicateFilter,
    Packet,
    Reassembler,
    data_per_packet,
    packets_needed,
    split,
)
from mepgate.c1218.services import (
    IdentResponse,
    NegotiateResponse,
    Request,
    Service,
    decode_ident_response,
    decode_negotiate_response,
    decode_ok_response,
    decode_read_response,
    encode_ident_response,
    encode_read_response,
    encode_request,
    encode_response,
    parse_request,
)
from mepgate.errors import LocalProtocolError
from mepgate.proto.codes import ResponseCode

from .strategies import ident_responses, negotiate_responses, packets, requests


def drain(buffer: PacketBuffer) -> list[LineEvent]:
    events: list[LineEvent] = []
    while (event := buffer.next_event()) is not NEED_DATA:
        events.append(event)
    # Memory stays bounded: drained, at most one incomplete packet is held.
    assert buffer.held < buffer.max_packet_size
    return events


def feed_in_pieces(stream: bytes, cuts: list[int], buffer: PacketBuffer) -> list[LineEvent]:
    events: list[LineEvent] = []
    previous = 0
    for cut in [*sorted(cuts), len(stream)]:
        buffer.feed(stream[previous:cut])
        assert buffer.held <= buffer.bound
        previous = cut
        events += drain(buffer)
    return events


def carry(message: bytes, packet_size: int, toggle: bool = False) -> bytes:
    """The message through packets, bytes on the line, the buffer and reassembly."""
    pieces = split(message, packet_size, toggle)
    buffer = PacketBuffer(max_packet_size=min(packet_size, MAX_PACKET_SIZE))
    buffer.feed(b"".join(p.to_bytes() for p in pieces))
    reassembler = Reassembler(packets=MAX_PACKETS)
    seen = DuplicateFilter()
    whole = []
    for event in drain(buffer):
        assert isinstance(event, PacketReceived)
        assert not seen.is_duplicate(event.packet)
        result = reassembler.add(event.packet)
        if result is not None:
            whole.append(result)
    assert len(whole) == 1
    return whole[0]


# -- every service ----------------------------------------------------------------------------


@given(requests)
def test_every_request_round_trips(request: Request) -> None:
    assert parse_request(encode_request(request)) == request


@given(requests, st.sampled_from([MIN_PACKET_SIZE, 16, 64, 1024]), st.booleans())
def test_every_request_round_trips_through_packets(
    request: Request, packet_size: int, toggle: bool
) -> None:
    message = encode_request(request)
    assume(packets_needed(len(message), packet_size) <= MAX_PACKETS)
    assert parse_request(carry(message, packet_size, toggle)) == request


@given(ident_responses)
def test_ident_responses_round_trip(response: IdentResponse) -> None:
    assert decode_ident_response(carry(encode_ident_response(response), 64)) == response


@given(negotiate_responses)
def test_negotiate_responses_round_trip(response: NegotiateResponse) -> None:
    assert decode_negotiate_response(carry(response.to_bytes(), 64)) == response


@given(st.binary(max_size=3000), st.sampled_from([64, 256, 1024, 8192]))
def test_read_responses_round_trip(data: bytes, packet_size: int) -> None:
    assume(packets_needed(len(data) + 4, packet_size) <= MAX_PACKETS)
    assert decode_read_response(carry(encode_read_response(data), packet_size)) == data


@pytest.mark.parametrize(
    "service",
    [
        Service.LOGON,
        Service.SECURITY,
        Service.WRITE,
        Service.WAIT,
        Service.LOGOFF,
        Service.TERMINATE,
    ],
)
def test_ok_responses_round_trip(service: Service) -> None:
    decode_ok_response(carry(encode_response(ResponseCode.OK), 64), service)


@pytest.mark.parametrize("code", [c for c in ResponseCode if c is not ResponseCode.OK])
def test_every_refusal_decodes_to_its_code_in_plain_words(code: ResponseCode) -> None:
    message = carry(encode_response(code), 64)
    for decode in (
        decode_ident_response,
        decode_negotiate_response,
        decode_read_response,
        lambda m: decode_ok_response(m, Service.LOGON),
    ):
        with pytest.raises(ServiceError) as info:
            decode(message)
        assert info.value.code is code
        assert code.describe_c1218() in str(info.value)


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_any_request_bytes_parse_or_raise_the_message_error(message: bytes) -> None:
    try:
        request = parse_request(message)
    except MessageError:
        return
    # Parsing is stable; only a full read's MEP form and a logon name's padding normalise.
    assert parse_request(encode_request(request)) == request
    if message[0] not in (Service.READ, Service.LOGON):
        assert encode_request(request) == message


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_any_response_bytes_decode_or_raise_a_documented_error(message: bytes) -> None:
    for decode in (
        decode_ident_response,
        decode_negotiate_response,
        decode_read_response,
        lambda m: decode_ok_response(m, Service.WAIT),
    ):
        with contextlib.suppress(MessageError, ServiceError):
            decode(message)


# -- packets on the line ----------------------------------------------------------------------


@given(packets)
def test_packets_round_trip(packet: Packet) -> None:
    assert Packet.parse(packet.to_bytes()) == packet


line_items = st.lists(
    st.one_of(packets.map(Packet.to_bytes), st.just(bytes([ACK])), st.just(bytes([NAK]))),
    max_size=8,
)


def expected_events(items: list[bytes]) -> list[LineEvent]:
    out: list[LineEvent] = []
    for item in items:
        if item == bytes([ACK]):
            out.append(Acked())
        elif item == bytes([NAK]):
            out.append(Naked())
        else:
            out.append(PacketReceived(Packet.parse(item), item))
    return out


@given(line_items, st.data())
def test_any_chunking_gives_the_same_events(items: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(items)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))
    assert feed_in_pieces(stream, cuts, PacketBuffer()) == expected_events(items)


@settings(max_examples=50)
@given(line_items)
def test_byte_by_byte_gives_the_same_events(items: list[bytes]) -> None:
    stream = b"".join(items)
    assert feed_in_pieces(stream, list(range(len(stream))), PacketBuffer()) == (
        expected_events(items)
    )


noise = st.binary(max_size=30).map(lambda b: bytes(x for x in b if x not in (STP, ACK, NAK, 0)))


@given(st.lists(st.tuples(noise, packets.map(Packet.to_bytes)), max_size=6), st.data())
def test_noise_between_packets_is_skipped_and_counted(
    parts: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(junk + raw for junk, raw in parts)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    events = feed_in_pieces(stream, cuts, PacketBuffer(expect_ack=False))
    assert [e for e in events if isinstance(e, PacketReceived)] == [
        PacketReceived(Packet.parse(raw), raw) for _, raw in parts
    ]
    skipped = [e for e in events if isinstance(e, Skipped)]
    assert sum(e.count for e in skipped) == sum(len(junk) for junk, _ in parts)
    assert b"".join(e.data for e in skipped) == b"".join(junk for junk, _ in parts)


@given(st.lists(packets.map(Packet.to_bytes), min_size=2, max_size=5), st.data())
def test_after_a_damaged_packet_the_next_ones_are_found(
    raws: list[bytes], data: st.DataObject
) -> None:
    victim = data.draw(st.integers(0, len(raws) - 2))
    position = data.draw(st.integers(0, len(raws[victim]) - 1))
    flip = data.draw(st.integers(1, 0xFF))
    damaged = bytearray(raws[victim])
    damaged[position] ^= flip
    stream = b"".join(raws[:victim]) + bytes(damaged) + b"".join(raws[victim + 1 :])
    buffer = PacketBuffer(max_packet_size=MAX_PACKET_SIZE)
    buffer.feed(stream)
    events = drain(buffer) + buffer.expire()
    assert buffer.held == 0
    found = [e.raw for e in events if isinstance(e, PacketReceived)]
    assert found[:victim] == raws[:victim]
    # The damage is caught (CRC-16 catches every error within one byte) ...
    assert bytes(damaged) not in found
    # ... and every packet after it is found again.
    assert found[victim:][-(len(raws) - victim - 1) :] == raws[victim + 1 :]


@settings(max_examples=300)
@given(
    st.lists(st.binary(max_size=400), max_size=20),
    st.sampled_from([MIN_PACKET_SIZE, 64, 300, MAX_PACKET_SIZE]),
    st.booleans(),
)
def test_fuzz_any_bytes_give_only_line_events_with_bounded_memory(
    chunks: list[bytes], max_packet_size: int, expect_ack: bool
) -> None:
    buffer = PacketBuffer(max_packet_size=max_packet_size, expect_ack=expect_ack)
    for chunk in chunks:
        buffer.feed(chunk)
        assert buffer.held <= buffer.bound
        for event in drain(buffer):
            assert isinstance(event, PacketReceived | Acked | Naked | BadPacket | Skipped)
            if isinstance(event, PacketReceived):
                assert Packet.parse(event.raw) == event.packet
                assert len(event.raw) <= max_packet_size
            if isinstance(event, BadPacket):
                assert event.raw[0] == STP
                assert event.reason
            if isinstance(event, Skipped):
                assert event.count == len(event.data) > 0
    for event in buffer.expire():
        # An ACK only as a lone 0x00 where one was due, the line quiet after it.
        assert isinstance(event, PacketReceived | BadPacket | Skipped) or event == Acked(0)
    assert buffer.held == 0


def test_feeding_more_than_the_room_is_refused() -> None:
    buffer = PacketBuffer()
    buffer.feed(bytes([STP, 0, 0, 0, 0x1F, 0xF0]))  # waits for an 8176-byte packet
    assert buffer.next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError, match="next_event"):
        buffer.feed(bytes(buffer.room + 1))
    buffer.feed(bytes(buffer.room))
    assert buffer.held == buffer.bound


# -- split and reassembly at every negotiated size ---------------------------------------------


PATTERN = bytes(range(256)) * 64


def lengths_for(size: int) -> set[int]:
    per = data_per_packet(size)
    return {0, 1, per - 1, per, per + 1, 2 * per + 1, min(5000, per * MAX_PACKETS)}


def test_split_and_reassembly_at_every_packet_size() -> None:
    # Packet objects only (no CRC): the wire and the buffer are covered at sampled sizes below.
    for size in range(MIN_PACKET_SIZE, MAX_PACKET_SIZE + 1):
        for length in lengths_for(size):
            message = PATTERN[:length]
            pieces = split(message, size, True)
            assert all(len(p.data) + PACKET_OVERHEAD <= size for p in pieces)
            reassembler = Reassembler(packets=len(pieces))
            results = [reassembler.add(p) for p in pieces]
            assert results[-1] == message
            assert results[:-1] == [None] * (len(pieces) - 1)


@settings(max_examples=200)
@given(
    st.integers(MIN_PACKET_SIZE, MAX_PACKET_SIZE),
    st.integers(0, 5000),
    st.booleans(),
    st.integers(1, MAX_PACKETS),
)
def test_split_and_reassembly_bounded_by_the_negotiated_count(
    size: int, length: int, toggle: bool, negotiated: int
) -> None:
    message = bytes((i * 7) & 0xFF for i in range(length))
    needed = packets_needed(length, size)
    if needed > negotiated:
        with pytest.raises(LocalProtocolError, match=f"needs {needed} packets"):
            split(message, size, toggle, packets=negotiated)
        if needed <= MAX_PACKETS:
            first = split(message, size, toggle)[0]
            with pytest.raises(ReassemblyError, match="negotiated"):
                Reassembler(packets=negotiated).add(first)
        return
    pieces = split(message, size, toggle, packets=negotiated)
    assert len(pieces) == needed
    # Full packets but the last; toggles alternate; seq counts down to 0.
    assert all(len(p.to_bytes()) == size for p in pieces[:-1])
    assert [p.toggle for p in pieces] == [toggle ^ bool(i & 1) for i in range(needed)]
    if needed > 1:
        assert [p.seq for p in pieces] == list(range(needed - 1, -1, -1))
        assert [p.ctrl & 0xC0 for p in pieces] == [0xC0] + [0x80] * (needed - 1)
    assert carry_in_buffer(pieces, size, negotiated) == message


def carry_in_buffer(pieces: list[Packet], size: int, negotiated: int) -> bytes | None:
    buffer = PacketBuffer(max_packet_size=size)
    reassembler = Reassembler(packets=negotiated)
    result = None
    for piece in pieces:
        buffer.feed(piece.to_bytes())
        (event,) = drain(buffer)
        assert isinstance(event, PacketReceived)
        result = reassembler.add(event.packet)
    return result
