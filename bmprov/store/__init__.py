"""bmprov's state: the only place with SQL.

:class:`Store` is the interface (:mod:`bmprov.store.base`); :class:`StateDB` implements it on
one SQLite file (:mod:`bmprov.store.sqlite`), the embedded default, and :class:`PostgresStore`
on a shared PostgreSQL database (:mod:`bmprov.store.postgres`, imported only when a config names
one: :func:`open_store`); the schema is one list of
named migrations (:mod:`bmprov.store.schema`) for every backend.
"""

from __future__ import annotations

from bmprov.store.base import (
    Addressed,
    BootRecord,
    Event,
    FileDigest,
    Install,
    NodeUpdate,
    RenderRow,
    Store,
    utcnow,
)
from bmprov.store.connection import DEFAULT_BUSY_TIMEOUT_MS
from bmprov.store.opening import open_store, open_url
from bmprov.store.schema import MIGRATIONS
from bmprov.store.sqlite import StateDB, open_state

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "Addressed",
    "BootRecord",
    "Event",
    "FileDigest",
    "Install",
    "NodeUpdate",
    "RenderRow",
    "StateDB",
    "Store",
    "open_state",
    "open_store",
    "open_url",
    "utcnow",
]
