"""Home Assistant's own verdict on MQTT discovery messages (run with ``.venv-ha/bin/python``).

Not a test module: ``tests/outputs/test_home_assistant.py`` runs this script inside the
separate virtual environment that ``scripts/test`` creates with the ``homeassistant`` package
(its pins conflict with ours, so it cannot live in ``.venv``).  It imports nothing of mepgate.

stdin: ``{"prefix": "homeassistant", "messages": [{"topic": ..., "payload": "..."}]}``
stdout: ``{"version": "2024.1.6", "verdicts": [{"topic", "accepted", "removal", "error",
"dropped", "problems"}]}``, one verdict per message, in order.

Each message goes through the steps Home Assistant's MQTT integration takes with a retained
discovery message (``homeassistant/components/mqtt/discovery.py`` and ``mixins.py`` of the
installed release), using its own code and tables, never a copy:

1. the topic must match ``discovery.TOPIC_MATCHER`` below the prefix, for a component in
   ``discovery.SUPPORTED_COMPONENTS``; an empty payload is a removal and needs nothing more;
2. the payload must be a JSON object (``util.json.json_loads_object``); abbreviations are
   expanded with ``abbreviations.py``'s tables; ``origin`` must pass
   ``MQTT_ORIGIN_INFO_SCHEMA`` (else the message is dropped with a warning);
3. the platform's ``DISCOVERY_SCHEMA`` (``mqtt/<component>.py``) validates it: an error there
   is what users see as "extra keys not allowed @ data['device'][...]" and no entity is made.
   Unknown top-level keys are silently removed (``vol.REMOVE_EXTRA``): they are reported as
   ``dropped``, so a test can tell an option the release ignores from a typo;
4. ``problems``: for sensors, what the sensor entity itself checks once it has a state
   (``components/sensor``'s ``DEVICE_CLASS_UNITS`` and ``DEVICE_CLASS_STATE_CLASSES``: a
   warning in this release, a rejected configuration in later ones), its
   ``NON_NUMERIC_DEVICE_CLASSES`` (no unit) and its rule that enum options need the ``enum``
   device class.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
from typing import Any


def _load() -> dict[str, Any]:
    # Home Assistant's packages import each other in a cycle that its bootstrap resolves by
    # loading the entity platform helpers first; do the same.
    importlib.import_module("homeassistant.helpers.entity_platform")
    names = ("const", "discovery", "abbreviations", "mixins")
    modules = {n: importlib.import_module(f"homeassistant.components.mqtt.{n}") for n in names}
    modules["json"] = importlib.import_module("homeassistant.util.json")
    modules["sensor"] = importlib.import_module("homeassistant.components.sensor")
    modules["version"] = importlib.import_module("homeassistant.const").__version__
    return modules


def _expand(payload: dict[str, Any], ha: dict[str, Any]) -> dict[str, Any]:
    """discovery.py's abbreviation expansion (its tables)."""
    abbreviations = ha["abbreviations"]
    expanded = {abbreviations.ABBREVIATIONS.get(k, k): v for k, v in payload.items()}
    if isinstance(expanded.get("device"), dict):
        table = abbreviations.DEVICE_ABBREVIATIONS
        expanded["device"] = {table.get(k, k): v for k, v in expanded["device"].items()}
    if isinstance(expanded.get("origin"), dict):
        table = abbreviations.ORIGIN_ABBREVIATIONS
        expanded["origin"] = {table.get(k, k): v for k, v in expanded["origin"].items()}
    return expanded


def _sensor_problems(config: dict[str, Any], ha: dict[str, Any]) -> list[str]:
    sensor = ha["sensor"]
    device_class = config.get("device_class")
    state_class = config.get("state_class")
    unit = config.get("unit_of_measurement")
    options = config.get("options")
    problems = []
    units = sensor.DEVICE_CLASS_UNITS.get(device_class)
    if device_class is not None and units is not None and unit not in units:
        problems.append(f"unit {unit!r} is not one of {device_class}'s: {sorted(map(str, units))}")
    classes = sensor.DEVICE_CLASS_STATE_CLASSES.get(device_class)
    if state_class is not None and classes is not None and state_class not in classes:
        problems.append(f"state class {state_class!r} is impossible for {device_class}")
    if device_class in sensor.NON_NUMERIC_DEVICE_CLASSES and unit is not None:
        problems.append(f"a unit for the non-numeric device class {device_class}")
    if options is not None:
        if device_class != sensor.SensorDeviceClass.ENUM:
            problems.append("enum options without the enum device class")
        if not options or not all(isinstance(o, str) for o in options):
            problems.append("options must be a non-empty list of strings")
    return problems


def verdict(topic: str, payload: str, prefix: str, ha: dict[str, Any]) -> dict[str, Any]:
    discovery = ha["discovery"]
    result: dict[str, Any] = {
        "topic": topic,
        "accepted": False,
        "removal": False,
        "error": None,
        "dropped": [],
        "problems": [],
    }
    match = discovery.TOPIC_MATCHER.match(topic.replace(f"{prefix}/", "", 1))
    if not topic.startswith(f"{prefix}/") or match is None:
        result["error"] = "illegal discovery topic"
        return result
    component = match.group("component")
    if component not in discovery.SUPPORTED_COMPONENTS:
        result["error"] = f"integration {component} is not supported"
        return result
    if not payload:
        result["accepted"] = result["removal"] = True
        return result
    try:
        loaded = ha["json"].json_loads_object(payload)
    except ValueError as exc:
        result["error"] = f"not a JSON object: {exc}"
        return result
    config = _expand(dict(loaded), ha)
    if "origin" in config:
        try:
            discovery.MQTT_ORIGIN_INFO_SCHEMA(config["origin"])
        except Exception as exc:  # discovery.py drops the message on any error here
            result["error"] = f"origin: {exc}"
            return result
    config["platform"] = "mqtt"
    platform = importlib.import_module(f"homeassistant.components.mqtt.{component}")
    try:
        validated = platform.DISCOVERY_SCHEMA(copy.deepcopy(config))
    except Exception as exc:  # vol.Invalid: HA logs it and makes no entity
        result["error"] = str(exc)
        return result
    result["accepted"] = True
    result["dropped"] = sorted(set(config) - set(validated) - {"platform"})
    if component == "sensor":
        result["problems"] = _sensor_problems(config, ha)
    return result


def main() -> None:
    request = json.load(sys.stdin)
    ha = _load()
    prefix = request.get("prefix", "homeassistant")
    verdicts = [verdict(m["topic"], m["payload"], prefix, ha) for m in request["messages"]]
    json.dump({"version": ha["version"], "verdicts": verdicts}, sys.stdout)


if __name__ == "__main__":
    main()
