"""Load profile tables BT60..BT64 (MEP guide, "BT60" .. "BT64-BT67").

BT60 (maximum) and BT61 (actual) share one layout: a 7-byte header and one 6-byte record per
data set (1..4; the count follows from the table length).  BT62, BT63 and BT64..BT67 are
dimensioned by BT61 (``Dimensions.load_profile``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import (
    I32,
    STIME_DATE,
    U8,
    U16,
    U32,
    Array,
    BoolSet,
    Field,
    Kind,
    Layout,
    Records,
    _Reader,
    flag,
    list_table,
    packed,
)
from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import InvalidDimensionError, TableEncodeError, TableLengthError
from mepgate.tables.ids import TableId
from mepgate.tables.table import DimensionedTable, FixedTable
from mepgate.tables.timestamps import STimeDate

#: C12.19 allows four load profile data sets (BT64..BT67).
MAX_DATA_SETS = 4
_REREAD = "re-read BT61 (the load profile configuration may have changed)"


@dataclass(frozen=True, kw_only=True, slots=True)
class DataSetDimension:
    """Blocks, intervals per block, channels and interval time of one data set."""

    number_of_blocks: int
    intervals_per_block: int
    number_of_channels: int
    interval_time_min: int  # 1..60 minutes; 84 means 24 hours


@dataclass(frozen=True, kw_only=True, slots=True)
class ActualLoadProfile:
    """BT61 "Actual Load Profile" (BT60 "Dimension Load Profile" has the same shape)."""

    memory_length: int
    set1_inhibit_overflow: bool
    set2_inhibit_overflow: bool
    set3_inhibit_overflow: bool
    set4_inhibit_overflow: bool
    end_reading_supported: bool
    end_pulse_supported: bool
    set1_scalar_divisor: bool
    set2_scalar_divisor: bool
    set3_scalar_divisor: bool
    set4_scalar_divisor: bool
    extended_interval_status: bool
    simple_interval_status: bool
    uint8_supported: bool
    uint16_supported: bool
    uint32_supported: bool
    int8_supported: bool
    int16_supported: bool
    int32_supported: bool
    ni_fmat1_supported: bool
    ni_fmat2_supported: bool
    data_sets: tuple[DataSetDimension, ...] | None = None

    def data_set(self, number: int) -> DataSetDimension:
        """Data set ``number`` (1-based, as BT64 = set 1)."""
        sets = self.data_sets or ()
        if not 1 <= number <= len(sets):
            raise InvalidDimensionError(
                f"BT61 describes {len(sets)} load profile data set(s), not set {number}: {_REREAD}"
            )
        return sets[number - 1]

    def scalar_divisor(self, number: int) -> bool:
        flags = (
            self.set1_scalar_divisor,
            self.set2_scalar_divisor,
            self.set3_scalar_divisor,
            self.set4_scalar_divisor,
        )
        return flags[number - 1]


#: BT60 has the same layout; its values are maxima.
DimensionLoadProfile = ActualLoadProfile

_DATA_SET = Layout(
    "BT61 data set",
    DataSetDimension,
    [
        Field("number_of_blocks", U16),
        Field("intervals_per_block", U16),
        Field("number_of_channels", U8),
        Field("interval_time_min", U8),
    ],
)


def lp_dimension_layout(name: str, data_sets: int) -> Layout[ActualLoadProfile]:
    """MEP guide, BT60 / BT61: memory length, flags (offset 4), formats (6), data sets (7)."""
    return Layout(
        name,
        ActualLoadProfile,
        [
            Field("memory_length", U32),
            packed(
                2,
                *(flag(f"set{n}_inhibit_overflow", n - 1) for n in range(1, 5)),
                flag("end_reading_supported", 4),
                flag("end_pulse_supported", 5),
                *(flag(f"set{n}_scalar_divisor", n + 5) for n in range(1, 5)),
                flag("extended_interval_status", 10),
                flag("simple_interval_status", 11),
            ),
            packed(
                1,
                flag("uint8_supported", 0),
                flag("uint16_supported", 1),
                flag("uint32_supported", 2),
                flag("int8_supported", 3),
                flag("int16_supported", 4),
                flag("int32_supported", 5),
                flag("ni_fmat1_supported", 6),
                flag("ni_fmat2_supported", 7),
            ),
            Field("data_sets", Array(_DATA_SET, data_sets)),
        ],
        required=3,
        exact=True,
        hint="check that the data is BT60/BT61",
    )


def _sets_in(data: bytes) -> int:
    header = 7
    return min(MAX_DATA_SETS, max(0, -(-(len(data) - header) // _DATA_SET.size)))


class _LoadProfileDimension:
    """BT60 / BT61: no other table dimensions them, so the data set count is taken from the
    table's length (decoding) or from the value (encoding)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def decode(self, data: bytes) -> ActualLoadProfile:
        return lp_dimension_layout(self.name, _sets_in(data)).decode(data)

    def encode(self, value: ActualLoadProfile) -> bytes:
        return lp_dimension_layout(self.name, len(value.data_sets or ())).encode(value)


