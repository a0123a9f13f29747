"""The ``kea`` backend: reservations in kea-dhcp4's JSON config, applied with ``config-reload``.

Debian's Kea 2.2 has no ``host_cmds`` hook, so reservations live in the config file's
``Dhcp4.subnet4[].reservations``. A batch rewrites the file once (atomically) and sends
``config-reload`` over the unix control socket; if Kea refuses the new file, the old one is
put back so the file always matches what Kea runs. ``config-get`` then reads the result back.
The whole read-modify-write-reload runs under ``.kea-dhcp4.conf.lock`` (see
:mod:`bmprov.dhcp.table`), so two batches never reload each other's stale copy.

A batch killed between writing the file and Kea's reload leaves a file Kea does not run; the
next batch would read it, find its reservations already there and write (and reload) nothing.
``.kea-dhcp4.conf.reload`` marks that window (a reload Kea refuses puts the old file back and
clears it): a batch that finds it reloads Kea even when it changes nothing itself.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

from bmprov.dhcp import Reservation, ReservationRefused
from bmprov.dhcp.table import TableBackend
from bmprov.errors import DriverError
from bmprov.fsutil import atomic_write
from bmprov.ipam import ip_to_int

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0


def to_kea(res: Reservation) -> dict[str, Any]:
    """One Kea reservation object."""
    out: dict[str, Any] = {"hw-address": res.mac, "ip-address": res.ip}
    if res.hostname:
        out["hostname"] = res.hostname
    if res.filename:
        out["boot-file-name"] = res.filename
    if res.next_server:
        out["next-server"] = res.next_server
    options = [{"name": "routers", "data": res.router}] if res.router else []
    if res.dns:
        options.append({"name": "domain-name-servers", "data": ", ".join(res.dns)})
    if options:
        out["option-data"] = options
    return out


def from_kea(item: dict[str, Any]) -> Reservation | None:
    """A reservation read from Kea (only hw-address + ip-address ones)."""
    if "hw-address" not in item or "ip-address" not in item:
        return None
    res = Reservation(
        item["hw-address"],
        item["ip-address"],
        hostname=item.get("hostname") or None,
        filename=item.get("boot-file-name") or None,
        next_server=item.get("next-server") or None,
        **_options(item.get("option-data") or []),
    )
    try:
        return res.checked()  # canonical MAC case, so comparisons with bmprov's hold
    except ReservationRefused:
        return None


def _options(data: list[dict[str, Any]]) -> dict[str, Any]:
    """``router``/``dns`` keyword arguments from a reservation's option-data."""
    found = {str(o.get("name")): str(o.get("data", "")) for o in data if isinstance(o, dict)}
    out: dict[str, Any] = {}
    if found.get("routers"):
        out["router"] = found["routers"].split(",")[0].strip()
    if found.get("domain-name-servers"):
        out["dns"] = tuple(d.strip() for d in found["domain-name-servers"].split(","))
    return out


def subnet_of(subnets: list[dict[str, Any]], ip: str) -> dict[str, Any] | None:
    """The ``subnet4`` entry whose prefix contains ``ip``."""
    value = ip_to_int(ip)
    for subnet in subnets:
        net, _, plen = str(subnet.get("subnet", "")).partition("/")
        try:
            first, bits = ip_to_int(net), int(plen)
        except (OSError, ValueError):
            continue
        if first <= value < first + (1 << (32 - bits)):
            return subnet
    return None


