"""``bmprov state copy SRC DST``: a whole state from one backend into another, losslessly.

Every table the migrations create (:func:`bmprov.store.schema.tables`: nodes, MACs, history,
render records and whatever later migrations add), rows as stored — ids, timestamps and the
whole stage history included — into an empty destination at the same schema version, in one
transaction: a failed copy leaves the destination empty, and re-running it converges.
"""

from __future__ import annotations

from typing import Any

from bmprov.errors import InputError
from bmprov.store.base import Store
from bmprov.store.schema import tables


def copy_state(src: Store, dst: Store) -> dict[str, int]:
    """Copy every table of ``src`` into the empty ``dst``; returns rows copied per table."""
    if src.applied_migrations() != dst.applied_migrations():
        raise InputError(
            f"{src.location} and {dst.location} are at different schema versions;"
            " open both with this bmprov first"
        )
    filled = [t for t in tables() if dst.dump_table(t)[1]]
    if filled:
        raise InputError(
            f"{dst.location} is not empty (table {filled[0]} has rows); copy needs an empty"
            " destination"
        )
    dumped: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
    for table in tables():
        columns, rows = src.dump_table(table)
        dumped.append((table, columns, rows))
    dst.restore_tables(dumped)
    return {table: len(rows) for table, _, rows in dumped}
