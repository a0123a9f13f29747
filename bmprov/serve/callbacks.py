"""Installer callbacks: the public contract of docs/callbacks.md, without HTTP.

``POST /callback/<serial>`` with a token and ``stage`` = 1…5 or ``failed`` lands in
:func:`accept`, which checks the token (:func:`bmprov.tokens.verify`) and the caller's address,
then records the callback in **one** transaction: the event, the install's forward-only
progress and, for the first stage seen, the move *os_provisioning → installing*. Stage 5 then
moves the node to *deployed* through :func:`bmprov.lifecycle.advance` (the deployed stage's
action does the rest), and ``failed`` fails the node with the installer's reason. The answer
is given only after the commit, so an installer that got 200 can stop retrying.

Duplicates are harmless (recorded as events, progress unchanged); a stage lower than the
progress already reported is recorded and changes nothing (only forward). A refused callback
changes nothing and is logged without its token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bmprov import lifecycle, tokens
from bmprov import states as st
from bmprov.config import Config
from bmprov.nodes import Node, Selection
from bmprov.secret import Secret
from bmprov.serve.settings import ServeSettings
from bmprov.stages import ActionContext
from bmprov.store import Event, Install, Store

log = logging.getLogger(__name__)

FAILED = "failed"
LAST = 5
COMMAND = "serve callback"
INSTALL_STAGES = (st.OS_PROVISIONING, st.INSTALLING)


@dataclass(frozen=True)
class Answer:
    """What the caller gets: an HTTP status and a short JSON body (never a secret)."""

    status: int
    body: dict[str, Any]
    complete: bool = False
    """Stage 5 recorded; the caller runs :func:`complete` (batched) before answering."""

    @property
    def note(self) -> str:
        """What the request's one log line adds: the refusal's reason, or what was done."""
        if "error" in self.body:
            return f"refused: {self.body['error']}"
        return " ".join(str(self.body[k]) for k in ("stage", "result") if k in self.body)


@dataclass
class Site:
    """What serve keeps per worker: config, state, settings and the site secret."""

    config: Config
    db: Store
    settings: ServeSettings
    secret: Secret[bytes]


def refuse(status: int, reason: str, serial: str, source: str | None) -> Answer:
    """A 4xx answer; serve's access line for the request says ``refused: <reason>`` (the
    path names the node, the line the caller; never the token)."""
    log.debug("refused: node %s from %s: %s", serial, source or "?", reason)
    return Answer(status, {"ok": False, "error": reason})


def parse_stage(value: Any) -> int | None:
    """1…5, 0 for ``failed``, None for anything else."""
    text = str(value).strip().lower() if value is not None else ""
    if text == FAILED:
        return 0
    if text.isdigit() and 1 <= int(text) <= LAST:
        return int(text)
    return None


def accept(
    site: Site,
    serial: str,
    token: str | None,
    stage: Any,
    tail: str,
    source: str | None,
    *,
    defer: bool = False,
) -> Answer:
    """Check and record one callback; see the module docstring. ``defer``: a first stage 5
    is answered with ``complete=True`` and the caller runs :func:`complete`."""
    node = site.db.node_by_serial(serial)
    if node is None:
        return refuse(404, "unknown serial", serial, source)
    number = parse_stage(stage)
    if number is None:
        return refuse(400, "stage must be 1, 2, 3, 4, 5 or failed", serial, source)
    checked = authorise(site, node, token, source, site.settings.callbacks_from_reserved_ip)
    if isinstance(checked, Answer):
        if number == LAST and checked.body.get("error", "").endswith("(completed)"):
            # The genuine token of an install that completed: a retried stage 5 whose first
            # answer was lost. Harmless; nothing changes.
            return Answer(200, {"ok": True, "stage": node.stage, "result": "duplicate"})
        return checked
    tail = tail[-site.settings.max_log :] if site.settings.max_log else ""
    if number == 0:
        return _failed(site, node, checked, tail, source)
    return _stage(site, node, checked, number, tail, source, defer)


def authorise(
    site: Site, node: Node, token: str | None, source: str | None, from_ip: bool
) -> Install | Answer:
    """The open install ``token`` belongs to, or the refusal (logged, no token): a bad
    token, or (``from_ip``) a caller that is not the node's reserved IP."""
    try:
        install = tokens.verify(site.db, site.secret, node.serial, token)
    except tokens.Refused as exc:
        return refuse(exc.status, exc.reason, node.serial, source)
    if from_ip and source != node.ip:
        return refuse(403, "request not from the node's reserved IP", node.serial, source)
    return install


