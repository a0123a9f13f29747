"""The PostgreSQL state's connection: URL and password, settings, transactions, migrations.

Rules (the SQLite ones, carried over to a shared server):

* autocommit outside :meth:`PgConnection.atomic`, so a reader never sits idle in a transaction;
  ``atomic`` is one READ COMMITTED transaction (nested: a savepoint). The writes that need more
  than row locks take a transaction-level advisory lock: address allocation (read every held
  address, choose, write) and import (plan against every node, then write); stage moves are
  ``UPDATE … WHERE stage = old`` compare-and-set, which PostgreSQL re-checks on the newest row
  version after waiting for a concurrent writer, so a node is never moved twice.
* ``lock_timeout`` = ``state_timeout``: a lock wait past it is :class:`LockedError` (exit 1).
* The password never sits in the URL: ``password_file`` / ``password_env`` in ``[state]``, or
  libpq's own ``PGPASSFILE``/``~/.pgpass``. Messages show the URL without any password.
* Any lost connection (server restarted mid-batch) rolls the transaction back on the server and
  is :class:`StateServerError` (exit 1): nothing half-written, and a re-run converges.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.rows import dict_row

from bmprov.errors import LockedError, StateError, StateFileError
from bmprov.store.base import utcnow
from bmprov.store.schema import MIGRATIONS, migration_sql

URL_RE = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
# Advisory lock keys ("bmpr" + a number): one per kind of read-modify-write that row locks
# cannot cover, held to the end of the transaction.
ALLOCATE_LOCK = 0x626D707201
IMPORT_LOCK = 0x626D707202
MIGRATE_LOCK = 0x626D707203
CONNECT_TIMEOUT_S = 10


class StateServerError(StateError):
    """The PostgreSQL server went away or refused mid-way (exit 1: retry when it is back)."""


def is_url(state: str) -> bool:
    """True when ``state`` names a PostgreSQL database rather than an SQLite file."""
    return bool(URL_RE.match(state))


def redact(url: str) -> str:
    """The URL with any password removed (for messages)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1@", url)


def has_inline_password(url: str) -> bool:
    """True when the URL carries a password (refused: it would sit in the config in clear)."""
    return redact(url) != url or bool(re.search(r"[?&]password=", url, re.IGNORECASE))


def _refused(exc: psycopg.Error, where: str) -> StateError:
    """The bmprov error for a psycopg error: locked, server gone, or refused."""
    if isinstance(exc, pgerrors.LockNotAvailable | pgerrors.DeadlockDetected):
        return LockedError(where)
    if isinstance(exc, pgerrors.UniqueViolation):
        return StateError(f"{where}: a concurrent writer collided: {_first_line(exc)}")
    if isinstance(exc, psycopg.OperationalError | pgerrors.AdminShutdown):
        return StateServerError(
            f"PostgreSQL state {where}: connection lost ({_first_line(exc)});"
            " nothing of the interrupted transaction was written",
            "re-run the command when the server is back; it picks up where it stopped",
        )
    return StateError(f"PostgreSQL state {where}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _connect_error(exc: psycopg.OperationalError, where: str) -> StateError:
    text = str(exc)
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return StateFileError(
            f"PostgreSQL state {where}: password refused",
            "check password_file/password_env in [state], or PGPASSFILE",
        )
    if "does not exist" in low and "database" in low:
        return StateFileError(
            f"PostgreSQL state {where}: the database does not exist",
            "create it (createdb -O USER DBNAME), or fix the URL in `state`",
        )
    if "role" in low and "does not exist" in low:
        return StateFileError(f"PostgreSQL state {where}: the user does not exist")
    return StateServerError(
        f"PostgreSQL state {where}: cannot connect ({_first_line(exc)})",
        "is the server running and reachable? retry when it is",
    )


class PgConnection:
    """One connection to a bmprov PostgreSQL database. A context manager, or call :meth:`close`."""

    def __init__(
        self, url: str, password: str | None = None, lock_timeout_ms: int = 10_000
    ) -> None:
        if has_inline_password(url):
            raise StateFileError(
                f"state URL {redact(url)} holds a password; bmprov refuses it there",
                "put it in a file named by [state] password_file, or password_env, or PGPASSFILE",
            )
        self.path = redact(url)
        kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True}
        if password is not None:
            kwargs["password"] = password
        try:
            self.conn = psycopg.connect(url, **kwargs)
        except psycopg.OperationalError as exc:
            raise _connect_error(exc, self.path) from None
        except psycopg.ProgrammingError as exc:  # a malformed URL
            raise StateFileError(f"state URL {self.path}: {_first_line(exc)}") from None
        try:
            self.conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
            self.conn.execute("SET idle_in_transaction_session_timeout = '10min'")
            self.migrate()
        except psycopg.Error as exc:
            self.conn.close()
            raise _refused(exc, self.path) from None
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @property
    def in_transaction(self) -> bool:
        """True inside :meth:`atomic`."""
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    @contextlib.contextmanager
    def atomic(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction (a savepoint when nested); psycopg errors become bmprov errors."""
        try:
            with self.conn.transaction():
                yield self.conn
        except psycopg.Error as exc:
            raise _refused(exc, self.path) from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return all rows as tuples."""
        try:
            return self.conn.execute(sql.encode(), params).fetchall()
        except psycopg.Error as exc:
            raise _refused(exc, self.path) from None

    def dict_query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read query and return all rows as dicts."""
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(sql.encode(), params).fetchall()
        except psycopg.Error as exc:
            raise _refused(exc, self.path) from None

    def lock(self, key: int) -> None:
        """Take an advisory lock until the end of the current transaction (waits up to
        ``lock_timeout``)."""
        if self.in_transaction:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    def applied_migrations(self) -> list[str]:
        """Names of the migrations this database has, in order."""
        row = self.conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if not row or row[0] is None:
            return []
        return [r[0] for r in self.conn.execute("SELECT name FROM schema_migrations ORDER BY id")]

    def server_version(self) -> str:
        """The server's version, e.g. ``15.8``."""
        return str(self.conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def migrate(self) -> None:
        """Apply every migration the database lacks, in one transaction, one host at a time."""
        known = [name for name, _ in MIGRATIONS]
        applied = self.applied_migrations()
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise StateFileError(
                f"PostgreSQL state {self.path} was written by a newer bmprov"
                f" (migration {unknown[0]})"
            )
        if len(applied) == len(known):
            return
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            if not self.applied_migrations():
                self._refuse_foreign()
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
            )
            done = set(self.applied_migrations())  # another host may have migrated meanwhile
            for number, (name, sql) in enumerate(MIGRATIONS, 1):
                if name in done:
                    continue
                self.conn.execute(migration_sql(name, sql, "postgresql").encode())
                self.conn.execute(
                    "INSERT INTO schema_migrations(id, name, applied_at) VALUES (%s, %s, %s)",
                    (number, name, utcnow()),
                )

    def _refuse_foreign(self) -> None:
        """A database with tables but no bmprov history is someone else's: never write to it."""
        tables = [
            r[0]
            for r in self.conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " ORDER BY tablename LIMIT 4"
            )
        ]
        if tables:
            raise StateFileError(
                f"PostgreSQL database {self.path} has tables but is not a bmprov state"
                f" (tables: {', '.join(tables)}); check `state` in bmprov.toml"
            )
