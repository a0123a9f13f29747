"""Install files and iPXE scripts rendered on request, from the state as it is now.

One :class:`~bmprov.boot.writer.NodeFileWriter` per worker (templates compiled once at
start: a template change needs a restart of serve) renders a node's files with its current
install's token; nothing is written. The files on disk stay for TFTP loaders and plain web
servers (``pxe render``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bmprov.boot.names import ipxe_name
from bmprov.boot.sync import wants_install
from bmprov.boot.tokenctx import InstallTokens
from bmprov.boot.writer import NodeFileWriter
from bmprov.errors import BmprovError
from bmprov.serve.callbacks import Answer, Site, authorise, refuse


@dataclass(frozen=True)
class File:
    """A rendered file, or the refusal."""

    text: str | None
    refused: Answer | None = None


class OnRequest:
    """Renders one node's files per request (one writer per worker process)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.writer = NodeFileWriter(site.config)
        self.writer.check()
        self.tokens = InstallTokens(site.settings.url, site.secret)
        self.writer.tokens = self.tokens

    def install_file(
        self, serial: str, token: str | None, source: str | None, name: str | None = None
    ) -> File:
        """The node's kickstart/preseed (``name`` None) or autoinstall ``user-data`` /
        ``meta-data``; needs the install's token and, by default, the node's reserved IP."""
        site = self.site
        node = site.db.node_by_serial(serial)
        if node is None:
            return File(None, refuse(404, "unknown serial", serial, source))
        install = authorise(site, node, token, source, site.settings.install_from_reserved_ip)
        if isinstance(install, Answer):
            return File(None, install)
        if not wants_install(node) or not node.ip:
            return File(None, refuse(404, f"node is {node.stage}: no install file", serial, source))
        self.tokens.installs = {node.id: install}
        try:
            files = self.writer.render_install(node, node.ip, entries=False)
        except BmprovError as exc:
            return File(None, refuse(500, f"render failed: {exc}", serial, source))
        for path in self.writer.install_paths(node):
            if path in files and (name is None or path.name == name):
                return File(files[path])
        return File(None, refuse(404, "no such install file for this OS", serial, source))

    def ipxe(self, mac: str, source: str | None) -> File:
        """The iPXE script for one MAC: the installer (with the token) or local boot."""
        site = self.site
        node = site.db.node_by_mac(mac)
        if node is None:
            return File(None, refuse(404, "unknown MAC", mac, source))
        if site.settings.install_from_reserved_ip and node.ip and source != node.ip:
            return File(None, refuse(403, "request not from the node's reserved IP", mac, source))
        record = site.db.boot_records().get(node.id)  # `pxe clear` holds until the stage changes
        install = wants_install(node, record.cleared_at if record else None) and bool(node.ip)
        try:
            if install:
                current = site.db.current_installs([node.id])
                self.tokens.installs = current
                files = self.writer.render_install(node, node.ip or "")
            else:
                files = self.writer.render_local(node)
        except BmprovError as exc:
            return File(None, refuse(500, f"render failed: {exc}", mac, source))
        name = ipxe_name(mac, self.writer.settings.ipxe_dir).rpartition("/")[2]
        for path, text in files.items():
            if path.name == name:
                return File(text)
        return File(None, refuse(404, "no iPXE entry for this MAC", mac, source))
