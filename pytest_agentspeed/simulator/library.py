"""The tasks the simulated endpoint knows, and how a conversation is matched to one.

The simulator is stateless per conversation: it recognises the task by its instruction wherever
it appears in the conversation's user messages (any agent that passes the instruction on works,
not only the built-in one: Claude Code puts reminders before it, mini-swe-agent wraps it in its
own template) and plays step *i* of the task's trajectory for the *i*-th assistant reply, spoken
in the tools the agent offers (:mod:`~pytest_agentspeed.simulator.agent_tools`).
Trajectories are synthesised from ``solution/`` or read from ``trajectory.toml``, once per task.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_agentspeed.errors import TaskError
from pytest_agentspeed.simulator.agent_tools import BUILTIN, Toolset, check_passed, is_check_call
from pytest_agentspeed.simulator.agent_tools import speak as speak_turn
from pytest_agentspeed.simulator.anthropic_wire import content_text
from pytest_agentspeed.simulator.paths import SessionPath
from pytest_agentspeed.simulator.trajectory import (
    PlannedTurn,
    closing_turn,
    load_trajectory,
    plan_trajectory,
)
from pytest_agentspeed.tasks import TASK_FILE, Task, load_task

GENERIC_REPLY = (
    "I don't recognise this task, so I can't work on it here. "
    "(The simulated endpoint plays trajectories only for the tasks it was given.)"
)


@dataclass(frozen=True, slots=True)
class Script:
    """What the simulated model does for one task."""

    task_id: str
    check_command: str
    turns: tuple[PlannedTurn, ...]
    #: The workspace's starting files (relative POSIX paths).
    files: frozenset[str] = frozenset()


class TaskLibrary:
    """Tasks by instruction; trajectories built on first use."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._scripts: dict[str, Script] = {}
        #: Each instruction with its whitespace runs made single spaces.
        self._needles: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: Task) -> None:
        """Know ``task`` (a later task with the same instruction replaces it)."""
        key = task.instruction.strip()
        self._tasks[key] = task
        self._needles[key] = _flat(key)
        self._scripts.pop(key, None)

    def add_dirs(self, roots: Iterable[Path]) -> list[TaskError]:
        """Load every ``agenttask.toml`` under the roots; returns the tasks that failed to load."""
        errors = []
        for root in roots:
            files = [root] if root.name == TASK_FILE else sorted(root.rglob(TASK_FILE))
            for path in files:
                try:
                    self.add(load_task(path))
                except TaskError as exc:
                    errors.append(exc)
        return errors

    def add_json(self, data: Mapping[str, Any]) -> Task:
        """Know a task sent over HTTP by the plugin (Python-defined tasks).

        :raises TaskError: when the document is not a valid task.
        """
        try:
            task = Task(
                id=str(data["id"]),
                instruction=str(data["instruction"]),
                workspace=dict(data.get("workspace") or {}),
                check=str(data["check"]),
                solution=None if data.get("solution") is None else dict(data["solution"]),
            )
        except KeyError as exc:
            raise TaskError(None, str(exc.args[0]), "missing (required)") from None
        self.add(task)
        return task

    def match(self, text: str) -> Script | None:
        """The script of the task whose instruction ``text`` contains (the longest, when
        several do), if any. Runs of whitespace compare equal: agents re-wrap and trim."""
        best: str | None = None
        flat = _flat(text)
        for key, needle in self._needles.items():
            if needle in flat and (best is None or len(key) > len(best)):
                best = key
        if best is None:
            return None
        script = self._scripts.get(best)
        if script is None:
            script = self._scripts[best] = _script(self._tasks[best])
        return script


def choose_turn(
    script: Script | None,
    messages: Sequence[Mapping[str, Any]],
    toolset: Toolset = BUILTIN,
    path: SessionPath | None = None,
) -> PlannedTurn:
    """The model's next turn for this conversation, in the agent's tools.

    The position in the plan is the number of assistant messages: a side request (its own
    short conversation) and a retried request (mini-swe-agent drops a reply it could not
    parse) neither skip nor repeat a step.

    :param path: the session's own path through the plan (``paths=varied``); ``None``: the
        plan as it is.
    """
    if script is None:
        return speak_turn(PlannedTurn(text=GENERIC_REPLY), toolset)
    turns = script.turns if path is None else path.turns
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    check = _last_check_result(script.check_command, messages)
    before = turns[:turn]
    if turn >= len(turns):
        planned = closing_turn(check_passed=check)
    else:
        planned = turns[turn]
        if not planned.tool_uses and check is False:
            # The plan assumed its edits would work; an honest model reports the failure.
            planned = closing_turn(check_passed=False)
    if path is not None:
        planned = path.worded(planned, turn)
    return speak_turn(planned, toolset, before=before, existing=script.files)


def _script(task: Task) -> Script:
    if task.trajectory is not None:
        turns = load_trajectory(task.trajectory)
    else:
        solution = task.solution_files()
        if solution:
            turns = plan_trajectory(
                instruction=task.instruction,
                check_command=task.check.command,
                workspace=task.workspace_files(),
                solution=solution,
            )
        else:
            turns = (PlannedTurn(text=GENERIC_REPLY),)
    return Script(task.id, task.check.command, turns, frozenset(task.workspace_files()))


def _last_check_result(check_command: str, messages: Sequence[Mapping[str, Any]]) -> bool | None:
    """Whether the check, when the model last ran it, exited 0 (``None``: not run yet).

    The check is found in any of the agent's tools (:func:`~pytest_agentspeed.simulator.
    agent_tools.is_check_call`), its result read back by the tool it ran in.
    """
    check_ids: dict[str, str] = {}
    result: bool | None = None
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                name, tool_input = str(block.get("name")), block.get("input")
                if isinstance(tool_input, dict) and is_check_call(name, tool_input, check_command):
                    check_ids[str(block.get("id"))] = name
            elif block.get("type") == "tool_result" and block.get("tool_use_id") in check_ids:
                name = check_ids[str(block.get("tool_use_id"))]
                result = check_passed(name, content_text(block.get("content")))
    return result


def first_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the first user message (string or text blocks)."""
    for message in messages:
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of every user message (tool results left out: they hold the workspace's
    files, not the agent's words), one message a line."""
    return "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "user")


def _flat(text: str) -> str:
    return " ".join(text.split())


def report_load_errors(errors: Sequence[TaskError]) -> None:
    """Tell the operator which tasks the simulator will not recognise."""
    for error in errors:
        print(f"agentspeed sim: skipping task: {error}", file=sys.stderr)
