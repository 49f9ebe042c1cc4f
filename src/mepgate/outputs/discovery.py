"""Home Assistant MQTT discovery: the entity table, the state payloads it reads, and the
``<prefix>/sensor/<node>/<object>/config`` payloads that announce it.

One table, :data:`ENTITIES`, says for every published value its key (the JSON key in the
state payload, the object id and the ``unique_id`` suffix), which state topic carries it and
how Home Assistant should treat it.  Device classes, state classes and units are the ones Home
Assistant documents for MQTT sensors (sensor device classes): ``energy`` in ``kWh`` with
``total_increasing`` (what the Energy dashboard requires), ``power`` in ``W``, ``voltage`` in
``V``, ``current`` in ``A``, ``power_factor`` without a unit (a ratio, -1..1; ``%`` would be
the other documented choice), ``frequency`` in ``Hz``, ``reactive_power`` in ``var``,
``duration`` in ``s``; counters and link quality have no device class and are
``entity_category: diagnostic``.

Everything here is pure: readings and meter statuses in, dictionaries out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from mepgate import __version__
from mepgate.config import ConfigError, Settings
from mepgate.reading import PHASES, TIERS, Reading, tier_energy_field
from mepgate.service.view import MeterStatus

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


def _phase_entities() -> list[Entity]:
    entities: list[Entity] = []
    for phase in PHASES:
        up = phase.upper()
        entities += [
            Entity(key=f"power_import_{phase}", name=f"Power import {up}", group="power",
                   source=f"active_power_import_{phase}_w", device_class="power", unit="W"),
            Entity(key=f"power_export_{phase}", name=f"Power export {up}", group="power",
                   source=f"active_power_export_{phase}_w", device_class="power", unit="W"),
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
    for direction, key, label in (("forward", "import", "import"), ("reverse", "export", "export")):
        entities += [
            Entity(key=f"energy_{key}_tier{tier}", name=f"Energy {label} tier {tier}",
                   group="energy", source=tier_energy_field(direction, tier), scale=0.001,
                   device_class="energy", state_class="total_increasing", unit="kWh",
                   precision=3)
            for tier in TIERS
        ]  # fmt: skip
    return entities


def _counter(key: str, name: str, counter: str) -> Entity:
    return Entity(key=key, name=name, group="diagnostics", source=f"link.{counter}",
                  state_class="total_increasing", diagnostic=True)  # fmt: skip


ENTITIES: tuple[Entity, ...] = (
    Entity(key="energy_import", name="Energy import", group="energy",
           source="forward_active_energy_wh", scale=0.001, device_class="energy",
           state_class="total_increasing", unit="kWh", precision=3),
    Entity(key="energy_export", name="Energy export", group="energy",
           source="reverse_active_energy_wh", scale=0.001, device_class="energy",
           state_class="total_increasing", unit="kWh", precision=3),
    *_tier_entities(),
    Entity(key="power_import", name="Power import", group="power",
           source="active_power_import_w", device_class="power", unit="W"),
    Entity(key="power_export", name="Power export", group="power",
           source="active_power_export_w", device_class="power", unit="W"),
    Entity(key="power_net", name="Power net (import minus export)", group="power",
           source="net_power_w", device_class="power", unit="W"),
    *_phase_entities(),
    Entity(key="frequency", name="Frequency", group="power", source="frequency_hz",
           device_class="frequency", unit="Hz", precision=2),
    Entity(key="reactive_power", name="Reactive power", group="power",
           source="reactive_power_var", device_class="reactive_power", unit="var"),
    Entity(key="tariff_tier", name="Tariff tier", group="power", source="current_tier",
           state_class=None),
    Entity(key="link_quality", name="Link quality", group="diagnostics", source="link_quality",
           unit="%", diagnostic=True, precision=1),
    Entity(key="reading_age", name="Reading age", group="diagnostics", source="reading_age",
           device_class="duration", unit="s", diagnostic=True, precision=0),
    _counter("link_requests", "Link requests", "requests"),
    _counter("link_resends", "Link resends", "resends"),
    _counter("link_timeouts", "Link timeouts", "timeouts"),
    _counter("link_sequence_resyncs", "Sequence resyncs (0x0C)", "sequence_resyncs"),
    _counter("link_auth_failures", "Authentication failures (0x0B)", "auth_failures"),
    _counter("link_digest_failures", "Damaged replies (digest failures)", "damaged_replies"),
    _counter("link_alerts", "Meter alerts", "alerts"),
    Entity(key="readings_rejected", name="Readings rejected", group="diagnostics",
           source="readings_rejected", state_class="total_increasing", diagnostic=True),
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
    unknown = [key for key in settings.mqtt.disabled_entities if key not in ENTITY_KEYS]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise ConfigError(
            f"mqtt.disabled_entities: no entity is called {names}; "
            f"the entity keys are: {', '.join(sorted(ENTITY_KEYS))}"
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

    def of(self, group: Group) -> str:
        return {"power": self.power, "energy": self.energy, "diagnostics": self.diagnostics}[group]


# -- state payloads --------------------------------------------------------------------------


def _round(value: float, scale: float) -> float | int:
    if isinstance(value, int) and scale == 1.0:
        return value
    return round(value * scale, 6)


def reading_payload(reading: Reading, group: Group) -> dict[str, object]:
    """The JSON object of the ``power`` or ``energy`` state topic for ``reading``."""
    payload: dict[str, object] = {"at": reading.at.astimezone(dt.UTC).isoformat()}
    for entity in ENTITIES:
        if entity.group == group:
            value = getattr(reading, entity.source)
            payload[entity.key] = None if value is None else _round(value, entity.scale)
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


# -- discovery config payloads ---------------------------------------------------------------


def node_id(status: MeterStatus) -> str | None:
    """The discovery node of a meter: from its serial number, so renaming the meter in the
    configuration keeps its Home Assistant entities and their history."""
    if status.identity is None:
        return None
    return "mepgate_" + _UNSAFE.sub("_", status.identity.serial_number)


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
            reading is None or getattr(reading, entity.source) is None
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
) -> dict[str, dict[str, object]]:
    """Config payloads by config topic for one meter (empty until the meter is identified)."""
    node = node_id(status)
    if node is None or status.identity is None:
        return {}
    identity = status.identity
    device: dict[str, object] = {
        "identifiers": [node],
        "name": f"Electricity meter {status.name}",
        "manufacturer": identity.manufacturer,
        "model": identity.model,
        "sw_version": identity.firmware,
        "serial_number": identity.serial_number,
    }
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
        configs[config_topic(prefix, node, entity)] = config
    return configs
