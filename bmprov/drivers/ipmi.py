"""IPMI-over-LAN (RMCP+) driver on pyghmi, made safe for batches.

pyghmi 1.6.19 has no constructor timeout, fails a dead BMC only after ~5 s with
``IpmiException(None)``, returns (not raises) boot-device errors, has no power-cycle state, and
stalls, freezes or deadlocks under threads (shared/peers/bmc.md). What this driver does:

* applies :mod:`bmprov.drivers._pyghmi_fixes` before the first session;
* resolves the host name and sends one sessionless *Get Channel Authentication Capabilities*
  datagram before logging in, so a dead port (ICMP unreachable) fails in milliseconds and a
  black hole in ``connect_timeout``, instead of pyghmi's ~5 s;
* keeps one logged-in ``Command`` per BMC for the process (pyghmi shares sessions anyway, and
  re-creating one after a failure returns the broken one), dropping it when it breaks;
* every call runs under the base class's hard deadline, and every pyghmi failure becomes a
  message naming the node and the BMC;
* power-cycles with a raw Chassis Control (cycle) command, powering on a node that is off.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import socket
import threading
import time
from typing import Any, ClassVar

from bmprov.drivers import _pyghmi_fixes
from bmprov.drivers.base import (
    BootDevice,
    BootReadback,
    PowerAction,
    PowerDriver,
    PowerState,
    describe_exception,
)
from bmprov.errors import DriverError

BOOTDEV_TO_IPMI = {BootDevice.PXE: "network", BootDevice.DISK: "hd", BootDevice.BIOS: "setup"}
IPMI_TO_BOOTDEV = {"network": "pxe", "hd": "disk", "setup": "bios", "default": None}
POWER_COMMANDS = {
    PowerAction.ON: "on",
    PowerAction.OFF: "off",
    PowerAction.SOFT_OFF: "shutdown",
    PowerAction.RESET: "reset",
}
CHASSIS_CONTROL_CYCLE = 2
LOGIN_MESSAGES = {
    "Incorrect password provided": "login refused: wrong password for user {user!r}",
    "Unauthorized name in RAKP2": "login refused: unknown user {user!r}",
}

_SESSIONS: dict[tuple[str, int, str, str], tuple[Any, tuple[Any, ...]]] = {}
"""Logged-in Commands by (host, port, user, password digest), with pyghmi's own cache key."""
_SESSIONS_LOCK = threading.Lock()


class IpmiDriver(PowerDriver):
    """Power and boot device through IPMI 2.0 chassis commands."""

    name: ClassVar[str] = "ipmi"
    default_port: ClassVar[int | None] = 623

    # ---------------------------------------------------------------- protocol
    def _get_power(self) -> PowerState:
        reply = self._command().get_power()
        return PowerState(reply["powerstate"])

    def _set_power(self, action: PowerAction) -> str:
        cmd = self._command()
        if action == PowerAction.CYCLE:
            return self._cycle(cmd)
        reply = cmd.set_power(POWER_COMMANDS[action])
        if "powerstate" in reply:  # pyghmi found it already there and sent nothing
            return f"already {reply['powerstate']}"
        return {
            PowerAction.ON: "powered on",
            PowerAction.OFF: "powered off",
            PowerAction.SOFT_OFF: "shutdown requested",
            PowerAction.RESET: "reset",
        }[action]

    def _cycle(self, cmd: Any) -> str:
        if cmd.get_power()["powerstate"] == "off":
            cmd.set_power("on")
            return "was off: powered on"
        reply = cmd.raw_command(netfn=0, command=2, data=[CHASSIS_CONTROL_CYCLE])
        if reply.get("error"):
            raise self.error(f"power cycle refused: {reply['error']}")
        if reply.get("code"):
            raise self.error(f"power cycle refused (completion code 0x{reply['code']:02x})")
        return "power-cycled"

    def _set_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        reply = self._command().set_bootdev(
            BOOTDEV_TO_IPMI[device], persist=persistent, uefiboot=uefi
        )
        if isinstance(reply, dict) and reply.get("error"):  # pyghmi returns, not raises
            raise self.error(f"boot device {device} refused: {reply['error']}")

    def _get_boot(self) -> BootReadback:
        reply = self._command().get_bootdev()
        raw = reply.get("bootdev")
        device = IPMI_TO_BOOTDEV.get(raw, str(raw)) if isinstance(raw, str) else str(raw)
        if device is None:  # flags not valid: the BMC does not say (ipmi_sim always)
            return BootReadback(None)
        return BootReadback(device, reply.get("persistent"), reply.get("uefimode"))

    # ---------------------------------------------------------------- session
    @property
    def _key(self) -> tuple[str, int, str, str]:
        """Session cache key: a changed user or password must log in again."""
        creds = self.target.credentials
        user = creds.username if creds else ""
        digest = hashlib.sha256(creds.password.reveal().encode()).hexdigest() if creds else ""
        return (self.target.host, self.target.port or 623, user, digest)

    def _command(self) -> Any:
        """The logged-in pyghmi Command for this BMC (probe + login on first use)."""
        with _SESSIONS_LOCK:
            cached = _SESSIONS.get(self._key)
        if cached is not None and not cached[0].ipmi_session.broken:
            return cached[0]
        cmd, pyghmi_key = self._login()
        with _SESSIONS_LOCK:
            if not _SESSIONS:
                _logout_at_exit()
            _SESSIONS[self._key] = (cmd, pyghmi_key)
        return cmd

    def _login(self) -> tuple[Any, tuple[Any, ...]]:
        creds = self.target.credentials
        if creds is None:
            raise self.error("no credentials")
        host, port = self.target.host, self.target.port or 623
        probe(host, port, self.settings.connect_timeout, self.error)
        _pyghmi_fixes.apply()
        from pyghmi.ipmi import command  # noqa: PLC0415  (heavy import, IPMI nodes only)

        key = (host, creds.username, creds.password.reveal(), port, None)
        _forget(key, only_broken=True)
        try:
            cmd = command.Command(
                bmc=host, userid=creds.username, password=creds.password.reveal(), port=port
            )
        except Exception as exc:
            _forget(key, only_broken=True)
            raise self.error(self._login_message(exc)) from None
        if cmd.ipmi_session.broken:
            _forget(key, only_broken=True)
            raise self.error("session broken right after login (BMC stopped answering)")
        return cmd, key

    def _login_message(self, exc: Exception) -> str:
        text = str(exc)
        user = self.target.credentials.username if self.target.credentials else ""
        if text in LOGIN_MESSAGES:
            return LOGIN_MESSAGES[text].format(user=user)
        if text in ("None", ""):
            return "no answer to the IPMI login (BMC down, or not speaking IPMI 2.0/RMCP+)"
        return f"login failed: {describe_exception(exc)}"

    def _describe(self, exc: BaseException) -> str:
        """pyghmi reports a BMC that stopped answering as ``IpmiException(None)``."""
        text = str(exc)
        if type(exc).__name__ == "IpmiException" and text in ("None", ""):
            return "no answer from the BMC (IPMI session timed out)"
        if text == "Session no longer connected":
            return "no answer from the BMC (IPMI session lost)"
        return describe_exception(exc)


