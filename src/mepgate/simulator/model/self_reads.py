"""Billing self-reads (BT26): snapshots of BT23 on the meter's schedule, in a circular list.

MEP guide, BT26: self-reads are scheduled by the TOU calendar (BT54) on local (BT55) time, at
ET04's "Self-Read Time" (hour, minute); BT21 says daily and weekly schedules are supported.
The model offers the two a grid company uses -- ``monthly`` (the 1st of each month, the
default) and ``daily`` -- or ``off`` (a meter that keeps none: BT21.2 is 0 and BT26 is not
served).  The list is BT26's: ascending order, circular, never inhibited when it overflows
(BT21 "Self-read Inhibit Overflow" is FALSE), the last entry's element and sequence number
(UINT16, never reset), the number of valid and of unread entries (the head end, not a MEP
client, decrements the latter; nobody does here).

Each entry stamps the local time of the scheduled instant (the model integrates in steps that
end on it, so the registers are exactly those of that instant); a clock set forward past an
instant takes the self-read late, stamped when it was taken.  Ground truth
(:class:`SelfReadTruth`) keeps every self-read ever taken, the overwritten ones too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mepgate.tables.dimensions import ActualRegister
from mepgate.tables.registers import CurrentRegisterData
from mepgate.tables.self_reads import (
    SEQUENCE_MODULUS,
    SelfReadData,
    SelfReadEntry,
    decode_entry,
    entry_layout,
)
from mepgate.tables.timestamps import STimeDate

SCHEDULES = ("monthly", "daily", "off")
"""``--self-read`` choices of the simulator."""
DEFAULT_SCHEDULE = "monthly"


@dataclass(frozen=True, kw_only=True, slots=True)
class SelfReadTruth:
    """One self-read as the model took it (energies in whole Wh, as the registers show them)."""

    sequence: int  # BT26 sequence number (UINT16)
    element: int  # where it was stored in BT26's array
    meter_time: dt.datetime  # UTC, the meter's clock (BT52) when it was taken
    local_time: dt.datetime  # naive, the meter's local (BT55) time: what BT26 stamps
    forward_active_energy_wh: int
    reverse_active_energy_wh: int
    tier_forward_active_energy_wh: tuple[int, ...]
    tier_reverse_active_energy_wh: tuple[int, ...]


def next_instant(local: dt.datetime, schedule: str, hour: int, minute: int) -> dt.datetime:
    """The first scheduled local instant strictly after ``local`` (naive local times)."""
    today = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if schedule == "daily":
        return today if today > local else today + dt.timedelta(days=1)
    first = today.replace(day=1)
    if first > local:
        return first
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return first.replace(year=year, month=month)


class SelfReadRecorder:
    """BT26's list and the schedule that fills it."""

    def __init__(
        self,
        register: ActualRegister,
        *,
        schedule: str,
        local_offset: dt.timedelta,
        start: dt.datetime,
        hour: int = 0,
        minute: int = 0,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"self-read schedule {schedule!r}: choose one of {SCHEDULES}")
        self.schedule = schedule
        self.register = register
        self.capacity = register.number_of_self_reads if schedule != "off" else 0
        self.local_offset = local_offset
        self.hour, self.minute = hour, minute
        size = entry_layout(register).size
        self._empty = decode_entry(bytes(size), register)
        self.entries: list[SelfReadEntry] = [self._empty] * self.capacity
        self.valid = 0
        self.last_element = 0
        self.sequence = 0
        self.unread = 0
        self.overflow = False
        self.taken: list[SelfReadTruth] = []
        self.next_at: dt.datetime | None = None if schedule == "off" else self._next_after(start)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def _next_after(self, meter_time: dt.datetime) -> dt.datetime:
        local = (meter_time + self.local_offset).replace(tzinfo=None)
        upcoming = next_instant(local, self.schedule, self.hour, self.minute)
        return upcoming.replace(tzinfo=dt.UTC) - self.local_offset

    def due(self, meter_time: dt.datetime) -> bool:
        return self.next_at is not None and meter_time >= self.next_at

    def take(
        self,
        meter_time: dt.datetime,
        registers: CurrentRegisterData,
        *,
        forward_wh: int,
        reverse_wh: int,
        tier_forward_wh: tuple[int, ...],
        tier_reverse_wh: tuple[int, ...],
    ) -> SelfReadTruth:
        """Record a self-read now (``meter_time``, UTC): BT23 ``registers`` as encoded, the
        energies for ground truth."""
        scheduled = self.next_at
        on_time = scheduled is not None and meter_time - scheduled < dt.timedelta(minutes=1)
        stamp_utc = scheduled if on_time and scheduled is not None else meter_time
        local = (stamp_utc + self.local_offset).replace(tzinfo=None)
        element = 0 if self.valid == 0 else (self.last_element + 1) % self.capacity
        if self.valid == self.capacity:
            self.overflow = True  # the oldest entry is overwritten
        self.valid = min(self.valid + 1, self.capacity)
        self.unread = min(self.unread + 1, self.capacity)
        self.last_element = element
        self.sequence = (self.sequence + 1) % SEQUENCE_MODULUS
        self.entries[element] = SelfReadEntry(
            bidn=0 if self.register.number_of_demands else None,
            time=STimeDate(
                year=local.year,
                month=local.month,
                day=local.day,
                hour=local.hour,
                minute=local.minute,
            )
            if self.register.date_time_field
            else None,
            season=0 if self.register.season_info_field else None,
            registers=registers,
        )
        truth = SelfReadTruth(
            sequence=self.sequence,
            element=element,
            meter_time=stamp_utc,
            local_time=local,
            forward_active_energy_wh=forward_wh,
            reverse_active_energy_wh=reverse_wh,
            tier_forward_active_energy_wh=tier_forward_wh,
            tier_reverse_active_energy_wh=tier_reverse_wh,
        )
        self.taken.append(truth)
        self.next_at = self._next_after(meter_time)
        return truth

    def table(self) -> SelfReadData:
        """BT26 now."""
        return SelfReadData(
            descending_order=False,
            overflow=self.overflow,
            circular_list=self.capacity > 0,  # "Reads FALSE if max entries is 0"
            inhibit_overflow=False,
            number_of_valid_entries=self.valid,
            last_entry_element=self.last_element,
            last_entry_sequence_number=self.sequence,
            number_of_unread_entries=self.unread,
            entries=tuple(self.entries),
        )
