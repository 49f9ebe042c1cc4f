"""The MEP request machines, transition by transition, without a socket or a clock.

Replies are made by the protocol core's server role (:func:`~mepgate.proto.check_request`,
:class:`~mepgate.tls.TlsPskServer`), so a "meter" here is a few lines; times are plain
numbers fed with the events.  The end-to-end and fault tests (test_faults.py,
test_link_loss.py) run the same machines against the simulator over real ports.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mepgate.client.actions import Failed, Finished, Receive, Transmit
from mepgate.client.diagnosis import Diagnosis, diagnose
from mepgate.client.errors import (
    AnswerLostError,
    AuthenticationError,
    MeterLinkError,
    MeterRefusedError,
    OutOfTimeError,
    ReconfiguredError,
    SequenceConflictError,
    TlsRequiredError,
    TlsSessionError,
)
from mepgate.client.mep.machine import (
    ANSWER_MARGIN,
    LEARN_AFTER,
    TLS_ATTEMPTS,
    TLS_KEY_CONFIRMATIONS,
    Attempt,
    MepLink,
    Rc4Request,
    TlsRequest,
)
from mepgate.client.mep.session import IDT_PROBE
from mepgate.client.session import Reply
from mepgate.client.stats import Observation
from mepgate.client.timing import LinkTiming
from mepgate.errors import LocalProtocolError, MepgateError, RemoteProtocolError
from mepgate.proto import (
    ALERT,
    Accepted,
    AccessLevel,
    ClientSequence,
    ReadRequest,
    ResponseCode,
    SequenceWindow,
    WriteRequest,
    check_request,
)
from mepgate.proto.buffer import MAX_BUFFERED
from mepgate.proto.codes import TlsRequestCode, TlsResponseCode
from mepgate.proto.constants import ALERT_INTERVAL, max_frame_time, wire_time
from mepgate.proto.frames import encode_auth_failure, prepare_request
from mepgate.proto.messages import encode_read_reply, is_read
from mepgate.proto.tls_frames import NO_TLS_SESSION_REPLY, decode_tls_request, encode_tls_response
from mepgate.tls import TlsAuthenticationError, TlsError, TlsPskServer

KEY = b"A1B2C3D4E5F6A7B8"
TIMING = LinkTiming()  # the guide's: 500 ms timeout, 100 ms pacing, ...
BAUD = 9600
DATA = b"\x01\x02\x03\x04"
MESSAGE = ReadRequest(table_id=0x0017, offset=0, count=4).to_bytes()
WRITE = WriteRequest(table_id=0x0007, data=b"\x06\x00\x05").to_bytes()
IDT_VERSION = 7


def new_link(**changes: Any) -> MepLink:
    link = MepLink(
        key=KEY,
        timing=TIMING,
        baud=BAUD,
        encrypt=False,
        sequence=ClientSequence(101),  # the next number the meter below accepts
        idt_probe=IDT_PROBE,
        idt_version=IDT_VERSION,
    )
    link.connection_opened()
    return dataclasses.replace(link, **changes) if changes else link


class Meter:
    """The meter's side: authenticates, keeps the sequence window, answers reads."""

    def __init__(self, last_accepted: int = 100, idt_version: int = IDT_VERSION) -> None:
        self.window = SequenceWindow(last_accepted=last_accepted)
        self.idt_version = idt_version

    def answer(self, wire: bytes, message: bytes | None = None) -> bytes:
        verdict = check_request(wire, {AccessLevel.MBK: KEY}, self.window)
        if not isinstance(verdict, Accepted):
            return verdict.reply
        if message is None and not is_read(verdict.exchange.message):
            message = bytes([ResponseCode.OK])  # a write's reply: the code alone
        if message is None:
            is_probe = verdict.exchange.message == IDT_PROBE
            message = encode_read_reply(bytes([self.idt_version]) if is_probe else DATA)
        return verdict.reply(message)


Machine = Attempt[object] | Rc4Request | TlsRequest


def transmit(machine: Machine, at: float) -> bytes:
    """Let the machine drain (nothing arrived), then take the frame it sends at ``at``."""
    action = machine.next_action()
    if action == Receive(until=None):
        machine.timed_out(at)
        action = machine.next_action()
    assert isinstance(action, Transmit), action
    assert action.not_before <= at
    machine.sent(at)
    return action.data


def deadline(frame_: bytes, sent_at: float) -> float:
    return sent_at + wire_time(len(frame_), BAUD) + TIMING.response_timeout


def silence(machine: Machine, frame_: bytes, sent_at: float) -> float:
    """No reply: the machine's wait runs out.  Returns the time it did."""
    action = machine.next_action()
    assert action == Receive(until=deadline(frame_, sent_at))
    at = deadline(frame_, sent_at)
    machine.timed_out(at)
    return at


def unanswered(machine: Machine, sends: int) -> list[bytes]:
    """``sends`` frames the machine sends into silence, from time 0."""
    at, frames = 0.0, []
    for _ in range(sends):
        frames.append(transmit(machine, at))
        at = silence(machine, frames[-1], at)
    return frames


def finished(machine: Machine) -> Any:
    action = machine.next_action()
    assert isinstance(action, Finished), action
    return action.result


def failed(machine: Machine) -> MepgateError:
    action = machine.next_action()
    assert isinstance(action, Failed), action
    return action.error


