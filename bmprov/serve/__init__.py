"""``bmprov serve``: installer callbacks, install files on request, status page and API.

Nothing here imports Starlette or uvicorn except :mod:`.app` and :mod:`.run`, so the CLI and
the library stay fast to import.
"""

INSTALL_PATH = "/install/"
"""Where serve hands out a node's install file: ``{bmprov.url}/install/<serial>?token=…``
(the lab's installer stand-in fetches exactly this)."""
