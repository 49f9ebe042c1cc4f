"""Number formatting shared by the templates (``dashboard.js`` formats the same way)."""

from __future__ import annotations

MISSING = "—"


def num(value: object, decimals: int = 0, scale: float = 1.0) -> str:
    """``value * scale`` with ``decimals`` decimals and a thin space between thousands; a
    missing value (older firmware, single-phase meters) is a dash, never a zero."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    text = f"{value * scale:,.{int(decimals)}f}"
    return text.replace(",", "\u2009").replace("-", "\u2212")