# -- Attempt: one frame, sent once ------------------------------------------------------------
def attempt(link: MepLink, seen: Observation | None = None) -> tuple[Attempt[object], bytes]:
    exchange = prepare_request(MESSAGE, link.sequence.take(), KEY)

    def decode(wire: bytes) -> object:
        return exchange.decode(wire, KEY)

    return Attempt(link, exchange.frame, decode, seen or Observation()), exchange.frame


def test_attempt_drains_what_arrived_between_requests_before_it_sends() -> None:
    link, seen = new_link(), Observation()
    machine, _ = attempt(link, seen)
    assert machine.next_action() == Receive(until=None)
    stale = Meter().answer(prepare_request(MESSAGE, 101, KEY).frame)  # a late reply
    machine.received(ALERT + b"\xff" + stale, at=0.0)
    assert seen.alerts == 1
    assert link.alert_pending
    assert seen.garbage_bytes == 1  # 0xFF cannot start a frame; the late reply is dropped
    assert machine.next_action() == Receive(until=None)  # more may follow
    machine.timed_out(at=0.001)
    assert isinstance(machine.next_action(), Transmit)


def test_attempt_paces_requests_100_ms_apart() -> None:
    link = new_link(last_send=5.0)
    machine, frame_ = attempt(link)
    machine.timed_out(at=5.01)
    assert machine.next_action() == Transmit(frame_, not_before=5.0 + TIMING.min_request_interval)
    machine.sent(at=5.1)
    assert link.last_send == 5.1


def test_attempt_waits_from_the_requests_last_byte_and_takes_a_split_reply() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    assert transmit(machine, at=1.0) == frame_
    assert seen.frames_sent == 1
    assert seen.bytes_sent == len(frame_)
    assert machine.next_action() == Receive(until=deadline(frame_, 1.0))
    reply = Meter().answer(frame_)
    machine.received(reply[:5], at=1.6)  # a partial frame extends the wait by the frame gap
    assert machine.next_action() == Receive(until=1.6 + TIMING.frame_gap_timeout)
    machine.received(reply[5:], at=1.62)
    result = finished(machine)
    assert result.code == ResponseCode.OK
    assert result.data == DATA
    assert seen.bytes_received == len(reply)


def test_attempt_ignores_its_echo_and_rescans_after_a_damaged_frame() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    transmit(machine, at=0.0)
    reply = Meter().answer(frame_)
    damaged = reply[:-1] + bytes([reply[-1] ^ 0x01])
    machine.received(frame_ + damaged, at=0.1)
    assert seen.echoed_frames == 1
    assert seen.damaged_replies == 1
    assert isinstance(machine.next_action(), Receive)
    machine.received(reply, at=0.2)
    # The damaged frame's rest may hold a length that covers the reply: when the line goes
    # quiet, the rescan finds it.
    action = machine.next_action()
    if isinstance(action, Receive):
        assert action.until is not None
        machine.timed_out(at=action.until)
    assert finished(machine).data == DATA


def test_attempt_finds_a_reply_swallowed_by_a_bogus_length() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    transmit(machine, at=0.0)
    reply = Meter().answer(frame_)
    # Noise whose "length" (13) covers the start of the real reply: that frame fails its digest,
    # and the rescan from its second byte finds the reply.
    machine.received(b"\x00\x0d" + b"\x55" * 3 + reply, at=0.1)
    assert finished(machine).data == DATA
    assert seen.damaged_replies == 1


def test_attempt_times_out_and_drops_a_stale_partial_frame() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    transmit(machine, at=0.0)
    machine.timed_out(at=0.2)  # early: still waiting
    assert machine.next_action() == Receive(until=deadline(frame_, 0.0))
    machine.received(b"\x01\x00\x33", at=0.3)  # the start of a frame that never completes
    limit = max(deadline(frame_, 0.0), 0.3 + TIMING.frame_gap_timeout)
    assert machine.next_action() == Receive(until=limit)
    machine.timed_out(at=limit)
    assert finished(machine) is None
    assert seen.timeouts == 1
    assert seen.garbage_bytes == 3
    assert link.buffer.pending == 0


def test_attempt_finds_a_whole_frame_behind_a_stale_header_when_the_line_goes_quiet() -> None:
    link = new_link()
    machine, frame_ = attempt(link)
    transmit(machine, at=0.0)
    reply = Meter().answer(frame_)
    machine.received(b"\x01\x10" + reply, at=0.1)  # a bogus 272-byte length waits for more
    assert isinstance(machine.next_action(), Receive)
    machine.timed_out(at=deadline(frame_, 0.0))
    assert finished(machine).data == DATA


def test_bytes_after_the_deadline_that_complete_nothing_end_the_wait() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    transmit(machine, at=0.0)
    machine.received(ALERT, at=deadline(frame_, 0.0) + 0.01)  # an alert, and no reply
    assert finished(machine) is None
    assert seen.alerts == 1
    assert seen.timeouts == 1


def test_a_quiet_line_rescans_past_a_stale_header_and_a_damaged_frame() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    transmit(machine, at=0.0)
    reply = Meter().answer(frame_)
    damaged = b"\x00\x09" + b"\xee" * 9  # a frame's shape, not a reply to this request
    machine.received(b"\x01\x10" + damaged + reply, at=0.1)  # a header that never completes
    assert isinstance(machine.next_action(), Receive)
    machine.timed_out(at=deadline(frame_, 0.0))
    assert finished(machine).data == DATA
    assert seen.damaged_replies == 1


