"""Per-MAC boot-loader entries and per-node OS install files.

:class:`NodeFileWriter` is the one API the networking stage and ``bmprov pxe`` use:

* :meth:`NodeFileWriter.write` puts a node in *install* mode: for each of its MACs a pxelinux,
  a GRUB and an iPXE entry that boot the installer of the node's OS, plus the node's install
  file (kickstart, preseed or autoinstall user-data) under the HTTP root;
* :meth:`NodeFileWriter.local_boot` switches every per-MAC entry of a node to booting its local
  disk (a file that says so, never a deleted one: a missing file falls through to ``default``,
  which on UEFI could be a stale GRUB file and reinstall the machine; see pxe-boot.md §8).

Names are exactly those the loaders request (pxe-boot.md §6), one function per loader:
``pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`` and ``<grub prefix>/grub.cfg-01-aa-bb-cc-dd-ee-ff`` under
the TFTP root, ``<ipxe dir>/mac-aa-bb-cc-dd-ee-ff.ipxe`` under the HTTP root (fetched by
``boot.ipxe`` as ``mac-${net0/mac:hexhyp}.ipxe``). Files are written atomically, mode 0644, and
only when their bytes change.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bmprov import validate
from bmprov.boot.names import EFI_LOADER, LOADERS, grub_name, ipxe_name, pxelinux_name
from bmprov.boot.osprofiles import OsProfile
from bmprov.boot.render import Renderer, RenderError
from bmprov.boot.settings import CMDLINE_ARG
from bmprov.boot.tokenctx import NO_TOKENS, InstallTokens
from bmprov.config import Config
from bmprov.errors import ConfigError, StepFailed
from bmprov.fsutil import replace_file, update_file
from bmprov.install import check as installcheck
from bmprov.install import disklayout
from bmprov.install.options import InstallOptions
from bmprov.nodes import Node

_CANONICAL_MAC = re.compile(r"[0-9a-f][02468ace](?::[0-9a-f]{2}){5}")  # unicast, lower case
_ZERO_MAC = "00:00:00:00:00:00"


_CLOUD_INIT = ("user-data", "meta-data")


# ---- the writer -------------------------------------------------------------------------------


class NodeFileWriter:
    """Renders and writes one node's boot entries and install file. Templates compiled once.

    One writer serves a whole batch, so what does not depend on the node is worked out once:
    the base context, each OS profile's repository, each distinct set of install options and
    post-install script, and which directories exist (made once each, not per file).
    """

    def __init__(self, config: Config) -> None:
        self.settings = config.settings.boot
        self.defaults = config.settings.install
        self.pxe = Renderer(config, "pxe_templates")
        self.ks = Renderer(config, "kickstart")
        self._config_path = config.path
        s = self.settings
        # Paths are joined as strings: a root of "/" must not give "//ks/SERIAL.cfg".
        self._tftp = os.fspath(s.tftp_root).rstrip("/")
        self._http = os.fspath(s.http_root).rstrip("/")
        self._base = self._base_context()
        self._profiles: dict[str, dict[str, Any]] = {}
        self._installs: dict[tuple[tuple[str, Any], ...], InstallOptions] = {}
        self._post_scripts: dict[str, str] = {}
        self._dirs = _Dirs()
        self._checked = installcheck.RenderCheck()
        self.tokens: InstallTokens | None = None  # set before forking workers: they inherit it
        # every node rendered to be written (ip None: local boot): see bmprov.boot.digests
        self.on_render: Callable[[Node, str | None, dict[str, str]], None] | None = None

    def check(self) -> None:
        """:class:`ConfigError` for what every node would trip on: a profile's kernel-command-line
        template or the default post-install script missing from every template directory."""
        where = f"{self._config_path}: " if self._config_path else ""
        for profile in self.settings.os.values():
            name = f"cmdline/{profile.template}.j2"
            if not self.pxe.exists(name):
                raise ConfigError(
                    f"{where}boot.os.{profile.name}: template {profile.template!r} needs "
                    f"{name}, found in none of {', '.join(map(str, self.pxe.dirs))}"
                )
        script = self.defaults.post_script
        if script and not self.ks.exists(f"post/{script}.sh"):
            raise ConfigError(
                f"{where}install.post_script: post/{script}.sh is in none of "
                f"{', '.join(map(str, self.ks.dirs))}"
            )

    def write(self, node: Node, ip: str) -> list[Path]:
        """Install mode for every MAC of ``node`` plus its install file; returns paths written.

        Raises :class:`StepFailed` (``"boot files"`` or ``"install file"``) for an invalid
        value or template; nothing of the node is written then.
        """
        return [Path(p) for p in self.write_str(node, ip)]

    def write_str(self, node: Node, ip: str) -> list[str]:
        """:meth:`write`, the paths as strings (no ``Path`` per file: batches write 40,000+)."""
        files = self._render_install(node, ip)
        if self.on_render is not None:
            self.on_render(node, ip, files)
        return self._write(files)

    def local_boot(self, node: Node) -> list[Path]:
        """Every per-MAC entry of ``node`` → boot the local disk, then its install file goes.

        A node that boots its disk (deployed, cleared, leaving) has no use for its install file,
        which carries its root password hash: it is deleted after the entries are switched (in
        that order, so a failure never leaves an entry pointing at a missing file). Returns the
        paths written; :class:`StepFailed` (``"install file"``) if the file cannot be removed.
        """
        files = self._render_local(node)
        if self.on_render is not None:
            self.on_render(node, None, files)
        written = [Path(p) for p in self._write(files)]
        self.remove_install(node)
        return written

    def remove_install(self, node: Node) -> list[Path]:
        """Delete the node's install file(s), whatever OS it had; returns the paths removed.

        A leaving node's kickstart/preseed/autoinstall carries its root password hash and
        must not stay published on the HTTP server.
        """
        base = self.settings.http_root / self.settings.install_dir
        candidates = [base / f"{node.serial}.cfg", *(base / node.serial / n for n in _CLOUD_INIT)]
        removed = [p for p in candidates if p.is_file()]
        try:
            for path in removed:
                path.unlink()
            if (base / node.serial).is_dir() and not any((base / node.serial).iterdir()):
                (base / node.serial).rmdir()
        except OSError as exc:
            message = f"cannot remove {exc.filename}: {exc.strerror}"
            raise StepFailed("install file", message) from None
        return removed

    def write_defaults(self) -> list[Path]:
        """The loaders' fallback files (local boot); returns paths written."""
        files: dict[str, str] = {}
        for loader, path in self.settings.default_paths().items():
            files[os.fspath(path)] = self._pxe(f"{loader}/default.j2", self._base)
        return [Path(p) for p in self._write(files)]

    def digest(self) -> str:
        """Settings, install defaults and every template: what all fingerprints depend on."""
        parts = (
            self.settings.digest(),
            repr(asdict(self.defaults)),
            self.pxe.digest(),
            self.ks.digest(),
        )
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    # -- rendering (no writes) ------------------------------------------------------------------

    def render_install(self, node: Node, ip: str, entries: bool = True) -> dict[Path, str]:
        """Path → content of the node's install-mode entries (unless not ``entries``: serve
        renders an install file alone in half the time) and install file(s)."""
        return {Path(p): text for p, text in self._render_install(node, ip, entries).items()}

    def render_local(self, node: Node) -> dict[Path, str]:
        """Path → content of the node's local-boot entries."""
        return {Path(p): text for p, text in self._render_local(node).items()}

    def _render_install(self, node: Node, ip: str, entries: bool = True) -> dict[str, str]:
        macs = _macs(node)
        profile = self.settings.profile(node.os)
        install = self._install_options(node)
        context = self._node_context(node, ip, profile, install)
        files = self._install_files(node, profile, context)
        self._check_install(node, profile, context["layout"], files)
        if not entries:
            return files
        cmdline = self._cmdline(profile, context)
        names = {
            loader: (f"{loader}/{profile.template}.j2", f"{loader}/install.j2")
            for loader in LOADERS
        }
        for mac in macs:
            mac_context = {**context, "mac": mac, "cmdline": cmdline}
            for loader, path in self._entries(mac):
                files[path] = self._pxe(names[loader], mac_context)
        return files

    def _render_local(self, node: Node) -> dict[str, str]:
        files: dict[str, str] = {}
        for mac in _macs(node):
            mac_context = {**self._base, "mac": mac, "serial": node.serial}
            for loader, path in self._entries(mac):
                files[path] = self._pxe(f"{loader}/local.j2", mac_context)
        return files

    def _entries(self, mac: str) -> tuple[tuple[str, str], ...]:
        """Loader → path of the per-MAC entry, as :meth:`BootSettings.entry_paths` (strings)."""
        s = self.settings
        return (
            ("pxelinux", f"{self._tftp}/{pxelinux_name(mac)}"),
            ("grub", f"{self._tftp}/{grub_name(mac, s.grub_prefix)}"),
            ("ipxe", f"{self._http}/{ipxe_name(mac, s.ipxe_dir)}"),
        )

    def install_paths(self, node: Node) -> list[Path]:
        """Where the node's install file(s) go."""
        return self.settings.install_paths(node, self.settings.profile(node.os))

    def _install_options(self, node: Node) -> InstallOptions:
        """The node's options over the defaults, validated once per distinct set of options."""
        options = node.install_options
        try:
            key = tuple(sorted(options.items()))
            hash(key)
        except TypeError:  # an unhashable stored value: validate (and fail) without the cache
            key = None
        cached = self._installs.get(key) if key is not None else None
        if cached is not None:
            return cached
        try:
            install = self.defaults.for_node(options)
        except ValueError as exc:
            raise StepFailed("install file", f"node {node.serial}: {exc}") from None
        if key is not None:
            self._installs[key] = install
        return install

    def install_options(self, node: Node) -> InstallOptions:
        """The node's install options over the defaults (:class:`StepFailed` if invalid)."""
        return self._install_options(node)

    def _check_install(
        self, node: Node, profile: OsProfile, layout: disklayout.DiskLayout, files: dict[str, str]
    ) -> None:
        try:
            self._checked.check(profile, layout, next(iter(files.values())))
        except ValueError as exc:
            template = self.ks.template((f"{profile.name}.j2", f"{profile.install}.j2"))
            where = f"template {template.filename or template.name}: node {node.serial}"
            raise StepFailed("install file", f"{where}: {exc}") from None

    def _base_context(self) -> dict[str, Any]:
        s = self.settings
        return {
            "server": s.server,
            "http_url": s.http_url,
            "grub_prefix": s.grub_prefix,
            "ipxe_dir": s.ipxe_dir,
            "efi_loader": EFI_LOADER,
            **disklayout.SIZES,
        }

    def _node_context(
        self, node: Node, ip: str, profile: OsProfile, install: InstallOptions
    ) -> dict[str, Any]:
        try:
            address = str(ipaddress.IPv4Address(ip))
        except ValueError:
            raise StepFailed(
                "boot files", f"node {node.serial}: {ip!r} is not an IPv4 address"
            ) from None
        host = node.hostname or _host_from_serial(node.serial)
        layout = disklayout.plan(install)
        domain = self.settings.domain
        fqdn = host if "." in host or not domain else f"{host}.{domain}"
        return {
            **self._profile_context(profile),
            "serial": node.serial,
            "hostname": host.split(".")[0],
            "fqdn": fqdn,
            "ip": address,
            "install_url": self.settings.install_url(node, profile),
            "install": install,
            "layout": layout,
            "raid": {"level": layout.level, "active": layout.active, "spares": layout.spares},
            "post_script_b64": self._post_script(node, install),
            **(self.tokens.context(node.id) if self.tokens else NO_TOKENS),
        }

    def _profile_context(self, profile: OsProfile) -> dict[str, Any]:
        """The part of a node's context that only depends on its OS profile (made once)."""
        cached = self._profiles.get(profile.name)
        if cached is None:
            repo = self.settings.repo(profile)
            cached = {
                **self._base,
                "domain": self.settings.domain or "",
                "os": profile,
                "repo": repo,
                "repo_host": repo.split("/")[2],
                "repo_path": "/" + "/".join(repo.split("/")[3:]),
                "kernel_args": self.settings.kernel_args,
            }
            self._profiles[profile.name] = cached
        return cached

    def _post_script(self, node: Node, install: InstallOptions) -> str:
        """The named site snippet, base64-encoded: no shell, YAML or %-section can leak out."""
        if not install.post_script:
            return ""
        cached = self._post_scripts.get(install.post_script)
        if cached is not None:
            return cached
        name = f"post/{install.post_script}.sh"
        for directory in self.ks.dirs:
            path = directory / name
            if path.is_file():
                encoded = base64.b64encode(path.read_bytes()).decode()
                self._post_scripts[install.post_script] = encoded
                return encoded
        raise StepFailed(
            "install file",
            f"node {node.serial}: post-install script {name} not found in "
            f"{', '.join(map(str, self.ks.dirs))}",
        )

    def _install_files(
        self, node: Node, profile: OsProfile, context: dict[str, Any]
    ) -> dict[str, str]:
        base = f"{self._http}/{self.settings.install_dir}"
        names = tuple(f"{n}.j2" for n in (profile.name, *profile.bases, profile.install))
        if profile.install != "autoinstall":
            return {f"{base}/{node.serial}.cfg": self._ks(names, context)}
        return {
            f"{base}/{node.serial}/user-data": self._ks(names, context),
            f"{base}/{node.serial}/meta-data": self._ks("autoinstall-meta-data.j2", context),
        }

    def _cmdline(self, profile: OsProfile, context: dict[str, Any]) -> list[str]:
        """The kernel arguments, from ``cmdline/<template>.j2``, checked one by one."""
        name = f"cmdline/{profile.template}.j2"
        text = self._pxe(name, context)
        args = text.split()
        for arg in args:
            if not CMDLINE_ARG.fullmatch(arg):
                raise StepFailed("boot files", f"template {name}: unsafe kernel argument {arg!r}")
        return args

    def _pxe(self, names: str | tuple[str, ...], context: dict[str, Any]) -> str:
        try:
            return self.pxe.render(names, context)
        except RenderError as exc:
            raise StepFailed("boot files", str(exc)) from None

    def _ks(self, names: str | tuple[str, ...], context: dict[str, Any]) -> str:
        try:
            return self.ks.render(names, context)
        except RenderError as exc:
            raise StepFailed("install file", str(exc)) from None

    def _write(self, files: dict[str, str]) -> list[str]:
        """Write each file that changed; returns those written. An unwritable path (full disk,
        a directory where the file should be, no permission) is :class:`StepFailed`."""
        written: list[str] = []
        for path, text in files.items():
            try:
                if self._dirs.write(path, text.encode()):
                    written.append(path)
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                if isinstance(exc, FileExistsError):  # mkdir met a file
                    reason = f"{exc.filename} is a file, not a directory"
                raise StepFailed("boot files", f"cannot write {path}: {reason}") from None
        return written


