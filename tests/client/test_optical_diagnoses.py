"""Every optical ``doctor`` diagnosis provoked against the simulator and named: no answer,
echo, NAK storm, key refused, locked out (minutes left), optical port disabled, session timed
out and held off (seconds left), MEP traffic on a shared port.

Where a user would meet it at the command line, it is a real ``mepgate doctor --interface
optical`` process; where it needs the history of one client (a lockout another client
caused, a session the meter timed out), it is :func:`~mepgate.client.doctor.run_doctor` on
that client.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from mepgate.c1218.keys import parse_password
from mepgate.client import LinkTiming, MepSession, MeterClient
from mepgate.client.diagnosis import Diagnosis
from mepgate.client.doctor import run_doctor
from mepgate.client.errors import HeldOffError, LockedOutError
from mepgate.client.optical import OpticalSession, OpticalTiming
from mepgate.errors import MepgateError
from mepgate.proto import parse_key
from mepgate.simulator.meter import DEFAULT_MK, DEFAULT_RK
from mepgate.simulator.model import model_of
from mepgate.simulator.model.optical_port import (
    ET55_LOCKOUT_THRESHOLD,
    ET55_OPTICAL_FLAGS,
)
from mepgate.simulator.optical import OpticalServer
from mepgate.tables.ids import TableId

from .conftest import MBK_TEXT, Sim, StartSim

RK = DEFAULT_RK.decode()
MK = DEFAULT_MK.decode()
WRONG = "NOT-THE-METERS-KEY-0"
SHORT = ["--timeout", "0.2"]
"""A short response timeout: the simulator answers at once, so silence is known sooner."""


def doctor(port: str, key: str, *extra: str) -> tuple[int, str]:
    """``mepgate doctor --interface optical`` as a user runs it: exit code, stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "mepgate", "doctor", "--interface", "optical", "--port", port,
         *SHORT, *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "MEPGATE_KEY": key},
        timeout=120,
        check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert key not in done.stdout + done.stderr
    return done.returncode, done.stdout


def named(out: str) -> str:
    """The diagnosis in doctor's first line: ``link to ...: problem (nak-storm)``."""
    return out.splitlines()[0].rsplit("(", 1)[1].rstrip(")")


def server_of(sim: Sim) -> OpticalServer:
    server = sim.running.optical_server
    assert server is not None
    return server


def optical_client(port: str, key: str, timing: OpticalTiming | None = None) -> MeterClient:
    return MeterClient(
        OpticalSession(port, parse_password(key), timing=timing or OpticalTiming.fast())
    )


@pytest.mark.parametrize("fault", ["disabled", "stall=600"])
def test_no_answer(start_sim: StartSim, fault: str) -> None:
    sim = start_sim("gen3", interface="optical", faults=fault)
    code, out = doctor(sim.port("pty"), RK)
    assert code == 1
    assert named(out) == Diagnosis.NO_ANSWER.value
    assert "not a single byte came back" in out
    assert "aligned" in out  # the probe's position
    assert "disabled" in out  # a port disabled by the grid company is silent too


def test_a_port_disabled_in_et55_is_silent_and_named_with_no_answer(start_sim: StartSim) -> None:
    sim = start_sim("gen4", interface="optical")
    disable_in_et55(sim)
    code, out = doctor(sim.port("tcp"), MK)
    assert code == 1
    assert named(out) == Diagnosis.NO_ANSWER.value
    assert "disabled (ET55)" in out
    assert sim.running.call(lambda: server_of(sim).counters.ignored_bytes) > 0


def disable_in_et55(sim: Sim) -> None:
    """Set ET55's "Disable Optical Port" bit as the grid company would (over MEP)."""
    model = sim.model
    where = model._et55_a() + ET55_OPTICAL_FLAGS
    sim.running.call(lambda: model.write(TableId.ET55, where, b"\x02"))


def test_optical_port_disabled(start_sim: StartSim) -> None:
    """A meter whose disabled port still answers, and refuses every service."""
    sim = start_sim("gen4", interface="optical")
    disable_in_et55(sim)
    server = server_of(sim)
    sim.running.call(lambda: setattr(server, "refuse_when_disabled", True))
    code, out = doctor(sim.port("pty"), MK)
    assert code == 1
    assert named(out) == Diagnosis.OPTICAL_DISABLED.value
    assert 'has disabled the meter\'s optical port (ET55 "Disable Optical Port")' in out
    assert "Use the MEP port" in out