def test_a_noise_stream_cannot_hold_an_exchange_open() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    transmit(machine, at=0.0)
    hard = deadline(frame_, 0.0) + max_frame_time(BAUD) + TIMING.frame_gap_timeout
    at = 0.05
    machine.received(b"\x01\xd0", at=at)  # a plausible length: a frame seems to start
    while isinstance(action := machine.next_action(), Receive):
        assert action.until is not None
        assert action.until <= hard  # however often bytes come, the wait has its bound
        at = min(at + 0.1, action.until)
        if at >= action.until:
            machine.timed_out(at)
        else:
            machine.received(b"\x5a", at=at)  # a byte every 100 ms, never a frame
    assert finished(machine) is None
    assert at <= hard
    assert seen.timeouts == 1


def test_noise_between_requests_holds_the_next_request_back_a_response_timeout_at_most() -> None:
    link = new_link()
    machine, frame_ = attempt(link)
    at = 0.0
    while machine.next_action() == Receive(until=None):
        machine.received(b"\xff", at=at)  # garbage, without a pause long enough to end it
        at += 0.01
    assert machine.next_action() == Transmit(frame_, not_before=0.0)
    assert at <= TIMING.response_timeout + 0.02


def test_an_alert_flood_is_taken_in_without_overflowing_the_buffer() -> None:
    link, seen = new_link(), Observation()
    machine, frame_ = attempt(link, seen)
    transmit(machine, at=0.0)
    reply = Meter().answer(frame_)
    machine.received(ALERT * 20_000 + reply + ALERT * 20_000, at=0.1)
    assert finished(machine).data == DATA
    assert seen.alerts == 20_000
    assert link.buffer.pending <= MAX_BUFFERED  # what came after waits, bounded


def test_attempt_refuses_events_out_of_turn() -> None:
    machine, frame_ = attempt(new_link())
    with pytest.raises(LocalProtocolError, match="sent"):
        machine.sent(at=0.0)  # still draining
    transmit(machine, at=0.0)
    with pytest.raises(LocalProtocolError, match="sent"):
        machine.sent(at=0.1)
    machine.received(Meter().answer(frame_), at=0.2)
    assert finished(machine) is not None
    with pytest.raises(LocalProtocolError, match="received"):
        machine.received(b"\x00", at=0.3)
    with pytest.raises(LocalProtocolError, match="timed_out"):
        machine.timed_out(at=0.3)


# -- Rc4Request: one request's life -----------------------------------------------------------
def test_a_request_finishes_with_its_verified_reply() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    wire = transmit(machine, at=0.0)
    machine.received(meter.answer(wire), at=0.1)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert machine.seen.replies == 1
    assert link.key_worked


def test_silence_resends_a_write_as_the_same_frame_then_gives_up_with_no_answer() -> None:
    machine = Rc4Request(new_link(), WRITE, "writing BT07")
    frames = unanswered(machine, TIMING.max_silent_sends)
    assert len(set(frames)) == 1  # MEP guide, "Response timeout": the same packet again
    error = failed(machine)
    assert isinstance(error, MeterLinkError)
    assert error.diagnosis is Diagnosis.NO_ANSWER
    assert machine.seen.resends == TIMING.max_silent_sends - 1
    assert machine.seen.timeouts == TIMING.max_silent_sends


def test_silence_resends_a_read_under_the_next_numbers_then_gives_up_with_no_answer() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    frames = unanswered(machine, TIMING.max_silent_sends)
    # MEP guide, "RC4 Authentication": retries count up too; the meter takes up to 8 ahead.
    assert [int.from_bytes(f[-12:-8], "big") for f in frames] == list(range(101, 107))
    assert meter.window.accepts(int.from_bytes(frames[-1][-12:-8], "big"))
    error = failed(machine)
    assert isinstance(error, MeterLinkError)
    assert error.diagnosis is Diagnosis.NO_ANSWER
    assert machine.seen.resends == TIMING.max_silent_sends - 1
    assert machine.seen.timeouts == TIMING.max_silent_sends


def test_a_read_is_not_asked_again_after_its_time_is_up() -> None:
    # MeterClient.time_limit: a read beside the live poll stops resending at ``give_up_at``.
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23", give_up_at=0.9)
    first = transmit(machine, at=0.0)
    at = silence(machine, first, 0.0)  # 0.5+ s: still in time, asked again
    second = transmit(machine, at)
    assert second != first
    at = silence(machine, second, at)  # past 0.9: not asked a third time
    error = failed(machine)
    assert isinstance(error, OutOfTimeError)
    assert error.diagnosis is Diagnosis.NOISY
    assert "reading BT23" in str(error)
    assert "time" in str(error)
    assert machine.seen.timeouts == 2
    # A reply that arrives in time is taken, however close to the limit.
    machine = Rc4Request(link, MESSAGE, "reading BT23", give_up_at=0.05)
    wire = transmit(machine, at=10.0)
    machine.received(meter.answer(wire), at=10.3)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)


def test_a_damaged_reply_after_the_time_is_up_ends_a_read() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23", give_up_at=0.05)
    wire = transmit(machine, at=0.0)
    reply = bytearray(meter.answer(wire))
    reply[-1] ^= 0xFF  # the digest fails
    machine.received(bytes(reply), at=0.2)
    assert isinstance(failed(machine), OutOfTimeError)


def test_a_write_is_carried_to_its_end_whatever_the_time() -> None:
    # Stopping a write's identical resends would leave unknown whether the meter carried it
    # out: the limit does not apply once it was started.
    machine = Rc4Request(new_link(), WRITE, "writing BT07", give_up_at=0.1)
    frames = unanswered(machine, TIMING.max_silent_sends)
    assert len(frames) == TIMING.max_silent_sends
    error = failed(machine)
    assert not isinstance(error, OutOfTimeError)
    assert error.diagnosis is Diagnosis.NO_ANSWER  # type: ignore[attr-defined]


