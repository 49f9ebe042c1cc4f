"""The optical request machines, transition by transition, without a socket or a clock.

The "meter" here is a few lines around the C12.18 core's server side (its packet buffer,
``parse_request`` and response encoders); times are plain numbers fed with the events.  The
end-to-end and fault tests run the same machines against the simulator over real ports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from mepgate.c1218.buffer import NEED_DATA, Acked, BadPacket, Naked, PacketBuffer, PacketReceived
from mepgate.c1218.constants import MAX_PACKET_SIZE, MAX_PACKETS
from mepgate.c1218.packets import ACK, NAK, Packet, split
from mepgate.c1218.services import (
    OK_RESPONSE,
    IdentRequest,
    LogoffRequest,
    NegotiateRequest,
    NegotiateResponse,
    SecurityRequest,
    TerminateRequest,
    encode_ident_response,
    encode_read_response,
    encode_request,
    parse_request,
)
from mepgate.client.actions import Failed, Finished, Receive, Transmit
from mepgate.client.diagnosis import Diagnosis
from mepgate.client.errors import (
    EchoError,
    HeldOffError,
    KeyRefusedError,
    LockedOutError,
    MeterLinkError,
    NakStormError,
    NoAnswerError,
    SharedPortError,
)
from mepgate.client.optical.machine import OpticalLink, OpticalRequest, SessionEnd
from mepgate.client.optical.timing import OpticalTiming
from mepgate.client.session import Reply
from mepgate.errors import MepgateError
from mepgate.proto.messages import ReadRequest

PASSWORD = b"ABCDEFGHIJ0123456789"
TIMING = OpticalTiming()
TABLE = bytes(range(200))
READ = encode_request(ReadRequest(table_id=28, offset=10, count=20))


@dataclass
class Meter:
    """The meter's side of the link: ACKs good packets, NAKs bad ones, answers services."""

    password: bytes = PASSWORD
    grant: tuple[int, int] = (256, 4)
    nak_first: bool = False
    silent: bool = False
    echo: bool = False
    naks: int = 0  # NAK this many of our packets
    busy: int = 0  # answer bsy to this many reads
    noise: bytes = b""  # sent before every answer (MEP replies on a shared UART)
    corrupt: int = 0  # damage this many response packets (the first sends)
    duplicate: bool = False  # send each response packet twice
    lose_acks: int = 0  # drop this many of the meter's ACKs
    refuse_key: bool = False
    deaf: int = 0  # miss this many of our packets (a damaged length made it wait them out)
    mute: int = 0  # lose this many response packets (sends and resends after a NAK)
    buffer: PacketBuffer = field(default_factory=PacketBuffer)
    toggle: bool = False
    packet_size: int = 64
    queue: list[bytes] = field(default_factory=list)
    last: bytes = b""
    heard: list[Any] = field(default_factory=list)  # requests parsed, in order
    in_session: bool = False

    def hear(self, data: bytes) -> bytes:
        out = data if self.echo else b""
        if self.silent:
            return out
        if self.deaf and len(data) > 1:
            self.deaf -= 1
            return out
        self.buffer.feed(data)
        while (event := self.buffer.next_event()) is not NEED_DATA:
            out += self._event(event)
        return out

    def _event(self, event: object) -> bytes:
        if isinstance(event, BadPacket):
            return bytes([NAK])
        if isinstance(event, Naked):
            if self.mute:
                self.mute -= 1
                return b""
            return self.noise + self.last
        if isinstance(event, Acked):
            if self.queue:
                return self._send(self.queue.pop(0))
            return b""
        assert isinstance(event, PacketReceived)
        if self.nak_first:
            self.nak_first = False
            return bytes([NAK])
        if self.naks:
            self.naks -= 1
            return bytes([NAK])
        ack = bytes([ACK])
        if self.lose_acks:
            self.lose_acks -= 1
            ack = b""
        response = self.answer(event.packet.data)
        packets = [p.to_bytes() for p in split(response, self.packet_size, self.toggle)]
        self.toggle ^= bool(len(packets) % 2)
        self.queue = packets[1:]
        if isinstance(self.heard[-1], NegotiateRequest):
            self.packet_size = self.grant[0]
        return ack + self._send(packets[0])

    def _send(self, packet: bytes) -> bytes:
        self.last = packet
        wire = packet
        if self.mute:
            self.mute -= 1
            return b""
        if self.corrupt:
            self.corrupt -= 1
            wire = packet[:-1] + bytes([packet[-1] ^ 0xFF])
        if self.duplicate:
            wire += packet
        return self.noise + wire

    def answer(self, message: bytes) -> bytes:
        request = parse_request(message)
        self.heard.append(request)
        if isinstance(request, IdentRequest):
            return encode_ident_response()
        if isinstance(request, NegotiateRequest):
            size, count = self.grant
            return NegotiateResponse(packet_size=size, packets=count).to_bytes()
        if isinstance(request, SecurityRequest):
            if self.refuse_key or request.password != self.password:
                return bytes([0x03])
            self.in_session = True
            return OK_RESPONSE
        if isinstance(request, ReadRequest):
            if self.busy:
                self.busy -= 1
                return bytes([0x06])
            if not self.in_session:
                return bytes([0x0A])
            start = request.offset or 0
            return encode_read_response(TABLE[start : start + request.count])
        if isinstance(request, LogoffRequest | TerminateRequest):
            self.in_session = False
        return OK_RESPONSE


