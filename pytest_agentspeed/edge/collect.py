"""Collection: every ``agenttask.toml`` becomes test items, one per (endpoint, repeat).

Item id: ``<task id>[<endpoint name>-r<repeat>]``. Agents that need no endpoint (``oracle``,
``nop``) give one item per task, ``<task id>[<agent>]``. Items are reordered by slot so the
arms of a comparison interleave (A B A B ...), which cancels endpoint drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentspeed.edge.keys import BENCH_KEY
from pytest_agentspeed.errors import ConfigError, TaskError
from pytest_agentspeed.run.judge import SessionFailed
from pytest_agentspeed.run.slots import Slot
from pytest_agentspeed.tasks import TASK_FILE, Task, load_task

if TYPE_CHECKING:
    from pytest_agentspeed.replay.recording import Recording
    from pytest_agentspeed.run.runner import SessionResult


SLOT_KEY = pytest.StashKey[tuple[str, Slot]]()


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

    def collect(self) -> Iterator[pytest.Item]:
        task = load_task(self.path)
        bench = self.config.stash[BENCH_KEY]
        bench.know_task_dir(self.path.parent)
        for slot in bench.slots:
            item = TaskItem.from_parent(self, name=f"{task.id}[{slot.label}]", task=task, slot=slot)
            item.stash[SLOT_KEY] = (str(self.path), slot)
            yield item

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str:
        if isinstance(excinfo.value, TaskError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class SessionItem(pytest.Item):
    """An item that is one session: a failed one shows why in one message, not a traceback."""

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> str:
        if isinstance(excinfo.value, SessionFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


class TaskItem(SessionItem):
    """One session of one task on one endpoint."""

    def __init__(self, *, task: Task, slot: Slot, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.slot = slot

    def runtest(self) -> None:
        result = run_item(self, self.task, self.slot)
        self.config.stash[BENCH_KEY].judge(self.task, self.slot, result)


def run_item(item: pytest.Item, task: Task, slot: Slot) -> SessionResult:
    """Run one session for a test item on the run's bench; its numbers go on the item (JUnit
    ``<property>`` elements, through ``user_properties``)."""
    from pytest_agentspeed.outputs.exporters import JUnitProperties

    bench = item.config.stash[BENCH_KEY]
    try:
        return bench.run_task(
            task, slot, name=item.nodeid, exporters=[JUnitProperties(item.user_properties)]
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


class Recordings(pytest.File):
    """The recordings a run replays (``--agentspeed-replay PATH``): one item per recording
    and slot, ``replay[<recording>][<endpoint>-r<repeat>]``, ordered like tasks' items."""

    def collect(self) -> Iterator[pytest.Item]:
        bench = self.config.stash[BENCH_KEY]
        for recording in bench.recordings:
            for slot in bench.slots:
                name = f"replay[{recording.name}][{slot.label}]"
                item = ReplayItem.from_parent(self, name=name, recording=recording, slot=slot)
                item.stash[SLOT_KEY] = (recording.name, slot)
                yield item


class ReplayItem(SessionItem):
    """One replay of one recorded session on one endpoint."""

    def __init__(self, *, recording: Recording, slot: Slot, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recording = recording
        self.slot = slot

    def runtest(self) -> None:
        from pytest_agentspeed.outputs.exporters import JUnitProperties

        bench = self.config.stash[BENCH_KEY]
        try:
            result = bench.run_replay(
                self.recording,
                self.slot,
                name=self.nodeid,
                exporters=[JUnitProperties(self.user_properties)],
            )
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        if result.record.outcome != "passed":
            raise SessionFailed(f"{self.name}: endpoint error: {result.record.error}")
