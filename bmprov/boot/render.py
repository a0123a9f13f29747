"""Jinja2 rendering for every generated boot-loader entry and OS install file.

One :class:`Renderer` per template kind (``pxe_templates`` or ``kickstart``) holds one
:class:`jinja2.Environment` whose loader searches the site's directories first
(``[templates] dirs``; each may hold a ``pxe_templates/`` and a ``kickstart/`` sub-directory,
mirroring the shipped layout) and the shipped directory last. Templates are compiled once and
cached by Jinja; nothing is ever compiled per render.

Defences (see ../shared/peers/libraries.md, section d), all on by construction:

* ``StrictUndefined``: a missing variable is an error, never an empty string.
* ``finalize``: every ``{{ }}`` result is refused if it holds a control character, so no value
  can start a new kickstart command, boot-loader line or shell statement.
* context filters: ``ks_token``, ``shquote``, ``hostname``, ``bootarg``, ``ssh_key`` and ``b64``
  (a multi-line script block carried through a one-line context such as preseed's
  ``late_command``); ``install_token`` and ``serve_url`` refuse anything but an install token
  and serve's ``http://IP[:port]`` base URL (docs/install-callbacks.md).

Every failure is a :class:`RenderError` naming the template and line.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from bmprov import validate
from bmprov.config import Config
from bmprov.errors import BmprovError, ConfigError, ExitCode
from bmprov.install.options import ssh_key
from bmprov.resources import data_dir

KINDS = ("pxe_templates", "kickstart")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_KS_TOKEN = re.compile(r"[A-Za-z0-9._:/@+=,$-]+")
_BOOTARG = re.compile(r"[A-Za-z0-9._:/@+=,-]+")
_INSTALL_TOKEN = re.compile(r"[0-9]{1,19}\.[A-Za-z0-9_-]{16,100}")
_SERVE_URL = re.compile(r"http://(\[[0-9A-Fa-f:.]+\]|[0-9.]+)(?::([0-9]{1,5}))?/?")


class RenderError(BmprovError):
    """A template could not be rendered: names the template and line."""

    def __init__(self, template: str, line: int | None, reason: str) -> None:
        where = f"template {template}" + (f" line {line}" if line else "")
        super().__init__(f"{where}: {reason}")
        self.template = template
        self.line = line
        self.reason = reason


class TemplateInvalid(RenderError):
    """A site template cannot be read or parsed: bad input, nothing is rendered."""

    exit_code = ExitCode.BAD_INPUT


class Clean(str):
    """Text made so that it cannot hold a control character (base64, JSON): :func:`guard`
    passes it without a scan. The callback blocks are 6-14 KB of base64 per install file, and
    scanning them cost more than rendering the rest of the file."""

    __slots__ = ()


def guard(value: Any) -> Any:
    """``finalize`` hook: refuse any ``{{ }}`` result that holds a control character."""
    if type(value) is Clean:
        return value
    if value is None:
        raise ValueError("a value is None (missing)")
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case, ~4x faster than the search (same verdict)
        return value
    match = _CONTROL.search(text)
    if match:
        raise ValueError(f"a value contains a control character ({match.group()!r})")
    return value


def ks_token(value: Any) -> str:
    """A single kickstart/preseed word: no whitespace, quotes, ``#``, ``%``, ``\\`` or ``;``."""
    text = str(value)
    if not _KS_TOKEN.fullmatch(text):
        raise ValueError(f"{text!r} is not a plain word (letters, digits, ._:/@+=,$-)")
    return text


def bootarg(value: Any) -> str:
    """A boot-loader/kernel argument: one word, nothing a loader would parse (``$ ; ' " {``)."""
    text = str(value)
    if not _BOOTARG.fullmatch(text):
        raise ValueError(f"{text!r} is not a safe boot argument (letters, digits, ._:/@+=,-)")
    return text


def shquote(value: Any) -> str:
    """A POSIX-shell single-quoted word (control characters are still refused)."""
    return shlex.quote(str(value))


def install_token(value: Any) -> str:
    """An install's bearer token, ``<install id>.<base64url HMAC>`` (bmprov.tokens), nothing else.

    The token goes into shell scripts and HTTP headers: refusing every other character here
    means no quoting mistake can turn it into code. The message never repeats the value.
    """
    if not isinstance(value, str) or not _INSTALL_TOKEN.fullmatch(value):
        raise ValueError("the install token is not <digits>.<base64url> (value not shown)")
    return value


def serve_url(value: Any) -> str:
    """serve's base URL as ``http://IP[:port]`` (no path, no name: installers may not resolve
    names), normalised without a trailing slash."""
    text = str(value)
    match = _SERVE_URL.fullmatch(text)
    port = int(match.group(2) or 80) if match else 0
    if match is None or not _is_ip(match.group(1).strip("[]")) or not 0 < port < 65536:
        raise ValueError(f"{text!r} is not serve's base URL (http://IP[:port])")
    return text.rstrip("/")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def b64(value: Any) -> str:
    """Base64 of a (multi-line) text block, to carry a script through a one-line context."""
    return Clean(base64.b64encode(str(value).encode()).decode())


@jinja2.pass_eval_context
def tojson(eval_ctx: jinja2.nodes.EvalContext, value: Any, indent: int | None = None) -> str:
    """Jinja's ``tojson``, marked :class:`Clean` when it is: JSON escapes every C0 and (as
    ``\\uXXXX``, ASCII output) C1 control character, so only DEL could be left in it."""
    text = jinja2.filters.do_tojson(eval_ctx, value, indent)
    return text if "\x7f" in text else Clean(text)