@dataclass
class Run:
    """What a run of a machine against the meter did."""

    outcome: Any
    sent: list[tuple[float, bytes]]
    end: float


def run(machine: Any, meter: Meter, start: float = 0.0, limit: int = 2000) -> Run:
    """Drive ``machine`` against ``meter`` on a virtual clock (the meter answers at once)."""
    now = start
    inbox = b""
    sent: list[tuple[float, bytes]] = []
    for _ in range(limit):
        action = machine.next_action()
        if isinstance(action, Transmit):
            now = max(now, action.not_before)
            machine.sent(now)
            sent.append((now, action.data))
            inbox += meter.hear(action.data)
        elif isinstance(action, Receive):
            if inbox:
                now += 0.001
                data, inbox = inbox, b""
                machine.received(data, now)
            else:
                now = now + 0.001 if action.until is None else max(now, action.until)
                machine.timed_out(now)
        elif isinstance(action, Finished):
            return Run(action.result, sent, now)
        else:
            assert isinstance(action, Failed)
            return Run(action.error, sent, now)
    raise AssertionError("the machine did not finish")


def new_link(**changes: Any) -> OpticalLink:
    link = OpticalLink(password=PASSWORD, timing=TIMING, **changes)
    link.connection_opened()
    return link


def request(link: OpticalLink, meter: Meter, start: float = 0.0) -> tuple[Run, OpticalRequest]:
    machine = OpticalRequest(link, READ, "reading BT28")
    return run(machine, meter, start), machine


def packets_of(sent: list[tuple[float, bytes]]) -> list[Packet]:
    return [Packet.parse(data) for _, data in sent if len(data) > 1]


def services(meter: Meter) -> list[str]:
    return [type(r).__name__.removesuffix("Request") for r in meter.heard]


# -- a session, then the request --------------------------------------------------------------
def test_a_first_request_starts_a_session_negotiates_the_largest_size_and_reads() -> None:
    link, meter = new_link(), Meter()
    done, machine = request(link, meter)
    assert done.outcome == Reply(code=0, data=TABLE[10:30])  # checksum checked and stripped
    assert services(meter) == ["Ident", "Negotiate", "Logon", "Security", "Read"]
    negotiate = meter.heard[1]
    assert (negotiate.packet_size, negotiate.packets) == (MAX_PACKET_SIZE, MAX_PACKETS)
    assert (link.packet_size, link.packets) == meter.grant  # what the meter granted
    assert link.max_read == (256 - 8) * 4 - 4
    assert meter.heard[3].password == PASSWORD
    assert link.in_session
    assert machine.seen.sessions == 1
    assert machine.seen.replies == 1
    # ACK for every response packet, and the toggle flips for each new packet of ours.
    ours = packets_of(done.sent)
    assert [p.toggle for p in ours] == [False, True, False, True, False]
    assert done.sent.count((done.sent[-1][0], bytes([ACK]))) >= 1
    assert sum(1 for _, d in done.sent if d == bytes([ACK])) == 5