class KeaBackend(TableBackend):
    """Reservations in the config file; one ``config-reload`` per batch."""

    kind = "kea"
    required = ("config", "socket")

    @property
    def config_path(self) -> Path:
        """kea-dhcp4's JSON config."""
        return self.settings.path("kea", "config")

    @property
    def socket_path(self) -> Path:
        """kea-dhcp4's unix control socket."""
        return self.settings.path("kea", "socket")

    @property
    def table_path(self) -> Path:
        """Rewritten whole on commit."""
        return self.config_path

    @property
    def lock_path(self) -> Path:
        """``.kea-dhcp4.conf.lock`` beside the config (Kea ignores it)."""
        return self.config_path.with_name(f".{self.config_path.name}.lock")

    @property
    def reload_mark(self) -> Path:
        """Present from before the file is written until Kea runs what it holds."""
        return self.config_path.with_name(f".{self.config_path.name}.reload")

    @property
    def where(self) -> str:
        """This backend in messages."""
        return f"Kea ({self.config_path})"

    def open(self) -> None:
        """Lock and load; a file a killed batch wrote but never reloaded is reloaded on commit."""
        super().open()
        if self.reload_mark.exists():
            log.warning("%s: the file was written but Kea never reloaded it; reloading", self.where)
            self._dirty = True

    def _document(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DriverError(f"Kea config {self.config_path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise DriverError(
                f"Kea config {self.config_path} is not plain JSON ({exc}); "
                "bmprov cannot edit files with comments or includes"
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("Dhcp4", {}).get("subnet4"), list):
            raise DriverError(f"Kea config {self.config_path} has no Dhcp4.subnet4 list")
        return doc

    def _load(self) -> list[Reservation]:
        self._doc = self._document()
        found: list[Reservation] = []
        for subnet in self._doc["Dhcp4"]["subnet4"]:
            found += [r for r in map(from_kea, subnet.get("reservations", [])) if r is not None]
        return found

    def _precheck(self, res: Reservation) -> None:
        super()._precheck(res)
        if subnet_of(self._doc["Dhcp4"]["subnet4"], res.ip) is None:
            raise ReservationRefused(f"{res.ip} is outside every subnet4 in {self.config_path}")

    def _save(self, reservations: list[Reservation]) -> None:
        subnets = self._doc["Dhcp4"]["subnet4"]
        wanted = {r.mac: r for r in reservations}
        present: set[str] = set()
        for subnet in subnets:  # entries bmprov did not write, or still wants, stay verbatim
            kept = []
            for item in subnet.get("reservations", []):
                res = from_kea(item)
                if res is None or res.mac in wanted:
                    kept.append(item)
                    present.add(res.mac if res else "")
            subnet["reservations"] = kept
        for res in reservations:
            subnet = subnet_of(subnets, res.ip)
            if subnet is not None and res.mac not in present:
                subnet["reservations"].append(to_kea(res))
        old = self.config_path.read_bytes()
        self.reload_mark.touch()
        atomic_write(self.config_path, json.dumps(self._doc, indent=2) + "\n", mode=0o640)
        try:
            self.command("config-reload")
        except DriverError:  # refused or unreachable: the file Kea runs is put back
            atomic_write(self.config_path, old, mode=0o640)
            self.reload_mark.unlink(missing_ok=True)
            raise
        self.reload_mark.unlink()  # Kea runs what the file holds (killed before: mark stays)
        self._verify(reservations)

    def _verify(self, reservations: list[Reservation]) -> None:
        running = self.command("config-get").get("arguments", {})
        held: set[tuple[str, str]] = set()
        for subnet in running.get("Dhcp4", {}).get("subnet4", []):
            for item in subnet.get("reservations", []):
                held.add((str(item.get("hw-address")), str(item.get("ip-address"))))
        missing = [r for r in reservations if (r.mac, r.ip) not in held]
        if missing:
            raise DriverError(
                f"{self.where}: after config-reload Kea does not hold {missing[0].mac} → "
                f"{missing[0].ip} ({len(missing)} missing)"
            )

    def command(self, name: str) -> dict[str, Any]:
        """Send one command to the control socket; DriverError unless Kea answers result 0."""
        timeout = float(self.settings.sub("kea").get("timeout", DEFAULT_TIMEOUT))
        where = f"Kea control socket {self.socket_path}"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(json.dumps({"command": name}).encode())
                reply = _read_json(sock)
        except FileNotFoundError:
            raise DriverError(f"{where} does not exist (is kea-dhcp4 running?)") from None
        except TimeoutError:
            raise DriverError(f"{where} did not answer {name} within {timeout:g} s") from None
        except OSError as exc:
            raise DriverError(f"{where} is unreachable: {exc.strerror or exc}") from None
        if isinstance(reply, list):
            reply = reply[0] if reply else {}
        result = reply.get("result") if isinstance(reply, dict) else None
        log.debug("%s: %s → result %s", where, name, result)
        if not isinstance(reply, dict) or reply.get("result") != 0:
            text = reply.get("text") if isinstance(reply, dict) else reply
            raise DriverError(f"{where}: {name} failed: {text}")
        return reply


def _read_json(sock: socket.socket) -> Any:
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
        try:
            return json.loads(buffer)
        except ValueError:
            continue
    try:
        return json.loads(buffer)
    except ValueError:
        raise DriverError("Kea closed the control socket without a JSON answer") from None
