"""A task's ``trajectory.toml``: the model turns the simulated endpoint plays, scripted.

A task may script the model's side of the conversation instead of having the simulator plan it
from ``workspace/`` and ``solution/``. The file is part of the task's definition, so it is
read here, with the task files: :func:`~pytest_agentspeed.tasks.load_task` checks it when the
task is collected (a broken script is a collection error naming the file and key, not an HTTP
500 mid-run), and the simulator serves what :func:`load_trajectory` returns.

The turn types (:class:`PlannedTurn`, :class:`ToolUse`) are defined here, the lowest place
both the task loader and the simulator's planner (:mod:`pytest_agentspeed.simulator.trajectory`)
can use; so is :func:`closing_turn`, the final summary a script that ends on tool calls gets.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pytest_agentspeed.errors import TaskError

__all__ = ["TOOL_NAMES", "PlannedTurn", "ToolUse", "closing_turn", "load_trajectory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUse:
    """One tool call of the agent's model.

    :param name: one of :data:`TOOL_NAMES`.
    :param input: the tool's input, JSON-serialisable.
    """

    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedTurn:
    """One assistant reply of a planned trajectory.

    :param reasoning: the model's private reasoning for this turn (served as a thinking block
        when the request enables thinking, else prepended to the text).
    :param text: the visible text.
    :param tool_uses: the tool calls of the turn; empty means this is the final turn
        (``end_turn``).
    """

    reasoning: str = ""
    text: str = ""
    tool_uses: tuple[ToolUse, ...] = ()


#: Per tool: its input fields, each mapped to whether it is required.
_TOOL_FIELDS: Final[Mapping[str, Mapping[str, bool]]] = {
    "list_files": {"path": False},
    "read_file": {"path": True},
    "write_file": {"path": True, "content": True},
    "edit_file": {"path": True, "old_text": True, "new_text": True},
    "run_command": {"command": True, "timeout_s": False},
}

#: The names of the agent's tools (a fixed contract with the agent harness).
TOOL_NAMES: Final[tuple[str, ...]] = tuple(_TOOL_FIELDS)


def closing_turn(*, check_passed: bool | None) -> PlannedTurn:
    """A final summary for a conversation that goes past its plan or whose check did not pass.

    :param check_passed: ``True`` gives a brief "done" summary, ``False`` an honest account that
        the check still fails, ``None`` (result unknown) a neutral summary.
    """
    if check_passed is True:
        return PlannedTurn(
            text="The changes are in place and the check passes, so the task is done."
        )
    if check_passed is False:
        return PlannedTurn(
            reasoning="The check still reports failures after my changes. Rather than keep "
            "guessing, I should report what I did and what is left.",
            text="The check still fails. I read the relevant code, changed the files I "
            "believed were responsible and re-ran the check, but the remaining failures need a "
            "closer look. I've left my changes in place so you can review them.",
        )
    return PlannedTurn(
        text="I've made the changes the task asks for. I could not confirm the result of the "
        "check, so please run it to verify."
    )


_TURN_KEYS: Final = ("reasoning", "text", "tool")
_TOOL_KEYS: Final = ("name", "input")


def _unknown(path: Path, where: str, table: Mapping[str, Any], accepted: Sequence[str]) -> None:
    for key in table:
        if key not in accepted:
            raise TaskError(path, f"{where}{key}", f"unknown key; accepted: {', '.join(accepted)}")


def _string(path: Path, key: str, value: object, *, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TaskError(path, key, f"must be a string, not {_toml_type(value)}")
    if non_empty and not value:
        raise TaskError(path, key, "must not be empty")
    return value


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _tables(path: Path, key: str, value: object, form: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TaskError(path, key, f"must be an array of tables ({form}), not {_toml_type(value)}")
    return value


def _tool(path: Path, key: str, table: Mapping[str, Any]) -> ToolUse:
    _unknown(path, f"{key}.", table, _TOOL_KEYS)
    if "name" not in table:
        raise TaskError(path, f"{key}.name", f"is required; one of: {', '.join(TOOL_NAMES)}")
    name = _string(path, f"{key}.name", table["name"])
    if name not in _TOOL_FIELDS:
        raise TaskError(
            path, f"{key}.name", f"unknown tool {name!r}; accepted: {', '.join(TOOL_NAMES)}"
        )
    raw = table.get("input", {})
    if not isinstance(raw, dict):
        raise TaskError(path, f"{key}.input", f"must be a table, not {_toml_type(raw)}")
    fields = _TOOL_FIELDS[name]
    _unknown(path, f"{key}.input.", raw, tuple(fields))
    for field, required in fields.items():
        field_key = f"{key}.input.{field}"
        if field not in raw:
            if required:
                raise TaskError(path, field_key, f"is required for {name}")
            continue
        value = raw[field]
        if field == "timeout_s":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise TaskError(path, field_key, "must be a positive number of seconds")
        else:
            _string(path, field_key, value, non_empty=field in ("path", "old_text", "command"))
    return ToolUse(name=name, input=dict(raw))


def load_trajectory(path: Path) -> tuple[PlannedTurn, ...]:
    """Load an explicit trajectory from a ``trajectory.toml``.

    The file holds one ``[[turn]]`` table per assistant reply, each with optional ``reasoning``
    and ``text`` strings and ``[[turn.tool]]`` tables (``name`` among :data:`TOOL_NAMES` and
    ``input``, a table with that tool's fields). When the last turn calls tools,
    ``closing_turn(check_passed=None)`` is appended so the trajectory ends with a final turn.

    :raises TaskError: if the file cannot be read, is not valid TOML or is not a valid
        trajectory; the error names the file and the key, e.g. ``turn[2].tool[0].input.path``.
    """
    try:
        raw_bytes = path.read_bytes()
    except OSError as error:
        raise TaskError(path, None, f"cannot be read: {error.strerror or error}") from error
    try:
        document = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise TaskError(path, None, f"not valid TOML: not UTF-8 ({error.reason})") from error
    except tomllib.TOMLDecodeError as error:
        raise TaskError(path, None, f"not valid TOML: {error}") from error

    _unknown(path, "", document, ("turn",))
    if "turn" not in document:
        raise TaskError(path, "turn", "at least one [[turn]] is required")
    turn_tables = _tables(path, "turn", document["turn"], "[[turn]]")
    if not turn_tables:
        raise TaskError(path, "turn", "at least one [[turn]] is required")

    turns: list[PlannedTurn] = []
    for index, table in enumerate(turn_tables):
        key = f"turn[{index}]"
        _unknown(path, f"{key}.", table, _TURN_KEYS)
        reasoning = _string(path, f"{key}.reasoning", table.get("reasoning", ""))
        text = _string(path, f"{key}.text", table.get("text", ""))
        tool_tables = _tables(path, f"{key}.tool", table.get("tool", []), "[[turn.tool]]")
        uses = tuple(
            _tool(path, f"{key}.tool[{number}]", tool) for number, tool in enumerate(tool_tables)
        )
        if not (reasoning or text or uses):
            raise TaskError(path, key, "a turn needs text, reasoning or at least one tool")
        turns.append(PlannedTurn(reasoning=reasoning, text=text, tool_uses=uses))
    if turns[-1].tool_uses:
        turns.append(closing_turn(check_passed=None))
    return tuple(turns)
