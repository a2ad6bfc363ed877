"""The simulated LLM endpoint: plans and serves realistic model trajectories.

The rest of the package reaches the simulator only through this module: the configuration
types, and :func:`start` / :func:`connect` for a server process. Importing it is cheap; the
server (starlette, uvicorn) is imported by the child process that runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_agentspeed.simulator.config import MountConfig, ServerConfig

if TYPE_CHECKING:
    from pytest_agentspeed.simulator.process import SimulatorHandle

__all__ = ["MountConfig", "ServerConfig", "connect", "start"]


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