def test_a_reply_after_a_resend_is_used() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, WRITE, "writing BT07")
    first = transmit(machine, at=0.0)
    at = silence(machine, first, 0.0)
    again = transmit(machine, at + 0.1)
    assert again == first
    machine.received(meter.answer(again), at=at + 0.2)
    assert finished(machine).code == ResponseCode.OK


def test_a_read_whose_reply_was_lost_is_answered_under_the_next_number_without_a_0x0c() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    first = transmit(machine, at=0.0)
    meter.answer(first)  # the meter acts on it; the reply is lost
    at = silence(machine, first, 0.0)
    again = transmit(machine, at)
    assert again != first
    reply = meter.answer(again)
    assert reply[2] == ResponseCode.OK  # the meter accepts the next number: no 0x0C
    machine.received(reply, at=at + 0.1)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert machine.seen.sequence_resyncs == 0
    assert machine.nested == []


def test_a_read_renumbered_after_a_silence_and_refused_is_a_reboot_not_another_client() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    first = transmit(machine, at=0.0)
    at = silence(machine, first, 0.0)  # the request was lost: the meter rebooted ...
    meter.window = SequenceWindow(last_accepted=777_000)  # ... and restarted its counter
    answer_0x0c(link, meter, machine, at)  # the renumbered try, refused at its first send
    assert machine.seen.sequence_resyncs == 1
    assert machine.seen.sequence_conflicts == 0
    probe = transmit(machine, at + 0.2)  # not our number + 1: the ET04 check
    machine.received(meter.answer(probe), at=at + 0.3)
    again = transmit(machine, at + 0.4)
    machine.received(meter.answer(again), at=at + 0.5)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)


def test_one_0x0b_is_confirmed_with_the_same_frame_and_two_mean_a_wrong_key() -> None:
    machine = Rc4Request(new_link(), MESSAGE, "reading BT23")
    first = transmit(machine, at=0.0)
    machine.received(encode_auth_failure(), at=0.1)
    second = transmit(machine, at=0.2)
    assert second == first  # one 0x0B may be line noise: ask again, unchanged
    machine.received(encode_auth_failure(), at=0.3)
    error = failed(machine)
    assert isinstance(error, AuthenticationError)
    assert error.diagnosis is Diagnosis.WRONG_KEY
    assert machine.seen.auth_failures == 2


def test_once_the_key_worked_a_few_0x0b_are_taken_for_noise() -> None:
    link, meter = new_link(key_worked=True), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    at = 0.0
    for _ in range(TIMING.max_auth_failures_after_success - 1):
        transmit(machine, at)
        machine.received(encode_auth_failure(), at=at + 0.1)
        at += 0.2
    wire = transmit(machine, at)
    machine.received(meter.answer(wire), at=at + 0.1)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)


def test_0x0a_from_a_tls_only_meter_asks_for_tls() -> None:
    machine = Rc4Request(new_link(), MESSAGE, "reading BT23")
    transmit(machine, at=0.0)
    machine.received(NO_TLS_SESSION_REPLY, at=0.1)
    error = failed(machine)
    assert isinstance(error, TlsRequiredError)
    assert "--security" in str(error)


def answer_0x0c(link: MepLink, meter: Meter, machine: Rc4Request, at: float) -> bytes:
    """Send, and have the meter refuse the number (its window is elsewhere)."""
    wire = transmit(machine, at)
    reply = meter.answer(wire)
    machine.received(reply, at=at + 0.1)
    return wire


def test_0x0c_adopts_the_number_checks_the_configuration_and_resends() -> None:
    link, meter = new_link(), Meter(last_accepted=5000)
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    answer_0x0c(link, meter, machine, at=0.0)
    assert machine.seen.sequence_resyncs == 1
    probe = transmit(machine, at=0.2)  # the ET04 check, with the adopted number
    machine.received(meter.answer(probe), at=0.3)
    again = transmit(machine, at=0.4)
    machine.received(meter.answer(again), at=0.5)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert [seen.replies for seen in machine.observations()] == [1, 1]  # request, ET04 check
    assert link.idt_version == IDT_VERSION


def test_0x0c_with_a_new_idt_version_voids_the_request() -> None:
    link, meter = new_link(), Meter(last_accepted=5000, idt_version=IDT_VERSION + 1)
    machine = Rc4Request(link, MESSAGE, "reading BT28")
    answer_0x0c(link, meter, machine, at=0.0)
    probe = transmit(machine, at=0.2)
    machine.received(meter.answer(probe), at=0.3)
    assert isinstance(failed(machine), ReconfiguredError)
    assert link.idt_version == IDT_VERSION + 1
    assert machine.seen.idt_changes == 1


def test_a_refused_configuration_check_fails_the_request() -> None:
    link, meter = new_link(), Meter(last_accepted=5000)
    machine = Rc4Request(link, MESSAGE, "reading BT28")
    answer_0x0c(link, meter, machine, at=0.0)
    probe = transmit(machine, at=0.2)
    refused = bytes([ResponseCode.NO_PERMISSION])
    machine.received(meter.answer(probe, message=refused), at=0.3)
    error = failed(machine)
    assert isinstance(error, MeterRefusedError)
    assert "ET04" in str(error)


