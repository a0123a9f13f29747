"""The os_provisioning stage's entry action: set PXE and power-cycle, per config.

(Filled by the power feature; registers itself with :func:`bmprov.lifecycle.register_action`.)
"""

from __future__ import annotations
