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
  task's ``solution/`` over the workspace, or do nothing;
* ``claude-code``, ``codex`` and ``mini-swe-agent`` (:mod:`~pytest_agentspeed.agents.presets`):
  programs run once per session through the recording proxy
  (:class:`~pytest_agentspeed.agents.external.ExternalAgent`).

Agents defined in ``[tool.agentspeed.agents.NAME]`` (:mod:`~pytest_agentspeed.agents.defined`)
are registered when the settings are read.

Names come from one registry: :func:`register_agent` adds one (a plugin or a ``conftest.py``
may), :func:`agent_names` lists them (``--agentspeed-agent`` and ``[tool.agentspeed] agent``
accept these), :func:`make_agent` builds one. This module is imported when pytest declares its
options, so it stays light: each factory imports its agent's module when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pytest_agentspeed.agents.seam import (
    Agent,
    AgentContext,
    AgentRun,
    Progress,
    ProxiedEndpoint,
    SessionTimeline,
    Stopped,
)
from pytest_agentspeed.errors import ConfigError

__all__ = [
    "Agent",
    "AgentContext",
    "AgentFactory",
    "AgentRun",
    "Progress",
    "ProxiedEndpoint",
    "SessionTimeline",
    "Stopped",
    "agent_choices",
    "agent_names",
    "agent_wire",
    "check_agent_name",
    "make_agent",
    "register_agent",
]

#: Makes a new agent; called once per pytest run (and by :func:`make_agent`).
AgentFactory = Callable[[], Agent]


@dataclass(frozen=True, slots=True)
class _Registered:
    factory: AgentFactory
    description: str | None
    #: The wire a program behind the recording proxy speaks; ``None`` for agents in this
    #: process, whose clients follow each endpoint's wire.
    wire: str | None = None


# The one list of agent names. A module-level registry, like the codecs registry: names must
# be known before pytest reads its settings, when no plugin object exists yet to hold them.
_REGISTRY: dict[str, _Registered] = {}


def register_agent(
    name: str, factory: AgentFactory, *, description: str | None = None, wire: str | None = None
) -> None:
    """Make ``--agentspeed-agent=NAME`` (and ``[tool.agentspeed] agent``) select an agent.

    Register from a plugin module or a ``conftest.py``: the name is checked when the settings
    are read, after pytest has loaded both.

    :param factory: makes the agent; import heavy modules inside it, not at registration.
    :param description: a few words for ``--help``, e.g. ``"does nothing"``.
    :param wire: for an agent that is a program reaching the endpoint through the recording
        proxy, the wire it speaks (``anthropic``, ``openai``, ``responses``): simulated
        endpoints whose spec names no wire speak it. Known without making the agent.
    Registering a name again replaces the earlier registration: a ``conftest.py`` is imported
    again by every in-process pytest run (``pytester``), and must not fail the second time.

    :raises ConfigError: when the name is empty or one of the agents that come with the package.
    """
    if not name or not name.strip():
        raise ConfigError(f"agent name {name!r}: expected a non-empty name")
    if name in _BUILT_IN:
        raise ConfigError(f"agent {name!r} comes with agentspeed and cannot be replaced")
    _REGISTRY[name] = _Registered(factory, description, wire)


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


def agent_wire(name: str) -> str | None:
    """The wire the agent registered as ``name`` speaks, if it is a program behind the proxy
    (see :func:`register_agent`); ``None`` for other agents and unknown names."""
    entry = _REGISTRY.get(name)
    return None if entry is None else entry.wire


def check_agent_name(value: object) -> str:
    """``value`` if it is a registered agent's name.

    :raises ConfigError: naming the value and the accepted names.
    """
    if not isinstance(value, str) or value not in _REGISTRY:
        raise ConfigError(f"unknown agent {value!r}; accepted: {', '.join(agent_names())}")
    return value


def make_agent(name: str, *, sandbox: Literal["bwrap"] | None = None) -> Agent:
    """A new agent by its registered name.

    :param sandbox: ``[tool.agentspeed] sandbox``: confines an agent that runs a program
        (:meth:`~pytest_agentspeed.agents.external.ExternalAgent.confined`); the others run in
        the benchmark's process and are left as they are.
    :raises ConfigError: for a name that is not registered, listing the names that are.
    """
    agent = _REGISTRY[check_agent_name(name)].factory()
    if sandbox is not None:
        from pytest_agentspeed.agents.external import ExternalAgent

        if isinstance(agent, ExternalAgent):
            return agent.confined(sandbox)
    return agent


def _builtin() -> Agent:
    from pytest_agentspeed.agents.builtin import BuiltinAgent

    return BuiltinAgent()


def _oracle() -> Agent:
    from pytest_agentspeed.agents.fixed import oracle

    return oracle()


def _nop() -> Agent:
    from pytest_agentspeed.agents.fixed import nop

    return nop()


def _preset(name: str) -> Callable[[], Agent]:
    def make() -> Agent:
        from pytest_agentspeed.agents.presets import preset

        return preset(name)

    return make


_REGISTRY.update(
    builtin=_Registered(_builtin, None),
    oracle=_Registered(_oracle, "lays solution/ over the workspace"),
    nop=_Registered(_nop, "does nothing"),
    # Descriptions written here, not read from the presets: the registry stays light.
    **{
        "claude-code": _Registered(
            _preset("claude-code"), "runs claude, anthropic wire", "anthropic"
        ),
        "codex": _Registered(_preset("codex"), "runs codex exec, responses wire", "responses"),
        "mini-swe-agent": _Registered(
            _preset("mini-swe-agent"), "runs mini, openai wire", "openai"
        ),
    },
)
#: The agents that come with the package: a plugin may add agents, not replace these.
_BUILT_IN = frozenset(_REGISTRY)
