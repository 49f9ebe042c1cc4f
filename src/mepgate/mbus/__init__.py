"""EN 13757-3 (M-Bus) application layer, sans-IO: the sub-meters behind a MEP meter.

* :mod:`.telegram` -- long frames, the variable data structure, DIF/DIFE/VIF/VIFE records;
* :mod:`.units` -- what a VIF measures and its scale;
* :mod:`.meter_value` -- a device's present register in m³ / kWh;
* :mod:`.encode` -- building telegrams (the simulator's devices).

No I/O, no clock, no randomness: bytes in, values or :class:`MBusDecodeError` out.
"""

from mepgate.mbus.meter_value import MainValue, main_value
from mepgate.mbus.telegram import (
    MEDIA,
    Header,
    MBusDecodeError,
    Record,
    Telegram,
    decode_application,
    decode_frame,
    decode_long_header_data,
    decode_records,
    manufacturer_code,
    manufacturer_field,
    medium_category,
)
from mepgate.mbus.units import ValueInfo

__all__ = [
    "MEDIA",
    "Header",
    "MBusDecodeError",
    "MainValue",
    "Record",
    "Telegram",
    "ValueInfo",
    "decode_application",
    "decode_frame",
    "decode_long_header_data",
    "decode_records",
    "main_value",
    "manufacturer_code",
    "manufacturer_field",
    "medium_category",
]
