"""``mepgate simulate`` as a user runs it: a subprocess, its first stdout line, signals."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mepgate.proto import ClientSequence, ReadRequest, Response, ResponseCode
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.serve.probe import LineProbe

MEPGATE = Path(sys.executable).with_name("mepgate")
BT01 = ReadRequest(table_id=0x0001).to_bytes()
STARTUP = 15.0


@pytest.fixture
def run_simulate() -> Iterator[list[subprocess.Popen[str]]]:
    running: list[subprocess.Popen[str]] = []
    yield running
    for process in running:
        if process.poll() is None:
            process.kill()
            process.wait()


def _start(running: list[subprocess.Popen[str]], *args: str) -> tuple[subprocess.Popen[str], str]:
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
    return process, process.stdout.readline().strip()


def _read_identity(where: str, key: bytes = DEFAULT_MBK) -> Response:
    """Read BT01, adopting the meter's sequence number from a 0x0C first."""
    with LineProbe.open(where) as probe:
        sequence = ClientSequence(1)
        reply = probe.request(BT01, key=key, seq=sequence.take(), timeout=3.0)
        if reply.next_sequence is not None:
            sequence.adopt(reply.next_sequence)
            reply = probe.request(BT01, key=key, seq=sequence.take(), timeout=3.0)
    return reply


def _stop(process: subprocess.Popen[str], signum: int) -> str:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    return stderr


def test_simulate_tcp_prints_the_bound_url_first(run_simulate: list[subprocess.Popen[str]]) -> None:
    process, first = _start(run_simulate, "--tcp", "127.0.0.1:0", "--no-timing", "--seed", "3")
    match = re.fullmatch(r"tcp://127\.0\.0\.1:(\d+)", first)
    assert match is not None
    assert int(match.group(1)) > 0
    reply = _read_identity(first)
    assert reply.code == ResponseCode.OK
    assert reply.data  # BT01, the manufacturer identification
    stderr = _stop(process, signal.SIGTERM)
    assert DEFAULT_MBK.decode() in stderr
    assert "MAK:" in stderr


def test_simulate_pty_prints_the_device_first(run_simulate: list[subprocess.Popen[str]]) -> None:
    process, first = _start(
        run_simulate,
        "--pty",
        "--baud",
        "115200",
        "--profile",
        "gen3-1phase",
        "--mbk",
        "0123456789ABCDEFGHIJ",
    )
    assert re.fullmatch(r"/dev/pts/\d+", first)
    assert os.path.exists(first)
    assert _read_identity(first, key=b"0123456789ABCDEFGHIJ").code == ResponseCode.OK
    assert _read_identity(first).code == ResponseCode.AUTHENTICATION_FAILURE  # not its key now
    stderr = _stop(process, signal.SIGINT)
    assert "0123456789ABCDEFGHIJ" in stderr


def test_simulate_help_documents_the_fault_grammar() -> None:
    result = subprocess.run(
        [str(MEPGATE), "simulate", "--help"], capture_output=True, text=True, check=True
    )
    for word in (
        "drop=P",
        "corrupt=P",
        "hear=P",
        "stall=S[@T]",
        "optical=",
        "reboot=",
        "echo",
        "wrongbaud",
        "disabled",
        "seed=N",
        "--tcp",
        "--pty",
        "--no-timing",
    ):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--tcp", "127.0.0.1:0", "--faults", "dorp=1"], "unknown fault 'dorp'"),
        (["--tcp", "127.0.0.1:0", "--mbk", "short"], "characters"),
        ([], "--tcp HOST:PORT and/or --pty"),
    ],
)
def test_simulate_usage_errors_exit_2(args: list[str], complaint: str) -> None:
    result = subprocess.run(
        [str(MEPGATE), "simulate", *args],
        capture_output=True,
        text=True,
        timeout=STARTUP,
        check=False,
    )
    assert result.returncode == 2
    assert complaint in result.stderr
