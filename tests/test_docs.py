"""Docs that cannot drift: the generated CLI reference and lifecycle diagram are current, and
README's "Everyday use" names every command."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import gen_docs


def test_generated_docs_are_current() -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_readme_names_every_command() -> None:
    lines = [
        set(re.findall(r"[\w-]+", line))
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if "bmprov " in line
    ]
    missing = [
        " ".join(path)
        for path, _ in gen_docs.commands()
        if path and not any(set(path) <= words for words in lines)
    ]
    assert not missing, f"commands missing from README.md: {missing}"


def test_every_option_is_in_the_reference() -> None:
    reference = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for path, command in gen_docs.commands():
        section = reference.split(f"## `{' '.join(['bmprov', *path])}`", 1)[1].split("\n## ")[0]
        for param in command.params:
            for opt in param.opts if param.param_type_name == "option" else ():
                if opt != "--help":
                    assert f"`{opt}`" in section, (path, opt)
