"""M-Bus sub-meters on MQTT: state and availability topics, Home Assistant discovery.

Topics (``base`` is ``[mqtt] base_topic``)::

    <base>/<meter>/mbus<slot>               JSON: value, unit, medium, identification, at  retained
    <base>/<meter>/mbus<slot>/availability  online | offline                                retained
    <prefix>/sensor/<node>_mbus<slot>/value/config                Home Assistant discovery

Each sub-meter is its own Home Assistant device, ``via_device`` the electricity meter it is
wired to, with one sensor the Energy dashboard accepts: gas ``device_class: gas`` in m³, water
``device_class: water`` in m³, heat (and a sub-metered electricity) ``device_class: energy`` in
kWh, all ``state_class: total_increasing``.  The entity belongs to the *slot*: a swapped
device continues the same entity, and Home Assistant reads its lower register as a meter reset
(what ``total_increasing`` is for), not as negative consumption.  Unavailable (the device
stopped answering, or no fresh status) is announced on its availability topic; the state keeps
the last value.

The old Dabbler firmware published no M-Bus values on its ``mydatajson`` topics (it showed
them on its web page only), so the compat topics carry none.
"""

from __future__ import annotations

import datetime as dt

from mepgate import __version__
from mepgate.outputs.discovery import Availability, node_id
from mepgate.service.submeter_board import SubmeterState
from mepgate.service.view import MeterStatus

#: medium -> (Home Assistant device class, display name); the unit is the state's own.
_HOME_ASSISTANT = {
    "gas": ("gas", "Gas meter"),
    "water": ("water", "Water meter"),
    "heat": ("energy", "Heat meter"),
    "electricity": ("energy", "Electricity sub-meter"),
}
#: The units Home Assistant 2024.1 accepts for each of those device classes.
_UNITS = {
    "gas": {"m³", "ft³", "CCF"},
    "water": {"m³", "L", "gal", "ft³", "CCF"},
    "energy": {"Wh", "kWh", "MWh", "MJ", "GJ"},
}


def state_topic(base: str, state: SubmeterState) -> str:
    return f"{base}/{state.meter}/mbus{state.slot}"


def availability(base: str, state: SubmeterState) -> Availability:
    return Availability(
        topic=f"{state_topic(base, state)}/availability", online="online", offline="offline"
    )


def state_payload(state: SubmeterState) -> dict[str, object]:
    """The JSON of a sub-meter's state topic (``None`` values are left out)."""
    payload: dict[str, object] = {
        "value": state.value,
        "unit": state.unit,
        "medium": state.medium,
        "identification": state.identification,
        "manufacturer": state.manufacturer,
        "slot": state.slot,
    }
    if state.at is not None:
        payload["at"] = state.at.astimezone(dt.UTC).isoformat()
    if state.meter_read_at is not None:
        payload["meter_read_at"] = state.meter_read_at.isoformat()
    return {k: v for k, v in payload.items() if v is not None}


def discovery_configs(
    status: MeterStatus,
    states: list[SubmeterState],
    *,
    base: str,
    gateway: Availability,
    prefix: str = "homeassistant",
    qos: int = 1,
    configuration_url: str | None = None,
) -> dict[str, dict[str, object]]:
    """Config payloads by topic for the sub-meters of ``status``'s meter (none until the
    meter is identified: the sub-meters' devices hang off the meter's)."""
    node = node_id(status)
    if node is None:
        return {}
    configs: dict[str, dict[str, object]] = {}
    for state in states:
        if state.meter != status.name or state.value is None:
            continue
        device_class, title = _HOME_ASSISTANT.get(state.medium, (None, "Sub-meter"))
        sub_node = f"{node}_mbus{state.slot}"
        device: dict[str, object] = {
            "identifiers": [sub_node],
            "name": f"{title} {status.name} {state.slot}",
            "manufacturer": state.manufacturer or "unknown",
            "model": f"M-Bus {state.medium_name}, id {state.identification}",
            "via_device": node,
        }
        if configuration_url is not None:
            device["configuration_url"] = configuration_url
        own = availability(base, state)
        config: dict[str, object] = {
            "name": None,  # the device's name: one sensor per device
            "unique_id": f"{sub_node}_value",
            "object_id": f"{status.name}_mbus{state.slot}_{state.medium}",
            "state_topic": state_topic(base, state),
            "value_template": "{{ value_json.value }}",
            "availability": [
                {
                    "topic": a.topic,
                    "payload_available": a.online,
                    "payload_not_available": a.offline,
                }
                for a in (gateway, own)
            ],
            "availability_mode": "all",
            "qos": qos,
            "device": device,
            "origin": {"name": "mepgate", "sw_version": __version__},
            "state_class": "total_increasing",
            "unit_of_measurement": state.unit,
            "suggested_display_precision": 3,
        }
        if device_class is not None and state.unit in _UNITS[device_class]:
            config["device_class"] = device_class
        configs[f"{prefix}/sensor/{sub_node}/value/config"] = config
    return configs