def test_a_configuration_check_answered_with_the_wrong_size_fails_the_request() -> None:
    link, meter = new_link(), Meter(last_accepted=5000)
    machine = Rc4Request(link, MESSAGE, "reading BT28")
    answer_0x0c(link, meter, machine, at=0.0)
    probe = transmit(machine, at=0.2)
    machine.received(meter.answer(probe, message=encode_read_reply(b"")), at=0.3)
    error = failed(machine)
    assert isinstance(error, RemoteProtocolError)
    assert "0 bytes for 1" in str(error)


def test_an_unanswered_configuration_check_fails_the_request_with_its_diagnosis() -> None:
    link, meter = new_link(), Meter(last_accepted=5000)
    machine = Rc4Request(link, MESSAGE, "reading BT28")
    answer_0x0c(link, meter, machine, at=0.0)
    at = 0.2
    for _ in range(TIMING.max_silent_sends):
        probe = transmit(machine, at)
        at = silence(machine, probe, at)
    error = failed(machine)
    assert isinstance(error, MeterLinkError)
    assert error.diagnosis is Diagnosis.NO_ANSWER
    assert sum(seen.timeouts for seen in machine.observations()) == TIMING.max_silent_sends


def test_a_damaged_reply_to_a_read_is_asked_again_at_once_under_the_next_number() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    first = transmit(machine, at=0.0)
    reply = meter.answer(first)
    machine.received(reply[:-1] + bytes([reply[-1] ^ 0x01]), at=0.1)  # damaged on the way
    again = transmit(machine, at=0.2)  # no response timeout waited out, no 0x0C, no ET04
    assert again != first
    machine.received(meter.answer(again), at=0.3)  # the meter accepts the next number
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert machine.seen.damaged_replies == 1
    assert machine.seen.timeouts == 0
    assert machine.seen.sequence_resyncs == 0


def test_a_write_carried_out_whose_answer_was_lost_is_never_sent_again() -> None:
    link, meter = new_link(), Meter()
    machine = Rc4Request(link, WRITE, "writing BT07")
    first = transmit(machine, at=0.0)
    meter.answer(first)  # the meter carries it out; the reply is lost
    at = silence(machine, first, 0.0)
    resent = transmit(machine, at)
    assert resent == first  # MEP guide, "Response timeout": the same packet
    machine.received(meter.answer(resent), at=at + 0.1)  # 0x0C: "the number after yours"
    # Carried out once: not again under the next number (no third frame), no ET04 check.
    error = failed(machine)
    assert isinstance(error, AnswerLostError)
    assert error.diagnosis is Diagnosis.NOISY
    assert "carried it out" in str(error)
    assert machine.nested == []
    assert machine.seen.sequence_conflicts == 0
    assert meter.window.accepts(link.sequence.last + 1)  # in step for the next request


def test_housekeeping_requests_adopt_0x0c_without_a_configuration_check() -> None:
    link, meter = new_link(), Meter(last_accepted=5000)
    machine = Rc4Request(link, MESSAGE, "reading BT21", check_configuration=False)
    answer_0x0c(link, meter, machine, at=0.0)
    again = transmit(machine, at=0.2)
    assert meter.window.accepts(prepare_request(MESSAGE, 5001, KEY).seq)
    machine.received(meter.answer(again), at=0.3)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert machine.observations() == [machine.seen]


def test_numbers_refused_at_their_first_send_mean_another_client() -> None:
    link = new_link()
    machine = Rc4Request(link, MESSAGE, "reading BT01", check_configuration=False)
    at = 0.0
    for conflict in range(TIMING.max_sequence_errors + 1):
        meter = Meter(last_accepted=10_000 * (conflict + 2))  # someone else moves the counter
        answer_0x0c(link, meter, machine, at)
        at += 0.2
    error = failed(machine)
    assert isinstance(error, SequenceConflictError)
    assert error.diagnosis is Diagnosis.SEQUENCE_CONFLICT


def test_lost_replies_and_the_0x0c_they_cause_are_a_noisy_line_not_another_client() -> None:
    timing = dataclasses.replace(TIMING, max_sends=6)
    link, meter = new_link(timing=timing), Meter()
    machine = Rc4Request(link, WRITE, "writing BT07", check_configuration=False)
    at = 0.0
    while not isinstance(machine.next_action(), Failed):
        wire = transmit(machine, at)
        reply = meter.answer(wire)  # the meter processes every request ...
        if reply[2] == ResponseCode.INVALID_SEQUENCE_NUMBER:
            machine.received(reply, at=at + 0.1)  # ... its 0x0C replies arrive ...
            at += 0.2
        else:
            at = silence(machine, wire, at)  # ... its answers are lost
    error = failed(machine)
    assert machine.seen.sequence_resyncs > 0
    assert machine.seen.sequence_conflicts == 0
    assert isinstance(error, MeterLinkError)
    assert error.diagnosis is Diagnosis.NOISY


