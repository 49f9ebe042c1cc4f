"""The meter's ``event`` entity and the event payload (pure parts): announced with every
identified meter, its event types covering every key an event can carry, left out when
disabled."""

from __future__ import annotations

import datetime as dt

from mepgate.config import Settings
from mepgate.config.settings import MqttConfig
from mepgate.outputs.discovery import (
    EVENT_ENTITY_KEY,
    check_disabled_entities,
    discovery_configs,
    event_payload,
)
from mepgate.outputs.mqtt.topics import Topics
from mepgate.store import MeterEvent
from mepgate.tables.event_codes import EVENT_KEYS, event_key

from ..support.gateway import SimMeter


def test_the_event_entity_and_payload() -> None:
    sim = SimMeter.build()
    reading, _ = sim.reading(0)
    topics = Topics.of(MqttConfig(url="mqtt://127.0.0.1")).states("house")
    configs = discovery_configs(sim.status(), reading, topics)
    node = f"mepgate_{sim.identity().serial_number}"
    entity = configs[f"homeassistant/event/{node}/{EVENT_ENTITY_KEY}/config"]
    assert entity["state_topic"] == "mepgate/house/event"
    assert entity["event_types"] == list(EVENT_KEYS)
    assert all(event_key(code) in EVENT_KEYS for code in range(4096))
    disabled = discovery_configs(sim.status(), reading, topics, disabled=[EVENT_ENTITY_KEY])
    assert not any("/event/" in topic for topic in disabled)
    check_disabled_entities(
        Settings(mqtt=MqttConfig(url="mqtt://127.0.0.1", disabled_entities=(EVENT_ENTITY_KEY,)))
    )
    at = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    words = "manufacturer event 5 (argument beef)"
    event = MeterEvent(
        meter="house", sequence=7, meter_time=at, gateway_time=at - dt.timedelta(seconds=3),
        code=0x805, argument=b"\xbe\xef", user_id=None, words=words,
    )  # fmt: skip
    assert event_payload(event) == {
        "event_type": "other",
        "time": "2026-06-01T11:59:57+00:00",
        "meter_time": "2026-06-01T12:00:00+00:00",
        "code": 0x805,
        "words": words,
        "sequence": 7,
        "argument": "beef",
    }