def test_echo(start_sim: StartSim) -> None:
    sim = start_sim("gen4", interface="optical", faults="echo")
    code, out = doctor(sim.port("tcp"), RK)
    assert code == 1
    assert named(out) == Diagnosis.ECHO.value
    assert "the probe echoes what it sends" in out
    assert sim.running.call(lambda: sim.running.optical_port.stats.echoed) > 0


def test_nak_storm(start_sim: StartSim) -> None:
    """Heavy damage to what the meter hears (a misaligned probe, sunlight): the meter NAKs
    the packets it gets damaged, and misses those whose start or length was hit.  Which of
    the two the doctor meets first depends on where the damage falls, so a few seeds; the
    doctor never calls such a line ok, and names the NAK storm whenever the meter NAKed."""
    verdicts = []
    for seed in range(1, 5):
        sim = start_sim("gen3", interface="optical", pty=False, faults=f"hear=0.3,seed={seed}")
        code, out = doctor(sim.port("tcp"), RK)
        assert code == 1
        verdicts.append(named(out))
        if named(out) == Diagnosis.NAK_STORM.value:
            assert "keeps answering our packets with NAK" in out
            assert "ambient light" in out
            assert server_of(sim).counters.bad_packets > 0  # read once the doctor is done
        assert sim.running.optical_port.stats.corrupted_heard > 0
    assert Diagnosis.NAK_STORM.value in verdicts
    problems = {Diagnosis.NAK_STORM, Diagnosis.NO_ANSWER, Diagnosis.NOISY, Diagnosis.GARBLED}
    assert set(verdicts) <= {d.value for d in problems}, verdicts


def test_a_lossy_line_is_noisy_and_its_rates_are_rates(start_sim: StartSim) -> None:
    """Lost response packets are asked for with NAKs, each a frame of its own: the doctor's
    loss and damage rates stay at most 100 % and say what share of our frames went
    unanswered or came back damaged."""
    sim = start_sim("gen4", interface="optical", pty=False, faults="drop=0.4,corrupt=0.005,seed=3")
    session = OpticalSession(
        sim.port("tcp"),
        parse_password(RK),
        timing=OpticalTiming.fast(),
        baud=38400,  # the simulator sends at once: a missing packet is waited for less
        packet_size=64,
        packets=1,
    )
    report = asyncio.run(run_doctor(MeterClient(session)))
    assert report.diagnosis is Diagnosis.NOISY
    assert sim.running.call(lambda: sim.running.optical_port.stats.dropped) > 10
    assert 0.1 < report.loss_rate <= 1.0
    assert 0.0 <= report.damage_rate <= 1.0
    stats = report.stats
    assert stats.timeouts <= stats.frames_sent
    loss = re.search(r"(\d+)% of requests got no answer", report.detail)
    assert loss is not None, report.detail
    assert int(loss.group(1)) == round(100 * report.loss_rate)


def test_key_refused(start_sim: StartSim) -> None:
    sim = start_sim("gen3", interface="optical")
    code, out = doctor(sim.port("pty"), WRONG)
    assert code == 1
    assert named(out) == Diagnosis.KEY_REFUSED.value
    for words in ("unique key (MK", "provisioning key (PK", "read-only key (RK", "hex:"):
        assert words in out
    assert sim.running.call(lambda: server_of(sim).counters.security_failures) == 1


def test_locked_out_with_the_minutes_left(start_sim: StartSim) -> None:
    """Firmware 4.30: the grid company sets a lockout (2 refused keys, 5 minutes) in ET55 --
    here over the optical port with the MK.  A poller that read those settings is locked out
    by someone else's wrong keys; it and a fresh doctor name the lockout, the poller with the
    minutes left."""
    sim = start_sim("gen4", interface="optical")
    assert sim.model.profile.meter.firmware >= "4.30"
    port = sim.port("tcp")
    poller = optical_client(port, MK)

    async def configure_and_read() -> None:
        async with poller:
            await poller.write(TableId.ET55, bytes([2, 5]), offset=ET55_LOCKOUT_THRESHOLD)
            await poller.read(TableId.BT28, offset=0, count=8)  # its timers are read now

    asyncio.run(configure_and_read())
    assert model_of(sim.meter).optical_settings().lockout_minutes == 5
    for _ in range(2):
        code, out = doctor(port, WRONG)
        assert named(out) == Diagnosis.KEY_REFUSED.value
    server = server_of(sim)
    assert sim.running.call(lambda: server.counters.lockouts) == 1
    left = sim.running.call(lambda: server.locked_out_for(time.monotonic()))
    assert 240 < left <= 300

    code, out = doctor(port, MK)  # the right key, in a fresh process
    assert code == 1
    assert named(out) == Diagnosis.LOCKED_OUT.value
    assert "too many refused keys" in out
    assert "set in ET55" in out

    async def poll_again() -> tuple[LockedOutError, Diagnosis, str]:
        try:
            await poller.read(TableId.BT28, offset=0, count=8)
        except LockedOutError as error:
            refused = error
        else:
            raise AssertionError("the locked-out meter let the poller in")
        report = await run_doctor(poller)
        return refused, report.diagnosis, report.detail

    refused, diagnosis, detail = asyncio.run(poll_again())
    assert "up to 5 minutes" in str(refused)
    assert refused.seconds_left == 300
    assert diagnosis is Diagnosis.LOCKED_OUT
    assert "locked out for 5 more minutes" in detail
    assert sim.running.call(lambda: server.counters.security_failures) == 2


