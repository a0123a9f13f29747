"""Help in the usual Unix shape: ``import FILE``, ``--stage STAGE``, flags without a type label.

Typer 0.29 labels every option with its Python type (``--json <bool>``; ``-v <int>``, which
reads as if ``-v 2`` were valid when ``-v``/``-vv`` is a count; ``--serial <list[str]>``) and
writes a required argument as ``{file}``. :func:`install` changes only how help is printed,
once, for the whole app; parsing is untouched. On a Typer without these hooks it does nothing.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Patch Typer's help labels (idempotent)."""
    from typer import core  # noqa: PLC0415

    option, argument = core.TyperOption, core.TyperArgument
    original = getattr(option, "display_type_rich", None)
    if original is None or getattr(option, "_bmprov_help", False):
        return

    def option_type(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar)
        if self.is_flag or self.count:
            return None  # a flag takes no value
        label = str(original(self, ctx) or "")
        if "|" in label:  # a choice: show the choices
            return label.strip("<>")
        return str(self.name or "value").upper().removesuffix("_OPT")

    def argument_type(self: Any, ctx: Any) -> str | None:
        del self, ctx
        return None  # the argument's name column already says it

    def usage_name(self: Any) -> str:
        name = str(self.metavar or self.name or "arg").upper()
        name = name if self.required else f"[{name}]"
        return name if self.nargs == 1 else f"{name}..."

    # setattr: a deliberate patch of Typer's classes (mypy rightly refuses method assignment).
    setattr(option, "display_type_rich", option_type)  # noqa: B010
    if hasattr(argument, "display_type_rich"):
        setattr(argument, "display_type_rich", argument_type)  # noqa: B010
    if hasattr(argument, "_usage_display_name"):
        setattr(argument, "_usage_display_name", usage_name)  # noqa: B010
    setattr(option, "_bmprov_help", True)  # noqa: B010
