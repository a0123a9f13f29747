"""``bmprov serve`` for the lab's guests, listening inside the lab's namespace.

    python -m bmprov.lab.serving <lab dir>

Started by ``bmprov lab up`` once the site is written, tracked in ``lab.json`` as ``serve``
and stopped by ``lab down`` like every other lab process. It is bmprov serve itself (its
:func:`~bmprov.serve.run.run`, its application, the lab's ``bmprov.toml``) with one
difference: the listening socket is made *inside* the namespace (SERVER:HTTP_PORT) while the
process stays in the host's. So

* the guests connect to ``http://10.239.0.1:8080`` directly and serve sees each one's real
  source address (its rule: a callback comes from the node's reserved IP), with no proxy;
* serve reaches what the CLI reaches, with the same config: the virtual BMCs on host
  loopback (completion sets the boot device through them) and dhcpd's OMAPI through the
  agent's forwarder.

Its log (one line per request, stage moves, refusals) is ``logs/serve.log``.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from bmprov.config import load_config
from bmprov.lab import netns, state
from bmprov.lab.services import HTTP_PORT
from bmprov.serve.run import run
from bmprov.store import open_state


def listening_socket(ns: str, host: str = netns.SERVER, port: int = HTTP_PORT) -> socket.socket:
    """A TCP socket listening on ``host:port`` in namespace ``ns``."""
    with netns.inside(ns):  # the socket belongs to the namespace it was made in
        return socket.create_server((host, port), backlog=128)


def main(argv: list[str]) -> int:
    lab = state.load_for_process(argv)
    directory = Path(lab.dir)
    config = load_config(directory / "bmprov.toml")
    open_state(config.state_path, config.busy_timeout_ms).close()  # made and migrated once
    sock = listening_socket(lab.netns)
    run(config, f"{netns.SERVER}:{HTTP_PORT}", 1, sock=sock)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