def test_session_timed_out_and_held_off(start_sim: StartSim) -> None:
    """A Gen 3 meter whose optical session timeout the grid company set to 2 s (ET51), read
    with the RK, which may not read ET51: the client keeps C12.18's 600 s, the meter ends the
    session at 2 s and ignores the port for its hold-off (300 s); the client names it with
    the seconds left and does not knock meanwhile."""
    sim = start_sim("gen3", interface="optical", speed=1.0)  # the meter's timers run
    model = sim.model
    et51 = bytearray(sim.table(TableId.ET51))
    et51[0] |= 0x01  # Enable Optical D.O.S. Timer
    et51[4:6] = (2).to_bytes(2, "little")  # Optical Session Timeout
    et51[6:8] = (300).to_bytes(2, "little")  # Optical Session Hold-Off
    sim.running.call(lambda: model.write(TableId.ET51, 0, bytes(et51)))
    server = server_of(sim)
    client = optical_client(sim.port("pty"), RK)

    async def run() -> tuple[HeldOffError, Diagnosis, str]:
        async with client:
            await client.read(TableId.BT28, offset=0, count=8)
            await asyncio.sleep(2.6)  # past the meter's timeout, short of the 6 s idle end
            try:
                await client.read(TableId.BT28, offset=0, count=8)
            except HeldOffError as error:
                held = error
            else:
                raise AssertionError("the meter kept a session past its timeout")
            report = await run_doctor(client)
            return held, report.diagnosis, report.detail

    held, diagnosis, detail = asyncio.run(run())
    assert sim.running.call(lambda: server.counters.session_timeouts) == 1
    meter_left = sim.running.call(lambda: server.held_off_for(time.monotonic()))
    assert 290 < meter_left < 300
    assert held.diagnosis is Diagnosis.HELD_OFF
    # The session was seconds old: its silence was first taken for the line and asked again
    # (a few seconds of the fast timing) before the ignored Ident made it a hold-off.
    assert 290 < held.seconds_left <= 300
    assert f"held off for {held.seconds_left:.0f} s" in str(held)
    assert "session timeout" in str(held)
    assert diagnosis is Diagnosis.HELD_OFF
    assert "s more" in detail
    seconds = float(detail.rsplit("held off for ", 1)[1].split(" s more")[0])
    assert 290 < seconds <= 300  # rounded to the second


class MepPoller:
    """A MEP client reading BT23 without pause on its own thread (a gateway polling)."""

    def __init__(self, port: str) -> None:
        self.port = port
        self.reads = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        session = MepSession(self.port, parse_key(MBK_TEXT), timing=LinkTiming.fast())
        async with MeterClient(session) as client:
            while not self._stop.is_set():
                try:
                    await client.read(TableId.BT23, offset=0, count=8)
                    self.reads += 1
                except MepgateError:
                    self.failures += 1

    def __enter__(self) -> MepPoller:
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.reads < 5:
            assert time.monotonic() < deadline, "the MEP poller does not read"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_mep_traffic_on_a_shared_port(start_sim: StartSim) -> None:
    """A Gen 3 meter's one UART, a MEP poller busy on it: the optical doctor names the MEP
    traffic; once the poller stops, the optical port works."""
    sim = start_sim("gen3", interface="both")
    optical = sim.running.optical_url
    assert optical is not None
    with MepPoller(sim.port("tcp")) as poller:
        code, out = doctor(optical, RK)
        reads = poller.reads
    assert code == 1
    assert named(out) == Diagnosis.SHARED_PORT.value
    assert "a MEP device is using the meter's shared serial port" in out
    assert reads > 5
    code, out = doctor(optical, RK)
    assert code == 0, out
    assert named(out) == Diagnosis.OK.value
    assert sim.running.shared is not None
    assert sim.running.shared.switches >= 1