def _stage(
    site: Site,
    node: Node,
    install: Install,
    number: int,
    tail: str,
    source: str | None,
    defer: bool,
) -> Answer:
    db = site.db
    stage = node.stage
    with db.atomic():
        forward = db.record_progress(install.id, number)
        kind = f"stage {number}" + ("" if forward else " (repeat or late)")
        db.add_events([Event(node.id, kind, tail or None, source, install.id)])
        why = f"installer stage {number}"
        if node.stage == st.OS_PROVISIONING:
            lifecycle.move(db, [node], st.INSTALLING, COMMAND, why)
            stage = st.INSTALLING  # by this callback, or by a concurrent one (compare-and-set)
        elif forward and number < LAST:  # stage 5's own row is the move to deployed
            db.record_substage(node, why, COMMAND)
    result = "recorded" if forward else "duplicate"
    log.debug("callback: node %s stage %d %s (from %s)", node.serial, number, result, source)
    if number == LAST and forward:
        if defer:
            return Answer(200, {"ok": True, "stage": stage, "result": "complete"}, complete=True)
        return complete(site, [node.serial])[node.serial]
    return Answer(200, {"ok": True, "stage": stage, "result": result})


def complete(site: Site, serials: list[str]) -> dict[str, Answer]:
    """Stage 5 of these nodes: *installing → deployed* in **one** lifecycle batch (the deployed
    stage's action switches their boot entries to local boot), then their installs end
    ("completed": the token is revoked). serial → the answer for its callback.

    serve gathers the stage-5 callbacks that arrive while a batch runs into the next one: under
    a storm, one batch (one file writer, a few transactions) serves hundreds of nodes."""
    ctx = ActionContext(site.config, site.db, COMMAND)
    batch = lifecycle.advance(ctx, Selection(serials=tuple(dict.fromkeys(serials))), st.DEPLOYED)
    by_serial = {r.serial: r for r in batch.results}
    done = [r.serial for r in batch.results if r.status in ("ok", "unchanged")]
    ids = [n.id for n in site.db.load_nodes(Selection(serials=tuple(done)))] if done else []
    site.db.end_installs(ids, "completed")
    answers: dict[str, Answer] = {}
    for serial in serials:
        result = by_serial.get(serial)
        if result is not None and result.status in ("ok", "unchanged"):
            answers[serial] = Answer(200, {"ok": True, "stage": st.DEPLOYED, "result": "deployed"})
            continue
        message = result.message if result else "not moved"
        stage = result.stage if result else st.INSTALLING
        log.debug("callback: node %s stage 5 recorded, not deployed: %s", serial, message)
        answers[serial] = Answer(
            200, {"ok": True, "stage": stage, "result": f"recorded; {message}"}
        )
    return answers


def _failed(site: Site, node: Node, install: Install, tail: str, source: str | None) -> Answer:
    """``failed``: the node → *failed* (from the stage it was in) with the installer's reason,
    and the install ends; one transaction."""
    db = site.db
    reason = "installer reported failure" + (f": {_last_line(tail)}" if tail else "")
    with db.atomic():
        db.add_events([Event(node.id, FAILED, tail or None, source, install.id)])
        if node.stage in INSTALL_STAGES:
            lifecycle.move(db, [node], st.FAILED, COMMAND, reason, node.stage)
        db.end_installs([node.id], FAILED)
    log.debug("callback: node %s failed (from %s)", node.serial, source)
    return Answer(200, {"ok": True, "stage": st.FAILED, "result": "failed"})


def _last_line(tail: str) -> str:
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
