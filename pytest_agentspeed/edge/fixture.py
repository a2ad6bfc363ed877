"""The ``agentspeed`` fixture: run tasks written in Python on this test's endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_agentspeed.records import SessionRecord
    from pytest_agentspeed.run.slots import Slot
    from pytest_agentspeed.tasks import Task


class AgentSpeed:
    """Runs agent sessions for one test, on the endpoint and repeat its id names.

    A test that requests the ``agentspeed`` fixture is parametrized over the run's endpoints
    and repeats, like a task file; every session it runs is recorded in the run.
    """

    def __init__(self, slot: Slot, item: pytest.Item) -> None:
        self._slot = slot
        self._item = item

    @property
    def endpoint(self) -> str:
        """Name of the endpoint this test runs on."""
        return self._slot.endpoint

    @property
    def repeat(self) -> int:
        """Which repeat this is (0-based)."""
        return self._slot.repeat

    def run(self, task: Task) -> SessionRecord:
        """Run the agent on ``task`` and return the session's record.

        The session is recorded whatever its outcome; check ``session.passed`` (or
        ``session.outcome``) to decide the test.
        """
        from pytest_agentspeed.edge.collect import run_item

        return run_item(self._item, task, self._slot).record


@pytest.fixture
def _agentspeed_slot() -> Slot:
    """Replaced by the plugin's parametrization; reaching this body is a bug."""
    raise RuntimeError("the agentspeed fixture was not parametrized by the plugin")


@pytest.fixture
def agentspeed(request: pytest.FixtureRequest, _agentspeed_slot: Slot) -> AgentSpeed:
    """Run agent coding tasks defined in Python; see :class:`AgentSpeed`."""
    return AgentSpeed(_agentspeed_slot, request.node)
