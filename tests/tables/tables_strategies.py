"""Hypothesis strategies derived from the table layouts themselves (any table, any dims)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

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
    Rest,
    Text,
    UInt,
    Year,
)
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.load_profile import ExtendedStatus, IntervalStatus
from mepgate.tables.profiles import gen4_3phase

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
    if isinstance(kind, Rest):
        return st.binary(max_size=40)
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
        load_profile=lp,
        mfg=mfg,
        history=replace(dims.history, number_of_history_entries=3),
        energy_register_unit=10,
    )
