"""The store's tables and their versioned migrations.

Layout (both engines, same names):

* ``schema_version(version, applied_at, description)`` -- one row per applied migration.
* ``meter(id, name)`` -- readings refer to a meter by a small integer id.
* ``raw(meter_id, t_ms, <field>...)`` -- one row per reading, key ``(meter_id, t_ms)``.
* ``rollup_minute|rollup_hour|rollup_day(meter_id, bucket_start, last_at_ms,
  <field>_min, <field>_max, <field>_sum, <field>_n ..., <energy>_last ...)`` -- key
  ``(meter_id, bucket_start)`` (UTC epoch seconds, aligned to the bucket width).  The mean is
  ``sum / n``; ``n`` counts the readings in which the field was present.
* ``submeter``, ``submeter_reading``, ``submeter_rollup`` -- M-Bus sub-meters (v7, see
  :mod:`mepgate.store.submeters`).
* ``self_read(meter_id, sequence, meter_time_ms, local_time, season, gateway_time_ms,
  read_at_ms, <energy>...)`` -- the meter's billing self-reads (BT26), key ``(meter_id,
  sequence, meter_time_ms)``: ``meter_time_ms`` on the meter's clock (UTC), ``gateway_time_ms``
  the same moment on the gateway's clock (the readings' time line), ``local_time`` the stamp as
  the meter sent it (its local time).
* ``profile_interval(meter_id, number, end_ms, meter_end_ms, interval_s, status,
  channel_status, <channel>...)`` -- the meter's load profile intervals as read back (v4), key
  ``(meter_id, number)``: ``number`` is the interval's place in the meter's profile (block
  sequence number times intervals per block plus its index), so an interval is stored once
  however often it is read, and two intervals with the same end time (a clock set back) are
  both kept.  ``end_ms`` is the interval's end on the gateway's clock, ``meter_end_ms`` on
  the meter's.  The rollups carry the profile beside the live readings (v4):
  ``profile_n`` intervals in the bucket, ``profile_last_at_ms`` and
  ``profile_<energy>_last`` the newest one's registers -- never mixed into the live columns.
* ``meter_state(meter, name, value)`` -- small texts a meter's poller keeps across restarts
  (the evidence for a new baseline: ``Store.state``), key ``(meter, name)``; by the meter's
  name, so a meter that has stored no reading yet is not listed among the meters.
* ``meter_event``, ``outage`` (v5) -- the meters' event logs and the outages derived from
  them (:mod:`mepgate.store.events`).

Every migration is an ordered, additive step that runs in its own transaction together with
its ``schema_version`` row, so a crash mid-upgrade leaves the previous version intact.  The
field lists below are frozen per migration: a field added to ``Reading`` later needs a new
migration that adds its columns (a test checks that every ``Reading`` value field is stored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Schema v1 value columns, in order (a frozen copy of Reading.VALUE_FIELDS at v1).
V1_FIELDS: tuple[str, ...] = (
    "forward_active_energy_wh",
    "reverse_active_energy_wh",
    "active_power_import_w",
    "active_power_export_w",
    "active_power_import_l1_w",
    "active_power_import_l2_w",
    "active_power_import_l3_w",
    "active_power_export_l1_w",
    "active_power_export_l2_w",
    "active_power_export_l3_w",
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
    "power_factor_l1",
    "power_factor_l2",
    "power_factor_l3",
    "frequency_hz",
    "reactive_power_var",
    "current_tier",
)
INTEGER_FIELDS = frozenset({"current_tier"})
# The total import/export registers: energy today/this month, the charts' energy.
ENERGY_FIELDS: tuple[str, str] = ("forward_active_energy_wh", "reverse_active_energy_wh")
V1_LAST_FIELDS: tuple[str, ...] = ENERGY_FIELDS

# Schema v2: the import/export registers per TOU tier (a frozen copy of TIER_ENERGY_FIELDS).
V2_FIELDS: tuple[str, ...] = (
    "forward_active_energy_tier1_wh",
    "forward_active_energy_tier2_wh",
    "forward_active_energy_tier3_wh",
    "forward_active_energy_tier4_wh",
    "reverse_active_energy_tier1_wh",
    "reverse_active_energy_tier2_wh",
    "reverse_active_energy_tier3_wh",
    "reverse_active_energy_tier4_wh",
)
V2_LAST_FIELDS: tuple[str, ...] = V2_FIELDS

STORED_FIELDS: tuple[str, ...] = (*V1_FIELDS, *V2_FIELDS)
# Registers whose value at the end of a bucket matters: every energy register.
LAST_FIELDS: tuple[str, ...] = (*V1_LAST_FIELDS, *V2_LAST_FIELDS)


@dataclass(frozen=True, slots=True)
class Tier:
    """A rollup resolution: its name, table and bucket width in seconds."""

    name: str
    table: str
    step_s: int


MINUTE = Tier("minute", "rollup_minute", 60)
HOUR = Tier("hour", "rollup_hour", 3600)
DAY = Tier("day", "rollup_day", 86400)
ROLLUP_TIERS: tuple[Tier, ...] = (MINUTE, HOUR, DAY)
# Raw readings as a pseudo-tier: nominally one per second (the default poll interval).
RAW = Tier("raw", "raw", 1)


def rollup_columns(
    fields: tuple[str, ...] = STORED_FIELDS, last_fields: tuple[str, ...] = LAST_FIELDS
) -> list[str]:
    """The value columns of a rollup table, in the order every statement uses them (or, for a
    migration, the columns of its ``fields`` and ``last_fields``)."""
    columns: list[str] = []
    for name in fields:
        columns += [f"{name}_min", f"{name}_max", f"{name}_sum", f"{name}_n"]
    columns += [f"{name}_last" for name in last_fields]
    return columns


def _rollup_column_type(d: Dialect, column: str) -> str:
    return f"{d.count} NOT NULL DEFAULT 0" if column.endswith("_n") else d.real


def _raw_column_type(d: Dialect, name: str) -> str:
    return d.integer if name in INTEGER_FIELDS else d.real


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the engines' SQL, and nothing else."""

    name: str
    integer: str  # a 64-bit integer column
    real: str  # a double column
    count: str  # a bucket's reading count (sums of it must stay integers)
    meter_id_column: str
    table_suffix: str  # after ``CREATE TABLE (...)``
    least: str  # scalar min that ignores NULLs (SQLite's min() needs a coalesce around it)
    greatest: str

    def smaller(self, a: str, b: str) -> str:
        return f"coalesce({self.least}({a}, {b}), {a}, {b})"

    def larger(self, a: str, b: str) -> str:
        return f"coalesce({self.greatest}({a}, {b}), {a}, {b})"

    def sql(self, statement: str) -> str:
        """Statements are written with ``?`` placeholders; psycopg wants ``%s``."""
        return statement if self.name == "sqlite" else statement.replace("?", "%s")


