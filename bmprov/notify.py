"""The post-install URL: bmprov tells another system that a node is deployed.

A node's install option ``post_install_url`` (sheet column *Post-install URL*, *Webhook*...),
else ``[post_install] url``, is POSTed a JSON summary once the node's completion steps have
run: ``{"serial", "hostname", "ip", "mac", "os", "stage": "deployed", "post_install":
{"ok", "exit"} | null}`` — no password hash, token or BMC detail. Any 2xx answer is success;
anything else (refused, timeout, 5xx) is retried up to ``url_attempts`` times, 1 s, 2 s, 4 s...
apart. URLs go through the same allow-list as every URL bmprov places in a file.

This is not the install option ``callback_url``: that one is called by the *installer* from
inside the install (kickstart ``%post``...); this one is called by bmprov, after completion.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bmprov.config import Config
from bmprov.errors import ConfigError
from bmprov.install.options import post_install_url
from bmprov.nodes import Node
from bmprov.posttask import TaskResult

log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 3
DEFAULT_TIMEOUT = 10.0
CONCURRENCY = 8


@dataclass(frozen=True)
class NotifySettings:
    """``[post_install]``'s URL part."""

    url: str | None = None
    attempts: int = DEFAULT_ATTEMPTS
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_config(cls, config: Config) -> NotifySettings:
        """:raises ConfigError: a URL outside the allow-list."""
        raw = config.section("post_install")
        url = raw.get("url")
        if url is not None:
            try:
                url = post_install_url(str(url))
            except ValueError as exc:
                raise ConfigError(f"{config.path}: post_install.url: {exc}") from None
        return cls(
            url=url,
            attempts=max(1, int(raw.get("url_attempts", DEFAULT_ATTEMPTS))),
            timeout=float(raw.get("url_timeout", DEFAULT_TIMEOUT)),
        )


def url_for(settings: NotifySettings, node: Node) -> str | None:
    """The node's own URL (re-validated), else the site's; None: nobody to tell.

    :raises ValueError: the node's stored URL is not allowed.
    """
    own = node.install_options.get("post_install_url")
    return post_install_url(str(own)) if own else settings.url


def payload(node: Node, task: TaskResult | None) -> bytes:
    """The JSON body (no secret: no hash, token or BMC)."""
    summary = None if task is None else {"ok": task.ok, "exit": task.exit_status}
    body = {
        "serial": node.serial,
        "hostname": node.hostname,
        "ip": node.ip,
        "mac": node.mac,
        "os": node.os,
        "stage": "deployed",
        "post_install": summary,
    }
    return json.dumps(body).encode()


def post(
    settings: NotifySettings,
    url: str,
    body: bytes,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """POST ``body`` with retries → (ok, what happened, in words)."""
    why = ""
    for attempt in range(1, settings.attempts + 1):
        if attempt > 1:
            sleep(2.0 ** (attempt - 2))
        request = urllib.request.Request(  # noqa: S310  (allow-listed http(s) URL)
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout) as reply:  # noqa: S310
                return True, f"HTTP {reply.status} after {attempt} attempt(s)"
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            why = str(getattr(reason, "strerror", None) or reason)
        log.info(
            "post-install URL of %s: attempt %d: %s", url.split("?", maxsplit=1)[0], attempt, why
        )
    return False, f"gave up after {settings.attempts} attempt(s): {why}"


def notify_all(
    settings: NotifySettings, nodes: list[tuple[Node, TaskResult | None]]
) -> Iterator[tuple[str, bool, str]]:
    """(serial, ok, message) for every node that has a URL, a few at a time."""

    def one(item: tuple[Node, TaskResult | None]) -> tuple[str, bool, str] | None:
        node, task = item
        try:
            url = url_for(settings, node)
        except ValueError as exc:
            return node.serial, False, f"not called: {exc}"
        if url is None:
            return None
        ok, message = post(settings, url, payload(node, task))
        return node.serial, ok, message

    if not nodes:
        return
    with ThreadPoolExecutor(min(CONCURRENCY, len(nodes))) as pool:
        for result in pool.map(one, nodes):
            if result is not None:
                yield result
