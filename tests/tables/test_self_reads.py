"""BT26 "Self-Read Data" against the MEP guide's offsets, and the list arithmetic a client uses
to read only the entries it lacks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mepgate.tables import registers, self_reads
from mepgate.tables.errors import TableLengthError, TruncatedTableError
from mepgate.tables.profiles import gen3_1phase, gen4_3phase
from mepgate.tables.registry import table_size
from mepgate.tables.self_reads import (
    BT26,
    HEADER_SIZE,
    SelfReadData,
    SelfReadEntry,
    SelfReadHeader,
    Wanted,
    decode_entry,
    decode_header,
    entries_after,
    entry_layout,
    entry_offset,
    overwritten,
)
from mepgate.tables.timestamps import STimeDate

G4 = gen4_3phase().dims  # 8 demands: the entries carry a BIDN
G3_1 = gen3_1phase().dims  # no demands: no BIDN


def test_header_offsets_match_the_guide() -> None:
    layout = self_reads.BT26_HEADER_LAYOUT
    assert layout.offset_of("descending_order") == 0
    assert layout.offset_of("inhibit_overflow") == 0
    assert layout.offset_of("number_of_valid_entries") == 1
    assert layout.offset_of("last_entry_element") == 2
    assert layout.offset_of("last_entry_sequence_number") == 3
    assert layout.offset_of("number_of_unread_entries") == 5
    assert HEADER_SIZE == 6


def test_entry_offsets_match_the_guide_with_demands() -> None:
    # MEP guide, BT26: BIDN at 6, Time and Date at 8, Season at 13, register data at 14.
    entry = entry_layout(G4.register)
    assert HEADER_SIZE + entry.offset_of("bidn") == 6
    assert HEADER_SIZE + entry.offset_of("time") == 8
    assert HEADER_SIZE + entry.offset_of("season") == 13
    assert HEADER_SIZE + entry.offset_of("registers") == 14


def test_entry_offsets_without_demands_lose_the_bidn() -> None:
    # "IF BT21.4 != 0 then BIDN"; ET31's identical entries print "6 (+2)", "11 (+2)", "12 (+2)".
    entry = entry_layout(G3_1.register)
    assert HEADER_SIZE + entry.offset_of("time") == 6
    assert HEADER_SIZE + entry.offset_of("season") == 11
    assert HEADER_SIZE + entry.offset_of("registers") == 12


def test_an_entry_is_bt23_plus_its_stamp() -> None:
    bt23 = registers.bt23_layout(G4.register).size
    assert entry_layout(G4.register).size == 2 + 5 + 1 + bt23
    assert table_size(26, G4) == HEADER_SIZE + G4.register.number_of_self_reads * (8 + bt23)
    assert entry_offset(G4.register, 3) == HEADER_SIZE + 3 * (8 + bt23)


def test_flags_off_drop_time_and_season() -> None:
    reg = replace(G3_1.register, date_time_field=False, season_info_field=False)
    assert entry_layout(reg).offset_of("registers") == 0


def _entry(seq: int) -> SelfReadEntry:
    reg = G4.register
    block = registers.DataBlock(
        summations=tuple(range(seq, seq + reg.number_of_summations)),
        demands=(
            registers.DemandRecord(
                event_times=(STimeDate(year=2026, month=1, day=1, hour=0, minute=0),),
                cumulative_demand=0,
                continuous_cumulative_demand=0,
                demands=(0,),
            ),
        )
        * reg.number_of_demands,
        coincidents=(),
    )
    return SelfReadEntry(
        bidn=7,
        time=STimeDate(year=2026, month=7, day=1, hour=0, minute=0),
        season=0,
        registers=registers.CurrentRegisterData(
            nbr_demand_resets=0, total=block, tiers=(block,) * reg.number_of_tiers
        ),
    )


def test_round_trip_and_partial_reads() -> None:
    entries = tuple(_entry(i * 100) for i in range(3))
    value = SelfReadData(
        descending_order=False,
        overflow=False,
        circular_list=True,
        inhibit_overflow=False,
        number_of_valid_entries=3,
        last_entry_element=2,
        last_entry_sequence_number=3,
        number_of_unread_entries=3,
        entries=entries,
    )
    data = BT26.encode(value, G4)
    assert BT26.decode(data, G4) == value
    header = decode_header(data[:6])
    assert header == value.header
    assert header.circular_list
    assert header.last_entry_sequence_number == 3
    reg = G4.register
    size = entry_layout(reg).size
    second = data[entry_offset(reg, 1) : entry_offset(reg, 1) + size]
    assert decode_entry(second, reg) == entries[1]
    # Registers of a self-read are BT23's: named and scaled the same way.
    assert entries[1].registers is not None
    assert entries[1].registers.total is not None
    total = registers.register_totals(entries[1].registers.total, 10)
    assert total.forward_active_energy_wh == 1000
    with pytest.raises(TruncatedTableError):
        decode_entry(second[:-1], reg)
    with pytest.raises(TruncatedTableError):
        decode_header(data[:5])
    with pytest.raises(TableLengthError):
        BT26.decode(data + bytes(size * reg.number_of_self_reads), G4)


def _header(valid: int, last_element: int, last_seq: int) -> SelfReadHeader:
    return SelfReadHeader(
        descending_order=False,
        overflow=valid == 12,
        circular_list=True,
        inhibit_overflow=False,
        number_of_valid_entries=valid,
        last_entry_element=last_element,
        last_entry_sequence_number=last_seq,
        number_of_unread_entries=0,
    )


def test_entries_after_reads_only_new_ones_oldest_first() -> None:
    header = _header(valid=5, last_element=4, last_seq=5)
    assert entries_after(header, 12, None) == tuple(Wanted(e, e + 1) for e in range(5))
    assert entries_after(header, 12, 3) == (Wanted(3, 4), Wanted(4, 5))
    assert entries_after(header, 12, 5) == ()


def test_entries_after_a_wrapped_list() -> None:
    # 12 places, 30 self-reads taken: sequence 30 in element (30 - 1) % 12 = 5.
    header = _header(valid=12, last_element=5, last_seq=30)
    assert entries_after(header, 12, 28) == (Wanted(4, 29), Wanted(5, 30))
    # Away for longer than the list holds: the 12 valid ones, 19..30, oldest in element 6.
    away = entries_after(header, 12, 10)
    assert away[0] == Wanted(6, 19)
    assert away[-1] == Wanted(5, 30)
    assert len(away) == 12


def test_entries_after_the_sequence_number_wraps() -> None:
    header = _header(valid=12, last_element=0, last_seq=1)
    assert entries_after(header, 12, 65535) == (Wanted(11, 0), Wanted(0, 1))


def test_empty_list_wants_nothing() -> None:
    assert entries_after(_header(valid=0, last_element=0, last_seq=0), 12, None) == ()
    assert entries_after(_header(valid=3, last_element=2, last_seq=3), 0, None) == ()


def test_an_entry_overwritten_meanwhile_is_known() -> None:
    full = _header(valid=12, last_element=5, last_seq=30)
    one_more = _header(valid=12, last_element=6, last_seq=31)
    assert overwritten(full, one_more, 12, 6)  # the oldest, 6, took sequence 31
    assert not overwritten(full, one_more, 12, 7)
    assert not overwritten(full, full, 12, 6)
    # Not full yet: a new self-read takes an empty element, never one read before.
    partial = _header(valid=5, last_element=4, last_seq=5)
    assert not overwritten(partial, _header(valid=6, last_element=5, last_seq=6), 12, 0)
    # Many self-reads meanwhile (or the sequence wrapped): every element was written.
    assert overwritten(full, _header(valid=12, last_element=5, last_seq=42), 12, 0)
    assert overwritten(
        _header(valid=12, last_element=0, last_seq=65535),
        _header(valid=12, last_element=1, last_seq=0),
        12,
        1,
    )
