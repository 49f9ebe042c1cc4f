"""Partial reads of BT28 and BT23: just the byte ranges that hold the values a caller needs.

Every plan is made here, from the tables' layouts for the meter's dimensions (BT21 sizes, BT27
order), so a reconfigured meter gets a new plan and nothing else computes offsets.  Nearby
ranges are merged when reading the gap costs less than another request would (the session's
``merge_gap``).  The bytes read are put back in place and decoded by the one decoder of the
table, so partial and full reads cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from mepgate.errors import LocalProtocolError
from mepgate.tables._layout import Layout
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import TableDecodeError
from mepgate.tables.identity import ET04_LAYOUT
from mepgate.tables.ids import TableId
from mepgate.tables.registers import (
    BT23,
    SUMMATION_SIZE,
    PresentRegisterData,
    PresentValues,
    RegisterTotals,
    bt23_layout,
    bt28_layout,
    decode_data_block,
    present_value_sources,
    register_totals,
    tier_summation_spans,
)
from mepgate.tables.sources import source_field

IDT_VERSION_OFFSET = ET04_LAYOUT.offset_of("idt_version")
"""ET04's IDT version: one byte that changes whenever the meter's table layout does (MEP guide,
"Dynamic Sizing of Tables")."""
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

Span = tuple[int, int]  # (offset, count)


def merge_spans(wanted: list[Span], merge_gap: int, max_count: int) -> tuple[Span, ...]:
    """``(offset, count)`` ranges, sorted, with those at most ``merge_gap`` bytes apart merged
    as long as the merged range fits one reply (``max_count`` bytes); a longer range is split.

    Values spread out over a table (a BT27 with the wanted sources far apart) must not become
    one read longer than a reply can carry: the meter would answer 0x04 every time."""
    spans: list[list[int]] = []
    for offset, count in sorted(wanted):
        if spans:
            start, length = spans[-1]
            end = max(start + length, offset + count)
            if offset - (start + length) <= merge_gap and end - start <= max_count:
                spans[-1][1] = end - start
                continue
        spans.append([offset, count])
    out: list[Span] = []
    for offset, count in spans:
        for start in range(offset, offset + count, max_count):
            out.append((start, min(max_count, offset + count - start)))
    return tuple(out)


def _image(parts: list[tuple[int, bytes]], size: int | None = None) -> bytes:
    """The table's bytes as far as read: ``parts`` put in place, zeros between them."""
    end = max((offset + len(data) for offset, data in parts), default=0)
    image = bytearray(max(end, size or 0))
    for offset, data in parts:
        image[offset : offset + len(data)] = data
    return bytes(image)


# -- BT28 present values ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PresentReadPlan:
    """The byte ranges of BT28 to read for ``names``, under ``dims`` (``layout``: BT28's for
    these dimensions, built once with the plan)."""

    dims: Dimensions
    names: tuple[str, ...]
    spans: tuple[Span, ...]
    layout: Layout[PresentRegisterData]
    table: int = TableId.BT28

    def assemble(self, parts: list[tuple[int, bytes]]) -> PresentValues:
        """Decode the ranges read; values not asked for stay ``None``."""
        decoded = self.layout.decode(_image(parts, self.layout.size)).readings
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


def plan_present_read(
    dims: Dimensions, names: tuple[str, ...], merge_gap: int, *, max_count: int
) -> PresentReadPlan:
    """The fewest, smallest BT28 ranges holding ``names`` (those the meter does not record are
    left out and decode as ``None``)."""
    unknown = [n for n in names if n not in _ALL_FIELDS]
    if unknown:
        raise LocalProtocolError(f"not BT28 present values: {', '.join(unknown)}")
    offsets = value_offsets(dims)
    wanted = [(offset, VALUE_SIZE) for offset in {offsets[n] for n in names if n in offsets}]
    present = tuple(n for n in names if n in offsets)
    spans = merge_spans(wanted, merge_gap, max_count)
    return PresentReadPlan(dims, present, spans, bt28_layout(dims))


# -- BT23 energy registers --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EnergyTotals:
    """BT23's first summations: the total block and, when asked for, every tier block (tier 0
    first; empty when the meter has no tiers or they were not read).  Energies in Wh (ET55's
    unit applied)."""

    total: RegisterTotals
    tiers: tuple[RegisterTotals, ...] = ()


@dataclass(frozen=True, slots=True)
class EnergyReadPlan:
    """The BT23 ranges holding the first summations of the total block (a prefix read at
    offset 0, demand-reset counter included: what some meters accept where a full BT23 read
    fails) and, optionally, of every tier block."""

    dims: Dimensions
    prefix: int  # bytes of the total block's part, read at offset 0
    tiers: tuple[Span, ...]  # each tier's summations, tier 0 first
    spans: tuple[Span, ...]  # what to read: the prefix and ``tiers``, nearby ones merged
    table: int = TableId.BT23

    def assemble(self, parts: list[tuple[int, bytes]]) -> EnergyTotals:
        image = _image(parts)
        block = BT23.decode(image[: self.prefix], self.dims)
        if block.total is None:
            raise TableDecodeError("BT23 partial read returned no total data block")
        reg, unit = self.dims.register, self.dims.energy_register_unit
        tiers = tuple(
            register_totals(decode_data_block(image[o : o + c], reg), unit) for o, c in self.tiers
        )
        return EnergyTotals(total=register_totals(block.total, unit), tiers=tiers)


def plan_energy_read(
    dims: Dimensions, summations: int, merge_gap: int, *, max_count: int, tiers: bool = False
) -> EnergyReadPlan:
    """The fewest BT23 ranges holding summations ``0..summations-1`` of the total block and,
    with ``tiers``, of every tier block."""
    prefix = bt23_layout(dims.register).offset_of("total") + summations * SUMMATION_SIZE
    tier_spans = tier_summation_spans(dims.register, summations) if tiers else ()
    spans = merge_spans([(0, prefix), *tier_spans], merge_gap, max_count)
    return EnergyReadPlan(dims, prefix, tier_spans, spans)
