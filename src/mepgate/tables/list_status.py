"""The ANSI C12.19 list status that heads a table holding a list (BT26 self-reads, BT74 events).

Such a table starts with one byte of list status flags -- order (bit 0: entries in descending
order), overflow (bit 1), list type (bit 2: circular), inhibit overflow (bit 3) -- then the
number of valid entries, the array element of the last entry, the last entry's sequence number
and the number of unread entries.  The fields and their order are the same in every such table;
only the widths of the counters differ (BT26: UINT8 counts, a UINT16 sequence number; BT74:
UINT16 counts, a UINT32 sequence number), so each table passes its own.

A table's value type derives from :class:`ListStatus` and adds its entries; its header layout
decodes into :class:`ListStatus` itself (or into the table's type with no entries).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mepgate.tables._layout import Field, Kind, flag, packed


@dataclass(frozen=True, kw_only=True, slots=True)
class ListStatus:
    """A list's header: its status flags and where its newest entry is."""

    descending_order: bool
    overflow: bool
    circular_list: bool
    inhibit_overflow: bool
    number_of_valid_entries: int
    last_entry_element: int
    last_entry_sequence_number: int
    number_of_unread_entries: int

    def list_status(self) -> ListStatus:
        """The header's fields alone, as a plain :class:`ListStatus` (a table's value without
        its entries)."""
        return ListStatus(**{f.name: getattr(self, f.name) for f in fields(ListStatus)})


def list_status_fields(*, count: Kind, sequence: Kind) -> list[Field]:
    """The header's fields in wire order: the flags byte, then the valid entries, the last
    entry's element and the unread entries as ``count``, the last sequence number as
    ``sequence``."""
    return [
        packed(
            1,
            flag("descending_order", 0),
            flag("overflow", 1),
            flag("circular_list", 2),
            flag("inhibit_overflow", 3),
        ),
        Field("number_of_valid_entries", count),
        Field("last_entry_element", count),
        Field("last_entry_sequence_number", sequence),
        Field("number_of_unread_entries", count),
    ]
