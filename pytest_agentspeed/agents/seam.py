"""What an agent is given and what it returns: the types of the agent seam.

Kept apart from the registry (``agents/__init__.py``) so that the agents themselves import
these types without importing the registry that makes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from pytest_agentspeed.clients import ModelClient
    from pytest_agentspeed.records import TurnRecord
    from pytest_agentspeed.tasks import Task

Stopped = Literal["end_turn", "max_turns", "timeout", "error", "no_model", "no_solution"]

#: Called after each turn: (turns done, output tokens so far, agent seconds so far).
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxiedEndpoint:
    """How an agent in another process will reach the session's endpoint.

    Such an agent talks to a recording proxy in front of the endpoint, which times each turn as
    the in-process client does. The proxy is not built yet: nothing sets this today, and an
    agent that needs it must refuse to run without it (``stopped="no_model"``).
    """

    #: The proxy's base URL, as the agent's SDK takes it.
    base_url: str
    #: Variables to set in the agent's environment (base URL, key) so that it uses the proxy.
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentContext:
    """Everything an agent is given for one session."""

    task: Task
    #: A fresh copy of the task's ``workspace/``: the agent works here and nowhere else.
    workspace: Path
    #: ``<task>[<endpoint>-r<repeat>]``; sent with each request so the endpoint can tell
    #: sessions apart (the simulator keys its prompt cache by it).
    session_id: str
    #: The session's endpoint as a measured in-process client; ``None`` for an agent that does
    #: not need an endpoint.
    client: ModelClient | None = None
    #: The session's endpoint for an agent in another process (see :class:`ProxiedEndpoint`).
    proxy: ProxiedEndpoint | None = None
    #: Called after each turn, for the live progress line; ``None`` when nobody listens.
    progress: Progress | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRun:
    """What an agent did in one session."""

    turns: tuple[TurnRecord, ...]
    stopped: Stopped
    #: Why it stopped early (endpoint error, missing solution), never a secret.
    error: str | None = None


class Agent(Protocol):
    """Something that works on a task."""

    #: The name ``--agentspeed-agent`` selects it by.
    name: str
    #: Whether it talks to an endpoint (``False``: it runs once per task, without one).
    needs_endpoint: bool
    #: Whether an item passes when the check *fails* (``nop``: a check that passes on the
    #: untouched workspace makes the task worthless).
    expects_check_to_fail: bool

    def run(self, context: AgentContext) -> AgentRun:
        """Work on ``context.task`` in ``context.workspace``; the check runs afterwards."""
        ...
