"""Problems as the operator sees them: sorted, and long values clipped."""

from __future__ import annotations

from bmprov.errors import Problem


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    """By row then column, each message clipped (a 100 kB cell is not echoed in full)."""
    ordered = sorted(problems, key=lambda p: (p.row or 0, p.column or ""))
    return [Problem(p.file, p.row, clip(p.column), clip(p.message) or "") for p in ordered]


def clip(text: str | None, keep: int = 120) -> str | None:
    """Long text as its start and end around an ellipsis."""
    if text is None or len(text) <= 2 * keep + 20:
        return text
    return f"{text[:keep]} …[{len(text) - 2 * keep} characters]… {text[-keep:]}"
