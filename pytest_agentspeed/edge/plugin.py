"""The pytest entry point (``pytest11``): declares options and wires the run's objects.

Nothing here holds state or logic. ``pytest_configure`` reads the options once into
:class:`~pytest_agentspeed.settings.Settings`, makes the run's
:class:`~pytest_agentspeed.run.bench.Bench` and registers the
:class:`~pytest_agentspeed.edge.hooks.AgentSpeedHooks` that drive it, which stay inert unless
agent tasks are collected (and, on an xdist controller, the
:class:`~pytest_agentspeed.edge.xdist.XdistHooks`).
"""

from __future__ import annotations

import pytest

from pytest_agentspeed.edge.fixture import _agentspeed_slot, agentspeed
from pytest_agentspeed.edge.options import add_run_options, settings_from_config

__all__ = ["_agentspeed_slot", "agentspeed"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_agentspeed.edge import hookspecs
    from pytest_agentspeed.edge.builtin_hooks import BUILTINS_PLUGIN, BuiltinHooks

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.register(BuiltinHooks(), BUILTINS_PLUGIN)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentspeed", "agentspeed: speed of coding agents")
    add_run_options(group.addoption)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_agentspeed.edge.builtin_hooks import PluginHooks, load_extensions
    from pytest_agentspeed.edge.console import TerminalConsole
    from pytest_agentspeed.edge.hooks import AgentSpeedHooks
    from pytest_agentspeed.edge.keys import BENCH_KEY
    from pytest_agentspeed.edge.xdist import XdistHooks, is_xdist_worker, worker_input
    from pytest_agentspeed.errors import ConfigError
    from pytest_agentspeed.run.bench import Bench

    # Before the options are read: they name agents and endpoint kinds the plugins add.
    load_extensions(config)
    try:
        bench = Bench(
            settings_from_config(config),
            TerminalConsole(config),
            run_id=worker_input(config, "agentspeed_run_id"),
            process=worker_input(config, "workerid") or "main",
            shared_sim_file=worker_input(config, "agentspeed_sim_file"),
            hooks=PluginHooks(config),
        )
    except ConfigError as exc:
        # The recordings to replay cannot be read, or cannot be replayed on an endpoint.
        raise pytest.UsageError(str(exc)) from None
    config.stash[BENCH_KEY] = bench
    config.pluginmanager.register(AgentSpeedHooks(config, bench), "agentspeed-session")
    if config.pluginmanager.hasplugin("xdist") and not is_xdist_worker(config):
        config.pluginmanager.register(XdistHooks(config, bench), "agentspeed-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_agentspeed.edge.builtin_hooks import unload_extensions
    from pytest_agentspeed.edge.keys import BENCH_KEY

    unload_extensions()
    hooks = config.pluginmanager.get_plugin("agentspeed-session")
    if hooks is not None:
        config.pluginmanager.unregister(hooks)
        del config.stash[BENCH_KEY]
    xdist_hooks = config.pluginmanager.get_plugin("agentspeed-xdist")
    if xdist_hooks is not None:
        xdist_hooks.close()
        config.pluginmanager.unregister(xdist_hooks)
