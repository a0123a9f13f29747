"""The library's front door: a :class:`Site` is one site's config and its state, opened together.

Like sqlite-utils' ``Database``, it is what a script holds and what the CLI itself uses: every
``bmprov`` command is a call on it plus printing. The modules behind it (import, lifecycle,
power, boot files) stay usable directly; this class only saves a script from wiring them::

    import bmprov

    with bmprov.Site.open("/srv/bmprov/bmprov.toml") as site:
        site.import_sheet("purchases.xlsx")
        batch = site.advance("mounting", rack="R01")
        for result in batch.results:
            print(result.serial, result.status, result.message)

Every method raises :class:`bmprov.BmprovError` (with an ``exit_code``) for bad input or a
refused state file, and never raises for one node's failure: batches return a
:class:`~bmprov.result.BatchResult` with a result per node.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bmprov.boot.sync import RenderReport
    from bmprov.catalogue import Fit
    from bmprov.config import Config
    from bmprov.drivers import BootDevice, PowerAction
    from bmprov.importing import ImportPlan
    from bmprov.nodes import Node, Selection
    from bmprov.reconcile import Report
    from bmprov.result import BatchResult, NodeResult
    from bmprov.serve.timeouts import TimedOut
    from bmprov.store import Store


class Site:
    """One site: its validated config and its state, opened lazily and closed together."""

    def __init__(self, config: Config, *, command: str = "library") -> None:
        self.config = config
        self.command = command  # recorded in history as who moved a node
        self._state: Store | None = None

    @classmethod
    def open(
        cls, config: str | os.PathLike[str] | None = None, *, command: str = "library"
    ) -> Site:
        """Load the config (``config``, else ``$BMPROV_CONFIG``, else ``./bmprov.toml``).

        :raises ConfigError: no config found, or it is invalid.
        """
        from bmprov.config import load_config  # noqa: PLC0415

        return cls(load_config(Path(config) if config is not None else None), command=command)

    @classmethod
    def create(cls, directory: str | os.PathLike[str], *, command: str = "library") -> Site:
        """``bmprov init DIR``: a commented starter ``bmprov.toml`` (kept if present) and an
        empty state file, then the site opened.

        :raises InputError: ``directory`` is a file or cannot be written to.
        """
        from bmprov.setup_site import init_site  # noqa: PLC0415

        return cls.open(init_site(Path(directory)).config_path, command=command)

    @property
    def state(self) -> Store:
        """The state file, opened (and migrated) on first use.

        :raises StateFileError: missing, empty, corrupt, newer or not bmprov's.
        """
        if self._state is None:
            from bmprov.store import open_store  # noqa: PLC0415

            self._state = open_store(self.config)
        return self._state

    def close(self) -> None:
        """Close the state file (the site can be used again: it reopens)."""
        if self._state is not None:
            self._state.close()
            self._state = None

    def __enter__(self) -> Site:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- inventory ------------------------------------------------------------------------

    def import_sheet(
        self, path: str | os.PathLike[str], *, sheet: str | None = None, dry_run: bool = False
    ) -> ImportPlan:
        """Validate a procurement sheet and upsert its rows, all or nothing.

        :raises ValidationFailed: every located problem (``.problems``); nothing written.
        """
        from bmprov.importing import import_sheet  # noqa: PLC0415

        return import_sheet(
            self.state, self.config, Path(path), sheet=sheet, dry_run=dry_run, command=self.command
        )

    def nodes(self, stage: str | None = None) -> list[Node]:
        """Every node (or those in ``stage``), by serial."""
        from bmprov.nodes import list_nodes  # noqa: PLC0415

        return list_nodes(self.state, stage)

    def node(self, serial: str) -> Node:
        """One node; :class:`InputError` if the serial is unknown."""
        from bmprov.nodes import get_node  # noqa: PLC0415

        return get_node(self.state, serial)

    def history(self, serial: str) -> list[dict[str, Any]]:
        """A node's stage changes, oldest first."""
        from bmprov.nodes import history  # noqa: PLC0415

        return history(self.state, serial)

    def select(self, **criteria: Any) -> Selection:
        """A :class:`~bmprov.nodes.Selection` from keyword criteria (``serials``, ``rack``,
        ``site``, ``from_stage``, ``all``)."""
        from bmprov.nodes import Selection  # noqa: PLC0415

        if "serials" in criteria:
            criteria["serials"] = tuple(criteria["serials"])
        return Selection(**criteria)

    # -- batches --------------------------------------------------------------------------

    def advance(
        self,
        stage: str,
        selection: Selection | None = None,
        *,
        dry_run: bool = False,
        progress: Callable[[NodeResult], None] | None = None,
        **criteria: Any,
    ) -> BatchResult:
        """Move the selected nodes to ``stage`` and run its entry action (one result per node).

        Select with a :class:`Selection` or keyword criteria: ``advance("mounting", rack="R01")``.
        :raises InputError: unknown stage or empty selection. :raises ConfigError: the stage's
        settings are invalid (nothing moved).
        """
        from bmprov.lifecycle import advance  # noqa: PLC0415
        from bmprov.stages import ActionContext  # noqa: PLC0415

        ctx = ActionContext(config=self.config, db=self.state, command=self.command)
        chosen = selection or self.select(**criteria)
        return advance(ctx, chosen, stage, dry_run=dry_run, progress=progress)

    def power(
        self,
        action: PowerAction | None,
        selection: Selection | None = None,
        *,
        bootdev: BootDevice | None = None,
        persistent: bool = False,
        dry_run: bool = False,
        **criteria: Any,
    ) -> BatchResult:
        """A power action (``"on"``, ``"off"``, ``"cycle"``, ``"reset"``; None: status only)
        and/or a boot device on the selected nodes' BMCs, with the site's concurrency."""
        from bmprov.nodes import select_nodes  # noqa: PLC0415
        from bmprov.power import PowerRequest, default_uefi, run_power  # noqa: PLC0415

        request = PowerRequest(
            action=action,
            bootdev=bootdev,
            persistent=persistent,
            uefi=default_uefi(self.config),
            status=action is None and bootdev is None,
        )
        nodes = select_nodes(self.state, selection or self.select(**criteria))
        return run_power(self.config, nodes, request, dry_run=dry_run)

    def reinstall(
        self,
        serials: list[str] | tuple[str, ...],
        os_name: str,
        options: dict[str, str] | None = None,
        *,
        max_nodes: int | None = None,
        dry_run: bool = False,
    ) -> BatchResult:
        """``bmprov reinstall``: check the OS applies, record it and the install options
        (``root_password`` plain, ``ssh_key``, ``partition_scheme``, ``post_install_url``...),
        then networking → os_provisioning with PXE and a power cycle, in waves.

        :raises InputError: a node that cannot be reinstalled, an OS that does not apply, a
            bad option, more than ``[power] max_nodes`` nodes without ``max_nodes``.
        """
        from bmprov.stages import ActionContext  # noqa: PLC0415
        from bmprov.workflow import reinstall  # noqa: PLC0415

        ctx = ActionContext(config=self.config, db=self.state, command=self.command)
        return reinstall(ctx, serials, os_name, options, max_nodes=max_nodes, dry_run=dry_run)

    def complete(self, serials: list[str] | tuple[str, ...]) -> BatchResult:
        """``bmprov complete``: the install is done; switch to disk and run the post-install
        steps (again, for a node already deployed)."""
        from bmprov.stages import ActionContext  # noqa: PLC0415
        from bmprov.workflow import complete  # noqa: PLC0415

        ctx = ActionContext(config=self.config, db=self.state, command=self.command)
        return complete(ctx, serials)

    def os_fits(self, serial: str) -> list[Fit]:
        """``bmprov os list SERIAL``: every OS profile, whether it applies, and why not."""
        from bmprov.catalogue import fits  # noqa: PLC0415

        return fits(self.config, self.node(serial))

    def render(self, *, prune: bool = False, remove: bool = False) -> RenderReport:
        """Bring every node's boot entries and install files up to date (``bmprov pxe render``)."""
        from bmprov.boot.sync import render_all  # noqa: PLC0415

        return render_all(self.config, self.state, prune=prune, remove=remove)

    def timeouts(self) -> list[TimedOut]:
        """Fail nodes that waited too long for their next install stage (``[serve.timeouts]``),
        as ``bmprov timeouts`` does; the nodes failed."""
        from bmprov.serve.timeouts import check_timeouts  # noqa: PLC0415

        return check_timeouts(self.config, self.state)

    def reconcile(
        self, *, fix: bool = False, prune: bool = False, site: str | None = None, bmc: bool = True
    ) -> Report:
        """State vs DHCP server, boot files and BMCs (``bmprov reconcile``); writes nothing
        unless ``fix``/``prune``."""
        from bmprov.reconcile import reconcile  # noqa: PLC0415

        return reconcile(self.config, self.state, fix=fix, prune=prune, site=site, bmc=bmc)

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        site: str | None = None,
        stage: str | None = None,
        fmt: str = "bmprov",
    ) -> int:
        """The inventory as ``.xlsx``/``.csv`` (``bmprov export``); returns the row count."""
        from bmprov.exporting import export  # noqa: PLC0415

        return export(self.state, Path(path), site=site, stage=stage, fmt=fmt)
