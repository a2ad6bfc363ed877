"""Each session's own path through a task (``paths=varied``).

A real model takes a different path through the same task on every run: it says more or less,
and it looks around more or less before it edits. With ``paths=fixed`` (the default) the
simulated model plays the task's plan the same way in every session; with ``paths=varied`` each
session draws, once, from its own seeded stream (seed, endpoint, session):

* a verbosity factor, lognormal with sigma 0.35, clipped to [0.4, 2.5], that scales the length
  of every turn's reasoning and text (:func:`~pytest_agentspeed.simulator.padding.scaled_text`);
* 0, 1 or 2 extra exploratory turns (probabilities 0.5, 0.3, 0.2) before the first turn that
  changes a file, each one of: running the task's check first to see it fail (only when the
  plan runs the check again later), reading one more workspace file the plan does not read, or
  listing a directory.

The edits are the plan's, so a task that passes with ``fixed`` passes with ``varied``. The
extra turns are planned in the built-in tools, like the rest of the plan, and spoken in the
agent's own tools by :mod:`~pytest_agentspeed.simulator.agent_tools`.
"""

from __future__ import annotations

import math
import posixpath
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

from pytest_agentspeed.simulator.padding import scaled_text
from pytest_agentspeed.trajectory_file import PlannedTurn, ToolUse

__all__ = ["SessionPath", "draw_path"]

#: Lognormal sigma of the verbosity factor, and its clip.
VERBOSITY_SIGMA: Final = 0.35
VERBOSITY_RANGE: Final = (0.4, 2.5)
#: Probabilities of 0, 1 and 2 extra exploratory turns.
EXTRA_TURNS_P: Final = (0.5, 0.3, 0.2)
_CHANGES: Final = frozenset({"edit_file", "write_file"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPath:
    """One session's path: its turns and how wordy it is."""

    turns: tuple[PlannedTurn, ...]
    verbosity: float
    #: Seeds the words a wordier model adds (with the turn's index).
    seed: str

    def worded(self, turn: PlannedTurn, index: int) -> PlannedTurn:
        """``turn`` with its reasoning and text scaled by the session's verbosity."""
        seed = f"{self.seed}|{index}"
        return PlannedTurn(
            reasoning=scaled_text(turn.reasoning, self.verbosity, f"{seed}|reasoning"),
            text=scaled_text(turn.text, self.verbosity, f"{seed}|text"),
            tool_uses=turn.tool_uses,
        )


def draw_path(
    turns: Sequence[PlannedTurn],
    *,
    check_command: str,
    files: Collection[str],
    rng: random.Random,
    seed: str,
) -> SessionPath:
    """The session's path through a plan, drawn from ``rng`` (the session's own stream).

    :param turns: the task's plan.
    :param check_command: the task's check (the reproduce turn runs it).
    :param files: the workspace's starting files (relative POSIX paths).
    :param seed: names the session, for the words a wordier model adds.
    """
    verbosity = math.exp(VERBOSITY_SIGMA * rng.gauss(0.0, 1.0))
    verbosity = min(max(verbosity, VERBOSITY_RANGE[0]), VERBOSITY_RANGE[1])
    u = rng.random()
    extra = 0 if u < EXTRA_TURNS_P[0] else 1 if u < EXTRA_TURNS_P[0] + EXTRA_TURNS_P[1] else 2
    at = _insertion_point(turns)
    read = {
        str(use.input.get("path"))
        for turn in turns
        for use in turn.tool_uses
        if use.name == "read_file"
    }
    runs_check_later = bool(check_command.strip()) and any(
        use.name == "run_command" and use.input.get("command") == check_command
        for turn in turns[at:]
        for use in turn.tool_uses
    )
    directories = sorted({posixpath.dirname(f) for f in files} - {""}) or ["."]
    added: list[PlannedTurn] = []
    for _ in range(extra):
        unread = sorted(set(files) - read)
        kinds = [
            kind
            for kind, possible in (
                ("reproduce", runs_check_later),
                ("read", bool(unread)),
                ("list", bool(directories)),
            )
            if possible
        ]
        if not kinds:
            break
        kind = rng.choice(kinds)
        if kind == "reproduce":
            runs_check_later = False  # once is enough
            added.append(
                PlannedTurn(
                    text="Before changing anything, let me run the check to see how it fails.",
                    tool_uses=(ToolUse(name="run_command", input={"command": check_command}),),
                )
            )
        elif kind == "read":
            path = rng.choice(unread)
            read.add(path)
            added.append(
                PlannedTurn(
                    text=f"Let me also look at `{path}` for context.",
                    tool_uses=(ToolUse(name="read_file", input={"path": path}),),
                )
            )
        else:
            directory = directories.pop(rng.randrange(len(directories)))
            added.append(
                PlannedTurn(
                    text=f"Let me see what else is in `{directory}`.",
                    tool_uses=(ToolUse(name="list_files", input={"path": directory}),),
                )
            )
    planned = (*turns[:at], *added, *turns[at:])
    return SessionPath(turns=planned, verbosity=verbosity, seed=seed)


def _insertion_point(turns: Sequence[PlannedTurn]) -> int:
    """Where exploring ends: the first turn that changes a file, else the first that runs a
    command, else the last turn (the summary)."""
    for names in (_CHANGES, frozenset({"run_command"})):
        for i, turn in enumerate(turns):
            if any(use.name in names for use in turn.tool_uses):
                return i
    return max(0, len(turns) - 1)
