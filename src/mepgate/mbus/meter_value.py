"""The one number a sub-meter is for: gas or water volume in m³, heat energy in kWh.

A device sends many records (history by storage number, tariffs, flow, temperatures, dates);
the gateway shows and stores its present register.  :func:`main_value` picks it -- storage 0,
tariff 0, subunit 0, instantaneous (else the lowest storage number), of the quantity the
medium is billed by -- and converts it to the unit the outputs use (m³ for volumes, kWh for
energy, kg for mass).
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.mbus.telegram import Record, Telegram

#: The quantity each medium category is billed by, in order of preference.
_BILLED_BY = {
    "gas": ("volume", "energy"),
    "water": ("volume",),
    "heat": ("energy", "volume"),
    "electricity": ("energy",),
    "other": ("volume", "energy", "mass"),
}
#: Base unit -> (output unit, factor).
_CONVERT = {
    "m³": ("m³", 1.0),
    "Wh": ("kWh", 1e-3),
    "J": ("kWh", 1 / 3.6e6),
    "kg": ("kg", 1.0),
}


@dataclass(frozen=True, slots=True)
class MainValue:
    """A sub-meter's present register: ``value`` in ``unit`` (``"m³"``, ``"kWh"``, ``"kg"``)."""

    quantity: str
    value: float
    unit: str
    record: Record


def main_value(telegram: Telegram) -> MainValue | None:
    """The present register of ``telegram``'s device, or ``None`` if it has none we know."""
    category = telegram.header.category if telegram.header is not None else "other"
    for quantity in _BILLED_BY.get(category, _BILLED_BY["other"]):
        candidates = [r for r in telegram.records if r.quantity == quantity and r.unit in _CONVERT]
        chosen = next((r for r in candidates if r.is_current), None)
        if chosen is None:  # some meters (Landis+Gyr G350) give their register as storage 1
            plain = [r for r in candidates if r.tariff == 0 and r.subunit == 0]
            chosen = min(plain, key=lambda r: r.storage, default=None)
        if chosen is None:
            continue
        scaled = chosen.scaled
        if scaled is None:
            continue
        unit, factor = _CONVERT[chosen.unit]
        value = scaled * factor
        if factor != 1.0:
            value = round(value, 9)  # 1 Wh = 0.001 kWh exactly, not 0.0010000000000000002
        return MainValue(quantity=quantity, value=value, unit=unit, record=chosen)
    return None
