"""The journal of a ``workhorse map`` job: what finished, in an SQLite database (stdlib
``sqlite3``), so that ``--resume`` redoes nothing that finished.

Why SQLite: a finished item must be on disk before it is reported, whatever kills the runner
(``kill -9``, Ctrl-C, a power cut). SQLite in WAL mode with ``synchronous=FULL`` makes each
commit durable, a half-written transaction invisible, and many results arriving together one
transaction (the runner commits what is ready at once). A hand-written append-only file would
need its own torn-write detection and fsync discipline for the same guarantee.

Tables: ``meta`` (what job this is: the function, the input's format and a digest of its
records, their count) and ``items`` (one row per finished item: its index in the input, key,
status ``done``/``failed``, the output record as JSON, attempts). An item without a row is
pending. The output file is a view of ``items``: it can always be rebuilt from them.

Example::

    journal = Journal.open("out.jsonl.journal")
    journal.start(identity, total=100, resume=False)
    journal.commit([(0, "1", "done", '{"key": "1", "result": 2}', 1)])
    print(journal.counts())   # {'done': 1, 'failed': 0, 'pending': 99}
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JournalError", "digest"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    position INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    record TEXT NOT NULL,
    attempts INTEGER NOT NULL
);
"""


class JournalError(ValueError):
    """The journal cannot serve this job (another job's, unreadable, or not resumed)."""


def digest(sources: Iterable[str]) -> str:
    """A digest of the input records' texts, in order: two inputs with the same digest are
    the same job's."""
    hasher = hashlib.sha256()
    for source in sources:
        hasher.update(source.encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


class Journal:
    """One job's journal (see the module docstring)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path, self._db = path, connection

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Journal:
        """Open (or, if ``create``, create) the journal at ``path``."""
        path = Path(path)  # ":memory:": a journal that lives as long as the run
        if not create and not path.exists():
            raise JournalError(f"journal {path}: no such file")
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut
            db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {path}: cannot be used: {exc}") from None
        return cls(path, db)

    def meta(self) -> dict[str, str]:
        """What job the journal is of (empty for a new journal)."""
        return dict(self._db.execute("SELECT name, value FROM meta").fetchall())

    def start(self, identity: dict[str, str], total: int, *, resume: bool) -> None:
        """Bind the journal to the job ``identity`` (its function, format, input digest) of
        ``total`` items; a journal of another job, or one with results when not ``resume``,
        is refused with :class:`JournalError`."""
        known = self.meta()
        if known:
            differs = [name for name, value in identity.items() if known.get(name) != value]
            if differs:
                raise JournalError(
                    f"journal {self.path} is of a different job ({', '.join(differs)} differ): "
                    "use another --journal, or remove it to start over"
                )
            if not resume and self.finished():
                raise JournalError(
                    f"journal {self.path} already holds {self.finished()} finished items: "
                    "add --resume to go on, or remove it to start over"
                )
            return
        rows = [*identity.items(), ("total", str(total))]
        with self._transaction():
            self._db.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", rows)

    def finished(self) -> int:
        """How many items have a row."""
        return int(self._db.execute("SELECT count(*) FROM items").fetchone()[0])

    def statuses(self) -> dict[int, str]:
        """Each finished item's status, by position."""
        return dict(self._db.execute("SELECT position, status FROM items").fetchall())

    def commit(self, rows: list[tuple[int, str, str, str, int]]) -> None:
        """Record finished items ``(position, key, status, record, attempts)`` durably, in one
        transaction (a retried failure replaces its row)."""
        if not rows:
            return
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO items (position, key, status, record, attempts) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def forget_failed(self) -> int:
        """Drop the failed items' rows (``--retry-failed``: they are pending again)."""
        with self._transaction():
            cursor = self._db.execute("DELETE FROM items WHERE status = 'failed'")
        return cursor.rowcount

    def records(self) -> Iterator[str]:
        """The output records of the finished items, in input order."""
        for (record,) in self._db.execute("SELECT record FROM items ORDER BY position"):
            yield record

    def counts(self) -> dict[str, int]:
        """``done``, ``failed`` and ``pending`` items."""
        found = dict(self._db.execute("SELECT status, count(*) FROM items GROUP BY status"))
        total = int(self.meta().get("total", "0"))
        done, failed = found.get("done", 0), found.get("failed", 0)
        return {"done": done, "failed": failed, "pending": max(0, total - done - failed)}

    def failures(self, limit: int = 20) -> list[dict[str, Any]]:
        """The first ``limit`` failed items' output records."""
        rows = self._db.execute(
            "SELECT record FROM items WHERE status = 'failed' ORDER BY position LIMIT ?", (limit,)
        )
        return [json.loads(record) for (record,) in rows]

    def close(self) -> None:
        """Close the database (a WAL checkpoint folds the log back into the file)."""
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
