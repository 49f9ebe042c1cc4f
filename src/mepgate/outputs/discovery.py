"""Home Assistant MQTT discovery: the entity table, the state payloads it reads, and the
``<prefix>/sensor/<node>/<object>/config`` payloads that announce it.

One table, :data:`ENTITIES`, says for every published value its key (the JSON key in the
state payload, the discovery object id and the ``unique_id`` suffix), which state topic
carries it and how Home Assistant should treat it.  Device classes, state classes and units
are the ones Home Assistant documents for MQTT sensors (sensor device classes): ``energy`` in
``kWh`` with ``total_increasing`` (what the Energy dashboard requires), ``power`` in ``W``,
``voltage`` in ``V``, ``current`` in ``A``, ``power_factor`` without a unit (a ratio, -1..1;
``%`` would be the other documented choice), ``frequency`` in ``Hz``, ``reactive_power`` in
``var``, ``duration`` in ``s``, the tariff tier an ``enum`` of the tier numbers; diagnostics
are ``entity_category: diagnostic`` and their counters have no state class (Home Assistant
would keep long-term statistics of them otherwise).

Every payload must be accepted by every Home Assistant release from 2024.1 (the last that
runs on Python 3.11) on; ``tests/outputs/test_home_assistant.py`` has 2024.1's own discovery
code judge each one.  Hence:

* the device has no ``serial_number`` (2024.2 added it; 2024.1 refuses the whole message):
  the serial is in the identifier (``mepgate_<serial>``) and in the model text;
* no ``object_id`` (deprecated in 2025.10, to stop working in 2026.4) and no
  ``default_entity_id`` (its successor, unknown before 2025.10): Home Assistant makes the
  entity id from the device name and the entity name (``sensor.electricity_meter_house_
  power_net``), so the names are kept short and plain;
* ``options`` of the tariff sensor is ignored by releases that predate it; they show the
  tier number as it is.

``unique_id`` never changes (``<node>_<key>``): Home Assistant keys its entity registry, the
entity's history and the user's renames on it.  An entity announced before keeps its entity
id when its name changes; only new installations get the new ids.

Everything here is pure: readings and meter statuses in, dictionaries out.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from mepgate import __version__
from mepgate.config import ConfigError, Settings
from mepgate.config.settings import WebConfig
from mepgate.reading import NET_POWER_FIELDS, PHASES, TIERS, Reading, tier_energy_field
from mepgate.service.view import MeterStatus
from mepgate.store import MeterEvent
from mepgate.tables.event_codes import EVENT_KEYS

Group = Literal["power", "energy", "diagnostics"]
Value = float | int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    key: str  # payload key, object id, unique_id suffix: never change one (HA keys on it)
    name: str
    group: Group
    source: str  # Reading field / property, or "link.<counter>" / status value for diagnostics
    scale: float = 1.0
    device_class: str | None = None
    state_class: str | None = "measurement"
    unit: str | None = None
    diagnostic: bool = False
    precision: int | None = None  # suggested_display_precision
    icon: str | None = None  # where the device class gives none, or a misleading one
    options: tuple[str, ...] | None = None  # the states of an ``enum`` sensor


IMPORT_ICON = "mdi:transmission-tower-import"
EXPORT_ICON = "mdi:transmission-tower-export"
NET_ICON = "mdi:transmission-tower"


def _phase_entities() -> list[Entity]:
    entities: list[Entity] = []
    for phase in PHASES:
        up = phase.upper()
        entities += [
            Entity(key=f"power_import_{phase}", name=f"Power import {up}", group="power",
                   source=f"active_power_import_{phase}_w", device_class="power", unit="W",
                   precision=0, icon=IMPORT_ICON),
            Entity(key=f"power_export_{phase}", name=f"Power export {up}", group="power",
                   source=f"active_power_export_{phase}_w", device_class="power", unit="W",
                   precision=0, icon=EXPORT_ICON),
            Entity(key=f"power_net_{phase}", name=f"Power net {up}", group="power",
                   source=f"net_power_{phase}_w", device_class="power", unit="W",
                   precision=0, icon=NET_ICON),
            Entity(key=f"voltage_{phase}", name=f"Voltage {up}", group="power",
                   source=f"voltage_{phase}_v", device_class="voltage", unit="V", precision=1),
            Entity(key=f"current_{phase}", name=f"Current {up}", group="power",
                   source=f"current_{phase}_a", device_class="current", unit="A", precision=2),
            Entity(key=f"power_factor_{phase}", name=f"Power factor {up}", group="power",
                   source=f"power_factor_{phase}", device_class="power_factor", precision=2),
        ]  # fmt: skip
    return entities


def _tier_entities() -> list[Entity]:
    """Energy per TOU tier (BT23 tier blocks), numbered as the meter's display shows them."""
    entities: list[Entity] = []
    for direction, key, icon in (("forward", "import", IMPORT_ICON),
                                 ("reverse", "export", EXPORT_ICON)):  # fmt: skip
        entities += [
            Entity(key=f"energy_{key}_tier{tier}", name=f"Energy {key} tier {tier}",
                   group="energy", source=tier_energy_field(direction, tier), scale=0.001,
                   device_class="energy", state_class="total_increasing", unit="kWh",
                   precision=3, icon=icon)
            for tier in TIERS
        ]  # fmt: skip
    return entities


