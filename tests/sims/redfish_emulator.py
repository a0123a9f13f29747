"""sushy-tools' Redfish emulator (fake systems, no libvirt) with its power delay pinned.

The fake driver applies every power change after a random 1-11 s; BMPROV_SIM_POWER_DELAY
(seconds, default 0) replaces that, so tests are fast and deterministic. Configuration comes
from environment variables read by ``emulator.conf`` next to this file:

    BMPROV_SIM_PORT, BMPROV_SIM_STATE (state dir), BMPROV_SIM_SYSTEMS (count), BMPROV_SIM_AUTH
    python tests/sims/redfish_emulator.py --config tests/sims/emulator.conf
"""

from __future__ import annotations

import os
import sys

from sushy_tools.emulator import main as emulator_main
from sushy_tools.emulator.resources.systems import fakedriver

DELAY = int(os.environ.get("BMPROV_SIM_POWER_DELAY", "0"))


class _FixedDelay:
    @staticmethod
    def randint(low: int, high: int) -> int:
        del low, high
        return DELAY


fakedriver.random = _FixedDelay  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(emulator_main.main())