def hostname(value: Any) -> str:
    """An RFC 1123 host name, as :func:`bmprov.validate.hostname` accepts it."""
    return validate.hostname(str(value))


FILTERS = {
    "ks_token": ks_token,
    "bootarg": bootarg,
    "shquote": shquote,
    "hostname": hostname,
    "b64": b64,
    "install_token": install_token,
    "serve_url": serve_url,
    "ssh_key": ssh_key,
    "tojson": tojson,
}


def search_path(config: Config, kind: str) -> list[Path]:
    """Directories searched for ``kind`` templates: site dirs first, then the shipped one.

    :raises ConfigError: a ``[templates] dirs`` entry is not a directory (a typo there would
        otherwise fall back to the shipped templates without a word).
    """
    site = []
    for entry in config.section("templates").get("dirs", []):
        root = config.resolve(entry)
        if not root.is_dir():
            where = f"{config.path}: " if config.path else ""
            raise ConfigError(f"{where}templates.dirs: {root} is not a directory")
        site.append(root / kind)
    return [*site, data_dir(kind)]


class _Environment(jinja2.Environment):
    """A Jinja environment whose templates see their globals as one plain dict.

    Jinja layers each template's globals over the environment's in a ``ChainMap`` and copies
    that into every render's context; iterating a ``ChainMap`` costs more than rendering a
    short boot entry. bmprov never changes globals after start-up, so a snapshot is the same.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """The environment's globals overlaid with the template's, flattened."""
        return {**self.globals, **(d or {})}


CACHE_DIR = ".bmprov-cache"


def cache_dir(config: Config) -> Path | None:
    """The site's cache beside its config file (0700): compiled templates and the install
    checks passed. None without a config file or where it cannot be made (nothing cached)."""
    if config.path is None:
        return None
    path = config.path.parent / CACHE_DIR
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    return path


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache, optional: a cache file that cannot be read or written (another
    user's directory, a full disk, a damaged file) means compiling, never a failed render."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Load if possible; anything wrong with the file is a miss."""
        try:
            super().load_bytecode(bucket)
        except Exception:  # marshal raises what it likes on a damaged file
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Store if possible."""
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


class Renderer:
    """Cached templates of one kind, with the bmprov guards.

    Compiled templates are also kept in the site's :func:`cache_dir` (Jinja's bytecode cache,
    keyed by each template's path and source): an install file with its callback blocks spans
    some 20 templates, and compiling them cost a one-node ``pxe render`` more than the rest of
    its work, in every process.
    """

    def __init__(self, config: Config, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown template kind {kind!r}")
        self.kind = kind
        self.dirs = search_path(config, kind)
        cache = cache_dir(config)
        self.env = _Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # not HTML: each context has its own filter
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=guard,
            auto_reload=False,
            bytecode_cache=_BytecodeCache(str(cache)) if cache else None,
        )
        self.env.filters.update(FILTERS)
        self._selected: dict[tuple[str, ...], jinja2.Template] = {}
        for directory in self.dirs[:-1]:  # the site's; the shipped ones are tested
            self._check_syntax(directory)

    def _check_syntax(self, directory: Path) -> None:
        """Parse every site template up front, so a syntax error stops the run, not each node.

        :raises TemplateInvalid: naming the file and line.
        """
        if not directory.is_dir():
            return
        for path in sorted(directory.rglob("*.j2")):
            try:
                self.env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateInvalid(
                    str(path), exc.lineno, exc.message or "syntax error"
                ) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateInvalid(str(path), None, f"cannot read it ({exc})") from None

    def exists(self, name: str) -> bool:
        """True if some search directory holds ``name``."""
        return any((d / name).is_file() for d in self.dirs)

    def template(self, names: str | Iterable[str]) -> jinja2.Template:
        """The first template found among ``names`` (compiled once, then cached).

        The choice is cached too: Jinja caches templates, not misses, so without this every
        render would search the directories again for each name before the one that exists.
        """
        wanted = (names,) if isinstance(names, str) else tuple(names)
        chosen = self._selected.get(wanted)
        if chosen is not None:
            return chosen
        try:
            chosen = self.env.select_template(list(wanted))
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(
                exc.filename or exc.name or "?", exc.lineno, exc.message or ""
            ) from None
        except jinja2.TemplatesNotFound:
            raise RenderError(
                " or ".join(wanted), None, f"not found in {', '.join(map(str, self.dirs))}"
            ) from None
        self._selected[wanted] = chosen
        return chosen

    def render(self, names: str | Iterable[str], context: Mapping[str, Any]) -> str:
        """Render the first of ``names``; :class:`RenderError` names template and line."""
        template = self.template(names)
        try:
            return template.render(context)
        except (jinja2.TemplateError, ValueError, TypeError) as exc:
            name, line = _location(exc.__traceback__, template)
            reason = exc.message if isinstance(exc, jinja2.TemplateError) else str(exc)
            raise RenderError(name, line, reason or type(exc).__name__) from None

    def digest(self) -> str:
        """A digest of every template file this renderer can see (for change detection)."""
        sha = hashlib.sha256()
        for directory in self.dirs:
            if not directory.is_dir():
                continue
            for path in sorted(p for p in directory.rglob("*") if p.is_file()):
                sha.update(str(path.relative_to(directory)).encode() + b"\0")
                sha.update(path.read_bytes() + b"\0")
        return sha.hexdigest()


def _location(tb: TracebackType | None, template: jinja2.Template) -> tuple[str, int | None]:
    """The innermost template file and line in a (Jinja-rewritten) traceback."""
    name, line = template.filename or template.name or "?", None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.endswith(".py") and not filename.startswith("<"):
            name, line = filename, tb.tb_lineno
        tb = tb.tb_next
    return name, line
