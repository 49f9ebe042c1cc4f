"""C12.19 date/time value types (MEP guide, chapter 4 "Data Types").

The meter sends every date/time as discrete UINT8 fields (BT00 "Time Format" = 2), the year as
two digits meaning 20yy.  These classes keep the fields exactly as sent -- a meter may report
an all-zero stamp for "never" -- and offer :meth:`to_datetime` which returns ``None`` for
stamps that are not a real calendar time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: Two-digit years are years after 2000 ("02 = 2002" in the guide's LTIME_DATE definition).
YEAR_BASE = 2000


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeOfDay:
    """TIME: hour, minute, second (3 bytes)."""

    hour: int
    minute: int
    second: int

    def total_seconds(self) -> int:
        """Seconds since 00:00:00 (e.g. time remaining in a demand interval)."""
        return self.hour * 3600 + self.minute * 60 + self.second


@dataclass(frozen=True, kw_only=True, slots=True)
class STimeDate:
    """STIME_DATE: year, month, day, hour, minute (5 bytes)."""

    year: int
    month: int
    day: int
    hour: int
    minute: int

    def to_datetime(self, tzinfo: dt.tzinfo | None = None) -> dt.datetime | None:
        """The stamp as a datetime, or ``None`` if it is not a valid calendar time."""
        return _to_datetime(self.year, self.month, self.day, self.hour, self.minute, 0, tzinfo)


@dataclass(frozen=True, kw_only=True, slots=True)
class LTimeDate:
    """LTIME_DATE: year, month, day, hour, minute, second (6 bytes)."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int

    def to_datetime(self, tzinfo: dt.tzinfo | None = None) -> dt.datetime | None:
        """The stamp as a datetime, or ``None`` if it is not a valid calendar time."""
        return _to_datetime(
            self.year, self.month, self.day, self.hour, self.minute, self.second, tzinfo
        )

    @classmethod
    def from_datetime(cls, when: dt.datetime) -> LTimeDate:
        """Build a stamp from a datetime (its tzinfo is ignored: convert before calling)."""
        return cls(
            year=when.year,
            month=when.month,
            day=when.day,
            hour=when.hour,
            minute=when.minute,
            second=when.second,
        )


def _to_datetime(
    year: int, month: int, day: int, hour: int, minute: int, second: int, tz: dt.tzinfo | None
) -> dt.datetime | None:
    try:
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None
