"""MeterCore: the meter's decisions, driven in memory with the real proto and TLS engines."""

from __future__ import annotations

from mepgate.proto import (
    AccessLevel,
    ProcedureCall,
    ProcedureResponse,
    ProcedureResult,
    ReadRequest,
    ResponseCode,
    TlsRequestCode,
    TlsResponseCode,
    WriteRequest,
    prepare_request,
)
from mepgate.proto.procedures import EP16_CHANGE_CLOCK_BY_DELTA, EP39_POST_MEP_DATA
from mepgate.proto.tls_frames import decode_tls_frame, encode_tls_request
from mepgate.simulator.core import MeterCore
from mepgate.simulator.static_store import StaticStore
from mepgate.tls import KeyId, TlsPskClient

MBK = b"MBKMBKMBKMBKMBKM1234"
MAK = b"MAKMAKMAKMAKMAKM5678"
BT23 = 0x17
BT08 = 0x08


def make(tls: bool = False) -> tuple[MeterCore, StaticStore]:
    store = StaticStore({BT23: bytes(range(60)), 0x0001: b"GE  I210"})
    core = MeterCore(
        keys={AccessLevel.BASIC: MBK, AccessLevel.ADVANCED: MAK},
        store=store,
        sequence=1000,
        tls_required=tls,
    )
    return core, store


class Client:
    def __init__(self, core: MeterCore, key: bytes, seq: int = 1001) -> None:
        self.core, self.key, self.seq = core, key, seq

    def send(self, message: bytes, *, encrypt: bool = False) -> tuple[int, bytes]:
        exchange = prepare_request(message, self.seq, self.key, encrypt=encrypt)
        self.seq += 1
        reply = exchange.decode(self.core.handle(exchange.frame), self.key)
        return reply.code, reply.data


def test_reads_full_and_partial() -> None:
    core, _ = make()
    client = Client(core, MBK)
    assert client.send(ReadRequest(table_id=BT23).to_bytes()) == (0, bytes(range(60)))
    assert client.send(ReadRequest(table_id=BT23, offset=0, count=13).to_bytes()) == (
        0,
        bytes(range(13)),
    )
    code, _ = client.send(ReadRequest(table_id=BT23, offset=50, count=11).to_bytes())
    assert code == ResponseCode.TABLE_OPERATION_NOT_POSSIBLE
    assert (
        client.send(ReadRequest(table_id=0x999).to_bytes())[0] == ResponseCode.UNSUPPORTED_REQUEST
    )


def test_mbk_may_not_write_bt23_but_the_mak_may() -> None:
    core, store = make()
    write = WriteRequest(table_id=BT23, offset=0, data=b"\xff\xff").to_bytes()
    assert Client(core, MBK).send(write)[0] == ResponseCode.NO_PERMISSION
    assert store.table(BT23)[:2] == b"\x00\x01"  # type: ignore[index]
    assert Client(core, MAK, seq=1003).send(write)[0] == ResponseCode.OK
    assert store.table(BT23)[:2] == b"\xff\xff"  # type: ignore[index]


def test_procedures_through_bt07_and_their_access_rules() -> None:
    core, store = make()
    client = Client(core, MBK)
    call = ProcedureCall(number=EP39_POST_MEP_DATA, psn=5, parameters=b"\x01")
    assert client.send(WriteRequest(table_id=7, data=call.to_bytes()).to_bytes())[0] == 0
    response = ProcedureResponse.from_bytes(client.send(ReadRequest(table_id=BT08).to_bytes())[1])
    assert response.answers(call)
    assert response.result == ProcedureResult.COMPLETED
    # Same PSN again: 0x04.
    assert client.send(WriteRequest(table_id=7, data=call.to_bytes()).to_bytes())[0] == 4
    # A MAK-only procedure with the MBK: accepted write, 'no authorisation' result.
    other = ProcedureCall(number=2048 + 10, psn=6)
    assert client.send(WriteRequest(table_id=7, data=other.to_bytes()).to_bytes())[0] == 0
    response = ProcedureResponse.from_bytes(client.send(ReadRequest(table_id=BT08).to_bytes())[1])
    assert response.result == ProcedureResult.NO_AUTHORIZATION
    assert [c.number for c, _ in store.calls] == [EP39_POST_MEP_DATA]
    # The MBK may change the clock (EP16).
    clock = ProcedureCall(number=EP16_CHANGE_CLOCK_BY_DELTA, psn=7, parameters=bytes(4))
    assert client.send(WriteRequest(table_id=7, data=clock.to_bytes()).to_bytes())[0] == 0
    assert store.calls[-1][1] is AccessLevel.BASIC


def test_encrypted_requests_get_encrypted_replies() -> None:
    core, _ = make()
    client = Client(core, MAK)
    assert client.send(ReadRequest(table_id=1).to_bytes(), encrypt=True) == (0, b"GE  I210")
    assert core.counters.encrypted == 1


def test_tls_required_refuses_rc4_and_serves_reads_inside_tls() -> None:
    core, _ = make(tls=True)
    exchange = prepare_request(ReadRequest(table_id=1).to_bytes(), 1001, MBK)
    assert core.handle(exchange.frame)[2] == ResponseCode.INVALID_SERVICE_SEQUENCE_STATE

    tls = TlsPskClient(MAK, key_id=KeyId.MAK)
    reply = decode_tls_frame(
        core.handle(encode_tls_request(TlsRequestCode.HANDSHAKE, tls.start_handshake()))
    )
    while True:
        assert reply.code == TlsResponseCode.OK
        tls.receive(reply.payload)
        progress = tls.do_handshake()
        if progress.complete and not progress.outgoing:
            break
        reply = decode_tls_frame(
            core.handle(encode_tls_request(TlsRequestCode.HANDSHAKE_CONT, progress.outgoing))
        )
        if progress.complete:
            break
    record = tls.encrypt(ReadRequest(table_id=1).to_bytes())
    reply = decode_tls_frame(core.handle(encode_tls_request(TlsRequestCode.TABLE, record)))
    assert reply.code == TlsResponseCode.OK
    assert tls.decrypt(reply.payload) == b"\x00\x00\x08GE  I210"


def test_tls_with_the_wrong_key_is_answered_0x03() -> None:
    core, _ = make(tls=True)
    tls = TlsPskClient(b"WRONGWRONGWRONGWRONG", key_id=KeyId.MBK)
    reply = decode_tls_frame(
        core.handle(encode_tls_request(TlsRequestCode.HANDSHAKE, tls.start_handshake()))
    )
    codes = [reply.code]
    tls.receive(reply.payload)
    progress = tls.do_handshake()
    reply = decode_tls_frame(
        core.handle(encode_tls_request(TlsRequestCode.HANDSHAKE_CONT, progress.outgoing))
    )
    codes.append(reply.code)
    assert TlsResponseCode.INVALID_IDENTITY_OR_KEY in codes
