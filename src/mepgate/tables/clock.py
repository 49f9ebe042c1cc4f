"""Clocks: BT52 "UTC Clock" and BT55 "Local Clock State" (MEP guide, sections of those names)."""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import LTIME_DATE, Field, Layout, bits, flag, packed
from mepgate.tables.ids import TableId
from mepgate.tables.table import FixedTable
from mepgate.tables.timestamps import LTimeDate


@dataclass(frozen=True, kw_only=True, slots=True)
class ClockState:
    """BT52 (UTC) or the first 7 bytes of BT55 (local, DST-adjusted)."""

    clock_calendar: LTimeDate
    day_of_week: int  # 0 = Sunday
    dst_in_effect: bool
    gmt: bool
    time_zone_applied: bool
    dst_applied: bool


_CLOCK_FIELDS = [
    Field("clock_calendar", LTIME_DATE),
    packed(
        1,
        bits("day_of_week", 0, 2),
        flag("dst_in_effect", 3),
        flag("gmt", 4),
        flag("time_zone_applied", 5),
        flag("dst_applied", 6),
    ),
]
BT52_LAYOUT: Layout[ClockState] = Layout("BT52", ClockState, _CLOCK_FIELDS)
BT52 = FixedTable(TableId.BT52, ClockState, BT52_LAYOUT)


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalClockState:
    """BT55 "Local Clock State": the local clock and the active tariff (tier)."""

    clock_calendar: LTimeDate
    day_of_week: int
    dst_in_effect: bool
    gmt: bool
    time_zone_applied: bool
    dst_applied: bool
    current_tier: int  # 0-based; the LCD shows tier + 1
    tier_drive: int
    special_schedule_active: int
    season: int


BT55_LAYOUT: Layout[LocalClockState] = Layout(
    "BT55",
    LocalClockState,
    [
        *_CLOCK_FIELDS,
        packed(
            2,
            bits("current_tier", 0, 2),
            bits("tier_drive", 6, 7),
            bits("special_schedule_active", 8, 11),
            bits("season", 12, 15),
        ),
    ],
)


BT55 = FixedTable(TableId.BT55, LocalClockState, BT55_LAYOUT)
