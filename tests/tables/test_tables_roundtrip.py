"""Encode -> decode round trips for every table, prefixes, and fuzzing (hypothesis)."""

from __future__ import annotations

import contextlib
import types
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepgate.proto.procedures import ProcedureCall, ProcedureResponse
from mepgate.tables import (
    clock,
    dimensions,
    events,
    identity,
    load_profile,
    mep,
    registers,
    self_reads,
    status,
)
from mepgate.tables._layout import (
    Array,
    Bits,
    BoolSet,
    Int,
    Kind,
    Layout,
    LayoutInfo,
    Raw,
    Records,
    Reserved,
    Text,
    UInt,
    Year,
)
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import (
    InvalidDimensionError,
    TableDecodeError,
    TableEncodeError,
    TableLengthError,
    TruncatedTableError,
)
from mepgate.tables.ids import TableId
from mepgate.tables.load_profile import ExtendedStatus, IntervalStatus
from mepgate.tables.profiles import gen4_3phase
from mepgate.tables.registry import CODECS, _collect, decode_table, encode_table
from mepgate.tables.table import FixedTable

# -- strategies derived from the layouts themselves ----------------------------------------
_LATIN1_NO_NUL = st.characters(min_codepoint=1, max_codepoint=255)


def value_strategy(kind: Kind) -> st.SearchStrategy[object]:
    """Any value the kind can encode."""
    if isinstance(kind, Layout):
        return layout_strategy(kind)
    if isinstance(kind, Year):
        return st.integers(2000, 2255)
    if isinstance(kind, UInt):
        return st.integers(0, (1 << (8 * kind.size)) - 1)
    if isinstance(kind, Int):
        half = 1 << (8 * kind.size - 1)
        return st.integers(-half, half - 1)
    if isinstance(kind, Text):
        return st.text(_LATIN1_NO_NUL, max_size=kind.size)
    if isinstance(kind, Raw):
        return st.binary(min_size=kind.size, max_size=kind.size)
    if isinstance(kind, BoolSet):
        return st.lists(st.booleans(), min_size=kind.count, max_size=kind.count).map(tuple)
    if isinstance(kind, Array):
        elem = value_strategy(kind.kind)
        return st.lists(elem, min_size=kind.count, max_size=kind.count).map(tuple)
    if isinstance(kind, Records):
        return st.tuples(*(value_strategy(k) for k in kind.layouts))
    if isinstance(kind, ExtendedStatus):
        nib = st.integers(0, 15)
        return st.builds(
            IntervalStatus,
            common_flags=nib,
            channels=st.lists(nib, min_size=kind.channels, max_size=kind.channels).map(tuple),
        )
    raise TypeError(f"no strategy for {kind!r}")  # a new kind needs a strategy here


def layout_strategy(layout: LayoutInfo) -> st.SearchStrategy[object]:
    """Complete records of ``layout`` (every field set)."""
    fields: dict[str, st.SearchStrategy[object]] = {}
    for f in layout.fields:
        if isinstance(f.kind, Reserved):
            continue
        if isinstance(f.kind, Bits):
            for p in f.kind.parts:
                if p.flag:
                    fields[p.name] = st.booleans()
                elif p.signed:
                    fields[p.name] = st.integers(-(1 << (p.width - 1)), (1 << (p.width - 1)) - 1)
                else:
                    fields[p.name] = st.integers(0, (1 << p.width) - 1)
            continue
        fields[f.name] = value_strategy(f.kind)
    return st.fixed_dictionaries(fields).map(lambda kw: layout.factory(**kw))


def small_dims() -> Dimensions:
    """Gen 4 dimensions shrunk so that whole load profile / event tables stay small."""
    dims = gen4_3phase().dims
    assert dims.load_profile is not None
    assert dims.load_profile.data_sets is not None
    assert dims.history is not None
    small_set = replace(
        dims.load_profile.data_sets[0],
        number_of_blocks=2,
        intervals_per_block=5,
        number_of_channels=3,
    )
    lp = replace(
        dims.load_profile,
        end_reading_supported=True,
        set1_scalar_divisor=True,
        data_sets=(small_set, replace(small_set, number_of_channels=2)),
    )
    mfg = replace(dims.mfg, data_entry_size=40)
    return replace(
        dims,
        register=replace(dims.register, number_of_self_reads=2),
        load_profile=lp,
        mfg=mfg,
        history=replace(dims.history, number_of_history_entries=3),
        energy_register_unit=10,
    )


DIMS = small_dims()

LAYOUTS: dict[int, LayoutInfo] = {
    TableId.BT00: identity.BT00_LAYOUT,
    TableId.BT01: identity.BT01_LAYOUT,
    TableId.BT03: status.bt03_layout(DIMS),
    TableId.BT21: dimensions.BT21_LAYOUT,
    TableId.BT22: dimensions.bt22_layout(DIMS.register),
    TableId.BT23: registers.bt23_layout(DIMS.register),
    TableId.BT26: self_reads.bt26_layout(DIMS.register),
    TableId.BT27: dimensions.bt27_layout(DIMS.register),
    TableId.BT28: registers.bt28_layout(DIMS),
    TableId.BT52: clock.BT52_LAYOUT,
    TableId.BT55: clock.BT55_LAYOUT,
    TableId.BT60: load_profile.lp_dimension_layout("BT60", 2),
    TableId.BT61: load_profile.lp_dimension_layout("BT61", 2),
    TableId.BT62: load_profile.bt62_layout(DIMS),
    TableId.BT63: load_profile.bt63_layout(DIMS),
    TableId.BT64: load_profile.bt64_layout(DIMS, 1),
    TableId.BT65: load_profile.bt64_layout(DIMS, 2),
    TableId.BT71: events.BT71_LAYOUT,
    TableId.BT74: events.bt74_layout(DIMS),
    TableId.ET03: identity.ET03_LAYOUT,
    TableId.ET04: identity.ET04_LAYOUT,
    TableId.ET11: dimensions.ET11_LAYOUT,
    TableId.ET13: mep.et13_layout(DIMS),
    TableId.ET14: mep.et14_layout(DIMS),
    TableId.ET16: mep.et16_layout(DIMS),
    TableId.ET50: mep.et50_layout(DIMS),
    TableId.ET55: dimensions.et55_layout(DIMS.register, DIMS.generation),
}
PROCEDURE_TABLES = (TableId.BT07, TableId.BT08, TableId.ET59, TableId.ET85)
TABLE_IDS = sorted(LAYOUTS)
IDS = [TableId(t).name for t in TABLE_IDS]


