"""DHCP reservations behind one small interface, whatever server the site runs.

A :class:`DhcpBackend` adds, removes, looks up and lists host reservations (MAC → fixed IP, host
name, boot filename, next-server). ``[dhcp] backend`` picks one:

* ``omapi``: ISC dhcpd over OMAPI, live, no restart (:mod:`bmprov.dhcp.omapi`);
* ``dnsmasq``: one file per host in a ``dhcp-hostsdir`` (:mod:`bmprov.dhcp.dnsmasq`);
* ``kea``: reservations in kea-dhcp4's config, ``config-reload`` (:mod:`bmprov.dhcp.kea`);
* ``file``: a local JSON file next to bmprov.toml, no daemon (the default; :mod:`.filestore`).

Every value is validated before anything is sent (:meth:`Reservation.checked`), and the base
class refuses an address outside every configured subnet or already held by another MAC:
OMAPI itself accepts both silently. Backends are context managers; one opening serves a batch,
and :meth:`DhcpBackend.commit` applies whatever the backend buffers (one reload per batch).
"""

from __future__ import annotations

import re
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import import_module
from pathlib import Path
from typing import Any, ClassVar

from bmprov import validate
from bmprov.config import Config
from bmprov.errors import BmprovError, ConfigError, DriverError
from bmprov.ipam import Pool, ip_to_int

BACKENDS: dict[str, str] = {
    "file": "bmprov.dhcp.filestore:FileBackend",
    "omapi": "bmprov.dhcp.omapi:OmapiBackend",
    "dnsmasq": "bmprov.dhcp.dnsmasq:DnsmasqBackend",
    "kea": "bmprov.dhcp.kea:KeaBackend",
}
"""``[dhcp] backend`` value → ``module:class`` (imported only when chosen)."""

_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


AddResult = tuple["Reservation", BmprovError | None]
"""One reservation and why it failed (None: the server holds it)."""


class ReservationConflict(DriverError):
    """The server already holds this MAC (or IP) with other data; bmprov never overwrites it."""


class ReservationRefused(DriverError):
    """A reservation bmprov refuses to send (bad value, address outside every subnet...)."""