class _Dirs:
    """The directories one writer writes into: made once each, and what they hold.

    A file that cannot exist yet (its directory was made by this writer, or was listed and
    did not hold it) is written without first trying to read it. A directory that existed is
    listed once this writer has written :data:`LIST_AFTER` files into it (a render that
    changes a few nodes of 10,000 does not list anything). A file another process creates
    meanwhile is at worst replaced by the same bytes.
    """

    LIST_AFTER = 64

    def __init__(self) -> None:
        self._names: dict[str, set[str] | None] = {}  # None: exists, contents not listed
        self._writes: dict[str, int] = {}

    def write(self, path: str, raw: bytes) -> bool:
        """Write ``raw`` to ``path`` unless it holds it already; True if written."""
        directory, _, name = path.rpartition("/")
        names = self._names[directory] if directory in self._names else self._touch(directory)
        try:
            if names is not None and name not in names:
                replace_file(path, raw)
                changed = True
            else:
                changed = update_file(path, raw)
        except FileNotFoundError:  # the directory was removed meanwhile: make it again
            _make_dir(Path(directory))
            changed = update_file(path, raw)
        if names is not None:
            names.add(name)
        return changed

    def _touch(self, directory: str) -> set[str] | None:
        count = self._writes[directory] = self._writes.get(directory, 0) + 1
        if count == 1 and _make_dir(Path(directory)):
            names: set[str] | None = set()  # made just now: empty
        elif count > self.LIST_AFTER:
            names = set(os.listdir(directory))  # noqa: PTH208  (names, not Paths)
        else:
            return None
        self._names[directory] = names
        return names


