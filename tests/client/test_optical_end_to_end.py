"""The meter commands over the optical port end to end: real ``mepgate`` processes with
``--interface optical``, a real pty and a real TCP port, the simulator's Gen 3 and Gen 4 meter
models served over C12.18, compared with the model's ground truth.

The model's clock is frozen, so whatever a command prints must equal the ground truth.  One
simulator per profile serves the whole module (its optical server takes one client at a time
on each line; every process ends its session with Logoff and Terminate).  The key changes with
the line: the read-only key (RK) and the unique key (MK), typed as their 20 characters or as
``hex:`` -- each command runs with both keys and both spellings over the four cases.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mepgate.c1218.states import SessionState
from mepgate.simulator.meter import DEFAULT_MK, DEFAULT_RK
from mepgate.simulator.model import build_meter, nameplate
from mepgate.simulator.serve import RunningSimulator
from mepgate.simulator.timing import WireTiming
from mepgate.tables.ids import TableId

from ..conftest import FROZEN, SIM_KEYS
from .conftest import PROFILES, Sim, expected_present

KEYS = {
    # (profile, transport): (key name, as typed)
    ("gen3", "tcp"): ("RK", DEFAULT_RK.decode()),
    ("gen3", "pty"): ("MK", "hex:" + DEFAULT_MK.hex()),
    ("gen4", "tcp"): ("MK", DEFAULT_MK.decode()),
    ("gen4", "pty"): ("RK", "hex:" + DEFAULT_RK.hex().upper()),
}
PROCESS_TIMEOUT = 120


@pytest.fixture(scope="module")
def optical_sims() -> Iterator[dict[str, Sim]]:
    started: dict[str, Sim] = {}
    try:
        for name, profile in PROFILES.items():
            meter = build_meter(
                profile,
                seed=1,
                start=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC),
                speed=FROZEN,
                origin=time.monotonic(),
                keys=SIM_KEYS,
            )
            running = RunningSimulator(
                meter,
                seed=1,
                keys=SIM_KEYS,
                timing=WireTiming(enabled=False),
                interface="optical",
            )
            running.start()
            started[name] = Sim(running)
        yield started
    finally:
        for sim in started.values():
            sim.running.stop()


def mepgate(args: list[str], key: str) -> subprocess.CompletedProcess[str]:
    """``mepgate ARGS`` as a user runs it, the key in the environment."""
    env = {**os.environ, "MEPGATE_KEY": key, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "mepgate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def run_ok(args: list[str], key: str) -> str:
    done = mepgate(args, key)
    assert done.returncode == 0, done.stderr
    assert key not in done.stdout + done.stderr
    return done.stdout


def check_info(sim: Sim, common: list[str], key: str) -> None:
    info = json.loads(run_ok(["info", *common, "--json"], key))
    truth = sim.truth()
    bt01 = nameplate.bt01(sim.model.profile)
    assert info["manufacturer"] == bt01.manufacturer
    assert info["model"] == bt01.model
    assert info["firmware"] == bt01.firmware
    assert info["utility_serial_number"] == sim.model.utility.utility_serial_number
    assert info["generation"] == sim.model.dims.generation
    assert info["idt_version"] == truth.idt_version
    assert info["present_values"] == truth.number_of_present_values
    meter_clock = truth.meter_clock.astimezone(dt.UTC).replace(microsecond=0)
    assert info["clock"] == meter_clock.isoformat()
    assert info["security"] == "c12.18"


def check_read(sim: Sim, common: list[str], key: str) -> None:
    truth = sim.truth()
    readings = json.loads(run_ok(["read", "BT28", *common, "--json"], key))
    assert bytes.fromhex(readings["hex"]) == sim.table(TableId.BT28)
    shown = {k: v for k, v in readings["decoded"]["readings"].items() if v is not None}
    expected = expected_present(truth)
    assert len(shown) == truth.number_of_present_values
    assert shown == {name: expected[name] for name in shown}
    registers = json.loads(run_ok(["read", "BT23", *common, "--json"], key))
    assert bytes.fromhex(registers["hex"]) == sim.table(TableId.BT23)
    total = registers["decoded"]["total_registers"]
    unit = sim.model.dims.energy_register_unit
    assert total["forward_active_energy_wh"] == truth.forward_active_energy_wh // unit * unit
    assert total["reverse_active_energy_wh"] == truth.reverse_active_energy_wh // unit * unit
    assert total["power_outage_count"] == truth.power_outage_count
    # A partial read by another spelling of the table, in the raw output form.
    raw = run_ok(["read", "0x001C", *common, "--offset", "8", "--count", "12", "--raw"], key)
    assert bytes.fromhex(raw.strip()) == sim.table(TableId.BT28)[8:20]


def check_watch(sim: Sim, common: list[str], key: str) -> None:
    out = run_ok(["watch", *common, "--count", "2"], key)
    assert "Live values (update 2)" in out
    truth = sim.truth()
    for phase in truth.phases:
        assert f"{phase.voltage_mv / 1000:.3f}" in out
        assert f"{phase.current_ma / 1000:.3f}" in out
    assert f"{truth.frequency_mhz / 1000:.3f} Hz" in out


def check_dump(sim: Sim, common: list[str], key: str, key_name: str, target: Path) -> None:
    done = mepgate(["dump", *common, "-o", str(target)], key)
    assert done.returncode == 0, done.stderr
    tables = json.loads(target.read_text())
    assert {"BT01", "BT21", "BT23", "BT28", "ET04", "ET11", "ET13", "ET55"} <= set(tables)
    truth = sim.truth()
    for table in (TableId.BT01, TableId.BT23, TableId.BT28, TableId.ET13):
        assert tables[table.name]["hex"] == sim.table(table).hex(), table.name
    assert tables["BT28"]["decoded"]["readings"]["frequency_mhz"] == truth.frequency_mhz
    for name in ("BT62", "BT63", "BT64", "BT74", "ET55"):
        assert "decoded" in tables[name], tables[name].get("decode_error")
    # ET55 as long as the meter has it (firmware 4 added the optical port's settings).
    assert tables["ET55"]["hex"] == sim.table(TableId.ET55).hex()
    # The read-only key may not read ET51 (optical guide, ET51: "Read access: MK, PK"): the
    # dump leaves it out; the unique key reads it where the meter has it (Gen 2/3).
    if key_name == "RK":
        assert "ET51" not in tables
    elif sim.model.dims.generation < 4:
        assert tables["ET51"]["hex"] == sim.table(TableId.ET51).hex()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def check_doctor(sim: Sim, common: list[str], key: str) -> None:
    out = run_ok(["doctor", *common], key)
    assert "(optical port): ok (ok)" in out
    bt01 = nameplate.bt01(sim.model.profile)
    assert f"meter: {bt01.manufacturer} {bt01.model} firmware {bt01.firmware}" in out
    assert "security: c12.18" in out
    assert "the meter answers on the optical port and accepts the key" in out


@pytest.mark.parametrize("transport", ["tcp", "pty"])
@pytest.mark.parametrize("profile", ["gen3", "gen4"])
@pytest.mark.parametrize("command", ["info", "read", "watch", "dump", "doctor"])
def test_command_over_the_optical_port(
    optical_sims: dict[str, Sim], profile: str, transport: str, command: str, tmp_path: Path
) -> None:
    sim = optical_sims[profile]
    key_name, key = KEYS[(profile, transport)]
    server = sim.running.optical_server
    assert server is not None
    sessions = sim.running.call(lambda: server.counters.sessions)
    # Over TCP the C12.18 timing as on a real probe (2 s response timeout, 20 ms turn-around);
    # over the pty the short waits for simulators (the simulator answers at once).
    pacing = ["--sim-timing"] if transport == "pty" else []
    common = ["--interface", "optical", "--port", sim.port(transport), *pacing]
    if command == "info":
        check_info(sim, common, key)
    elif command == "read":
        check_read(sim, common, key)
    elif command == "watch":
        check_watch(sim, common, key)
    elif command == "dump":
        check_dump(sim, common, key, key_name, tmp_path / "dump.json")
    else:
        check_doctor(sim, common, key)
    counters = sim.running.call(lambda: server.counters)
    assert counters.sessions > sessions  # it really went through C12.18 sessions
    assert counters.security_failures == 0
    # Every process logged off and terminated: the port is back in its base state (once the
    # simulator has taken in the ACK of the Terminate response).
    deadline = time.monotonic() + 2.0
    while sim.running.call(lambda: server.state) is not SessionState.BASE:
        assert time.monotonic() < deadline, "the last session was not ended"
        time.sleep(0.02)
