"""M-Bus sub-meters end to end: a simulated meter with gas, water and heat sub-meters, the
real ``mepgate serve`` process, a real Mosquitto and the HTTP API.

Values equal the simulator's ground truth in the API and on MQTT; Home Assistant 2024.1's own
schemas accept the discovery (one device per sub-meter, via the electricity meter); a device
that stops answering is announced unavailable on MQTT while its state keeps the last value.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from mepgate.config import MqttConfig, write_secret_file
from mepgate.outputs.mqtt import MqttPublisher
from mepgate.service.view import GatewayView
from mepgate.simulator.meter import DEFAULT_MBK
from mepgate.simulator.model import ground_truth, model_of

from ..conftest import FROZEN, SimulatorFactory
from ..service.test_gateway import gateway_for, meter, settings_with
from ..support.gateway import free_port
from ..support.wait import until
from .support import Mosquitto, Recorder, home_assistant_verdicts, run, running

DISCOVERY = "homeassistant/sensor/+/+/config"
EXPECTED = {  # medium -> (device class, unit)
    "gas": ("gas", "m³"),
    "water": ("water", "m³"),
    "heat": ("energy", "kWh"),
}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_serve_publishes_sub_meters_equal_to_ground_truth_with_valid_discovery(
    broker: Mosquitto, simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(profile="gen4-3phase", speed=FROZEN, mbus=("gas", "water", "heat"))
    truth = sim.call(lambda: ground_truth(sim.meter, sim.meter.clock.origin)).mbus
    assert [t.medium for t in truth] == ["gas", "water", "heat"]
    key_file = tmp_path / "mbk.txt"
    write_secret_file(key_file, DEFAULT_MBK.decode() + "\n")
    port = free_port()
    config = tmp_path / "mepgate.toml"
    config.write_text(
        f'[[meter]]\nname = "house"\nport = "{sim.url}"\nkey_file = "{key_file}"\n\n'
        f'[storage]\ntimezone = "UTC"\n\n[web]\nlisten = "127.0.0.1:{port}"\n\n'
        f'[mqtt]\nurl = "{broker.url}"\npower_interval = 1\nenergy_interval = 1\n',
        encoding="utf-8",
    )
    web = f"http://127.0.0.1:{port}"

    def sub_configs(recorder: Recorder) -> list[Any]:
        return [m for m in recorder.on(DISCOVERY) if "_mbus" in m.topic and m.payload]

    async def scenario() -> None:
        recorder = Recorder(broker.port, ["mepgate/#", DISCOVERY], identifier="mbus-serve")
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
                        all(recorder.last(f"mepgate/house/mbus{t.slot}") for t in truth)
                        and len(sub_configs(recorder)) == len(truth)
                        and all(
                            getattr(recorder.last(f"mepgate/house/mbus{t.slot}/availability"),
                                    "payload", None) == b"online"
                            for t in truth
                        )
                    ),
                    what="the sub-meters' states, availability and discovery",
                    timeout=45,
                )  # fmt: skip
                # MQTT states equal the ground truth.
                for t in truth:
                    state = recorder.last(f"mepgate/house/mbus{t.slot}")
                    assert state is not None
                    payload = state.json()
                    assert isinstance(payload, dict)
                    assert payload["value"] == t.value
                    assert payload["unit"] == t.unit
                    assert payload["medium"] == t.medium
                    assert payload["identification"] == t.identification
                # Discovery: a device per sub-meter, via the meter, fit for the Energy dashboard.
                configs = sub_configs(recorder)
                meter_node = next(
                    m.json()["device"]["identifiers"][0]  # type: ignore[index]
                    for m in recorder.on(DISCOVERY)
                    if m.topic.endswith("/energy_import/config") and m.payload
                )
                by_medium = {}
                for message in configs:
                    entity = message.json()
                    assert isinstance(entity, dict)
                    medium = entity["object_id"].rsplit("_", 1)[1]
                    by_medium[medium] = entity
                assert set(by_medium) == set(EXPECTED)
                for medium, (device_class, unit) in EXPECTED.items():
                    entity = by_medium[medium]
                    assert entity["device_class"] == device_class
                    assert entity["unit_of_measurement"] == unit
                    assert entity["state_class"] == "total_increasing"
                    assert entity["device"]["via_device"] == meter_node
                    assert entity["device"]["identifiers"] != [meter_node]
                verdicts = home_assistant_verdicts(configs)
                assert [(v["topic"], v["error"]) for v in verdicts if not v["accepted"]] == []
                assert [(v["topic"], v["problems"]) for v in verdicts if v["problems"]] == []
                # The API: exactly the documented shape, values equal the ground truth.
                listed = await asyncio.to_thread(_get, f"{web}/api/v1/submeters?meter=house")
                assert [set(s) for s in listed] == [
                    {"meter", "slot", "identification", "manufacturer", "medium", "unit",
                     "value", "at", "available"}
                ] * len(truth)  # fmt: skip
                assert [
                    (s["slot"], s["medium"], s["value"], s["unit"], s["identification"],
                     s["manufacturer"], s["available"])
                    for s in listed
                ] == [
                    (t.slot, t.medium, t.value, t.unit, t.identification, t.manufacturer, True)
                    for t in truth
                ]  # fmt: skip
                history = await asyncio.to_thread(
                    _get, f"{web}/api/v1/submeters/house/1/history?resolution=raw"
                )
                assert [p["value"] for p in history["points"]] == [truth[0].value]
                metrics = await asyncio.to_thread(_text, f"{web}/metrics")
                assert (
                    f'mepgate_submeter_value{{identification="{truth[0].identification}",'
                    f'medium="gas",meter="house",slot="1",unit="m³"}} {truth[0].value}'
                ) in metrics
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
                assert "Traceback" not in log
                assert DEFAULT_MBK.decode() not in log

    run(scenario())


def test_a_sub_meter_that_stops_answering_is_unavailable_on_mqtt_not_zero(
    broker: Mosquitto, simulator_factory: SimulatorFactory, store_url: str, tmp_path: Path
) -> None:
    sim = simulator_factory(profile="gen3-3phase", speed=600.0, mbus=("gas", "water"))
    assert sim.url is not None
    settings = settings_with([meter("house", sim.url, poll_interval=0.5)], store_url)
    mqtt = MqttConfig(url=broker.url, power_interval=1, energy_interval=1)

    async def publish(view: GatewayView) -> None:
        await MqttPublisher(view, mqtt, data_dir=tmp_path, reconnect_initial=0.05).run()

    def availability(recorder: Recorder, slot: int) -> bytes | None:
        return getattr(recorder.last(f"mepgate/house/mbus{slot}/availability"), "payload", None)

    async def scenario() -> None:
        recorder = Recorder(broker.port, ["mepgate/#"], identifier="mbus-down")
        gateway = gateway_for(settings, tmp_path, mbus_check_interval=0.3, outputs=[publish])
        async with running(recorder.run()):
            await recorder.ready()
            async with gateway:
                await until(lambda: availability(recorder, 2) == b"online", what="water online")
                sim.call(lambda: model_of(sim.meter).stop_mbus_device(2))
                await until(
                    lambda: availability(recorder, 2) == b"offline",
                    what="water offline",
                    timeout=30,
                )
                last = sim.call(lambda: ground_truth(sim.meter, time.monotonic()).mbus[1])
                assert not last.responding
                state = recorder.last("mepgate/house/mbus2")
                assert state is not None
                payload = state.json()
                assert isinstance(payload, dict)
                assert payload["value"] == last.value > 0  # the last value read, not zero
                assert availability(recorder, 1) == b"online"  # the gas meter still answers

    run(scenario())
