"""Billing self-reads in the store (SQLite and PostgreSQL): kept once, read back as stored, and
each billing period compared with the gateway's readings -- agreeing when the gateway polled
around every self-read, a mismatch named with its cause when it did not."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from mepgate.store import SqlStore
from mepgate.store.self_reads import TOLERANCE_WH

from ..support.self_reads import billing_history


def test_self_reads_are_stored_once_and_read_back(store: SqlStore) -> None:
    history = billing_history("house", days=2)
    reads = history.self_reads("house")
    assert len(reads) == 2
    assert store.add_self_reads(reads) == 2
    assert store.add_self_reads(reads) == 0  # the same self-reads again: nothing new
    assert store.self_reads("house") == reads
    assert store.self_reads("nobody") == []
    assert store.billing_periods("house")  # two self-reads: one period


def test_periods_agree_with_complete_readings(store: SqlStore) -> None:
    history = billing_history("house")
    store.ingest(history.readings)
    store.add_self_reads(history.self_reads("house"))
    periods = store.billing_periods("house")
    assert len(periods) == len(history.truths) - 1 == 2
    pairs = itertools.pairwise(history.truths)
    for period, (a, b) in zip(periods, pairs, strict=True):
        assert period.meter_forward_wh == b.forward_active_energy_wh - a.forward_active_energy_wh
        assert period.meter_reverse_wh == b.reverse_active_energy_wh - a.reverse_active_energy_wh
        assert period.gateway_forward_wh is not None
        # The gateway's readings every minute: its boundary is the minute before the meter's.
        assert period.gateway_forward_wh == pytest.approx(period.meter_forward_wh, abs=200)
        assert period.verdict == "agrees", period.words
        assert not period.flagged
        assert period.words.startswith("agrees: within")


def test_a_gap_across_a_self_read_is_a_mismatch_named_in_words(store: SqlStore) -> None:
    history = billing_history("house")
    boundary = history.truths[1].meter_time  # the gateway was down for 6 h before it
    gap_start, gap_end = boundary - dt.timedelta(hours=6), boundary + dt.timedelta(hours=1)
    store.ingest(history.without(gap_start, gap_end))
    store.add_self_reads(history.self_reads("house"))
    first, second = store.billing_periods("house")
    for period in (first, second):
        assert period.verdict == "mismatch", period.words
        assert period.flagged
        assert "no readings between" in period.words
        assert "2026-06-30 16:59 UTC" in period.words  # the last reading before the gap
        assert "2026-07-01 00:00 UTC" in period.words  # the first after it
        assert "the meter's self-read is what the grid company bills" in period.words.lower()
    # The energy of the gap lands in the second period: the first misses it.
    assert first.gateway_forward_wh is not None
    assert first.meter_forward_wh is not None
    missing = first.meter_forward_wh - first.gateway_forward_wh
    assert missing > TOLERANCE_WH
    assert second.gateway_forward_wh is not None
    assert second.meter_forward_wh is not None
    assert second.gateway_forward_wh - second.meter_forward_wh == pytest.approx(missing, abs=200)


def test_a_short_gap_is_named_but_agrees(store: SqlStore) -> None:
    history = billing_history("house")
    boundary = history.truths[1].meter_time
    store.ingest(history.without(boundary - dt.timedelta(minutes=30), boundary))
    store.add_self_reads(history.self_reads("house"))
    first, _ = store.billing_periods("house")
    assert first.verdict == "agrees"
    assert "although the gateway has no readings between" in first.words


def test_readings_that_disagree_with_the_registers_are_a_mismatch(store: SqlStore) -> None:
    # Another meter's readings stored under this name (a swapped configuration): the gateway's
    # registers move differently from the meter's self-reads.
    history = billing_history("house")
    other = billing_history("house", seed=99)
    store.ingest(other.readings)
    store.add_self_reads(history.self_reads("house"))
    periods = store.billing_periods("house")
    flagged = [p for p in periods if p.verdict == "mismatch"]
    assert flagged
    assert "disagree with the meter's registers" in flagged[0].words


def test_no_readings_means_no_gateway_data(store: SqlStore) -> None:
    history = billing_history("house", days=2)
    store.add_self_reads(history.self_reads("house"))
    (period,) = store.billing_periods("house")
    assert period.verdict == "no gateway data"
    assert period.gateway_forward_wh is None
    assert "no gateway readings" in period.words


def test_self_reads_survive_reopening(make_store: object, store: SqlStore) -> None:
    history = billing_history("house", days=2)
    store.add_self_reads(history.self_reads("house"))
    reopened = make_store()  # type: ignore[operator]
    assert reopened.self_reads("house") == history.self_reads("house")
    assert reopened.add_self_reads(history.self_reads("house")) == 0
    changed = dataclasses.replace(history.self_reads("house")[0], sequence=77)
    assert reopened.add_self_reads([changed]) == 1
