"""The post-install task: a command run for each node that completes its install.

``[post_install] command`` is an **argument list** template, e.g.
``["ansible-playbook", "-i", "{ip},", "site.yml", "-e", "serial={serial}"]``. Each argument's
``{placeholders}`` are replaced by the node's values — ``serial``, ``ip``, ``hostname``, ``mac``,
``os``, ``site``, ``rack``, ``config_dir`` — which bmprov validated at import and validates
again here (allow-lists: no space, quote, newline or shell character can get in, and a value
that would make an argument start with ``-`` is refused). The list
is run directly (no shell), one process per node, ``concurrency`` at a time, in the config's
directory, with stdin closed and an environment of ``PATH``, ``HOME``, ``LANG``, the
``BMPROV_*`` facts and only the variables ``env`` names — never bmprov's own secrets (BMC
password, OMAPI key: their variables are not passed on). A task over ``timeout`` seconds is
killed with its whole process group. The exit status and the last ``output_bytes`` of its
output (stdout and stderr together, control characters removed) are returned for the events.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import string
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmprov import validate
from bmprov.config import Config
from bmprov.errors import ConfigError
from bmprov.nodes import Node

PLACEHOLDERS = ("serial", "ip", "hostname", "mac", "os", "site", "rack", "config_dir")
DEFAULT_TIMEOUT = 1800.0  # an Ansible run installing GPU drivers takes minutes, not hours
DEFAULT_CONCURRENCY = 4  # each task is a process (ansible: ~100 MB); 2 cores here
DEFAULT_OUTPUT_BYTES = 4096
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True)
class TaskSettings:
    """``[post_install]``'s task part, validated once per batch."""

    command: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    output_bytes: int = DEFAULT_OUTPUT_BYTES
    env: tuple[str, ...] = ()
    cwd: Path = Path()

    @classmethod
    def from_config(cls, config: Config) -> TaskSettings:
        """:raises ConfigError: an argument with an unknown placeholder, naming it."""
        raw = config.section("post_install")
        command = tuple(str(arg) for arg in raw.get("command", ()))
        for index, arg in enumerate(command):
            _check_template(arg, f"post_install.command[{index}]", config)
        return cls(
            command=command,
            timeout=float(raw.get("timeout", DEFAULT_TIMEOUT)),
            concurrency=max(1, int(raw.get("concurrency", DEFAULT_CONCURRENCY))),
            output_bytes=max(0, int(raw.get("output_bytes", DEFAULT_OUTPUT_BYTES))),
            env=tuple(str(name) for name in raw.get("env", ())),
            cwd=config.base_dir,
        )


def _check_template(arg: str, key: str, config: Config) -> None:
    try:
        parts = list(string.Formatter().parse(arg))
    except ValueError as exc:
        raise ConfigError(f"{config.path}: {key}: {exc} (write {{{{ for a literal {{)") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ConfigError(
                f"{config.path}: {key}: unknown placeholder {{{name}}} "
                f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
            )


@dataclass(frozen=True)
class TaskResult:
    """One node's task: ok (exit 0), its exit status (None: not started or killed), how long,
    the output's tail, and what went wrong."""

    serial: str
    ok: bool
    exit_status: int | None
    seconds: float
    tail: str
    message: str

    def detail(self) -> str:
        """The event's text: status, time and the output tail."""
        text = f"{self.message} in {self.seconds:.1f} s"
        return f"{text}; output tail:\n{self.tail}" if self.tail else text


def node_values(node: Node, cwd: Path) -> dict[str, str | None]:
    """The placeholder values of a node, re-validated (the state file is not trusted)."""
    values: dict[str, str | None] = {
        "serial": validate.serial(node.serial),
        "ip": str(ipaddress.ip_address(node.ip)) if node.ip else None,
        "hostname": validate.hostname(node.hostname) if node.hostname else None,
        "mac": validate.mac(node.mac) if node.mac else None,
        "os": validate.token(node.os, "OS name") if node.os else None,
        "site": validate.token(node.site, "site") if node.site else None,
        "rack": validate.token(node.rack, "rack") if node.rack else None,
        "config_dir": str(cwd),
    }
    return values


def argv_for(settings: TaskSettings, node: Node) -> list[str]:
    """The command for one node.

    :raises ValueError: a placeholder the node has no (valid) value for, naming it.
    """
    values = node_values(node, settings.cwd)
    argv = []
    for arg in settings.command:
        used = [name for _, name, _, _ in string.Formatter().parse(arg) if name]
        missing = [name for name in used if not values.get(name)]
        if missing:
            raise ValueError(f"the command needs {{{missing[0]}}} and the node has none")
        value = arg.format_map(values)
        if value.startswith("-") and not arg.startswith("-"):  # a value read as an option
            raise ValueError(f"argument {value!r} would start with '-' (refused)")
        argv.append(value)
    return argv


def _environment(settings: TaskSettings, node: Node) -> dict[str, str]:
    env = {k: os.environ[k] for k in (*_BASE_ENV, *settings.env) if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for key, value in node_values(node, settings.cwd).items():
        if value:
            env[f"BMPROV_{key.upper()}"] = value
    return env


def run_one(settings: TaskSettings, node: Node) -> TaskResult:
    """Run the task for one node; never raises."""
    start = time.monotonic()

    def result(ok: bool, status: int | None, tail: str, message: str) -> TaskResult:
        return TaskResult(node.serial, ok, status, time.monotonic() - start, tail, message)

    try:
        argv = argv_for(settings, node)
    except ValueError as exc:
        return result(False, None, "", f"not started: {exc}")
    try:
        proc = subprocess.Popen(  # an argument list of validated values; no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=settings.cwd,
            env=_environment(settings, node),
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
    except OSError as exc:
        return result(False, None, "", f"not started: {argv[0]}: {exc.strerror or exc}")
    try:
        output, _ = proc.communicate(timeout=settings.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        output, _ = proc.communicate()
        tail = _tail(output, settings.output_bytes)
        return result(False, None, tail, f"killed after the {settings.timeout:g} s timeout")
    tail = _tail(output, settings.output_bytes)
    if proc.returncode == 0:
        return result(True, 0, tail, "exit 0")
    how = f"exit {proc.returncode}" if proc.returncode > 0 else f"signal {-proc.returncode}"
    return result(False, proc.returncode, tail, how)


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(output: bytes | None, limit: int) -> str:
    """The last ``limit`` bytes as text, control characters (but newlines and tabs) removed."""
    if not output or limit <= 0:
        return ""
    text = output[-limit:].decode("utf-8", errors="replace")
    return _CONTROL.sub("", text).strip()


def run_tasks(
    settings: TaskSettings,
    nodes: list[Node],
    runner: Callable[[TaskSettings, Node], TaskResult] = run_one,
) -> Iterator[TaskResult]:
    """The task for every node, ``settings.concurrency`` at a time, in node order."""
    if not settings.command or not nodes:
        return
    with ThreadPoolExecutor(min(settings.concurrency, len(nodes))) as pool:
        yield from pool.map(lambda node: runner(settings, node), nodes)