def _forget(key: tuple[Any, ...], *, only_broken: bool) -> None:
    """Drop pyghmi's cached session for ``key``, which it would otherwise hand back as is.

    pyghmi 1.6.19 never removes these entries (it deletes them under a key with the user and
    password as bytes), so a new ``Command`` after a failure or a logout would get the old one.
    """
    from pyghmi.ipmi.private import session  # noqa: PLC0415

    cached = session.Session.initting_sessions.get(key)
    if cached is not None and (not only_broken or getattr(cached, "broken", False)):
        session.Session.initting_sessions.pop(key, None)


LOGOUT_AT_EXIT = 1.0  # seconds the process may spend closing sessions when it exits
_EXIT_HOOK: list[bool] = []


def _logout_at_exit() -> None:
    """Close our sessions when the process exits (once): BMCs have few session slots.

    Not after each batch: a process that runs several batches keeps its sessions, and a
    logout racing a new login would hand pyghmi's half-closed session to the next batch.
    """
    if not _EXIT_HOOK:
        _EXIT_HOOK.append(True)
        atexit.register(logout_all, LOGOUT_AT_EXIT)


def logout_all(timeout: float) -> int:
    """Close every session this process opened, in parallel, waiting at most ``timeout``.

    :returns: how many sessions were asked to close.
    """
    with _SESSIONS_LOCK:
        opened = list(_SESSIONS.values())
        _SESSIONS.clear()

    def close(cmd: Any, key: tuple[Any, ...]) -> None:
        with contextlib.suppress(Exception):  # a BMC gone silent: its session just expires
            cmd.ipmi_session.logout()
        _forget(key, only_broken=False)

    threads = [
        threading.Thread(target=close, args=entry, name="bmprov-ipmi-logout", daemon=True)
        for entry in opened
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return len(opened)


# -------------------------------------------------------------------- liveness probe
def _checksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF


def channel_auth_request() -> bytes:
    """An IPMI 1.5 sessionless Get Channel Authentication Capabilities request (admin, v2)."""
    header = bytes([0x20, 6 << 2])  # BMC address, netfn App
    body = bytes([0x81, 0, 0x38, 0x8E, 0x04])  # requester, seq, cmd, channel "this"+v2, admin
    message = header + bytes([_checksum(header)]) + body + bytes([_checksum(body)])
    rmcp = bytes([0x06, 0x00, 0xFF, 0x07])
    session = bytes([0x00]) + b"\x00" * 8 + bytes([len(message)])
    return rmcp + session + message


def probe(host: str, port: int, timeout: float, error: Any = DriverError) -> float:
    """Check that something answers IPMI at ``host:port``; return the round-trip seconds.

    Two tries within ``timeout``. A closed port on a reachable host fails at once
    (ICMP port unreachable → ECONNREFUSED on a connected UDP socket).

    :raises DriverError: the name does not resolve, the port is closed, or nothing answers.
    """
    start = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise error(f"cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
        except OSError as exc:
            raise error(f"cannot reach it: {exc.strerror}") from None
        sock.settimeout(timeout / 2)
        for _ in range(2):
            try:
                sock.send(channel_auth_request())
                reply = sock.recv(512)
            except ConnectionRefusedError:
                raise error(f"nothing listens on UDP port {port} (port unreachable)") from None
            except TimeoutError:
                continue
            except OSError as exc:
                raise error(f"cannot reach it: {exc.strerror}") from None
            if len(reply) >= 20 and reply[:4] == b"\x06\x00\xff\x07":
                return time.monotonic() - start
    raise error(f"no IPMI answer within {timeout:g} s (host down or port filtered)")
