"""bmprov: take bare-metal servers from a purchase order to a running OS.

The library is usable without the CLI (``docs/library.md``)::

    import bmprov

    with bmprov.Site.open("bmprov.toml") as site:
        site.import_sheet("purchases.xlsx")
        batch = site.advance("networking", all=True)

The names below are the public API. They are imported on first use, so ``import bmprov`` (and
``bmprov --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Site": "bmprov.api",
    "Config": "bmprov.config",
    "load_config": "bmprov.config",
    "StateDB": "bmprov.store",
    "open_state": "bmprov.store",
    "Node": "bmprov.nodes",
    "Selection": "bmprov.nodes",
    "BatchResult": "bmprov.result",
    "NodeResult": "bmprov.result",
    "BmprovError": "bmprov.errors",
    "InputError": "bmprov.errors",
    "ConfigError": "bmprov.errors",
    "ValidationFailed": "bmprov.errors",
    "StateError": "bmprov.errors",
    "DriverError": "bmprov.errors",
    "ExitCode": "bmprov.errors",
    "Secret": "bmprov.secret",
    "states": "bmprov.states",
}

__all__ = [
    "BatchResult",
    "BmprovError",
    "Config",
    "ConfigError",
    "DriverError",
    "ExitCode",
    "InputError",
    "Node",
    "NodeResult",
    "Secret",
    "Selection",
    "Site",
    "StateDB",
    "StateError",
    "ValidationFailed",
    "__version__",
    "load_config",
    "open_state",
    "states",
]

if TYPE_CHECKING:
    from bmprov import states
    from bmprov.api import Site
    from bmprov.config import Config, load_config
    from bmprov.errors import (
        BmprovError,
        ConfigError,
        DriverError,
        ExitCode,
        InputError,
        StateError,
        ValidationFailed,
    )
    from bmprov.nodes import Node, Selection
    from bmprov.result import BatchResult, NodeResult
    from bmprov.secret import Secret
    from bmprov.store import StateDB, open_state


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bmprov' has no attribute {name!r}")
    value = import_module(module) if name == "states" else getattr(import_module(module), name)
    globals()[name] = value
    return value