@pytest.mark.parametrize(
    ("seen", "diagnosis"),
    [
        (Observation(frames_sent=6, timeouts=6), Diagnosis.NO_ANSWER),
        (
            Observation(frames_sent=6, timeouts=6, bytes_received=12, echoed_frames=6),
            Diagnosis.ECHO,
        ),
        (
            Observation(frames_sent=6, timeouts=6, bytes_received=90, garbage_bytes=90),
            Diagnosis.GARBLED,
        ),
        (Observation(frames_sent=2, auth_failures=2), Diagnosis.WRONG_KEY),
        (Observation(frames_sent=4, damaged_replies=4, repeated_damage=3), Diagnosis.WRONG_KEY),
        (Observation(frames_sent=6, damaged_replies=5, timeouts=6), Diagnosis.NOISY),
        (Observation(frames_sent=9, sequence_resyncs=4, timeouts=5), Diagnosis.NOISY),
        (
            Observation(frames_sent=4, sequence_resyncs=4, sequence_conflicts=4),
            Diagnosis.SEQUENCE_CONFLICT,
        ),
        (
            Observation(frames_sent=6, sequence_resyncs=4, sequence_conflicts=4, timeouts=2),
            Diagnosis.NOISY,
        ),
        (Observation(frames_sent=1, replies=1), Diagnosis.OK),
        # A reply after the learnt timeout is late, not lost: not a noisy line.
        (Observation(frames_sent=2, replies=1, timeouts=1, late_replies=1), Diagnosis.OK),
        (Observation(frames_sent=3, replies=1, timeouts=2, late_replies=1), Diagnosis.NOISY),
    ],
)
def test_each_diagnosis_needs_its_evidence(seen: Observation, diagnosis: Diagnosis) -> None:
    assert diagnose(seen) is diagnosis


def test_all_sends_of_one_request_are_bounded() -> None:
    timing = dataclasses.replace(TIMING, max_sends=3)
    link = new_link(timing=timing)
    machine = Rc4Request(link, MESSAGE, "reading BT01")
    at = 0.0
    for _ in range(2):
        transmit(machine, at)
        machine.received(encode_auth_failure(), at=at + 0.1)  # tolerated: the key worked
        link.key_worked = True
        at += 0.2
    wire = transmit(machine, at)
    at = silence(machine, wire, at)
    error = failed(machine)
    assert isinstance(error, MeterLinkError)


# -- TlsRequest -------------------------------------------------------------------------------
class TlsMeter:
    """A TLS-only meter: handshakes and 0x80 requests through the TLS engine's server role.
    ``break_after``: table requests answered before the session breaks (0x80 -> TLS error)."""

    def __init__(
        self,
        key: bytes = KEY,
        *,
        break_after: int | None = None,
        handshake_code: TlsResponseCode = TlsResponseCode.OK,
        reply: bytes = encode_read_reply(DATA),
        damage_handshakes: int = 0,
    ) -> None:
        self.key = key
        self.damage_handshakes = damage_handshakes  # flip a bit in this many handshake replies
        self.handshake_code = handshake_code
        self.reply = reply
        self.server: TlsPskServer | None = None
        self.break_after = break_after
        self.codes: list[TlsRequestCode] = []
        self.requests = 0

    def answer(self, wire: bytes) -> bytes:
        code, payload = decode_tls_request(wire)
        self.codes.append(code)
        if code is TlsRequestCode.HANDSHAKE:
            self.server = TlsPskServer({int(AccessLevel.MBK): self.key})
        assert self.server is not None
        if code in (TlsRequestCode.HANDSHAKE, TlsRequestCode.HANDSHAKE_CONT):
            self.server.receive(payload)
            try:
                progress = self.server.do_handshake()
            except TlsError as error:
                refused = isinstance(error, TlsAuthenticationError)
                reply = (
                    TlsResponseCode.INVALID_IDENTITY_OR_KEY
                    if refused
                    else TlsResponseCode.TLS_ERROR
                )
                return encode_tls_response(reply, error.outgoing)
            outgoing = progress.outgoing
            if self.damage_handshakes and outgoing:
                self.damage_handshakes -= 1
                outgoing = outgoing[:-1] + bytes([outgoing[-1] ^ 0x01])  # line noise
            return encode_tls_response(self.handshake_code, outgoing)
        self.requests += 1
        if self.break_after is not None and self.requests > self.break_after:
            return encode_tls_response(TlsResponseCode.TLS_ERROR)
        self.server.decrypt(payload)
        return encode_tls_response(TlsResponseCode.OK, self.server.encrypt(self.reply))


def tls_link() -> MepLink:
    link = new_link()
    link.use_tls()
    return link


def converse(machine: TlsRequest, meter: TlsMeter, *, at: float = 0.0, limit: int = 50) -> None:
    """Exchange frames with ``meter`` until the machine finishes or fails."""
    for _ in range(limit):
        if isinstance(machine.next_action(), Finished | Failed):
            return
        wire = transmit(machine, at)
        machine.received(meter.answer(wire), at=at + 0.05)
        at += 0.2
    raise AssertionError("the conversation did not end")


def test_tls_sets_up_a_session_then_carries_the_request() -> None:
    link, meter = tls_link(), TlsMeter()
    machine = TlsRequest(link, MESSAGE, "reading BT23")
    converse(machine, meter)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert meter.codes[0] is TlsRequestCode.HANDSHAKE
    assert meter.codes[-1] is TlsRequestCode.TABLE
    assert link.tls_session is not None
    assert link.tls_session.handshake_complete
    assert sum(seen.tls_handshakes for seen in machine.observations()) == 1
    # The next request reuses the session: no handshake.
    meter.codes.clear()
    second = TlsRequest(link, MESSAGE, "reading BT23")
    converse(second, meter, at=10.0)
    assert finished(second) == Reply(code=ResponseCode.OK, data=DATA)
    assert meter.codes == [TlsRequestCode.TABLE]


