"""Every discovery message the publisher emits, judged by Home Assistant's own MQTT discovery
code: the ``homeassistant`` package of the oldest release we support (2024.1, the last on
Python 3.11), run in its own virtual environment (``.venv-ha``, made by ``scripts/test``) by
:mod:`tests.outputs.ha_discovery_validator`.

The messages come from the real publisher through a real Mosquitto: for each simulator profile,
with the old firmware's topics on and off, a meter's full set of entities (tiers, per-phase
values, diagnostics), then a reading without some of them (removals), then discovery turned
off (every entity removed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from mepgate.config import Settings
from mepgate.config.settings import MqttConfig
from mepgate.outputs.discovery import ENTITY_KEYS, EVENT_ENTITY_KEY, present_entities
from mepgate.outputs.mqtt import MqttPublisher
from mepgate.reading import PHASES, TIERS, Reading, tier_energy_field

from ..support.gateway import FakeGateway, SimMeter
from ..support.wait import until
from .support import Mosquitto, Received, Recorder, home_assistant_verdicts, run, running

PROFILES = ("gen3-3phase", "gen4-3phase", "gen3-1phase")
CONFIG = "homeassistant/+/+/+/config"


def _without_phases_and_tiers(reading: Reading) -> Reading:
    """``reading`` one second later as a meter with only L1 and two tiers reports it."""
    gone: dict[str, Any] = {
        field: None
        for field in Reading.__dataclass_fields__
        if any(f"_{phase}" in field for phase in PHASES[1:])
    }
    gone |= {tier_energy_field(d, t): None for d in ("forward", "reverse") for t in TIERS[2:]}
    return dataclasses.replace(reading, at=reading.at + dt.timedelta(seconds=1), **gone)


def _topic(node: str, key: str) -> str:
    return f"homeassistant/sensor/{node}/{key}/config"


async def _emit(broker: Mosquitto, tmp_path: Path, profile: str, compat: bool) -> list[Received]:
    """Everything the publisher sends below ``homeassistant/`` while a meter's entities come,
    some go, and discovery is switched off."""
    sim = SimMeter.build(profile=profile)
    node = f"mepgate_{sim.identity().serial_number}"
    full, _ = sim.reading(0)
    reduced = _without_phases_and_tiers(full)
    recorder = Recorder(broker.port, ["homeassistant/#"], identifier=f"ha-{profile}-{compat}")

    def seen(topics: set[str], *, removed: bool) -> bool:
        got = {m.topic for m in recorder.on(CONFIG) if bool(m.payload) != removed}
        return topics <= got

    async def publish(
        settings: Settings, *readings: Reading, until_seen: set[str], removed: bool
    ) -> None:
        gateway = FakeGateway(settings, [sim.status()])
        publisher = MqttPublisher(gateway, gateway.mqtt, data_dir=tmp_path, reconnect_initial=0.05)
        async with running(publisher.run()) as tasks:
            await until(lambda: gateway.hub.subscribers > 0, what="subscribed", tasks=tasks)
            for reading in readings:
                gateway.hub.publish(reading)
                await until(lambda: publisher.stats.live_published > 0, tasks=tasks)
            await until(
                lambda: seen(until_seen, removed=removed),
                what=f"{'removal' if removed else 'discovery'} of {sorted(until_seen)}",
                tasks=tasks,
            )

    mqtt = MqttConfig(url=broker.url, compat_dabbler=compat)
    # The device's configuration_url: a public URL, or an IPv6 listen address (in brackets).
    web = {"public_url": "http://mepgate.lan:8080/"} if compat else {"listen": "[2001:db8::7]:80"}
    settings = Settings.model_validate({"web": web}).model_copy(update={"mqtt": mqtt})
    event = f"homeassistant/event/{node}/{EVENT_ENTITY_KEY}/config"  # the meter's last event
    everything = {_topic(node, e.key) for e in present_entities(full)} | {event}
    remaining = {_topic(node, e.key) for e in present_entities(reduced)} | {event}
    async with running(recorder.run()):
        await recorder.ready()
        await publish(settings, full, until_seen=everything, removed=False)
        await publish(settings, reduced, until_seen=everything - remaining, removed=True)
        off = settings.model_copy(update={"mqtt": mqtt.model_copy(update={"discovery": False})})
        await publish(off, reduced, until_seen=remaining, removed=True)
    return recorder.on("homeassistant/#")


@pytest.mark.parametrize("compat", [False, True], ids=["own-topics", "compat-dabbler"])
@pytest.mark.parametrize("profile", PROFILES)
def test_home_assistant_2024_1_accepts_every_discovery_message(
    broker: Mosquitto, tmp_path: Path, profile: str, compat: bool
) -> None:
    messages: list[Received] = []

    async def scenario() -> None:
        messages.extend(await _emit(broker, tmp_path, profile, compat))

    run(scenario())
    verdicts = home_assistant_verdicts(messages)
    refused = [(v["topic"], v["error"]) for v in verdicts if not v["accepted"]]
    assert refused == []
    assert [(v["topic"], v["problems"]) for v in verdicts if v["problems"]] == []
    # Options 2024.1 does not know are removed silently: only the tariff's enum options
    # (later releases check the state against them; 2024.1 shows the tier number as it is).
    dropped = {(v["topic"].split("/")[3], tuple(v["dropped"])) for v in verdicts if v["dropped"]}
    assert dropped == {("tariff_tier", ("options",))}
    url = "http://mepgate.lan:8080/" if compat else "http://[2001:db8::7]:80/"
    for message in messages:
        if message.payload:
            assert json.loads(message.payload)["device"]["configuration_url"] == url
    announced = {v["topic"].split("/")[3] for v in verdicts if not v["removal"]}
    removed = {v["topic"].split("/")[3] for v in verdicts if v["removal"]}
    assert removed == announced  # every entity is finally removed, with a payload HA accepts
    if profile.endswith("3phase"):
        assert announced == ENTITY_KEYS | {EVENT_ENTITY_KEY}  # every entity was judged
    else:
        single = ENTITY_KEYS - {k for k in ENTITY_KEYS if k[-3:] in ("_l2", "_l3")}
        assert announced == single | {EVENT_ENTITY_KEY}


def test_the_validator_refuses_what_home_assistant_2024_1_refuses() -> None:
    """The verdicts above can fail: the device key 2024.1 did not know, a device class it does
    not have, a malformed topic and a unit that does not fit the device class are refused."""
    base: dict[str, Any] = {
        "name": "Power import",
        "unique_id": "mepgate_1_power_import",
        "state_topic": "mepgate/house/power",
        "device_class": "power",
        "unit_of_measurement": "W",
        "device": {"identifiers": ["mepgate_1"], "name": "Electricity meter"},
    }
    bad_device = {**base, "device": {**base["device"], "serial_number": "1"}}
    topic = _topic("mepgate_1", "power_import")
    messages = [
        Received(topic, json.dumps(base).encode(), True),
        Received(topic, json.dumps(bad_device).encode(), True),
        Received(topic, json.dumps({**base, "device_class": "wattage"}).encode(), True),
        Received("homeassistant/sensor/mepgate.1/power_import/config", b"{}", True),
        Received(topic, json.dumps({**base, "unit_of_measurement": "kWh"}).encode(), True),
    ]
    ok, serial, device_class, bad_topic, unit = home_assistant_verdicts(messages)
    assert ok["accepted"]
    assert ok["problems"] == []
    assert not serial["accepted"]
    assert "extra keys not allowed @ data['device']['serial_number']" in serial["error"]
    assert not device_class["accepted"]
    assert not bad_topic["accepted"]
    assert unit["accepted"]  # 2024.1 only warns when the entity has a state...
    assert unit["problems"]  # ...which the verdict reports as a problem
