"""Event ids in words (:mod:`mepgate.tables.event_codes`) and BT74 records decoded from bytes
laid out as the MEP guide's BT74 section gives them."""

from __future__ import annotations

import pytest

from mepgate.tables.errors import InvalidDimensionError
from mepgate.tables.event_codes import (
    EVENT_CODES,
    EVENT_KEYS,
    MANUFACTURER_FLAG,
    event_key,
    event_words,
)
from mepgate.tables.events import (
    BT74_HEADER_LAYOUT,
    HEADER_SIZE,
    ActualLog,
    decode_entries,
    entry_offset,
    entry_size,
)

LOG = ActualLog(
    log_flags=0b110,
    number_of_std_events=8,
    number_of_mfg_events=19,
    history_argument_length=2,
    event_argument_length=2,
    number_of_history_entries=100,
    number_of_event_entries=0,
)


def test_standard_codes_in_words() -> None:
    assert event_words(1) == "power down (outage began)"
    assert event_words(2) == "power up (outage ended)"
    assert event_words(47) == "tamper attempt"
    assert event_key(3) == event_key(5) == "time_changed_old"
    assert all(code < MANUFACTURER_FLAG and c.standard for code, c in EVENT_CODES.items())


def test_unknown_codes_are_kept_with_their_argument() -> None:
    assert event_words(0x805, bytes([0xEF, 0xBE])) == "manufacturer event 5 (argument efbe)"
    assert event_words(1023, b"\x01") == "event 1023 (argument 01)"
    assert event_words(999) == "event 999 (argument none)"
    assert event_key(999) == "other"
    assert len(EVENT_KEYS) == len(set(EVENT_KEYS))
    assert "other" in EVENT_KEYS


def test_records_decode_at_the_guides_offsets() -> None:
    # Two records, as the guide lays them out: LTIME_DATE, sequence UINT16, user id UINT16,
    # event UINT(0..11) with filler bits 12..15, argument ARRAY[BT71.3].
    first = bytes([26, 6, 1, 12, 5, 7]) + (0x1170).to_bytes(2, "little") + b"\xfd\xff"
    first += (0xF001).to_bytes(2, "little") + b"\x34\x12"
    second = bytes([26, 6, 1, 12, 35, 7]) + (0x1171).to_bytes(2, "little") + b"\xff\xff"
    second += (0x0805).to_bytes(2, "little") + b"\x00\x00"
    a, b = decode_entries(first + second, LOG)
    assert a.time is not None
    assert str(a.time.to_datetime()) == "2026-06-01 12:05:07"
    assert (a.sequence_number, a.user_id, a.event_id, a.argument) == (
        0x1170,
        0xFFFD,
        1,
        b"\x34\x12",
    )
    assert (b.event_id, b.user_id) == (0x805, 0xFFFF)  # bit 11: a manufacturer event
    assert entry_size(LOG) == 14
    assert entry_offset(LOG, 0) == HEADER_SIZE == 11
    assert entry_offset(LOG, 2) == 11 + 28
    with pytest.raises(InvalidDimensionError):
        decode_entries(first[:-1], LOG)


def test_header_alone() -> None:
    raw = bytes([0b0110]) + (100).to_bytes(2, "little") + (7).to_bytes(2, "little")
    raw += (70_000).to_bytes(4, "little") + (3).to_bytes(2, "little")
    header = BT74_HEADER_LAYOUT.decode(raw)
    assert header.overflow
    assert header.circular_list
    assert not header.descending_order
    assert (header.number_of_valid_entries, header.last_entry_element) == (100, 7)
    assert header.last_entry_sequence_number == 70_000
    assert header.number_of_unread_entries == 3
    assert header.entries is None