def test_tls_with_a_key_the_meter_does_not_share_fails_as_tls_failed() -> None:
    machine = TlsRequest(tls_link(), MESSAGE, "reading BT23")
    meter = TlsMeter(key=b"Z" * 16)
    converse(machine, meter)
    error = failed(machine)
    assert isinstance(error, TlsSessionError)
    assert error.diagnosis is Diagnosis.TLS_FAILED
    # Confirmed on repeated handshakes: a damaged one fails authentication too.
    assert meter.codes.count(TlsRequestCode.HANDSHAKE) == TLS_KEY_CONFIRMATIONS


def test_a_damaged_handshake_is_tried_again_not_taken_for_a_wrong_key() -> None:
    link = tls_link()
    machine = TlsRequest(link, MESSAGE, "reading BT23")
    meter = TlsMeter(damage_handshakes=1)
    converse(machine, meter)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert meter.codes.count(TlsRequestCode.HANDSHAKE) == 2


def test_a_broken_tls_session_is_set_up_again_a_bounded_number_of_times() -> None:
    link, meter = tls_link(), TlsMeter(break_after=0)  # every table request fails
    machine = TlsRequest(link, MESSAGE, "reading BT23")
    converse(machine, meter)
    error = failed(machine)
    assert isinstance(error, MeterLinkError)
    assert error.diagnosis is Diagnosis.NOISY  # not the key: the session kept breaking
    assert "kept breaking" in str(error)
    assert sum(seen.tls_handshakes for seen in machine.observations()) == TLS_ATTEMPTS
    assert link.tls_session is None


def test_a_handshake_the_meter_fails_is_tried_again_a_bounded_number_of_times() -> None:
    meter = TlsMeter(handshake_code=TlsResponseCode.TLS_ERROR)
    machine = TlsRequest(tls_link(), MESSAGE, "reading BT23")
    converse(machine, meter)
    error = failed(machine)
    assert isinstance(error, MeterLinkError)
    assert error.diagnosis is Diagnosis.NOISY
    assert "handshake answered 0x" in str(error)
    assert meter.codes == [TlsRequestCode.HANDSHAKE] * TLS_ATTEMPTS


def test_a_broken_tls_session_is_not_set_up_again_for_a_read_whose_time_is_up() -> None:
    link, meter = tls_link(), TlsMeter(break_after=0)  # every table request fails
    machine = TlsRequest(link, MESSAGE, "reading BT23", give_up_at=0.5)
    converse(machine, meter)
    assert isinstance(failed(machine), OutOfTimeError)
    assert sum(seen.tls_handshakes for seen in machine.observations()) < TLS_ATTEMPTS


def test_a_tls_write_finishes_with_the_meters_code() -> None:
    write = WriteRequest(table_id=0x0007, data=b"\x01\x02", offset=None).to_bytes()
    machine = TlsRequest(tls_link(), write, "writing BT07")
    converse(machine, TlsMeter(reply=bytes([ResponseCode.OK])))
    assert finished(machine) == Reply(code=ResponseCode.OK)


def test_an_unanswered_tls_frame_is_resent_then_diagnosed() -> None:
    machine = TlsRequest(tls_link(), MESSAGE, "reading BT23")
    frames = unanswered(machine, TIMING.max_silent_sends)
    assert len(set(frames)) == 1
    error = failed(machine)
    assert isinstance(error, MeterLinkError)
    assert error.diagnosis is Diagnosis.NO_ANSWER


# -- the link between requests ----------------------------------------------------------------
def test_an_alert_is_due_once_a_second_at_most() -> None:
    link = new_link()
    assert not link.alert_due(0.0)
    link.alert_pending = True
    assert link.alert_due(0.0)
    link.alerts_serviced(0.0)
    assert not link.alert_due(0.5)
    link.alert_pending = True
    assert not link.alert_due(ALERT_INTERVAL - 0.01)
    assert link.alert_due(ALERT_INTERVAL)


def test_a_new_connection_forgets_the_old_ones_state_but_keeps_counting() -> None:
    link = new_link(last_send=3.0, alert_pending=True, key_worked=True)
    link.buffer.receive_data(b"\x00\x10\x00")
    number = link.sequence.take()
    link.connection_opened()
    assert (link.last_send, link.alert_pending, link.key_worked) == (None, False, False)
    assert link.buffer.pending == 0
    assert link.sequence.take() == number + 1
    assert link.idt_version == IDT_VERSION


def test_reads_get_shorter_on_a_line_that_damages_bytes_and_full_again_when_it_heals() -> None:
    link = new_link()
    assert link.chunk(465) == 465  # a clean line: a reply's worth
    for _ in range(40):  # one 150-byte reply in two arrives damaged: about 0.5 % per byte
        link.note_reply(150, damaged=True)
        link.note_reply(150, damaged=False)
    noisy = link.chunk(465)
    assert 16 <= noisy < 150  # shorter replies get through more often
    for _ in range(200):
        link.note_reply(150, damaged=False)
    assert link.chunk(465) == 465


def test_on_a_damaging_line_reads_are_the_shortest_that_keep_nearly_the_best_rate() -> None:
    link = new_link()
    link.damage, link.reply_bytes = 0.5, 93.0  # an 80-byte read's reply: one in two damaged
    per_byte = 1 - 0.5 ** (1 / 93)
    size = link.chunk(465)
    # Shorter than the 80 bytes that carry the most data per second, so that most replies
    # arrive whole (a run of damaged tries is what makes a poll slow) ...
    assert size < 80
    assert (1 - per_byte) ** (size + 13) > 0.5
    # ... and no shorter than needed: half of it would cost more than the tenth given up.
    assert link.chunk(465) >= 32


