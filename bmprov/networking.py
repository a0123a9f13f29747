"""The networking stage's entry action: allocate → reserve → boot/install files → os_provisioning.

(Filled by the networking feature; registers itself with :func:`bmprov.lifecycle.register_action`.)
"""

from __future__ import annotations