BT60 = FixedTable(TableId.BT60, DimensionLoadProfile, _LoadProfileDimension("BT60"))
BT61 = FixedTable(TableId.BT61, ActualLoadProfile, _LoadProfileDimension("BT61"))


def _load_profile(dims: Dimensions) -> ActualLoadProfile:
    if dims.load_profile is None:
        raise InvalidDimensionError(
            "load profile tables are dimensioned by BT61: read BT61 and pass it as "
            "Dimensions.load_profile"
        )
    return dims.load_profile


# -- BT62 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelSetting:
    """BT62 per-channel record (3 bytes)."""

    end_reading: bool
    interval_source: int
    end_reading_source: int


@dataclass(frozen=True, kw_only=True, slots=True)
class DataSetControl:
    """BT62 data set control: channel sources, interval format, optional scalars/divisors."""

    channels: tuple[ChannelSetting, ...] | None = None
    interval_format: int | None = None  # 32 = INT32 snapshot
    scalars: tuple[int, ...] | None = None
    divisors: tuple[int, ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadProfileControl:
    """BT62 "Load Profile Control": one element per BT61 data set."""

    data_sets: tuple[DataSetControl, ...] | None = None


_CHANNEL = Layout(
    "BT62 channel",
    ChannelSetting,
    [
        packed(1, flag("end_reading", 0)),
        Field("interval_source", U8),
        Field("end_reading_source", U8),
    ],
)


def bt62_layout(dims: Dimensions) -> Layout[LoadProfileControl]:
    """MEP guide, BT62: per set ARRAY[BT61.11N] of 3-byte records, format, [scalars, divisors].

    The guide conditions scalars/divisors on BT60's flag; BT61 carries the same bit (actual
    configuration), which is what is used here.
    """
    lp = _load_profile(dims)
    sets = []
    for n, ds in enumerate(lp.data_sets or (), start=1):
        ch = ds.number_of_channels
        fields = [
            Field("channels", Array(_CHANNEL, ch)),
            Field("interval_format", U8),
        ]
        if lp.scalar_divisor(n):
            fields += [Field("scalars", Array(U16, ch)), Field("divisors", Array(U16, ch))]
        sets.append(Layout(f"BT62 set {n}", DataSetControl, fields, hint=_REREAD))
    return list_table("BT62", LoadProfileControl, Field("data_sets", Records(sets)), hint=_REREAD)


BT62 = DimensionedTable(TableId.BT62, LoadProfileControl, bt62_layout)


# -- BT63 --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class DataSetStatus:
    """BT63 status of one data set (13 bytes)."""

    block_order_descending: bool
    overflow: bool
    circular_list: bool
    block_inhibit_overflow: bool
    interval_order_descending: bool
    active_mode: bool
    test_mode: bool
    number_of_valid_blocks: int
    last_block_element: int
    last_block_sequence_number: int
    number_of_unread_blocks: int
    number_of_valid_intervals: int


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadProfileStatus:
    """BT63 "Load Profile Status": one element per BT61 data set."""

    data_sets: tuple[DataSetStatus, ...] | None = None


DATA_SET_STATUS = Layout(
    "BT63 data set",
    DataSetStatus,
    [
        packed(
            1,
            flag("block_order_descending", 0),
            flag("overflow", 1),
            flag("circular_list", 2),
            flag("block_inhibit_overflow", 3),
            flag("interval_order_descending", 4),
            flag("active_mode", 5),
            flag("test_mode", 6),
        ),
        Field("number_of_valid_blocks", U16),
        Field("last_block_element", U16),
        Field("last_block_sequence_number", U32),
        Field("number_of_unread_blocks", U16),
        Field("number_of_valid_intervals", U16),
    ],
)


def bt63_layout(dims: Dimensions) -> Layout[LoadProfileStatus]:
    """MEP guide, BT63 "Load Profile Status"."""
    n = len(_load_profile(dims).data_sets or ())
    return list_table(
        "BT63", LoadProfileStatus, Field("data_sets", Array(DATA_SET_STATUS, n)), hint=_REREAD
    )


BT63 = DimensionedTable(TableId.BT63, LoadProfileStatus, bt63_layout)


# -- BT64..BT67 --------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class IntervalStatus:
    """Extended interval status (MEP guide, "Extended Status Field Description").

    ``common_flags`` is the high nibble of byte 0: bit 0 DST in effect, bit 1 power fail,
    bit 2 clock reset forward, bit 3 clock reset backward.  ``channels`` holds one status
    nibble per channel (0 = none, 1 = overflow, 2 = partial, 3 = long, 4 = skipped, ...).
    """

    common_flags: int
    channels: tuple[int, ...]

    @property
    def power_fail(self) -> bool:
        return bool(self.common_flags & 0b0010)


class ExtendedStatus(Kind):
    """``(channels / 2) + 1`` bytes of nibbles: common status, then channel 0, 1, ..."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.size = channels // 2 + 1

    def read(self, r: _Reader, path: str) -> IntervalStatus:
        raw = r.take(self.size, path)
        nibbles = [n for byte in raw for n in (byte >> 4, byte & 0x0F)]
        return IntervalStatus(
            common_flags=nibbles[0], channels=tuple(nibbles[1 : 1 + self.channels])
        )

    def write(self, value: object, path: str, out: bytearray) -> bool:
        if not isinstance(value, IntervalStatus) or len(value.channels) != self.channels:
            raise TableEncodeError(f"{path}: expected an IntervalStatus for {self.channels} ch")
        nibbles = [value.common_flags, *value.channels]
        nibbles += [0] * (2 * self.size - len(nibbles))
        for i, n in enumerate(nibbles):
            if not 0 <= n <= 0x0F:
                raise TableEncodeError(f"{path}: status nibble {i} is {n}, expected 0..15")
        out += bytes((hi << 4) | lo for hi, lo in zip(nibbles[::2], nibbles[1::2], strict=True))
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class Interval:
    """One interval: extended status and one INT32 end-of-interval value per channel."""

    status: IntervalStatus | None = None
    values: tuple[int, ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadProfileBlock:
    """One BT64 block."""

    end_time: STimeDate | None = None  # UTC
    end_readings: tuple[int, ...] | None = None  # IF BT61 end reading supported
    interval_recorded: tuple[bool, ...] | None = None  # simple status, one bit per interval
    intervals: tuple[Interval, ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadProfileData:
    """BT64..BT67 "Load Profile Data": the blocks of one data set, oldest first."""

    blocks: tuple[LoadProfileBlock, ...] | None = None


def lp_interval_layout(dims: Dimensions, data_set: int = 1) -> Layout[Interval]:
    """MEP guide, BT64 "Intervals": extended status ((channels / 2) + 1 bytes), then one INT32
    end-of-interval value per channel."""
    ch = _load_profile(dims).data_set(data_set).number_of_channels
    return Layout(
        f"BT{63 + data_set} interval",
        Interval,
        [Field("status", ExtendedStatus(ch)), Field("values", Array(I32, ch))],
        hint=_REREAD,
    )


def _header_fields(dims: Dimensions, data_set: int) -> list[Field]:
    lp = _load_profile(dims)
    ds = lp.data_set(data_set)
    fields = [Field("end_time", STIME_DATE)]
    if lp.end_reading_supported:
        fields.append(Field("end_readings", Array(I32, ds.number_of_channels)))
    fields.append(Field("interval_recorded", BoolSet(ds.intervals_per_block)))
    return fields


def lp_block_header_layout(dims: Dimensions, data_set: int = 1) -> Layout[LoadProfileBlock]:
    """The first part of a BT64 block: end time, [end readings], simple status -- what tells
    how many intervals the block holds and when the last one ended (``intervals`` stays
    ``None``)."""
    return Layout(
        f"BT{63 + data_set} block header",
        LoadProfileBlock,
        _header_fields(dims, data_set),
        hint=_REREAD,
    )


def lp_block_layout(dims: Dimensions, data_set: int = 1) -> Layout[LoadProfileBlock]:
    """MEP guide, BT64 block: end time, [end readings], simple status, intervals."""
    n_int = _load_profile(dims).data_set(data_set).intervals_per_block
    fields = [
        *_header_fields(dims, data_set),
        Field("intervals", Array(lp_interval_layout(dims, data_set), n_int)),
    ]
    return Layout(f"BT{63 + data_set} block", LoadProfileBlock, fields, hint=_REREAD)


def bt64_layout(dims: Dimensions, data_set: int = 1) -> Layout[LoadProfileData]:
    """BT64 (data set 1) .. BT67 (data set 4): ARRAY[BT61.7N] of blocks."""
    block = lp_block_layout(dims, data_set)
    n_blocks = _load_profile(dims).data_set(data_set).number_of_blocks
    return list_table(
        f"BT{63 + data_set}", LoadProfileData, Field("blocks", Array(block, n_blocks)), hint=_REREAD
    )


def block_offset(dims: Dimensions, index: int, data_set: int = 1) -> int:
    """Offset of block ``index`` in BT64.., for a partial read of one block."""
    return index * lp_block_layout(dims, data_set).size


def _data_set_table(data_set: int) -> DimensionedTable[LoadProfileData]:
    return DimensionedTable(
        TableId(TableId.BT64 + data_set - 1),
        LoadProfileData,
        lambda dims: bt64_layout(dims, data_set),
    )


#: BT64..BT67: ``LOAD_PROFILE_DATA[n - 1]`` holds data set ``n``.  A prefix decodes the blocks
#: it holds.
LOAD_PROFILE_DATA = tuple(_data_set_table(n) for n in range(1, MAX_DATA_SETS + 1))
BT64, BT65, BT66, BT67 = LOAD_PROFILE_DATA


def decode_lp_block(data: bytes, dims: Dimensions, data_set: int = 1) -> LoadProfileBlock:
    """Decode one block read at :func:`block_offset`."""
    return lp_block_layout(dims, data_set).decode(data)


def interval_offset(dims: Dimensions, block: int, index: int, data_set: int = 1) -> int:
    """Offset in BT64.. of interval ``index`` (0-based, oldest first) of block ``block``, for
    a partial read of just the intervals a client lacks."""
    return (
        block_offset(dims, block, data_set)
        + lp_block_header_layout(dims, data_set).size
        + index * lp_interval_layout(dims, data_set).size
    )


def decode_lp_block_header(data: bytes, dims: Dimensions, data_set: int = 1) -> LoadProfileBlock:
    """Decode a block's header read at :func:`block_offset` (``intervals`` is ``None``)."""
    return lp_block_header_layout(dims, data_set).decode(data)


def decode_lp_intervals(data: bytes, dims: Dimensions, data_set: int = 1) -> tuple[Interval, ...]:
    """Decode whole intervals read at an :func:`interval_offset` (a multiple of the interval
    size; anything else means the read was planned with other dimensions)."""
    layout = lp_interval_layout(dims, data_set)
    if len(data) % layout.size:
        raise TableLengthError(
            f"BT{63 + data_set} intervals: {len(data)} bytes is not a whole number of "
            f"{layout.size}-byte intervals: {_REREAD}"
        )
    return tuple(
        layout.decode(data[at : at + layout.size]) for at in range(0, len(data), layout.size)
    )
