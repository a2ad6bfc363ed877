"""The package's own agents, endpoint kinds and exporters, as implementations of its hooks.

Registered as the plugin ``agentspeed-builtins`` when the hooks are added; each is
``trylast``, so a plugin's implementations run before them. :func:`load_extensions` reads the
agents and endpoint kinds the hooks give (:func:`unload_extensions` forgets them when the run
ends), and :class:`PluginHooks` is how the run's
:class:`~pytest_agentspeed.run.bench.Bench` reaches the other hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from pytest_agentspeed.agents import AgentSpec
    from pytest_agentspeed.endpoints.kinds import EndpointKind
    from pytest_agentspeed.outputs.exporters import Exporter
    from pytest_agentspeed.records import RunRecord, SessionRecord
    from pytest_agentspeed.run.outputs import OutputRequest

_T = TypeVar("_T")

#: The name the built-in implementations are registered under.
BUILTINS_PLUGIN = "agentspeed-builtins"


class BuiltinHooks:
    """The package's implementations of the ``pytest_agentspeed_*`` hooks."""

    @pytest.hookimpl(trylast=True)
    def pytest_agentspeed_agents(self) -> Sequence[AgentSpec]:
        from pytest_agentspeed.agents import BUILT_IN_AGENTS

        return BUILT_IN_AGENTS

    @pytest.hookimpl(trylast=True)
    def pytest_agentspeed_endpoint_kinds(self) -> Sequence[EndpointKind]:
        from pytest_agentspeed.endpoints.kinds import BUILT_IN_KINDS

        return BUILT_IN_KINDS

    @pytest.hookimpl(trylast=True)
    def pytest_agentspeed_exporters(self, request: OutputRequest) -> Sequence[Exporter]:
        from pytest_agentspeed.run.outputs import builtin_exporters

        return builtin_exporters(request)


def load_extensions(config: pytest.Config) -> None:
    """Make the agents and endpoint kinds the hooks give the ones this run knows.

    pluggy returns the implementations' results last-called last: the built-in ones (``trylast``)
    at the end, the plugins' before them, the plugin registered last first. Read backwards,
    the built-in ones come first and the plugins' follow in the order they were registered.

    :raises pytest.UsageError: when a plugin gives a name or prefix the package's own have,
        or a prefix twice.
    """
    from pytest_agentspeed.agents import use_agents
    from pytest_agentspeed.endpoints.kinds import use_endpoint_kinds
    from pytest_agentspeed.errors import ConfigError

    hook = config.hook
    try:
        use_agents(_flat(hook.pytest_agentspeed_agents(config=config)))
        use_endpoint_kinds(_flat(hook.pytest_agentspeed_endpoint_kinds(config=config)))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def unload_extensions() -> None:
    """Back to the package's own agents and endpoint kinds, when the run ends: a plugin's stay
    with the pytest run that loaded them (an in-process ``pytester`` run's do not outlive
    it)."""
    from pytest_agentspeed.agents import BUILT_IN_AGENTS, use_agents
    from pytest_agentspeed.endpoints.kinds import BUILT_IN_KINDS, use_endpoint_kinds

    use_agents(BUILT_IN_AGENTS)
    use_endpoint_kinds(BUILT_IN_KINDS)


class PluginHooks:
    """The bench's :class:`~pytest_agentspeed.run.outputs.RunHooks` in a pytest run: the
    ``pytest_agentspeed_*`` hooks of every plugin and ``conftest.py``, this package's too."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def exporters(self, request: OutputRequest) -> Sequence[Exporter]:
        return _flat(
            self.config.hook.pytest_agentspeed_exporters(config=self.config, request=request)
        )

    def session_finished(self, record: SessionRecord) -> None:
        self.config.hook.pytest_agentspeed_session_finished(config=self.config, record=record)

    def run_finished(self, run: RunRecord) -> None:
        self.config.hook.pytest_agentspeed_run_finished(
            config=self.config, run=run, comparisons=run.comparisons
        )


def _flat(results: list[Sequence[_T]]) -> list[_T]:
    """The hook's results, read backwards (see :func:`load_extensions`), as one list."""
    return [item for result in reversed(results) for item in result]
