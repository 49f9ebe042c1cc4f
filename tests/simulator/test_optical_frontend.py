"""The optical port over a real TCP socket and a real pty: sessions, faults, the shared UART,
and ``mepgate simulate --interface optical|both`` as a user runs it."""

from __future__ import annotations

import select
import subprocess
from collections.abc import Callable, Iterator

import pytest

from mepgate.c1218.services import (
    decode_read_response,
    ident_request,
    logoff_request,
    logon_request,
    negotiate_request,
    security_request,
    terminate_request,
)
from mepgate.proto import AccessLevel, ReadRequest, ResponseCode
from mepgate.simulator.meter import DEFAULT_MK, DEFAULT_RK
from mepgate.simulator.model import model_of
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.serve.probe import LineProbe
from mepgate.simulator.timing import WireTiming
from mepgate.tables.ids import TableId

from ..conftest import FROZEN, SimulatorFactory
from .optical_helpers import LineClient
from .test_frontend_cli import MEPGATE, STARTUP

OK = bytes([ResponseCode.OK])
BT28_FULL = ReadRequest(table_id=TableId.BT28).to_bytes()[:3]  # C12.18: no count
BT01_FULL = ReadRequest(table_id=TableId.BT01).to_bytes()[:3]

Opener = Callable[[RunningSimulator], LineClient]


@pytest.fixture(params=["tcp", "pty"])
def line(request: pytest.FixtureRequest) -> Iterator[Opener]:
    probes: list[LineProbe] = []

    def open_line(sim: RunningSimulator) -> LineClient:
        where = sim.optical_url if request.param == "tcp" else sim.optical_device
        assert where is not None
        probe = LineProbe.open(where)
        probes.append(probe)
        return LineClient(probe)

    yield open_line
    for probe in probes:
        probe.close()


def start_session(client: LineClient, key: bytes = DEFAULT_RK) -> None:
    assert client.request(ident_request())[:1] == OK
    assert client.request(negotiate_request(1024, 8, (9600,)))[:1] == OK
    assert client.request(logon_request(1, "test")) == OK
    assert client.request(security_request(key)) == OK


def test_a_session_reads_the_model(simulator_factory: SimulatorFactory, line: Opener) -> None:
    sim = simulator_factory(profile="gen3-3phase", speed=FROZEN, interface="optical")
    client = line(sim)
    start_session(client)
    assert decode_read_response(client.request(BT28_FULL)) == sim.meter.model.table(TableId.BT28)
    assert client.request(logoff_request()) == OK
    assert client.request(terminate_request()) == OK
    assert sim.url == sim.optical_url  # optical only: url is the optical port


def test_a_paced_line_at_9600_baud(simulator_factory: SimulatorFactory) -> None:
    sim = simulator_factory(
        profile="gen4-3phase", speed=FROZEN, interface="optical", timing=WireTiming()
    )
    assert sim.optical_url is not None
    with LineProbe.open(sim.optical_url) as probe:
        client = LineClient(probe)
        start_session(client, DEFAULT_MK)
        got = decode_read_response(client.request(BT28_FULL))
    assert got == sim.meter.model.table(TableId.BT28)


def test_drop_and_corrupt_are_survived(simulator_factory: SimulatorFactory) -> None:
    sim = simulator_factory(
        profile="gen3-1phase",
        speed=FROZEN,
        interface="optical",
        faults="drop=0.2,corrupt=0.005,seed=5",
    )
    assert sim.optical_url is not None
    expected = sim.meter.model.table(TableId.BT01)
    with LineProbe.open(sim.optical_url) as probe:
        client = LineClient(probe)
        start_session(client)
        for _ in range(8):
            assert decode_read_response(client.request(BT01_FULL)) == expected
    stats = sim.optical_port.stats
    assert stats.dropped + stats.corrupted > 0
    assert sim.optical_server is not None
    assert sim.optical_server.counters.resends > 0


def test_disabled_and_echo(simulator_factory: SimulatorFactory) -> None:
    sim = simulator_factory(profile="gen3-1phase", interface="optical", faults="disabled")
    assert sim.optical_url is not None
    with LineProbe.open(sim.optical_url) as probe:
        client = LineClient(probe, timeout=0.5)
        with pytest.raises(AssertionError, match="no response"):
            client.request(ident_request(), retries=1)
        sim.configure_faults("echo")
        probe.send(b"\xee\x00\x00\x00\x00\x01\x20\x13\x10")
        assert b"".join(chunk for _, chunk in probe.read_raw(0.3)).startswith(b"\xee")


