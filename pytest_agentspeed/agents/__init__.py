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

Names come from one registry. In a pytest run it is filled, when pytest configures the run,
from the ``pytest_agentspeed_agents`` hook (:mod:`pytest_agentspeed.edge.hookspecs`): the
agents that come with the package are that hook's ``trylast`` implementation
(:data:`BUILT_IN_AGENTS`), a plugin or a ``conftest.py`` returns its own :class:`AgentSpec`
from it. :func:`register_agent` adds one directly (a plugin module at import). Outside pytest
(the command line) the registry holds the built-in agents. :func:`agent_names` lists the names
(``--agentspeed-agent`` and ``[tool.agentspeed] agent`` accept these), :func:`make_agent` builds
one. This module is imported when pytest declares its options, so it stays light: each factory
imports its agent's module when called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    "BUILT_IN_AGENTS",
    "Agent",
    "AgentContext",
    "AgentFactory",
    "AgentRun",
    "AgentSpec",
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
    "use_agents",
]

#: Makes a new agent; called once per pytest run (and by :func:`make_agent`).
AgentFactory = Callable[[], Agent]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """An agent to offer under a name: what ``pytest_agentspeed_agents`` returns."""

    #: What ``--agentspeed-agent`` and ``[tool.agentspeed] agent`` say to select it.
    name: str
    #: Makes the agent; import heavy modules inside it, not where the spec is made.
    factory: AgentFactory
    #: A few words for ``--help``, e.g. ``"does nothing"``.
    description: str | None = None
    #: For a program reaching the endpoint through the recording proxy, the wire it speaks
    #: (``anthropic``, ``openai``, ``responses``): simulated endpoints whose spec names no wire
    #: speak it. ``None`` for agents in this process, whose clients follow each endpoint's wire.
    wire: str | None = None


# The one list of agent names. A module-level registry, like the codecs registry: names must
# be known before pytest reads its settings, when no plugin object exists yet to hold them.
_REGISTRY: dict[str, AgentSpec] = {}
# What register_agent added: kept when the hooks' agents replace the rest.
_REGISTERED: dict[str, AgentSpec] = {}


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
    spec = AgentSpec(name, factory, description, wire)
    _check_new(spec)
    _REGISTRY[name] = _REGISTERED[name] = spec


def use_agents(specs: Sequence[AgentSpec]) -> None:
    """Make ``specs`` the registered agents, with those :func:`register_agent` added after
    them: what the ``pytest_agentspeed_agents`` hook returned, the built-in ones first.

    :raises ConfigError: when a spec other than the built-in one takes a built-in agent's name,
        or a name is empty.
    """
    for spec in specs:
        if spec not in BUILT_IN_AGENTS:
            _check_new(spec)
    _REGISTRY.clear()
    _REGISTRY.update({s.name: s for s in specs})
    _REGISTRY.update(_REGISTERED)


def _check_new(spec: AgentSpec) -> None:
    name: object = spec.name  # a plugin's, so checked as it comes
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"agent name {name!r}: expected a non-empty name")
    if name in _BUILT_IN:
        raise ConfigError(f"agent {name!r} comes with agentspeed and cannot be replaced")


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


#: The agents that come with the package, as the built-in implementation of the
#: ``pytest_agentspeed_agents`` hook returns them. Descriptions are written here, not read from
#: the presets: the registry stays light.
BUILT_IN_AGENTS: tuple[AgentSpec, ...] = (
    AgentSpec("builtin", _builtin),
    AgentSpec("oracle", _oracle, "lays solution/ over the workspace"),
    AgentSpec("nop", _nop, "does nothing"),
    AgentSpec("claude-code", _preset("claude-code"), "runs claude, anthropic wire", "anthropic"),
    AgentSpec("codex", _preset("codex"), "runs codex exec, responses wire", "responses"),
    AgentSpec("mini-swe-agent", _preset("mini-swe-agent"), "runs mini, openai wire", "openai"),
)
#: A plugin may add agents, not replace these.
_BUILT_IN = frozenset(spec.name for spec in BUILT_IN_AGENTS)
# Outside pytest, and before pytest calls the hook, the registry holds the built-in agents.
_REGISTRY.update({spec.name: spec for spec in BUILT_IN_AGENTS})