def test_the_next_request_reuses_the_session() -> None:
    link, meter = new_link(), Meter()
    first, _ = request(link, meter)
    done, _ = request(link, meter, start=first.end + 1.0)
    assert done.outcome.data == TABLE[10:30]
    assert services(meter)[-2:] == ["Security", "Read"] or services(meter).count("Ident") == 1
    assert services(meter).count("Ident") == 1


def test_the_first_packet_lost_to_the_uart_switch_is_resent_for_free() -> None:
    link, meter = new_link(), Meter(nak_first=True)
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    first, again = done.sent[0][1], done.sent[1][1]
    assert first == again  # the same packet, the same toggle
    assert machine.seen.naks == 0  # expected: not counted against the line
    assert machine.seen.resends == 1


def test_a_nak_resends_the_same_packet_and_too_many_are_a_nak_storm() -> None:
    link, meter = new_link(), Meter(naks=2)
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    assert machine.seen.naks == 1  # the first, on waking the port, is expected
    assert machine.seen.resends == 2
    link, meter = new_link(), Meter(naks=1000)
    done, machine = request(link, meter)
    assert isinstance(done.outcome, NakStormError)
    assert done.outcome.diagnosis is Diagnosis.NAK_STORM
    assert "ambient light" in str(done.outcome)
    # 1 free wake-up resend, then LINK_RETRIES more.
    assert len({d for _, d in done.sent}) == 1
    assert len(done.sent) == 1 + 1 + TIMING.link_retries


def test_a_missing_ack_resends_after_the_response_timeout() -> None:
    link, meter = new_link(woken=True), Meter(silent=True)
    link.woken = True
    machine = OpticalRequest(link, READ, "reading BT28")
    done = run(machine, meter)
    assert isinstance(done.outcome, NoAnswerError)
    assert "probe" in str(done.outcome)
    times = [t for t, _ in done.sent]
    assert times[1] - times[0] >= TIMING.response_timeout
    assert machine.seen.timeouts >= TIMING.link_retries + 1


def test_a_damaged_response_packet_is_naked_and_taken_when_resent() -> None:
    link, meter = new_link(), Meter(corrupt=1)
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    assert machine.seen.damaged_replies == 1
    assert bytes([NAK]) in [d for _, d in done.sent]


def test_a_missing_response_packet_is_asked_for_with_a_nak_counted_as_a_frame() -> None:
    """Each wait that ends without an answer follows a frame of ours (a packet, or a NAK
    asking for the meter's packet again): timeouts never outnumber frames sent, so the
    doctor's loss rate is a rate."""
    link, meter = new_link(), Meter(mute=2)
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    naks = [t for t, d in done.sent if d == bytes([NAK])]
    assert len(naks) == 2
    assert machine.seen.timeouts == 2
    packets = len(packets_of(done.sent))
    assert machine.seen.frames_sent == packets + len(naks)

    link, meter = new_link(), Meter()
    first, _ = request(link, meter)
    meter.mute = 1000  # the responses never arrive (the meter ACKs our packets)
    lost, machine = request(link, meter, start=first.end + 1.0)
    assert isinstance(lost.outcome, MeterLinkError)
    assert machine.seen.timeouts > 0
    assert machine.seen.timeouts <= machine.seen.frames_sent


def test_a_duplicate_response_packet_is_acked_again_and_dropped() -> None:
    link, meter = new_link(), Meter(duplicate=True)
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    assert machine.seen.duplicates >= 1
    acks = sum(1 for _, d in done.sent if d == bytes([ACK]))
    assert acks == 5 + machine.seen.duplicates


def test_a_lost_ack_is_taken_from_the_response_that_follows() -> None:
    link, meter = new_link(), Meter(lose_acks=1)
    done, _ = request(link, meter)
    assert done.outcome.data == TABLE[10:30]


