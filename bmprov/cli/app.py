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
    from bmprov.db import StateDB

log = logging.getLogger("bmprov")
helpfmt.install()


class _ErrorBoundary(TyperGroup):
    """Root group: turns every :class:`BmprovError` into ``Error: …`` and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BmprovError as exc:
            report_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            typer.echo("bmprov: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if _is_framework(exc):  # exits, usage errors: the framework prints them
                raise
            log.debug("internal error", exc_info=True)  # a bug: traceback only with -vv
            typer.echo(
                f"bmprov: internal error: {type(exc).__name__}: {exc} (run with -vv for details)",
                err=True,
            )
            raise typer.Exit(int(ExitCode.FAILED)) from None


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
    _dbs: list[StateDB] = field(default_factory=list, repr=False)

    def config(self, *, required: bool = True) -> Config:
        """The loaded configuration (``ConfigError`` if none and ``required``)."""
        if self._config is None:
            from bmprov.config import load_config  # noqa: PLC0415

            self._config = load_config(self.config_path, required=required)
        return self._config

    def db(self) -> StateDB:
        """The state file named by the configuration, opened (and migrated) once."""
        if not self._dbs:
            from bmprov.db import open_state  # noqa: PLC0415

            config = self.config()
            self._dbs.append(open_state(config.state_path, config.busy_timeout_ms))
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


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root_logger = logging.getLogger("bmprov")
    root_logger.setLevel(level)
    if not root_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root_logger.addHandler(handler)


def obj(ctx: typer.Context) -> AppContext:
    """The :class:`AppContext` of this invocation."""
    state = ctx.find_root().obj
    if not isinstance(state, AppContext):  # called outside the app (tests poking commands)
        state = AppContext()
        ctx.find_root().obj = state
    return state
