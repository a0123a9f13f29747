"""The root Typer app, the shared context object, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from bmprov import __version__
from bmprov.cli import helpfmt
from bmprov.errors import BmprovError, ExitCode, ValidationFailed

if TYPE_CHECKING:
    from bmprov.config import Config
    from bmprov.store import Store

log = logging.getLogger("bmprov")
helpfmt.install()


JSON_WANTED = "bmprov_json"
"""``ctx.meta`` key: the command line asked for ``--json``."""
JSON_PRINTED = "bmprov_json_printed"
"""``ctx.meta`` key: the command already printed its JSON document before failing."""


class _ErrorBoundary(TyperGroup):
    """Root group: turns every :class:`BmprovError` into ``Error: …`` and its exit code.

    With ``--json`` a failure is a JSON document on stdout too (the message stays on stderr),
    so a script reading stdout always gets one document, whatever happened.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[JSON_WANTED] = "--json" in args
        result: list[str] = super().parse_args(ctx, args)
        return result

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BmprovError as exc:
            report_error(exc)
            _json_failure(ctx, str(exc), int(exc.exit_code), getattr(exc, "problems", []))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            typer.echo("bmprov: interrupted", err=True)
            _json_failure(ctx, "interrupted", 130)
            raise typer.Exit(130) from None
        except Exception as exc:
            if _is_framework(exc):  # exits, usage errors: the framework prints them
                if hasattr(exc, "format_message"):  # a usage error (exit 2)
                    _json_failure(ctx, exc.format_message(), int(ExitCode.BAD_INPUT))
                raise
            log.debug("internal error", exc_info=True)  # a bug: traceback only with -vv
            message = f"internal error: {type(exc).__name__}: {exc}"
            typer.echo(f"bmprov: {message} (run with -vv for details)", err=True)
            _json_failure(ctx, message, int(ExitCode.FAILED))
            raise typer.Exit(int(ExitCode.FAILED)) from None


def _json_failure(ctx: Any, message: str, exit_code: int, problems: Any = ()) -> None:
    """With ``--json`` (and no document printed yet): the failure as one JSON document."""
    if not ctx.meta.get(JSON_WANTED) or ctx.meta.get(JSON_PRINTED):
        return
    from dataclasses import asdict  # noqa: PLC0415

    from bmprov.cli.output import print_json  # noqa: PLC0415

    doc = {"ok": False, "exit_code": exit_code, "error": message}
    doc["problems"] = [asdict(p) for p in problems]
    print_json(doc)


def json_printed(ctx: typer.Context) -> None:
    """Note that this command printed its JSON document (a failure after it prints no other)."""
    ctx.meta[JSON_PRINTED] = True


def _is_framework(exc: BaseException) -> bool:
    """Typer/Click control flow (Exit, Abort, UsageError...), whichever click it vendors."""
    module = type(exc).__module__
    return isinstance(exc, typer.Exit | typer.Abort) or module.startswith(("typer", "click"))


def report_error(exc: BmprovError) -> None:
    """Print a domain error (and each located problem) to stderr."""
    if isinstance(exc, ValidationFailed):
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
    typer.echo(f"Error: {exc}", err=True)


@dataclass
class AppContext:
    """Per-invocation settings, with the config and state file opened lazily."""

    config_path: Path | None = None
    _config: Config | None = field(default=None, repr=False)
    _dbs: list[Store] = field(default_factory=list, repr=False)

    def config(self, *, required: bool = True) -> Config:
        """The loaded configuration (``ConfigError`` if none and ``required``)."""
        if self._config is None:
            from bmprov.config import load_config  # noqa: PLC0415

            self._config = load_config(self.config_path, required=required)
        return self._config

    def db(self) -> Store:
        """The state named by the configuration, opened (and migrated) once."""
        if not self._dbs:
            from bmprov.store import open_store  # noqa: PLC0415

            self._dbs.append(open_store(self.config()))
        return self._dbs[0]

    def close(self) -> None:
        """Close what was opened."""
        for db in self._dbs:
            db.close()
        self._dbs.clear()


app = typer.Typer(
    name="bmprov",
    cls=_ErrorBoundary,
    help="Take bare-metal servers from a purchase order to a running OS.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,  # never print locals (BMC passwords, OMAPI keys)
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bmprov {__version__}")
        raise typer.Exit


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="bmprov.toml to use (default: $BMPROV_CONFIG, then ./bmprov.toml).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="Log each step to stderr; -vv also each exchange with a peer (debug).",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """bmprov: procurement sheet → racked → networked → installed → deployed."""
    del version
    _setup_logging(verbose)
    state = AppContext(config_path=config)
    ctx.obj = state
    ctx.call_on_close(state.close)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (not the one at set-up: in-process runs and
    tests swap it per command)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        del value


def _setup_logging(verbose: int) -> None:
    """``-v``: each step of a batch and each node's result (INFO); ``-vv``: each exchange
    with a peer too (DHCP server, BMC: DEBUG). Secrets never reach a log call."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root_logger = logging.getLogger("bmprov")
    root_logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root_logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root_logger.addHandler(handler)


def obj(ctx: typer.Context) -> AppContext:
    """The :class:`AppContext` of this invocation."""
    state = ctx.find_root().obj
    if not isinstance(state, AppContext):  # called outside the app (tests poking commands)
        state = AppContext()
        ctx.find_root().obj = state
    return state
