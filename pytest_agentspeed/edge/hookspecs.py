"""The hooks through which a plugin or a ``conftest.py`` extends agentspeed.

Added to pytest with ``pytest_addhooks``, like pytest-xdist's ``newhooks.py``. Implement them
in an installed plugin (a ``pytest11`` entry point) or in a ``conftest.py`` that pytest loads
before it configures the run (the one next to ``pyproject.toml``, or one of the test paths
given). The package's own agents, endpoint kinds and exporters are the ``trylast``
implementations of the same hooks (:mod:`pytest_agentspeed.edge.builtin_hooks`). Examples of
each: ``docs/plugins.md``.

Each hook may take any of its arguments, or none. What the types are:

* :class:`pytest_agentspeed.agents.AgentSpec`: a name, a factory, a description and, for a
  program behind the recording proxy, its wire;
* :class:`pytest_agentspeed.endpoints.kinds.EndpointKind`: a spec prefix, its parser and
  optionally a client factory;
* :class:`pytest_agentspeed.outputs.exporters.Exporter`: ``session_finished(record)`` and
  ``run_finished(run)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_agentspeed.agents import AgentSpec
    from pytest_agentspeed.endpoints.kinds import EndpointKind
    from pytest_agentspeed.outputs.exporters import Exporter
    from pytest_agentspeed.records import Comparison, RunRecord, SessionRecord
    from pytest_agentspeed.run.outputs import OutputRequest

hookspec = pytest.hookspec


@hookspec
def pytest_agentspeed_agents(config: pytest.Config) -> Sequence[AgentSpec]:
    """Agents to offer to ``--agentspeed-agent`` (and ``[tool.agentspeed] agent``).

    Called once, when pytest configures the run, before the options are read. Return
    :class:`~pytest_agentspeed.agents.AgentSpec` objects; the factory is called only when the
    agent is chosen, so import its module inside it. An agent is anything with ``name``,
    ``needs_endpoint``, ``expects_check_to_fail`` and ``run(context) -> AgentRun``; a program
    run per session is an :class:`~pytest_agentspeed.agents.external.ExternalAgent`.

    A name that one of the package's agents has is refused (a usage error); two plugins giving
    one name: the one registered later wins.
    """
    raise NotImplementedError


@hookspec
def pytest_agentspeed_endpoint_kinds(config: pytest.Config) -> Sequence[EndpointKind]:
    """Endpoint kinds: spec prefixes ``--agentspeed-endpoint`` (and ``endpoint`` in
    ``[tool.agentspeed]`` or a named endpoint's ``spec``) understands.

    Called once, when pytest configures the run, before the endpoints are parsed. Return
    :class:`~pytest_agentspeed.endpoints.kinds.EndpointKind` objects. A prefix that one of the
    package's kinds has, or that two plugins give, is refused (a usage error).
    """
    raise NotImplementedError


@hookspec
def pytest_agentspeed_exporters(
    config: pytest.Config, request: OutputRequest
) -> Sequence[Exporter]:
    """Exporters to hand the finished run to, besides the package's own.

    Called once, in the process that ends the run (an xdist controller), when every session is
    in. ``request`` holds the run's settings, the stored baseline it was compared with, and
    the name it is saved under. The package's exporters are written first (the run file before
    any other), then the plugins', in the order the plugins were registered. Each exporter's
    ``session_finished`` is called with every session, in order, then ``run_finished`` with
    the run; an ``OSError`` from either is an output error: the exporters after it are not
    called, the run's sessions stay in the spool, and the run fails.
    """
    raise NotImplementedError


@hookspec
def pytest_agentspeed_session_finished(config: pytest.Config, record: SessionRecord) -> None:
    """A session ended and is kept (in its run's spool): ``record`` is what the run file
    will hold of it.

    Called in the process that ran the session (an xdist worker), before the session's test
    item reports, for every session: passed, failed or not run.
    """


@hookspec
def pytest_agentspeed_run_finished(
    config: pytest.Config, run: RunRecord, comparisons: Sequence[Comparison]
) -> None:
    """The run ended: ``run`` is the run file's content, ``comparisons`` the gate's verdicts
    (A/B arms against the first endpoint, and against a stored baseline).

    Called once, in the process that ends the run, after the outputs are written (or failed
    to be).
    """
