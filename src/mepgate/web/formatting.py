"""Number, time and duration formatting shared by the templates (``format.js`` formats numbers
the same way in the browser)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mepgate.web.meter_state import describe_offset, describe_seconds

MISSING = "—"


def num(value: object, decimals: int = 0, scale: float = 1.0) -> str:
    """``value * scale`` with ``decimals`` decimals and a thin space between thousands; a
    missing value (older firmware, single-phase meters) is a dash, never a zero.  A value that
    rounds to zero has no sign (``0``, never a minus zero)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    text = f"{value * scale:,.{int(decimals)}f}"
    if not any(digit in text for digit in "123456789"):
        text = text.removeprefix("-")
    return text.replace(",", "\u2009").replace("-", "\u2212")


def when(value: object, zone: ZoneInfo, pattern: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """An aware time in ``zone`` (the gateway's local time zone), to the second."""
    if not isinstance(value, dt.datetime):
        return MISSING
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone).strftime(pattern)


def offset(value: object) -> str:
    """A clock offset in seconds, in words (``3 s ahead of``)."""
    return describe_offset(value) if isinstance(value, int | float) else MISSING


def duration(value: object) -> str:
    """Seconds in words (``42 s``, ``5 min 3 s``)."""
    return describe_seconds(value) if isinstance(value, int | float) else MISSING
