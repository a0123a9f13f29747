"""What a node's boot entry and install file get to call back: serve's URL and its token.

The networking stage and ``pxe render`` open (or find) each node's install, then hand the
writer an :class:`InstallTokens`; the writer adds ``bmprov_url`` and ``install_token`` to each
node's template context, and the kernel command line gets ``bmprov.url=… bmprov.token=…``.
Forked file workers inherit it with the writer. A node without an open install renders with
empty values (its templates then leave the callback out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bmprov import tokens
from bmprov.config import Config
from bmprov.nodes import Node, Selection
from bmprov.secret import Secret
from bmprov.serve.settings import serve_url
from bmprov.store import Install, RenderRow, Store


@dataclass
class InstallTokens:
    """serve's base URL, the site secret, and node id → its open install."""

    url: str
    secret: Secret[bytes]
    installs: dict[int, Install] = field(default_factory=dict)
    _contexts: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)  # by install

    @classmethod
    def load(cls, config: Config, installs: dict[int, Install]) -> InstallTokens:
        """From the config (the secret file is created on first use)."""
        return cls(serve_url(config), tokens.load_secret(config), installs)

    def context(self, node_id: int) -> dict[str, Any]:
        """``bmprov_url`` and ``install_token`` for one node's templates ("" if none)."""
        install = self.installs.get(node_id)
        if install is None:
            return {"bmprov_url": self.url, "install_token": ""}
        known = self._contexts.get(install.id)
        if known is None:  # the writer and its digest recorder both ask: one HMAC per install
            token = tokens.token_for(self.secret, install).reveal()
            self._contexts[install.id] = known = {"bmprov_url": self.url, "install_token": token}
        return known


NO_TOKENS: dict[str, Any] = {"bmprov_url": "", "install_token": ""}


def open_for(config: Config, db: Store, nodes: Sequence[Node | RenderRow]) -> dict[int, Install]:
    """A fresh install (hence token) for each node, superseding its open one; one transaction."""
    rows = [(node.id, node.serial, node.os) for node in nodes]
    return db.open_installs(rows, tokens.expiry(config))


def for_networking(config: Config, db: Store, nodes: Sequence[Node]) -> dict[int, Install]:
    """Each node's install for this networking run: the open one if it was issued since the
    node entered networking (another batch running the same nodes, serialised by the DHCP
    store's lock, issued it: both write the same token), else a fresh one."""
    have = db.current_installs([node.id for node in nodes])
    # When each node entered networking, as stored now (a node handed over by the lifecycle
    # still carries the time of its previous stage).
    entered = {
        n.id: n.stage_changed_at
        for n in db.load_nodes(Selection(serials=tuple(node.serial for node in nodes)))
    }
    keep = {
        node.id: have[node.id]
        for node in nodes
        if node.id in have and have[node.id].issued_at >= entered.get(node.id, "~")
    }
    fresh = open_for(config, db, [node for node in nodes if node.id not in keep])
    return {**keep, **fresh}
