"""The run's endpoints: one client each, and the server behind the simulated ones.

The server of the simulated endpoints (one mount per endpoint) is started on first use, or,
under xdist, shared: the controller serves it (:meth:`EndpointPool.serve_simulator`) and the
workers wait for its URL in a file the controller names. The simulator is reached only through
:mod:`pytest_agentspeed.simulator`'s ``start`` / ``connect``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_agentspeed.endpoints import Endpoint, api_key
from pytest_agentspeed.errors import ConfigError

if TYPE_CHECKING:
    from pytest_agentspeed.clients import ModelClient
    from pytest_agentspeed.proxy import ProxySession, RecordingProxy
    from pytest_agentspeed.simulator import SimulatorHandle
    from pytest_agentspeed.tasks import Task

#: How long an xdist worker waits for the controller's simulated endpoint to come up.
SHARED_SIM_WAIT_S = 120.0


class EndpointPool:
    """One client per endpoint and the simulated endpoints' server, made when first needed.

    :param time_scale: the run's time scale, for simulated endpoints that set none of their
        own.
    :param shared_sim_file: under xdist, the file through which the controller tells workers
        its server's URL.
    """

    def __init__(
        self, endpoints: Sequence[Endpoint], *, time_scale: float, shared_sim_file: str | None
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.time_scale = time_scale
        self.shared_sim_file = shared_sim_file
        self._task_dirs: list[Path] = []
        self._clients: dict[str, ModelClient] = {}
        self._sim: SimulatorHandle | None = None
        self._proxy: RecordingProxy | None = None
        self._registered_tasks: set[str] = set()

    def know_task_dir(self, path: Path) -> None:
        """A task's directory: the simulated endpoint will know its tasks."""
        self._task_dirs.append(path)

    def client(self, endpoint: Endpoint) -> ModelClient:
        """The endpoint's client, made on first use (starting the simulated endpoint's
        server if it serves this endpoint).

        :raises ConfigError: when the endpoint's key is missing or the server cannot be had.
        """
        client = self._clients.get(endpoint.name)
        if client is None:
            client = self._clients[endpoint.name] = self._new_client(endpoint)
        return client

    def new_client(self, endpoint: Endpoint) -> ModelClient:
        """A client of its own for ``endpoint``, new at every call, on the pool's one
        simulated endpoint (started on first use); the caller closes it. Sessions sent in
        parallel each need their own: a client marks the log of the one turn it is sending.

        :raises ConfigError: when the endpoint's key is missing or the server cannot be had.
        """
        return self._new_client(endpoint)

    def _new_client(self, endpoint: Endpoint) -> ModelClient:
        from pytest_agentspeed.clients.factory import wire_client
        from pytest_agentspeed.endpoints.kinds import endpoint_kind

        endpoint = endpoint.with_time_scale(self.time_scale)
        kind = None if endpoint.kind is None else endpoint_kind(endpoint.kind)
        if kind is not None and kind.client is not None:
            client: ModelClient = kind.client(endpoint)
            return client
        base_url = endpoint.base_url
        if endpoint.sim is not None:
            base_url = self.simulator().base_url(_mount_key(endpoint))
            if endpoint.api in ("openai", "responses"):
                base_url = f"{base_url}/v1"
        return wire_client(endpoint, base_url=base_url)

    def open_proxy(self, endpoint: Endpoint, workspace: Path) -> ProxySession:
        """A session's way to ``endpoint`` through this process's recording proxy (started on
        first use), for an agent in another process working in ``workspace``.

        The proxy puts the endpoint's real key and extra headers on what it forwards; a
        simulated endpoint is also told the session's workspace, so that the paths in the tool
        calls it plays are the agent's (``x-agentspeed-workspace``).

        :raises ConfigError: when the endpoint's key is missing or the server cannot be had.
        """
        from pytest_agentspeed.proxy import RecordingProxy, Upstream

        headers = {str(k): str(v) for k, v in (endpoint.options.get("headers") or {}).items()}
        if endpoint.sim is not None:
            base_url = self.simulator().base_url(_mount_key(endpoint))
            headers["x-agentspeed-workspace"] = str(workspace)
        else:
            assert endpoint.base_url is not None
            base_url = endpoint.base_url.rstrip("/")
            # The agent's SDK asks for /v1/chat/completions (/v1/responses) itself, so the base
            # goes without it.
            if endpoint.api in ("openai", "responses") and base_url.endswith("/v1"):
                base_url = base_url[: -len("/v1")]
        if self._proxy is None:
            self._proxy = RecordingProxy()
        return self._proxy.open_session(
            Upstream(
                base_url=base_url,
                api=endpoint.api,
                model=endpoint.model,
                key=api_key(endpoint),
                headers=headers,
            )
        )

    def simulator(self) -> SimulatorHandle:
        """The server of the run's simulated endpoints: the xdist controller's, or one this
        process starts."""
        if self._sim is None:
            url = self._shared_simulator_url()
            if url is not None:
                from pytest_agentspeed import simulator

                handle = simulator.connect(url)
                if self._task_dirs:
                    handle.register_task_dirs([str(p) for p in self._task_dirs])
                self._sim = handle
            else:
                self._sim = self._start_simulator(self._task_dirs)
        return self._sim

    def _shared_simulator_url(self) -> str | None:
        """The controller's server, under xdist; ``None`` when this process runs its own."""
        if self.shared_sim_file is None:
            return None
        path = Path(self.shared_sim_file)
        deadline = time.monotonic() + SHARED_SIM_WAIT_S
        while not path.exists():
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"the xdist controller's simulated endpoint did not come up in "
                    f"{SHARED_SIM_WAIT_S:g} s"
                )
            time.sleep(0.05)
        shared = json.loads(path.read_text(encoding="utf-8"))
        if shared.get("error"):
            raise ConfigError(str(shared["error"]))
        url = shared.get("url")
        return str(url) if url else None

    def serve_simulator(self) -> SimulatorHandle:
        """Start the run's simulated endpoint here for other processes (the xdist workers,
        which send their task directories when they first use it); stopped with the run."""
        self._sim = self._start_simulator([])
        return self._sim

    def _start_simulator(self, task_dirs: list[Path]) -> SimulatorHandle:
        """Start the server of the run's simulated endpoints (one mount per endpoint)."""
        from pytest_agentspeed import simulator

        mounts = tuple(
            simulator.MountConfig(
                key=_mount_key(e),
                profile=e.sim.profile,
                time_scale=e.sim.time_scale or self.time_scale,
                seed=e.sim.seed,
                jitter=e.sim.jitter,
                faults=dict(e.sim.faults),
                speed=e.sim.speed,
                paths=e.sim.paths,
            )
            for e in self.endpoints
            if e.sim is not None
        )
        return simulator.start(
            simulator.ServerConfig(mounts=mounts, task_dirs=tuple(str(p) for p in task_dirs))
        )

    def register(self, task: Task) -> None:
        """Tell the simulated endpoint about a task it did not find on disk (a Python task),
        once."""
        if task.id in self._registered_tasks:
            return
        self.simulator().register_task(
            {
                "id": task.id,
                "instruction": task.instruction,
                "check": task.check.command,
                "workspace": task.workspace_files(),
                "solution": task.solution_files() if task.solution is not None else None,
            }
        )
        self._registered_tasks.add(task.id)

    def close(self) -> None:
        """Close the clients and the proxy, and stop the server, if this process started one."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
        if self._sim is not None:
            self._sim.stop()
            self._sim = None


def _mount_key(endpoint: Endpoint) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", endpoint.name).strip("-")
