"""BT26 "Self-Read Data": the meter's billing snapshots of BT23, in a circular list.

MEP guide, BT26 (and "Reading Historical Register Data"): a 6-byte list header -- order,
overflow, list type and inhibit-overflow flags; number of valid entries; the array element of
the last entry; the last entry's sequence number (UINT16, never reset); the number of unread
entries -- then ARRAY[BT21.2 "Number of Self-reads"] of entries.  Each entry is

* the BIDN (UINT16) if BT21.4 "Number of Demands" is not 0 (BT26's own condition; ET31, whose
  entries have the same shape, prints the later offsets as "6 (+2)");
* the time and date of the snapshot, STIME_DATE in the meter's local (TOU, BT55) time, when
  BT21's "Date/Time Field" flag is set;
* the season (UINT8), when BT21's "Season Information Field" flag is set (BT21 says both
  flags govern such fields in all tables of the BT20s decade; the guide's BT26 offsets 8 and 13
  are those of a meter with both set);
* the register data, in BT23's format (:func:`~mepgate.tables.registers.bt23_layout`).

The entries are in ascending order (BT26 "Order" is FALSE): element ``last_entry_element``
holds sequence number ``last_entry_sequence_number``, the element before it (modulo
BT21.2) the one before, and so on for ``number_of_valid_entries``.  A client reads the header,
then only the entries it lacks (:func:`entries_after`), each at :func:`entry_offset`.  The
header is the head end's to maintain: a client never writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mepgate.tables._layout import STIME_DATE, U8, U16, Array, Field, Layout
from mepgate.tables.dimensions import ActualRegister, Dimensions
from mepgate.tables.ids import TableId
from mepgate.tables.list_status import ListStatus, list_status_fields
from mepgate.tables.registers import CurrentRegisterData, bt23_layout
from mepgate.tables.table import DimensionedTable
from mepgate.tables.timestamps import STimeDate

_REREAD = "re-read BT21 (the meter's register configuration may have changed)"
SEQUENCE_MODULUS = 1 << 16
"""BT26 "Last Entry Sequence Number" is a UINT16: it counts self-reads modulo this."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SelfReadEntry:
    """One BT26 entry: when the meter took it, and BT23 as it was then (raw counts)."""

    bidn: int | None = None  # IF BT21.4 != 0: Billing Interface Definition Number
    time: STimeDate | None = None  # IF BT21 date/time field: meter local time (BT55)
    season: int | None = None  # IF BT21 season information field
    registers: CurrentRegisterData | None = None


SelfReadHeader = ListStatus
"""BT26's list header (bytes 0..5): the shared C12.19 :class:`ListStatus`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SelfReadData(ListStatus):
    """BT26 as sent: the header's fields and the entries (a prefix decodes those it holds)."""

    entries: tuple[SelfReadEntry, ...] | None = None

    @property
    def header(self) -> SelfReadHeader:
        return self.list_status()


def _header_fields() -> list[Field]:
    """MEP guide, BT26 bytes 0..5: UINT8 counts, a UINT16 sequence number."""
    return list_status_fields(count=U8, sequence=U16)


#: MEP guide, BT26 bytes 0..5.
BT26_HEADER_LAYOUT: Layout[SelfReadHeader] = Layout("BT26 header", SelfReadHeader, _header_fields())
HEADER_SIZE = BT26_HEADER_LAYOUT.size


def entry_layout(reg: ActualRegister) -> Layout[SelfReadEntry]:
    """One BT26 entry under BT21 ``reg`` (see the module docstring for the conditions)."""
    fields: list[Field] = []
    if reg.number_of_demands != 0:
        fields.append(Field("bidn", U16))
    if reg.date_time_field:
        fields.append(Field("time", STIME_DATE))
    if reg.season_info_field:
        fields.append(Field("season", U8))
    fields.append(Field("registers", bt23_layout(reg)))
    return Layout("BT26 entry", SelfReadEntry, fields, hint=_REREAD)


def bt26_layout(reg: ActualRegister) -> Layout[SelfReadData]:
    """MEP guide, BT26: the 6-byte header, then ARRAY[BT21.2] of entries."""
    return Layout(
        "BT26",
        SelfReadData,
        [*_header_fields(), Field("entries", Array(entry_layout(reg), reg.number_of_self_reads))],
        required=5,
        exact=True,
        hint=_REREAD,
    )


def entry_offset(reg: ActualRegister, element: int) -> int:
    """Where array element ``element`` (0-based) of BT26 starts."""
    return HEADER_SIZE + element * entry_layout(reg).size


def decode_header(data: bytes) -> SelfReadHeader:
    """BT26's first 6 bytes (a partial read at offset 0)."""
    return BT26_HEADER_LAYOUT.decode(data[:HEADER_SIZE])


def decode_entry(data: bytes, reg: ActualRegister) -> SelfReadEntry:
    """One whole entry, read at :func:`entry_offset`."""
    return entry_layout(reg).decode(data)


@dataclass(frozen=True, slots=True)
class Wanted:
    """An entry a client lacks: its array element and its sequence number."""

    element: int
    sequence: int


def entries_after(
    header: SelfReadHeader, capacity: int, last_seen: int | None
) -> tuple[Wanted, ...]:
    """The valid entries newer than sequence number ``last_seen``, oldest first.

    ``capacity`` is BT21.2.  ``None`` (nothing seen yet) wants every valid entry.  Sequence
    numbers wrap at 2**16; more new self-reads than valid entries (the list wrapped while the
    client was away) yields the valid ones -- the older ones are gone.
    """
    valid = min(header.number_of_valid_entries, capacity)
    if valid == 0 or capacity == 0:
        return ()
    last = header.last_entry_sequence_number
    new = valid if last_seen is None else (last - last_seen) % SEQUENCE_MODULUS
    # A sequence number "ahead" of the meter's (a replaced meter, a restored database) looks
    # like a huge step after the wrap: every valid entry is then new to us.
    count = min(new, valid)
    wanted = []
    for back in range(count - 1, -1, -1):
        element = (header.last_entry_element - back) % capacity
        wanted.append(Wanted(element, (last - back) % SEQUENCE_MODULUS))
    return tuple(wanted)


def overwritten(old: SelfReadHeader, new: SelfReadHeader, capacity: int, element: int) -> bool:
    """Whether array ``element`` (valid under header ``old``) was written again by the
    self-reads taken between ``old`` and ``new``: an entry read across that moment may mix two
    self-reads and must be read again."""
    if capacity == 0:
        return False
    taken = (new.last_entry_sequence_number - old.last_entry_sequence_number) % SEQUENCE_MODULUS
    written = {(old.last_entry_element + i) % capacity for i in range(1, min(taken, capacity) + 1)}
    return element in written


# A prefix decodes the entries it holds.
BT26 = DimensionedTable(TableId.BT26, SelfReadData, lambda dims: bt26_layout(dims.register))


def self_read_capacity(dims: Dimensions) -> int:
    """BT21.2: how many entries BT26 holds."""
    return dims.register.number_of_self_reads
