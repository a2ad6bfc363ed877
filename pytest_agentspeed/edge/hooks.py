"""The plugin's state for one pytest run, registered as an object plugin.

It is created for every run but stays inert until an agent task is collected: no server, no
output, no files (task checks often run pytest themselves, and those runs must not notice the
plugin). Once tasks are collected it reorders items by slot, starts the simulated endpoint on
first use, runs sessions, and at the end prints the table and writes the run file.

What only a run with tasks needs (agents, runner, metrics, outputs, the HTTP stack) is
imported where it is first used, not here: every pytest run in the environment imports this
module, including the ones a check starts in every session, and those are measured.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
import time
from collections.abc import Generator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentspeed.edge.collect import (
    SLOT_KEY,
    SessionFailed,
    Slot,
    TaskFile,
    failure_message,
    inside_task_dir,
    order_items,
    slots,
)
from pytest_agentspeed.edge.options import Settings
from pytest_agentspeed.endpoints import Endpoint, api_key, redact
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.tasks import TASK_FILE, Task

if TYPE_CHECKING:
    from pytest_agentspeed.agents import Agent
    from pytest_agentspeed.clients import ModelClient
    from pytest_agentspeed.records import Comparison, RunRecord, SessionRecord
    from pytest_agentspeed.run.runner import SessionResult
    from pytest_agentspeed.run.spool import Spool
    from pytest_agentspeed.simulator.process import SimulatorHandle

#: A session running longer than this between progress lines gets another one.
HEARTBEAT_S = 10.0
#: How long an xdist worker waits for the controller's simulated endpoint to come up.
SHARED_SIM_WAIT_S = 120.0
#: After this many sessions in a row that could not reach their endpoint at all, the
#: endpoint's remaining sessions are not run: each would spend the client's whole connect
#: timeouts and retries (tens of seconds on a dead host) to learn the same thing.
UNREACHABLE_AFTER = 3
SESSION_KEY = pytest.StashKey["AgentSpeedSession"]()


class AgentSpeedSession:
    """Owns the run: settings, endpoints and their clients, the sessions measured."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.sessions: list[SessionRecord] = []
        self.endpoints = {e.name: e for e in settings.endpoints}
        self._task_dirs: list[Path] = []
        self._clients: dict[str, ModelClient] = {}
        self._secrets: list[str] = []
        self._sim: SimulatorHandle | None = None
        self._spool: Spool | None = None
        #: Names the run's spool files; an xdist worker takes its controller's.
        self.run_id: str = worker_input(config, "agentspeed_run_id") or new_run_id()
        #: Under xdist: the file through which the controller tells workers its server's URL.
        self.shared_sim_file: str | None = worker_input(config, "agentspeed_sim_file")
        self._registered_tasks: set[str] = set()
        self._ignore_cache: dict[Path, bool] = {}
        self._run: RunRecord | None = None
        #: The stored baseline the run was compared with (its columns go into the table).
        self._stored: RunRecord | None = None
        self._baseline_notice: str | None = None
        self._baseline_error: str | None = None
        #: The stored baseline was refused before any session ran: the line that says why.
        self._refused_early: str | None = None
        self._output_error: str | None = None
        #: Sessions that ran in parallel: the number of xdist workers, else 1.
        self.concurrency = 1
        #: Per endpoint: sessions in a row that could not reach it (see UNREACHABLE_AFTER).
        self._unreachable: dict[str, int] = {}

    @functools.cached_property
    def agent(self) -> Agent:
        """The agent sessions run with."""
        from pytest_agentspeed.agents import make_agent

        return make_agent(self.settings.agent)

    # -- collection -------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        if inside_task_dir(collection_path, self._ignore_cache):
            return True
        return None

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.File | None:
        if file_path.name != TASK_FILE:
            return None
        task_file = TaskFile.from_parent(parent, path=file_path)
        task_file.session_plugin = self
        return task_file

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "agentspeed" in metafunc.fixturenames:
            run_slots = slots(self)
            metafunc.parametrize("_agentspeed_slot", run_slots, ids=[s.label for s in run_slots])

    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and "_agentspeed_slot" in callspec.params:
                item.stash[SLOT_KEY] = (
                    item.nodeid.split("[")[0],
                    callspec.params["_agentspeed_slot"],
                )
        if not any(SLOT_KEY in item.stash for item in items):
            return
        order_items(items)
        self._check_stored_baseline(config, items)
        if self.agent.needs_endpoint:
            try:
                for endpoint in self.settings.endpoints:
                    key = api_key(endpoint)
                    if key is not None:
                        self._secrets.append(key)
            except ConfigError as exc:
                raise pytest.UsageError(str(exc)) from None

    def _check_stored_baseline(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Refuse an unreadable baseline, or one recorded under conditions that make the
        comparison meaningless, before any session runs, not after the whole run.

        A refused baseline deselects every agent item: nothing is measured, the reason is the
        last line printed and the run exits with ``NOT_COMPARED_EXIT``.
        """
        from pytest_agentspeed.errors import RunFileError
        from pytest_agentspeed.runfile import baseline_path, read_run_file

        if self.settings.compare is None:
            return
        path = baseline_path(self.settings.rootdir, self.settings.compare)
        if not path.exists():
            return
        try:
            stored = read_run_file(path)
        except RunFileError as exc:
            raise pytest.UsageError(f"--agentspeed-compare: {exc}") from None
        if not stored.sessions or not self.agent.needs_endpoint:
            return
        refusals = self._refusals(stored, items)
        if refusals:
            self._refused_early = (
                f"not compared: {'; '.join(refusals)}; record a new baseline (no session was run)"
            )
            agent_items = [item for item in items if SLOT_KEY in item.stash]
            config.hook.pytest_deselected(items=agent_items)
            items[:] = [item for item in items if SLOT_KEY not in item.stash]

    def _refusals(self, stored: RunRecord, items: list[pytest.Item]) -> list[str]:
        """Why the stored baseline cannot be compared with what this run will measure: the
        same rules as after the run (``compare.fingerprint_refusals``), with each arm's task
        set taken from the collected task files (fixture tests name their tasks only when they
        run: then the task set is checked after the run)."""
        from pytest_agentspeed.analysis.fingerprint import fingerprint, fingerprint_refusals
        from pytest_agentspeed.analysis.summary import baseline_arm_for
        from pytest_agentspeed.edge.collect import TaskItem

        header = self._run_header()
        agent_items = [item for item in items if SLOT_KEY in item.stash]
        know_tasks = all(isinstance(item, TaskItem) for item in agent_items)
        found: list[str] = []
        for endpoint in self.settings.endpoints:
            arm = endpoint.name
            cand = fingerprint(header, arm)
            cand["tasks"] = sorted(
                {
                    item.task.id
                    for item in agent_items
                    if isinstance(item, TaskItem) and item.slot.endpoint == arm
                }
                if know_tasks
                else ()
            )
            base = fingerprint(stored, baseline_arm_for(stored, arm))
            for reason in fingerprint_refusals(
                base,
                cand,
                metric=self.settings.gate.metric,
                baseline_label=f"the baseline {self.settings.compare!r}",
            ):
                if reason not in found:
                    found.append(reason)
        return found

    def pytest_report_collectionfinish(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> list[str]:
        count = sum(1 for item in items if SLOT_KEY in item.stash)
        return [self.header_line(count)] if count else []

    def header_line(self, count: int) -> str:
        """The line that says what the run will measure, once ``count`` sessions are known
        (printed by the xdist controller under ``-n``, whose workers' output is not shown)."""
        s = self.settings
        if not self.agent.needs_endpoint:
            return f"agentspeed: {count} sessions with the {s.agent} agent (no model)"
        names = ", ".join(e.name for e in s.endpoints)
        line = f"agentspeed: {count} sessions on {names}; {s.repeat} repeat(s); agent {s.agent}"
        if any(e.simulated for e in s.endpoints):
            line += f"; simulated delays x{s.time_scale:g}"
        return line

    def know_task_dir(self, path: Path) -> None:
        """A collected task's directory: the simulated endpoint will know its tasks."""
        self._task_dirs.append(path)

    # -- running ----------------------------------------------------------------------------

    def run_task(self, task: Task, slot: Slot, item: pytest.Item) -> SessionResult:
        """Run one session, keep its record, and attach its numbers to the item (JUnit)."""
        from pytest_agentspeed.run.runner import SessionResult, not_run, run_session

        if self._unreachable.get(slot.endpoint, 0) >= UNREACHABLE_AFTER:
            result = not_run(
                task,
                self.agent,
                endpoint=slot.endpoint,
                repeat=slot.repeat,
                reason=f"connection_error: not run: the endpoint could not be reached in "
                f"{UNREACHABLE_AFTER} sessions in a row",
            )
            return self._keep(result, item)
        client = None
        if self.agent.needs_endpoint:
            endpoint = self.endpoints[slot.endpoint]
            try:
                client = self._client(endpoint)
            except ConfigError as exc:
                raise pytest.UsageError(str(exc)) from None
            if endpoint.simulated and task.source is None:
                self._register(task)
        progress = _Heartbeat(self.config, item.nodeid)
        result = run_session(
            task,
            self.agent,
            client,
            endpoint=slot.endpoint,
            repeat=slot.repeat,
            progress=progress,
        )
        self._note_reachability(slot.endpoint, result.record)
        record = result.record
        if record.error is not None:
            # Endpoint error messages carry the server's words; never let a key through.
            record = replace(
                record,
                error=redact(record.error, self._secrets),
                turns=tuple(
                    replace(t, error=redact(t.error, self._secrets)) if t.error else t
                    for t in record.turns
                ),
            )
            result = SessionResult(
                record=record, check_output=result.check_output, workspace=result.workspace
            )
        return self._keep(result, item)

    def _keep(self, result: SessionResult, item: pytest.Item) -> SessionResult:
        self.sessions.append(result.record)
        self._spooled(result.record)
        item.user_properties.extend(junit_properties(result.record))
        return result

    def _note_reachability(self, endpoint: str, record: SessionRecord) -> None:
        """Count sessions in a row that never got through to the endpoint."""
        unreachable = (
            record.outcome == "error"
            and (record.error or "").startswith("connection_error")
            and all(t.error is not None for t in record.turns)
        )
        if not unreachable:
            self._unreachable[endpoint] = 0
            return
        self._unreachable[endpoint] = count = self._unreachable.get(endpoint, 0) + 1
        if count == UNREACHABLE_AFTER:
            say(
                self.config,
                f"agentspeed: {endpoint} could not be reached in {count} sessions in a row; "
                f"its remaining sessions are not run (recorded as errors)",
                yellow=True,
            )

    def _spooled(self, record: SessionRecord) -> None:
        """On disk before the item reports: a crash after this loses nothing of the session."""
        if self._spool is None:
            from pytest_agentspeed.run.spool import Spool, spool_path

            process = worker_input(self.config, "workerid") or "main"
            self._spool = Spool(
                spool_path(self.settings.rootdir, self.run_id, process), self._run_header()
            )
        self._spool.append(record)

    def judge(self, task: Task, slot: Slot, result: SessionResult) -> None:
        """Fail the test item when the session did not pass (or broke a speed limit).

        :raises SessionFailed: with a message that says why.
        """
        from pytest_agentspeed.run.runner import CHECK_COULD_NOT_RUN

        record = result.record
        reasons: list[str] = []
        could_not_run = CHECK_COULD_NOT_RUN.get(record.check_exit_code or 0)
        if record.outcome == "error":
            reasons.append(f"endpoint error: {record.error}")
        elif record.outcome == "timeout":
            reasons.append(record.error or "the agent ran out of time")
        elif could_not_run is not None and (
            not self.agent.needs_endpoint or not self.settings.allow_task_failures
        ):
            # The task is broken, whatever the agent did or did not do.
            reasons.append(
                f"check command could not run (exit {record.check_exit_code}: "
                f"{could_not_run}): {task.check.command}"
            )
        elif self.agent.expects_check_to_fail:
            # nop: the recorded outcome stays what the check said; the item inverts it.
            if record.outcome == "passed":
                reasons.append("this task's check passes without any change")
        elif record.outcome == "failed" and not self.settings.allow_task_failures:
            if record.check_exit_code is None:
                # The check ran and has no exit code: it was killed at its timeout.
                reasons.append(
                    f"check timed out after {task.check.timeout_s:g} s (check.timeout_s)"
                )
            else:
                reasons.append(f"check failed (exit code {record.check_exit_code})")
        if record.outcome == "passed" and not self.agent.expects_check_to_fail:
            speed = task.speed
            if speed.max_session_s is not None and record.wall_s > speed.max_session_s:
                reasons.append(
                    f"session took {record.wall_s:.2f} s > max_session_s {speed.max_session_s:g}"
                )
            throughput = record.throughput_tok_s
            if (
                speed.min_throughput_tok_s is not None
                and throughput is not None
                and throughput < speed.min_throughput_tok_s
            ):
                reasons.append(
                    f"throughput {throughput:.1f} tok/s < min_throughput_tok_s "
                    f"{speed.min_throughput_tok_s:g}"
                )
        if reasons:
            raise SessionFailed(failure_message(task, slot, result, reasons))

    def _client(self, endpoint: Endpoint) -> ModelClient:
        client = self._clients.get(endpoint.name)
        if client is None:
            client = self._clients[endpoint.name] = self._new_client(endpoint)
        return client

    def _new_client(self, endpoint: Endpoint) -> ModelClient:
        # A simulated endpoint takes any key; a named one sends its own, like a real one would.
        key = api_key(endpoint)
        base_url = endpoint.base_url
        if endpoint.sim is not None:
            base_url = self._simulator().base_url(_mount_key(endpoint))
            if endpoint.api == "openai":
                base_url = f"{base_url}/v1"
        assert base_url is not None
        options = endpoint.options
        common: dict[str, Any] = {
            "model": endpoint.model,
            "base_url": base_url,
            "timeout_s": float(options.get("timeout_s", 600.0)),
            "extra_headers": options.get("headers"),
            "extra_body": options.get("extra_body"),
            "max_tokens": options.get("max_tokens"),
            # A broken stream's retry waits like every other simulated delay.
            "retry_wait_s": 1.0 * (endpoint.sim.time_scale or self.settings.time_scale)
            if endpoint.sim is not None
            else 1.0,
        }
        if endpoint.api == "openai":
            from pytest_agentspeed.clients.openai_client import OpenAIClient

            return OpenAIClient(api_key=key, **common)
        from pytest_agentspeed.clients.anthropic_client import AnthropicClient

        assert key is not None  # required for this wire; api_key() said so otherwise
        return AnthropicClient(
            api_key=key,
            thinking=options.get("thinking"),
            thinking_budget=options.get("thinking_budget"),
            x_api_key=options.get("auth") == "x-api-key",
            **common,
        )

    def _simulator(self) -> SimulatorHandle:
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
                time_scale=e.sim.time_scale or self.settings.time_scale,
                seed=e.sim.seed,
                jitter=e.sim.jitter,
                faults=dict(e.sim.faults),
            )
            for e in self.settings.endpoints
            if e.sim is not None
        )
        return simulator.start(
            simulator.ServerConfig(mounts=mounts, task_dirs=tuple(str(p) for p in task_dirs))
        )

    def _register(self, task: Task) -> None:
        if task.id in self._registered_tasks:
            return
        self._simulator().register_task(
            {
                "id": task.id,
                "instruction": task.instruction,
                "check": task.check.command,
                "workspace": task.workspace_files(),
                "solution": task.solution_files() if task.solution is not None else None,
            }
        )
        self._registered_tasks.add(task.id)

    # -- outputs ----------------------------------------------------------------------------

    def run_record(self) -> RunRecord:
        """Everything measured, with the comparisons, as the run file holds it."""
        from pytest_agentspeed.analysis.summary import analysed

        seen = {x.endpoint for x in self.sessions}
        header = self._run_header()
        run = replace(
            header,
            endpoints=tuple(e for e in header.endpoints if e.name in seen),
            sessions=tuple(self.sessions),
        )
        if not self.agent.needs_endpoint:
            return analysed(run, self.settings.gate)
        return analysed(run, self.settings.gate, extra=self._against_stored(run))

    def _run_header(self) -> RunRecord:
        """The run's settings and environment, without sessions (also a spool's header)."""
        from pytest_agentspeed import __version__
        from pytest_agentspeed.analysis.gate import METRIC_DEFINITIONS
        from pytest_agentspeed.records import EndpointRecord, RunRecord
        from pytest_agentspeed.runfile import environment

        s = self.settings
        return RunRecord(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            agentspeed_version=__version__,
            environment=environment(self.concurrency),
            config={
                "window_s": s.window_s,
                "repeat": s.repeat,
                "time_scale": s.time_scale if any(e.simulated for e in s.endpoints) else None,
                "agent": s.agent,
                # Which definition of each gate metric the numbers were recorded under.
                "metric_definitions": dict(METRIC_DEFINITIONS),
            },
            endpoints=tuple(
                EndpointRecord(
                    name=e.name,
                    label=e.label,
                    api=e.api,
                    model=e.model,
                    base_url=e.public_base_url(),
                    profile=e.sim.profile if e.sim else None,
                    options=e.public_options(),
                )
                for e in s.endpoints
            ),
            sessions=(),
        )

    def _against_stored(self, run: RunRecord) -> list[Comparison]:
        """Each arm of this run against the stored baseline's arm of the same name, else its
        baseline arm."""
        from pytest_agentspeed.analysis.summary import against_baseline

        stored = self._stored = self._stored_baseline()
        if stored is None:
            return []
        return against_baseline(
            stored,
            run,
            self._against,
            self.settings.gate,
            baseline_label=f"the baseline {self.settings.compare!r}",
        )

    @property
    def _against(self) -> str:
        """Where the stored baseline came from, as comparisons and table columns name it."""
        return f"baseline {self.settings.compare}"

    def _stored_baseline(self) -> RunRecord | None:
        """The baseline to compare with; missing is a notice, unreadable an error."""
        from pytest_agentspeed.errors import RunFileError
        from pytest_agentspeed.runfile import baseline_path, read_run_file

        name = self.settings.compare
        if name is None:
            return None
        path = baseline_path(self.settings.rootdir, name)
        if not path.exists():
            hint = f"; create it with --agentspeed-save {name}" if path.stem == name else ""
            self._baseline_notice = f"no baseline at {path}, nothing to compare with{hint}"
            return None
        try:
            stored = read_run_file(path)
        except RunFileError as exc:
            self._baseline_error = str(exc)
            return None
        if not stored.sessions:
            self._baseline_notice = f"baseline {name!r} has no sessions; nothing to compare with"
            return None
        return stored

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if is_xdist_worker(self.config):
            # Workers measure, the controller decides: hand the records over, write nothing.
            # The spool stays (and locked) until this process ends: the controller deletes it
            # once the run's outputs are written.
            self.config.workeroutput["agentspeed"] = json.dumps(  # type: ignore[attr-defined]
                [s.to_json() for s in self.sessions]
            )
            if self._refused_early is not None:
                self.config.workeroutput["agentspeed_refused"] = self._refused_early  # type: ignore[attr-defined]
            return
        if self._refused_early is not None and session.exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            from pytest_agentspeed.analysis.compare import NOT_COMPARED_EXIT

            session.exitstatus = NOT_COMPARED_EXIT
        if not self.sessions:
            return
        from pytest_agentspeed.analysis.compare import NOT_COMPARED_EXIT
        from pytest_agentspeed.outputs.table import table_of
        from pytest_agentspeed.outputs.terminal import markdown_report, scale_note
        from pytest_agentspeed.records import NOT_COMPARED
        from pytest_agentspeed.run.spool import SPOOL_DIR
        from pytest_agentspeed.runfile import baseline_path, write_run_file, write_text_atomic

        self.sessions.sort(key=lambda s: s.started_at)
        run = self._run = self.run_record()
        settings = self.settings
        if not self.agent.needs_endpoint and (settings.save or settings.compare):
            # Its sessions measure no model: as a baseline they would make any later
            # comparison meaningless, and comparing them would give a meaningless verdict.
            self._baseline_notice = (
                f"the {settings.agent} agent measures no model: no baseline saved or compared"
            )
            settings = replace(settings, save=None)
        table = table_of(run, self._stored, self._against, metric=settings.gate.metric)
        markdown = markdown_report(table, run.comparisons, note=scale_note(run))
        target: Path | str = ""
        try:
            if settings.json_path is not None:
                write_run_file(target := settings.json_path, run)
            if settings.save is not None:
                write_run_file(target := baseline_path(settings.rootdir, settings.save), run)
            if settings.markdown_path is not None:
                write_text_atomic(target := settings.markdown_path, markdown)
            if settings.html_path is not None:
                from pytest_agentspeed.outputs.html_report import render_report

                html = render_report(
                    run, baseline=self._stored, baseline_name=self._against, gate=settings.gate
                )
                write_text_atomic(target := settings.html_path, html)
            step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
            if step_summary:
                with open(target := step_summary, "a", encoding="utf-8") as f:
                    f.write(markdown)
        except OSError as exc:
            # The sessions stay in the spool: nothing measured is lost to a bad output path.
            self._output_error = (
                f"cannot write {target}: {exc.strerror or exc}; the run's sessions are kept in "
                f"{self.settings.rootdir / SPOOL_DIR} (agentspeed merge reads them)"
            )
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
        else:
            self._discard_spools()
        policy = settings.gate.inconclusive
        failed = any(c.fails(policy) for c in run.comparisons)
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        refused = any(c.verdict == NOT_COMPARED for c in run.comparisons)
        if refused and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = NOT_COMPARED_EXIT
        if self._baseline_error is not None and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def _discard_spools(self) -> None:
        """The outputs are written: this run's spool files (every process's) can go."""
        from pytest_agentspeed.run.spool import SPOOL_DIR, SUFFIX

        if self._spool is not None:
            self._spool.discard()
        folder = self.settings.rootdir / SPOOL_DIR
        if folder.is_dir():
            for path in folder.glob(f"{self.run_id}.*{SUFFIX}"):
                path.unlink(missing_ok=True)
            # Leave no empty directories behind in the user's project.
            with contextlib.suppress(OSError):
                folder.rmdir()
                folder.parent.rmdir()

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Recover the sessions of an earlier run that was killed before it wrote its files."""
        if is_xdist_worker(self.config):
            return
        from pytest_agentspeed.run.spool import SPOOL_DIR

        if not (self.settings.rootdir / SPOOL_DIR).is_dir():
            return
        from pytest_agentspeed.run.spool import recover

        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        for path, count in recover(self.settings.rootdir, self.settings.gate):
            line = (
                f"agentspeed: recovered {count} sessions of an interrupted run into {path} "
                f"(agentspeed show, report and merge read it)"
            )
            if reporter is not None:
                reporter.write_line(line, yellow=True)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        run = self._run
        if run is None:
            return
        from pytest_agentspeed.outputs.table import table_of
        from pytest_agentspeed.outputs.terminal import scale_note
        from pytest_agentspeed.runfile import baseline_path

        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "agentspeed")
        if self.agent.expects_check_to_fail:
            from pytest_agentspeed.run.runner import CHECK_COULD_NOT_RUN

            valid = sum(
                1
                for s in run.sessions
                if s.outcome == "failed" and s.check_exit_code not in CHECK_COULD_NOT_RUN
            )
            write(
                f"{self.settings.agent} agent: {valid} of {len(run.sessions)} tasks valid "
                f"(their check fails on the untouched workspace)"
            )
        elif not self.agent.needs_endpoint:
            passed = sum(1 for s in run.sessions if s.passed)
            write(f"{self.settings.agent} agent: {passed} of {len(run.sessions)} tasks passed")
        else:
            table = table_of(run, self._stored, self._against, metric=self.settings.gate.metric)
            for i, line in enumerate(table.lines()):
                # The deciding rows, under the header and above the rule, in bold.
                write(line, bold=0 < i <= table.key_rows)
            note = scale_note(run)
            if note:
                write(f"({note})")
        s = self.settings
        # After a failed write (said below, in red) the files named here may not exist.
        if s.json_path is not None and not self._output_error:
            write(f"run file: {s.json_path}")
        if s.html_path is not None and not self._output_error:
            write(f"report: {s.html_path}")
        if s.save is not None and self.agent.needs_endpoint and not self._output_error:
            path = baseline_path(s.rootdir, s.save)
            write(f"saved baseline {s.save!r}: {_shown_path(path)}")
        if self._baseline_notice:
            write(self._baseline_notice, yellow=True)
        if self._baseline_error:
            write(f"ERROR: {self._baseline_error}", red=True)
        if self._output_error:
            write(f"ERROR: {self._output_error}", red=True)

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_terminal_summary")
    def pytest_terminal_summary_verdicts(
        self, terminalreporter: pytest.TerminalReporter
    ) -> Generator[None]:
        """Print the verdict lines after everything else, failures' summary included.

        CI logs are read from the bottom; only pytest's final count line comes after these.
        """
        result = yield
        run = self._run
        if self._refused_early is not None:
            terminalreporter.write_line(self._refused_early, red=True)
        if run is not None:
            from pytest_agentspeed.outputs.terminal import verdict_lines

            for c in run.comparisons:
                verdict = c.verdict
                lines = verdict_lines([c])
                # The comparison's own line in its colour, its details plain.
                terminalreporter.write_line(
                    lines[0],
                    red=verdict in ("FAIL", "NOT COMPARED"),
                    green=verdict in ("PASS", "IMPROVED"),
                    yellow=verdict == "INCONCLUSIVE",
                )
                for line in lines[1:]:
                    terminalreporter.write_line(line)
        return result

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._sim is not None:
            self._sim.stop()
            self._sim = None


class _Heartbeat:
    """Shows that a long session is alive: which task, which turn, how long so far."""

    def __init__(self, config: pytest.Config, nodeid: str) -> None:
        self.config = config
        self.nodeid = nodeid
        self.last = time.monotonic()

    def __call__(self, turns: int, output_tokens: int, elapsed_s: float) -> None:
        now = time.monotonic()
        if now - self.last < HEARTBEAT_S:
            return
        self.last = now
        say(
            self.config,
            f"agentspeed: {self.nodeid}: turn {turns}, {output_tokens:,} output tokens, "
            f"{elapsed_s:.0f} s",
        )


def say(config: pytest.Config, line: str, **markup: bool) -> None:
    """A line on the terminal now, in the middle of a test, past output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line, **markup)
    else:
        reporter.write_line(line, **markup)


