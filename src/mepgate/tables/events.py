"""Event log: BT71 "Actual Log" (the dimensions) and BT74 "History Log Data".

BT74 is dimensioned by BT71 fields 3 (argument length) and 5 (number of entries), as the MEP
guide's BT74 section says; BT71 itself is not described in the MEP guide, so its layout is the
ANSI C12.19 one (LOG_FLAGS, NBR_STD_EVENTS, NBR_MFG_EVENTS, HIST_DATA_LENGTH, EVENT_DATA_LENGTH,
NBR_HISTORY_ENTRIES, NBR_EVENT_ENTRIES), which puts those two fields at offsets 3 and 5.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import (
    LTIME_DATE,
    U8,
    U16,
    U32,
    Array,
    Field,
    Layout,
    Raw,
    bits,
    packed,
)
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import InvalidDimensionError
from mepgate.tables.ids import TableId
from mepgate.tables.list_status import ListStatus, list_status_fields
from mepgate.tables.table import DimensionedTable, FixedTable
from mepgate.tables.timestamps import LTimeDate

#: BT74 "User ID" values that are not optical-port users (MEP guide, BT74); the guide's third,
#: 0xFFFE, marks a PLC, P2P or G3 message.
USER_ID_NONE = 0xFFFF
USER_ID_MEP = 0xFFFD


@dataclass(frozen=True, kw_only=True, slots=True)
class ActualLog:
    """BT71 "Actual Log" (ANSI C12.19 layout): dimensions of BT74."""

    log_flags: int
    number_of_std_events: int
    number_of_mfg_events: int
    history_argument_length: int
    event_argument_length: int
    number_of_history_entries: int
    number_of_event_entries: int


BT71_LAYOUT: Layout[ActualLog] = Layout(
    "BT71",
    ActualLog,
    [
        Field("log_flags", U8),
        Field("number_of_std_events", U8),
        Field("number_of_mfg_events", U8),
        Field("history_argument_length", U8),
        Field("event_argument_length", U8),
        Field("number_of_history_entries", U16),
        Field("number_of_event_entries", U16),
    ],
)


BT71 = FixedTable(TableId.BT71, ActualLog, BT71_LAYOUT)


@dataclass(frozen=True, kw_only=True, slots=True)
class HistoryEntry:
    """One BT74 history record (12 + BT71.3 bytes)."""

    time: LTimeDate | None = None  # UTC
    sequence_number: int | None = None  # low 16 bits of the log-wide sequence number
    user_id: int | None = None
    event_id: int | None = None
    argument: bytes | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class HistoryLog(ListStatus):
    """BT74 "History Log Data (Primary Event Log)": the list header, then the records."""

    entries: tuple[HistoryEntry, ...] | None = None


HEADER_SIZE = 11
"""MEP guide, BT74: the header (order/flags, valid entries, last element, last sequence number,
unread entries) before the first record, at offset 11."""

ENTRY_FIXED_SIZE = 12
"""MEP guide, BT74: a record is 12 + BT71.3 bytes (time 6, sequence 2, user 2, event 2)."""


def _log(dims: Dimensions) -> ActualLog:
    log = dims.history
    if log is None:
        raise InvalidDimensionError(
            "BT74 is dimensioned by BT71: read BT71 and pass it as Dimensions.history"
        )
    return log


def bt74_entry_layout(log: ActualLog) -> Layout[HistoryEntry]:
    """One BT74 record (MEP guide, BT74 "History Record Array": time at 11, sequence number at
    17, user id at 19, event UINT(0..11) at 21, argument ARRAY[BT71.3] at 23 for the first)."""
    return Layout(
        "BT74 entry",
        HistoryEntry,
        [
            Field("time", LTIME_DATE),
            Field("sequence_number", U16),
            Field("user_id", U16),
            packed(2, bits("event_id", 0, 11)),
            Field("argument", Raw(log.history_argument_length)),
        ],
        hint="re-read BT71",
    )


def entry_size(log: ActualLog) -> int:
    """Bytes of one BT74 record: 12 + BT71.3."""
    return ENTRY_FIXED_SIZE + log.history_argument_length


def entry_offset(log: ActualLog, element: int) -> int:
    """Offset in BT74 of record ``element`` (0-based array index)."""
    return HEADER_SIZE + element * entry_size(log)


def decode_entries(data: bytes, log: ActualLog) -> tuple[HistoryEntry, ...]:
    """Consecutive BT74 records read at a record's offset (a partial read of whole records)."""
    size = entry_size(log)
    if len(data) % size:
        raise InvalidDimensionError(
            f"BT74: {len(data)} bytes are not whole records of {size} bytes: re-read BT71"
        )
    layout = bt74_entry_layout(log)
    return tuple(layout.decode(data[i : i + size]) for i in range(0, len(data), size))


def _header_fields() -> list[Field]:
    """MEP guide, BT74 offsets 0..10: UINT16 counts, a UINT32 sequence number."""
    return list_status_fields(count=U16, sequence=U32)


BT74_HEADER_LAYOUT = Layout("BT74 header", HistoryLog, _header_fields(), exact=True)
"""BT74's 11-byte header alone (MEP guide, BT74, offsets 0..10); ``entries`` stays ``None``."""


def bt74_layout(dims: Dimensions) -> Layout[HistoryLog]:
    """MEP guide, BT74: 11-byte header, then ARRAY[BT71.5] of (12 + BT71.3)-byte records."""
    log = _log(dims)
    entry = bt74_entry_layout(log)
    return Layout(
        "BT74",
        HistoryLog,
        [
            *_header_fields(),
            Field("entries", Array(entry, log.number_of_history_entries)),
        ],
        required=5,
        exact=True,
        hint="re-read BT71",
    )


# A prefix decodes the entries it holds.
BT74 = DimensionedTable(TableId.BT74, HistoryLog, bt74_layout)
