"""The MQTT publisher against a real Mosquitto: discovery, states, availability, outage."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import SecretStr, ValidationError

from mepgate.config import ConfigError, Settings
from mepgate.config.settings import MqttConfig
from mepgate.outputs.discovery import (
    ENTITIES,
    ENTITY_KEYS,
    EVENT_ENTITY_KEY,
    check_disabled_entities,
    discovery_configs,
    present_entities,
    web_url,
)
from mepgate.outputs.mqtt import MqttPublisher
from mepgate.outputs.mqtt.connection import broker_of, client_for
from mepgate.outputs.mqtt.topics import Topics
from mepgate.outputs.prometheus import render_metrics
from mepgate.outputs.queue import Outbox
from mepgate.reading import TIERS, Reading, tier_energy_field

from ..support.gateway import FakeGateway, SimMeter
from ..support.wait import until
from .support import Mosquitto, Recorder, run, run_value, running

REPO = Path(__file__).resolve().parents[2]
MEPGATE = str(Path(sys.executable).with_name("mepgate"))


def _config(broker: Mosquitto, **options: object) -> MqttConfig:
    return MqttConfig.model_validate({"url": broker.url, **options})


def _publisher(gateway: FakeGateway, data_dir: Path) -> MqttPublisher:
    return MqttPublisher(
        gateway,
        gateway.mqtt,
        data_dir=data_dir,
        reconnect_initial=0.05,
        reconnect_max=0.3,
        diagnostics_interval=0.2,
    )


async def _subscribed(gateway: FakeGateway, tasks: list[asyncio.Task[None]]) -> None:
    await until(lambda: gateway.hub.subscribers > 0, what="publisher subscribed", tasks=tasks)


# -- discovery -----------------------------------------------------------------------------


def test_discovery_payloads_say_what_each_value_is(broker: Mosquitto, tmp_path: Path) -> None:
    """What each entity is announced as (whether Home Assistant accepts it is
    tests/outputs/test_home_assistant.py's question)."""
    run(_discovery(broker, tmp_path))


async def _discovery(broker: Mosquitto, tmp_path: Path) -> None:
    sim = SimMeter.build()
    gateway = FakeGateway(_config(broker), [sim.status()])
    recorder = Recorder(broker.port, ["homeassistant/#", "mepgate/#"])
    async with running(recorder.run(), _publisher(gateway, tmp_path).run()) as tasks:
        await _subscribed(gateway, tasks)
        reading, _ = sim.reading(0)
        gateway.hub.publish(reading)
        await until(
            lambda: len(recorder.on("homeassistant/sensor/+/+/config")) >= len(ENTITIES),
            what="every discovery config",
            tasks=tasks,
        )
    identity = sim.identity()
    node = f"mepgate_{identity.serial_number}"
    configs = {m.topic: m.json() for m in recorder.on("homeassistant/sensor/+/+/config")}
    assert set(configs) == {f"homeassistant/sensor/{node}/{e.key}/config" for e in ENTITIES}
    unique_ids = set()
    for topic, config in configs.items():
        assert isinstance(config, dict)
        key = topic.split("/")[3]
        assert config["unique_id"] == f"{node}_{key}"  # never changes: HA keys history on it
        unique_ids.add(config["unique_id"])
        assert config["value_template"] == f"{{{{ value_json.{key} }}}}"
        assert config["state_topic"] in {
            f"mepgate/house/{group}" for group in ("power", "energy", "diagnostics")
        }
        assert config["qos"] == 1
        # The serial is in the identifier and the model text: Home Assistant 2024.1 refuses
        # a device with "serial_number".  No configuration_url: the pages listen on
        # 127.0.0.1 (the default), which no other device can open.
        assert config["device"] == {
            "identifiers": [node],
            "name": "Electricity meter house",
            "manufacturer": "ELON",
            "model": f"{identity.model} (serial {identity.serial_number})",
            "sw_version": identity.firmware,
        }
        assert config["origin"]["name"] == "mepgate"
        assert config["availability_mode"] == "all"
        assert config["availability"] == [
            {"topic": "mepgate/status", "payload_available": "online",
             "payload_not_available": "offline"},
            {"topic": "mepgate/house/availability", "payload_available": "online",
             "payload_not_available": "offline"},
        ]  # fmt: skip
        # Entity ids come from the device and entity names: plain words make plain ids
        # (sensor.electricity_meter_house_power_net), no object_id is needed.
        assert re.fullmatch(r"[A-Z][a-z]*( [A-Za-z0-9]+)*", config["name"]), config["name"]
        assert "object_id" not in config
        if config.get("device_class") != "enum":
            assert isinstance(config.get("suggested_display_precision"), int), key
    assert len(unique_ids) == len(configs)

    def entity(key: str) -> dict[str, Any]:
        config = configs[f"homeassistant/sensor/{node}/{key}/config"]
        assert isinstance(config, dict)
        return config

    tiers = [f"energy_{d}_tier{t}" for d in ("import", "export") for t in TIERS]
    for key in ("energy_import", "energy_export", *tiers):
        assert entity(key)["device_class"] == "energy"
        assert entity(key)["unit_of_measurement"] == "kWh"
        assert entity(key)["state_class"] == "total_increasing"
        assert entity(key)["state_topic"] == "mepgate/house/energy"
        assert entity(key)["suggested_display_precision"] == 3
    for key in ("power_import", "power_export", "power_net", "power_import_l1",
                "power_export_l3", "power_net_l1", "power_net_l2", "power_net_l3"):  # fmt: skip
        assert (entity(key)["device_class"], entity(key)["unit_of_measurement"]) == ("power", "W")
        assert entity(key)["state_class"] == "measurement"
        assert entity(key)["suggested_display_precision"] == 0  # 1739 W, not 1739.0
    assert entity("energy_import_tier1")["name"] == "Energy import tier 1"
    assert entity("energy_export_tier4")["name"] == "Energy export tier 4"
    assert entity("power_import")["name"] == "Power import"
    assert entity("power_net")["name"] == "Power net"
    assert entity("power_net_l2")["name"] == "Power net L2"
    assert entity("power_import")["icon"] == "mdi:transmission-tower-import"
    assert entity("energy_export")["icon"] == "mdi:transmission-tower-export"
    assert entity("voltage_l2")["unit_of_measurement"] == "V"
    assert entity("voltage_l2")["suggested_display_precision"] == 1
    assert entity("current_l3")["unit_of_measurement"] == "A"
    assert entity("power_factor_l1")["device_class"] == "power_factor"
    assert "unit_of_measurement" not in entity("power_factor_l1")
    assert entity("frequency")["unit_of_measurement"] == "Hz"
    assert entity("reactive_power")["unit_of_measurement"] == "var"
    tariff = entity("tariff_tier")
    assert (tariff["device_class"], tariff["options"]) == ("enum", ["1", "2", "3", "4"])
    assert "state_class" not in tariff
    assert "unit_of_measurement" not in tariff
    assert tariff["icon"].startswith("mdi:")
    for key in ("link_quality", "reading_age"):
        assert entity(key)["entity_category"] == "diagnostic"
        assert entity(key)["state_class"] == "measurement"
    assert entity("reading_age")["device_class"] == "duration"
    counters = (
        "link_requests", "link_resends", "link_timeouts", "link_sequence_resyncs",
        "link_auth_failures", "link_digest_failures", "link_alerts", "readings_rejected",
    )  # fmt: skip
    for key in counters:  # diagnostic numbers without long-term statistics
        assert entity(key)["entity_category"] == "diagnostic", key
        assert "state_class" not in entity(key), key
        assert entity(key)["suggested_display_precision"] == 0, key
        assert entity(key)["icon"].startswith("mdi:"), key
    assert entity("link_auth_failures")["name"] == "Authentication failures"
    assert entity("link_sequence_resyncs")["name"] == "Sequence resyncs"
    # Availability: the gateway and the meter are both online (retained).
    assert recorder.last("mepgate/status") is not None
    assert recorder.last("mepgate/status").payload == b"online"  # type: ignore[union-attr]
    assert recorder.last("mepgate/house/availability").payload == b"online"  # type: ignore[union-attr]


def test_tier_entities_only_for_the_tiers_the_meter_reports() -> None:
    reading, _ = SimMeter.build().reading(0)
    everything = {e.key for e in present_entities(reading)}
    assert {f"energy_{d}_tier{t}" for d in ("import", "export") for t in TIERS} <= everything
    unread: dict[str, Any] = {
        tier_energy_field(d, t): None for d in ("forward", "reverse") for t in (3, 4)
    }
    two_tiers = dataclasses.replace(reading, **unread)
    keys = {e.key for e in present_entities(two_tiers)}
    assert everything - keys == {
        f"energy_{d}_tier{t}" for d in ("import", "export") for t in (3, 4)
    }


def test_discovery_republished_when_home_assistant_comes_online(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        sim = SimMeter.build()
        gateway = FakeGateway(_config(broker), [sim.status()])
        recorder = Recorder(broker.port, ["homeassistant/sensor/#"])
        async with running(recorder.run(), _publisher(gateway, tmp_path).run()) as tasks:
            await _subscribed(gateway, tasks)
            gateway.hub.publish(sim.reading(0)[0])
            await until(lambda: len(recorder.messages) >= len(ENTITIES), what="discovery")
            recorder.messages.clear()
            async with aiomqtt.Client("127.0.0.1", broker.port) as ha:
                await ha.publish("homeassistant/status", "online", qos=1)
            await until(
                lambda: len(recorder.on("homeassistant/sensor/#", live_only=True)) >= len(ENTITIES),
                what="discovery again after homeassistant/status online",
                tasks=tasks,
            )

    run(scenario())


def test_disabled_entities_are_removed_with_an_empty_retained_config(
    broker: Mosquitto, tmp_path: Path
) -> None:
    sim = SimMeter.build()
    node = f"mepgate_{sim.identity().serial_number}"

    async def run_once(**options: object) -> Recorder:
        gateway = FakeGateway(_config(broker, **options), [sim.status()])
        recorder = Recorder(broker.port, ["homeassistant/sensor/#"], identifier=str(options))
        async with running(recorder.run(), _publisher(gateway, tmp_path).run()) as tasks:
            await _subscribed(gateway, tasks)
            gateway.hub.publish(sim.reading(0)[0])
            await asyncio.sleep(0.5)
        return recorder

    async def scenario() -> None:
        await run_once()
        recorder = await run_once(disabled_entities=["reactive_power", "tariff_tier"])
        for key in ("reactive_power", "tariff_tier"):
            removal = recorder.last(f"homeassistant/sensor/{node}/{key}/config")
            assert removal is not None
            assert removal.payload == b""
            assert removal.retain or not removal.payload  # retained: HA finds it on restart
        assert recorder.last(f"homeassistant/sensor/{node}/power_import/config").payload  # type: ignore[union-attr]
        recorder = await run_once(discovery=False)
        removed = {m.topic for m in recorder.on("homeassistant/sensor/#") if m.payload == b""}
        assert removed >= {
            f"homeassistant/sensor/{node}/{e.key}/config"
            for e in ENTITIES
            if e.key not in {"reactive_power", "tariff_tier"}
        }
        # Nothing is left retained for Home Assistant to find.
        leftover = Recorder(broker.port, ["homeassistant/#"], identifier="leftover")
        async with running(leftover.run()):
            await asyncio.sleep(0.3)
        assert [m for m in leftover.messages if m.payload] == []

    run(scenario())


def test_disabled_entities_must_name_entities() -> None:
    """A typo in ``disabled_entities`` would disable nothing, silently: it is an error that
    names the key and lists the valid ones."""
    check_disabled_entities(Settings())  # no [mqtt] section
    check_disabled_entities(
        Settings(mqtt=MqttConfig(url="mqtt://localhost", disabled_entities=("reactive_power",)))
    )
    bad = MqttConfig(url="mqtt://localhost", disabled_entities=("reactive_power", "tarif_tier"))
    with pytest.raises(ConfigError) as raised:
        check_disabled_entities(Settings(mqtt=bad))
    named, _, valid = str(raised.value).partition(";")
    assert named == "mqtt.disabled_entities: no entity is called 'tarif_tier'"
    assert sorted(valid.split(": ", 1)[1].split(", ")) == sorted(ENTITY_KEYS | {EVENT_ENTITY_KEY})


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_serve_and_demo_exit_2_on_an_unknown_disabled_entity(tmp_path: Path, command: str) -> None:
    config = tmp_path / "mepgate.toml"  # demo reads <data dir>/mepgate.toml
    config.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:1"\ndisabled_entities = ["tarif_tier"]\n')
    options = ["--config", str(config)] if command == "serve" else []
    result = subprocess.run(
        [MEPGATE, command, *options, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "mqtt.disabled_entities: no entity is called 'tarif_tier'" in result.stderr
    assert "tariff_tier" in result.stderr
    assert "Traceback" not in result.stderr


# -- states --------------------------------------------------------------------------------


def test_states_equal_the_simulators_ground_truth(broker: Mosquitto, tmp_path: Path) -> None:
    run(_states(broker, tmp_path))


async def _states(broker: Mosquitto, tmp_path: Path) -> None:
    sim = SimMeter.build()
    gateway = FakeGateway(_config(broker), [sim.status()])
    recorder = Recorder(broker.port, ["mepgate/house/#"])
    truths = {}
    clock: dict[int, str] = {}
    publisher = _publisher(gateway, tmp_path)
    async with running(recorder.run(), publisher.run()) as tasks:
        await _subscribed(gateway, tasks)
        await recorder.ready()
        await until(lambda: publisher.stats.connected, what="publisher connected", tasks=tasks)
        for second in range(0, 185):  # three simulated minutes, one reading a second
            reading, truth = sim.reading(second)
            truths[reading.at.isoformat()] = truth
            clock[second] = reading.at.isoformat()
            gateway.hub.publish(reading)
            await asyncio.sleep(0.002)
        await until(
            lambda: len(recorder.on("mepgate/house/energy")) >= 4,
            what="energy messages at 0, 60, 120, 180 s",
            tasks=tasks,
        )
        await asyncio.sleep(0.2)
    energy = [m.json() for m in recorder.on("mepgate/house/energy")]
    power = [m.json() for m in recorder.on("mepgate/house/power")]
    assert [e["at"] for e in energy] == [clock[s] for s in (0, 60, 120, 180)]  # type: ignore[index]
    assert len(power) >= 10  # every 5 simulated seconds (coalesced if the broker lags)
    for message in energy:
        assert isinstance(message, dict)
        truth = truths[message["at"]]
        assert message["energy_import"] * 1000 == pytest.approx(truth.forward_active_energy_wh)
        assert message["energy_export"] * 1000 == pytest.approx(truth.reverse_active_energy_wh)
        assert message["energy_import_wh"] == truth.forward_active_energy_wh
        for tier, forward, reverse in zip(
            TIERS,
            truth.tier_forward_active_energy_wh,
            truth.tier_reverse_active_energy_wh,
            strict=True,
        ):
            assert message[f"energy_import_tier{tier}"] * 1000 == pytest.approx(forward)
            assert message[f"energy_export_tier{tier}"] * 1000 == pytest.approx(reverse)
    for message in power:
        assert isinstance(message, dict)
        truth = truths[message["at"]]
        electrical = truth.electrical
        assert message["power_import"] == electrical.forward_active_power_w
        assert message["power_export"] == electrical.reverse_active_power_w
        assert message["power_net"] == electrical.active_power_w
        assert message["frequency"] == truth.frequency_mhz / 1000
        assert message["reactive_power"] == electrical.reactive_power_var
        assert message["tariff_tier"] == truth.current_tier
        for n, phase in enumerate(truth.phases, start=1):
            assert message[f"power_import_l{n}"] == phase.forward_active_power_w
            assert message[f"power_export_l{n}"] == phase.reverse_active_power_w
            assert message[f"voltage_l{n}"] == phase.voltage_mv / 1000
            assert message[f"current_l{n}"] == phase.current_ma / 1000
            assert message[f"power_factor_l{n}"] == phase.power_factor_milli / 1000
            net = phase.forward_active_power_w - phase.reverse_active_power_w
            assert message[f"power_net_l{n}"] == net
    diagnostics = recorder.last("mepgate/house/diagnostics")
    assert diagnostics is not None
    values = diagnostics.json()
    assert isinstance(values, dict)
    assert values["link_requests"] == 10
    assert values["link_resends"] == 2
    assert values["link_quality"] == pytest.approx(100 * 10 / 12, abs=0.1)


def test_power_threshold_publishes_early_on_a_large_change(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        sim = SimMeter.build()
        gateway = FakeGateway(
            _config(broker, power_interval=60, power_threshold_w=500), [sim.status()]
        )
        recorder = Recorder(broker.port, ["mepgate/house/power"])
        first, _ = sim.reading(0)
        async with running(recorder.run(), _publisher(gateway, tmp_path).run()) as tasks:
            await _subscribed(gateway, tasks)
            await recorder.ready()
            gateway.hub.publish(first)
            await until(lambda: len(recorder.messages) == 1, what="first power", tasks=tasks)
            base = first.active_power_import_w or 0.0
            small = dataclasses.replace(
                first, at=first.at + dt.timedelta(seconds=1), active_power_import_w=base + 499
            )
            gateway.hub.publish(small)  # below the threshold: waits for the interval
            jump = dataclasses.replace(
                first, at=first.at + dt.timedelta(seconds=2), active_power_import_w=base + 2000
            )
            gateway.hub.publish(jump)
            await until(lambda: len(recorder.messages) == 2, what="early power", tasks=tasks)
            await asyncio.sleep(0.2)
        values = recorder.messages[-1].json()
        assert isinstance(values, dict)
        assert values["power_import"] == (first.active_power_import_w or 0.0) + 2000

    run(scenario())


# -- availability --------------------------------------------------------------------------


def test_availability_turns_offline_when_the_gateway_is_killed(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        recorder = Recorder(broker.port, ["mepgate/status", "mepgate/+/availability"])
        async with running(recorder.run()):
            await recorder.ready()
            gateway = subprocess.Popen(
                [sys.executable, "-m", "tests.outputs.gateway_process", broker.url,
                 str(tmp_path)],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
            try:
                await until(
                    lambda: (
                        [m.payload for m in recorder.on("mepgate/status")] == [b"online"]
                        and bool(recorder.on("mepgate/house/availability"))
                    ),
                    what="the gateway's online status",
                    timeout=20,
                )
                gateway.send_signal(signal.SIGKILL)
                gateway.wait(timeout=10)
                await until(
                    lambda: recorder.last("mepgate/status").payload == b"offline",  # type: ignore[union-attr]
                    what="the last will",
                )
            finally:
                if gateway.poll() is None:
                    gateway.kill()
                    gateway.wait()

    run(scenario())


def test_meter_availability_follows_the_link_without_a_reading(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        sim = SimMeter.build()
        gateway = FakeGateway(_config(broker, power_interval=1), [sim.status(connected=False)])
        recorder = Recorder(broker.port, ["mepgate/house/availability"])
        async with running(recorder.run(), _publisher(gateway, tmp_path).run()) as tasks:

            def availability() -> bytes | None:
                last = recorder.last("mepgate/house/availability")
                return None if last is None else last.payload

            await until(lambda: availability() == b"offline", what="offline", tasks=tasks)
            gateway.statuses = [sim.status(connected=True)]
            await until(lambda: availability() == b"online", what="online", tasks=tasks, timeout=3)

    run(scenario())


# -- values a meter does not have ----------------------------------------------------------


def _single_phase(reading: Reading, seconds: float) -> Reading:
    """``reading`` ``seconds`` later as a meter without L2, L3 and tiers 3 and 4 reports it
    (the poller's ``None``: not measured)."""
    gone: dict[str, Any] = {
        name: None
        for name in Reading.__dataclass_fields__
        if name.endswith(("_l2_w", "_l3_w", "_l2_v", "_l3_v", "_l2_a", "_l3_a", "_l2", "_l3"))
        or name.endswith(("tier3_wh", "tier4_wh"))
    }
    assert len(gone) == 14  # 5 values of L2 and of L3, 2 directions of tiers 3 and 4
    return dataclasses.replace(reading, at=reading.at + dt.timedelta(seconds=seconds), **gone)


def _phase_keys(keys: Any) -> set[str]:
    return {k for k in keys if k.endswith(("_l2", "_l3"))}


def _gone_keys(keys: Any) -> set[str]:
    return _phase_keys(keys) | {k for k in keys if k.endswith(("_tier3", "_tier4"))}


def test_values_a_meter_does_not_have_are_neither_announced_nor_published(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """A reading whose L2/L3 values and tiers 3 and 4 are ``None``: no entity and no state key
    for them; the entities announced while the meter reported them are removed (empty
    retained config) before the first power and energy states without them, so Home
    Assistant never reads a state that lacks an entity's key."""
    sim = SimMeter.build()
    node = f"mepgate_{sim.identity().serial_number}"
    full, _ = sim.reading(0)
    single = _single_phase(full, 5)
    gone = _gone_keys(ENTITY_KEYS)
    assert len(gone) == 12 + 4  # import, export, net, voltage, current, PF of L2, L3; tiers
    retained = Recorder(broker.port, ["homeassistant/#"], identifier="retained")

    async def scenario() -> Recorder:
        gateway = FakeGateway(_config(broker, power_interval=1), [sim.status()])
        recorder = Recorder(broker.port, ["homeassistant/#", "mepgate/#"])
        async with running(recorder.run(), _publisher(gateway, tmp_path).run()) as tasks:
            await _subscribed(gateway, tasks)
            await recorder.ready()
            gateway.hub.publish(full)
            await until(lambda: recorder.last("mepgate/house/power") is not None, tasks=tasks)
            gateway.hub.publish(single)  # 5 s later: power is due, energy (60 s) is not
            await until(
                lambda: all(
                    (last := recorder.last(f"mepgate/house/{group}")) is not None
                    and last.json()["at"] == single.at.isoformat()  # type: ignore[index]
                    for group in ("power", "energy")
                ),
                what="power and energy states of the reading without L2, L3, tiers 3 and 4",
                tasks=tasks,
            )
            assert render_metrics(gateway).count(b'phase="l2"') == 0  # Prometheus: absent too
        # What Home Assistant finds when it (re)starts: the removals were retained.
        async with running(retained.run()):
            await retained.ready()
            await until(lambda: bool(retained.messages), what="the retained configs")
            await asyncio.sleep(0.3)  # room for the rest of them
        return recorder

    recorder = run_value(scenario())
    messages = recorder.messages

    def config(key: str) -> list[int]:
        topic = f"homeassistant/sensor/{node}/{key}/config"
        return [i for i, m in enumerate(messages) if m.topic == topic]

    states = [
        (i, m.topic.rsplit("/", 1)[1], m.json())
        for i, m in enumerate(messages)
        if m.topic in ("mepgate/house/power", "mepgate/house/energy")
    ]

    def first(group: str, reading: Reading) -> int:
        at = reading.at.isoformat()
        return next(i for i, g, state in states if g == group and state["at"] == at)  # type: ignore[index]

    for key in gone:
        group = "energy" if "tier" in key else "power"
        announced, removed = config(key)  # once announced, once removed
        assert messages[announced].payload
        assert messages[removed].payload == b""
        assert announced < first(group, full)  # the entity before its first state...
        assert removed < first(group, single)  # ...and gone before the first without its key
    kept = {m.topic.split("/")[3] for m in retained.messages if m.payload}
    assert kept == (ENTITY_KEYS - gone) | {EVENT_ENTITY_KEY}  # the event entity stays
    for _, group, state in states:
        assert isinstance(state, dict)
        if state["at"] == single.at.isoformat():
            assert _gone_keys(state) == set()  # absent, not null
            if group == "power":
                assert state["voltage_l1"] == full.voltage_l1_v
            else:
                assert state["energy_import_tier2"] * 1000 == pytest.approx(
                    full.forward_active_energy_tier2_wh
                )
        else:
            assert _gone_keys(state) == {k for k in gone if ("tier" in k) == (group == "energy")}


def test_a_single_phase_meter_announces_and_publishes_l1_only(
    broker: Mosquitto, tmp_path: Path
) -> None:
    sim = SimMeter.build(profile="gen3-1phase")
    reading, truth = sim.reading(0)
    assert len(truth.phases) == 1

    async def scenario() -> Recorder:
        gateway = FakeGateway(_config(broker), [sim.status()])
        recorder = Recorder(broker.port, ["homeassistant/#", "mepgate/#"])
        async with running(recorder.run(), _publisher(gateway, tmp_path).run()) as tasks:
            await _subscribed(gateway, tasks)
            await recorder.ready()
            gateway.hub.publish(reading)
            await until(
                lambda: (
                    recorder.last("mepgate/house/power") is not None
                    and recorder.last("mepgate/house/energy") is not None
                ),
                what="power and energy states",
                tasks=tasks,
            )
        return recorder

    recorder = run_value(scenario())
    announced = {m.topic.split("/")[3] for m in recorder.on("homeassistant/sensor/+/+/config")}
    assert announced == ENTITY_KEYS - _phase_keys(ENTITY_KEYS)
    power = recorder.last("mepgate/house/power")
    assert power is not None
    values = power.json()
    assert isinstance(values, dict)
    assert _phase_keys(values) == set()
    assert values["voltage_l1"] == truth.phases[0].voltage_mv / 1000
    assert values["power_net_l1"] == (
        truth.phases[0].forward_active_power_w - truth.phases[0].reverse_active_power_w
    )


# -- diagnostics ---------------------------------------------------------------------------


def test_diagnostics_are_published_after_the_first_reading_and_every_power_interval(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Before its first reading a meter's link has no statistics; the diagnostics published
    then say nothing, so the first reading brings them at once (not a minute later, as the
    energy pace did), and then they follow the power interval."""
    sim = SimMeter.build()
    gateway = FakeGateway(
        _config(broker, power_interval=60, energy_interval=3600), [sim.status(link={})]
    )
    publisher = MqttPublisher(gateway, gateway.mqtt, data_dir=tmp_path, reconnect_initial=0.05)
    recorder = Recorder(broker.port, ["mepgate/house/diagnostics"])

    def quality() -> list[object]:
        return [m.json()["link_quality"] for m in recorder.messages]  # type: ignore[index]

    async def scenario() -> None:
        async with running(recorder.run(), publisher.run()) as tasks:
            await _subscribed(gateway, tasks)
            await until(lambda: quality() == [None], what="diagnostics at start", tasks=tasks)
            gateway.statuses = [sim.status()]  # the poller's first exchanges
            gateway.hub.publish(sim.reading(0)[0])
            await until(
                lambda: len(quality()) >= 2, what="diagnostics after the reading", tasks=tasks
            )

    run(scenario())
    assert quality()[1] == pytest.approx(100 * 10 / 12, abs=0.1)

    every_second = FakeGateway(_config(broker, power_interval=1, energy_interval=3600),
                               [sim.status()])  # fmt: skip
    publisher = MqttPublisher(every_second, every_second.mqtt, data_dir=tmp_path / "again")
    recorder = Recorder(broker.port, ["mepgate/house/diagnostics"], identifier="again")

    async def cadence() -> None:
        async with running(recorder.run(), publisher.run()) as tasks:
            await _subscribed(every_second, tasks)
            every_second.hub.publish(sim.reading(1)[0])
            await until(
                lambda: len(recorder.on("mepgate/house/diagnostics", live_only=True)) >= 4,
                what="diagnostics every power interval (1 s), not every energy interval (1 h)",
                tasks=tasks,
            )

    run(cadence())


# -- the web pages' address ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("web", "url"),
    [
        ({}, None),  # 127.0.0.1: only this machine could open it
        ({"listen": "0.0.0.0:8080"}, None),  # a wildcard names no address
        ({"listen": "[::]:8080"}, None),
        ({"listen": "localhost:8080"}, None),
        ({"listen": "192.0.2.7:8080"}, "http://192.0.2.7:8080/"),
        ({"listen": "[2001:db8::7]:8081"}, "http://[2001:db8::7]:8081/"),
        ({"listen": "mepgate.lan:80"}, "http://mepgate.lan:80/"),
        ({"listen": "0.0.0.0:8080", "public_url": "https://meter.example/mepgate/"},
         "https://meter.example/mepgate/"),
    ],
)  # fmt: skip
def test_configuration_url_is_the_public_url_or_an_address_other_devices_can_open(
    web: dict[str, str], url: str | None
) -> None:
    settings = Settings.model_validate({"web": web})
    assert web_url(settings.web) == url
    sim = SimMeter.build()
    configs = discovery_configs(
        sim.status(),
        sim.reading(0)[0],
        Topics.of(MqttConfig(url="mqtt://localhost")).states("house"),
        configuration_url=web_url(settings.web),
    )
    devices = [config["device"] for config in configs.values()]
    assert all(isinstance(d, dict) and d.get("configuration_url") == url for d in devices)


def test_public_url_must_be_a_web_address() -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings.model_validate({"web": {"public_url": "mepgate.lan:8080"}})


# -- store and forward ---------------------------------------------------------------------


def test_broker_down_ten_simulated_minutes_every_energy_message_once_in_order(
    broker: Mosquitto, tmp_path: Path
) -> None:
    run(_outage(broker, tmp_path))


async def _outage(broker: Mosquitto, tmp_path: Path) -> None:
    sim = SimMeter.build()
    gateway = FakeGateway(_config(broker), [sim.status()])
    recorder = Recorder(broker.port, ["mepgate/house/energy"])
    publisher = _publisher(gateway, tmp_path)
    expected: list[str] = []
    last: dt.datetime | None = None

    async def feed(start: int, stop: int) -> None:
        nonlocal last
        for second in range(start, stop, 10):
            reading, _ = sim.reading(second)
            if last is None or (reading.at - last).total_seconds() >= 60:
                expected.append(reading.at.isoformat())
                last = reading.at
            gateway.hub.publish(reading)
            await asyncio.sleep(0.005)

    def received() -> list[str]:
        return [m.json()["at"] for m in recorder.on("mepgate/house/energy", live_only=True)]  # type: ignore[index]

    async with running(recorder.run(), publisher.run()) as tasks:
        await _subscribed(gateway, tasks)
        await recorder.ready()
        await feed(0, 120)
        await until(lambda: len(received()) == 2, what="energy before the outage", tasks=tasks)
        # ...and acknowledged: a message still unacknowledged when the broker goes is kept in
        # the outbox (at least once), which would make the count below one more.
        before = publisher.outbox
        assert before is not None
        await until(lambda: len(before) == 0, what="the broker's acknowledgements", tasks=tasks)

        broker.stop()
        await until(lambda: not publisher.stats.connected, what="disconnect", tasks=tasks)
        await feed(120, 720)  # ten simulated minutes without a broker
        outbox = publisher.outbox
        assert outbox is not None
        assert await asyncio.to_thread(len, outbox) == 10
        assert len(received()) == 2

        broker.start()
        await feed(720, 780)
        await until(lambda: len(received()) >= 13, what="the queued energy", tasks=tasks)
        await asyncio.sleep(0.5)  # room for duplicates to show up
        assert await asyncio.to_thread(len, outbox) == 0
        assert outbox.dropped == 0
    assert len(expected) == 13
    assert received() == expected


def test_outbox_is_bounded_drops_the_oldest_counts_them_and_survives_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, max_messages=3) as outbox:
        for n in range(5):
            outbox.append("t", str(n).encode(), qos=1, retain=True)
        assert [m.payload for m in outbox.peek()] == [b"2", b"3", b"4"]
        assert outbox.dropped == 2
        outbox.delivered(outbox.peek(1)[0].id)
    with Outbox.open(path, max_messages=3) as outbox:
        assert [m.payload for m in outbox.peek()] == [b"3", b"4"]
        assert outbox.dropped == 2
        assert all(m.retain and m.qos == 1 for m in outbox.peek())


# -- credentials ---------------------------------------------------------------------------


def test_credentials_never_appear_in_reprs_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A port bound but not listening refuses connections, and no other test can take it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        _credentials_scenario(closed.getsockname()[1], tmp_path, caplog)


def _credentials_scenario(port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = MqttConfig(
        url=f"mqtt://alice:url-secret@127.0.0.1:{port}", password=SecretStr("key-secret")
    )
    broker = broker_of(config)
    assert broker.password == "key-secret"
    assert broker.username == "alice"
    sim = SimMeter.build()
    gateway = FakeGateway(config, [sim.status()])
    publisher = _publisher(gateway, tmp_path)

    async def scenario() -> None:
        async with running(publisher.run()):
            await until(lambda: publisher.stats.failures >= 2, what="failed connections")

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    shown = caplog.text + repr(publisher) + repr(broker) + str(config) + repr(config)
    assert "unreachable" in caplog.text
    assert "url-secret" not in shown
    assert "key-secret" not in shown
    assert "alice:***@" in caplog.text


# -- a stalled broker ------------------------------------------------------------------------


def test_a_stalled_broker_costs_warnings_but_no_error_or_traceback(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker stops answering (SIGSTOP: the connection stays open, nothing comes back),
    the publisher gives up on it and on each new attempt, then the broker resumes: the log
    has one warning line per failure kind, no error and no traceback, and the connection
    made after the stall is the one that stays."""
    sim = SimMeter.build()
    gateway = FakeGateway(_config(broker, power_interval=1), [sim.status()])
    publisher = MqttPublisher(
        gateway,
        gateway.mqtt,
        data_dir=tmp_path,
        reconnect_initial=0.05,
        reconnect_max=0.3,
        keepalive=10,  # an attempt given up on lives this long unless it is closed
        timeout=1.0,
    )
    assert broker.process is not None
    process = broker.process

    async def feed() -> None:
        second = 0
        while True:
            gateway.hub.publish(sim.reading(second)[0])
            second += 1
            await asyncio.sleep(0.05)

    status = Recorder(broker.port, ["mepgate/status"], identifier="status")

    async def scenario() -> None:
        async with running(publisher.run(), feed(), status.run()) as tasks:
            await until(lambda: publisher.stats.connected, what="connected", tasks=tasks)
            process.send_signal(signal.SIGSTOP)
            try:
                await until(
                    lambda: publisher.stats.failures >= 4,
                    what="attempts on the stalled broker",
                    tasks=tasks,
                    timeout=60,
                )
            finally:
                process.send_signal(signal.SIGCONT)
            await until(lambda: publisher.stats.connected, what="reconnected", tasks=tasks)
            connections = publisher.stats.connections
            # The attempts given up during the stall reach the broker now: none may take
            # the session (same client id) from the connection that works.
            await asyncio.sleep(3)
            assert publisher.stats.connected
            assert publisher.stats.connections == connections
            last = status.last("mepgate/status")  # no abandoned attempt's last will
            assert last is not None
            assert last.payload == b"online"

    with caplog.at_level(logging.WARNING):
        run(scenario())
        gc.collect()  # futures nobody looked at are reported when they are collected
    bad = [r for r in caplog.records if r.levelno > logging.WARNING or r.exc_info]
    assert [f"{r.name}: {r.getMessage()}" for r in bad] == []
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("mepgate")]
    assert warnings
    assert all("\n" not in w and "unreachable or gone" in w for w in warnings), warnings


def test_a_connection_that_breaks_while_a_message_waits_to_be_sent_logs_no_traceback(
    broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The interleaving a resuming broker produces by chance, made on purpose: paho asks for
    its socket to be watched for writing (aiomqtt does that in the loop's next round), and in
    the same round reads the end of the connection and closes the socket.  Watching the closed
    descriptor was an ``OSError: [Errno 9] Bad file descriptor`` traceback in the log."""
    config = MqttConfig(url=broker.url)

    async def scenario() -> None:
        will = aiomqtt.Will("mepgate/status", "offline", qos=1, retain=True)
        async with client_for(config, broker_of(config), will) as client:
            connection = client._client  # the paho client under aiomqtt's
            connection.publish("mepgate/test", b"1", qos=1)
            sock = connection.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)  # the connection breaks...
            connection.loop_read()  # ...and paho notices, as its reader callback would
            await asyncio.sleep(0.2)  # the loop's next rounds

    with caplog.at_level(logging.WARNING):
        run(scenario())
        gc.collect()
    assert [f"{r.name}: {r.getMessage()}" for r in caplog.records] == []


def test_the_configuration_guide_lists_every_entity() -> None:
    """docs/configuration.md's Home Assistant table names every entity key (a phase or tier
    series by its first member)."""
    guide = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for key in ENTITY_KEYS:
        first = re.sub(r"_l[23]$", "_l1", re.sub(r"_tier[234]$", "_tier1", key))
        assert f"`{first}`" in guide, key


def test_a_cancellation_that_comes_with_an_acknowledgement_is_not_lost(broker: Mosquitto) -> None:
    """aiomqtt waits for each acknowledgement (connect, publish, subscribe) with
    ``asyncio.wait_for``; on Python 3.11 that returns normally when the acknowledgement and a
    cancellation come in the same round, and the publisher's task, told to stop, went on
    waiting for work that never came: the gateway hung at shutdown or at a settings change.
    The round is made on purpose here: the acknowledgement is set and the task cancelled in
    one step."""
    config = MqttConfig(url=broker.url)

    async def scenario() -> None:
        will = aiomqtt.Will("mepgate/status", "offline", qos=1, retain=True)
        async with client_for(config, broker_of(config), will) as client:
            acknowledgement = asyncio.get_running_loop().create_future()
            waiting = asyncio.create_task(client._wait_for(acknowledgement, timeout=5))
            await asyncio.sleep(0)  # it waits
            acknowledgement.set_result(None)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting

    run(scenario())
