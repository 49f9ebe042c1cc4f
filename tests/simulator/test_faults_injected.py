"""Fault injection: the spec grammar, seeded decisions, and each fault's effect on the line."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mepgate.proto import (
    NEED_DATA,
    AccessLevel,
    DigestMismatchError,
    FrameBuffer,
    ReadRequest,
    ResponseCode,
    prepare_request,
)
from mepgate.proto.errors import FramingError
from mepgate.proto.messages import encode_read_reply
from mepgate.simulator.faults import Faults, FaultSpec, FaultSpecError, Window
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.serve.probe import LineProbe, ProbeTimeoutError

Factory = Callable[..., RunningSimulator]
BT23 = 0x0017
READ_BT23 = ReadRequest(table_id=BT23).to_bytes()
QUIET = 0.25  # long enough to tell "no answer" from an answer when timing is off


# -- grammar -----------------------------------------------------------------------------------
def test_spec_grammar() -> None:
    spec = FaultSpec.parse(
        "drop=0.1, corrupt=0.01,hear=0.02,delay=0.3,stall=5@10,optical=30,reboot=0.02,"
        "reboot=@60,echo,wrongbaud,disabled=1,seed=7"
    )
    assert spec == FaultSpec(
        drop=0.1,
        corrupt=0.01,
        hear=0.02,
        delay=0.3,
        stalls=(Window(start=10, duration=5),),
        optical=(Window(start=0, duration=30),),
        reboot_probability=0.02,
        reboot_at=(60,),
        echo=True,
        wrong_baud=True,
        disabled=True,
        seed=7,
    )
    assert FaultSpec.parse(str(spec)) == spec
    assert FaultSpec.parse("") == FaultSpec()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("dorp=0.1", "unknown fault 'dorp'"),
        ("drop=1.5", "between 0 and 1"),
        ("drop=", "needs a value"),
        ("delay=-1", "cannot be negative"),
        ("echo=0.5", "takes no value"),
        ("seed=x", "not an integer"),
        ("stall=abc", "not a number"),
    ],
)
def test_spec_errors_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(FaultSpecError, match=complaint):
        FaultSpec.parse(text)


def test_decisions_are_reproducible_from_the_seed() -> None:
    def run() -> tuple[list[bool], bytes, int]:
        faults = Faults(FaultSpec.parse("drop=0.5,corrupt=0.3,seed=11"), epoch=0.0)
        return (
            [faults.drops_reply() for _ in range(20)],
            faults.corrupt(bytes(32)),
            faults.reboot_sequence(),
        )

    assert run() == run()
    drops, corrupted, _ = run()
    assert 0 < sum(drops) < 20
    assert 0 < sum(1 for b in corrupted if b) < 32


def test_windows_count_from_the_epoch() -> None:
    faults = Faults(FaultSpec.parse("stall=2@10,optical=1@20"), epoch=100.0)
    assert [faults.silent(100 + t) for t in (9.9, 10, 11.9, 12, 20.5, 21)] == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    faults.stall_for(1.0, now=200.0)
    assert faults.silent(200.5)
    assert not faults.silent(201.0)


@given(st.integers(0, 2**32), st.integers(1, 600))
def test_noise_never_forms_a_frame_or_an_alert(seed: int, size: int) -> None:
    faults = Faults(FaultSpec(seed=seed), epoch=0.0)
    buffer = FrameBuffer(minimum=1)
    buffer.receive_data(faults.noise(size))
    dropped = 0
    while True:
        try:
            event = buffer.next_event()
        except FramingError as error:
            dropped += error.discarded
            continue
        assert event is NEED_DATA
        break
    assert buffer.expire()[0] == []


# -- on the line -------------------------------------------------------------------------------
def _expected(sim: RunningSimulator) -> int:
    return sim.call(lambda: sim.meter.core.window.expected)


def _request(sim: RunningSimulator, seq: int | None = None) -> tuple[bytes, bytes]:
    """A BT23 read frame with the meter's next sequence number, and its clean reply."""
    key = sim.keys[AccessLevel.BASIC]
    exchange = prepare_request(READ_BT23, _expected(sim) if seq is None else seq, key)
    return exchange.frame, exchange.response_frame(encode_read_reply(bytes(range(60))), key)


def _reboots(sim: RunningSimulator) -> int:
    return sim.call(lambda: sim.reboots)


def _silent(probe: LineProbe, timeout: float = QUIET) -> bool:
    return not probe.read_raw(timeout)


def test_drop_loses_the_reply_after_the_meter_acted(simulator: RunningSimulator) -> None:
    simulator.configure_faults("drop=1")
    frame, _ = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        assert _silent(probe)
        simulator.configure_faults("")
        # The resend of the very same packet is a replay now: the meter had processed it.
        reply = probe.exchange(frame).wire
    assert reply[2] == ResponseCode.INVALID_SEQUENCE_NUMBER
    assert simulator.port.stats.dropped == 1


def test_drop_probability_is_seeded(simulator: RunningSimulator) -> None:
    simulator.configure_faults("drop=0.5,seed=3")
    with LineProbe.open(simulator.url or "") as probe:
        answered = 0
        for _ in range(12):
            frame, _ = _request(simulator)
            probe.send(frame)
            try:
                probe.next_frame(timeout=0.1)
                answered += 1
            except ProbeTimeoutError:
                pass
    assert 0 < answered < 12
    assert simulator.port.stats.dropped == 12 - answered


