"""The receive buffer: any chunking, trailing bytes, garbage, stale partial frames."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepgate.proto import NEED_DATA, Alert, Frame, FrameBuffer, FramingError, LocalProtocolError
from mepgate.proto.buffer import MAX_BUFFERED
from mepgate.proto.constants import MAX_MESSAGE

bodies = st.binary(min_size=9, max_size=MAX_MESSAGE)
wires = st.lists(
    st.one_of(bodies.map(lambda b: len(b).to_bytes(2, "big") + b), st.just(b"\x00\x00")), max_size=6
)


def drain(buffer: FrameBuffer) -> tuple[list[Frame | Alert], int]:
    events: list[Frame | Alert] = []
    dropped = 0
    while True:
        try:
            event = buffer.next_event()
        except FramingError as error:
            dropped += error.discarded
            continue
        if event is NEED_DATA:
            return events, dropped
        assert isinstance(event, Frame | Alert)
        events.append(event)


def expected(parts: list[bytes]) -> list[Frame | Alert]:
    return [Alert() if p == b"\x00\x00" else Frame(p) for p in parts]


def feed_in_pieces(parts: bytes, cuts: list[int]) -> tuple[list[Frame | Alert], int, FrameBuffer]:
    buffer = FrameBuffer(minimum=9)
    events: list[Frame | Alert] = []
    dropped = 0
    previous = 0
    for cut in [*sorted(cuts), len(parts)]:
        buffer.receive_data(parts[previous:cut])
        previous = cut
        found, lost = drain(buffer)
        events += found
        dropped += lost
    return events, dropped, buffer


@given(wires)
def test_whole_stream_yields_every_frame_and_alert(parts: list[bytes]) -> None:
    events, dropped, buffer = feed_in_pieces(b"".join(parts), [])
    assert events == expected(parts)
    assert dropped == 0
    assert buffer.pending == 0


@given(wires)
def test_byte_by_byte_yields_the_same(parts: list[bytes]) -> None:
    stream = b"".join(parts)
    events, _, _ = feed_in_pieces(stream, list(range(len(stream))))
    assert events == expected(parts)


@given(wires, st.data())
def test_random_splits_yield_the_same(parts: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    events, _, _ = feed_in_pieces(stream, cuts)
    assert events == expected(parts)


@given(wires, st.binary(min_size=1, max_size=40))
def test_trailing_bytes_wait_and_do_not_disturb_earlier_frames(
    parts: list[bytes], tail: bytes
) -> None:
    events, _, _ = feed_in_pieces(b"".join(parts) + tail, [])
    assert events[: len(parts)] == expected(parts)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_fuzz_any_bytes_give_only_frames_alerts_or_framing_errors(chunks: list[bytes]) -> None:
    buffer = FrameBuffer(minimum=9)
    for chunk in chunks:
        buffer.receive_data(chunk)
        for event in drain(buffer)[0]:
            if isinstance(event, Frame):
                assert 9 <= len(event.body) <= MAX_MESSAGE
                assert int.from_bytes(event.wire[:2], "big") == len(event.body)
        # Memory stays bounded: at most one incomplete frame is held.
        assert buffer.pending < 2 + MAX_MESSAGE
    found, _ = buffer.expire()
    assert all(isinstance(e, Frame | Alert) for e in found)
    assert buffer.pending == 0


def test_garbage_before_a_frame_is_reported_then_the_frame_comes() -> None:
    good = b"\x00\x09" + bytes(range(9))
    buffer = FrameBuffer(minimum=9)
    buffer.receive_data(b"\xff\xfe\xfd" + good)
    with pytest.raises(FramingError, match="baud") as info:
        buffer.next_event()
    assert info.value.discarded == 3
    assert buffer.next_event() == Frame(good)


def test_a_bogus_plausible_length_is_resolved_by_expire() -> None:
    good = b"\x00\x09" + bytes(range(1, 10))
    buffer = FrameBuffer(minimum=9)
    buffer.receive_data(b"\x01\x10" + good)  # 0x0110 = 272: plausible, never completed
    assert buffer.next_event() is NEED_DATA
    found, dropped = buffer.expire()
    assert found == [Frame(good)]
    assert dropped == 2
    assert buffer.pending == 0


def test_reject_rescans_a_frame_that_swallowed_real_ones() -> None:
    good = b"\x00\x09" + bytes(range(1, 10))
    bogus_head = b"\x00\x0b"  # claims 11 bytes: swallows the good frame
    buffer = FrameBuffer(minimum=9)
    buffer.receive_data(bogus_head + good)
    swallowed = buffer.next_event()
    assert isinstance(swallowed, Frame)
    assert swallowed.wire == bogus_head + good[:11]
    buffer.reject(swallowed)  # e.g. its digest failed
    events, dropped = drain(buffer)
    assert dropped == 1
    buffer.receive_data(b"")
    found, _ = buffer.expire()
    assert Frame(good) in events + found


def test_zeros_inside_a_rejected_frame_are_data_not_alerts() -> None:
    damaged = b"\x00\x0f" + b"\x00\x00\x04\x00\x00\x00\x00" + bytes(8)  # zeros, as tables are
    buffer = FrameBuffer(minimum=9)
    buffer.receive_data(damaged + b"\x00\x00")  # then a real alert, after the frame
    frame = buffer.next_event()
    assert frame == Frame(damaged)
    buffer.reject(frame)  # its digest failed
    events, dropped = drain(buffer)
    assert events == [Alert()]  # only the one after the frame's bytes
    assert dropped == len(damaged) - 1


def test_zeros_behind_a_stale_header_are_data_not_alerts() -> None:
    buffer = FrameBuffer(minimum=9)
    buffer.receive_data(b"\x01\x10" + bytes(40))  # a stale 272-byte header, then zeros
    assert buffer.next_event() is NEED_DATA
    found, dropped = buffer.expire()
    assert found == []
    assert dropped == 42


def test_alerts_can_be_disabled_for_request_streams() -> None:
    buffer = FrameBuffer(minimum=13, alerts=False)
    buffer.receive_data(b"\x00\x00")
    with pytest.raises(FramingError):
        buffer.next_event()
    assert buffer.pending == 1


def test_refuses_to_hoard_unread_bytes() -> None:
    buffer = FrameBuffer(minimum=9)
    buffer.receive_data(bytes(MAX_BUFFERED))
    with pytest.raises(LocalProtocolError, match="next_event"):
        buffer.receive_data(b"\x00")
