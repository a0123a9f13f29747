"""Where the shipped data lives: schemas, templates and sample sheets.

In a wheel they are package data under ``bmprov/_data/``; in a source checkout they are the
top-level directories next to the package. Sites override templates with their own directory
(``[templates] dirs`` in the config), searched first.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The shipped directory ``name`` (``schemas``, ``pxe_templates``, ``kickstart``...)."""
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / name
