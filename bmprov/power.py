"""Power and boot-device batches: a rack or a whole delivery at once, through flaky BMCs.

:func:`run_power` drives every selected node's BMC with bounded concurrency
(``[power] concurrency``), an optional stagger between power-ons (``[power] stagger``: inrush
current) and a per-node result. A batch that PXE-boots more than ``[power] wave_size`` nodes
goes in **waves** (:mod:`bmprov.waves`), ``wave_interval`` seconds apart, so the TFTP server
never sees the whole batch boot at once. Every driver call has a hard deadline
(:mod:`bmprov.drivers.base`), so a dead BMC costs at most its timeout and only occupies one
worker; the others go on. Nothing here raises per node: a failure is a ``failed`` result
naming the node, the BMC and what went wrong.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from bmprov.config import Config
from bmprov.credentials import CredentialStore
from bmprov.drivers import (
    BmcTarget,
    BootDevice,
    DriverSettings,
    PowerAction,
    PowerDriver,
    driver_class,
    make_driver,
    target_for,
)
from bmprov.drivers.deadline import DeadlineExceeded, Watch, bounded, supervised_map
from bmprov.errors import BmprovError
from bmprov.nodes import Node
from bmprov.result import BatchResult, NodeResult, ResultCode
from bmprov.runlock import site_lock
from bmprov.store import Store
from bmprov.waves import DEFAULT_WAVE_INTERVAL, DEFAULT_WAVE_SIZE, Clock, in_waves

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 32
DEFAULT_MAX_NODES = 50
POWER_ON_ACTIONS = frozenset({PowerAction.ON, PowerAction.CYCLE, PowerAction.RESET})
NO_BMC_MESSAGE = "no BMC: waiting for a manual power-on"

ProgressFn = Callable[[NodeResult], None]


@dataclass(frozen=True)
class PowerSettings:
    """``[power]``: how batches run."""

    concurrency: int = DEFAULT_CONCURRENCY
    stagger: float = 0.0  # seconds between two power-ons
    auto_on_provisioning: bool = False
    provisioning_persistent: bool = False
    wave_size: int = 0  # PXE boots per wave; 0: one wave (the library default; see power_settings)
    wave_interval: float = 0.0  # seconds from the end of one wave's BMC calls to the next wave
    max_nodes: int = DEFAULT_MAX_NODES  # more nodes power-cycled or reinstalled needs --max-nodes


@dataclass(frozen=True)
class PowerRequest:
    """What to do to each node: optionally set the boot device, then a power action / status."""

    action: PowerAction | None = None
    bootdev: BootDevice | None = None
    persistent: bool = False
    uefi: bool = True
    status: bool = False
    read_boot: bool = False  # also read the boot device back (reconcile), where it can be

    def describe(self) -> str:
        """``boot pxe (one-time), power cycle``."""
        parts = []
        if self.bootdev:
            parts.append(f"boot {self.bootdev} ({'persistent' if self.persistent else 'one-time'})")
        if self.action:
            parts.append(f"power {self.action}")
        if self.status:
            parts.append("power status")
        return ", ".join(parts)

    @property
    def label(self) -> str:
        """The batch's action name (``power:cycle``, ``boot:pxe``, ``power:status``)."""
        if self.action:
            return f"power:{self.action}"
        if self.bootdev:
            return f"boot:{self.bootdev}"
        return "power:status"


def power_settings(config: Config) -> PowerSettings:
    """``[power]`` as typed settings."""
    section = config.section("power")
    return PowerSettings(
        concurrency=max(1, int(section.get("concurrency", DEFAULT_CONCURRENCY))),
        stagger=max(0.0, float(section.get("stagger", 0.0))),
        auto_on_provisioning=bool(section.get("auto_on_provisioning", False)),
        provisioning_persistent=bool(section.get("provisioning_persistent", False)),
        wave_size=max(0, int(section.get("wave_size", DEFAULT_WAVE_SIZE))),
        wave_interval=max(0.0, float(section.get("wave_interval", DEFAULT_WAVE_INTERVAL))),
        max_nodes=max(1, int(section.get("max_nodes", DEFAULT_MAX_NODES))),
    )


def driver_settings(config: Config) -> DriverSettings:
    """``[bmc]`` timeouts and driver options as typed settings."""
    bmc = config.section("bmc")
    options: dict[str, Any] = {**(bmc.get("redfish") or {}), **(bmc.get("wol") or {})}
    return DriverSettings(
        timeout=float(bmc.get("timeout", 10.0)),
        connect_timeout=float(bmc.get("connect_timeout", 2.0)),
        power_wait=float(bmc.get("power_wait", 30.0)),
        options=options,
    )


