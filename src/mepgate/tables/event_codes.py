"""Event ids of the history log (BT74, ET79) in plain words.

Where the codes come from: neither guide lists them.  The MEP guide's BT74 and ET79 sections
give the "Event" field as UINT(0..11) at record offset 10 (table offset 21 for the first
record) and say to "consult the documentation for your meter" for the ids and their
arguments; the optical guide's "Reading the Event Log" section (BT70/BT71/BT74) says the same
and adds that up to 64 standard and 152 manufacturer events exist.  What the guides do fix is
the layout: a 12-bit field, which in ANSI C12.19 is the table/procedure number (bits 0..10)
and the standard-or-manufacturer flag (bit 11).  So:

* ids 0..2047 (bit 11 clear) are **ANSI C12.19 standard events**; their names below are the
  C12.19 standard event list (marked ``standard=True``: from the standard, not the guides);
* ids 2048..4095 (bit 11 set) are **manufacturer events** ``2048 + n``: the guides give no
  list, so they read "manufacturer event n";
* an id the table does not know reads "event N" with its argument in hex -- never dropped.

The two alternate-log events the MEP guide names (ET79: "Alternate Event Log Cleared",
"Alternate Event Log Updated") have no ids in the guide, so they are not guessed here.

Sans-IO: a table and pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

MANUFACTURER_FLAG = 0x800
"""Bit 11 of the 12-bit event id (C12.19 STD_VS_MFG_FLAG): a manufacturer event."""


@dataclass(frozen=True, slots=True)
class EventCode:
    """One known event id: its words, a short stable key (MQTT/Home Assistant event type),
    and where the name comes from (``standard``: ANSI C12.19, not the Echelon guides)."""

    code: int
    key: str
    words: str
    standard: bool = True


# ANSI C12.19 standard events (bit 11 clear).  Worded here; the numbering is the standard's.
_STANDARD: tuple[tuple[int, str, str], ...] = (
    (0, "no_event", "no event"),
    (1, "power_down", "power down (outage began)"),
    (2, "power_up", "power up (outage ended)"),
    (3, "time_changed_old", "clock set (time before the change)"),
    (4, "time_changed_new", "clock set (time after the change)"),
    (5, "time_changed_old", "clock set (time before the change)"),
    (6, "time_changed_new", "clock set (time after the change)"),
    (7, "accessed_read", "meter accessed for reading"),
    (8, "accessed_write", "meter accessed for writing"),
    (9, "procedure", "procedure run"),
    (10, "table_written", "table written"),
    (11, "programmed", "meter programmed"),
    (12, "communication_ended", "communication ended normally"),
    (13, "communication_aborted", "communication ended abnormally"),
    (14, "list_pointers_reset", "list pointers reset"),
    (15, "list_pointers_updated", "list pointers updated"),
    (16, "history_log_cleared", "history log cleared"),
    (17, "history_log_pointers_updated", "history log pointers updated"),
    (18, "event_log_cleared", "event log cleared"),
    (19, "event_log_pointers_updated", "event log pointers updated"),
    (20, "demand_reset", "demand reset"),
    (21, "self_read", "self-read (billing read) taken"),
    (22, "dst_on", "daylight saving time began"),
    (23, "dst_off", "daylight saving time ended"),
    (24, "season_changed", "season changed"),
    (25, "rate_changed", "rate changed"),
    (26, "special_schedule", "special schedule activated"),
    (27, "tier_changed", "tariff tier switched"),
    (28, "pending_table_activated", "pending table activated"),
    (29, "pending_table_cleared", "pending table activation cleared"),
    (30, "metering_mode_started", "metering mode started"),
    (31, "metering_mode_stopped", "metering mode stopped"),
    (32, "test_mode_started", "test mode started"),
    (33, "test_mode_stopped", "test mode stopped"),
    (34, "shop_mode_started", "meter shop mode started"),
    (35, "shop_mode_stopped", "meter shop mode stopped"),
    (36, "reprogrammed", "meter reprogrammed"),
    (37, "configuration_error", "configuration error"),
    (38, "self_check_error", "self-check error"),
    (39, "ram_failure", "RAM failure"),
    (40, "rom_failure", "ROM failure"),
    (41, "nvram_failure", "non-volatile memory failure"),
    (42, "clock_error", "clock error"),
    (43, "measurement_error", "measurement error"),
    (44, "low_battery", "low battery"),
    (45, "low_potential", "low potential (voltage loss)"),
    (46, "demand_overload", "demand overload"),
    (47, "tamper", "tamper attempt"),
    (48, "reverse_rotation", "reverse energy flow"),
)

EVENT_CODES: dict[int, EventCode] = {
    code: EventCode(code=code, key=key, words=words) for code, key, words in _STANDARD
}
"""Known event ids (12-bit, as in BT74's "Event" field)."""

UNKNOWN_KEY = "other"
"""The key of an id not in :data:`EVENT_CODES` (a manufacturer event, an unlisted one)."""

EVENT_KEYS: tuple[str, ...] = (*dict.fromkeys(c.key for c in EVENT_CODES.values()), UNKNOWN_KEY)
"""Every key :func:`event_key` returns, each once (Home Assistant's ``event_types``)."""

POWER_DOWN = 1
POWER_UP = 2
TAMPER = 47


def event_key(code: int) -> str:
    known = EVENT_CODES.get(code)
    return known.key if known is not None else UNKNOWN_KEY


def event_words(code: int, argument: bytes = b"") -> str:
    """``code`` in plain words; an unknown one as "event N" (or "manufacturer event n") with
    the argument in hex, so that nothing the meter logged is hidden."""
    known = EVENT_CODES.get(code)
    if known is not None:
        return known.words
    if code & MANUFACTURER_FLAG:
        name = f"manufacturer event {code & (MANUFACTURER_FLAG - 1)}"
    else:
        name = f"event {code}"
    return f"{name} (argument {argument.hex() or 'none'})"