def is_xdist_worker(config: pytest.Config) -> bool:
    """The one place that knows how to tell an xdist worker."""
    return hasattr(config, "workerinput")


def worker_input(config: pytest.Config, key: str) -> str | None:
    """A value the xdist controller handed this worker; ``None`` outside a worker."""
    value = getattr(config, "workerinput", {}).get(key)
    return None if value is None else str(value)


def new_run_id() -> str:
    """A run id that sorts by start time and does not collide between machines."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"


def junit_properties(record: SessionRecord) -> list[tuple[str, object]]:
    """A session's numbers as JUnit ``<property>`` pairs (via ``item.user_properties``)."""
    throughput = record.throughput_tok_s
    return [
        ("agentspeed.endpoint", record.endpoint),
        ("agentspeed.outcome", record.outcome),
        ("agentspeed.turns", len(record.turns)),
        ("agentspeed.wall_s", round(record.wall_s, 6)),
        ("agentspeed.output_tokens", record.usage.output_tokens),
        ("agentspeed.throughput_tok_s", None if throughput is None else round(throughput, 3)),
    ]


def _shown_path(path: Path) -> Path:
    """``path`` relative to the working directory when it lies under it (the file to commit,
    as ``git add`` takes it), else as it is."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


class XdistHooks:
    """Registered on the xdist controller only: counts workers, serves them one simulated
    endpoint, and gathers their sessions.

    One server for all workers, so sessions that run at the same time load the same endpoint
    as they would a real one (and the schedule log has the whole run). The controller starts
    it once the first worker has collected, and only if agent tasks on a simulated endpoint
    were collected; workers wait for its URL in a file the controller names in their
    ``workerinput``.
    """

    def __init__(self, session: AgentSpeedSession) -> None:
        self.session = session
        self.nodes = 0
        self._announced = False
        self._dir = tempfile.TemporaryDirectory(prefix="agentspeed-xdist-")
        self.sim_file = Path(self._dir.name) / "sim.json"

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        self.nodes += 1
        self.session.concurrency = self.nodes
        node.workerinput["agentspeed_run_id"] = self.session.run_id
        node.workerinput["agentspeed_sim_file"] = str(self.sim_file)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self._announced:
            # Every worker collects the same items (xdist checks it); the first one speaks.
            self._announced = True
            count = sum(1 for nodeid in ids if self._slot_of(nodeid))
            if count:
                say(self.session.config, self.session.header_line(count))
        if self.sim_file.exists():
            return
        shared: dict[str, Any] = {"url": None}
        if self._needs_simulator(ids):
            try:
                sim = self.session.serve_simulator()
            except ConfigError as exc:
                shared = {"error": str(exc)}
            else:
                shared = {"url": sim.url}
        from pytest_agentspeed.runfile import write_json_atomic

        write_json_atomic(self.sim_file, shared)

    def _needs_simulator(self, ids: list[str]) -> bool:
        session = self.session
        if not session.agent.needs_endpoint:
            return False
        return any(
            slot is not None and session.endpoints[slot.endpoint].simulated
            for slot in map(self._slot_of, ids)
        )

    @functools.cached_property
    def _slot_pattern(self) -> re.Pattern[str]:
        # A slot's label is the item's parameter id, alone or joined to others' with "-".
        labels = "|".join(re.escape(s.label) for s in slots(self.session))
        return re.compile(rf"\[(?:.*-)?({labels})(?:-.*)?\]$")

    def _slot_of(self, nodeid: str) -> Slot | None:
        """The slot an item's node id names, if it is an agent session."""
        match = self._slot_pattern.search(nodeid)
        if match is None:
            return None
        return next(s for s in slots(self.session) if s.label == match.group(1))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        from pytest_agentspeed.records import SessionRecord

        output = getattr(node, "workeroutput", {})
        if output.get("agentspeed_refused"):
            self.session._refused_early = output["agentspeed_refused"]
        data = output.get("agentspeed")
        if data:
            self.session.sessions.extend(SessionRecord.from_json(s) for s in json.loads(data))
        elif error is not None:
            self._from_spool(node)

    def _from_spool(self, node: Any) -> None:
        """A worker that crashed handed nothing over; its spool has what it finished."""
        from pytest_agentspeed.errors import RunFileError
        from pytest_agentspeed.run.spool import read_spool, spool_path

        worker = node.workerinput.get("workerid", "")
        path = spool_path(self.session.settings.rootdir, self.session.run_id, worker)
        if path.exists():
            with contextlib.suppress(RunFileError):
                self.session.sessions.extend(read_spool(path).sessions)

    def close(self) -> None:
        self._dir.cleanup()


def _mount_key(endpoint: Endpoint) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", endpoint.name).strip("-")