def test_every_registered_table_is_exercised() -> None:
    # BT66/BT67 need data sets 3 and 4, which the small dims do not have (tested below).
    assert set(CODECS) == set(LAYOUTS) | set(PROCEDURE_TABLES) | {TableId.BT66, TableId.BT67}


def test_registry_holds_the_declarations_by_their_ids() -> None:
    assert all(table.table_id == table_id for table_id, table in CODECS.items())
    assert CODECS[TableId.BT01] is identity.BT01
    assert CODECS[TableId.BT66] is load_profile.LOAD_PROFILE_DATA[2] is load_profile.BT66


def test_two_declarations_of_one_table_are_refused() -> None:
    twin = types.ModuleType("twin")
    vars(twin)["COPY"] = FixedTable(
        TableId.BT01, identity.GeneralConfiguration, identity.BT00_LAYOUT
    )
    with pytest.raises(ValueError, match="declare the same table"):
        _collect((identity, twin))


@pytest.mark.parametrize("table_id", TABLE_IDS, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_encode_decode_round_trip(table_id: int, data: st.DataObject) -> None:
    layout = LAYOUTS[table_id]
    value = data.draw(layout_strategy(layout))
    raw = encode_table(table_id, value, DIMS)
    assert len(raw) == layout.size
    assert decode_table(table_id, raw, DIMS) == value


@pytest.mark.parametrize("table_id", TABLE_IDS, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_prefix_decodes_to_what_it_holds_or_raises_truncated(
    table_id: int, data: st.DataObject
) -> None:
    layout = LAYOUTS[table_id]
    raw = encode_table(table_id, data.draw(layout_strategy(layout)), DIMS)
    cut = data.draw(st.integers(0, len(raw)))
    try:
        partial = decode_table(table_id, raw[:cut], DIMS)
    except TruncatedTableError:
        return
    # What decoded is what the prefix holds: it re-encodes to the prefix (less any trailing
    # filler bytes, which carry nothing), and that decodes to the same value.
    again = encode_table(table_id, partial, DIMS)
    n = min(len(again), cut)
    assert again[:n] == raw[:n]
    assert not any(raw[n:cut])  # only filler bytes may be dropped ...
    assert not any(again[n:])  # ... or restored
    assert decode_table(table_id, again, DIMS) == partial


@pytest.mark.parametrize("table_id", TABLE_IDS + list(PROCEDURE_TABLES), ids=str)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fuzz_any_bytes_decode_or_raise_table_decode_error(
    table_id: int, data: st.DataObject
) -> None:
    size = LAYOUTS[table_id].size if table_id in LAYOUTS else 16
    blob = data.draw(st.binary(max_size=min(size + 16, 700)))
    with contextlib.suppress(TableDecodeError):
        decode_table(table_id, blob, DIMS)


@pytest.mark.parametrize(
    "table_id",
    # BT60/BT61 take their data set count from their own length, so they are not listed.
    [t for t in TABLE_IDS if getattr(LAYOUTS[t], "exact", False) and t not in (60, 61)],
    ids=str,
)
def test_dimensioned_table_longer_than_dims_raises_length_error(table_id: int) -> None:
    layout = LAYOUTS[table_id]
    with pytest.raises(TableLengthError, match=r"expected at most \d+ bytes"):
        decode_table(table_id, bytes(layout.size + 1), DIMS)


@settings(max_examples=30, deadline=None)
@given(
    number=st.integers(0, 0x0FFF),
    psn=st.integers(0, 255),
    handling=st.integers(0, 15),
    params=st.binary(max_size=20),
    result=st.integers(0, 255),
)
def test_procedure_tables_round_trip(
    number: int, psn: int, handling: int, params: bytes, result: int
) -> None:
    call = ProcedureCall(number=number, psn=psn, parameters=params, response_handling=handling)
    assert decode_table(TableId.BT07, encode_table(TableId.BT07, call, DIMS), DIMS) == call
    resp = ProcedureResponse(number=number, psn=psn, result=result, data=params)
    for tid in (TableId.BT08, TableId.ET59, TableId.ET85):
        assert decode_table(tid, encode_table(tid, resp, DIMS), DIMS) == resp


def test_missing_data_set_is_an_invalid_dimension() -> None:
    with pytest.raises(InvalidDimensionError, match="not set 3"):
        decode_table(TableId.BT66, b"", DIMS)


def test_encoder_rejects_out_of_range_and_wrong_types() -> None:
    bt21 = dimensions.BT21.decode(bytes(10))
    with pytest.raises(TableEncodeError, match=r"0\.\.255"):
        dimensions.BT21.encode(replace(bt21, number_of_tiers=256))
    with pytest.raises(TableEncodeError, match="expected a bool"):
        dimensions.BT21.encode(replace(bt21, time_remaining=1))  # type: ignore[arg-type]
    with pytest.raises(TableEncodeError, match="encodes a ActualRegister"):
        encode_table(TableId.BT21, "not a table", DIMS)
