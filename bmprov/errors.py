"""The one family of user-facing errors, and the exit codes the CLI maps them to.

Library code raises a :class:`BmprovError` subclass with a message an operator can act on
(naming the file, row, column or node). The CLI prints ``Error: <message>`` to stderr and exits
with the class's ``exit_code``; nothing else ever reaches the operator as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, shared by every command."""

    OK = 0
    FAILED = 1  # a batch ran and at least one node failed, or a runtime failure
    BAD_INPUT = 2  # the input (sheet, config, arguments) was rejected; nothing was done


class BmprovError(Exception):
    """Base class: a failure the operator must see as a clear message."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(BmprovError):
    """Bad input: a value, a file or an option the operator must correct."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(InputError):
    """The configuration file is missing or invalid."""


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file: ``FILE:ROW:COLUMN: message``."""

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f":{self.row}"
        if self.column:
            where += f":{self.column}"
        return f"{where}: {self.message}"


class ValidationFailed(InputError):
    """Several located problems; nothing was written."""

    def __init__(self, problems: list[Problem], summary: str | None = None) -> None:
        self.problems = problems
        text = summary or f"{len(problems)} problem(s); nothing was written"
        super().__init__(text)


class StateError(BmprovError):
    """The state file refused an operation (unknown node, forbidden transition...)."""


class StateFileError(StateError):
    """The state file cannot be used as it is (missing, empty, corrupt, newer, read-only)."""

    exit_code = ExitCode.BAD_INPUT


class TransitionError(StateError):
    """A lifecycle transition that the state table does not allow."""

    exit_code = ExitCode.BAD_INPUT


class LockedError(StateError):
    """Another process holds the state file's write lock for too long."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"state file {path} is locked: another bmprov is running",
            "retry when it has finished",
        )


class DriverError(BmprovError):
    """A peer (DHCP server, BMC, ...) failed or refused; the message names it."""


class StepFailed(BmprovError):
    """One step of a node's stage action failed; the batch records it and goes on."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.reason = message
