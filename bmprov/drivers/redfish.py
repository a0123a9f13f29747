"""Redfish driver over plain HTTP (requests): reset actions and boot source override.

Plain HTTP rather than sushy keeps every timeout in our hands: no retries (sushy's defaults
take 27 s to report a dead endpoint), a TCP connect bounded by ``connect_timeout`` and a read
bounded by ``timeout``. Options come from ``[bmc.redfish]``: ``scheme`` (https), ``verify_tls``
(true), ``system_id`` (default: the first member of ``/redfish/v1/Systems``).

Calls made (DMTF Redfish, ComputerSystem)::

    GET   /redfish/v1/Systems/<id>
    POST  <Actions/#ComputerSystem.Reset target>  {"ResetType": "On"|"ForceOff"|...}
    PATCH /redfish/v1/Systems/<id>  {"Boot": {"BootSourceOverrideTarget": "Pxe",
                                              "BootSourceOverrideEnabled": "Once", ...}}
"""

from __future__ import annotations

import socket
from typing import Any, ClassVar

import requests

from bmprov.drivers.base import (
    BootDevice,
    BootReadback,
    PowerAction,
    PowerDriver,
    PowerState,
    describe_exception,
)

BOOT_TARGETS = {BootDevice.PXE: "Pxe", BootDevice.DISK: "Hdd", BootDevice.BIOS: "BiosSetup"}
TARGET_TO_DEVICE = {value: key.value for key, value in BOOT_TARGETS.items()}
RESET_TYPES = {
    PowerAction.ON: "On",
    PowerAction.OFF: "ForceOff",
    PowerAction.SOFT_OFF: "GracefulShutdown",
    PowerAction.RESET: "ForceRestart",
}
STILL_OFF = ("Off", "PoweringOn")  # a node powering on is not on yet