def _counter(key: str, name: str, counter: str, icon: str) -> Entity:
    """A link counter: a diagnostic number without a state class, so that Home Assistant
    keeps no long-term statistics of it (its history is enough to see when errors came)."""
    return Entity(key=key, name=name, group="diagnostics", source=f"link.{counter}",
                  state_class=None, diagnostic=True, precision=0, icon=icon)  # fmt: skip


ENTITIES: tuple[Entity, ...] = (
    Entity(key="energy_import", name="Energy import", group="energy",
           source="forward_active_energy_wh", scale=0.001, device_class="energy",
           state_class="total_increasing", unit="kWh", precision=3, icon=IMPORT_ICON),
    Entity(key="energy_export", name="Energy export", group="energy",
           source="reverse_active_energy_wh", scale=0.001, device_class="energy",
           state_class="total_increasing", unit="kWh", precision=3, icon=EXPORT_ICON),
    *_tier_entities(),
    Entity(key="power_import", name="Power import", group="power",
           source="active_power_import_w", device_class="power", unit="W", precision=0,
           icon=IMPORT_ICON),
    Entity(key="power_export", name="Power export", group="power",
           source="active_power_export_w", device_class="power", unit="W", precision=0,
           icon=EXPORT_ICON),
    # Import minus export: + while the house draws from the grid (Reading.net_power_w).
    Entity(key="power_net", name="Power net", group="power", source="net_power_w",
           device_class="power", unit="W", precision=0, icon=NET_ICON),
    *_phase_entities(),
    Entity(key="frequency", name="Frequency", group="power", source="frequency_hz",
           device_class="frequency", unit="Hz", precision=2),
    Entity(key="reactive_power", name="Reactive power", group="power",
           source="reactive_power_var", device_class="reactive_power", unit="var",
           precision=0),
    Entity(key="tariff_tier", name="Tariff tier", group="power", source="current_tier",
           device_class="enum", state_class=None, options=tuple(str(t) for t in TIERS),
           icon="mdi:cash-clock"),
    Entity(key="link_quality", name="Link quality", group="diagnostics", source="link_quality",
           unit="%", diagnostic=True, precision=1, icon="mdi:signal"),
    Entity(key="reading_age", name="Reading age", group="diagnostics", source="reading_age",
           device_class="duration", unit="s", diagnostic=True, precision=0),
    _counter("link_requests", "Link requests", "requests", "mdi:swap-horizontal"),
    _counter("link_resends", "Link resends", "resends", "mdi:repeat"),
    _counter("link_timeouts", "Link timeouts", "timeouts", "mdi:timer-alert-outline"),
    # 0x0C replies: the meter's sequence number adopted.
    _counter("link_sequence_resyncs", "Sequence resyncs", "sequence_resyncs", "mdi:sync-alert"),
    # 0x0B replies: the meter did not accept the digest.
    _counter("link_auth_failures", "Authentication failures", "auth_failures", "mdi:key-alert"),
    # Replies whose digest or content did not verify.
    _counter("link_digest_failures", "Damaged replies", "damaged_replies",
             "mdi:message-alert-outline"),
    _counter("link_alerts", "Meter alerts", "alerts", "mdi:alert-outline"),
    Entity(key="readings_rejected", name="Readings rejected", group="diagnostics",
           source="readings_rejected", state_class=None, diagnostic=True, precision=0,
           icon="mdi:cancel"),
)  # fmt: skip

