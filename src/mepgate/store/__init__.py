"""Long-term history of readings: SQLite by default, PostgreSQL by URL.

>>> store = open_store("sqlite:////var/lib/mepgate/mepgate.db")   # doctest: +SKIP
>>> store.ingest(readings)                                         # doctest: +SKIP
>>> store.history("house", start, end, points=500)                 # doctest: +SKIP

Raw readings are kept briefly; minute, hour and day rollups are maintained on ingest, so a
history query reads a bounded number of rows however old the database is.  See
:mod:`mepgate.config.retention` for the defaults and ``sqlite.py`` for the crash-safety
settings.  Nothing here touches a file or the network before :func:`open_store` is called.
"""

from __future__ import annotations

import datetime as dt

from mepgate.config import Retention

from .aio import AsyncStore
from .base import (
    EnergyDelta,
    EnergyPeriod,
    EnergyTotals,
    FieldStats,
    HistoryPoint,
    HourComparison,
    ProfileInterval,
    Store,
)
from .errors import SchemaTooNewError, StoreError, StoreUrlError
from .events import EVENTS_CURSOR_STATE, MeterEvent, Outage
from .postgres import PostgresStore
from .rollup import Bucket
from .self_reads import BillingPeriod, Boundary, SelfRead
from .sql import Clock, SqlStore, utc_now
from .sqlite import SqliteStore
from .url import parse_url

__all__ = [
    "EVENTS_CURSOR_STATE",
    "AsyncStore",
    "BillingPeriod",
    "Boundary",
    "Bucket",
    "EnergyDelta",
    "EnergyPeriod",
    "EnergyTotals",
    "FieldStats",
    "HistoryPoint",
    "HourComparison",
    "MeterEvent",
    "Outage",
    "PostgresStore",
    "ProfileInterval",
    "SchemaTooNewError",
    "SelfRead",
    "SqlStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUrlError",
    "open_store",
]


def open_store(
    url: str,
    *,
    retention: Retention | None = None,
    local_tz: dt.tzinfo | None = None,
    clock: Clock = utc_now,
) -> SqlStore:
    """Open (creating or upgrading as needed) the store a URL names.

    ``local_tz`` is the zone of "today" and "this month" (default UTC; the gateway passes the
    configured zone).  ``clock`` gives "now" for retention and energy totals.
    """
    parsed = parse_url(url)
    if parsed.engine == "sqlite":
        assert parsed.path is not None
        return SqliteStore(parsed.path, retention=retention, local_tz=local_tz, clock=clock)
    return PostgresStore(url, retention=retention, local_tz=local_tz, clock=clock)
