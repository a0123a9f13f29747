"""Stage-5 completions, batched on one thread with its own state connection.

A completion runs the deployed stage's entry action (boot entries → local boot, maybe a BMC
call): far slower than recording a callback, and it must not stall the event loop. Callbacks
that arrive while a batch runs wait for the next one, so under a storm one
:func:`~bmprov.serve.callbacks.complete` call (one file writer, a few transactions) serves
many nodes instead of one each; each callback is answered when its own node is done.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from bmprov.serve import callbacks
from bmprov.serve.callbacks import Answer, Site
from bmprov.store import open_state

log = logging.getLogger(__name__)


class Completer:
    """Queue stage-5 nodes; one thread drains the queue batch by batch."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._own: Site | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[str, asyncio.Future[Answer]]] = []
        self._running = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="bmprov-complete")

    async def complete(self, serial: str) -> Answer:
        """Deploy ``serial`` in the next batch; its callback's answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        with self._lock:
            self._pending.append((serial, future))
            start = not self._running
            self._running = True
        if start:
            loop.run_in_executor(self._thread, self._drain, loop)
        return await future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._running = False
                    return
            try:
                answers = callbacks.complete(self._site(), [serial for serial, _ in batch])
            except Exception as exc:  # an answer for every waiting callback, whatever happens
                log.exception("completing %d node(s) crashed", len(batch))
                error = Answer(
                    500, {"ok": False, "error": f"completion failed: {type(exc).__name__}"}
                )
                answers = {serial: error for serial, _ in batch}
            for serial, future in batch:
                loop.call_soon_threadsafe(_settle, future, answers[serial])

    def _site(self) -> Site:
        """This thread's own state connection (the loop thread keeps the other)."""
        if self._own is None:
            s = self.site
            db = open_state(s.config.state_path, s.config.busy_timeout_ms)
            self._own = Site(s.config, db, s.settings, s.secret)
        return self._own

    def close(self) -> None:
        """Finish the batch in hand, then close this thread's connection."""
        self._thread.shutdown(wait=True)
        if self._own is not None:
            self._own.db.close()


def _settle(future: asyncio.Future[Answer], answer: Answer) -> None:
    if not future.done():
        future.set_result(answer)
