"""What an agent is given and what it returns: the types of the agent seam.

Kept apart from the registry (``agents/__init__.py``) so that the agents themselves import
these types without importing the registry that makes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from pytest_agentspeed.clients import ModelClient
    from pytest_agentspeed.exchanges import Exchange
    from pytest_agentspeed.records import ProcessRecord, SideRequestRecord, TurnRecord, Usage
    from pytest_agentspeed.sent import SentLog
    from pytest_agentspeed.tasks import Task

Stopped = Literal["end_turn", "max_turns", "timeout", "error", "no_model", "no_solution"]

#: Called after each turn: (turns done, output tokens so far, agent seconds so far).
Progress = Callable[[int, int, float], None]


class ProxiedEndpoint(Protocol):
    """The session's endpoint as an agent in another process reaches it: through the recording
    proxy (:mod:`pytest_agentspeed.proxy`), under a base URL of the session's own.

    The agent's process gets :attr:`base_url` and :attr:`placeholder_key`, never the endpoint's
    real key: the proxy puts that on the requests it forwards upstream. After the agent has
    exited, :meth:`exchanges` tells what it asked and how long each answer took.
    """

    #: The session's base URL at the proxy, without a trailing slash and without ``/v1``
    #: (``http://127.0.0.1:PORT/s/TOKEN``): Anthropic SDKs take it as it is, OpenAI ones
    #: with ``/v1`` appended.
    base_url: str
    #: The wire of the endpoint under test: ``anthropic`` or ``openai``.
    api: str
    #: The model name the endpoint is configured with.
    model: str
    #: The key to give the agent: a fixed placeholder, worthless outside the proxy.
    placeholder_key: str
    #: Called with each exchange as it ends (from the proxy's thread), for live progress;
    #: ``None``: nobody listens.
    on_exchange: Callable[[Exchange], None] | None

    def exchanges(self) -> tuple[Exchange, ...]:
        """The requests the session made through the proxy so far, in the order they were
        received."""
        ...


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
    #: Set by an agent measured from outside, whose turns can overlap and whose session has
    #: time outside its turns (start-up, its own time, wind-down): the session's timeline
    #: (:mod:`pytest_agentspeed.agents.timeline`). ``None``: the run core adds up the turns.
    timeline: SessionTimeline | None = None
    #: An external agent's process: exit status, start-up and wind-down, its output's tail.
    process: ProcessRecord | None = None
    #: What the session sent, byte for byte: the material of its recording
    #: (``--agentspeed-record``, :mod:`pytest_agentspeed.replay`). ``None`` for an agent that
    #: sends nothing (``oracle``, ``nop``).
    sent: SentLog | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionTimeline:
    """A session's totals from its timeline, where every instant of its wall time is counted
    once, whatever overlaps (``docs/agents.md``)."""

    #: Process start to process exit.
    wall_s: float
    #: Phase name -> seconds; they sum to ``wall_s``.
    phases_s: dict[str, float]
    #: The main turns' usage plus the side requests'.
    usage: Usage
    side_requests: tuple[SideRequestRecord, ...] = ()


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