def test_gaps_between_wanted_ranges_are_read_only_while_the_line_lets_them_through() -> None:
    link = new_link()
    assert link.merge_gap(96) == 96  # clean: a gap is cheaper than a request's 100 ms
    for _ in range(40):  # about 0.5 % of bytes damaged
        link.note_reply(150, damaged=True)
        link.note_reply(150, damaged=False)
    some = link.merge_gap(96)
    assert 0 < some < 96  # each gap byte now risks the reply it rides in
    for _ in range(40):  # about 2 % per byte: most 150-byte replies damaged
        link.note_reply(150, damaged=True)
    assert link.merge_gap(96) < some
    for _ in range(200):
        link.note_reply(150, damaged=False)
    assert link.merge_gap(96) == 96


# -- the read timeout learnt from the meter's answers -----------------------------------------
def answered_read(link: MepLink, meter: Meter, at: float, delay: float) -> float:
    """One read the meter starts answering ``delay`` after the request's last byte; returns
    when its reply was whole."""
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    wire = transmit(machine, at)
    reply = meter.answer(wire)
    done = at + wire_time(len(wire), BAUD) + delay + wire_time(len(reply), BAUD)
    machine.received(reply, at=done)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    return done


def learnt_link(meter: Meter, delay: float = 0.02) -> tuple[MepLink, float]:
    link, at = new_link(), 0.0
    for _ in range(LEARN_AFTER):
        at = answered_read(link, meter, at + 0.2, delay)
    return link, at + 0.2


def test_a_reads_timeout_is_learnt_from_the_meters_answers_within_the_guides() -> None:
    meter = Meter()
    link, at = new_link(), 0.0
    for _ in range(LEARN_AFTER - 1):
        at = answered_read(link, meter, at + 0.2, delay=0.02)
    assert link.read_timeout() == TIMING.response_timeout  # too few answers seen yet
    at = answered_read(link, meter, at + 0.2, delay=0.02)
    assert link.read_timeout() == pytest.approx(TIMING.min_read_timeout)  # 3 x 20 ms < floor
    at = answered_read(link, meter, at + 0.2, delay=0.1)
    assert link.read_timeout() == pytest.approx(ANSWER_MARGIN * 0.1)
    at = answered_read(link, meter, at + 0.2, delay=0.3)
    assert link.read_timeout() == TIMING.response_timeout  # never above the guide's
    link.connection_opened()
    assert link.read_timeout() == TIMING.response_timeout  # a new connection starts over


def test_a_read_waits_the_learnt_timeout_and_its_retry_the_guides() -> None:
    meter = Meter()
    link, at = learnt_link(meter)
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    first = transmit(machine, at)
    end = at + wire_time(len(first), BAUD)
    assert machine.next_action() == Receive(until=end + TIMING.min_read_timeout)
    machine.timed_out(end + TIMING.min_read_timeout)
    again = transmit(machine, end + TIMING.min_read_timeout)
    assert again != first  # under the next number
    assert machine.next_action() == deadline_action(again, end + TIMING.min_read_timeout)


def deadline_action(frame_: bytes, sent_at: float) -> Receive:
    return Receive(until=deadline(frame_, sent_at))


def test_a_write_never_waits_a_learnt_timeout() -> None:
    meter = Meter()
    link, at = learnt_link(meter)
    assert link.read_timeout() < TIMING.response_timeout
    machine = Rc4Request(link, WRITE, "writing BT07")
    wire = transmit(machine, at)
    assert machine.next_action() == deadline_action(wire, at)


def test_a_late_reply_to_an_abandoned_read_is_dropped_and_learnt_never_the_answer() -> None:
    meter = Meter()
    link, at = learnt_link(meter)
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    first = transmit(machine, at)
    late = meter.answer(first)  # the meter answers, but slower than learnt
    end = at + wire_time(len(first), BAUD)
    machine.timed_out(end + TIMING.min_read_timeout)
    again = transmit(machine, end + TIMING.min_read_timeout)
    # The late reply has the size of the one awaited, and fails its digest for the new number:
    # it is recognised as the answer to the abandoned try, neither damage nor the answer.
    machine.received(late, at=end + 0.3 + wire_time(len(late), BAUD))
    assert isinstance(machine.next_action(), Receive)
    assert machine.seen.late_replies == 1
    assert machine.seen.damaged_replies == 0
    assert link.read_timeout() == TIMING.response_timeout  # 3 x 0.3 s, capped at the guide's
    machine.received(meter.answer(again), at=end + 0.4)
    assert finished(machine) == Reply(code=ResponseCode.OK, data=DATA)
    assert machine.seen.timeouts == 1


def test_a_late_reply_arriving_between_requests_is_learnt() -> None:
    meter = Meter()
    link, at = learnt_link(meter)
    machine = Rc4Request(link, MESSAGE, "reading BT23")
    frames = []
    for _ in range(TIMING.max_silent_sends):
        frames.append(transmit(machine, at))
        action = machine.next_action()
        assert isinstance(action, Receive)
        assert action.until is not None
        at = action.until
        machine.timed_out(at)
    assert isinstance(failed(machine), MeterLinkError)
    late = meter.answer(frames[-1])
    following = Rc4Request(link, MESSAGE, "reading BT23")
    following.received(late, at=at + 0.5)  # taken in while draining before the next request
    assert following.seen.late_replies == 1
    assert link.read_timeout() == TIMING.response_timeout