def default_uefi(config: Config) -> bool:
    """``[bmc] uefi``: ask for UEFI boot when setting the boot device (default true)."""
    return bool(config.section("bmc").get("uefi", True))


def boot_from_disk(config: Config, nodes: list[Node]) -> BatchResult:
    """Set every node back to booting from its disk, persistently (end of a reinstall).

    A one-time PXE override already falls back to the disk; this is for sites that set
    ``[power] provisioning_persistent = true`` or boot persistently from PXE by hand.
    """
    request = PowerRequest(bootdev=BootDevice.DISK, persistent=True, uefi=default_uefi(config))
    return run_power(config, nodes, request)


class Stagger:
    """Spaces power-ons ``interval`` seconds apart across all workers (the first goes at once)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this caller's slot."""
        if self.interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass
class _Run:
    """Everything a worker needs for one batch."""

    config: Config
    request: PowerRequest
    store: CredentialStore
    drivers: DriverSettings
    stagger: Stagger
    dry_run: bool
    section: dict[str, Any] = field(default_factory=dict)


def run_power(
    config: Config,
    nodes: list[Node],
    request: PowerRequest,
    *,
    settings: PowerSettings | None = None,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    on_total: Callable[[int], None] | None = None,
    clock: Clock | None = None,
) -> BatchResult:
    """Apply ``request`` to every node; one result each, sorted by serial. Never raises per node.

    ``dry_run`` goes through the fake driver: addresses and drivers are resolved and checked,
    but no BMC is contacted and no password is read (a dry run needs no secret). A request
    that PXE-boots nodes goes in waves of ``settings.wave_size``; ``clock`` (tests: a fake)
    does the waiting between them.
    """
    settings = settings or config.settings.power
    run = _Run(
        config,
        request,
        CredentialStore(config),
        config.settings.drivers,
        Stagger(settings.stagger),
        dry_run,
        config.section("bmc"),
    )
    batch = BatchResult(action=request.label + (" (dry run)" if dry_run else ""))
    log.info(
        "%s: %d node(s), %d BMC(s) at once, %g s between power-ons",
        batch.action,
        len(nodes),
        settings.concurrency,
        settings.stagger,
    )
    if on_total:
        on_total(len(nodes))
    work = partial(_guarded, partial(_one, run))
    size = settings.wave_size if pxe_storm(request) and not dry_run else 0
    for wave in in_waves(nodes, size, settings.wave_interval, clock, batch.action):
        for result in supervised_map(wave, work, settings.concurrency, _timed_out):
            batch.add(result)
            if progress:
                progress(result)
    batch.results.sort(key=lambda r: r.serial)
    return batch


def run_power_locked(
    config: Config,
    db: Store,
    nodes: list[Node],
    request: PowerRequest,
    *,
    dry_run: bool = False,
    **kwargs: Any,
) -> BatchResult:
    """:func:`run_power` for ``bmprov power``/``boot``: a request that changes a BMC holds the
    site's run lock shared (as ``advance`` does), so it never runs beside a ``reconcile
    --fix`` (whose repaired boot entries the machines it powers on would PXE-boot, and whose
    BMC plane would report the transient state); reading the power state takes no lock."""
    if request.status or dry_run:
        return run_power(config, nodes, request, dry_run=dry_run, **kwargs)
    with site_lock(db, config.busy_timeout_ms / 1000, shared=True, site=config.site):
        return run_power(config, nodes, request, dry_run=dry_run, **kwargs)


def pxe_storm(request: PowerRequest) -> bool:
    """True when the request makes nodes boot from the network (the TFTP server's load)."""
    return request.bootdev is BootDevice.PXE and request.action in POWER_ON_ACTIONS


def _guarded(work: Callable[[Node], NodeResult], node: Node) -> NodeResult:
    try:
        return work(node)
    except Exception as exc:  # a bug must cost one node, not the batch
        log.debug("power batch: %s crashed", node.serial, exc_info=True)
        return NodeResult(
            node.serial, "failed", node.stage, f"internal error: {type(exc).__name__}", "power"
        )


def _timed_out(node: Node, watch: Watch) -> NodeResult:
    """The result of a node whose BMC call passed its deadline (reported at the deadline)."""
    step = "boot" if "boot" in watch.what else watch.what if watch.what == "bmc" else "power"
    details = {"seconds": round(time.monotonic() - watch.started, 3)}
    return NodeResult(node.serial, "failed", node.stage, watch.message, step, details)


