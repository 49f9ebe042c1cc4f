"""Issue 3 acceptance over a real TCP socket and a real pty: the simulator as a client sees it.

The client here is a few lines over :mod:`mepgate.proto` (the real MeterClient lives in
:mod:`mepgate.client`); it writes whole frames and verifies every reply digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mepgate.proto import (
    AccessLevel,
    ClientSequence,
    ReadRequest,
    Response,
    ResponseCode,
    TlsRequestCode,
    TlsResponseCode,
    WriteRequest,
    prepare_request,
)
from mepgate.proto.tls_frames import decode_tls_frame, encode_tls_request
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.serve.probe import LineProbe
from mepgate.tls import KeyId, TlsPskClient

BT23 = 0x0017
BT01 = 0x0001
WRONG_KEY = b"NOT-THE-METERS-KEY00"


class TinyClient:
    """Sequence bookkeeping as the guide asks: start anywhere, adopt the number a 0x0C gives."""

    def __init__(self, probe: LineProbe, key: bytes, start: int = 1) -> None:
        self.probe = probe
        self.key = key
        self.sequence = ClientSequence(start)
        self.replies: list[Response] = []

    def send(self, message: bytes, *, encrypt: bool = False) -> Response:
        reply = self.probe.request(message, key=self.key, seq=self.sequence.take(), encrypt=encrypt)
        self.replies.append(reply)
        if reply.next_sequence is not None:
            self.sequence.adopt(reply.next_sequence)
            reply = self.probe.request(
                message, key=self.key, seq=self.sequence.take(), encrypt=encrypt
            )
            self.replies.append(reply)
        return reply


Opener = Callable[[RunningSimulator], LineProbe]


@pytest.fixture(params=["tcp", "pty"])
def line(request: pytest.FixtureRequest) -> Iterator[Opener]:
    """Open a probe on the simulator's TCP port or on its pty (each test runs over both)."""
    opened: list[LineProbe] = []

    def open_line(sim: RunningSimulator) -> LineProbe:
        where = sim.url if request.param == "tcp" else sim.device
        assert where is not None
        probe = LineProbe.open(where)
        opened.append(probe)
        return probe

    yield open_line
    for probe in opened:
        probe.close()


def test_sequence_error_then_success(simulator: RunningSimulator, line: Opener) -> None:
    client = TinyClient(line(simulator), simulator.keys[AccessLevel.BASIC], start=1)
    reply = client.send(ReadRequest(table_id=BT23).to_bytes())
    first = client.replies[0]
    assert first.code == ResponseCode.INVALID_SEQUENCE_NUMBER
    assert first.authenticated
    assert reply.code == ResponseCode.OK
    assert reply.data == bytes(range(60))
    # The adopted number keeps working without another 0x0C.
    assert client.send(ReadRequest(table_id=BT23, offset=0, count=13).to_bytes()).data == bytes(
        range(13)
    )
    assert len(client.replies) == 3


def test_wrong_key_is_answered_0x0b(simulator: RunningSimulator, line: Opener) -> None:
    probe = line(simulator)
    reply = probe.request(ReadRequest(table_id=BT23).to_bytes(), key=WRONG_KEY, seq=4243)
    assert reply.code == ResponseCode.AUTHENTICATION_FAILURE
    assert not reply.authenticated
    assert simulator.call(lambda: simulator.meter.core.counters.auth_failures) == 1


def test_mbk_may_not_write_bt23_but_the_mak_may(simulator: RunningSimulator, line: Opener) -> None:
    probe = line(simulator)
    write = WriteRequest(table_id=BT23, offset=0, data=b"\xaa\xbb").to_bytes()
    mbk = TinyClient(probe, simulator.keys[AccessLevel.BASIC])
    assert mbk.send(write).code == ResponseCode.NO_PERMISSION
    assert mbk.send(ReadRequest(table_id=BT23, offset=0, count=2).to_bytes()).data == b"\x00\x01"
    mak = TinyClient(probe, simulator.keys[AccessLevel.ADVANCED])
    assert mak.send(write).code == ResponseCode.OK
    assert mak.send(ReadRequest(table_id=BT23, offset=0, count=2).to_bytes()).data == b"\xaa\xbb"


