"""ET36 / ET45 layouts against the MEP guide's offsets, and round trips."""

from __future__ import annotations

import pytest

from mepgate.tables.errors import TruncatedTableError
from mepgate.tables.recurring import (
    ET36_RECORD,
    ET36_RECORD_SIZE,
    ET45_ENTRY_HEAD,
    ET45_ENTRY_HEAD_SIZE,
    ET45_HEADER,
    ET45_HEADER_SIZE,
    ActualDimension,
    RecurringEntryHead,
    decode_et36,
    encode_et36,
    et45_dimensions,
)


def test_offsets_match_the_guide() -> None:
    # ET36: records from offset 1; the guide prints the first record's offsets.
    assert ET36_RECORD.size == ET36_RECORD_SIZE == 17
    assert 1 + ET36_RECORD.offset_of("entry_size") == 3
    assert 1 + ET36_RECORD.offset_of("max_entries") == 5
    assert 1 + ET36_RECORD.offset_of("current_entries") == 7
    # ET45: header 0..5, the first entry from 6 (length 6, identifier 8, handle 10,
    # execution status 12, result 13, the MBR from 14).
    assert ET45_HEADER.size == ET45_HEADER_SIZE == 6
    assert ET45_HEADER.offset_of("valid_entries") == 1
    assert ET45_HEADER.offset_of("last_entry_element") == 2
    assert ET45_HEADER.offset_of("last_entry_sequence") == 3
    assert ET45_HEADER.offset_of("unread_entries") == 5
    assert 6 + ET45_ENTRY_HEAD.offset_of("identifier") == 8
    assert 6 + ET45_ENTRY_HEAD.offset_of("handle") == 10
    assert 6 + ET45_ENTRY_HEAD.offset_of("execution_status") == 12
    assert 6 + ET45_ENTRY_HEAD.offset_of("result") == 13
    assert 6 + ET45_ENTRY_HEAD_SIZE == 14


def test_et36_round_trip_finds_et45() -> None:
    records = (
        ActualDimension(table_number=31, extended=True, entry_size=232, max_entries=255,
                        current_entries=0),
        ActualDimension(table_number=45, extended=True, entry_size=525, max_entries=253,
                        current_entries=32),
    )  # fmt: skip
    data = encode_et36(records)
    assert data[:3] == bytes([2, 31, 0x08])  # count, then TABLE_IDC 0x081F (extended flag)
    assert decode_et36(data) == records
    found = et45_dimensions(decode_et36(data))
    assert found is not None
    assert (found.entry_size, found.current_entries) == (525, 32)
    with pytest.raises(TruncatedTableError, match="2 records need 35 bytes"):
        decode_et36(data[:20])


def test_entry_head_round_trip() -> None:
    head = RecurringEntryHead(
        length=60, identifier=5, namespace=2, handle=3, execution_status=0, result=4
    )
    raw = ET45_ENTRY_HEAD.encode(head)
    assert raw == bytes([60, 0, 5, 0x10, 3, 0, 0, 4])
    assert ET45_ENTRY_HEAD.decode(raw) == head
