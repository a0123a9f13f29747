"""``bmprov ks validate``: rendered install files checked by installer code and their scheme.

Kickstart through pykickstart (as anaconda parses it), autoinstall against bmprov's autoinstall
schema (subset of subiquity's documented format), preseed through
``debconf-set-selections --checkonly``; then, for BIOS and for UEFI, that the layout makes
what its scheme names (:mod:`bmprov.install.check`). Every result names its validator.
pykickstart costs 19-45 ms per file (libraries.md §e), so by default one *sample* is validated
per OS profile and partition scheme (synthetic node with every option set), plus one real node
per (OS, scheme) the state file holds; ``SERIAL ...`` or ``--all`` validate real nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from bmprov.boot.osprofiles import OsProfile
from bmprov.boot.writer import NodeFileWriter
from bmprov.config import Config
from bmprov.errors import BmprovError
from bmprov.install import check as installcheck
from bmprov.install import disklayout
from bmprov.install.options import SCHEMES, hash_password
from bmprov.nodes import Node, Selection, list_nodes, select_nodes
from bmprov.result import BatchResult, NodeResult
from bmprov.store import Store

SAMPLE_IP = "192.0.2.10"  # TEST-NET-1: only ever rendered, never used
SAMPLE_MACS = ("02:00:00:00:00:01",)
SAMPLE_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl sample@bmprov"
)


def validate_nodes(
    config: Config,
    db: Store,
    serials: tuple[str, ...] = (),
    *,
    all_nodes: bool = False,
    progress: Callable[[NodeResult], None] | None = None,
) -> BatchResult:
    """Validate the named nodes, every node, or (default) one sample per OS/template/scheme."""
    writer = NodeFileWriter(config)
    batch = BatchResult(action="ks validate")
    for label, node in _targets(writer, db, serials, all_nodes):
        result = _check(writer, label, node)
        batch.add(result)
        if progress:
            progress(result)
    return batch


def _targets(
    writer: NodeFileWriter, db: Store, serials: tuple[str, ...], all_nodes: bool
) -> Iterator[tuple[str, Node]]:
    if serials or all_nodes:
        selection = Selection(serials=serials, all=all_nodes)
        for node in select_nodes(db, selection):
            yield node.serial, node
        return
    yield from _samples(writer)
    seen: set[tuple[str, str]] = set()
    for node in list_nodes(db):
        try:
            profile = writer.settings.profile(node.os)
        except BmprovError:  # an OS with no profile: _check reports it, if bmprov installs it
            if node.automated:
                yield node.serial, node
            continue
        scheme = str(
            node.install_options.get("partition_scheme") or writer.defaults.partition_scheme
        )
        if (profile.name, scheme) not in seen:
            seen.add((profile.name, scheme))
            yield node.serial, node


def _samples(writer: NodeFileWriter) -> Iterator[tuple[str, Node]]:
    """A synthetic node per OS profile and partition scheme, every option set."""
    password = str.__str__(hash_password("Sample-Passw0rd", "bmprovsample"))
    for profile in sorted(writer.settings.os.values(), key=lambda p: p.name):
        for scheme, disks in SCHEMES.items():
            options = {
                "partition_scheme": scheme,
                "disks": disks,
                "root_password_hash": password,
                "ssh_key": SAMPLE_KEY,
                "callback_url": "http://192.0.2.1:8080/callback?event=installed",
            }
            node = Node(
                id=0,
                serial=f"sample-{profile.name}",
                stage="os_provisioning",
                macs=SAMPLE_MACS,
                os=profile.name,
                hostname="sample-node",
                install_options=options,
            )
            yield f"sample {profile.name}/{profile.template}/{scheme}", node


def _check(writer: NodeFileWriter, label: str, node: Node) -> NodeResult:
    if not node.macs:
        node = replace(node, macs=SAMPLE_MACS)  # install files do not depend on the MAC
    try:
        profile = writer.settings.profile(node.os)
        files = writer.render_install(node, node.ip or SAMPLE_IP)
    except BmprovError as exc:
        return NodeResult(label, "failed", node.stage, str(exc), getattr(exc, "step", None))
    path = writer.install_paths(node)[0]
    template = _template_name(writer, profile)
    validator = installcheck.TOOLS.get(profile.install, "") + installcheck.VALIDATORS[
        profile.install
    ].format(version=profile.ks_version)
    try:
        layout = disklayout.plan(writer.install_options(node))
        installcheck.check_with_tools(profile.install, files[path], layout, profile.ks_version)
    except FileNotFoundError as exc:
        return NodeResult(label, "failed", node.stage, f"{template}: {exc}", "install file")
    except ValueError as exc:
        message = f"{template}: {validator}: {exc}"
        return NodeResult(label, "failed", node.stage, message, "install file")
    return NodeResult(label, "ok", node.stage, f"{template}: valid ({validator})")


def _template_name(writer: NodeFileWriter, profile: OsProfile) -> str:
    template = writer.ks.template([f"{profile.name}.j2", f"{profile.install}.j2"])
    return template.filename or template.name or profile.install
