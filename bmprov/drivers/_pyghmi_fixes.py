"""Fixes for pyghmi 1.6.x's threading bugs, applied once before the first IPMI session.

Reproduced and documented in shared/peers/bmc.md (section 7); without them, pyghmi used from
many threads stalls, freezes or deadlocks:

1. *Lost wake-up* (0.5-1.0 s stalls): a caller registers its waiter after sending, so a fast
   reply can arrive first and the caller sleeps until its retry timer. Every internal wait is
   capped at 20 ms; all callers loop and re-check, and retries are deadline-driven.
2. *Socket-mode race* (permanent freeze): ``_io_sendto`` sets the shared socket blocking while
   the IO thread's ``_io_recvfrom`` set it non-blocking, so the IO thread - which serves every
   session in the process - can block in ``recvfrom`` forever. Receive with ``MSG_DONTWAIT``
   and never toggle the mode.
3. *Lock-order deadlock* (ABBA between ``WAITING_SESSIONS`` and ``KEEPALIVE_SESSIONS``):
   both names become one re-entrant lock.
4. *Spurious retransmits*: pyghmi resends an unanswered request after 0.5-1.0 s as if every
   command were idempotent, so a BMC (or a busy client) slower than that gets a chassis
   cycle twice, and a late duplicate reply can be taken for the next request's answer. The
   first retry waits 1.5-2.0 s instead; bmprov's own per-call deadline still bounds the call.

The simulators in ``tests/sims`` apply 2 and 3 to pyghmi's server side too.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)

WAIT_CAP = 0.02
INITIAL_RETRY = 1.5  # seconds before pyghmi's first retransmit (its default: 0.5)
_APPLIED = False
_LOCK = threading.Lock()


def _recvfrom_dontwait(sock: socket.socket, size: int) -> tuple[bytes, Any] | None:
    try:
        return sock.recvfrom(size, socket.MSG_DONTWAIT)
    except OSError:  # nothing queued (BlockingIOError), interrupted, or a socket error
        return None


def _sendto_keepmode(sock: Any, packet: bytes, sockaddr: Any) -> None:
    raw = getattr(sock, "fd", sock)
    with contextlib.suppress(OSError):
        raw.sendto(packet, sockaddr)


def fix_socket_race(session: Any) -> None:
    """Fix 2: per-call non-blocking receive; never flip the shared socket's mode."""
    session._io_recvfrom = _recvfrom_dontwait
    session._io_sendto = _sendto_keepmode


def fix_lock_order(session: Any) -> None:
    """Fix 3: one re-entrant lock for both session tables (no ordering, no deadlock)."""
    session.WAITING_SESSIONS = session.KEEPALIVE_SESSIONS


def cap_io_wait(session: Any, cap: float = WAIT_CAP) -> None:
    """Fix 1: bound every internal wait so a lost wake-up costs at most ``cap`` seconds."""
    original = session._io_wait

    def capped(timeout: float, myaddr: Any = None, evq: Any = None) -> Any:
        return original(min(timeout, cap), myaddr, evq)

    session._io_wait = capped


def apply(*, client: bool = True) -> None:
    """Apply the fixes once per process (``client=False``: only 2 and 3, for simulators)."""
    global _APPLIED  # noqa: PLW0603  (process-wide, idempotent)
    with _LOCK:
        if _APPLIED:
            return
        from pyghmi.ipmi.private import session  # noqa: PLC0415

        missing = [
            name
            for name in ("_io_wait", "_io_recvfrom", "_io_sendto", "WAITING_SESSIONS")
            if not hasattr(session, name)
        ]
        if missing:
            log.warning("pyghmi internals changed (%s missing): fixes not applied", missing)
        else:
            fix_socket_race(session)
            fix_lock_order(session)
            if client:
                cap_io_wait(session)
                session.initialtimeout = INITIAL_RETRY
        _APPLIED = True
