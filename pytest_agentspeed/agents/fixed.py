"""Agents that need no model: they act on the workspace once, without turns.

* ``oracle`` lays the task's ``solution/`` over the workspace (every task must pass with it).
* ``nop`` does nothing (every task's check must fail with it; its items pass when it does).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_agentspeed.agents.seam import AgentContext, AgentRun
from pytest_agentspeed.tasks import Task


class FixedAgent:
    """An agent that needs no model: it acts on the workspace once, without turns.

    :param name: what ``--agentspeed-agent`` calls it.
    :param act: does the work; returns why it could not (a message), or ``None``.
    :param expects_check_to_fail: see :attr:`~pytest_agentspeed.agents.Agent.expects_check_to_fail`.
    """

    needs_endpoint = False

    def __init__(
        self,
        name: str,
        act: Callable[[Task, Path], str | None],
        *,
        expects_check_to_fail: bool = False,
    ) -> None:
        self.name = name
        self._act = act
        self.expects_check_to_fail = expects_check_to_fail

    def run(self, context: AgentContext) -> AgentRun:
        """Act on the workspace; ``no_solution`` when the action could not be done."""
        error = self._act(context.task, context.workspace)
        if error is not None:
            return AgentRun(turns=(), stopped="no_solution", error=error)
        return AgentRun(turns=(), stopped="end_turn")


def oracle() -> FixedAgent:
    """The oracle: every task must pass with its solution laid over the workspace."""
    return FixedAgent("oracle", _lay_solution)


def nop() -> FixedAgent:
    """nop: every task must fail when nothing is done."""
    return FixedAgent("nop", _do_nothing, expects_check_to_fail=True)


def _lay_solution(task: Task, workspace: Path) -> str | None:
    return None if task.apply_solution(workspace) else f"task {task.id!r} has no solution/"


def _do_nothing(task: Task, workspace: Path) -> None:
    return None
