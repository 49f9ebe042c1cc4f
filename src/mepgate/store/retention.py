"""How long each resolution is kept, and why the defaults are what they are.

Per meter polled at 1 Hz (SQLite, measured by ``benchmarks/history_scale.py``):

* raw 2 days -- ~172 800 rows; yesterday at full resolution for debugging a glitch, while the
  table stays a few tens of MB and its churn (insert one row, delete one row) reuses pages
  instead of growing the file.
* minute 35 days -- covers "this month" in any time zone at minute precision (the energy
  baseline at local midnight of the 1st is read from minute buckets) and a month chart at fine
  resolution.
* hour 5 years -- ~43 800 rows; a year chart needs only day rows, zoomed-in weeks of past
  years still get hourly detail.  After five years the database stops growing except for the
  day rows.
* day forever -- 365 small rows a year: ten years of history cost well under a megabyte.

So a Raspberry Pi's database settles at roughly 100-150 MB per 1 Hz meter, instead of the
gigabytes of keeping every telegram, and only the day table grows, slowly.  ``None`` keeps a
resolution forever.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import StoreError


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    raw: dt.timedelta | None = dt.timedelta(days=2)
    minute: dt.timedelta | None = dt.timedelta(days=35)
    hour: dt.timedelta | None = dt.timedelta(days=5 * 365 + 2)
    day: dt.timedelta | None = None

    def __post_init__(self) -> None:
        for name in ("raw", "minute", "hour", "day"):
            keep = getattr(self, name)
            if keep is not None and keep < dt.timedelta(hours=1):
                raise StoreError(
                    f"retention.{name} = {keep} is too short: keep at least one hour"
                    " (or None to keep forever)"
                )

    def for_table(self, table: str) -> dt.timedelta | None:
        """The retention of ``raw`` or ``rollup_<tier>``."""
        keep: dt.timedelta | None = getattr(self, table.removeprefix("rollup_"))
        return keep