SQLITE = Dialect(
    name="sqlite",
    integer="INTEGER",
    real="REAL",
    count="INTEGER",
    meter_id_column="id INTEGER PRIMARY KEY",
    # Clustered on the primary key: a range of one meter's buckets is contiguous on disk.
    table_suffix=" WITHOUT ROWID",
    least="min",
    greatest="max",
)
POSTGRES = Dialect(
    name="postgresql",
    integer="BIGINT",
    real="DOUBLE PRECISION",
    count="INTEGER",  # sum(integer) is bigint in PostgreSQL; sum(bigint) would be numeric
    meter_id_column="id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    table_suffix="",
    least="least",
    greatest="greatest",
)


def _v1(d: Dialect) -> list[str]:
    raw_values = ", ".join(f"{name} {_raw_column_type(d, name)}" for name in V1_FIELDS)
    rollup_values = ", ".join(
        f"{col} {_rollup_column_type(d, col)}" for col in rollup_columns(V1_FIELDS, V1_LAST_FIELDS)
    )
    statements = [
        f"CREATE TABLE meter ({d.meter_id_column}, name TEXT NOT NULL UNIQUE)",
        f"CREATE TABLE raw (meter_id {d.integer} NOT NULL REFERENCES meter (id),"
        f" t_ms {d.integer} NOT NULL, {raw_values},"
        f" PRIMARY KEY (meter_id, t_ms)){d.table_suffix}",
    ]
    statements += [
        f"CREATE TABLE {tier.table} (meter_id {d.integer} NOT NULL REFERENCES meter (id),"
        f" bucket_start {d.integer} NOT NULL, last_at_ms {d.integer} NOT NULL,"
        f" {rollup_values}, PRIMARY KEY (meter_id, bucket_start)){d.table_suffix}"
        for tier in ROLLUP_TIERS
    ]
    return statements


