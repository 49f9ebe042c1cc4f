"""BT74 "History Log Data": a circular log of what the meter lived through.

The MEP guide leaves event ids to "the documentation for your meter"; the ids here are the
ANSI C12.19 standard history codes (an assumption until a meter's list is known), the same
table the gateway decodes with (:mod:`mepgate.tables.event_codes`).  :attr:`EventLog.history`
is the ground truth: every event ever logged, also those the circular log overwrote.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum

from mepgate.tables.dimensions import Dimensions
from mepgate.tables.errors import InvalidDimensionError
from mepgate.tables.events import USER_ID_MEP, USER_ID_NONE, HistoryEntry, HistoryLog
from mepgate.tables.timestamps import LTimeDate


class EventId(IntEnum):
    """ANSI C12.19 standard event codes the simulator logs."""

    PRIMARY_POWER_DOWN = 1
    PRIMARY_POWER_UP = 2
    TIME_CHANGED_OLD_TIME = 3
    TIME_CHANGED_NEW_TIME = 4
    CONFIGURATION_CHANGED = 11  # "end device programmed": reconfiguration (IDT version change)
    TAMPER_ATTEMPT = 47


class EventLog:
    """BT74's state: entries oldest first, wrapping at BT71 "Number of History Entries"."""

    def __init__(self, dims: Dimensions) -> None:
        if dims.history is None:
            raise InvalidDimensionError(
                "the simulated meter needs an event log configuration (BT71): give the "
                "profile's Dimensions a history"
            )
        self.actual = dims.history  # BT71
        self._capacity = dims.history.number_of_history_entries
        self._argument_length = dims.history.history_argument_length
        self._entries: list[HistoryEntry | None] = [None] * self._capacity
        self._count = 0  # events ever logged in this log
        self._sequence = 0  # BT74 "Last Entry Sequence Number" (shared with ET79: may skip)
        self.history: list[HistoryEntry] = []  # ground truth: every event, never overwritten

    @property
    def events(self) -> tuple[HistoryEntry, ...]:
        """The valid entries, oldest first."""
        if self._count <= self._capacity:
            ordered = self._entries[: self._count]
        else:
            start = self._count % self._capacity
            ordered = self._entries[start:] + self._entries[:start]
        return tuple(e for e in ordered if e is not None)

    def log(
        self, when: dt.datetime, event: EventId | int, *, argument: int = 0, by_mep: bool = False
    ) -> None:
        """Record ``event`` at ``when`` (UTC); ``argument`` is stored LSB first.  Any 12-bit
        id may be logged (tests log manufacturer and unknown ids)."""
        self._count += 1
        self._sequence += 1
        entry = HistoryEntry(
            time=LTimeDate.from_datetime(when),
            sequence_number=self._sequence & 0xFFFF,
            user_id=USER_ID_MEP if by_mep else USER_ID_NONE,
            event_id=int(event),
            argument=(argument & ((1 << (8 * self._argument_length)) - 1)).to_bytes(
                self._argument_length, "little"
            ),
        )
        self._entries[(self._count - 1) % self._capacity] = entry
        self.history.append(entry)

    def reset(self) -> None:
        """The log cleared and its sequence numbers restarted (a meter reset or swapped)."""
        self._entries = [None] * self._capacity
        self._count = 0
        self._sequence = 0

    def skip_sequence_numbers(self, count: int) -> None:
        """``count`` sequence numbers go to events of the alternate log (ET79, MEP guide: the
        numbering is shared), so this log's next entry jumps them."""
        self._sequence += count

    def table(self) -> HistoryLog:
        """BT74 as a value for :data:`mepgate.tables.events.BT74` to encode."""
        empty = HistoryEntry(
            time=LTimeDate(year=2000, month=0, day=0, hour=0, minute=0, second=0),
            sequence_number=0,
            user_id=0,
            event_id=0,
            argument=bytes(self._argument_length),
        )
        return HistoryLog(
            descending_order=False,
            overflow=self._count > self._capacity,
            circular_list=True,
            inhibit_overflow=False,
            number_of_valid_entries=min(self._count, self._capacity),
            last_entry_element=(self._count - 1) % self._capacity if self._count else 0,
            last_entry_sequence_number=self._sequence,
            number_of_unread_entries=min(self._count, self._capacity),
            entries=tuple(e if e is not None else empty for e in self._entries),
        )
