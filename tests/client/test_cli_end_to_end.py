"""Every meter command end to end: real CLI parsing, a real pty and a real TCP port, the
simulated Gen 3 and Gen 4 meter, plain RC4, RC4-encrypted and TLS-required."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mepgate.cli.main import cli
from mepgate.tables.ids import TableId

from .conftest import MBK_TEXT, StartSim

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


@pytest.mark.parametrize("command", ["info", "read", "watch", "dump", "call", "doctor"])
def test_command(
    start_sim: StartSim, transport: str, profile: str, mode: str, command: str, tmp_path: Path
) -> None:
    sim_options, flags = MODES[mode]
    sim = start_sim(profile, **sim_options)
    # The simulator runs without wire timing; the guide's pacing is kept where it is the point.
    pacing = [] if command == "watch" else ["--sim-timing"]
    common = ["--port", sim.port(transport), *flags, *pacing]
    truth = sim.model.truth()
    if command == "info":
        code, out, err = invoke(["info", *common, "--json"])
        assert code == 0, err
        info = json.loads(out)
        assert info["manufacturer"] == "ELON"
        assert info["generation"] == (4 if profile == "gen4" else 3)
        assert info["utility_serial_number"] == "MEPGATE-0001"
        assert info["security"] == ("tls" if mode == "tls" else "auto")
    elif command == "read":
        code, out, err = invoke(["read", "BT28", *common, "--json"])
        assert code == 0, err
        decoded = json.loads(out)["decoded"]["readings"]
        assert decoded["forward_active_power_w"] == truth.forward_active_power_w
        assert decoded["rms_voltage_l3_mv"] == truth.rms_voltage_l3_mv
        for spelling in ("28", "0x001C", "bt28"):
            code, out, err = invoke(
                ["read", spelling, *common, "--offset", "0", "--count", "8", "--raw"]
            )
            assert code == 0, err
            assert bytes.fromhex(out.strip()) == sim.model.bt28_bytes()[:8]
        code, out, err = invoke(["read", "2061", *common])  # ET13 by decimal id, text output
        assert code == 0, err
        assert "ET13" in out
    elif command == "watch":
        code, out, err = invoke(["watch", *common, "--count", "2"])
        assert code == 0, err
        assert "L3" in out
        assert f"{(truth.rms_voltage_l1_mv or 0) / 1000:.3f}" in out
    elif command == "dump":
        target = tmp_path / "dump.json"
        code, _, err = invoke(["dump", *common, "-o", str(target)])
        assert code == 0, err
        tables = json.loads(target.read_text())
        assert {"BT01", "BT21", "BT28", "ET04", "ET11", "ET13"} <= set(tables)
        assert tables["BT28"]["hex"] == sim.model.bt28_bytes().hex()
        assert tables["BT28"]["decoded"]["readings"]["frequency_mhz"] == truth.frequency_mhz
        assert "BT07" in tables
        assert "BT99" not in tables
    elif command == "call":
        code, out, err = invoke(["call", "EP39", "00", *common])
        assert code == 0, err
        assert "EP39: result 0" in out
        assert sim.model.ep39_posts == [0]
    else:
        code, out, err = invoke(["doctor", *common])
        assert code == 0, err
        assert "ok (ok)" in out
        assert "ELON" in out
    assert TableId.BT28  # the tables above are the ids the decoders name


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
            "116",
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
    assert done.stdout.strip() == "07"


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
    sim = start_sim("gen4")
    code, _, err = invoke(["read", "BT01", "--port", sim.port("pty"), "--trace", "--raw"])
    assert code == 0
    assert ">> 00 " in err
    assert "<< " in err
    assert MBK_TEXT not in err
    assert MBK_TEXT[:16].encode().hex(" ") not in err