def _find_target(run: _Run, node: Node) -> BmcTarget | NodeResult:
    """The node's BMC, or the result to report when it has none or it cannot be resolved."""
    slow = f"node {node.serial}: reading its BMC settings took over {run.drivers.timeout:g} s"
    try:  # bounded too: a password_file on a hung network filesystem must not hang the batch
        target = bounded(
            lambda: target_for(node, run.store, run.section, secrets=not run.dry_run),
            run.drivers.timeout,
            "bmc",
            slow,
        )
    except DeadlineExceeded:
        return NodeResult(node.serial, "failed", node.stage, slow, "bmc")
    except BmprovError as exc:
        return NodeResult(node.serial, "failed", node.stage, str(exc), "bmc")
    if target is None:
        message = "no BMC" if run.request.status and not run.request.action else NO_BMC_MESSAGE
        return NodeResult(
            node.serial, "skipped", node.stage, message, None, {"driver": "none"}, ResultCode.NO_BMC
        )
    return target


def _one(run: _Run, node: Node) -> NodeResult:
    """Everything the request asks of one node."""
    start = time.monotonic()
    target = _find_target(run, node)
    if isinstance(target, NodeResult):
        return target
    details: dict[str, Any] = {"driver": target.driver, "bmc": target.where}
    real = driver_class(target.driver)
    unsupported = _unsupported(run.request, real)
    if unsupported:
        return NodeResult(node.serial, "skipped", node.stage, unsupported, None, details)
    driver = make_driver(target, run.drivers, dry_run=run.dry_run)
    track = {"step": "power"}
    try:
        if run.dry_run:
            _check_supported(run.request, real, driver)
        done = _steps(run, driver, details, track)
    except BmprovError as exc:
        details["seconds"] = round(time.monotonic() - start, 3)
        return NodeResult(node.serial, "failed", node.stage, str(exc), track["step"], details)
    finally:
        driver.close()
    details["seconds"] = round(time.monotonic() - start, 3)
    if run.dry_run:
        plan = _describe_for(run.request, real)
        message = f"would {plan} via {target.driver} {target.where}"
        return NodeResult(node.serial, "planned", node.stage, message, None, details)
    return NodeResult(node.serial, "ok", node.stage, "; ".join(done), None, details)


def _check_supported(request: PowerRequest, real: type[PowerDriver], fake: PowerDriver) -> None:
    """Dry run: fail as the real driver would on an action it cannot do."""
    if request.action and request.action not in real.supported_actions:
        raise fake.error(f"power {request.action} is not supported by the {real.name} driver")


def _describe_for(request: PowerRequest, real: type[PowerDriver]) -> str:
    """The request in words, leaving out what the driver cannot do (WoL: the boot device)."""
    if request.bootdev and not real.can_set_boot:
        return f"{replace(request, bootdev=None).describe()} (PXE must be first in its boot order)"
    return request.describe()


def _steps(
    run: _Run, driver: PowerDriver, details: dict[str, Any], track: dict[str, str]
) -> list[str]:
    """Boot device, then stagger + power action, then status; what was done, in words.

    ``track["step"]`` names the step under way (``boot`` or ``power``) for failure reports.
    """
    request, done = run.request, []
    if request.bootdev and driver.can_set_boot:
        track["step"] = "boot"
        result = driver.set_boot_device(request.bootdev, request.persistent, request.uefi)
        details["bootdev"] = str(result.device)
        details["boot_verified"] = result.verified
        how = "verified" if result.verified else "acknowledged; the BMC does not report it"
        mode = "persistent" if request.persistent else "one-time"
        done.append(f"boot {result.device} ({mode}, {how})")
    elif request.bootdev:
        done.append(f"boot device not settable over {driver.name}: PXE must be first")
    track["step"] = "power"
    if request.action:
        if request.action in POWER_ON_ACTIONS:
            run.stagger.wait()
        done.append(driver.set_power(request.action))
    if request.status and driver.can_read_power:
        details["power"] = str(driver.get_power())
        done.append(details["power"])
    if request.read_boot and driver.can_set_boot:
        details["boot"] = _read_boot(driver)
    return done


def _read_boot(driver: PowerDriver) -> dict[str, Any] | None:
    """The boot device the BMC reports (None: it would not say; not a power failure)."""
    try:
        readback = driver.get_boot_device()
    except BmprovError:
        return None
    return {"device": readback.device, "persistent": readback.persistent}


def _unsupported(request: PowerRequest, driver: type[PowerDriver]) -> str | None:
    """Why a request has nothing to do on this driver (WoL status / boot only), or None."""
    if request.action:
        return None
    if request.bootdev and not driver.can_set_boot:
        return f"{driver.name} cannot set the boot device: PXE must be first in its boot order"
    if request.status and not driver.can_read_power:
        return f"{driver.name} cannot read the power state"
    return None
