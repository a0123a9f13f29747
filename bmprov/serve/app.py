"""The ``bmprov serve`` ASGI application (Starlette): routes, body caps, auth, access log.

State is read and written through the :class:`~bmprov.store.Store` on the event loop's thread:
an SQLite transaction takes ~0.2 ms, less than a hand-off to a thread, and one writer per
process never waits on itself. Only stage 5 (the deployed stage's action: files, maybe a BMC)
runs on one completion thread with its own connection, batched (:mod:`.completer`). Several
worker processes share the state file through SQLite's WAL and ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bmprov import tokens, validate
from bmprov.config import Config, load_config
from bmprov.errors import BmprovError
from bmprov.serve import INSTALL_PATH, callbacks, views
from bmprov.serve.callbacks import Answer, Site
from bmprov.serve.completer import Completer
from bmprov.serve.files import OnRequest
from bmprov.serve.run import setup_logging
from bmprov.serve.settings import ServeSettings, admin_ok, load_admin_token
from bmprov.serve.timeouts import check_timeouts
from bmprov.stages import ActionContext
from bmprov.store import open_state

log = logging.getLogger("bmprov.serve")
access = logging.getLogger("bmprov.serve.access")


INSTALL_NAMES = ("user-data", "meta-data")
"""The files of an autoinstall node (cloud-init's nocloud-net datasource)."""


class TooLarge(Exception):
    """The request body is over ``[serve] max_body_bytes``."""


class BadBody(Exception):
    """The request body cannot be read as a form or a JSON object."""


def create_app(config: Config | None = None) -> Starlette:
    """The application (uvicorn's factory: each worker process makes its own)."""
    setup_logging()
    config = config or load_config(Path(os.environ["BMPROV_CONFIG"]))
    settings = ServeSettings.from_config(config, os.environ.get("BMPROV_SERVE_LISTEN"))
    db = open_state(config.state_path, config.busy_timeout_ms)
    site = Site(config, db, settings, tokens.load_secret(config))
    handlers = Handlers(site, load_admin_token(config))
    routes = [
        Route("/", handlers.status_page),
        Route(INSTALL_PATH + "{serial}", handlers.install_file),
        Route(INSTALL_PATH + "{serial}/{name}", handlers.install_file),
        Route(INSTALL_PATH + "{serial}/{token}/{name}", handlers.install_file),
        Route("/boot/{name}", handlers.ipxe),
        Route("/callback/{serial}", handlers.callback, methods=["POST"]),
        Route("/api/nodes", handlers.api_nodes),
        Route("/api/nodes/{serial}", handlers.api_node),
        Route("/api/nodes/{serial}/events", handlers.api_events),
        Route("/api/nodes/{serial}/reinstall", handlers.api_reinstall, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=handlers.lifespan)
    app.add_middleware(AccessLog)
    return app


class Handlers:
    """The endpoints of one worker process."""

    def __init__(self, site: Site, admin: Any) -> None:
        self.site = site
        self.admin = admin
        self.files = OnRequest(site)
        self.completer = Completer(site)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(self._check_timeouts())
        try:
            yield
        finally:
            task.cancel()
            self.completer.close()
            self.site.db.close()

    async def _check_timeouts(self) -> None:
        """Fail nodes past their stage timeout, every ``timeout_check_seconds``."""
        while True:
            try:
                check_timeouts(self.site.config, self.site.db)
            except BmprovError as exc:
                log.warning("timeout check: %s", exc)
            await asyncio.sleep(self.site.settings.check_every)

    # -- installer side ------------------------------------------------------------------------

    async def install_file(self, request: Request) -> Response:
        p = request.path_params
        token = p.get("token") or request.query_params.get("token")
        name = p.get("name")
        if name is not None and name not in INSTALL_NAMES:
            return _answer(request, Answer(404, {"ok": False, "error": "no such install file"}))
        got = self.files.install_file(p["serial"], token, _client(request), name)
        if got.refused is not None:
            return _answer(request, got.refused)
        return PlainTextResponse(got.text or "", headers={"Cache-Control": "no-store"})

    async def ipxe(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        try:
            mac = validate.mac(name.removesuffix(".ipxe").removeprefix("mac-"))
        except ValueError:
            return _answer(request, Answer(404, {"ok": False, "error": "not a MAC address"}))
        if not name.endswith(".ipxe"):
            return _answer(request, Answer(404, {"ok": False, "error": "not an .ipxe name"}))
        got = self.files.ipxe(mac, _client(request))
        if got.refused is not None:
            return _answer(request, got.refused)
        return PlainTextResponse(got.text or "", headers={"Cache-Control": "no-store"})

    async def callback(self, request: Request) -> Response:
        serial = str(request.path_params["serial"])
        source = _client(request)
        try:
            data = await read_fields(request, self.site.settings.max_body)
        except TooLarge:
            return _answer(request, callbacks.refuse(413, "request body too large", serial, source))
        except BadBody as exc:
            return _answer(request, callbacks.refuse(400, str(exc), serial, source))
        token = _bearer(request) or _text(data.get("token"))
        tail = _text(data.get("log")) or ""
        if token:
            tail = tail.replace(token, "********")
        stage = data.get("stage")
        answer = callbacks.accept(self.site, serial, token, stage, tail, source, defer=True)
        if answer.complete:
            answer = await self.completer.complete(serial)
        return _answer(request, answer)

    # -- people side ---------------------------------------------------------------------------

    def _reads_allowed(self, request: Request) -> bool:
        return not self.site.settings.protect_reads or admin_ok(self.admin, _bearer(request))

    async def status_page(self, request: Request) -> Response:
        if not self._reads_allowed(request):
            return _answer(request, Answer(401, {"ok": False, "error": "admin token required"}))
        flt = _filter(request)
        rows = views.nodes_view(self.site.db, flt)
        return HTMLResponse(views.page(rows, flt))

    async def api_nodes(self, request: Request) -> Response:
        if not self._reads_allowed(request):
            return _answer(request, Answer(401, {"ok": False, "error": "admin token required"}))
        flt = _filter(request)
        rows = views.nodes_view(self.site.db, flt)
        return JSONResponse({"counts": views.counts(rows), "nodes": rows})

    async def api_node(self, request: Request) -> Response:
        if not self._reads_allowed(request):
            return _answer(request, Answer(401, {"ok": False, "error": "admin token required"}))
        db = self.site.db
        node = db.node_by_serial(str(request.path_params["serial"]))
        if node is None:
            return _answer(request, Answer(404, {"ok": False, "error": "unknown serial"}))
        installs = db.current_installs([node.id])
        last = db.last_events([node.id])
        now = datetime.now(UTC)
        return JSONResponse(views.summary(node, installs.get(node.id), last.get(node.id), now))

    async def api_events(self, request: Request) -> Response:
        if not self._reads_allowed(request):
            return _answer(request, Answer(401, {"ok": False, "error": "admin token required"}))
        db = self.site.db
        node = db.node_by_serial(str(request.path_params["serial"]))
        if node is None:
            return _answer(request, Answer(404, {"ok": False, "error": "unknown serial"}))
        return JSONResponse(
            {
                "serial": node.serial,
                "events": [views.event_dict(e) for e in db.events(node.id, limit=1000)],
            }
        )

    async def api_reinstall(self, request: Request) -> Response:
        """``POST /api/nodes/<serial>/reinstall`` (``os``, optional ``max_nodes``): the
        workflow's reinstall; admin token required."""
        serial = str(request.path_params["serial"])
        source = _client(request)
        if not admin_ok(self.admin, _bearer(request)):
            return _answer(request, callbacks.refuse(403, "admin token required", serial, source))
        try:
            data = await read_fields(request, self.site.settings.max_body)
        except (TooLarge, BadBody) as exc:
            return _answer(request, Answer(400, {"ok": False, "error": str(exc) or "bad body"}))
        workflow = _workflow()
        if workflow is None:
            return _answer(
                request, Answer(501, {"ok": False, "error": "reinstall is not available yet"})
            )
        os_name = _text(data.get("os"))
        if not os_name:
            return _answer(request, Answer(400, {"ok": False, "error": "os is required"}))
        ctx = ActionContext(self.site.config, self.site.db, "serve api reinstall")
        try:
            batch = workflow(ctx, [serial], os_name)
        except BmprovError as exc:
            return _answer(request, Answer(400, {"ok": False, "error": str(exc)}))
        return JSONResponse(batch.to_dict())


def _workflow() -> Callable[..., Any] | None:
    """``bmprov.workflow.reinstall`` where that module exists (issue 12 item 5)."""
    try:
        module = importlib.import_module("bmprov.workflow")
    except ImportError:
        return None
    found = getattr(module, "reinstall", None)
    return found if callable(found) else None


async def read_fields(request: Request, cap: int) -> dict[str, Any]:
    """A form (urlencoded or multipart) or JSON object body, at most ``cap`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge
        chunks.append(chunk)
    body = b"".join(chunks)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise BadBody("malformed JSON body") from None
        if not isinstance(data, dict):
            raise BadBody("the JSON body must be an object")
        return data
    if kind == "multipart/form-data":
        request._body = body
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadBody("the form body is not UTF-8") from None
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _filter(request: Request) -> views.Filter:
    q = request.query_params
    return views.Filter(q.get("site") or None, q.get("rack") or None, q.get("stage") or None)


def _answer(request: Request, answer: Answer) -> Response:
    request.state.note = answer.note  # on the request's one log line
    return JSONResponse(answer.body, status_code=answer.status)


class AccessLog:
    """One line per request: client, method, path **without its query string** (tokens ride
    in ``?token=``), status, milliseconds. Uvicorn's own access log is off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            path = _logged_path(scope["path"])
            took = (time.perf_counter() - start) * 1000
            note = scope.get("state", {}).get("note", "")
            access.info(
                "%s %s %s %d %.1fms %s", client[0], scope["method"], path, status[0], took, note
            )


def _logged_path(path: str) -> str:
    """The path as logged: a token carried in the path (autoinstall's ``/install/S/T/name``,
    or one put there by mistake) is masked."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "install":
        parts[3:] = [p if p in INSTALL_NAMES else "********" for p in parts[3:]]
    return "/".join(parts)
