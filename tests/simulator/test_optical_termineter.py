"""The optical simulator checked against an independent C12.18 client: termineter's ``c1218``.

termineter (BSD) is a C12.18/C12.19 toolkit written without reference to mepgate; its
``c1218.connection.Connection`` opens a pyserial URL (``socket://HOST:PORT`` or a device path),
sends Ident and Negotiate (``start``), Logon and Security (``login``), full and partial reads
(``get_table_data``) and Logoff, acknowledging every response packet.  If our server and its
client disagreed about the link or the services, these tests would fail.

What termineter does that a strict reading of C12.18 might not (the simulator tolerates each,
as a real meter does):

* its first packet carries toggle 0 and it flips per packet (the server accepts either start);
* it pads a password shorter than 20 bytes with 0x00 (our keys are 20 characters: no padding);
* after Logoff it forgets the session and its ``stop`` sends no Terminate: the meter falls back
  to the base state after the channel traffic timeout instead;
* it caches BT00/BT01 after the first read (reads here turn the cache off).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from mepgate.proto import AccessLevel, ReadRequest
from mepgate.simulator.meter import DEFAULT_MK, DEFAULT_RK
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.serve.probe import LineProbe
from mepgate.tables.ids import TableId

from ..conftest import FROZEN, SimulatorFactory

c1218_connection = pytest.importorskip("c1218.connection")
c1218_errors = pytest.importorskip("c1218.errors")

T = TypeVar("T")
CLIENT_TIMEOUT = 60.0
TABLES = (TableId.BT00, TableId.BT01, TableId.BT28, TableId.BT23)


def in_thread(work: Callable[[], T]) -> T:
    """Run blocking termineter code in a thread, so a hung read fails the test instead of
    hanging it (termineter's serial reads have no timeout)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(CLIENT_TIMEOUT)
    if thread.is_alive():
        raise AssertionError("termineter got no answer (it is still waiting)")
    if failure:
        raise failure[0]
    return result[0]


@pytest.fixture(params=["tcp", "pty"])
def optical(request: pytest.FixtureRequest, simulator_factory: SimulatorFactory) -> Iterator[str]:
    """A Gen 3 model meter served on its optical port; the URL termineter opens."""
    sim = simulator_factory(profile="gen3-3phase", speed=FROZEN, interface="optical")
    request.node.sim = sim
    if request.param == "tcp":
        assert sim.optical_url is not None
        yield "socket://" + sim.optical_url.removeprefix("tcp://")
    else:
        assert sim.optical_device is not None
        yield sim.optical_device


def connect(url: str, **settings: int) -> Any:
    connection = c1218_connection.Connection(
        url, c1218_settings=settings or {"pktsize": 1024, "nbrpkts": 8}, enable_cache=False
    )
    if url.startswith("/dev/"):
        connection.serial_h.timeout = None
    return connection


def the_sim(request: pytest.FixtureRequest) -> RunningSimulator:
    sim: RunningSimulator = request.node.sim
    return sim


@pytest.mark.parametrize("key", [DEFAULT_RK, DEFAULT_MK], ids=["RK", "MK"])
def test_termineter_reads_what_the_meter_holds(
    optical: str, key: bytes, request: pytest.FixtureRequest
) -> None:
    sim = the_sim(request)
    model = sim.meter.model

    def session() -> dict[str, bytes]:
        conn = connect(optical)
        try:
            assert conn.start()
            assert conn.login(username="mepgate", userid=7, password=key.decode())
            got = {f"full {t}": bytes(conn.get_table_data(t)) for t in TABLES}
            got["part BT28"] = bytes(conn.get_table_data(TableId.BT28, 24, 8))
            got["part BT23"] = bytes(conn.get_table_data(TableId.BT23, 30, 100))
            assert conn.logoff()
            return got
        finally:
            conn.close()

    got = in_thread(session)
    for table in TABLES:
        assert got[f"full {table}"] == model.table(table), TableId(table).name
    bt28, bt23 = model.table(TableId.BT28), model.table(TableId.BT23)
    assert bt28 is not None
    assert bt23 is not None
    assert got["part BT28"] == bt28[8:32]
    assert got["part BT23"] == bt23[100:130]
    assert sim.optical_server is not None
    assert sim.optical_server.counters.security_failures == 0


def test_termineter_and_the_mep_port_get_the_same_bytes(
    simulator_factory: SimulatorFactory,
) -> None:
    """A meter on both interfaces (Gen 3, one UART): the optical read equals the MEP read."""
    sim = simulator_factory(profile="gen3-1phase", speed=FROZEN, interface="both")
    assert sim.url is not None
    assert sim.optical_url is not None
    probe = LineProbe.open(sim.url)
    try:
        reply = probe.request(
            ReadRequest(table_id=TableId.BT28).to_bytes(),
            key=sim.keys[AccessLevel.BASIC],
            seq=1,
        )
        if reply.next_sequence is not None:
            reply = probe.request(
                ReadRequest(table_id=TableId.BT28).to_bytes(),
                key=sim.keys[AccessLevel.BASIC],
                seq=reply.next_sequence,
            )
        mep_bytes = reply.data
    finally:
        probe.close()
    url = "socket://" + sim.optical_url.removeprefix("tcp://")

    def session() -> bytes:
        conn = connect(url)
        try:
            assert conn.start()  # its first Ident is lost while the UART switches: NAK, resend
            assert conn.login(password=DEFAULT_RK.decode())
            data = bytes(conn.get_table_data(TableId.BT28))
            conn.logoff()
            return data
        finally:
            conn.close()

    assert in_thread(session) == mep_bytes
    assert sim.shared is not None
    assert sim.shared.switches == 1


def test_termineter_wrong_password_is_refused(optical: str, request: pytest.FixtureRequest) -> None:
    sim = the_sim(request)

    def session() -> tuple[bool, int]:
        conn = connect(optical)
        try:
            conn.start()
            refused = conn.login(password="NOT-THE-METERS-KEY00")
            try:
                conn.get_table_data(TableId.BT28)
            except c1218_errors.C1218ReadTableError as error:
                return refused, int(error.code)
            return refused, 0
        finally:
            conn.close()

    logged_on, code = in_thread(session)
    assert logged_on is False
    assert code == 3  # isc: logged on without a key, BT28 needs one
    assert sim.optical_server is not None
    assert sim.optical_server.counters.security_failures == 1
