"""The optical server core (sans-IO): link, session states, keys, timers -- with injected times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest

from mepgate.c1218.constants import CHANNEL_TRAFFIC_TIMEOUT, RESPONSE_TIMEOUT
from mepgate.c1218.packets import NAK, Packet
from mepgate.c1218.services import (
    Service,
    decode_negotiate_response,
    decode_read_response,
    ident_request,
    logoff_request,
    logon_request,
    negotiate_request,
    security_request,
    terminate_request,
    wait_request,
    write_request,
)
from mepgate.c1218.states import SessionState
from mepgate.proto import ReadRequest, ResponseCode, WriteRequest
from mepgate.simulator.meter import DEFAULT_MK, DEFAULT_PK, DEFAULT_RK, SimClock, SimulatedMeter
from mepgate.simulator.model import build_meter, model_of
from mepgate.simulator.optical import OpticalServer, OpticalSettings, optical_server
from mepgate.simulator.optical.access import HardwareLock, OpticalAccess
from mepgate.tables.ids import TableId

from ..conftest import FIXTURE_TABLES, SIM_KEYS, SIM_START_SEQUENCE, StaticModel
from .optical_helpers import MemoryClient

OK = bytes([ResponseCode.OK])
ISC = bytes([ResponseCode.NO_PERMISSION])
ISSS = bytes([ResponseCode.INVALID_SERVICE_SEQUENCE_STATE])
ONP = bytes([ResponseCode.OPERATION_NOT_POSSIBLE])
WRONG = b"NOT-THE-METERS-KEY00"
START = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def static_server(
    settings: OpticalSettings | None = None, extra: Mapping[int, bytes] | None = None
) -> OpticalServer:
    store = {**FIXTURE_TABLES, **(extra or {})}
    meter = SimulatedMeter(
        model=StaticModel(store),
        clock=SimClock(origin=0.0, start=START),
        keys=SIM_KEYS,
        sequence=SIM_START_SEQUENCE,
    )
    return optical_server(meter, settings=settings)


def model_server(profile: str = "gen3-1phase") -> tuple[OpticalServer, SimulatedMeter]:
    meter = build_meter(profile, seed=3, start=START)
    return optical_server(meter), meter


def logged_on(
    server: OpticalServer, key: bytes | None = DEFAULT_RK, *, now: float = 0.0
) -> MemoryClient:
    client = MemoryClient(server, now=now)
    assert client.request(ident_request())[:1] == OK
    assert client.request(logon_request(1, "test")) == OK
    if key is not None:
        assert client.request(security_request(key)) == OK
    return client


def state_of(server: OpticalServer) -> SessionState:
    """The state now (a function, so that mypy does not narrow it across calls)."""
    return server.state


def read(
    client: MemoryClient, table_id: int, *, offset: int | None = None, count: int = 0
) -> bytes:
    request = (
        ReadRequest(table_id=table_id).to_bytes()[:3]  # C12.18's full read has no count
        if offset is None
        else ReadRequest(table_id=table_id, offset=offset, count=count).to_bytes()
    )
    return client.request(request)


# -- session states ----------------------------------------------------------------------------
def test_services_out_of_state_get_isss() -> None:
    client = MemoryClient(static_server())
    assert client.request(logon_request(1, "x")) == ISSS  # no Ident yet
    assert read(client, 0x0001) == ISSS
    assert client.request(ident_request())[:1] == OK
    assert client.request(security_request(DEFAULT_MK)) == ISSS  # not logged on
    assert client.request(negotiate_request(256, 2, (9600,)))[:1] == OK
    assert client.request(logon_request(1, "x")) == OK
    assert client.request(negotiate_request(256, 2, (9600,))) == ISSS  # only while identified
    assert client.request(ident_request()) == ISSS
    assert client.request(logoff_request()) == OK
    assert state_of(client.server) is SessionState.IDENTIFIED
    assert client.request(terminate_request()) == OK
    assert state_of(client.server) is SessionState.BASE


def test_silence_returns_to_base_after_the_channel_traffic_timeout() -> None:
    server = static_server()
    client = logged_on(server)
    client.now += CHANNEL_TRAFFIC_TIMEOUT - 0.1
    server.poll(client.now)
    assert state_of(server) is SessionState.SESSION
    assert read(client, 0x0001)[:1] == OK  # traffic restarts the timer
    client.now += CHANNEL_TRAFFIC_TIMEOUT
    server.poll(client.now)
    assert state_of(server) is SessionState.BASE
    assert read(client, 0x0001) == ISSS


def test_wait_keeps_the_session_longer() -> None:
    server = static_server()
    client = logged_on(server)
    assert client.request(wait_request(30)) == OK
    client.now += 20
    server.poll(client.now)
    assert state_of(server) is SessionState.SESSION
    client.now += 11
    server.poll(client.now)
    assert state_of(server) is SessionState.BASE


def test_negotiate_grants_at_most_the_model_maximum_at_9600_baud() -> None:
    client = MemoryClient(static_server())
    client.request(ident_request())
    granted = decode_negotiate_response(client.request(negotiate_request(8192, 255, (19200,))))
    assert (granted.packet_size, granted.packets, granted.baud) == (1024, 8, 9600)
    granted = decode_negotiate_response(client.request(negotiate_request(128, 2, (9600,))))
    assert (granted.packet_size, granted.packets) == (128, 2)
    assert (client.server.packet_size, client.server.packets) == (128, 2)


# -- the link ----------------------------------------------------------------------------------
@pytest.mark.parametrize("first_toggle", [False, True])
def test_either_first_toggle_is_accepted(first_toggle: bool) -> None:
    client = MemoryClient(static_server(), toggle=first_toggle)
    assert client.request(ident_request())[:1] == OK
    assert client.request(logon_request(1, "x")) == OK


def test_a_resent_packet_is_acknowledged_and_dropped() -> None:
    server = static_server()
    client = logged_on(server)
    raw = client.packet(ReadRequest(table_id=0x0001).to_bytes()[:3])
    first = client.feed(raw)
    again = client.feed(raw)
    assert first.acks == 1
    assert len(first.packets) == 1
    assert again.acks == 1
    assert again.packets == []
    assert server.counters.duplicates == 1


def test_a_bad_crc_is_naked_and_a_nak_resends_the_last_packet() -> None:
    server = static_server()
    client = logged_on(server)
    raw = bytearray(client.packet(ReadRequest(table_id=0x0001).to_bytes()[:3]))
    raw[-1] ^= 0xFF
    assert client.feed(bytes(raw)).naks == 1
    raw[-1] ^= 0xFF
    first = client.feed(bytes(raw), ack=False)
    resent = client.feed(bytes([NAK]))
    assert resent.packets == first.packets
    assert decode_read_response(resent.message) == FIXTURE_TABLES[0x0001]


def test_no_ack_within_the_response_timeout_resends() -> None:
    server = static_server()
    client = logged_on(server)
    first = client.feed(client.packet(ReadRequest(table_id=0x0001).to_bytes()[:3]), ack=False)
    assert server.poll(client.now + RESPONSE_TIMEOUT / 2) == []
    again = server.poll(client.now + RESPONSE_TIMEOUT)
    assert [t.data for t in again] == [first.packets[0].to_bytes()]


def test_multi_packet_request_and_response() -> None:
    server = static_server()
    client = MemoryClient(server)
    client.request(ident_request())
    client.request(negotiate_request(64, 8, (9600,)))
    client.packets = 8
    client.request(logon_request(1, "x"))
    client.request(security_request(DEFAULT_MK))
    data = bytes(range(100, 160))  # a 69-byte write request: two packets
    reply = client.request(write_request(WriteRequest(table_id=0x0017, offset=0, data=data)))
    assert reply == ISC  # the default hardware lock closes BT23 writes
    server.access = OpticalAccess(hardware_lock=HardwareLock(writes=frozenset()))
    assert client.request(write_request(WriteRequest(table_id=0x0017, offset=0, data=data))) == OK
    got = decode_read_response(read(client, 0x001C))  # 300 bytes: five 56-byte packets
    assert got == FIXTURE_TABLES[0x001C]
    assert decode_read_response(read(client, 0x0017, offset=0, count=60)) == data
    assert server.counters.packets > server.counters.messages


def test_a_read_the_negotiated_packets_cannot_carry_is_refused() -> None:
    client = logged_on(static_server())  # 64-byte packets, one per message
    assert read(client, 0x001C) == ONP
    assert decode_read_response(read(client, 0x001C, offset=10, count=40)) == bytes(
        FIXTURE_TABLES[0x001C][10:50]
    )


# -- keys and access ---------------------------------------------------------------------------
def test_a_wrong_password_is_refused() -> None:
    server = static_server()
    client = logged_on(server, key=None)
    assert client.request(security_request(WRONG)) == ISC
    assert server.counters.security_failures == 1
    assert client.request(security_request(DEFAULT_PK)) == OK


def test_only_the_open_tables_without_a_key() -> None:
    server, _ = model_server()
    client = logged_on(server, key=None)
    client.request(negotiate_request(1024, 8, (9600,)))  # isss in session: sizes stay small
    for table in (TableId.BT00, TableId.BT01):
        assert read(client, table)[:1] == OK
    assert read(client, TableId.ET03, offset=0, count=30)[:1] == OK
    assert read(client, TableId.BT28, offset=0, count=8) == ISC


@pytest.mark.parametrize(("key", "et51"), [(DEFAULT_RK, ISC), (DEFAULT_PK, OK), (DEFAULT_MK, OK)])
def test_access_per_key(key: bytes, et51: bytes) -> None:
    server, _ = model_server()
    client = logged_on(server, key=key)
    assert read(client, TableId.ET51)[:1] == et51  # "Read access: MK, PK"
    assert read(client, TableId.BT28, offset=0, count=8)[:1] == OK
    write = write_request(WriteRequest(table_id=TableId.ET51, offset=0, data=b"\x01"))
    assert client.request(write) == (ISC if key == DEFAULT_RK else OK)


def test_rk_cannot_read_key_calibration_or_download_tables() -> None:
    server = static_server(extra={0x0900: bytes(20)})
    server.access = OpticalAccess(key_tables=frozenset({0x0900}))
    client = logged_on(server, key=DEFAULT_RK)
    assert read(client, 0x0900) == ISC
    client.request(security_request(DEFAULT_PK))
    assert read(client, 0x0900) == ISC  # the PK cannot read keys either
    client.request(security_request(DEFAULT_MK))
    assert read(client, 0x0900)[:1] == OK


def test_hardware_locked_tables_are_refused_whatever_the_key() -> None:
    server = static_server()
    server.access = OpticalAccess(hardware_lock=HardwareLock(reads=frozenset({0x0017})))
    client = logged_on(server, key=DEFAULT_MK)
    assert read(client, 0x0017, offset=0, count=8) == ISC


def test_the_same_bytes_as_the_mep_port() -> None:
    server, meter = model_server()
    client = MemoryClient(server)
    client.request(ident_request())
    client.request(negotiate_request(1024, 8, (9600,)))
    client.request(logon_request(1, "x"))
    client.request(security_request(DEFAULT_RK))
    for table in (TableId.BT00, TableId.BT01, TableId.BT21, TableId.BT23, TableId.BT28):
        assert decode_read_response(read(client, table)) == meter.model.table(table)


# -- the meter's timers ------------------------------------------------------------------------
def test_session_timeout_then_hold_off() -> None:
    server, _meter = model_server("gen3-1phase")  # ET51: D.O.S. timers enabled as shipped
    client = logged_on(server)
    for _ in range(120):  # 600 s of traffic every 5 s
        client.now += 5
        server.poll(client.now)
        if server.state is not SessionState.SESSION:
            break
        read(client, TableId.BT01)
    assert state_of(server) is SessionState.BASE
    assert server.counters.session_timeouts == 1
    assert not server.listening(client.now)
    assert client.feed(client.packet(ident_request())).acks == 0  # ignored, not even NAKed
    assert server.held_off_for(client.now) == pytest.approx(300, abs=5)
    client.now += 301
    assert server.listening(client.now)
    assert client.request(ident_request())[:1] == OK


def test_session_timer_off_when_et51_disables_it() -> None:
    server, meter = model_server("gen3-1phase")
    model_of(meter).write(TableId.ET51, 0, b"\x00")
    client = logged_on(server)
    for _ in range(150):
        client.now += 5
        read(client, TableId.BT01)
    assert state_of(server) is SessionState.SESSION


def test_gen4_timers_and_disable_bit_in_et55() -> None:
    server, meter = model_server("gen4-3phase")  # ET55: D.O.S. timers off as shipped
    model = model_of(meter)
    start = model._et55_a() + 41
    client = logged_on(server)
    for _ in range(140):  # 700 s of traffic every 5 s
        client.now += 5
        read(client, TableId.BT01)
    assert state_of(server) is SessionState.SESSION
    et55 = model.table(TableId.ET55)
    assert et55 is not None
    # Enable the timer with 60 s / 30 s over the optical port itself (MK writes ET55).
    client.request(security_request(DEFAULT_MK))
    block = bytes([0x01]) + (60).to_bytes(2, "little") + (30).to_bytes(2, "little")
    write = write_request(WriteRequest(table_id=TableId.ET55, offset=start, data=block))
    assert client.request(write) == OK
    assert model.optical_settings().session_timeout_s == 60
    # The session has lasted 700 s already: the meter ends it at once and holds off 30 s.
    server.poll(client.now)
    assert state_of(server) is SessionState.BASE
    assert server.held_off_for(client.now) == pytest.approx(30)
    client = logged_on(server, now=client.now + 30)
    for _ in range(11):
        client.now += 5
        assert read(client, TableId.BT01)[:1] == OK
    client.now += 5
    server.poll(client.now)
    assert state_of(server) is SessionState.BASE
    # The "Disable Optical Port" bit: silence.
    model.write(TableId.ET55, start, bytes([0x02]))
    client.now += 31
    assert not server.listening(client.now)
    assert client.feed(client.packet(ident_request())).acks == 0


def test_failed_login_lockout_from_firmware_4_30() -> None:
    server, meter = model_server("gen4-3phase")
    model_of(meter).write(TableId.ET55, 22, bytes([3, 2]))  # 3 failures, 2 minutes
    client = logged_on(server, key=None)
    for _ in range(3):
        assert client.request(security_request(WRONG)) == ISC
    assert server.counters.lockouts == 1
    assert client.request(security_request(DEFAULT_MK)) == ONP
    client.request(logoff_request())
    assert client.request(logon_request(1, "x")) == ONP
    assert server.locked_out_for(client.now) == pytest.approx(120)
    client.now += 119  # the line fell back to base meanwhile: start again
    assert client.request(ident_request())[:1] == OK
    assert client.request(logon_request(1, "x")) == ONP
    client.now += 1
    assert client.request(logon_request(1, "x")) == OK
    assert client.request(security_request(DEFAULT_MK)) == OK


def test_no_lockout_before_firmware_4_30() -> None:
    server, meter = model_server("gen3-1phase")
    model_of(meter).write(TableId.ET55, 22, bytes([1, 5]))
    client = logged_on(server, key=None)
    for _ in range(3):
        assert client.request(security_request(WRONG)) == ISC
    assert client.request(security_request(DEFAULT_MK)) == OK


def test_service_words() -> None:
    assert Service.SECURITY.describe()
    assert Packet(b"\x20", False).to_bytes().hex() == "ee000000000120" + "1310"
