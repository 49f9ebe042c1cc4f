"""How long each resolution of the history is kept: the ``[storage.retention]`` section.

This is the one definition: the configuration file sets it, the store enforces it.  Days are
whole; 0 keeps a resolution forever.  Per meter polled at 1 Hz (SQLite, measured by
``benchmarks/history_scale.py``), the defaults are:

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
gigabytes of keeping every telegram, and only the day table grows, slowly.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Days = Annotated[int, Field(ge=0, le=1_000_000)]


class Retention(BaseModel):
    """Days each resolution is kept (0 = forever)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_days: Days = 2
    minute_days: Days = 35
    hour_days: Days = 5 * 365 + 2
    day_days: Days = 0

    def keep(self, resolution: str) -> dt.timedelta | None:
        """How long rows of ``resolution`` (``raw``, ``minute``, ``hour``, ``day``, or a table
        name ``rollup_<resolution>``) are kept; ``None`` = forever."""
        days: int = getattr(self, f"{resolution.removeprefix('rollup_')}_days")
        return None if days == 0 else dt.timedelta(days=days)
