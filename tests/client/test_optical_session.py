"""OpticalSession over a real TCP socket, with the small C12.18 meter of
test_optical_machine.py behind it: the driver, the session's reconnect and close, the trace."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from mepgate.c1218.keys import parse_password
from mepgate.cli.main import cli
from mepgate.client import MeterClient, MeterRefusedError
from mepgate.client.optical import OpticalSession, OpticalTiming
from mepgate.proto import ResponseCode
from mepgate.proto.procedures import EP39_POST_MEP_DATA
from mepgate.simulator.meter import DEFAULT_RK

from ..conftest import SimulatorFactory
from .test_optical_machine import PASSWORD, TABLE, Meter, services


async def serve(meter: Meter) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            answer = meter.hear(data)
            if answer:
                writer.write(answer)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"tcp://127.0.0.1:{port}"


def test_a_client_reads_over_the_optical_session_and_logs_off_at_close() -> None:
    meter = Meter(nak_first=True, echo=True)
    lines: list[str] = []

    def trace(direction: str, data: bytes) -> None:
        lines.append(f"{direction} {data.hex(' ')}")

    async def run() -> MeterClient:
        server, url = await serve(meter)
        async with server:
            session = OpticalSession(
                url, parse_password(PASSWORD.decode()), timing=OpticalTiming.fast(), trace=trace
            )
            async with MeterClient(session) as client:
                assert await client.read(28, offset=10, count=20) == TABLE[10:30]
                assert await client.read(28, offset=0, count=5) == TABLE[:5]
                assert client.max_read == (256 - 8) * 4 - 4
                assert client.security == "c12.18"
            return client

    client = asyncio.run(run())
    heard = services(meter)
    assert heard[:5] == ["Ident", "Negotiate", "Logon", "Security", "Read"]
    # (Between the reads: the session's attempt to learn the meter's optical timers, which
    # this toy meter cannot answer sensibly -- the defaults stay.)
    assert heard[-2:] == ["Logoff", "Terminate"]
    assert heard.count("Ident") == 1
    assert client.stats.sessions == 1
    assert client.stats.echoed_frames >= 1
    text = "\n".join(lines)
    assert ">> key hidden" in text
    assert PASSWORD.hex(" ") not in text
    assert PASSWORD.hex(" ")[:17] not in text
    assert PASSWORD.decode() not in repr(client)


def test_mep_only_options_with_the_optical_interface_are_usage_errors() -> None:
    env = {"MEPGATE_KEY": PASSWORD.decode()}
    for extra in (["--security", "tls"], ["--encrypt"], ["--enable", "dtr"], ["--key-id", "mak"]):
        result = CliRunner().invoke(
            cli, ["info", "--interface", "optical", "--port", "tcp://127.0.0.1:9", *extra], env=env
        )
        assert result.exit_code == 2, result.output
        assert "for the MEP port only" in result.output
    result = CliRunner().invoke(
        cli,
        ["info", "--port", "tcp://127.0.0.1:9", "--key", "ab" * 20],
        env={"MEPGATE_INTERFACE": "optical"},
    )
    assert result.exit_code == 2
    assert "hex:" in result.output
    assert "ab" * 20 not in result.output
    result = CliRunner().invoke(
        cli, ["doctor", "--interface", "optical", "--port", "tcp://127.0.0.1:9"], env={}
    )
    assert result.exit_code == 2
    assert "optical key" in result.output


def test_a_refusal_over_the_optical_port_is_explained_in_its_own_words(
    simulator_factory: SimulatorFactory,
) -> None:
    """The read-only key may not call procedures: the error speaks of the optical keys, not
    of the MEP port's access levels (MBK, MAK)."""
    sim = simulator_factory(profile="gen4-3phase", interface="optical")
    session = OpticalSession(
        sim.url or "", parse_password(DEFAULT_RK.decode()), timing=OpticalTiming.fast()
    )

    async def run() -> MeterRefusedError:
        async with MeterClient(session) as client:
            with pytest.raises(MeterRefusedError) as refused:
                await client.call(EP39_POST_MEP_DATA, b"\x0c")
            return refused.value

    error = asyncio.run(run())
    assert error.code == ResponseCode.ISC
    assert "insufficient security clearance" in str(error)
    assert "MBK" not in str(error)
    assert "MAK" not in str(error)
