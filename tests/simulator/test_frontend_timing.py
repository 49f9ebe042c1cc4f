"""Wire timing of the served meter (MEP guide, "MEP Protocol Timing"), measured on the line,
and the pure timing model it shares with ``benchmarks/sim_timing.py``."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from mepgate.proto import ALERT, AccessLevel, Alert, Frame, ReadRequest, prepare_request
from mepgate.proto.constants import (
    ALERT_HOLDOFF,
    ALERT_INTERVAL,
    INTRA_PACKET_TIMEOUT,
    MIN_REQUEST_INTERVAL,
    SEGMENT_PAUSE,
    SEGMENT_SIZE,
)
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.serve.probe import LineProbe, ProbeTimeoutError
from mepgate.simulator.timing import WireTiming, model_exchange

Factory = Callable[..., RunningSimulator]
BT23 = 0x0017
BT28 = 0x001C
READ_ONE_BYTE = ReadRequest(table_id=BT23, offset=0, count=1).to_bytes()


def _sequence(sim: RunningSimulator) -> int:
    return sim.call(lambda: sim.meter.core.window.expected)


# -- the model ---------------------------------------------------------------------------------
def test_segments_follow_the_117_byte_rule() -> None:
    timing = WireTiming()
    assert timing.segments(117) == (117,)
    assert timing.segments(118) == (117, 1)
    assert timing.segments(313) == (117, 117, 79)
    assert timing.pauses(117) == 0
    assert timing.pauses(313) == pytest.approx(2 * SEGMENT_PAUSE)
    assert WireTiming(enabled=False).segments(313) == (313,)


def test_model_of_a_bt28_exchange_at_9600_baud() -> None:
    timing = WireTiming(baud=9600, processing=0.010)
    model = model_exchange(19, 313, timing)
    assert model.request_wire == pytest.approx(19 * 10 / 9600)
    assert model.reply_wire == pytest.approx(313 * 10 / 9600)
    assert model.pauses == pytest.approx(0.050)
    assert model.throttle == 0
    assert model.total == pytest.approx((19 + 313) / 960 + 0.060)
    # A request right after the previous one waits out the 100 ms throttle.
    assert model_exchange(19, 20, timing, since_previous_service=0.030).throttle == pytest.approx(
        MIN_REQUEST_INTERVAL - 0.030
    )
    assert model_exchange(19, 313, WireTiming(enabled=False)).total == 0


# -- on the wire -------------------------------------------------------------------------------
def test_reply_is_paced_at_the_baud_rate(simulator_factory: Factory) -> None:
    timing = WireTiming(baud=9600, processing=0.010)
    sim = simulator_factory(timing=timing)
    key = sim.keys[AccessLevel.BASIC]
    exchange = prepare_request(ReadRequest(table_id=BT23).to_bytes(), _sequence(sim), key)
    with LineProbe.open(sim.url or "") as probe:
        sent = probe.send(exchange.frame)
        reply = probe.next_frame()
    assert exchange.decode(reply.wire, key).data == bytes(range(60))
    model = model_exchange(len(exchange.frame), len(reply.wire), timing)
    # The reply cannot start before the request's last byte would have arrived.
    first_byte_due = sent + model.request_wire + model.processing
    assert reply.first >= first_byte_due
    # Paced, not sent at once: the reply takes at least its wire time (lower bounds only -- how
    # close to the model it stays on a quiet machine is benchmarks/sim_timing.py's figure).
    assert reply.last - sent >= model.total * 0.95
    assert reply.last - reply.first >= model.reply_wire * 0.9


@pytest.mark.parametrize("where", ["tcp", "pty"])
def test_long_replies_pause_after_each_117_byte_segment(
    simulator_factory: Factory, where: str
) -> None:
    sim = simulator_factory(timing=WireTiming(baud=115200, processing=0.0))
    key = sim.keys[AccessLevel.BASIC]
    exchange = prepare_request(ReadRequest(table_id=BT28).to_bytes(), _sequence(sim), key)
    with LineProbe.open((sim.url if where == "tcp" else sim.device) or "") as probe:
        probe.send(exchange.frame)
        chunks = probe.read_raw(timeout=0.2)
    wire = b"".join(chunk for _, chunk in chunks)
    assert len(wire) == 313
    assert exchange.decode(wire, key).data == bytes(i % 251 for i in range(300))
    # Where in the reply the line went quiet for most of a pause.
    gaps = set()
    position = 0
    for (earlier, chunk), (later, _) in itertools.pairwise(chunks):
        position += len(chunk)
        if later - earlier >= 0.8 * SEGMENT_PAUSE:
            gaps.add(position)
    assert {SEGMENT_SIZE, 2 * SEGMENT_SIZE} <= gaps


def test_at_most_one_request_per_100_ms(simulator_factory: Factory) -> None:
    sim = simulator_factory(timing=WireTiming(baud=115200, processing=0.0))
    key = sim.keys[AccessLevel.BASIC]
    first = _sequence(sim)
    requests = [prepare_request(READ_ONE_BYTE, first + i, key) for i in range(3)]
    with LineProbe.open(sim.url or "") as probe:
        probe.send(b"".join(r.frame for r in requests))  # three requests back to back
        replies = [probe.next_frame() for _ in requests]
    for request, reply in zip(requests, replies, strict=True):
        assert request.decode(reply.wire, key).data == b"\x00"
    starts = [reply.first for reply in replies]
    assert all(b - a >= MIN_REQUEST_INTERVAL - 0.005 for a, b in itertools.pairwise(starts))


def _set_alert(sim: RunningSimulator, pending: bool) -> None:
    sim.call(lambda: setattr(sim.meter.model, "alert", pending))


def test_alerts_once_per_second_while_pending_and_held_off_after_a_frame(
    simulator_factory: Factory,
) -> None:
    sim = simulator_factory(timing=WireTiming(baud=115200))
    with LineProbe.open(sim.device or "") as probe:
        with pytest.raises(ProbeTimeoutError):
            probe.next(timeout=0.15)  # nothing pending: silence
        _set_alert(sim, True)
        alerts = [probe.next(timeout=1.5) for _ in range(3)]
        assert all(isinstance(a.event, Alert) and a.wire == ALERT for a in alerts)
        intervals = [b.first - a.first for a, b in itertools.pairwise(alerts)]
        assert intervals == [pytest.approx(ALERT_INTERVAL, abs=0.1)] * 2

        # A received frame holds the next alert off for a second, answered or not.
        time.sleep(0.1)
        sent = probe.send(b"\x00\x01\x58")  # a one-byte TLS frame: a frame, though refused
        received = probe.next(timeout=1.5)
        while isinstance(received.event, Frame):
            received = probe.next(timeout=1.5)
        assert received.first - sent >= ALERT_HOLDOFF - 0.01
        assert received.first - sent <= ALERT_HOLDOFF + 0.15

        _set_alert(sim, False)
        with pytest.raises(ProbeTimeoutError):
            probe.next(timeout=ALERT_INTERVAL + 0.1)


def test_a_stale_partial_frame_is_dropped_after_50_ms_of_quiet(simulator: RunningSimulator) -> None:
    key = simulator.keys[AccessLevel.BASIC]
    exchange = prepare_request(READ_ONE_BYTE, _sequence(simulator), key)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(b"\x00\x30\x3f")  # a header promising 48 bytes that never come
        time.sleep(INTRA_PACKET_TIMEOUT * 2)
        reply = probe.exchange(exchange.frame)
    assert exchange.decode(reply.wire, key).data == b"\x00"
    assert simulator.port.stats.expired_bytes == 3