def test_corrupt_alters_reply_bytes(simulator: RunningSimulator) -> None:
    simulator.configure_faults("corrupt=1")
    frame, clean = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        wire = b"".join(chunk for _, chunk in probe.read_raw(QUIET))
    assert len(wire) == len(clean)
    assert all(a != b for a, b in zip(wire, clean, strict=True))

    simulator.configure_faults("corrupt=0.02,seed=5")  # a few bytes: the digest catches it
    key = simulator.keys[AccessLevel.BASIC]
    with LineProbe.open(simulator.url or "") as probe:
        exchange = prepare_request(READ_BT23, _expected(simulator), key)
        wire = probe.exchange(exchange.frame).wire
        assert wire[:2] == clean[:2]
        with pytest.raises(DigestMismatchError):
            exchange.decode(wire, key)


def test_hear_alters_request_bytes_not_replies(simulator: RunningSimulator) -> None:
    """``hear`` damages what the meter receives: a request hit everywhere never makes a
    frame the meter acts on, and what it does send is not altered (that is ``corrupt``)."""
    simulator.configure_faults("hear=1")
    frame, _ = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        assert _silent(probe)
    assert simulator.port.stats.corrupted_heard > 0
    assert simulator.port.stats.replies == 0
    assert simulator.port.stats.corrupted == 0


def test_delay_adds_latency(simulator: RunningSimulator) -> None:
    simulator.configure_faults("delay=0.3")
    frame, clean = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        sent = probe.send(frame)
        reply = probe.next_frame(timeout=1.0)
    assert reply.wire == clean
    # The delay runs from the request's arrival, which our send timestamp can trail by a few
    # ms.  No upper bound: a busy machine may add any latency (speed goals live in benchmarks/).
    assert reply.last - sent >= 0.3 - 0.01


@pytest.mark.parametrize("how", ["api", "spec"])
def test_stall_stops_answering_for_a_while(simulator: RunningSimulator, how: str) -> None:
    if how == "api":
        simulator.stall(0.4)
    else:
        simulator.configure_faults("stall=0.4@0")
    began = time.monotonic()
    frame, clean = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        assert _silent(probe)
        time.sleep(max(0.0, began + 0.45 - time.monotonic()))
        # Not processed during the stall: the same packet is answered once it is over.
        assert probe.exchange(frame).wire == clean


def test_reboot_restarts_the_sequence_counter(simulator: RunningSimulator) -> None:
    before = _expected(simulator)
    simulator.configure_faults("reboot=1,seed=9")
    frame, _ = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        assert _silent(probe)  # the request went down with the reboot
        simulator.configure_faults("")
        reply = probe.exchange(_request(simulator, seq=before)[0]).wire
    assert reply[2] == ResponseCode.INVALID_SEQUENCE_NUMBER
    assert int.from_bytes(reply[3:7], "big") == _expected(simulator) != before
    assert _reboots(simulator) == 1


def test_scheduled_reboot_fires_once(simulator: RunningSimulator) -> None:
    before = _expected(simulator)
    simulator.configure_faults("reboot=@0.1,seed=4")
    time.sleep(0.3)
    assert _reboots(simulator) == 1
    assert _expected(simulator) != before
    time.sleep(0.1)
    assert _reboots(simulator) == 1


def test_optical_session_silences_the_port_alerts_included(simulator: RunningSimulator) -> None:
    simulator.call(lambda: setattr(simulator.meter.model, "alert", True))
    simulator.configure_faults("optical=0.5")
    frame, clean = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        assert _silent(probe, 0.4)
        time.sleep(0.15)
        received = probe.next(timeout=1.0)  # the alert, now the port is back
        assert received.wire == b"\x00\x00"
        assert probe.exchange(frame).wire == clean


def test_echo_returns_the_clients_bytes_and_nothing_else(simulator: RunningSimulator) -> None:
    simulator.configure_faults("echo")
    frame, _ = _request(simulator)
    with LineProbe.open(simulator.device or "") as probe:
        probe.send(frame)
        assert b"".join(chunk for _, chunk in probe.read_raw(QUIET)) == frame
    assert simulator.call(lambda: simulator.meter.core.counters.requests) == 0


def test_wrong_baud_gives_noise_that_never_frames(simulator: RunningSimulator) -> None:
    simulator.call(lambda: setattr(simulator.meter.model, "alert", True))
    simulator.configure_faults("wrongbaud,seed=2")
    frame, _ = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        with pytest.raises(ProbeTimeoutError):
            probe.next(timeout=1.2)  # not a frame, not even an alert
        assert probe.garbage >= 4 + 2  # a garbled reply and a garbled alert
    assert simulator.call(lambda: simulator.meter.core.counters.requests) == 0


def test_disabled_port_never_answers(simulator: RunningSimulator) -> None:
    simulator.call(lambda: setattr(simulator.meter.model, "alert", True))
    simulator.configure_faults("disabled")
    frame, _ = _request(simulator)
    with LineProbe.open(simulator.url or "") as probe:
        probe.send(frame)
        assert _silent(probe, 0.4)
    assert simulator.call(lambda: simulator.meter.core.counters.requests) == 0
