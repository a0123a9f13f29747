"""The SQLite state file's connection: settings, transactions and schema migrations.

Rules (see ../shared/peers/libraries.md, section c):

* ``isolation_level=None`` and an explicit ``BEGIN IMMEDIATE`` for every transaction that may
  write, so two bmprov processes serialise on the write lock instead of failing with
  ``SQLITE_BUSY_SNAPSHOT``; nested :meth:`Connection.atomic` blocks become savepoints.
* WAL, ``busy_timeout``, ``foreign_keys``, ``synchronous=NORMAL``; STRICT tables.
* Migrations are named and recorded in ``schema_migrations``; ``user_version`` mirrors the count.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from bmprov.errors import LockedError, StateError, StateFileError
from bmprov.store.base import utcnow
from bmprov.store.schema import MIGRATIONS

MIN_SQLITE = (3, 37, 0)  # STRICT tables
DEFAULT_BUSY_TIMEOUT_MS = 10_000


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def _refused(exc: sqlite3.OperationalError, path: Path) -> Exception:
    """The bmprov error for an OperationalError: locked, read-only, or the original."""
    if _is_locked(exc):
        return LockedError(str(path))
    text = str(exc).lower()
    if "readonly" in text or "unable to open" in text:
        return StateFileError(
            f"state file {path} is read-only for bmprov ({exc})",
            "bmprov must be able to write it, its -wal/-shm files and its directory",
        )
    return exc


class Connection:
    """One open SQLite state file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path | str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StateError(
                f"SQLite {sqlite3.sqlite_version} is too old; bmprov needs 3.37 or newer"
            )
        self.path = Path(path)
        if str(path) != ":memory:" and not self.path.parent.exists():
            raise StateFileError(f"state file directory {self.path.parent} does not exist")
        try:
            self.conn = sqlite3.connect(
                str(path),
                isolation_level=None,
                timeout=busy_timeout_ms / 1000,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StateFileError(f"cannot open state file {path}: {exc}") from None
        self.conn.row_factory = sqlite3.Row
        self._depth = 0
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not self.applied_migrations():
                self._refuse_foreign()  # before WAL mode, which rewrites the header
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.migrate()
        except sqlite3.OperationalError as exc:
            self.conn.close()
            error = _refused(exc, self.path)
            if error is exc:
                raise StateFileError(f"cannot use state file {path}: {exc}") from None
            raise error from None
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StateFileError(f"{path} is not a bmprov state file: {exc}") from None
        except BaseException:  # refused (newer, foreign): do not leak the connection
            self.conn.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` outside, a savepoint when nested."""
        if self._depth == 0:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _refused(exc, self.path) from None
            self._depth = 1
            try:
                yield self.conn
            except sqlite3.OperationalError as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise _refused(exc, self.path) from None
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise _refused(exc, self.path) from None
            finally:
                self._depth = 0
            return
        name = f"bmprov_{uuid.uuid4().hex}"
        self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise _refused(exc, self.path) from None

    def applied_migrations(self) -> list[str]:
        """Names of the migrations this state file has, in order."""
        exists = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
        ).fetchone()
        if not exists:
            return []
        return [r[0] for r in self.conn.execute("SELECT name FROM schema_migrations ORDER BY id")]

    def _refuse_foreign(self) -> None:
        """A database with tables but no bmprov history is someone else's: never write to it."""
        tables = [
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name LIMIT 4"
            )
        ]
        if tables:
            raise StateFileError(
                f"{self.path} is an SQLite database but not a bmprov state file"
                f" (tables: {', '.join(tables)}); check `state` in bmprov.toml"
            )

    def migrate(self) -> None:
        """Apply every migration this state file lacks, in one transaction."""
        known = [name for name, _ in MIGRATIONS]
        applied = self.applied_migrations()
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise StateFileError(
                f"state file {self.path} was written by a newer bmprov (migration {unknown[0]})"
            )
        if len(applied) == len(known):
            return
        with self.atomic() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL"
                ") STRICT"
            )
            done = set(self.applied_migrations())
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)",
                    (name, utcnow()),
                )
            conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would COMMIT our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