def test_encrypted_exchange(simulator: RunningSimulator, line: Opener) -> None:
    probe = line(simulator)
    client = TinyClient(probe, simulator.keys[AccessLevel.ADVANCED])
    reply = client.send(ReadRequest(table_id=BT01).to_bytes(), encrypt=True)
    assert reply.code == ResponseCode.OK
    assert reply.encrypted
    assert reply.data.startswith(b"GE  I210")
    # On the wire, neither the request nor the reply shows the plain text.
    exchange = prepare_request(
        ReadRequest(table_id=BT01).to_bytes(), client.sequence.take(), client.key, encrypt=True
    )
    wire = probe.exchange(exchange.frame).wire
    assert b"GE  I210" not in wire
    assert exchange.decode(wire, client.key).data == reply.data


def _tls_exchange(probe: LineProbe, code: TlsRequestCode, payload: bytes) -> tuple[int, bytes]:
    reply = decode_tls_frame(probe.exchange(encode_tls_request(code, payload), timeout=3.0).wire)
    return reply.code, reply.payload


def test_tls_required_rejects_plain_requests_and_serves_reads_through_tls(
    simulator_factory: Callable[..., RunningSimulator], line: Opener
) -> None:
    sim = simulator_factory(tls_required=True)
    probe = line(sim)
    plain = prepare_request(
        ReadRequest(table_id=BT01).to_bytes(), 4243, sim.keys[AccessLevel.BASIC]
    )
    assert probe.exchange(plain.frame).wire[2] == ResponseCode.INVALID_SERVICE_SEQUENCE_STATE

    tls = TlsPskClient(sim.keys[AccessLevel.ADVANCED], key_id=KeyId.MAK)
    code, payload = _tls_exchange(probe, TlsRequestCode.HANDSHAKE, tls.start_handshake())
    while True:
        assert code == TlsResponseCode.OK
        tls.receive(payload)
        progress = tls.do_handshake()
        if progress.outgoing:
            code, payload = _tls_exchange(probe, TlsRequestCode.HANDSHAKE_CONT, progress.outgoing)
        if progress.complete:
            break
    assert tls.handshake_complete

    record = tls.encrypt(ReadRequest(table_id=BT01).to_bytes())
    code, payload = _tls_exchange(probe, TlsRequestCode.TABLE, record)
    assert code == TlsResponseCode.OK
    message = tls.decrypt(payload)
    assert message[0] == ResponseCode.OK
    assert message[3:11] == b"GE  I210"
    assert sim.call(lambda: sim.meter.core.counters.tls_requests) >= 3


@pytest.mark.parametrize("profile", ["gen3-3phase", "gen4-3phase"])
def test_the_meter_model_answers_the_old_firmwares_bt28_read(
    simulator_factory: Callable[..., RunningSimulator], line: Opener, profile: str
) -> None:
    sim = simulator_factory(profile=profile)
    client = TinyClient(line(sim), sim.keys[AccessLevel.BASIC])
    reply = client.send(bytes.fromhex("30001C0200"))  # FIELD-NOTES: the old firmware's poll
    assert reply.code == ResponseCode.OK
    assert len(reply.data) > 100


def test_a_second_tcp_client_is_refused_as_a_serial_server_does(
    simulator: RunningSimulator,
) -> None:
    key = simulator.keys[AccessLevel.BASIC]
    with LineProbe.open(simulator.url or "") as first:
        assert TinyClient(first, key).send(ReadRequest(table_id=BT01).to_bytes()).code == 0
        # The line is taken: a second connection is closed at once (end of stream) ...
        second = LineProbe.open(simulator.url or "")
        with second, pytest.raises(ConnectionError, match="closed the line"):
            second.read_raw(1.0)
        # ... and the first client is still served.
        assert TinyClient(first, key).send(ReadRequest(table_id=BT01).to_bytes()).code == 0
    assert simulator.call(lambda: simulator.port.stats.refused) == 1
    with LineProbe.open(simulator.url or "") as third:  # once the line is free, served again
        third.send(prepare_request(ReadRequest(table_id=BT23).to_bytes(), 1, key).frame)
        assert third.next_frame(timeout=1.0)
    assert simulator.call(lambda: simulator.port.stats.sessions) == 2
