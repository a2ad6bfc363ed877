"""What the README, docs and CI examples tell users to type must exist."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_agentspeed.cli import _parser
from pytest_agentspeed.edge.options import add_run_options

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "ci").glob("*")),
]


def declared_options() -> set[str]:
    names: set[str] = set()

    def record(*flags: str, **_: object) -> None:
        names.update(flags)

    add_run_options(record)
    return names


def test_every_documented_option_exists() -> None:
    known = declared_options()
    for document in DOCUMENTS:
        used = set(re.findall(r"--agentspeed-[a-z-]+[a-z]", document.read_text()))
        assert used <= known, f"{document.name}: unknown options {sorted(used - known)}"


def test_every_documented_command_exists() -> None:
    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for document in DOCUMENTS:
        used = set(
            re.findall(r"\bagentspeed (compare|show|merge|sim|report)\b", document.read_text())
        )
        assert used <= commands, f"{document.name}: unknown commands {sorted(used - commands)}"