def _make_dir(directory: Path) -> bool:
    """Create a directory (and parents) mode 0755 whatever the umask: tftpd runs as nobody.

    True if it was created (False: it was there).
    """
    if directory.is_dir():
        return False
    _make_dir(directory.parent)
    directory.mkdir(exist_ok=True)
    directory.chmod(0o755)
    return True


def _macs(node: Node) -> tuple[str, ...]:
    """The node's MACs, re-checked: they become file names (a stored value is not trusted)."""
    _check_serial(node)
    if not node.macs:
        raise StepFailed("boot files", f"node {node.serial} has no MAC address")
    for mac in node.macs:
        if _CANONICAL_MAC.fullmatch(mac) and mac != _ZERO_MAC:
            continue  # the common case, without validate.mac's notation search
        try:
            canonical = validate.mac(mac)
        except ValueError as exc:
            raise StepFailed("boot files", f"node {node.serial}: {exc}") from None
        if canonical != mac:
            raise StepFailed("boot files", f"node {node.serial}: MAC {mac!r} is not canonical")
    return node.macs


def _check_serial(node: Node) -> None:
    """The serial names the install file: it must still be a valid serial."""
    try:
        canonical = validate.serial(node.serial)
    except ValueError as exc:
        raise StepFailed("install file", f"serial {node.serial!r}: {exc}") from None
    if canonical != node.serial:
        raise StepFailed("install file", f"serial {node.serial!r} has surrounding spaces")


def _host_from_serial(serial: str) -> str:
    """A host name for a node the sheet gave none: its serial, made RFC 1123."""
    return validate.hostname(re.sub(r"[^a-z0-9-]", "-", serial.lower()).strip("-") or "node")
