"""The C12.19 list header that BT26 (self-reads) and BT74 (events) share: the same flags and
fields, read at each table's own counter widths."""

from __future__ import annotations

import pytest

from mepgate.tables.events import BT74_HEADER_LAYOUT, HistoryLog
from mepgate.tables.list_status import ListStatus
from mepgate.tables.self_reads import BT26_HEADER_LAYOUT, SelfReadData


def _bt26(flags: int) -> bytes:
    return bytes([flags, 9, 4]) + (0xBEEF).to_bytes(2, "little") + bytes([2])


def _bt74(flags: int) -> bytes:
    raw = bytes([flags]) + (9).to_bytes(2, "little") + (4).to_bytes(2, "little")
    return raw + (0xBEEF).to_bytes(4, "little") + (2).to_bytes(2, "little")


@pytest.mark.parametrize("bit", range(4))
def test_each_flag_bit_decodes_alike_in_both_tables(bit: int) -> None:
    # Bits 4..7 are not list status flags: set, they change nothing.
    flags = (1 << bit) | 0xF0
    expected = ListStatus(
        descending_order=bit == 0,
        overflow=bit == 1,
        circular_list=bit == 2,
        inhibit_overflow=bit == 3,
        number_of_valid_entries=9,
        last_entry_element=4,
        last_entry_sequence_number=0xBEEF,
        number_of_unread_entries=2,
    )
    assert BT26_HEADER_LAYOUT.decode(_bt26(flags)) == expected
    bt74 = BT74_HEADER_LAYOUT.decode(_bt74(flags))
    assert isinstance(bt74, HistoryLog)
    assert bt74.entries is None
    assert bt74.list_status() == expected


def test_counter_widths_stay_each_tables_own() -> None:
    assert (BT26_HEADER_LAYOUT.size, BT74_HEADER_LAYOUT.size) == (6, 11)
    big = bytes([0]) + (0x1234).to_bytes(2, "little") + (0x0102).to_bytes(2, "little")
    big += (0x10000).to_bytes(4, "little") + (0x0304).to_bytes(2, "little")
    header = BT74_HEADER_LAYOUT.decode(big)
    assert (header.number_of_valid_entries, header.last_entry_element) == (0x1234, 0x0102)
    assert header.last_entry_sequence_number == 0x10000
    assert header.number_of_unread_entries == 0x0304


def test_a_tables_value_without_its_entries_is_its_list_status() -> None:
    value = SelfReadData(
        descending_order=False,
        overflow=True,
        circular_list=True,
        inhibit_overflow=False,
        number_of_valid_entries=1,
        last_entry_element=0,
        last_entry_sequence_number=7,
        number_of_unread_entries=1,
        entries=(),
    )
    status = value.list_status()
    assert type(status) is ListStatus
    assert status == value.header
    assert BT26_HEADER_LAYOUT.encode(status) == bytes([0b110, 1, 0, 7, 0, 1])
