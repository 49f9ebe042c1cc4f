"""Load profile data set 1 (BT61..BT64): snapshots of the energy registers at interval ends.

MEP guide, BT62 "Format" = 32: INT32 snapshot mode, "the exact register value is logged", so
an interval's consumption is the difference to the previous interval (or to BT23 read at the
start).  Blocks fill one after the other and wrap around (BT63 "circular list").  Each block is
encoded once when it changes; BT64 is the concatenation, so partial reads stay cheap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import InvalidDimensionError
from mepgate.tables.load_profile import (
    ChannelSetting,
    DataSetControl,
    DataSetStatus,
    Interval,
    IntervalStatus,
    LoadProfileBlock,
    LoadProfileControl,
    LoadProfileStatus,
    lp_block_layout,
)
from mepgate.tables.timestamps import STimeDate

#: BT62 "Format" for INT32 snapshot data.
INT32_SNAPSHOT_FORMAT = 32
#: Channel sources (MEP guide, BT22 "Source IDs"): forward / reverse active energy,
#: import / export reactive energy -- the registers a billing load profile records.
CHANNEL_SOURCES = (0, 1, 2, 3)
CHANNEL_NAMES = (
    "forward_active_energy_wh",
    "reverse_active_energy_wh",
    "import_reactive_energy_varh",
    "export_reactive_energy_varh",
)

# Extended interval status, common nibble (MEP guide, "Extended Status Field Description");
# bit 0 (DST in effect) stays clear: the model applies no DST.
STATUS_POWER_FAIL = 0b0010
STATUS_CLOCK_FORWARD = 0b0100
STATUS_CLOCK_BACKWARD = 0b1000

_EMPTY_TIME = STimeDate(year=2000, month=0, day=0, hour=0, minute=0)


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadProfileShape:
    """How the simulated meter's load profile is configured (``mepgate simulate --lp-*``).

    ``interval_min`` and ``depth_days`` (``None``: the profile's own, 15 minutes and 100
    blocks of a day) give BT61: a block holds a day of intervals (at most the guide's 1440)
    or, for a shallower profile, all of them; the blocks make up the depth, after which the
    profile wraps.  ``history``: the meter was installed that long before the simulation
    starts, its profile filled meanwhile.  ``present=False``: a meter without a load profile
    (BT60..BT64 are refused).
    """

    interval_min: int | None = None
    depth_days: float | None = None
    history: dt.timedelta = dt.timedelta(0)
    present: bool = True

    def __post_init__(self) -> None:
        if self.interval_min is not None and not (
            1 <= self.interval_min <= 60 and 60 % self.interval_min == 0
        ):
            raise InvalidDimensionError(
                f"a load profile interval of {self.interval_min} min: choose a divisor of 60 "
                "(1, 5, 15, 30, 60...)"
            )
        if self.depth_days is not None and self.depth_days <= 0:
            raise InvalidDimensionError(f"a load profile depth of {self.depth_days} days")

    def dims(self, dims: Dimensions) -> Dimensions:
        """``dims`` with BT61 as configured here."""
        actual = dims.load_profile
        if actual is None or (self.interval_min is None and self.depth_days is None):
            return dims
        current = actual.data_set(1)
        interval = self.interval_min or current.interval_time_min
        per_day = 1440 // interval
        if self.depth_days is None:
            total = current.number_of_blocks * per_day
        else:
            total = max(2, round(self.depth_days * per_day))
        per_block = min(per_day, max(1, total // 2))  # at least two blocks: it must wrap
        blocks = -(-total // per_block)
        data_set = replace(
            current,
            number_of_blocks=blocks,
            intervals_per_block=per_block,
            interval_time_min=interval,
        )
        lp = replace(actual, data_sets=(data_set,))
        resized = replace(dims, load_profile=lp)
        return replace(
            resized,
            load_profile=replace(lp, memory_length=blocks * lp_block_layout(resized).size),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedInterval:
    end: dt.datetime  # UTC
    values: tuple[int, ...]
    status: int


class LoadProfileRecorder:
    """Records intervals of data set 1 as the meter clock crosses interval ends."""

    def __init__(self, dims: Dimensions) -> None:
        if dims.load_profile is None:
            raise InvalidDimensionError(
                "the simulated meter needs a load profile configuration (BT61): give the "
                "profile's Dimensions a load_profile"
            )
        self.dims = dims
        self.actual = dims.load_profile  # BT61 (and BT60: the model uses no spare capacity)
        self.data_set = dims.load_profile.data_set(1)
        self.blocks: list[list[RecordedInterval]] = []
        self.last_block_sequence_number = 0
        self.pending_status = 0
        self._current = 0  # BT63 "Last Block Element"
        self._wrapped = False
        self._encoded: dict[int, bytes] = {}
        self._empty_block = lp_block_layout(dims).encode(self._block_value([]))

    @property
    def interval_s(self) -> int:
        return self.data_set.interval_time_min * 60

    # -- recording ---------------------------------------------------------------------------
    def flag(self, status: int) -> None:
        """Mark the interval in progress (power fail, clock reset)."""
        self.pending_status |= status

    def record(self, end: dt.datetime, values: tuple[int, ...]) -> None:
        """Close the interval ending at ``end`` (UTC) with register snapshots ``values``."""
        interval = RecordedInterval(end=end, values=values, status=self.pending_status)
        self.pending_status = 0
        per_block = self.data_set.intervals_per_block
        if not self.blocks:
            self.blocks.append([])
        elif len(self.blocks[self._current]) == per_block:
            self._current = (self._current + 1) % self.data_set.number_of_blocks
            if self._current < len(self.blocks):
                self._wrapped = True
                self.blocks[self._current] = []
            else:
                self.blocks.append([])
            self.last_block_sequence_number += 1
        self.blocks[self._current].append(interval)
        self._encoded.pop(self._current, None)

    # -- tables ------------------------------------------------------------------------------
    def bt62(self) -> LoadProfileControl:
        channels = tuple(
            ChannelSetting(end_reading=False, interval_source=s, end_reading_source=s)
            for s in CHANNEL_SOURCES[: self.data_set.number_of_channels]
        )
        control = DataSetControl(channels=channels, interval_format=INT32_SNAPSHOT_FORMAT)
        return LoadProfileControl(data_sets=(control,))

    def bt63(self) -> LoadProfileStatus:
        return LoadProfileStatus(
            data_sets=(
                DataSetStatus(
                    block_order_descending=False,
                    overflow=self._wrapped,
                    circular_list=True,
                    block_inhibit_overflow=False,
                    interval_order_descending=False,
                    active_mode=True,
                    test_mode=False,
                    number_of_valid_blocks=len(self.blocks),
                    last_block_element=self._current,
                    last_block_sequence_number=self.last_block_sequence_number,
                    number_of_unread_blocks=len(self.blocks),
                    number_of_valid_intervals=len(self.blocks[self._current]) if self.blocks else 0,
                ),
            )
        )

    def bt64_bytes(self) -> bytes:
        """BT64 as sent: every block, empty ones zero-filled."""
        parts = []
        for index in range(self.data_set.number_of_blocks):
            if index >= len(self.blocks):
                parts.append(self._empty_block)
                continue
            if index not in self._encoded:
                layout = lp_block_layout(self.dims)
                self._encoded[index] = layout.encode(self._block_value(self.blocks[index]))
            parts.append(self._encoded[index])
        return b"".join(parts)

    def _block_value(self, intervals: list[RecordedInterval]) -> LoadProfileBlock:
        channels = self.data_set.number_of_channels
        per_block = self.data_set.intervals_per_block
        empty = Interval(
            status=IntervalStatus(common_flags=0, channels=(0,) * channels), values=(0,) * channels
        )
        recorded = [
            Interval(
                status=IntervalStatus(common_flags=i.status, channels=(0,) * channels),
                values=i.values[:channels],
            )
            for i in intervals
        ]
        end = intervals[-1].end if intervals else None
        return LoadProfileBlock(
            end_time=_stime(end) if end is not None else _EMPTY_TIME,
            interval_recorded=tuple(n < len(intervals) for n in range(per_block)),
            intervals=tuple(recorded + [empty] * (per_block - len(recorded))),
        )


def _stime(when: dt.datetime) -> STimeDate:
    return STimeDate(
        year=when.year, month=when.month, day=when.day, hour=when.hour, minute=when.minute
    )