def test_the_port_disabled_in_et55_is_silent(simulator_factory: SimulatorFactory) -> None:
    sim = simulator_factory(profile="gen4-3phase", interface="optical", speed=FROZEN)
    model = model_of(sim.meter)
    sim.call(lambda: model.write(TableId.ET55, model._et55_a() + 41, b"\x02"))
    assert sim.optical_url is not None
    with LineProbe.open(sim.optical_url) as probe:
        client = LineClient(probe, timeout=0.5)
        with pytest.raises(AssertionError, match="no response"):
            client.request(ident_request(), retries=1)


def test_both_interfaces_share_one_uart(simulator_factory: SimulatorFactory) -> None:
    sim = simulator_factory(profile="gen3-1phase", speed=FROZEN, interface="both")
    assert sim.url is not None
    assert sim.optical_url is not None
    key = sim.keys[AccessLevel.BASIC]
    read = ReadRequest(table_id=TableId.BT01).to_bytes()
    with LineProbe.open(sim.url) as mep, LineProbe.open(sim.optical_url) as optical_line:
        optical = LineClient(optical_line)

        def mep_read(seq: int) -> int:
            reply = mep.request(read, key=key, seq=seq, timeout=1.0)
            return reply.next_sequence if reply.next_sequence is not None else seq + 1

        seq = mep_read(1)
        seq = mep_read(seq)
        # The first optical packet is lost while the UART switches: NAK, then it works.
        assert optical.request(ident_request())[:1] == OK
        assert optical.naks == 1
        # MEP is still heard while the optical side is only identified; its reply shows on
        # the optical line too (the optical client skips it).
        seq = mep_read(seq)
        assert optical.request(logon_request(1, "x")) == OK
        assert optical.request(security_request(DEFAULT_RK)) == OK
        assert len(optical.skipped) > 0
        # In session: the MEP port hears nothing.
        with pytest.raises(Exception, match="no whole frame"):
            mep.request(read, key=key, seq=seq, timeout=0.5)
        assert optical.request(logoff_request()) == OK
        assert optical.request(terminate_request()) == OK
        seq = mep_read(seq + 1)
    assert sim.shared is not None
    assert sim.shared.switches >= 1


def test_both_is_refused_for_gen4(simulator_factory: SimulatorFactory) -> None:
    with pytest.raises(Exception, match="Gen 4 meters have separate ports"):
        simulator_factory(profile="gen4-3phase", interface="both")


# -- the command line --------------------------------------------------------------------------
@pytest.fixture
def simulate() -> Iterator[Callable[..., tuple[subprocess.Popen[str], list[str]]]]:
    running: list[subprocess.Popen[str]] = []

    def start(*args: str, lines: int = 1) -> tuple[subprocess.Popen[str], list[str]]:
        process = subprocess.Popen(
            [str(MEPGATE), "simulate", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running.append(process)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP)
        assert ready, "mepgate simulate printed nothing"
        # The endpoints are printed together: the first read may buffer them all.
        got = [process.stdout.readline().strip() for _ in range(lines)]
        return process, got

    yield start
    for process in running:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=10)


def test_cli_serves_the_optical_port(
    simulate: Callable[..., tuple[subprocess.Popen[str], list[str]]],
) -> None:
    process, (where,) = simulate(
        "--interface", "optical", "--tcp", "127.0.0.1:0", "--profile", "gen3-3phase",
        "--rk", "A-READ-ONLY-KEY-0001",
    )  # fmt: skip
    assert where.startswith("tcp://127.0.0.1:")
    with LineProbe.open(where) as probe:
        client = LineClient(probe)
        start_session(client, b"A-READ-ONLY-KEY-0001")
        assert decode_read_response(client.request(BT01_FULL))
    process.terminate()
    out, err = process.communicate(timeout=10)
    assert "RK: A-READ-ONLY-KEY-0001" in err
    assert "MEPGATE-DEMO-MK00000" in err
    assert "KEY" not in out


def test_cli_both_prints_mep_then_optical(
    simulate: Callable[..., tuple[subprocess.Popen[str], list[str]]],
) -> None:
    _, (mep, optical) = simulate(
        "--interface", "both", "--tcp", "127.0.0.1:0", "--profile", "gen3-1phase", lines=2
    )
    with LineProbe.open(optical) as probe:
        client = LineClient(probe)
        assert client.request(ident_request())[:1] == OK
        assert client.naks == 1  # the UART switched from MEP
    with LineProbe.open(mep) as probe:
        assert probe.request(
            ReadRequest(table_id=TableId.BT01).to_bytes(),
            key=b"MEPGATE-DEMO-MBK0000",
            seq=1,
            timeout=3.0,
        ).code in (ResponseCode.OK, ResponseCode.INVALID_SEQUENCE_NUMBER)


def test_cli_refuses_both_for_gen4() -> None:
    result = subprocess.run(
        [str(MEPGATE), "simulate", "--interface", "both", "--tcp", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "Gen 4 meters have separate ports" in result.stderr
    assert result.stdout == ""
