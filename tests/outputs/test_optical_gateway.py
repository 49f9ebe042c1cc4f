"""``mepgate serve`` (a real process) with one MEP meter and one optical meter (ANSI C12.18
through the simulator's optical port) publishes both to a real Mosquitto: Home Assistant
discovery for two devices, and the optical meter's states equal to the simulator's ground
truth.  Nothing downstream of the client knows which port a reading came through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mepgate.config import write_secret_file
from mepgate.simulator.meter import DEFAULT_MBK, DEFAULT_RK
from mepgate.simulator.model import GroundTruth, ground_truth

from ..conftest import FROZEN, SimulatorFactory
from ..support.gateway import free_port
from ..support.wait import until
from .support import Mosquitto, Received, Recorder, home_assistant_verdicts, run, running

DISCOVERY = "homeassistant/sensor/+/+/config"


def _assert_states_are_true(recorder: Recorder, meter: str, truth: GroundTruth) -> None:
    power = recorder.last(f"mepgate/{meter}/power")
    assert power is not None
    values = power.json()
    assert isinstance(values, dict)
    for n, phase in enumerate(truth.phases, start=1):
        assert values[f"voltage_l{n}"] == phase.voltage_mv / 1000, (meter, n)
        assert values[f"current_l{n}"] == phase.current_ma / 1000, (meter, n)
        assert values[f"power_import_l{n}"] == phase.forward_active_power_w, (meter, n)
        assert values[f"power_export_l{n}"] == phase.reverse_active_power_w, (meter, n)
    energy = recorder.last(f"mepgate/{meter}/energy")
    assert energy is not None
    totals = energy.json()
    assert isinstance(totals, dict)
    assert totals["energy_import_wh"] == truth.forward_active_energy_wh
    assert totals["energy_export_wh"] == truth.reverse_active_energy_wh


def _device(message: Received) -> dict[str, object]:
    entity = message.json()
    assert isinstance(entity, dict)
    device = entity["device"]
    assert isinstance(device, dict)
    return device


def _energy_configs(recorder: Recorder) -> list[Received]:
    return [
        m for m in recorder.on(DISCOVERY) if m.topic.endswith("/energy_import/config") and m.payload
    ]


def test_serve_publishes_a_mep_and_an_optical_meter_with_discovery_and_true_states(
    broker: Mosquitto, simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    mep = simulator_factory(profile="gen4-3phase", seed=1, speed=FROZEN)
    optical = simulator_factory(profile="gen3-3phase", seed=2, speed=FROZEN, interface="optical")
    truths = {
        "house": mep.call(lambda: ground_truth(mep.meter, mep.meter.clock.origin)),
        "flat": optical.call(lambda: ground_truth(optical.meter, optical.meter.clock.origin)),
    }
    mbk, rk = tmp_path / "mbk.txt", tmp_path / "optical.txt"
    write_secret_file(mbk, DEFAULT_MBK.decode() + "\n")
    write_secret_file(rk, DEFAULT_RK.decode() + "\n")  # the read-only key, as users get it
    config = tmp_path / "mepgate.toml"
    config.write_text(
        f'[[meter]]\nname = "house"\nport = "{mep.url}"\nkey_file = "{mbk}"\n\n'
        f'[[meter]]\nname = "flat"\nport = "{optical.url}"\ninterface = "optical"\n'
        f'key_file = "{rk}"\n\n'
        f'[storage]\ntimezone = "UTC"\n\n[web]\nlisten = "127.0.0.1:{free_port()}"\n\n'
        f'[mqtt]\nurl = "{broker.url}"\npower_interval = 1\nenergy_interval = 1\n',
        encoding="utf-8",
    )

    async def scenario() -> None:
        recorder = Recorder(broker.port, ["mepgate/#", DISCOVERY])
        async with running(recorder.run()):
            await recorder.ready()
            gateway = subprocess.Popen(
                [sys.executable, "-m", "mepgate", "serve", "--config", str(config),
                 "--data-dir", str(tmp_path)],
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            try:
                await until(
                    lambda: (
                        all(
                            recorder.last(f"mepgate/{name}/{kind}") is not None
                            for name in truths
                            for kind in ("power", "energy")
                        )
                        and len(_energy_configs(recorder)) == 2
                    ),
                    what="discovery, power and energy states of both meters",
                    timeout=45,
                )
                devices = [_device(m) for m in _energy_configs(recorder)]
                assert len({str(d["identifiers"]) for d in devices}) == 2  # two devices
                assert sorted(str(d["name"]) for d in devices) == [
                    "Electricity meter flat",
                    "Electricity meter house",
                ]
                configs = [m for m in recorder.on(DISCOVERY) if m.payload]
                verdicts = home_assistant_verdicts(configs)
                assert [(v["topic"], v["error"]) for v in verdicts if not v["accepted"]] == []
                for name, truth in truths.items():
                    _assert_states_are_true(recorder, name, truth)
            finally:
                gateway.send_signal(signal.SIGTERM)
                try:
                    gateway.wait(timeout=20)
                finally:
                    if gateway.poll() is None:
                        gateway.kill()
                        gateway.wait()
                assert gateway.stderr is not None
                log = gateway.stderr.read()
                assert DEFAULT_MBK.decode() not in log
                assert DEFAULT_RK.decode() not in log
                assert "Traceback" not in log
            assert gateway.returncode == 0

    run(scenario())
    assert optical.call(lambda: optical.optical_port.server.counters.sessions) >= 1