def test_a_multi_packet_response_is_reassembled_with_an_ack_per_packet() -> None:
    link, meter = new_link(), Meter(grant=(32, 8))
    machine = OpticalRequest(
        link, encode_request(ReadRequest(table_id=28, offset=0, count=100)), "reading BT28"
    )
    done = run(machine, meter)
    assert done.outcome.data == TABLE[:100]
    assert sum(1 for _, d in done.sent if d == bytes([ACK])) == 4 + 5  # 104 bytes in 24s


def test_an_echoing_probe_is_heard_through() -> None:
    link, meter = new_link(), Meter(echo=True)
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    assert link.echoes
    assert machine.seen.echoed_frames >= 1
    again, _ = request(link, meter, start=done.end + 0.5)
    assert again.outcome.data == TABLE[10:30]


def test_only_our_echo_back_is_named() -> None:
    link, meter = new_link(), Meter(echo=True, silent=True)
    done, _ = request(link, meter)
    assert isinstance(done.outcome, EchoError)
    assert "echoes" in str(done.outcome)


def test_mep_traffic_is_skipped_and_counted_and_alone_it_is_named() -> None:
    link, meter = new_link(), Meter(noise=b"\x00\x05\x01\x02\x03\x04\x05\x06\x07")
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    assert machine.seen.skipped_bytes > 0

    class Mep(Meter):
        def hear(self, data: bytes) -> bytes:
            return MEP_REPLY

    done, machine = request(new_link(), Mep())
    assert isinstance(done.outcome, SharedPortError)
    assert "MEP" in str(done.outcome)
    assert machine.seen.mep_frames > 0


MEP_REPLY = b"\x00\x0b\x00\x01\x02" + bytes(range(0x30, 0x38))
"""A MEP reply frame as it shows on a shared UART: length 11, the OK code, data, a digest."""


def test_the_remains_of_damaged_packets_are_not_taken_for_mep_traffic() -> None:
    """The meter's packets with their start byte hit (a misaligned probe): their remains are
    skipped, but they are no MEP frames -- the line is noisy, not shared."""

    class Damaged(Meter):
        def hear(self, data: bytes) -> bytes:
            if len(data) < 2:
                return b""
            packet = Packet(encode_read_response(TABLE[:20]), toggle=False).to_bytes()
            return bytes([ACK ^ 0x40]) + bytes([0x6E]) + packet[1:]

    done, machine = request(new_link(), Damaged())
    assert isinstance(done.outcome, MeterLinkError)
    assert not isinstance(done.outcome, SharedPortError)
    assert done.outcome.diagnosis is Diagnosis.NOISY
    assert machine.seen.skipped_bytes > 0
    assert machine.seen.mep_frames == 0


def test_mep_frames_are_found_across_reads_and_not_in_noise() -> None:
    link = new_link()
    spotter = link.mep
    assert spotter.feed(MEP_REPLY[:4]) == 0
    assert spotter.feed(MEP_REPLY[4:] + MEP_REPLY) == 2
    spotter.reset()
    assert spotter.feed(bytes([0x20, 0x00, 0x00, 0x0B]) + MEP_REPLY) == 0  # a packet's rest
    spotter.reset()
    assert spotter.feed(b"\x00\x00" + MEP_REPLY) == 0  # an alert-like start: not in step


def test_busy_answers_are_waited_out() -> None:
    link, meter = new_link(), Meter(busy=2)
    done, machine = request(link, meter)
    assert done.outcome.data == TABLE[10:30]
    assert machine.seen.busy_answers == 2
    reads = [t for t, d in done.sent if len(d) > 1 and Packet.parse(d).data[:1] == b"\x3f"]
    assert reads[1] - reads[0] >= TIMING.busy_retry_interval
    assert reads[2] - reads[1] >= TIMING.busy_retry_interval


def test_a_lost_session_is_started_again() -> None:
    link, meter = new_link(), Meter()
    first, _ = request(link, meter)
    meter.in_session = False  # the meter went back to base (isss)
    done, _ = request(link, meter, start=first.end + 1)
    assert done.outcome.data == TABLE[10:30]
    assert services(meter).count("Logon") == 2


