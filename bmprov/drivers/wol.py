"""Wake-on-LAN: power-on (only) for machines without a BMC, with the ``wakeonlan`` package.

The magic packet goes to ``[bmc.wol] host``/``port`` (default 255.255.255.255:9, a LAN
broadcast), or to the node's ``bmc_address`` when the sheet gives one (a directed broadcast
such as ``10.20.0.255:9``); ``[bmc.wol] interface`` picks the source address. Tests always
point it at loopback or a private namespace. WoL cannot read or change the power state
otherwise, nor choose the boot device: the node must have PXE first in its boot order.
"""

from __future__ import annotations

from typing import ClassVar

from bmprov.drivers.base import PowerAction, PowerDriver, PowerState


class WolDriver(PowerDriver):
    """Sends a magic packet to the node's boot MAC to power it on."""

    name: ClassVar[str] = "wol"
    default_port: ClassVar[int | None] = 9
    needs_credentials: ClassVar[bool] = False
    supported_actions: ClassVar[frozenset[PowerAction]] = frozenset(
        {PowerAction.ON, PowerAction.CYCLE}
    )
    can_read_power: ClassVar[bool] = False
    can_set_boot: ClassVar[bool] = False

    def _get_power(self) -> PowerState:
        raise self.error("Wake-on-LAN cannot read the power state")

    def _set_power(self, action: PowerAction) -> str:
        import wakeonlan  # noqa: PLC0415

        mac = self.target.mac
        if not mac:
            raise self.error("no MAC known for the node")
        interface = self.settings.options.get("interface")
        try:
            wakeonlan.wake(
                mac,
                host=self.target.host,
                port=self.target.port or 9,
                interface=str(interface) if interface else None,
            )
        except (OSError, ValueError) as exc:
            raise self.error(f"cannot send the magic packet: {exc}") from None
        note = " (a running node is not affected)" if action == PowerAction.CYCLE else ""
        return f"Wake-on-LAN sent to {mac}{note}"
