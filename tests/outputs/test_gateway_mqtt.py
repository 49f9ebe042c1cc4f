"""The real gateway process (``mepgate serve``) on a simulated meter, publishing to a real broker.

The other tests in this folder drive the publisher from readings; this one checks the whole
chain a user runs: poller -> validation -> hub -> MQTT, Home Assistant discovery for the
meter's device, state values equal to the simulator's ground truth, and the last will when
the process is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mepgate.config import write_secret_file
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import ground_truth, model_of

from ..conftest import FROZEN, SimulatorFactory
from ..support.gateway import free_port
from ..support.wait import until
from .support import Mosquitto, Recorder, home_assistant_verdicts, run, running

DISCOVERY = "homeassistant/sensor/+/+/config"


def test_the_real_gateway_publishes_discovery_and_true_states_and_its_last_will(
    broker: Mosquitto, simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(profile="gen4-3phase", speed=FROZEN)  # values hold still
    truth = sim.call(lambda: ground_truth(sim.meter, sim.meter.clock.origin))
    key_file = tmp_path / "mbk.txt"
    write_secret_file(key_file, DEFAULT_MBK.decode() + "\n")
    config = tmp_path / "mepgate.toml"
    config.write_text(
        f'[[meter]]\nname = "house"\nport = "{sim.url}"\nkey_file = "{key_file}"\n\n'
        f'[storage]\ntimezone = "UTC"\n\n[web]\nlisten = "127.0.0.1:{free_port()}"\n'
        'public_url = "http://mepgate.lan:8080/"\n\n'
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
                        recorder.last("mepgate/house/power") is not None
                        and recorder.last("mepgate/house/energy") is not None
                        and any(
                            m.topic.endswith("/energy_import/config") and m.payload
                            for m in recorder.on(DISCOVERY)
                        )
                    ),
                    what="discovery, power and energy states from the gateway",
                    timeout=30,
                )
                status = recorder.last("mepgate/status")
                assert status is not None
                assert status.payload == b"online"

                configs = [m for m in recorder.on(DISCOVERY) if m.payload]
                energy = [m.json() for m in configs if m.topic.endswith("/energy_import/config")]
                assert len(energy) == 1
                entity = energy[0]
                assert isinstance(entity, dict)
                assert entity["device_class"] == "energy"
                assert entity["unit_of_measurement"] == "kWh"
                assert entity["state_class"] == "total_increasing"
                device = entity["device"]
                assert isinstance(device, dict)
                assert device["manufacturer"]  # read from the meter (BT01)
                et03 = sim.call(lambda: model_of(sim.meter).table(0x0803)) or b""
                serial = et03.split(b"\0")[0].decode()  # the utility serial number (ET03)
                assert serial
                assert serial in device["model"]  # 2024.1 knows no device serial_number
                assert device["configuration_url"] == "http://mepgate.lan:8080/"
                verdicts = home_assistant_verdicts(configs)
                assert [(v["topic"], v["error"]) for v in verdicts if not v["accepted"]] == []

                power = recorder.last("mepgate/house/power")
                assert power is not None
                values = power.json()
                assert isinstance(values, dict)
                for n, phase in enumerate(truth.phases, start=1):
                    assert values[f"voltage_l{n}"] == phase.voltage_mv / 1000
                    assert values[f"current_l{n}"] == phase.current_ma / 1000
                    assert values[f"power_import_l{n}"] == phase.forward_active_power_w
                    assert values[f"power_export_l{n}"] == phase.reverse_active_power_w
                energy_state = recorder.last("mepgate/house/energy")
                assert energy_state is not None
                totals = energy_state.json()
                assert isinstance(totals, dict)
                assert totals["energy_import_wh"] == truth.forward_active_energy_wh
                assert totals["energy_export_wh"] == truth.reverse_active_energy_wh

                gateway.send_signal(signal.SIGKILL)
                gateway.wait(timeout=10)
                await until(
                    lambda: getattr(recorder.last("mepgate/status"), "payload", None) == b"offline",
                    what="the broker to publish the killed gateway's last will",
                    timeout=15,
                )
            finally:
                if gateway.poll() is None:
                    gateway.kill()
                    gateway.wait()
                assert gateway.stderr is not None
                log = gateway.stderr.read()
                assert DEFAULT_MBK.decode() not in log
                assert "Traceback" not in log

    run(scenario())
