"""ET36 (the extended logs' actual dimensions) and ET45 (the MEP recurring read log).

MEP guide, "Reading M-Bus Scheduled Read Data": after a device's first read (which goes to
ET16), the meter logs its scheduled reads in ET45, a circular queue whose entry size and
entry count are ET45's record in ET36 (the fifth).  Each ET45 entry is a small head (length,
identifier, device handle, execution status, result) followed by an ET16-style record (MBR:
timestamp, response info, telegram length, telegram).

These layouts are read piecewise by the sub-meter job (header, entry heads, then whole
entries), so they are plain :class:`Layout` s rather than whole-table codecs.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import U8, U16, Field, Layout, bits, fill, flag, packed
from mepgate.tables.errors import TruncatedTableError

ET36_RECORD_SIZE = 17
ET45_HEADER_SIZE = 6
ET45_ENTRY_HEAD_SIZE = 8
ET45_TABLE_NUMBER = 45
RESULT_SUCCESS = 4  # ET45 "Result"


@dataclass(frozen=True, kw_only=True, slots=True)
class ActualDimension:
    """One ET36 record: the dimensions of one extended log table."""

    table_number: int
    extended: bool
    procedure: bool = False
    entry_size: int | None = None
    max_entries: int | None = None
    current_entries: int | None = None


# MEP guide, ET36: Count (UINT8, offset 0), then 17-byte records from offset 1: TABLE_IDC (number
# in bits 0..10, extended flag bit 11, procedure flag bit 12), Entry Size (3), Max Entries (5),
# Current Entries (7), further fields to the record's end.
ET36_RECORD: Layout[ActualDimension] = Layout(
    "ET36 record",
    ActualDimension,
    [
        packed(2, bits("table_number", 0, 10), flag("extended", 11), flag("procedure", 12)),
        Field("entry_size", U16),
        Field("max_entries", U16),
        Field("current_entries", U16),
        fill(ET36_RECORD_SIZE - 8),
    ],
    required=1,
)


def decode_et36(data: bytes) -> tuple[ActualDimension, ...]:
    """ET36: the count, then that many records (the data must hold them all)."""
    if not data:
        raise TruncatedTableError("ET36: no data; read the table again")
    count = data[0]
    need = 1 + count * ET36_RECORD_SIZE
    if len(data) < need:
        raise TruncatedTableError(
            f"ET36: {count} records need {need} bytes, got {len(data)}; read the whole table"
        )
    return tuple(
        ET36_RECORD.decode(data[1 + i * ET36_RECORD_SIZE : 1 + (i + 1) * ET36_RECORD_SIZE])
        for i in range(count)
    )


def encode_et36(records: tuple[ActualDimension, ...]) -> bytes:
    return bytes([len(records)]) + b"".join(ET36_RECORD.encode(r) for r in records)


def et45_dimensions(records: tuple[ActualDimension, ...]) -> ActualDimension | None:
    """ET45's record in ET36 (``None``: the meter has no recurring read log)."""
    return next((r for r in records if r.table_number == ET45_TABLE_NUMBER and r.extended), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class RecurringLogHeader:
    """ET45's header (offsets 0..5)."""

    order: bool
    overflow: bool
    list_type: bool
    inhibit_overflow: bool
    valid_entries: int
    last_entry_element: int
    last_entry_sequence: int
    unread_entries: int


ET45_HEADER: Layout[RecurringLogHeader] = Layout(
    "ET45 header",
    RecurringLogHeader,
    [
        packed(
            1,
            flag("order", 0),
            flag("overflow", 1),
            flag("list_type", 2),
            flag("inhibit_overflow", 3),
        ),
        Field("valid_entries", U8),
        Field("last_entry_element", U8),
        Field("last_entry_sequence", U16),
        Field("unread_entries", U8),
    ],
)


@dataclass(frozen=True, kw_only=True, slots=True)
class RecurringEntryHead:
    """The head of an ET45 entry (guide offsets 6..13 for the first); the MBR follows."""

    length: int  # bytes after this field: head, record, the M-Bus zero terminator
    identifier: int
    namespace: int
    handle: int
    execution_status: int  # 0 normal, 2 delayed (a power-up back-fill)
    result: int  # 4 = success


ET45_ENTRY_HEAD: Layout[RecurringEntryHead] = Layout(
    "ET45 entry head",
    RecurringEntryHead,
    [
        Field("length", U16),
        packed(2, bits("identifier", 0, 10), bits("namespace", 11, 15)),
        Field("handle", U16),
        Field("execution_status", U8),
        Field("result", U8),
    ],
)


def et45_entry_offset(element: int, entry_size: int) -> int:
    return ET45_HEADER_SIZE + element * entry_size
