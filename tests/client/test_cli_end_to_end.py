"""Every meter command end to end: real CLI parsing, a real pty and a real TCP port, the
simulator's Gen 3 and Gen 4 meter models, plain RC4, RC4-encrypted and TLS-required.

The model's clock is frozen, so whatever a command prints must equal the model's ground truth.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mepgate.cli.main import cli
from mepgate.client.planning import IDT_VERSION_OFFSET
from mepgate.simulator.model import nameplate
from mepgate.simulator.timing import WireTiming
from mepgate.tables.ids import TableId

from .conftest import MBK_TEXT, Sim, StartSim, expected_present

MODES = {
    "plain": ({}, []),
    "encrypted": ({}, ["--encrypt"]),
    "tls": ({"tls_required": True}, []),
}


@pytest.fixture(params=["tcp", "pty"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["gen3", "gen4"])
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, env={"MEPGATE_KEY": MBK_TEXT})
    return result.exit_code, result.stdout, result.stderr


def check_info(sim: Sim, common: list[str], mode: str) -> None:
    code, out, err = invoke(["info", *common, "--json"])
    assert code == 0, err
    info = json.loads(out)
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
    assert info["clock"] == meter_clock.isoformat()  # BT52 is UTC, to the second
    assert info["security"] == ("tls" if mode == "tls" else "auto")


def check_read(sim: Sim, common: list[str]) -> None:
    code, out, err = invoke(["read", "BT28", *common, "--json"])
    assert code == 0, err
    readings = json.loads(out)["decoded"]["readings"]
    expected = expected_present(sim.truth())
    shown = {name: value for name, value in readings.items() if value is not None}
    assert len(shown) == sim.truth().number_of_present_values
    assert shown == {name: expected[name] for name in shown}
    bt28 = sim.table(TableId.BT28)
    for spelling in ("28", "0x001C", "bt28"):
        code, out, err = invoke(
            ["read", spelling, *common, "--offset", "8", "--count", "12", "--raw"]
        )
        assert code == 0, err
        assert bytes.fromhex(out.strip()) == bt28[8:20]
    code, out, err = invoke(["read", "2061", *common])  # ET13 by decimal id, text output
    assert code == 0, err
    assert out.startswith("ET13")
    assert f"{len(sim.table(TableId.ET13))} bytes" in out


def check_watch(sim: Sim, common: list[str]) -> None:
    code, out, err = invoke(["watch", *common, "--count", "2"])
    assert code == 0, err
    assert "Live values (update 2)" in out
    truth = sim.truth()
    for phase in truth.phases:
        assert f"{phase.voltage_mv / 1000:.3f}" in out
        assert f"{phase.current_ma / 1000:.3f}" in out
    assert f"{truth.frequency_mhz / 1000:.3f} Hz" in out


def check_dump(sim: Sim, common: list[str], target: Path) -> None:
    code, _, err = invoke(["dump", *common, "-o", str(target)])
    assert code == 0, err
    tables = json.loads(target.read_text())
    assert {"BT01", "BT21", "BT23", "BT28", "ET04", "ET11", "ET13", "BT07"} <= set(tables)
    assert "BT99" not in tables
    truth = sim.truth()
    assert tables["BT28"]["hex"] == sim.table(TableId.BT28).hex()
    assert tables["BT28"]["decoded"]["readings"]["frequency_mhz"] == truth.frequency_mhz
    unit = sim.model.dims.energy_register_unit
    total = tables["BT23"]["decoded"]["total_registers"]
    assert total["forward_active_energy_wh"] == truth.forward_active_energy_wh // unit * unit
    assert total["reverse_active_energy_wh"] == truth.reverse_active_energy_wh // unit * unit
    assert total["power_outage_count"] == truth.power_outage_count
    # The load profile and the event log decode too: the command reads BT61/BT71 itself.
    for name in ("BT62", "BT63", "BT64", "BT74"):
        assert "decoded" in tables[name], tables[name].get("decode_error")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds the meter's serial number


def check_call(sim: Sim, common: list[str]) -> None:
    def posts() -> int:
        return sim.running.call(lambda: sim.model.mep.posted.read_count or 0)

    before = posts()
    code, out, err = invoke(["call", "EP39", "00aabb", *common])  # scheduled read data
    assert code == 0, err
    assert out.startswith("EP39: result 0 (")
    assert posts() == before + 1
    assert sim.running.call(lambda: sim.model.mep.posted.data_area) == bytes.fromhex("aabb")


def check_doctor(sim: Sim, common: list[str], mode: str) -> None:
    code, out, err = invoke(["doctor", *common])
    assert code == 0, err
    assert "ok (ok)" in out
    bt01 = nameplate.bt01(sim.model.profile)
    assert f"meter: {bt01.manufacturer} {bt01.model} firmware {bt01.firmware}" in out
    assert f"security: {'tls' if mode == 'tls' else 'auto'}" in out


@pytest.mark.parametrize("command", ["info", "read", "watch", "dump", "call", "doctor"])
def test_command(
    start_sim: StartSim, transport: str, profile: str, mode: str, command: str, tmp_path: Path
) -> None:
    sim_options, flags = MODES[mode]
    sim = start_sim(profile, **sim_options)
    # The simulator runs without wire timing; the guide's pacing is kept where it is the point.
    pacing = [] if command == "watch" else ["--sim-timing"]
    common = ["--port", sim.port(transport), *flags, *pacing]
    if command == "info":
        check_info(sim, common, mode)
    elif command == "read":
        check_read(sim, common)
    elif command == "watch":
        check_watch(sim, common)
    elif command == "dump":
        check_dump(sim, common, tmp_path / "dump.json")
    elif command == "call":
        check_call(sim, common)
    else:
        check_doctor(sim, common, mode)


def test_the_installed_entry_point_and_exit_code(start_sim: StartSim) -> None:
    sim = start_sim("gen4")
    env = {**os.environ, "MEPGATE_KEY": MBK_TEXT}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mepgate.cli.main import main; main()",
            "read",
            "ET04",
            "--port",
            sim.port("tcp"),
            "--raw",
            "--offset",
            str(IDT_VERSION_OFFSET),
            "--count",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip(), 16) == sim.truth().idt_version


def test_usage_errors_exit_2_and_never_echo_the_key(start_sim: StartSim) -> None:
    sim = start_sim("gen4")
    code, _, _err = invoke(["read", "BT9999", "--port", sim.port("tcp")])
    assert code == 2
    result = CliRunner().invoke(
        cli,
        ["info", "--port", sim.port("tcp"), "--key", "3031323334353637383930313233343536373839"],
    )
    assert result.exit_code == 2
    assert "3031323334353637383930313233343536373839" not in result.output
    result = CliRunner().invoke(cli, ["info", "--port", sim.port("tcp")], env={"MEPGATE_KEY": ""})
    assert result.exit_code == 2
    assert "MEPGATE_KEY" in result.output


def test_trace_shows_frames_not_the_key(start_sim: StartSim) -> None:
    sim = start_sim("gen4", timing=WireTiming())  # paced bytes: the line delivers them in bits
    code, _, err = invoke(["read", "BT01", "--port", sim.port("pty"), "--trace", "--raw"])
    assert code == 0
    assert ">> 00 " in err
    assert "<< " in err
    # Whole frames, however the line delivered the bytes.
    for line in err.splitlines():
        direction, _, hex_text = line.partition(" ")
        assert direction in (">>", "<<"), line
        frame = bytes.fromhex(hex_text)
        assert int.from_bytes(frame[:2], "big") == len(frame) - 2, line
    assert MBK_TEXT not in err
    assert MBK_TEXT[:16].encode().hex(" ") not in err


def test_forcing_rc4_on_a_tls_required_meter_says_to_use_tls(start_sim: StartSim) -> None:
    sim = start_sim("gen4", tls_required=True)
    code, _, err = invoke(["info", "--port", sim.port("tcp"), "--security", "rc4", "--sim-timing"])
    assert code == 1
    assert "requires TLS-PSK" in err
    assert "--security auto" in err


@pytest.mark.parametrize("calls", [2, 10])
def test_procedure_calls_from_separate_processes_all_succeed(
    start_sim: StartSim, calls: int
) -> None:
    """Every process starts its procedure sequence number at 5; the meter refuses a repeat of
    its last one (0x04), so the second process must not fail where the first succeeded."""
    sim = start_sim("gen4", pty=False)
    for _ in range(calls):
        result = subprocess.run(
            [sys.executable, "-m", "mepgate", "call", "EP39", "0c", "--port", sim.port("tcp")],
            env={"MEPGATE_KEY": MBK_TEXT, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "result 0 (procedure completed)" in result.stdout
    assert sim.running.call(lambda: sim.running.port.stats.sessions) == calls


def test_dump_takes_a_list_of_tables_or_leaves_some_out(
    start_sim: StartSim, tmp_path: Path
) -> None:
    sim = start_sim("gen4")
    common = ["--port", sim.port("tcp"), "--sim-timing"]
    code, _, err = invoke(
        ["dump", *common, "-o", str(tmp_path / "a.json"), "--tables", "BT01,BT28"]
    )
    assert code == 0, err
    assert set(json.loads((tmp_path / "a.json").read_text())) == {"BT01", "BT28"}
    code, _, err = invoke(["dump", *common, "-o", str(tmp_path / "b.json"), "--skip", "BT64,BT23"])
    assert code == 0, err
    left = set(json.loads((tmp_path / "b.json").read_text()))
    assert "BT28" in left
    assert not {"BT64", "BT23"} & left


def test_dump_to_a_place_that_cannot_be_written_fails_before_reading(start_sim: StartSim) -> None:
    sim = start_sim("gen4")
    frames = sim.running.call(lambda: sim.running.port.stats.frames)
    code, _, err = invoke(["dump", "--port", sim.port("tcp"), "-o", "/proc/mepgate-dump.json"])
    assert code == 2
    assert "cannot write /proc/mepgate-dump.json" in err
    assert sim.running.call(lambda: sim.running.port.stats.frames) == frames  # nothing read
