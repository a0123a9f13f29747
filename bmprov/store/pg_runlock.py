"""The run lock of a site on PostgreSQL (a part of :class:`~bmprov.store.postgres.PostgresStore`).

On SQLite :mod:`bmprov.runlock` locks the state file (``flock``); a PostgreSQL state has no
local file and is shared by hosts, so the same lock is a *session-level* advisory lock on the
store's own connection, shared or exclusive, keyed by the site's name: it is held until
released or until the connection ends (a killed bmprov never leaves it behind), and two
sites' runs never wait for each other.
"""

from __future__ import annotations

import hashlib

from bmprov.store.pgconn import PgConnection

_NAMESPACE = "bmprov-site-run\x1f"


def site_key(site: str) -> int:
    """A signed 64-bit advisory-lock key for ``site`` (the empty name: a site-less state)."""
    digest = hashlib.sha256((_NAMESPACE + site).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgRunLock(PgConnection):
    """Try/release the site's run lock; the caller bounds the wait."""

    def try_site_lock(self, site: str, *, shared: bool) -> bool:
        """Take the site's run lock now if nobody holds it the other way; True if taken."""
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        rows = self.query(f"SELECT {function}(%s)", [site_key(site)])
        return bool(rows[0][0])

    def release_site_lock(self, site: str, *, shared: bool) -> None:
        """Release it (a no-op if the connection is gone: that released it)."""
        function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
        if not self.conn.closed:
            self.query(f"SELECT {function}(%s)", [site_key(site)])