@dataclass(frozen=True)
class Reservation:
    """One host reservation as bmprov sends it (and as a server reports it back)."""

    mac: str
    ip: str
    name: str = ""  # the server-side object name (the node's serial)
    hostname: str | None = None
    filename: str | None = None
    next_server: str | None = None
    router: str | None = None  # the pool's gateway
    dns: tuple[str, ...] = ()  # the pool's DNS servers

    def checked(self) -> Reservation:
        """This reservation with every field validated (allow-lists), or ReservationRefused.

        A value already checked (networking checks when it builds, the backend again before
        sending) is returned as is: checking is a fixed point, so equal values are valid.
        """
        if self in _CHECKED:
            return self
        checked = self._check()
        _CHECKED.add(checked)
        return checked

    def _check(self) -> Reservation:
        try:
            mac = validate.mac(self.mac)
            ip = _ipv4(self.ip, "IP")
            hostname = validate.hostname(self.hostname) if self.hostname else None
            next_server = _ipv4(self.next_server, "next-server") if self.next_server else None
            router = _ipv4(self.router, "router") if self.router else None
            dns = tuple(_ipv4(d, "DNS server") for d in self.dns)
        except ValueError as exc:
            raise ReservationRefused(f"reservation for {self.mac!r}: {exc}") from None
        if self.name and not _NAME.fullmatch(self.name):
            raise ReservationRefused(f"{self.name!r} is not a valid reservation name")
        if self.filename and (not _FILENAME.fullmatch(self.filename) or ".." in self.filename):
            raise ReservationRefused(f"{self.filename!r} is not a valid boot filename")
        return replace(
            self, mac=mac, ip=ip, hostname=hostname, next_server=next_server, router=router, dns=dns
        )

    def same_as(self, other: Reservation) -> bool:
        """Same MAC and IP (what a server can always report back)."""
        return self.mac == other.mac and self.ip == other.ip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without empty fields."""
        data = {
            "mac": self.mac,
            "ip": self.ip,
            "name": self.name,
            "hostname": self.hostname,
            "filename": self.filename,
            "next_server": self.next_server,
            "router": self.router,
            "dns": list(self.dns),
        }
        return {k: v for k, v in data.items() if v}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reservation:
        """The inverse of :meth:`to_dict` (unknown keys ignored)."""
        keys = ("mac", "ip", "name", "hostname", "filename", "next_server", "router")
        values = {k: data[k] for k in keys if data.get(k) is not None}
        return cls(**values, dns=tuple(data.get("dns") or ()))


_CHECKED: weakref.WeakSet[Reservation] = weakref.WeakSet()
"""Reservations that :meth:`Reservation.checked` returned (and are still alive)."""


def _ipv4(value: str, what: str) -> str:
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
        raise ValueError(f"{what} {value!r} is not an IPv4 address")
    return ".".join(str(int(p)) for p in parts)


@dataclass(frozen=True)
class DhcpSettings:
    """``[dhcp]`` plus what the backends need from ``[network]`` and the pools."""

    backend: str
    section: dict[str, Any]
    config: Config
    next_server: str | None
    boot_filename: str | None
    pools: tuple[Pool, ...] = field(default_factory=tuple)

    def sub(self, name: str) -> dict[str, Any]:
        """A backend's own table (``[dhcp.omapi]``...), empty if absent."""
        value = self.section.get(name, {})
        return value if isinstance(value, dict) else {}

    def path(self, name: str, key: str) -> Path:
        """A required path of a backend's table, resolved against the config file."""
        value = self.sub(name).get(key)
        if not value:
            where = f"{self.config.path}: " if self.config.path else ""
            raise ConfigError(f"{where}dhcp.{name}.{key} is required for the {name} backend")
        return self.config.resolve(value)

    @classmethod
    def from_config(cls, config: Config) -> DhcpSettings:
        """Read ``[dhcp]``; defaults: file backend, next-server = the provisioning server."""
        section = config.section("dhcp")
        backend = str(section.get("backend", "file"))
        if backend not in BACKENDS:
            raise ConfigError(f"dhcp.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        next_server = section.get("next_server") or config.settings.network.server_address
        filename = section.get("boot_filename", "pxelinux.0") or None
        pools = tuple(config.settings.pools)
        return cls(backend, section, config, next_server, filename, pools)

    def reservation(self, mac: str, ip: str, name: str, hostname: str | None) -> Reservation:
        """The reservation bmprov wants for a node (with its pool's gateway and DNS), validated."""
        pool = self.pool_of(ip)
        router, dns = (pool.gateway, pool.dns) if pool else (None, ())
        res = Reservation(
            mac, ip, name, hostname, self.boot_filename, self.next_server, router, dns
        )
        return res.checked()

    def pool_of(self, ip: str) -> Pool | None:
        """The most specific pool (longest prefix) whose subnet holds ``ip``."""
        holding = [p for p in self.pools if p.contains(ip)]
        return max(holding, key=lambda p: p.prefixlen) if holding else None


class DhcpBackend(ABC):
    """Add / remove / look up / list host reservations on one DHCP server.

    Use as a context manager (``open`` on enter; ``commit`` then ``close`` on a clean exit).
    ``add`` is idempotent: the same MAC with the same IP already present is success (False:
    nothing changed); the same MAC with another IP raises :class:`ReservationConflict`.
    Every method raises :class:`~bmprov.errors.DriverError` (naming the server) on failure.
    """

    kind: ClassVar[str] = ""
    required: ClassVar[tuple[str, ...]] = ()
    """Path keys of the backend's own table that must be set."""

    def __init__(self, settings: DhcpSettings) -> None:
        self.settings = settings
        self._owners: dict[str, str] = {}  # ip → mac, for the duplicate-IP check

    def __enter__(self) -> DhcpBackend:
        self.open()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.close()

    def check(self) -> None:
        """:class:`ConfigError` if a setting the backend needs is missing (connects to nothing)."""
        for key in self.required:
            self.settings.path(self.kind, key)

    def open(self) -> None:  # noqa: B027  (optional hook)
        """Connect / load; called once per batch."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the connection."""

    def commit(self) -> None:  # noqa: B027  (optional hook)
        """Apply buffered changes (write + reload); a no-op for live backends."""

    def claim(self, owners: Mapping[str, str]) -> None:
        """Tell the backend which MAC holds which IP (from the state file) before adding."""
        self._owners.update(owners)

    def add(self, reservation: Reservation) -> bool:
        """Reserve ``reservation`` (validated and checked first). True if the server changed."""
        res = reservation.checked()
        self._precheck(res)
        changed = self._add(res)
        self._owners[res.ip] = res.mac
        return changed

    def add_many(self, items: Iterable[Reservation]) -> Iterator[AddResult]:
        """Add each reservation; yields one (reservation, error or None) per item, in order.

        Servers that can keep several requests in flight (OMAPI) override this.
        """
        for res in items:
            try:
                self.add(res)
            except BmprovError as exc:
                yield res, exc
            else:
                yield res, None

    def _precheck(self, res: Reservation) -> None:
        pools = self.settings.pools
        if pools and not any(p.contains(res.ip) for p in pools):
            subnets = ", ".join(sorted({p.subnet for p in pools}))
            raise ReservationRefused(f"{res.ip} is outside every configured subnet ({subnets})")
        owner = self._owners.get(res.ip)
        if owner is not None and owner != res.mac:
            raise ReservationRefused(f"{res.ip} is already reserved for MAC {owner}")

    @abstractmethod
    def _add(self, res: Reservation) -> bool:
        """Backend-specific add of a validated reservation."""

    @abstractmethod
    def remove(self, mac: str) -> bool:
        """Delete the reservation for ``mac``; False if there was none."""

    @abstractmethod
    def lookup(self, mac: str) -> Reservation | None:
        """What the server holds for ``mac``, or None."""

    @abstractmethod
    def list(self, macs: Iterable[str] = ()) -> list[Reservation]:
        """What the server holds (servers that cannot enumerate look up ``macs`` instead)."""


def open_backend(settings: DhcpSettings) -> DhcpBackend:
    """An (unopened) backend instance for ``settings.backend``."""
    module, _, cls = BACKENDS[settings.backend].partition(":")
    backend: DhcpBackend = getattr(import_module(module), cls)(settings)
    return backend


def owners_by_ip(reservations: Iterable[Reservation]) -> dict[str, str]:
    """ip → mac for a set of reservations."""
    return {r.ip: r.mac for r in reservations}


def sort_key(res: Reservation) -> int:
    """Reservations sort by address."""
    return ip_to_int(res.ip)
