"""The old Dabbler ESP32 firmware's JSON, for users whose Home Assistant configurations are
written against it (``compat_dabbler = true``).

One mapping, used twice: :func:`dabbler_json` turns a :class:`Reading` into the firmware's
field names and integer units, and

* the MQTT publisher sends the groups of :data:`DABBLER_TOPICS` on ``<topic>/…/mydatajson``;
* the web app's ``/getDashDataWS`` returns ``dabbler_json(reading, identity=…,
  averages=view.hub.averages(reading), fields=DASH_FIELDS)`` -- web engineers: call this, do
  not re-map the fields.

Facts about the old firmware this follows (FIELD-NOTES.md): energies in whole Wh
(``Fwd_Act_Wh``), power in whole W, currents in mA (``L1_RMS_A`` despite its name), voltages
in mV (``L1_RMS_V``), frequency in mHz, power factor in thousandths (``L1_PF_Fac``), reactive
power split into import and export var.  Every value is an integer, as the firmware printed
them; a value this meter does not measure is ``0`` (the firmware's default), because its
consumers call ``int()`` on every field.  Unlike the firmware, negative power factors stay
negative (it printed them as unsigned, i.e. as garbage).

The ``*_Avg_W`` fields were BT28's demand averages; a :class:`Reading` carries only present
values, so both take the means of the last minute's readings from the hub
(:meth:`~mepgate.service.hub.ReadingHub.averages`, one definition for both).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from mepgate import __version__
from mepgate.reading import PHASES, Reading
from mepgate.service.hub import PowerAverages
from mepgate.service.view import MeterIdentity

#: ``ESP_SW`` / ``ESP_SW_By`` of the firmware's JSON: what the dashboard scripts check for.
SOFTWARE = "mepgate"
SOFTWARE_BY = "mepgate"

#: The MQTT topics of the firmware (below ``<topic>``) and the fields each one carries, in
#: the firmware's order.
DABBLER_TOPICS: Mapping[str, tuple[str, ...]] = {
    "sensors/mydatajson": (
        "L1_RMS_A", "L2_RMS_A", "L3_RMS_A",
        "L1_RMS_V", "L2_RMS_V", "L3_RMS_V",
        "L1_PF_Fac", "L2_PF_Fac", "L3_PF_Fac",
        "ExportReactive_VAr", "ImportReactive_VAr",
    ),
    "meterConsumptionTotal/mydatajson": ("Fwd_Act_Wh", "Rev_Act_Wh"),
    "meterConsumptionFwd/mydatajson": (
        "Fwd_W", "Fwd_Avg_W",
        "L1_Fwd_W", "L2_Fwd_W", "L3_Fwd_W",
        "L1_Fwd_Avg_W", "L2_Fwd_Avg_W", "L3_Fwd_Avg_W",
    ),
    "meterConsumptionRev/mydatajson": (
        "Rev_W", "Rev_Avg_W",
        "L1_Rev_W", "L2_Rev_W", "L3_Rev_W",
        "L1_Rev_Avg_W", "L2_Rev_Avg_W", "L3_Rev_Avg_W",
    ),
    "frequency/mydatajson": ("Freq_mHz",),
}  # fmt: skip

#: The last will topic below ``<topic>`` and its payloads (retained).
DABBLER_LWT = "lwt"
DABBLER_ONLINE = "Online"
DABBLER_OFFLINE = "Offline"

#: The fields of the firmware's ``/getDashDataWS`` answer, in its order.
DASH_FIELDS: tuple[str, ...] = (
    "ESP_SW", "ESP_SW_By", "ESP_SW_Version",
    "Meter_Manufacturer", "Meter_Model", "Meter_SW_Version", "Utility_SN",
    "CurrentDateTimeString", "CurrentDateTime",
    "Fwd_Act_Wh", "Rev_Act_Wh", "Fwd_W", "Rev_W", "Freq_mHz",
    "L1_RMS_A", "L2_RMS_A", "L3_RMS_A",
    "L1_RMS_V", "L2_RMS_V", "L3_RMS_V",
    "L1_Fwd_W", "L2_Fwd_W", "L3_Fwd_W",
    "L1_Rev_W", "L2_Rev_W", "L3_Rev_W",
    "Fwd_Avg_W", "Rev_Avg_W",
    "L1_Fwd_Avg_W", "L2_Fwd_Avg_W", "L3_Fwd_Avg_W",
    "L1_Rev_Avg_W", "L2_Rev_Avg_W", "L3_Rev_Avg_W",
)  # fmt: skip


def _int(value: float | None, scale: float = 1.0) -> int:
    return 0 if value is None else round(value * scale)


def dabbler_json(
    reading: Reading,
    *,
    identity: MeterIdentity | None = None,
    averages: PowerAverages | None = None,
    fields: Sequence[str] | None = None,
) -> dict[str, int | str]:
    """``reading`` as the old firmware's JSON object (field names, integer units).

    Without ``averages`` the ``*_Avg_W`` fields repeat the present values (what the simulator's
    BT28 does too).  ``fields`` selects and orders the result (e.g. :data:`DASH_FIELDS` or one
    group of :data:`DABBLER_TOPICS`); by default every field is returned.
    """
    avg = averages.watts if averages is not None else {}

    def power(name: str) -> int:
        return _int(getattr(reading, name))

    def average(name: str) -> int:
        value = avg.get(name)
        return power(name) if value is None else round(value)

    at = reading.at.astimezone(dt.UTC)
    data: dict[str, int | str] = {
        "ESP_SW": SOFTWARE,
        "ESP_SW_By": SOFTWARE_BY,
        "ESP_SW_Version": __version__,
        "Meter_Manufacturer": identity.manufacturer if identity else "",
        "Meter_Model": identity.model if identity else "",
        "Meter_SW_Version": identity.firmware if identity else "",
        "Utility_SN": (identity.utility_serial_number or identity.serial_number)
        if identity
        else "",
        "CurrentDateTimeString": at.strftime("%Y-%m-%d %H:%M:%S"),
        "CurrentDateTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Fwd_Act_Wh": _int(reading.forward_active_energy_wh),
        "Rev_Act_Wh": _int(reading.reverse_active_energy_wh),
        "Fwd_W": power("active_power_import_w"),
        "Rev_W": power("active_power_export_w"),
        "Freq_mHz": _int(reading.frequency_hz, 1000),
        "Fwd_Avg_W": average("active_power_import_w"),
        "Rev_Avg_W": average("active_power_export_w"),
        "ImportReactive_VAr": _int(reading.reactive_power_import_var),
        "ExportReactive_VAr": _int(reading.reactive_power_export_var),
    }
    for n, phase in enumerate(PHASES, start=1):
        data[f"L{n}_RMS_A"] = _int(getattr(reading, f"current_{phase}_a"), 1000)
        data[f"L{n}_RMS_V"] = _int(getattr(reading, f"voltage_{phase}_v"), 1000)
        data[f"L{n}_PF_Fac"] = _int(getattr(reading, f"power_factor_{phase}"), 1000)
        data[f"L{n}_Fwd_W"] = power(f"active_power_import_{phase}_w")
        data[f"L{n}_Rev_W"] = power(f"active_power_export_{phase}_w")
        data[f"L{n}_Fwd_Avg_W"] = average(f"active_power_import_{phase}_w")
        data[f"L{n}_Rev_Avg_W"] = average(f"active_power_export_{phase}_w")
    if fields is None:
        return data
    return {name: data[name] for name in fields}


def dabbler_messages(
    reading: Reading, *, averages: PowerAverages | None = None
) -> dict[str, dict[str, int | str]]:
    """The firmware's MQTT payloads for ``reading``, by topic below ``<topic>``."""
    data = dabbler_json(reading, averages=averages)
    return {topic: {k: data[k] for k in keys} for topic, keys in DABBLER_TOPICS.items()}