def _v2(d: Dialect) -> list[str]:
    """Tier registers: added columns only, NULL in the rows already stored (unknown then)."""
    statements = [f"ALTER TABLE raw ADD COLUMN {n} {_raw_column_type(d, n)}" for n in V2_FIELDS]
    statements += [
        f"ALTER TABLE {tier.table} ADD COLUMN {col} {_rollup_column_type(d, col)}"
        for tier in ROLLUP_TIERS
        for col in rollup_columns(V2_FIELDS, V2_LAST_FIELDS)
    ]
    return statements


def _v3(d: Dialect) -> list[str]:
    """What a poller keeps across restarts, by meter and name (a JSON text each)."""
    return [
        "CREATE TABLE meter_state (meter TEXT NOT NULL, name TEXT NOT NULL,"
        f" value TEXT NOT NULL, PRIMARY KEY (meter, name)){d.table_suffix}"
    ]


# Schema v4: the meter's load profile (INT32 snapshot channels, MEP guide BT62 "Format" 32).
PROFILE_CHANNELS: tuple[str, ...] = (
    "forward_active_energy_wh",
    "reverse_active_energy_wh",
    "import_reactive_energy_varh",
    "export_reactive_energy_varh",
)
PROFILE_LAST_COLUMNS: tuple[str, ...] = tuple(f"profile_{name}_last" for name in ENERGY_FIELDS)
PROFILE_ROLLUP_COLUMNS: tuple[str, ...] = ("profile_n", "profile_last_at_ms", *PROFILE_LAST_COLUMNS)


def _v4(d: Dialect) -> list[str]:
    """The load profile as read from the meter, and its place in the rollups."""
    channels = ", ".join(f"{name} {d.real}" for name in PROFILE_CHANNELS)
    statements = [
        f"CREATE TABLE profile_interval (meter_id {d.integer} NOT NULL REFERENCES meter (id),"
        f" number {d.integer} NOT NULL, end_ms {d.integer} NOT NULL,"
        f" meter_end_ms {d.integer} NOT NULL, interval_s INTEGER NOT NULL,"
        " status INTEGER NOT NULL, channel_status INTEGER NOT NULL,"
        f" {channels}, PRIMARY KEY (meter_id, number)){d.table_suffix}",
        "CREATE INDEX profile_interval_end ON profile_interval (meter_id, end_ms)",
    ]
    for tier in ROLLUP_TIERS:
        statements += [
            f"ALTER TABLE {tier.table} ADD COLUMN profile_n {d.count} NOT NULL DEFAULT 0",
            f"ALTER TABLE {tier.table} ADD COLUMN profile_last_at_ms {d.integer}",
        ]
        statements += [
            f"ALTER TABLE {tier.table} ADD COLUMN {column} {d.real}"
            for column in PROFILE_LAST_COLUMNS
        ]
    return statements


