"""The PostgreSQL store, for installations that outgrow one machine (psycopg 3).

The URL is libpq's; put the store in its own schema with
``?options=-csearch_path%3Dmepgate``.  The URL's password never appears in a repr, log line
or error message.  Durability is the server's: a committed batch survives a crash of
either side with the default ``synchronous_commit = on``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from mepgate.config import Retention
from mepgate.urls import mask_url, scrub

from .errors import StoreError
from .schema import POSTGRES
from .sql import Clock, Row, SqlStore, utc_now

MIGRATION_LOCK_KEY = 0x6D65_7067_6174_6501  # "mepgate" + 1: the advisory lock for migrations
CONNECT_TIMEOUT_S = 10


class PostgresStore(SqlStore):
    dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        retention: Retention | None = None,
        local_tz: dt.tzinfo | None = None,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(retention=retention, local_tz=local_tz, clock=clock)
        self._masked = mask_url(url)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL at {self._masked}: {scrub(str(exc), url)}"
                "; check the server is running, the URL and the credentials"
            ) from None
        try:
            schema = self._conn.execute("SELECT current_schema()").fetchone()
            if schema is None or schema[0] is None:
                raise StoreError(
                    f"{self._masked}: the search_path names no existing schema;"
                    " create it (CREATE SCHEMA …) or fix the URL's options"
                )
            self._migrate()
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(
                f"PostgreSQL at {self._masked} failed while preparing the schema:"
                f" {scrub(str(exc), url)}"
            ) from None
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self._masked!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description is not None else []

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def _many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(sql, params)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def _lock_for_migration(self) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))

    def size_bytes(self) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