ENTITY_KEYS = frozenset(e.key for e in ENTITIES)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def check_disabled_entities(settings: Settings) -> None:
    """Raise :class:`ConfigError` if ``[mqtt] disabled_entities`` names a key that is no
    entity's: a typo would otherwise silently disable nothing.  The configuration cannot check
    this itself (the entity table is the outputs', above it); the CLI calls this where it loads
    the configuration, and the web config page before it saves."""
    if settings.mqtt is None:
        return
    known = ENTITY_KEYS | {EVENT_ENTITY_KEY}
    unknown = [key for key in settings.mqtt.disabled_entities if key not in known]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise ConfigError(
            f"mqtt.disabled_entities: no entity is called {names}; "
            f"the entity keys are: {', '.join(sorted(known))}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Availability:
    """Where and how availability is announced (the last will is the ``offline`` side)."""

    topic: str
    online: str
    offline: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StateTopics:
    """The state topics of one meter, and the availability topics its entities follow."""

    power: str
    energy: str
    diagnostics: str
    availability: tuple[Availability, ...]
    event: str | None = None  # the meter's events (not retained), for the ``event`` entity

    def of(self, group: Group) -> str:
        return {"power": self.power, "energy": self.energy, "diagnostics": self.diagnostics}[group]


# -- state payloads --------------------------------------------------------------------------


def _round(value: float, scale: float) -> float | int:
    if isinstance(value, int) and scale == 1.0:
        return value
    return round(value * scale, 6)


def reading_value(reading: Reading, entity: Entity) -> Value:
    """The value of a ``power`` or ``energy`` entity in ``reading`` (``None``: the meter does
    not report it)."""
    if entity.source in NET_POWER_FIELDS:
        return reading.net_powers()[entity.source]
    value: Value = getattr(reading, entity.source)
    return value


def reading_payload(reading: Reading, group: Group) -> dict[str, object]:
    """The JSON object of the ``power`` or ``energy`` state topic for ``reading``: the values
    the reading carries, and no key for one it does not (a single-phase meter's L2 and L3, the
    tiers a meter does not have): no entity is announced for those either."""
    payload: dict[str, object] = {"at": reading.at.astimezone(dt.UTC).isoformat()}
    for entity in ENTITIES:
        if entity.group == group and (value := reading_value(reading, entity)) is not None:
            payload[entity.key] = _round(value, entity.scale)
    if group == "energy":  # exact register values as well, for consumers that want Wh
        payload["energy_import_wh"] = reading.forward_active_energy_wh
        payload["energy_export_wh"] = reading.reverse_active_energy_wh
    return payload


def link_quality(link: Mapping[str, int]) -> float | None:
    """Replies used per request frame sent, in percent (``None`` before the first frame)."""
    sent = link.get("frames_sent", 0)
    return round(100.0 * link.get("replies", 0) / sent, 1) if sent else None


def diagnostics_payload(status: MeterStatus, now: dt.datetime) -> dict[str, object]:
    """The JSON object of the ``diagnostics`` state topic: link health and reading age."""
    age = (
        max(0.0, round((now - status.last_reading_at).total_seconds(), 1))
        if status.last_reading_at is not None
        else None
    )
    values: dict[str, Value] = {
        "link_quality": link_quality(status.link),
        "reading_age": age,
        "readings_rejected": status.readings_rejected,
    }
    payload: dict[str, object] = {"at": now.astimezone(dt.UTC).isoformat()}
    for entity in ENTITIES:
        if entity.group == "diagnostics":
            if entity.source.startswith("link."):
                payload[entity.key] = status.link.get(entity.source.removeprefix("link."))
            else:
                payload[entity.key] = values[entity.source]
    return payload


def event_payload(event: MeterEvent) -> dict[str, object]:
    """The JSON object of the ``event`` topic: one new entry of the meter's event log.

    ``event_type`` (the code's short key, ``other`` when unknown) is what Home Assistant's
    ``event`` entity fires; the other keys become the event's attributes."""
    return {
        "event_type": event.key,
        "time": event.gateway_time.astimezone(dt.UTC).isoformat(),
        "meter_time": event.meter_time.astimezone(dt.UTC).isoformat(),
        "code": event.code,
        "words": event.words,
        "sequence": event.sequence,
        "argument": event.argument.hex(),
    }


# -- discovery config payloads ---------------------------------------------------------------

EVENT_ENTITY_KEY = "meter_event"
"""The ``unique_id`` suffix and object id of the meter's ``event`` entity (its last event)."""


def node_id(status: MeterStatus) -> str | None:
    """The discovery node of a meter: from its serial number, so renaming the meter in the
    configuration keeps its Home Assistant entities and their history."""
    if status.identity is None:
        return None
    return "mepgate_" + _UNSAFE.sub("_", status.identity.serial_number)


def web_url(web: WebConfig) -> str | None:
    """The address of the web pages for a browser elsewhere (Home Assistant's device page links
    to it): ``[web] public_url`` when set, else the listen address when it names this machine
    to others.  A wildcard (``0.0.0.0``, ``[::]``) names no address, and a loopback one
    (``127.0.0.1``, the default) only this machine: a link to it would be broken on every
    other device, so there is none."""
    if web.public_url is not None:
        return web.public_url
    host = web.host
    if host.lower() == "localhost":
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a host name
        return f"http://{host}:{web.port}/"
    if address.is_unspecified or address.is_loopback:
        return None
    shown = f"[{host}]" if address.version == 6 else host
    return f"http://{shown}:{web.port}/"


def config_topic(prefix: str, node: str, entity: Entity) -> str:
    return f"{prefix}/sensor/{node}/{entity.key}/config"


def present_entities(reading: Reading | None, disabled: Iterable[str] = ()) -> list[Entity]:
    """The entities worth announcing: the meter measures the value, and it is not disabled."""
    skip = set(disabled)
    entities = []
    for entity in ENTITIES:
        if entity.key in skip:
            continue
        if entity.group != "diagnostics" and (
            reading is None or reading_value(reading, entity) is None
        ):
            continue
        entities.append(entity)
    return entities


def discovery_configs(
    status: MeterStatus,
    reading: Reading | None,
    topics: StateTopics,
    *,
    prefix: str = "homeassistant",
    qos: int = 1,
    disabled: Iterable[str] = (),
    configuration_url: str | None = None,
) -> dict[str, dict[str, object]]:
    """Config payloads by config topic for one meter (empty until the meter is identified).

    ``configuration_url`` (:func:`web_url`) is where the device page's "Visit" link goes."""
    node = node_id(status)
    if node is None or status.identity is None:
        return {}
    identity = status.identity
    device: dict[str, object] = {
        "identifiers": [node],
        "name": f"Electricity meter {status.name}",
        "manufacturer": identity.manufacturer,
        # Not "serial_number": Home Assistant 2024.1 refuses the whole message for it.
        "model": f"{identity.model} (serial {identity.serial_number})",
        "sw_version": identity.firmware,
    }
    if configuration_url is not None:
        device["configuration_url"] = configuration_url
    availability = [
        {"topic": a.topic, "payload_available": a.online, "payload_not_available": a.offline}
        for a in topics.availability
    ]
    configs: dict[str, dict[str, object]] = {}
    for entity in present_entities(reading, disabled):
        config: dict[str, object] = {
            "name": entity.name,
            "unique_id": f"{node}_{entity.key}",
            "state_topic": topics.of(entity.group),
            "value_template": f"{{{{ value_json.{entity.key} }}}}",
            "availability": availability,
            "availability_mode": "all",
            "qos": qos,
            "device": device,
            "origin": {"name": "mepgate", "sw_version": __version__},
        }
        if entity.device_class is not None:
            config["device_class"] = entity.device_class
        if entity.state_class is not None:
            config["state_class"] = entity.state_class
        if entity.unit is not None:
            config["unit_of_measurement"] = entity.unit
        if entity.precision is not None:
            config["suggested_display_precision"] = entity.precision
        if entity.diagnostic:
            config["entity_category"] = "diagnostic"
        if entity.icon is not None:
            config["icon"] = entity.icon
        if entity.options is not None:
            config["options"] = list(entity.options)
        configs[config_topic(prefix, node, entity)] = config
    if topics.event is not None and EVENT_ENTITY_KEY not in set(disabled):
        # An ``event`` entity (Home Assistant 2023.8+): fires on each new event the meter
        # logged, its attributes the event's words, time and code.
        configs[f"{prefix}/event/{node}/{EVENT_ENTITY_KEY}/config"] = {
            "name": "Meter event",
            "unique_id": f"{node}_{EVENT_ENTITY_KEY}",
            "state_topic": topics.event,
            "event_types": list(EVENT_KEYS),
            "availability": availability,
            "availability_mode": "all",
            "qos": qos,
            "icon": "mdi:clipboard-alert-outline",
            "device": device,
            "origin": {"name": "mepgate", "sw_version": __version__},
        }
    return configs
