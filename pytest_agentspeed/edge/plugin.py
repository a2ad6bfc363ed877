"""The pytest entry point (``pytest11``): declares options and wires the session object.

Nothing here holds state or logic. ``pytest_configure`` reads the options once into
:class:`~pytest_agentspeed.edge.options.Settings` and registers an
:class:`~pytest_agentspeed.edge.hooks.AgentSpeedSession`, which stays inert unless agent tasks
are collected.
"""

from __future__ import annotations

import pytest

from pytest_agentspeed.edge.fixture import _agentspeed_slot, agentspeed
from pytest_agentspeed.edge.options import Settings, add_run_options

__all__ = ["_agentspeed_slot", "agentspeed"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentspeed", "agentspeed: speed of coding agents")
    add_run_options(group.addoption)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_agentspeed.edge.hooks import (
        SESSION_KEY,
        AgentSpeedSession,
        XdistHooks,
        is_xdist_worker,
    )

    settings = Settings.from_config(config)
    session = AgentSpeedSession(config, settings)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "agentspeed-session")
    if config.pluginmanager.hasplugin("xdist") and not is_xdist_worker(config):
        config.pluginmanager.register(XdistHooks(session), "agentspeed-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_agentspeed.edge.hooks import SESSION_KEY

    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        config.pluginmanager.unregister(session)
        del config.stash[SESSION_KEY]
    xdist_hooks = config.pluginmanager.get_plugin("agentspeed-xdist")
    if xdist_hooks is not None:
        xdist_hooks.close()
        config.pluginmanager.unregister(xdist_hooks)
