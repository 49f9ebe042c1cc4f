"""Partial reads of BT28 and BT23: just the byte ranges that hold the values a caller needs.

Offsets come from the tables' layouts for the meter's dimensions (BT21 sizes, BT27 order), so
a reconfigured meter gets a new plan.  Nearby ranges are merged when reading the gap costs less
than another request would (one request per 100 ms at most: MEP guide, "Response timing").
The bytes read are put back in place and decoded by the one BT28 decoder, so partial and full
reads cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from mepgate.errors import LocalProtocolError
from mepgate.proto.constants import MIN_REQUEST_INTERVAL, wire_time
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.registers import (
    PresentValues,
    RegisterTotals,
    bt28_layout,
    decode_data_block,
    present_value_sources,
    register_totals,
    tier_summation_spans,
)
from mepgate.tables.sources import source_field

VALUE_SIZE = 4  # NI_FMAT1 is INT32 on these meters (BT00 "Non-integer Format")

DASHBOARD_FIELDS: tuple[str, ...] = (
    "forward_active_power_w",
    "reverse_active_power_w",
    "rms_current_l1_ma",
    "rms_current_l2_ma",
    "rms_current_l3_ma",
    "rms_voltage_l1_mv",
    "rms_voltage_l2_mv",
    "rms_voltage_l3_mv",
    "frequency_mhz",
    "forward_active_power_l1_w",
    "forward_active_power_l2_w",
    "forward_active_power_l3_w",
    "reverse_active_power_l1_w",
    "reverse_active_power_l2_w",
    "reverse_active_power_l3_w",
)
"""What a live dashboard shows: totals, per-phase current, voltage and power, frequency."""

_ALL_FIELDS = frozenset(f.name for f in fields(PresentValues))


@dataclass(frozen=True, slots=True)
class PresentReadPlan:
    """The byte ranges of BT28 to read for ``names``, under ``dims``."""

    dims: Dimensions
    names: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # (offset, count)
    table_size: int

    def assemble(self, parts: list[tuple[int, bytes]]) -> PresentValues:
        """Decode the ranges read; values not asked for stay ``None``."""
        image = bytearray(self.table_size)
        for offset, data in parts:
            image[offset : offset + len(data)] = data
        decoded = bt28_layout(self.dims).decode(bytes(image)).readings
        keep = {name: getattr(decoded, name) for name in self.names}
        return replace(PresentValues(), **keep)


def value_offsets(dims: Dimensions) -> dict[str, int]:
    """BT28 byte offset of every named present value this meter records."""
    base = bt28_layout(dims).offset_of("present_values")
    out: dict[str, int] = {}
    for index, source in enumerate(present_value_sources(dims)):
        name = source_field(source)
        if name in _ALL_FIELDS:
            out.setdefault(name, base + index * VALUE_SIZE)
    return out


def plan_present_read(dims: Dimensions, names: tuple[str, ...], baud: int) -> PresentReadPlan:
    """The fewest, smallest BT28 ranges holding ``names`` (those the meter does not record are
    left out and decode as ``None``)."""
    unknown = [n for n in names if n not in _ALL_FIELDS]
    if unknown:
        raise LocalProtocolError(f"not BT28 present values: {', '.join(unknown)}")
    offsets = value_offsets(dims)
    wanted = [(offset, VALUE_SIZE) for offset in {offsets[n] for n in names if n in offsets}]
    size = bt28_layout(dims).size
    present = tuple(n for n in names if n in offsets)
    return PresentReadPlan(dims, present, merge_spans(wanted, baud), size)


def merge_spans(wanted: list[tuple[int, int]], baud: int) -> tuple[tuple[int, int], ...]:
    """``(offset, count)`` ranges, sorted, with nearby ones merged: reading a gap is worth it
    while it takes less wire time than a request's minimum spacing."""
    max_gap = int(MIN_REQUEST_INTERVAL / wire_time(1, baud))
    spans: list[list[int]] = []
    for offset, count in sorted(wanted):
        if spans and offset - (spans[-1][0] + spans[-1][1]) <= max_gap:
            spans[-1][1] = max(spans[-1][1], offset + count - spans[-1][0])
        else:
            spans.append([offset, count])
    return tuple((o, c) for o, c in spans)


@dataclass(frozen=True, slots=True)
class TierReadPlan:
    """The BT23 ranges holding the first summations of every tier block, under ``dims``."""

    dims: Dimensions
    tiers: tuple[tuple[int, int], ...]  # (offset, count) of each tier's summations, tier 0 first
    spans: tuple[tuple[int, int], ...]  # what to read: ``tiers``, nearby ones merged

    def assemble(self, parts: list[tuple[int, bytes]]) -> tuple[RegisterTotals, ...]:
        """Each tier's summations by name, energies in Wh (ET55's unit applied)."""
        end = max((offset + len(data) for offset, data in parts), default=0)
        image = bytearray(end)
        for offset, data in parts:
            image[offset : offset + len(data)] = data
        reg, unit = self.dims.register, self.dims.energy_register_unit
        return tuple(
            register_totals(decode_data_block(bytes(image[o : o + c]), reg), unit)
            for o, c in self.tiers
        )


def plan_tier_read(dims: Dimensions, summations: int, baud: int) -> TierReadPlan:
    """The fewest BT23 ranges holding summations ``0..summations-1`` of every tier block."""
    tiers = tier_summation_spans(dims.register, summations)
    return TierReadPlan(dims, tiers, merge_spans(list(tiers), baud))
