"""Running the simulated endpoint in its own process, for the plugin.

The server runs in a child process rather than a thread: the agent loop parses every stream
event in Python, and a server thread in the same interpreter would wait for the GIL (up to the
5 ms switch interval) before each write, skewing exactly the timings being measured.

The parent binds the socket on 127.0.0.1 and hands its descriptor to the child, so the port is
known before the child starts and there is no race for it; requests sent before the child is
ready wait in the listen backlog.

The child dies with its parent, however the parent ends (``kill -9`` included): it holds the
read end of a pipe whose only write end the parent keeps, and exits when the read returns end
of file, which the kernel delivers as the parent's descriptors close. Unlike
``PR_SET_PDEATHSIG`` this is portable and does not depend on which thread started the child.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.processes import scrubbed_environment
from pytest_agentspeed.simulator.config import ServerConfig

#: How long the child may take to import and start serving.
START_TIMEOUT_S = 60.0


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (never another interface)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class SimulatorHandle:
    """A running simulated-endpoint server, wherever it runs: its URLs and its control API.

    Under ``pytest -n N`` the xdist controller starts the server and each worker talks to it
    through a handle, so every session of the run shares one server (and its load).

    :param url: the server's root URL.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def base_url(self, mount_key: str) -> str:
        """Base URL of one simulated endpoint (what an SDK's ``base_url`` takes)."""
        return f"{self.url}/e/{mount_key}" if mount_key else self.url

    def register_task(self, task: dict[str, Any]) -> None:
        """Teach the running server a task defined in Python."""
        httpx2.post(f"{self.url}/_agentspeed/tasks", json=task, timeout=30.0).raise_for_status()

    def register_task_dirs(self, dirs: list[str]) -> None:
        """Have the running server load the task files under ``dirs``."""
        httpx2.post(
            f"{self.url}/_agentspeed/task-dirs", json={"dirs": dirs}, timeout=60.0
        ).raise_for_status()

    def schedule(self) -> list[dict[str, Any]]:
        """What the server decided and did for each response so far."""
        response = httpx2.get(f"{self.url}/_agentspeed/schedule", timeout=30.0)
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()
        return data

    def stop(self) -> None:
        """Nothing to stop: the process that started the server stops it."""


class SimulatorProcess(SimulatorHandle):
    """A simulated-endpoint server process; start it, use its URLs, stop it."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__("http://127.0.0.1:0")
        self.config = config
        self._proc: subprocess.Popen[bytes] | None = None
        #: The write end of the child's lifeline pipe (see the module's docstring).
        self._lifeline: int | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="agentspeed-sim-")
        self._log = Path(self._dir.name) / "server.log"

    def start(self) -> None:
        """Start the child and wait until it answers.

        :raises ConfigError: when it does not come up; the message carries its log's tail.
        """
        sock = bind(0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config_path = Path(self._dir.name) / "config.json"
        config_path.write_text(json.dumps(self.config.to_json()), encoding="utf-8")
        # Both ends are non-inheritable (PEP 446): only the child gets the read end, and no
        # other process this one starts holds the write end open past its death.
        lifeline_read, self._lifeline = os.pipe()
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest_agentspeed.simulator.server",
                    "--config",
                    str(config_path),
                    "--fd",
                    str(sock.fileno()),
                    "--parent-fd",
                    str(lifeline_read),
                ],
                pass_fds=(sock.fileno(), lifeline_read),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The server needs no credentials; do not hand them to another process.
                env=scrubbed_environment(),
            )
        sock.close()
        os.close(lifeline_read)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                httpx2.get(f"{self.url}/_agentspeed/health", timeout=5.0).raise_for_status()
                return
            except httpx2.HTTPError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise ConfigError(
                        f"the simulated endpoint did not start; its log says:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self._log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self) -> None:
        """Stop the child (politely, then not) and remove its files."""
        proc, self._proc = self._proc, None
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            os.close(lifeline)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._dir.cleanup()
