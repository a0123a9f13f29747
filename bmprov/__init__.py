"""bmprov: take bare-metal servers from a purchase order to a running OS.

The library is usable without the CLI: open a :class:`StateDB`, load a :class:`Config`,
and call the functions in :mod:`bmprov.importer`, :mod:`bmprov.lifecycle` and friends.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