def test_the_session_is_renewed_before_the_meters_timeout() -> None:
    link, meter = new_link(), Meter()
    first, _ = request(link, meter)
    at = first.end
    # Requests every 4 s (well under the channel traffic timeout) for 545 s.
    while at < 545:
        at += 4.0
        done, _ = request(link, meter, start=at)
        assert done.outcome.data == TABLE[10:30]
        at = done.end
    assert services(meter).count("Ident") == 2
    assert "Logoff" in services(meter)
    assert "Terminate" in services(meter)
    assert link.session_since is not None
    assert link.session_since >= 0.9 * TIMING.session_timeout


def test_a_session_quiet_past_the_channel_timeout_is_not_trusted() -> None:
    link, meter = new_link(), Meter()
    first, _ = request(link, meter)
    done, _ = request(link, meter, start=first.end + TIMING.channel_traffic_timeout)
    assert done.outcome.data == TABLE[10:30]
    assert services(meter).count("Ident") == 2


def test_a_refused_key_is_named_with_the_key_types() -> None:
    link, meter = new_link(), Meter(refuse_key=True)
    done, machine = request(link, meter)
    assert isinstance(done.outcome, KeyRefusedError)
    assert done.outcome.diagnosis is Diagnosis.KEY_REFUSED
    for words in ("MK", "PK", "RK", "hex:"):
        assert words in str(done.outcome)
    assert PASSWORD.decode() not in str(done.outcome)
    assert machine.seen.key_refusals == 1
    assert services(meter)[-1] == "Terminate"


def test_refusals_up_to_the_meters_limit_lock_it_and_it_is_not_asked_again() -> None:
    link, meter = new_link(lockout_threshold=2, lockout_minutes=15), Meter(refuse_key=True)
    first, _ = request(link, meter)
    assert isinstance(first.outcome, KeyRefusedError)
    second, _ = request(link, meter, start=first.end + 1)
    assert isinstance(second.outcome, LockedOutError)
    assert "15 minutes" in str(second.outcome)
    sends = len(meter.heard)
    third, _ = request(link, meter, start=second.end + 60)
    assert isinstance(third.outcome, LockedOutError)
    assert "14 more minutes" in str(third.outcome)
    assert len(meter.heard) == sends  # nothing sent while locked out
    assert third.sent == []


def keep_busy(link: OpticalLink, meter: Meter, until: float) -> float:
    """Requests every 4 s (under the channel traffic timeout) until ``until``; the end."""
    at = 0.0
    while at < until:
        done, _ = request(link, meter, start=at)
        assert done.outcome.data == TABLE[10:30]
        at = done.end + 4.0
    return done.end


def test_silence_after_the_meters_session_timeout_is_a_hold_off_respected() -> None:
    link, meter = new_link(), Meter()
    end = keep_busy(link, meter, until=40.0)  # old enough for a timeout (30 s)
    meter.silent = True  # the meter ended the session at its timeout: it ignores us now
    held, _ = request(link, meter, start=end + 3.0)
    assert isinstance(held.outcome, HeldOffError)
    # The hold-off runs from when the meter fell silent (the end of the last request), not
    # from when the resends and the unanswered Ident made it certain.
    silent_from = end
    assert link.held_off_until == pytest.approx(silent_from + 300, abs=0.01)
    assert 280 < held.outcome.seconds_left < 300 - 3.0
    assert f"held off for {held.outcome.seconds_left:.0f} s more" in str(held.outcome)
    assert link.session_timeout == pytest.approx(end, abs=0.1)  # renewed sooner from now on
    again, _ = request(link, meter, start=silent_from + 100)
    assert isinstance(again.outcome, HeldOffError)
    assert again.sent == []  # not knocked on meanwhile
    assert again.outcome.seconds_left == pytest.approx(200, abs=0.5)
    meter.silent = False
    later, _ = request(link, meter, start=silent_from + 301)
    assert later.outcome.data == TABLE[10:30]


