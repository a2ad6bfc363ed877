"""Shared fixtures: real simulated-endpoint servers on loopback, and paths."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
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

#: The bytecode cache this run made for its child processes (see ``pytest_configure``), and
#: the ``PYTHONDONTWRITEBYTECODE`` it found, to put back.
_BYTECODE_CACHE = pytest.StashKey[tuple[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """Give every Python process the suite starts one shared bytecode cache of its own.

    The suite starts hundreds of Python processes: pytest in ``pytester`` subprocesses, the
    simulator's server, each example task's check (``python -m pytest`` in a workspace). Under
    ``PYTHONDONTWRITEBYTECODE`` (set on the CI image) each of them compiled this package, and
    pytest re-rewrote the assertions of every module of the installed pytest plugins
    (hypothesis, anyio, xdist, this package): about a second of CPU per pytest process. With
    ``PYTHONPYCACHEPREFIX`` the bytecode goes to one directory outside every source tree, so a
    project or workspace under test still gets no ``__pycache__``, and each module is compiled
    once per run. Set in the controlling process before xdist starts its workers, which inherit
    it; removed with the run.
    """
    if os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # the developer's own cache, or the controller's (this is an xdist worker)
    cache = tempfile.mkdtemp(prefix="agentspeed-tests-pycache-")
    config.stash[_BYTECODE_CACHE] = (cache, os.environ.pop("PYTHONDONTWRITEBYTECODE", None))
    os.environ["PYTHONPYCACHEPREFIX"] = cache


def pytest_unconfigure(config: pytest.Config) -> None:
    made = config.stash.get(_BYTECODE_CACHE, None)
    if made is None:
        return
    cache, dont_write = made
    del os.environ["PYTHONPYCACHEPREFIX"]
    if dont_write is not None:
        os.environ["PYTHONDONTWRITEBYTECODE"] = dont_write
    shutil.rmtree(cache, ignore_errors=True)


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
