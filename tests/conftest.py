"""Shared fixtures: real simulated-endpoint servers on loopback, and paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.simulator.server import MountConfig, ServerConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SUITE = ROOT / "example_suite"

StartSim = Callable[..., SimulatorProcess]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start real simulator processes; all are stopped after the test."""
    started: list[SimulatorProcess] = []

    def start(*mounts: MountConfig, task_dirs: tuple[Path, ...] = ()) -> SimulatorProcess:
        sim = SimulatorProcess(
            ServerConfig(mounts=mounts, task_dirs=tuple(str(p) for p in task_dirs))
        )
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="session")
def example_suite() -> Path:
    return EXAMPLE_SUITE