def test_silence_in_a_young_session_is_the_line_not_a_timeout() -> None:
    """A damaged length field makes the meter wait out a longer packet: it misses a whole
    exchange of ours.  A fresh Ident tells at once: answered, it was the line -- the request
    is served in a new session, and the renewal period is kept (a session seconds old tells
    nothing of the meter's timeout)."""
    link, meter = new_link(), Meter()
    first, _ = request(link, meter)
    meter.deaf = 1 + TIMING.link_retries  # every send of one exchange
    done, machine = request(link, meter, start=first.end + 1.0)
    assert done.outcome.data == TABLE[10:30]
    assert services(meter).count("Ident") == 2  # asked at once, answered
    assert machine.seen.sessions == 1
    assert link.session_timeout == TIMING.session_timeout
    assert link.held_off_until is None
    assert link.cut_off_since is None


def test_a_young_session_whose_fresh_ident_is_ignored_too_is_held_off_and_learnt() -> None:
    """Silent, and the fresh Ident ignored too: the meter holds us off after all (a session
    timeout far shorter than assumed), and that is learnt."""
    link, meter = new_link(), Meter()
    end = keep_busy(link, meter, until=10.0)
    meter.silent = True
    held, _ = request(link, meter, start=end + 1.0)
    assert isinstance(held.outcome, HeldOffError)
    assert link.held_off_until == pytest.approx(end + 300, abs=0.01)
    assert link.session_timeout == pytest.approx(end, abs=0.1)


def test_an_old_session_silent_once_is_renewed_and_renewed_sooner() -> None:
    """Silence in a session 40 s old may be the meter's timeout: a new session at once (the
    meter answers: its hold-off may be short), and the timeout taken as no longer than 40 s."""
    link, meter = new_link(), Meter()
    end = keep_busy(link, meter, until=40.0)
    idents = services(meter).count("Ident")
    meter.deaf = 1 + TIMING.link_retries
    done, _ = request(link, meter, start=end + 1.0)
    assert done.outcome.data == TABLE[10:30]
    assert services(meter).count("Ident") == idents + 1
    assert link.session_timeout == pytest.approx(end, abs=0.1)
    assert link.held_off_until is None


def test_session_end_logs_off_and_terminates() -> None:
    link, meter = new_link(), Meter()
    first, _ = request(link, meter)
    done = run(SessionEnd(link), meter, start=first.end + 0.5)
    assert done.outcome is None
    assert services(meter)[-2:] == ["Logoff", "Terminate"]
    assert not link.in_session


def test_the_link_never_shows_the_password() -> None:
    link = new_link()
    assert PASSWORD.decode() not in repr(link)


@pytest.mark.parametrize("error", [NoAnswerError, NakStormError, KeyRefusedError])
def test_optical_errors_speak_of_the_optical_port(error: type[MeterLinkError]) -> None:
    text = str(error("reading BT28", interface="optical"))
    assert "ENABLE" not in text
    assert isinstance(error("x", interface="optical"), MepgateError)


def test_a_logon_refused_during_a_lockout_is_named_with_the_minutes_known() -> None:
    class Locked(Meter):
        def answer(self, message: bytes) -> bytes:
            request = parse_request(message)
            if type(request).__name__ == "LogonRequest":
                self.heard.append(request)
                return bytes([0x04])  # onp: the failed-login lockout
            return super().answer(message)

    link, meter = new_link(lockout_threshold=3, lockout_minutes=10), Locked()
    done, _ = request(link, meter)
    assert isinstance(done.outcome, LockedOutError)
    assert done.outcome.diagnosis is Diagnosis.LOCKED_OUT
    assert "up to 10 minutes" in str(done.outcome)
    assert done.outcome.seconds_left == 600
    later, _ = request(link, meter, start=done.end + 120)
    assert isinstance(later.outcome, LockedOutError)
    assert later.sent == []  # not asked again meanwhile
    assert "8 more minutes" in str(later.outcome)


@pytest.mark.parametrize("interface", ["mep", "optical"])
def test_every_diagnosis_has_advice_in_the_words_of_either_interface(interface: str) -> None:
    # The gateway names any failure on the meter page, whichever port it happened on.
    for diagnosis in Diagnosis:
        assert diagnosis.advice(interface).strip(), diagnosis
