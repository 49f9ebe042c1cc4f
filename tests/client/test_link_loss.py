"""When the port goes away, and when someone else uses it: reconnecting with backoff, giving up
with :class:`PortUnavailableError`, and 0x0C storms from a second client on the same meter
ending in :class:`SequenceConflictError` and the advice to stop the other client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from mepgate.cli.main import cli
from mepgate.client import DASHBOARD_FIELDS, Backoff, LinkTiming, MepSession, MeterClient
from mepgate.client.diagnosis import Diagnosis
from mepgate.client.errors import SequenceConflictError
from mepgate.errors import PortBusyError
from mepgate.proto import parse_key
from mepgate.proto.sequence import WINDOW
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.serve.probe import LineProbe
from mepgate.simulator.timing import WireTiming
from mepgate.tables.ids import TableId
from mepgate.transport import Link, PortUnavailableError, open_link

from ..conftest import SIM_KEYS
from .conftest import MBK_TEXT, Sim, StartSim, mismatches

FAST = LinkTiming.fast()


def client_for(
    port: str,
    *,
    backoff: Backoff | None = None,
    link_factory: Callable[[], Awaitable[Link]] | None = None,
) -> MeterClient:
    session = MepSession(port, parse_key(MBK_TEXT), timing=FAST, link_factory=link_factory)
    return MeterClient(session, backoff=backoff)


# -- the port goes away ----------------------------------------------------------------------
def test_tcp_port_that_goes_away_and_comes_back_is_reconnected(start_sim: StartSim) -> None:
    sim = start_sim("gen4", pty=False)
    url = sim.port("tcp")
    address = urlsplit(url)
    restarted = RunningSimulator(
        sim.meter,
        keys=SIM_KEYS,
        timing=WireTiming(enabled=False),
        tcp=(address.hostname or "127.0.0.1", address.port or 0),
        pty=False,
    )

    def restart_later() -> None:
        time.sleep(0.6)  # a few failed attempts first
        restarted.start()

    async def run() -> MeterClient:
        backoff = Backoff(initial=0.1, maximum=0.2, attempts=20)
        async with client_for(url, backoff=backoff) as client:
            assert not mismatches(await client.read_present(DASHBOARD_FIELDS), sim.truth())
            sim.running.stop()  # the bridge goes away: the connection closes
            restarter = threading.Thread(target=restart_later)
            restarter.start()
            started = time.monotonic()
            values = await client.read_present(DASHBOARD_FIELDS)
            assert time.monotonic() - started >= 0.5
            restarter.join()
            assert not mismatches(values, Sim(restarted).truth())
            return client

    try:
        client = asyncio.run(run())
    finally:
        restarted.stop()
    assert client.stats.reconnects == 1


def test_a_pty_whose_master_closed_raises_port_unavailable_after_retrying(
    start_sim: StartSim,
) -> None:
    sim = start_sim("gen3", tcp=None)
    device = sim.port("pty")
    backoff = Backoff(initial=0.05, maximum=0.1, attempts=3)

    async def run() -> MeterClient:
        async with client_for(device, backoff=backoff) as client:
            await client.read(TableId.BT01, offset=0, count=4)
            sim.running.stop()  # the adapter is unplugged: the pty's master side closes
            started = time.monotonic()
            with pytest.raises(PortUnavailableError, match=r"went away|reading from .* failed"):
                await client.read(TableId.BT01, offset=0, count=4)
            assert time.monotonic() - started >= sum(backoff.delays())  # it did retry
            return client

    client = asyncio.run(run())
    assert client.stats.reconnects == 0
    info = CliRunner().invoke(cli, ["info", "--port", device], env={"MEPGATE_KEY": MBK_TEXT})
    assert info.exit_code == 1
    assert "dialout" in info.stderr  # what to check when a port cannot be opened


# -- another client on the port --------------------------------------------------------------
class InterleavedLink:
    """A :class:`Link` that lets another client take its turn before each of our frames."""

    def __init__(self, link: Link, other: Callable[[], Awaitable[object]]) -> None:
        self._link = link
        self._other = other
        self.port = link.port
        self.baud = link.baud

    async def write(self, data: bytes) -> None:
        await self._other()
        await self._link.write(data)

    async def read(self, timeout: float) -> bytes:
        return await self._link.read(timeout)

    async def close(self) -> None:
        await self._link.close()


def test_another_client_moving_the_counter_raises_sequence_conflict(start_sim: StartSim) -> None:
    sim = start_sim("gen4")

    async def run() -> None:
        async with client_for(sim.port("pty")) as other:

            async def other_reads() -> None:
                # More requests than the meter's sequence window is wide: our next number
                # is then behind the meter's, whatever we adopted last time.
                for _ in range(WINDOW + 1):
                    await other.read(TableId.BT01, offset=0, count=4)

            async def interleaved() -> Link:
                return InterleavedLink(await open_link(sim.port("tcp")), other_reads)

            client = client_for(sim.port("tcp"), link_factory=interleaved)
            async with client:
                with pytest.raises(SequenceConflictError) as raised:
                    await client.read(TableId.BT01, offset=0, count=4)
            assert raised.value.diagnosis is Diagnosis.SEQUENCE_CONFLICT
            assert "another MEP client is using the port" in str(raised.value)
            assert client.stats.sequence_resyncs > FAST.max_sequence_errors
            # Once alone on the port, the same client works again.
            async with client_for(sim.port("tcp")) as alone:
                await alone.read(TableId.BT01, offset=0, count=4)
                assert alone.stats.sequence_resyncs <= 1

    asyncio.run(run())


@pytest.fixture
def busy_other_client(start_sim: StartSim) -> Iterator[Sim]:
    """A second client hammering the meter through the pty while the test uses TCP."""
    sim = start_sim("gen3")
    stop = threading.Event()
    requests = []

    async def hammer() -> None:
        async with client_for(sim.port("pty")) as other:
            while not stop.is_set():
                await other.read(TableId.BT01, offset=0, count=4)
                requests.append(1)

    thread = threading.Thread(target=asyncio.run, args=(hammer(),))
    thread.start()
    while not requests:  # it is on the port
        time.sleep(0.01)
    try:
        yield sim
    finally:
        stop.set()
        thread.join(10)


def test_doctor_and_info_blame_another_client_on_repeated_0x0c(busy_other_client: Sim) -> None:
    # The guide's pacing (100 ms between requests) leaves the other client time to move the
    # meter's counter before each of our requests.
    args = ["--port", busy_other_client.port("tcp")]
    env = {"MEPGATE_KEY": MBK_TEXT}
    doctor = CliRunner().invoke(cli, ["doctor", *args], env=env)
    assert doctor.exit_code == 1
    assert f"problem ({Diagnosis.SEQUENCE_CONFLICT.value})" in doctor.stdout
    assert "another MEP client is using the port, or an optical-port session" in doctor.stdout
    info = CliRunner().invoke(cli, ["info", *args], env=env)
    assert info.exit_code == 1
    assert "another MEP client is using the port" in info.stderr


# -- a busy or refusing serial server --------------------------------------------------------
def test_a_second_client_on_a_busy_tcp_port_is_told_the_port_is_busy(start_sim: StartSim) -> None:
    sim = start_sim("gen4", pty=False)
    env = {"MEPGATE_KEY": MBK_TEXT}
    args = ["--port", sim.port("tcp"), "--timeout", "0.05"]
    with LineProbe.open(sim.port("tcp")):  # another client holds the serial server's port
        doctor = CliRunner().invoke(cli, ["doctor", *args], env=env)
        info = CliRunner().invoke(cli, ["info", *args], env=env)
    assert doctor.exit_code == 1
    assert "problem (port-busy)" in doctor.stdout
    assert "another client holds its port" in doctor.stdout
    assert info.exit_code == 1
    assert "busy" in info.stderr
    assert "Traceback" not in info.output + doctor.output
    refused = sim.running.call(lambda: sim.running.port.stats.refused)
    assert 2 <= refused <= 2 * (1 + 2)  # each command: the connect and its 2 reconnects at most


def test_a_server_that_accepts_and_closes_ends_a_request_after_bounded_reconnects() -> None:
    async def run() -> tuple[int, Exception]:
        accepted = 0

        async def close_at_once(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            writer.close()

        server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = client_for(
            f"tcp://127.0.0.1:{port}", backoff=Backoff(initial=0.01, maximum=0.02, attempts=3)
        )
        try:
            await client.connect()
            with pytest.raises(PortUnavailableError) as raised:
                await client.read(TableId.BT01)
        finally:
            await client.close()
            server.close()
        return accepted, raised.value

    accepted, error = asyncio.run(run())
    assert isinstance(error, PortBusyError)
    assert accepted == 1 + 3  # the first connection and three reconnects, then it gives up


def test_tcp_addresses_that_cannot_work_are_named_without_serial_port_advice() -> None:
    with socket.socket() as unused:  # a port nobody listens on: connection refused
        unused.bind(("127.0.0.1", 0))
        refused = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
        for port, words in [
            (refused, "connection refused"),
            ("tcp://127.0.0.1:99999", "from 1 to 65535"),
        ]:
            with pytest.raises(PortUnavailableError) as raised:
                asyncio.run(open_link(port))
            message = str(raised.value)
            assert words in message
            assert "dialout" not in message
            assert "serial/by-id" not in message
            assert "Errno" not in message


def test_connecting_an_open_client_again_keeps_its_one_connection(start_sim: StartSim) -> None:
    # A second connection of ours would find the serial server's port busy (the doctor run on
    # a client that was already reading did so).
    sim = start_sim("gen4", pty=False)

    async def run() -> bytes:
        async with client_for(sim.port("tcp")) as client:
            await client.connect()
            return await client.read(TableId.BT01, offset=0, count=4)

    assert len(asyncio.run(run())) == 4
    assert sim.running.call(lambda: sim.running.port.stats.refused) == 0
