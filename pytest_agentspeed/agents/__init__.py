"""The agent seam: what an agent is given, what it returns, and the registry of agent names.

An agent is anything with ``run(context) -> AgentRun``. The :class:`AgentContext` carries the
task, the workspace, the session id, a progress callback and access to the endpoint; the agent
does the work in the workspace and returns the turns it took (built with
:func:`pytest_agentspeed.records.turn_record`, whatever the agent). It knows nothing of pytest,
metrics or reports. The run core (:func:`pytest_agentspeed.run.runner.run_session`) builds the
context, runs the agent, then runs the task's check.

The agents that come with the package:

* ``builtin`` (:mod:`~pytest_agentspeed.agents.builtin`): the agent loop, on a measured model
  client;
* ``oracle`` and ``nop`` (:mod:`~pytest_agentspeed.agents.fixed`): no model; they lay the
  task's ``solution/`` over the workspace, or do nothing.

Names come from one registry: :func:`register_agent` adds one (a plugin or a ``conftest.py``
may), :func:`agent_names` lists them (``--agentspeed-agent`` and ``[tool.agentspeed] agent``
accept these), :func:`make_agent` builds one. This module is imported when pytest declares its
options, so it stays light: each factory imports its agent's module when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pytest_agentspeed.errors import ConfigError

if TYPE_CHECKING:
    from pytest_agentspeed.clients import ModelClient
    from pytest_agentspeed.records import TurnRecord
    from pytest_agentspeed.tasks import Task

#: Why a session's agent stopped. ``error``, ``no_model`` and ``no_solution`` end it as an
#: ``error`` without running the check; ``timeout`` runs the check but counts as a timeout.
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


#: Makes a new agent; called once per pytest run (and by :func:`make_agent`).
AgentFactory = Callable[[], Agent]


@dataclass(frozen=True, slots=True)
class _Registered:
    factory: AgentFactory
    description: str | None


# The one list of agent names. A module-level registry, like the codecs registry: names must
# be known before pytest reads its settings, when no plugin object exists yet to hold them.
_REGISTRY: dict[str, _Registered] = {}


def register_agent(name: str, factory: AgentFactory, *, description: str | None = None) -> None:
    """Make ``--agentspeed-agent=NAME`` (and ``[tool.agentspeed] agent``) select an agent.

    Register from a plugin module or a ``conftest.py``: the name is checked when the settings
    are read, after pytest has loaded both.

    :param factory: makes the agent; import heavy modules inside it, not at registration.
    :param description: a few words for ``--help``, e.g. ``"does nothing"``.
    :raises ConfigError: when the name is empty or already registered.
    """
    if not name or not name.strip():
        raise ConfigError(f"agent name {name!r}: expected a non-empty name")
    if name in _REGISTRY:
        raise ConfigError(f"agent {name!r} is already registered")
    _REGISTRY[name] = _Registered(factory, description)


def agent_names() -> tuple[str, ...]:
    """The names ``--agentspeed-agent`` accepts, in the order they were registered."""
    return tuple(_REGISTRY)


def agent_choices() -> str:
    """The registered names with their descriptions, for ``--help``:
    ``builtin, oracle (lays solution/ over the workspace), nop (does nothing)``."""
    return ", ".join(
        name if entry.description is None else f"{name} ({entry.description})"
        for name, entry in _REGISTRY.items()
    )


def check_agent_name(value: object) -> str:
    """``value`` if it is a registered agent's name.

    :raises ConfigError: naming the value and the accepted names.
    """
    if not isinstance(value, str) or value not in _REGISTRY:
        raise ConfigError(f"unknown agent {value!r}; accepted: {', '.join(agent_names())}")
    return value


def make_agent(name: str) -> Agent:
    """A new agent by its registered name.

    :raises ConfigError: for a name that is not registered, listing the names that are.
    """
    return _REGISTRY[check_agent_name(name)].factory()


def _builtin() -> Agent:
    from pytest_agentspeed.agents.builtin import BuiltinAgent

    return BuiltinAgent()


def _oracle() -> Agent:
    from pytest_agentspeed.agents.fixed import oracle

    return oracle()


def _nop() -> Agent:
    from pytest_agentspeed.agents.fixed import nop

    return nop()


register_agent("builtin", _builtin)
register_agent("oracle", _oracle, description="lays solution/ over the workspace")
register_agent("nop", _nop, description="does nothing")
