"""Collection: every ``agenttask.toml`` becomes test items, one per (endpoint, repeat).

Item id: ``<task id>[<endpoint name>-r<repeat>]``. Agents that need no endpoint (``oracle``,
``nop``) give one item per task, ``<task id>[<agent>]``. Items are reordered by slot so the
arms of a comparison interleave (A B A B ...), which cancels endpoint drift.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentspeed.errors import TaskError
from pytest_agentspeed.tasks import TASK_FILE, Task, load_task

if TYPE_CHECKING:
    from pytest_agentspeed.edge.hooks import AgentSpeedSession
    from pytest_agentspeed.run.runner import SessionResult


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a session sits in the run: which endpoint, which repeat."""

    #: Endpoint name, or the agent's name for agents that need no endpoint.
    endpoint: str
    repeat: int
    #: Position of the endpoint among the run's endpoints (the baseline is 0).
    arm: int

    @property
    def label(self) -> str:
        return f"{self.endpoint}-r{self.repeat}" if self.arm >= 0 else self.endpoint


SLOT_KEY = pytest.StashKey[tuple[str, Slot]]()


def slots(session: AgentSpeedSession) -> list[Slot]:
    """The slots every task (or fixture test) is run in."""
    settings = session.settings
    if not session.agent.needs_endpoint:
        return [Slot(settings.agent, 0, -1)]
    return [
        Slot(ep.name, r, i)
        for r in range(settings.repeat)
        for i, ep in enumerate(settings.endpoints)
    ]


def order_items(items: list[pytest.Item]) -> None:
    """Sort agent items by (repeat, task, arm) in place; other items keep their places."""
    positions = [i for i, item in enumerate(items) if SLOT_KEY in item.stash]
    if not positions:
        return
    agent_items = [items[i] for i in positions]
    first_seen: dict[str, int] = {}
    for item in agent_items:
        first_seen.setdefault(item.stash[SLOT_KEY][0], len(first_seen))

    def key(item: pytest.Item) -> tuple[int, int, int]:
        group, slot = item.stash[SLOT_KEY]
        return (slot.repeat, first_seen[group], slot.arm)

    for pos, item in zip(positions, sorted(agent_items, key=key), strict=True):
        items[pos] = item


def inside_task_dir(path: Path, cache: dict[Path, bool]) -> bool:
    """Whether ``path`` lies strictly inside a directory holding ``agenttask.toml``.

    The workspace and solution of a task hold tests that fail by design; they are the agent's
    material, not the user's test suite.
    """
    if path.name == TASK_FILE:
        path = path.parent
    for parent in path.parents:
        known = cache.get(parent)
        if known is None:
            known = cache[parent] = (parent / TASK_FILE).is_file()
        if known:
            return True
    return False


class TaskFile(pytest.File):
    """An ``agenttask.toml``: collects one item per slot."""

    session_plugin: AgentSpeedSession

    def collect(self) -> Iterator[pytest.Item]:
        task = load_task(self.path)
        self.session_plugin.know_task_dir(self.path.parent)
        for slot in slots(self.session_plugin):
            item = TaskItem.from_parent(self, name=f"{task.id}[{slot.label}]", task=task, slot=slot)
            item.stash[SLOT_KEY] = (str(self.path), slot)
            yield item

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str:
        if isinstance(excinfo.value, TaskError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class SessionFailed(Exception):
    """A session did not pass; the message says why and what the check printed."""


class TaskItem(pytest.Item):
    """One session of one task on one endpoint."""

    def __init__(self, *, task: Task, slot: Slot, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.slot = slot

    def runtest(self) -> None:
        plugin: AgentSpeedSession = self.parent.session_plugin  # type: ignore[union-attr]
        result = plugin.run_task(self.task, self.slot, self)
        plugin.judge(self.task, self.slot, result)

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str:
        if isinstance(excinfo.value, SessionFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


def failure_message(task: Task, slot: Slot, result: SessionResult, reasons: Sequence[str]) -> str:
    """What the user reads when a session did not pass."""
    record = result.record
    lines = [f"task {task.id!r} on {slot.label}: " + "; ".join(reasons)]
    lines.append(
        f"{len(record.turns)} turns, {record.usage.output_tokens:,} output tokens, "
        f"{record.wall_s:.2f} s of agent time"
    )
    if result.check_output.strip():
        lines += ["", f"check `{task.check.command}` printed (tail):", result.check_output.rstrip()]
    if result.workspace is not None:
        lines += ["", f"workspace kept for inspection: {result.workspace}"]
    return "\n".join(lines)
