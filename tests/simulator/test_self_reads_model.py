"""The simulator's billing self-reads (BT26): taken on schedule at local midnight, BT23 as it
was at that instant, in BT26's circular list -- decoded by the client's decoders and compared
with the model's ground truth."""

from __future__ import annotations

import datetime as dt

import pytest

from mepgate.errors import LocalProtocolError
from mepgate.simulator.model import build_meter, model_of
from mepgate.simulator.model.meter_model import MeterModel
from mepgate.simulator.model.self_reads import next_instant
from mepgate.tables.ids import TableId
from mepgate.tables.registers import register_totals
from mepgate.tables.self_reads import BT26, entries_after

START = dt.datetime(2026, 6, 29, 12, tzinfo=dt.UTC)  # 13:00 local (the model's CET)


def model(schedule: str, profile: str = "gen4-3phase") -> MeterModel:
    return model_of(build_meter(profile, seed=5, start=START, self_read=schedule))


def test_next_instant_monthly_and_daily() -> None:
    local = dt.datetime(2026, 12, 31, 23, 59)
    assert next_instant(local, "monthly", 0, 0) == dt.datetime(2027, 1, 1)
    assert next_instant(local, "daily", 0, 0) == dt.datetime(2027, 1, 1)
    assert next_instant(dt.datetime(2027, 1, 1), "monthly", 0, 0) == dt.datetime(2027, 2, 1)
    assert next_instant(dt.datetime(2027, 1, 1, 0, 30), "daily", 1, 0) == dt.datetime(2027, 1, 1, 1)


def test_monthly_self_reads_at_local_midnight_on_the_first() -> None:
    m = model_of(
        build_meter("gen4-3phase", seed=5, start=dt.datetime(2026, 6, 30, 22, 58, tzinfo=dt.UTC))
    )
    m.advance(dt.datetime(2026, 6, 30, 23, 5, tzinfo=dt.UTC))
    taken = m.snapshot().self_reads
    assert [t.local_time for t in taken] == [dt.datetime(2026, 7, 1)]
    assert taken[0].meter_time == dt.datetime(2026, 6, 30, 23, tzinfo=dt.UTC)  # CET, no DST
    assert taken[0].sequence == 1
    assert m.self_reads.next_at == dt.datetime(2026, 7, 31, 23, tzinfo=dt.UTC)


def test_bt26_holds_the_registers_of_the_instant() -> None:
    m = model("daily")
    first = dt.datetime(2026, 6, 29, 23, tzinfo=dt.UTC)  # 2026-06-30 00:00 local
    m.advance(first)
    at_instant = m.snapshot()
    m.advance(dt.datetime(2026, 7, 2, 12, tzinfo=dt.UTC))
    table = BT26.decode(m.table(TableId.BT26) or b"", m.dims)
    truth = m.snapshot().self_reads
    assert len(truth) == 3
    assert truth[0].forward_active_energy_wh == at_instant.forward_active_energy_wh
    assert truth[0].tier_forward_active_energy_wh == at_instant.tier_forward_active_energy_wh
    assert table.number_of_valid_entries == 3
    assert table.last_entry_element == 2
    assert table.last_entry_sequence_number == 3
    assert table.entries is not None
    for t in truth:
        entry = table.entries[t.element]
        assert entry.time is not None
        assert entry.time.to_datetime() == t.local_time
        assert entry.registers is not None
        assert entry.registers.total is not None
        total = register_totals(entry.registers.total, m.dims.energy_register_unit)
        assert total.forward_active_energy_wh == t.forward_active_energy_wh
        assert total.reverse_active_energy_wh == t.reverse_active_energy_wh
        tiers = [register_totals(b, 1) for b in entry.registers.tiers or ()]
        assert tuple(b.forward_active_energy_wh for b in tiers) == t.tier_forward_active_energy_wh


def test_the_list_wraps_and_says_it_overflowed() -> None:
    m = model("daily")
    capacity = m.dims.register.number_of_self_reads
    m.advance(START + dt.timedelta(days=capacity + 3))
    table = BT26.decode(m.table(TableId.BT26) or b"", m.dims)
    truth = m.snapshot().self_reads
    assert len(truth) == capacity + 3
    assert table.overflow
    assert table.number_of_valid_entries == capacity
    assert table.last_entry_sequence_number == capacity + 3
    assert table.last_entry_element == (capacity + 2) % capacity
    wanted = entries_after(table.header, capacity, None)
    assert [w.sequence for w in wanted] == [t.sequence for t in truth[-capacity:]]
    assert [w.element for w in wanted] == [t.element for t in truth[-capacity:]]


def test_a_meter_without_self_reads_has_no_bt26() -> None:
    m = model_of(
        build_meter(
            "gen3-1phase",
            seed=5,
            start=dt.datetime(2026, 6, 30, 22, 58, tzinfo=dt.UTC),
            self_read="off",
        )
    )
    m.advance(dt.datetime(2026, 6, 30, 23, 5, tzinfo=dt.UTC))  # past a monthly instant
    assert m.table(TableId.BT26) is None
    assert m.dims.register.number_of_self_reads == 0
    assert m.snapshot().self_reads == ()


def test_an_unknown_schedule_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="monthly, daily, off"):
        build_meter("gen4-3phase", seed=1, start=START, self_read="weekly")
