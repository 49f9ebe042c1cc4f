"""Value information fields (VIF, VIFE) of EN 13757-3: what a record measures, in what unit.

A :class:`ValueInfo` names the quantity (``"volume"``), the base unit (``"m³"``) and the decimal
exponent the raw number is scaled by (``-3``: litres counted in m³).  The primary VIF table,
the first extension table (VIF ``0xFD``) and the second one (VIF ``0xFB``) are covered for the
quantities sub-meters report; codes outside them are kept with their raw bytes and named
``"vif 0x.."`` so that nothing is lost or guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

#: On-time / operating-time units by the VIF's two low bits (EN 13757-3, primary VIF table).
_DURATION_UNITS = ("s", "min", "h", "d")
_DURATION_SECONDS = (1, 60, 3600, 86400)


@dataclass(frozen=True, slots=True)
class ValueInfo:
    """What one VIF (with its extensions) says.

    ``quantity``: a stable English name (``"energy"``, ``"volume"``, ``"date_time"`` ...);
    ``unit``: the base unit the scaled value is in (``""`` when the value has none);
    ``exponent``: the raw number times ``10**exponent`` is the value in ``unit``;
    ``date_type``: ``"F"``/``"G"``/``"I"`` for date/time records (the data field decides which).
    """

    quantity: str
    unit: str = ""
    exponent: int = 0
    date_type: str | None = None


def primary(vif: int) -> ValueInfo:
    """The primary VIF table (the VIF without its extension bit)."""
    code = vif & 0x7F
    n3, n2 = code & 0x07, code & 0x03
    if code <= 0x07:
        return ValueInfo("energy", "Wh", n3 - 3)
    if code <= 0x0F:
        return ValueInfo("energy", "J", n3)
    if code <= 0x17:
        return ValueInfo("volume", "m³", n3 - 6)
    if code <= 0x1F:
        return ValueInfo("mass", "kg", n3 - 3)
    if code <= 0x23:
        return ValueInfo("on_time", _DURATION_UNITS[n2])
    if code <= 0x27:
        return ValueInfo("operating_time", _DURATION_UNITS[n2])
    if code <= 0x2F:
        return ValueInfo("power", "W", n3 - 3)
    if code <= 0x37:
        return ValueInfo("power", "J/h", n3)
    if code <= 0x3F:
        return ValueInfo("volume_flow", "m³/h", n3 - 6)
    if code <= 0x47:
        return ValueInfo("volume_flow", "m³/min", n3 - 7)
    if code <= 0x4F:
        return ValueInfo("volume_flow", "m³/s", n3 - 9)
    if code <= 0x57:
        return ValueInfo("mass_flow", "kg/h", n3 - 3)
    if code <= 0x5B:
        return ValueInfo("flow_temperature", "°C", n2 - 3)
    if code <= 0x5F:
        return ValueInfo("return_temperature", "°C", n2 - 3)
    if code <= 0x63:
        return ValueInfo("temperature_difference", "K", n2 - 3)
    if code <= 0x67:
        return ValueInfo("external_temperature", "°C", n2 - 3)
    if code <= 0x6B:
        return ValueInfo("pressure", "bar", n2 - 3)
    if code == 0x6C:
        return ValueInfo("date", date_type="G")
    if code == 0x6D:
        return ValueInfo("date_time", date_type="F")
    if code == 0x6E:
        return ValueInfo("hca_units")
    if code <= 0x73:
        return ValueInfo("averaging_duration", _DURATION_UNITS[n2])
    if code <= 0x77:
        return ValueInfo("actuality_duration", _DURATION_UNITS[n2])
    named = {
        0x78: "fabrication_number",
        0x79: "identification",
        0x7A: "bus_address",
        0x7C: "plain_text",
        0x7E: "any",
        0x7F: "manufacturer_specific",
    }
    return ValueInfo(named.get(code, f"vif 0x{code:02X}"))


_FD_NAMED = {
    0x08: "access_number",
    0x09: "medium",
    0x0A: "manufacturer",
    0x0B: "parameter_set",
    0x0C: "model_version",
    0x0D: "hardware_version",
    0x0E: "firmware_version",
    0x0F: "software_version",
    0x10: "customer_location",
    0x11: "customer",
    0x12: "access_code_user",
    0x13: "access_code_operator",
    0x14: "access_code_system_operator",
    0x15: "access_code_developer",
    0x16: "password",
    0x17: "error_flags",
    0x18: "error_mask",
    0x1A: "digital_output",
    0x1B: "digital_input",
    0x1C: "baud_rate",
    0x1D: "response_delay",
    0x1E: "retry",
    0x60: "reset_counter",
    0x61: "cumulation_counter",
    0x67: "special_supplier_information",
}


def extension_fd(vife: int) -> ValueInfo:
    """The first extension table (after VIF ``0xFD``): device data, volts, amperes, ..."""
    code = vife & 0x7F
    if code <= 0x03:
        return ValueInfo("credit", "", (code & 0x03) - 3)
    if code <= 0x07:
        return ValueInfo("debit", "", (code & 0x03) - 3)
    if 0x40 <= code <= 0x4F:
        return ValueInfo("voltage", "V", (code & 0x0F) - 9)
    if 0x50 <= code <= 0x5F:
        return ValueInfo("current", "A", (code & 0x0F) - 12)
    return ValueInfo(_FD_NAMED.get(code, f"vif 0xFD 0x{code:02X}"))


def extension_fb(vife: int) -> ValueInfo:
    """The second extension table (after VIF ``0xFB``): MWh, GJ, large volumes and masses."""
    code = vife & 0x7F
    n1 = code & 0x01
    if code <= 0x01:
        return ValueInfo("energy", "Wh", n1 - 1 + 6)  # 10^(n-1) MWh
    if 0x08 <= code <= 0x09:
        return ValueInfo("energy", "J", n1 - 1 + 9)  # 10^(n-1) GJ
    if 0x10 <= code <= 0x11:
        return ValueInfo("volume", "m³", n1 + 2)
    if 0x18 <= code <= 0x19:
        return ValueInfo("mass", "kg", n1 + 2 + 3)  # 10^(n+2) t
    if 0x28 <= code <= 0x29:
        return ValueInfo("power", "W", n1 - 1 + 6)  # 10^(n-1) MW
    if 0x30 <= code <= 0x31:
        return ValueInfo("power", "J/h", n1 - 1 + 9)  # 10^(n-1) GJ/h
    return ValueInfo(f"vif 0xFB 0x{code:02X}")


def correction(vife: int) -> int:
    """A combinable VIFE's decimal correction of the value (``E111 0nnn``: x10^(nnn-6),
    ``E111 1101``: x1000); 0 for every other VIFE (they qualify, not scale)."""
    code = vife & 0x7F
    if 0x70 <= code <= 0x77:
        return (code & 0x07) - 6
    if code == 0x7D:
        return 3
    return 0


def duration_seconds(unit: str) -> int | None:
    """Seconds per unit of an on-time / duration value (``"h"`` -> 3600)."""
    if unit in _DURATION_UNITS:
        return _DURATION_SECONDS[_DURATION_UNITS.index(unit)]
    return None
