"""Starting uvicorn: foreground, one or more worker processes, clean stop on SIGTERM.

Each worker process builds its own app (:func:`bmprov.serve.app.create_app`, uvicorn's
factory), state connection and file writer; the config path and ``--listen`` reach them
through the environment. Uvicorn's access log is off: :class:`~bmprov.serve.app.AccessLog`
writes one line per request without query strings (tokens).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Any

from bmprov.config import Config
from bmprov.errors import ConfigError
from bmprov.serve.settings import ServeSettings, split_listen

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run(
    config: Config,
    listen: str | None = None,
    workers: int | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn finishes the requests in flight, then returns).

    ``sock``: an already listening socket to serve on instead of binding ``listen`` (one
    worker; ``listen`` is then only what the log says). ``bmprov lab`` makes it inside its
    network namespace, so the guests reach serve directly and serve sees their addresses.
    """
    import uvicorn  # noqa: PLC0415  (only serve needs it)

    settings = ServeSettings.from_config(config, listen)
    host, port = split_listen(settings.listen)
    if config.path is not None:
        os.environ["BMPROV_CONFIG"] = str(config.path.resolve())
    os.environ["BMPROV_SERVE_LISTEN"] = settings.listen
    count = workers or settings.workers
    logging.getLogger("bmprov.serve").info(
        "bmprov serve on %s (%d worker(s)); nodes call %s", settings.listen, count, settings.url
    )
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down gracefully, which would end the
    # process "killed by SIGTERM"; this handler turns that into a plain exit 0.
    signal.signal(signal.SIGTERM, _stopped)
    options: dict[str, Any] = {
        "factory": True,
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
    }
    if sock is not None:
        if count != 1:
            raise ConfigError("serve on a given socket runs one worker")
        server = uvicorn.Server(uvicorn.Config("bmprov.serve.app:create_app", **options))
        server.run(sockets=[sock])
        return
    uvicorn.run("bmprov.serve.app:create_app", host=host, port=port, workers=count, **options)


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def setup_logging() -> None:
    """serve's own log lines (one per request, refusals, stage moves) on stderr, once per
    worker process."""
    logger = logging.getLogger("bmprov.serve")
    if not any(getattr(h, "_bmprov_serve", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._bmprov_serve = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
