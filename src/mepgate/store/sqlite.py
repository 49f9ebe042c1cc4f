"""The default store: one SQLite file in the data directory.

Crash safety: WAL journal with ``synchronous=FULL``.  With WAL, a killed process never
corrupts the database and loses at most the transaction it was writing.  ``FULL`` adds an
fsync of the WAL at each commit, so a *power cut* -- the usual crash of a Raspberry Pi --
also keeps every committed batch (``NORMAL`` could lose everything since the last
checkpoint).  The cost is one fsync per batch; at one batch every few seconds that is about
the rate at which the kernel writes dirty pages back anyway, so it adds little SD wear.
``journal_size_limit`` stops one large transaction from leaving a big WAL file behind.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from mepgate.config import Retention

from .errors import StoreError
from .schema import SQLITE
from .sql import Clock, Row, SqlStore, utc_now

WAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes kept after a checkpoint; more is truncated
BUSY_TIMEOUT_S = 30.0  # another process (the CLI) holding the write lock


def _read_only(path: Path, error: sqlite3.DatabaseError) -> bool:
    """Whether opening failed because the database cannot be written, not because it is bad."""
    words = str(error).lower()
    if "readonly" in words or "read-only" in words or "disk i/o error" in words:
        return True
    return not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))


class SqliteStore(SqlStore):
    dialect = SQLITE

    def __init__(
        self,
        path: Path,
        *,
        retention: Retention | None = None,
        local_tz: dt.tzinfo | None = None,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(retention=retention, local_tz=local_tz, clock=clock)
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the SQLite database {path}: {exc}; check that the data directory"
                " exists and is writable"
            ) from exc
        try:
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(
                    f"{path}: SQLite refused WAL mode (got {mode!r}); put the data directory"
                    " on a local file system (not a network share)"
                )
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if _read_only(path, exc):
                # A healthy database on a file system mounted read-only (after an error, an SD
                # card's reflex): never advise moving it away, that invites deleting history.
                raise StoreError(
                    f"the database {path} cannot be written here ({exc}): the file system is "
                    "read-only or the file's permissions forbid writing. It was left as it is; "
                    "make it writable (remount the file system read-write, fix the owner) and "
                    "start again"
                ) from exc
            raise StoreError(
                f"{path} is not a usable SQLite database ({exc}); restore a backup or move it"
                " away to start a new history"
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def _many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, params)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not at first write
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _lock_for_migration(self) -> None:
        """``BEGIN IMMEDIATE`` already holds the database's single write lock."""

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with suppress(FileNotFoundError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def integrity_check(self) -> str:
        """SQLite's own consistency check: ``"ok"`` or the first problems it found."""
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
