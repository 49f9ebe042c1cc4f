"""A durable, bounded, ordered outbox for MQTT messages that must not be lost (energy).

Messages are appended to a SQLite file in the data directory as soon as they are made,
whether the broker is reachable or not, and removed only after the broker has acknowledged
them (PUBACK for QoS 1, PUBCOMP for QoS 2).  So:

* across broker outages and reconnects, every message is delivered **exactly once, in order**:
  nothing is sent while disconnected, and the sender removes a message before sending the
  next one;
* across a crash of the gateway (or a connection lost while a message is in flight, between
  the broker receiving it and its acknowledgement arriving), the last message may be sent
  **twice**: its removal was not recorded yet.  Consumers of energy totals are unaffected (the
  value is the same); nothing is ever lost once appended;
* with ``qos = 0`` there is no acknowledgement: a message counts as delivered once handed to
  the socket (at most once while the connection dies under it).

The outbox is bounded (``max_messages``): when full, the oldest messages are dropped and
counted in :attr:`Outbox.dropped` (persisted), so a broker that stays away for months cannot
fill the disk.  All methods are blocking and thread-safe; call them through
``asyncio.to_thread`` from the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from mepgate.errors import MepgateError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS announced (
    topic TEXT PRIMARY KEY,
    meter TEXT NOT NULL
);
"""


class OutboxError(MepgateError):
    """The outbox file cannot be opened or written (disk full, permissions, corruption)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedMessage:
    id: int  # increasing: the delivery order
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """The on-disk queue.  Open with :meth:`open`; use as a context manager or :meth:`close`."""

    def __init__(self, connection: sqlite3.Connection, path: Path, max_messages: int) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self.path = path
        self.max_messages = max_messages

    @classmethod
    def open(cls, path: Path, *, max_messages: int) -> Outbox:
        if max_messages < 1:
            raise OutboxError(f"max_messages must be at least 1, got {max_messages}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged removal or an append survives a power cut, not just a crash.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(
                f"cannot open the MQTT outbox {path}: {exc}; check that the data directory "
                "is writable and the disk not full"
            ) from exc
        return cls(db, path, max_messages)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        """Queue a message; when the outbox is full, drop (and count) the oldest first."""
        with self._lock, self._write():
            self._db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                (topic, payload, qos, int(retain)),
            )
            (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
            excess = int(count) - self.max_messages
            if excess > 0:
                self._db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self._db.execute(
                    "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (excess,),
                )

    def peek(self, limit: int = 100) -> list[QueuedMessage]:
        """The oldest ``limit`` messages, oldest first (they stay queued)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain FROM outbox ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            QueuedMessage(id=r[0], topic=r[1], payload=bytes(r[2]), qos=r[3], retain=bool(r[4]))
            for r in rows
        ]

    def delivered(self, message_id: int) -> None:
        """Record that the broker acknowledged ``message_id``: it will not be sent again."""
        with self._lock, self._write():
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    @property
    def dropped(self) -> int:
        """Messages dropped because the outbox was full, since the file was created."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    # -- discovery bookkeeping: which config topics we announced, to remove them later ------

    def announced(self) -> dict[str, str]:
        """Discovery config topics announced (retained) so far, with their meter."""
        with self._lock:
            rows = self._db.execute("SELECT topic, meter FROM announced").fetchall()
        return {str(topic): str(meter) for topic, meter in rows}

    def set_announced(self, topic: str, meter: str | None) -> None:
        """Remember (``meter`` given) or forget (``None``) an announced config topic."""
        with self._lock, self._write():
            if meter is None:
                self._db.execute("DELETE FROM announced WHERE topic = ?", (topic,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO announced (topic, meter) VALUES (?, ?)",
                    (topic, meter),
                )

    def _write(self) -> _Transaction:
        return _Transaction(self._db, self.path)


class _Transaction:
    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                raise OutboxError(
                    f"cannot write the MQTT outbox {self._path}: {error}; is the disk full?"
                ) from error
        else:
            self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise OutboxError(
                    f"cannot write the MQTT outbox {self._path}: {exc}; is the disk full?"
                ) from exc
