"""``bmprov serve``: installer callbacks, install files on request, status page and API.

Nothing here imports Starlette or uvicorn except :mod:`.app` and :mod:`.run`, so the CLI and
the library stay fast to import.
"""
