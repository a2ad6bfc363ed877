"""The simulated LLM endpoint: plans and serves realistic model trajectories.

The rest of the package reaches the simulator only through this module (and the plain data of
:mod:`~pytest_agentspeed.simulator.config`), and the simulator imports nothing of the plugin's
core: it is plain Python that the plugin, the ``agentspeed sim`` command and tests drive the
same way. What it offers:

* the configuration types :class:`MountConfig` and :class:`ServerConfig`;
* what an endpoint spec may name: :func:`profile_names`, :data:`FAULT_KINDS` and
  :func:`fault_rates`;
* :func:`start` / :func:`connect` for a server in a child process (the plugin), and
  :func:`bind` / :func:`serve` for one in this process (``agentspeed sim``);
* :func:`context_digest`, the digest of a request's conversation that the schedule log
  records for every request (``context_sha256``), and the names of the ``paths`` option
  (:data:`PATHS`).

Importing it is cheap (the standard library only): the server (starlette, uvicorn) and the
HTTP client (httpx2) are imported by the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_agentspeed.simulator.config import MAX_SPEED, PATHS, MountConfig, Paths, ServerConfig
from pytest_agentspeed.simulator.context import context_digest
from pytest_agentspeed.simulator.faults import FAULT_KINDS, fault_rates

if TYPE_CHECKING:
    import socket

    # Re-exported for annotations: ``from pytest_agentspeed.simulator import SimulatorHandle``
    # under ``TYPE_CHECKING``.
    from pytest_agentspeed.simulator.process import SimulatorHandle as SimulatorHandle

__all__ = [
    "FAULT_KINDS",
    "MAX_SPEED",
    "PATHS",
    "MountConfig",
    "Paths",
    "ServerConfig",
    "bind",
    "connect",
    "context_digest",
    "fault_rates",
    "profile_names",
    "serve",
    "start",
]


def profile_names() -> tuple[str, ...]:
    """The names of the latency profiles, in the order they are defined."""
    from pytest_agentspeed.simulator.profiles import PROFILES

    return tuple(PROFILES)


def start(config: ServerConfig) -> SimulatorHandle:
    """Start a server in a child process (it exits with this process) and wait until it
    answers."""
    from pytest_agentspeed.simulator.process import SimulatorProcess

    sim = SimulatorProcess(config)
    sim.start()
    return sim


def connect(url: str) -> SimulatorHandle:
    """A handle on a server another process started (an xdist controller's)."""
    from pytest_agentspeed.simulator.process import SimulatorHandle

    return SimulatorHandle(url)


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (never another interface), for :func:`serve`.

    :raises OSError: the port cannot be listened on.
    """
    from pytest_agentspeed.simulator.process import bind

    return bind(port)


def serve(config: ServerConfig, sock: socket.socket) -> None:
    """Serve in this process, on a socket from :func:`bind`, until interrupted."""
    from pytest_agentspeed.simulator.server import serve

    serve(config, sock)
