"""Read the provisioning network's settings off a local interface (``bmprov init --detect``)."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass

from bmprov.errors import InputError
from bmprov.validate import provisioning_network_problem


@dataclass(frozen=True)
class NetworkSettings:
    """The provisioning network as every service sees it."""

    interface: str
    server_address: str
    subnet: str
    gateway: str


def _ip_json(*args: str) -> list[dict[str, object]]:
    ip = shutil.which("ip")
    if ip is None:
        raise InputError("the `ip` command (iproute2) is needed for --detect")
    proc = subprocess.run([ip, "-j", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InputError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    data = json.loads(proc.stdout or "[]")
    return data if isinstance(data, list) else []


def detect(interface: str) -> NetworkSettings:
    """Address, subnet and gateway of ``interface`` (its first IPv4 address)."""
    links = _ip_json("-4", "addr", "show", "dev", interface) if interface else []
    infos: list[dict[str, object]] = []
    for link in links:
        addr_info = link.get("addr_info")
        if isinstance(addr_info, list):
            infos += [a for a in addr_info if isinstance(a, dict) and a.get("family") == "inet"]
    if not links:
        raise InputError(f"interface {interface!r} does not exist")
    if not infos:
        raise InputError(f"interface {interface!r} has no IPv4 address")
    iface = ipaddress.ip_interface(f"{infos[0]['local']}/{infos[0]['prefixlen']}")
    problem = provisioning_network_problem(str(iface.network))
    if problem:
        raise InputError(
            f"interface {interface!r}: its network {iface.network} {problem}; nothing written"
        )
    gateway = str(iface.ip)
    for route in _ip_json("-4", "route", "show", "default", "dev", interface):
        if route.get("gateway"):
            gateway = str(route["gateway"])
            break
    return NetworkSettings(interface, str(iface.ip), str(iface.network), gateway)