class RedfishDriver(PowerDriver):
    """Power and boot override of one Redfish ComputerSystem."""

    name: ClassVar[str] = "redfish"
    default_port: ClassVar[int | None] = None  # the scheme's port

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http: requests.Session | None = None
        self._system: str | None = None

    # ---------------------------------------------------------------- protocol
    def _get_power(self) -> PowerState:
        return self._power_of(self._get(self._system_path()))

    def _set_power(self, action: PowerAction) -> str:
        system = self._get(self._system_path())
        power = self._power_of(system)
        if action == PowerAction.ON and power == PowerState.ON:
            return "already on"
        if action in (PowerAction.OFF, PowerAction.SOFT_OFF) and power == PowerState.OFF:
            return "already off"
        reset, done = RESET_TYPES.get(action), action.value
        if action == PowerAction.CYCLE:
            reset, done = self._cycle_type(system, power)
        self._post(self._reset_target(system), {"ResetType": reset})
        return {"on": "powered on", "off": "powered off", "soft-off": "shutdown requested"}.get(
            done, done
        )

    def _cycle_type(self, system: dict[str, Any], power: PowerState) -> tuple[str, str]:
        if power == PowerState.OFF:
            return "On", "was off: powered on"
        allowed = self._reset_action(system).get("ResetType@Redfish.AllowableValues") or []
        if "PowerCycle" in allowed:
            return "PowerCycle", "power-cycled"
        return "ForceRestart", "power-cycled (ForceRestart)"

    def _set_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        reply = self._request("GET", self._system_path())
        system = self._json(reply, self._system_path())
        boot: dict[str, Any] = {
            "BootSourceOverrideTarget": BOOT_TARGETS[device],
            "BootSourceOverrideEnabled": "Continuous" if persistent else "Once",
        }
        if "BootSourceOverrideMode" in (system.get("Boot") or {}):
            boot["BootSourceOverrideMode"] = "UEFI" if uefi else "Legacy"
        etag = reply.headers.get("ETag")  # some BMCs refuse a PATCH without If-Match
        headers = {"If-Match": etag} if etag else None
        self._request("PATCH", self._system_path(), {"Boot": boot}, headers)

    def _get_boot(self) -> BootReadback:
        boot = self._get(self._system_path()).get("Boot") or {}
        target = boot.get("BootSourceOverrideTarget")
        if target is None:
            return BootReadback(None)
        enabled = boot.get("BootSourceOverrideEnabled")
        return BootReadback(
            TARGET_TO_DEVICE.get(target, str(target)),
            None if enabled is None else enabled == "Continuous",
            None
            if "BootSourceOverrideMode" not in boot
            else boot["BootSourceOverrideMode"] == "UEFI",
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    # ---------------------------------------------------------------- HTTP
    @property
    def _root(self) -> str:
        scheme = str(self.settings.options.get("scheme", "https"))
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        port = f":{self.target.port}" if self.target.port else ""
        return f"{scheme}://{host}{port}"

    def _session(self) -> requests.Session:
        if self._http is None:
            http = requests.Session()
            creds = self.target.credentials
            if creds is not None:
                http.auth = (creds.username, creds.password.reveal())
            http.verify = bool(self.settings.options.get("verify_tls", True))
            if not http.verify:  # the operator chose it: do not warn on every request
                import urllib3  # noqa: PLC0415

                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            http.headers.update({"Accept": "application/json", "OData-Version": "4.0"})
            self._http = http
        return self._http

    def _system_path(self) -> str:
        if self._system is None:
            system_id = self.settings.options.get("system_id")
            if system_id:
                self._system = f"/redfish/v1/Systems/{system_id}"
            else:
                members = self._get("/redfish/v1/Systems").get("Members") or []
                if not members:
                    raise self.error("/redfish/v1/Systems lists no system")
                self._system = str(members[0]["@odata.id"])
        return self._system

    def _get(self, path: str) -> dict[str, Any]:
        return self._json(self._request("GET", path), path)

    def _json(self, reply: requests.Response, path: str) -> dict[str, Any]:
        try:
            data = reply.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self.error(f"GET {path}: the answer is not a JSON object")
        return data

    def _post(self, path: str, body: dict[str, Any]) -> None:
        self._request("POST", path, body)

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        timeout = (self.settings.connect_timeout, self.settings.timeout)
        try:
            reply = self._session().request(
                method,
                self._root + path,
                json=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            raise self.error(f"{method} {path}: {self._transport_message(exc)}") from None
        if reply.status_code in (401, 403):
            raise self.error(
                f"login refused (HTTP {reply.status_code}): wrong user name or password"
            )
        if reply.status_code >= 400:
            raise self.error(
                f"{method} {path}: HTTP {reply.status_code}: {_redfish_message(reply)}"
            )
        return reply

    def _transport_message(self, exc: requests.exceptions.RequestException) -> str:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, socket.gaierror):
                return f"cannot resolve {self.target.host!r}"
            cause = cause.__cause__ or cause.__context__
        transport = (
            (requests.exceptions.ConnectTimeout, "no TCP connection within {connect:g} s"),
            (requests.exceptions.ReadTimeout, "no HTTP answer within {read:g} s"),
            (
                requests.exceptions.SSLError,
                "TLS failed (self-signed? see [bmc.redfish] verify_tls)",
            ),
        )
        for kind, text in transport:
            if isinstance(exc, kind):
                return text.format(
                    connect=self.settings.connect_timeout, read=self.settings.timeout
                )
        if isinstance(exc, requests.exceptions.ConnectionError):
            refused = "refused" in str(exc).lower()
            return "connection refused (nothing listens there)" if refused else "cannot connect"
        return describe_exception(exc)

    # ---------------------------------------------------------------- JSON helpers
    def _power_of(self, system: dict[str, Any]) -> PowerState:
        state = system.get("PowerState")
        if state is None:
            raise self.error("the system does not report PowerState")
        return PowerState.OFF if state in STILL_OFF else PowerState.ON

    def _reset_action(self, system: dict[str, Any]) -> dict[str, Any]:
        action = (system.get("Actions") or {}).get("#ComputerSystem.Reset")
        if not isinstance(action, dict) or "target" not in action:
            raise self.error("the system offers no #ComputerSystem.Reset action")
        return action

    def _reset_target(self, system: dict[str, Any]) -> str:
        return str(self._reset_action(system)["target"])


def _redfish_message(reply: requests.Response) -> str:
    """The Redfish error message (``error.message`` / extended info), one short line."""
    try:
        data = reply.json()
        error = data.get("error", {}) if isinstance(data, dict) else {}
        extended = error.get("@Message.ExtendedInfo") or [{}]
        text = extended[0].get("Message") or error.get("message") or reply.reason
    except (ValueError, AttributeError, IndexError):
        text = reply.reason or "error"
    return " ".join(str(text).split())[:200]
