"""A whole optical session between two in-memory ends built only from the core's parts:
packets, buffers, ACKs, duplicates, reassembly, the state table and the services.

The "line" is a list of byte strings; nothing here sleeps or opens a port.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mepgate.c1218.buffer import NEED_DATA, Acked, LineEvent, Naked, PacketBuffer, PacketReceived
from mepgate.c1218.keys import parse_password
from mepgate.c1218.packets import ACK, DuplicateFilter, Reassembler, split
from mepgate.c1218.services import (
    NegotiateRequest,
    NegotiateResponse,
    ReadRequest,
    Service,
    decode_negotiate_response,
    decode_ok_response,
    decode_read_response,
    encode_ident_response,
    encode_read_response,
    encode_request,
    encode_response,
    ident_request,
    logoff_request,
    logon_request,
    parse_request,
    security_request,
    service_of,
    terminate_request,
)
from mepgate.c1218.states import SessionState, allowed, next_state
from mepgate.proto.codes import ResponseCode

RK = parse_password("ABCDEFGHIJ0123456789")
TABLE = bytes(range(256)) * 3


def drain(buffer: PacketBuffer) -> list[LineEvent]:
    events: list[LineEvent] = []
    while (event := buffer.next_event()) is not NEED_DATA:
        events.append(event)
    return events


@dataclass
class Meter:
    """A strict server: answers each whole request after ACKing its packets."""

    state: SessionState = SessionState.BASE
    buffer: PacketBuffer = field(default_factory=PacketBuffer)
    seen: DuplicateFilter = field(default_factory=DuplicateFilter)
    reassembler: Reassembler = field(default_factory=Reassembler)
    packet_size: int = 64
    packets: int = 1
    toggle: bool = False
    duplicates: int = 0

    def receive(self, data: bytes) -> list[bytes]:
        self.buffer.feed(data)
        out: list[bytes] = []
        for event in drain(self.buffer):
            if isinstance(event, Acked | Naked):
                continue  # our responses are not resent in this test
            assert isinstance(event, PacketReceived)
            out.append(bytes([ACK]))
            if self.seen.is_duplicate(event.packet):
                self.duplicates += 1
                continue
            message = self.reassembler.add(event.packet)
            if message is not None:
                out += self.answer(message)
        return out

    def answer(self, message: bytes) -> list[bytes]:
        request = parse_request(message)
        service = service_of(request)
        if not allowed(self.state, service):
            reply = encode_response(ResponseCode.ISSS)
        else:
            reply = self.serve(request)
            self.state = next_state(self.state, service)
        pieces = split(reply, self.packet_size, self.toggle, packets=self.packets)
        self.toggle = not pieces[-1].toggle
        return [p.to_bytes() for p in pieces]

    def serve(self, request: object) -> bytes:
        if isinstance(request, NegotiateRequest):
            self.packet_size = min(request.packet_size, 256)
            self.packets = min(request.packets, 8)
            return NegotiateResponse(
                packet_size=self.packet_size, packets=self.packets, baud=9600
            ).to_bytes()
        if isinstance(request, ReadRequest):
            return encode_read_response(TABLE)
        message = encode_request(request)  # type: ignore[arg-type]
        if message[0] == Service.IDENT:
            return encode_ident_response()
        return encode_response(ResponseCode.OK)


@dataclass
class Client:
    meter: Meter
    toggle: bool = False
    packet_size: int = 64
    packets: int = 1
    lose_next_ack: bool = False

    def ask(self, message: bytes) -> bytes:
        pieces = split(message, self.packet_size, self.toggle, packets=self.packets)
        self.toggle = not pieces[-1].toggle
        line: list[bytes] = []
        for piece in pieces:
            answer = self.meter.receive(piece.to_bytes())
            if self.lose_next_ack:
                self.lose_next_ack = False
                # The meter's ACK is lost on the way, so the client sends the same packet again.
                answer = self.meter.receive(piece.to_bytes()) + answer[1:]
            assert answer[0] == bytes([ACK])
            line += answer[1:]
        buffer = PacketBuffer(expect_ack=False)
        reassembler = Reassembler(packets=self.packets)
        buffer.feed(b"".join(line))
        whole = [
            reassembler.add(event.packet)
            for event in drain(buffer)
            if isinstance(event, PacketReceived)
        ]
        assert whole[-1] is not None
        return whole[-1]


def test_a_whole_session_with_a_lost_ack_and_multi_packet_reads() -> None:
    meter = Meter()
    client = Client(meter)

    def state() -> SessionState:
        return meter.state

    # Reading before logging on is out of sequence.
    refused = client.ask(encode_request(ReadRequest(table_id=1)))
    assert refused == bytes([ResponseCode.ISSS])
    client.ask(ident_request())
    assert state() is SessionState.IDENTIFIED
    granted = decode_negotiate_response(
        client.ask(encode_request(NegotiateRequest(packet_size=1024, packets=16, bauds=(9600,))))
    )
    assert granted == NegotiateResponse(packet_size=256, packets=8, baud=9600)
    client.packet_size, client.packets = granted.packet_size, granted.packets
    meter.reassembler.packets = granted.packets
    decode_ok_response(client.ask(logon_request(2, "mepgate")), Service.LOGON)
    client.lose_next_ack = True
    decode_ok_response(client.ask(security_request(RK)), Service.SECURITY)
    assert meter.duplicates == 1  # the resent Security was ACKed and dropped, answered once
    data = decode_read_response(client.ask(encode_request(ReadRequest(table_id=1))))
    assert data == TABLE  # 772 bytes in 4 packets of 256
    decode_ok_response(client.ask(logoff_request()), Service.LOGOFF)
    assert state() is SessionState.IDENTIFIED
    decode_ok_response(client.ask(terminate_request()), Service.TERMINATE)
    assert state() is SessionState.BASE
