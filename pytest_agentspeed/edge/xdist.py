"""pytest-xdist glue: workers measure, the controller decides.

:class:`XdistHooks` is registered on the controller only. Workers hand their sessions over in
``workeroutput`` (see :mod:`pytest_agentspeed.edge.hooks`); the controller gathers them into
its :class:`~pytest_agentspeed.run.bench.Bench`, which writes the outputs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentspeed.edge.console import say
from pytest_agentspeed.errors import ConfigError

if TYPE_CHECKING:
    from pytest_agentspeed.run.bench import Bench
    from pytest_agentspeed.run.slots import Slot


class XdistHooks:
    """Registered on the xdist controller only: counts workers, serves them one simulated
    endpoint, and gathers their sessions.

    One server for all workers, so sessions that run at the same time load the same endpoint
    as they would a real one (and the schedule log has the whole run). The controller starts
    it once the first worker has collected, and only if agent tasks on a simulated endpoint
    were collected; workers wait for its URL in a file the controller names in their
    ``workerinput``.
    """

    def __init__(self, config: pytest.Config, bench: Bench) -> None:
        self.config = config
        self.bench = bench
        self.nodes = 0
        self._announced = False
        self._dir = tempfile.TemporaryDirectory(prefix="agentspeed-xdist-")
        self.sim_file = Path(self._dir.name) / "sim.json"

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        self.nodes += 1
        self.bench.concurrency = self.nodes
        node.workerinput["agentspeed_run_id"] = self.bench.run_id
        node.workerinput["agentspeed_sim_file"] = str(self.sim_file)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self._announced:
            # Every worker collects the same items (xdist checks it); the first one speaks.
            self._announced = True
            count = sum(1 for nodeid in ids if self._slot_of(nodeid))
            if count:
                say(self.config, self.bench.header_line(count))
        if self.sim_file.exists():
            return
        shared: dict[str, Any] = {"url": None}
        if self._needs_simulator(ids):
            try:
                sim = self.bench.pool.serve_simulator()
            except ConfigError as exc:
                shared = {"error": str(exc)}
            else:
                shared = {"url": sim.url}
        from pytest_agentspeed.runfile import write_json_atomic

        write_json_atomic(self.sim_file, shared)

    def _needs_simulator(self, ids: list[str]) -> bool:
        bench = self.bench
        if not bench.agent.needs_endpoint:
            return False
        return any(
            slot is not None and bench.endpoints[slot.endpoint].simulated
            for slot in map(self._slot_of, ids)
        )

    @functools.cached_property
    def _slot_pattern(self) -> re.Pattern[str]:
        # A slot's label is the item's parameter id, alone or joined to others' with "-".
        labels = "|".join(re.escape(s.label) for s in self.bench.slots)
        return re.compile(rf"\[(?:.*-)?({labels})(?:-.*)?\]$")

    def _slot_of(self, nodeid: str) -> Slot | None:
        """The slot an item's node id names, if it is an agent session."""
        match = self._slot_pattern.search(nodeid)
        if match is None:
            return None
        return next(s for s in self.bench.slots if s.label == match.group(1))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        from pytest_agentspeed.records import SessionRecord

        output = getattr(node, "workeroutput", {})
        if output.get("agentspeed_refused"):
            self.bench.refused = output["agentspeed_refused"]
        data = output.get("agentspeed")
        if data:
            self.bench.add_sessions([SessionRecord.from_json(s) for s in json.loads(data)])
        elif error is not None:
            self._from_spool(node)

    def _from_spool(self, node: Any) -> None:
        """A worker that crashed handed nothing over; its spool has what it finished."""
        from pytest_agentspeed.errors import RunFileError
        from pytest_agentspeed.run.spool import read_spool, spool_path

        worker = node.workerinput.get("workerid", "")
        path = spool_path(self.bench.settings.rootdir, self.bench.run_id, worker)
        if path.exists():
            with contextlib.suppress(RunFileError):
                self.bench.add_sessions(read_spool(path).sessions)

    def close(self) -> None:
        self._dir.cleanup()


def is_xdist_worker(config: pytest.Config) -> bool:
    """The one place that knows how to tell an xdist worker."""
    return hasattr(config, "workerinput")


def worker_input(config: pytest.Config, key: str) -> str | None:
    """A value the xdist controller handed this worker; ``None`` outside a worker."""
    value = getattr(config, "workerinput", {}).get(key)
    return None if value is None else str(value)
