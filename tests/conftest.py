"""Shared fixtures: real simulated-endpoint servers on loopback, and paths."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_agentspeed.simulator import MountConfig, ServerConfig
from pytest_agentspeed.simulator.process import SimulatorProcess

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SUITE = ROOT / "example_suite"

StartSim = Callable[..., SimulatorProcess]

# Variables of the machine running the tests that change what a pytest run prints or where the
# plugin writes: colour codes would break matching on output, and a CI host's step summary is
# not the tests' to append to. Tests that need one set it themselves.
HOST_VARIABLES = ("PY_COLORS", "FORCE_COLOR", "NO_COLOR", "GITHUB_STEP_SUMMARY")


@pytest.fixture(autouse=True)
def _plain_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in HOST_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start real simulator processes; all are stopped after the test."""
    started: list[SimulatorProcess] = []

    def start(*mounts: MountConfig, task_dirs: tuple[Path, ...] = ()) -> SimulatorProcess:
        # The tests' own servers log each request's conversation digest (``context_sha256``).
        sim = SimulatorProcess(
            ServerConfig(
                mounts=mounts, task_dirs=tuple(str(p) for p in task_dirs), log_context=True
            )
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


@contextmanager
def standalone_sim(profile: str, tasks: Path = EXAMPLE_SUITE) -> Iterator[str]:
    """``agentspeed sim`` as a user starts it (port 0, time scale 0.01); yields its URL."""
    args = ["--profile", profile, "--port", "0", "--tasks", str(tasks), "--time-scale", "0.01"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_agentspeed", "sim", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, line
    try:
        yield match.group(0)
    finally:
        proc.terminate()
        proc.stdout.close()
        # uvicorn re-raises the signal after its graceful shutdown.
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)


def agentspeed(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the ``agentspeed`` command as a user would (this checkout's package, a new process)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_agentspeed", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