def _v5(d: Dialect) -> list[str]:
    """The meters' event logs and the outages derived from them (:mod:`.events`): the key of
    ``meter_event`` stores an entry read twice once, yet keeps the new entries of a meter whose
    sequence numbers restarted (same numbers, other times)."""
    return [
        f"CREATE TABLE meter_event (meter TEXT NOT NULL, sequence {d.integer} NOT NULL,"
        f" meter_time_ms {d.integer} NOT NULL, gateway_time_ms {d.integer} NOT NULL,"
        " code INTEGER NOT NULL, argument TEXT NOT NULL, user_id INTEGER, words TEXT NOT NULL,"
        f" PRIMARY KEY (meter, sequence, meter_time_ms, code)){d.table_suffix}",
        "CREATE INDEX meter_event_by_time ON meter_event (meter, gateway_time_ms)",
        f"CREATE TABLE outage (meter TEXT NOT NULL, start_ms {d.integer} NOT NULL,"
        f" end_ms {d.integer}, duration_s {d.real}, meter_start_ms {d.integer} NOT NULL,"
        f" meter_end_ms {d.integer}, PRIMARY KEY (meter, start_ms)){d.table_suffix}",
    ]


# Schema v6: the meter's billing self-reads (BT26), energies in Wh as the meter's registers
# showed them (ET55's unit applied); tier columns as in v2 (tiers 1..4).
V6_SELF_READ_ENERGY: tuple[str, ...] = (
    "forward_active_energy_wh",
    "reverse_active_energy_wh",
    *V2_FIELDS,
)


def _v6(d: Dialect) -> list[str]:
    """One row per self-read the gateway read from a meter, by the meter's sequence number and
    time stamp (a replaced meter starts its sequence again with other times)."""
    energy = ", ".join(f"{name} {d.real}" for name in V6_SELF_READ_ENERGY)
    return [
        f"CREATE TABLE self_read (meter_id {d.integer} NOT NULL REFERENCES meter (id),"
        f" sequence {d.integer} NOT NULL, meter_time_ms {d.integer} NOT NULL,"
        f" local_time TEXT, season {d.integer}, gateway_time_ms {d.integer} NOT NULL,"
        f" read_at_ms {d.integer} NOT NULL, {energy},"
        f" PRIMARY KEY (meter_id, sequence, meter_time_ms)){d.table_suffix}"
    ]


def _v7(d: Dialect) -> list[str]:
    """M-Bus sub-meters: a device per (meter, slot, identification) -- a swapped device is a
    new row --, its readings (value and the increase since the device's previous reading),
    and hour/day rollups of the increases (:mod:`mepgate.store.submeters`)."""
    return [
        f"CREATE TABLE submeter ({d.meter_id_column}, meter TEXT NOT NULL,"
        " slot INTEGER NOT NULL, identification TEXT NOT NULL, manufacturer TEXT NOT NULL,"
        f" medium TEXT NOT NULL, medium_code INTEGER NOT NULL, unit TEXT NOT NULL,"
        f" first_seen_ms {d.integer} NOT NULL, UNIQUE (meter, slot, identification))",
        f"CREATE TABLE submeter_reading (submeter_id {d.integer} NOT NULL"
        f" REFERENCES submeter (id), t_ms {d.integer} NOT NULL, value {d.real} NOT NULL,"
        f" delta {d.real} NOT NULL, PRIMARY KEY (submeter_id, t_ms)){d.table_suffix}",
        f"CREATE TABLE submeter_rollup (submeter_id {d.integer} NOT NULL"
        " REFERENCES submeter (id), resolution TEXT NOT NULL,"
        f" bucket_start {d.integer} NOT NULL, last_at_ms {d.integer} NOT NULL,"
        f" last_value {d.real} NOT NULL, delta {d.real} NOT NULL, n {d.count} NOT NULL,"
        f" PRIMARY KEY (submeter_id, resolution, bucket_start)){d.table_suffix}",
    ]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: Callable[[Dialect], list[str]]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "meters, raw readings, minute/hour/day rollups", _v1),
    Migration(2, "import/export energy per TOU tier", _v2),
    Migration(3, "per-meter state kept across restarts", _v3),
    Migration(4, "the meter's load profile, beside the live readings in the rollups", _v4),
    Migration(5, "meter event logs and outages", _v5),
    Migration(6, "billing self-reads (BT26)", _v6),
    Migration(7, "M-Bus sub-meters: devices, readings, hour/day rollups", _v7),
)
