"""The bench: one run of sessions from first client to written outputs, with no pytest.

A :class:`Bench` owns what a run needs beyond a single session: the agent, one client per
endpoint, the simulated endpoint's server (started on first use, or shared from an xdist
controller), the count of sessions in a row that could not reach their endpoint, redaction of
keys, the spool, judging sessions, the run record with its comparisons, the stored baseline
and the end-of-run outputs. The pytest edge (:mod:`pytest_agentspeed.edge.hooks`) calls it
from its hooks; tests and the command line can drive it directly::

    bench = Bench(settings, console)
    result = bench.run_task(task, slot)
    bench.judge(task, slot, result)   # raises SessionFailed
    finish = bench.finish()           # the run record, written by the exporters
    bench.close()

Lines for the user go through a :class:`Console`. What only a run with tasks needs (agents,
clients, statistics, outputs) is imported where first used."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pytest_agentspeed.endpoints import api_key
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.run.judge import exit_status, judge
from pytest_agentspeed.run.pool import EndpointPool
from pytest_agentspeed.run.reachability import NOT_RUN_REASON, Reachability
from pytest_agentspeed.run.slots import Slot, plan_slots, speaking_agents_wire

if TYPE_CHECKING:
    from pytest_agentspeed.agents import Agent, Progress
    from pytest_agentspeed.outputs.exporters import Exporter
    from pytest_agentspeed.proxy import ProxySession
    from pytest_agentspeed.records import Comparison, RunRecord, SessionRecord
    from pytest_agentspeed.replay.recording import Recording
    from pytest_agentspeed.run.lateness import SessionClock
    from pytest_agentspeed.run.outputs import RunHooks
    from pytest_agentspeed.run.runner import SessionResult
    from pytest_agentspeed.run.spool import Spool
    from pytest_agentspeed.settings import Settings
    from pytest_agentspeed.tasks import Task


class Console(Protocol):
    """Where the bench says things while the run goes on (the pytest edge: the terminal,
    past output capture)."""

    def line(self, text: str, *, yellow: bool = False) -> None:
        """Show one line now."""
        ...

    def progress(self, name: str) -> Progress:
        """The progress callback of the session ``name`` (called after each turn)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """How the run ended, for whoever shows it: the record, and what went wrong around it."""

    run: RunRecord
    #: The stored baseline the run was compared with (its columns go into the table).
    stored: RunRecord | None
    #: Why nothing was saved or compared against a stored baseline (shown in yellow).
    notice: str | None
    #: The stored baseline could not be read.
    baseline_error: str | None
    #: An output could not be written (the ones after it were not tried).
    output_error: str | None
    #: The exit status the run should end with, unless it already ends with another; ``None``
    #: leaves it as it is.
    exit_status: int | None


class Bench:
    """Runs sessions and keeps their records; owns the run's clients, server and spool.

    :param run_id: names the run's spool files; an xdist worker takes its controller's.
    :param process: this process's part of the run (an xdist worker's id, else ``"main"``).
    :param shared_sim_file: under xdist, the file through which the controller tells workers
        its simulated endpoint's URL.
    :param hooks: the exporters of the run and who else hears of its sessions and its end
        (the plugins' hooks, in a pytest run); by default the package's own exporters.
    """

    def __init__(
        self,
        settings: Settings,
        console: Console,
        *,
        run_id: str | None = None,
        process: str = "main",
        shared_sim_file: str | None = None,
        hooks: RunHooks | None = None,
    ) -> None:
        self.console = console
        if hooks is None:
            from pytest_agentspeed.run.outputs import BuiltinOutputs

            hooks = BuiltinOutputs()
        self.hooks = hooks
        #: The recordings this run replays (``--agentspeed-replay``); empty when it runs tasks.
        self.recordings: list[Recording] = []
        if settings.replay_path is not None:
            from pytest_agentspeed.run.replaying import load_recordings

            # Simulated endpoints that left the wire open speak the recordings'.
            settings, self.recordings = load_recordings(settings)
        # Simulated endpoints that left the wire open speak an external agent's.
        self.settings = settings = speaking_agents_wire(settings)
        from pytest_agentspeed.run.spool import new_run_id

        self.run_id = run_id or new_run_id()
        self.process = process
        self.sessions: list[SessionRecord] = []
        self.endpoints = {e.name: e for e in settings.endpoints}
        #: Sessions that ran in parallel: the number of xdist workers, else 1.
        self.concurrency = 1
        #: The stored baseline was refused before any session ran: the line that says why.
        self.refused: str | None = None
        self.pool = EndpointPool(
            settings.endpoints, time_scale=settings.time_scale, shared_sim_file=shared_sim_file
        )
        self._spool: Spool | None = None
        self._reachability = Reachability()

    @functools.cached_property
    def agent(self) -> Agent:
        """The agent sessions run with."""
        from pytest_agentspeed.agents import make_agent

        return make_agent(self.settings.agent, sandbox=self.settings.sandbox)

    @functools.cached_property
    def slots(self) -> list[Slot]:
        """The slots every task (or fixture test) is run in."""
        s, needs = self.settings, self.agent.needs_endpoint
        return plan_slots(s.agent, needs_endpoint=needs, endpoints=s.endpoints, repeat=s.repeat)

    # -- before the first session ------------------------------------------------------------

    def header_line(self, count: int) -> str:
        """The line that says what the run will measure, once ``count`` sessions are known."""
        s = self.settings
        if not self.agent.needs_endpoint:
            return f"agentspeed: {count} sessions with the {s.agent} agent (no model)"
        names = ", ".join(e.name for e in s.endpoints)
        line = f"agentspeed: {count} sessions on {names}; {s.repeat} repeat(s); agent {s.agent}"
        if self.recordings:
            line = (
                f"agentspeed: {count} replays of {s.replay_path} on {names}; {s.repeat} repeat(s)"
            )
        if any(e.simulated for e in s.endpoints):
            line += f"; simulated delays x{s.time_scale:g}"
        if self.recordings:
            from pytest_agentspeed.run.replaying import cost_line

            gaps = {1.0: "as recorded", 0.0: "none"}.get(s.replay_gaps, f"x{s.replay_gaps:g}")
            line += f"; gaps {gaps}\n" + cost_line(self.recordings, len(s.endpoints), s.repeat)
        return line

    def know_task_dir(self, path: Path) -> None:
        """A task's directory: the simulated endpoint will know its tasks."""
        self.pool.know_task_dir(path)

    def check_before_run(self) -> None:
        """Refuse now, before any session runs, what cannot work: an endpoint's missing key,
        an external agent that is not installed or speaks another wire than an endpoint. Keep
        the variables holding the keys out of every command (tools, checks, external agents).

        :raises ConfigError: with one line that says what is missing (and how to install it).
        """
        from pytest_agentspeed.agents.external import cannot_run
        from pytest_agentspeed.processes import scrub_also

        refusal = cannot_run(self.agent, [(e.name, e.api) for e in self.settings.endpoints])
        if refusal is not None:
            raise ConfigError(refusal)
        _ = self._secrets
        scrub_also(var for endpoint in self.settings.endpoints for var in endpoint.key_vars)

    @functools.cached_property
    def _secrets(self) -> list[str]:
        """The keys never to let through into a record or a message."""
        if not self.agent.needs_endpoint:
            return []
        keys = (api_key(endpoint) for endpoint in self.settings.endpoints)
        return [key for key in keys if key is not None]

    def early_refusal(self, planned: Collection[tuple[str, str]] | None) -> str | None:
        """Refuse an unreadable baseline, or one recorded under conditions that make the
        comparison meaningless, before any session runs, not after the whole run.

        :param planned: the (task id, endpoint name) of each session the run will measure;
            ``None`` when some of their tasks are known only when they run (fixture tests:
            then the task set is checked after the run).
        :returns: the line that says why nothing will be run, or ``None``; also kept in
            :attr:`refused`.
        :raises ConfigError: when the stored baseline cannot be read.
        """
        from pytest_agentspeed.run.baseline import read_before_run, refusals

        s = self.settings
        stored = read_before_run(s.rootdir, s.compare)
        if stored is None or not stored.sessions or not self.agent.needs_endpoint:
            return None
        found = refusals(
            stored,
            self._run_header(),
            s.endpoints,
            planned,
            metric=s.gate.metric,
            baseline_label=f"the baseline {s.compare!r}",
        )
        if found:
            from pytest_agentspeed.analysis.fingerprint import refused_line

            self.refused = f"{refused_line(found)} (no session was run)"
        return self.refused

    def recover_spools(self) -> list[str]:
        """Recover the sessions of earlier runs that were killed before they wrote their
        files; the lines that say where they went."""
        from pytest_agentspeed.run.spool import SPOOL_DIR

        if not (self.settings.rootdir / SPOOL_DIR).is_dir():
            return []
        from pytest_agentspeed.run.spool import recovered_lines

        return recovered_lines(self.settings.rootdir, self.settings.gate)

    # -- running ----------------------------------------------------------------------------

    def run_task(
        self,
        task: Task,
        slot: Slot,
        *,
        name: str | None = None,
        exporters: Sequence[Exporter] = (),
    ) -> SessionResult:
        """Run one session and keep its record (in :attr:`sessions` and the spool), and its
        recording when the run records.

        :param name: the session as progress lines name it (the pytest item's node id).
        :param exporters: told of this session once it is kept (the pytest item's JUnit
            properties).
        :raises ConfigError: when the endpoint's client or server cannot be set up.
        """
        from pytest_agentspeed.run.runner import run_session

        if self._reachability.given_up(slot.endpoint):
            return self._not_run(task.id, self.agent.name, slot, exporters)
        client = None
        open_proxy: Callable[[Path], ProxySession] | None = None
        if self.agent.needs_endpoint:
            endpoint = self.endpoints[slot.endpoint]
            if getattr(self.agent, "needs_proxy", False):
                # An agent in another process reaches the endpoint through the proxy only.
                open_proxy = functools.partial(self.pool.open_proxy, endpoint)
            else:
                client = self.pool.client(endpoint)
            if endpoint.simulated and task.source is None:
                self.pool.register(task)
        session = functools.partial(
            run_session,
            task,
            self.agent,
            client,
            endpoint=slot.endpoint,
            repeat=slot.repeat,
            open_proxy=open_proxy,
        )
        return self._measured(session, slot, name or f"{task.id}[{slot.label}]", exporters)

    def run_replay(
        self,
        recording: Recording,
        slot: Slot,
        *,
        name: str | None = None,
        exporters: Sequence[Exporter] = (),
    ) -> SessionResult:
        """Replay one recorded session on the slot's endpoint and keep its record, as
        :meth:`run_task` keeps a live session's."""
        from pytest_agentspeed.replay.session import replay_session

        if self._reachability.given_up(slot.endpoint):
            return self._not_run(recording.name, "replay", slot, exporters)
        from pytest_agentspeed.run.runner import SessionResult

        endpoint = self.endpoints[slot.endpoint]
        client = self.pool.client(endpoint)

        def session(progress: Progress) -> SessionResult:
            record = replay_session(
                recording,
                client,
                endpoint=endpoint,
                repeat=slot.repeat,
                gaps=self.settings.replay_gaps,
                progress=progress,
            )
            return SessionResult(record=record, check_output="", workspace=None)

        return self._measured(session, slot, name or f"{recording.name}[{slot.label}]", exporters)

    def _not_run(
        self, task: str, agent: str, slot: Slot, exporters: Sequence[Exporter]
    ) -> SessionResult:
        from pytest_agentspeed.run.runner import not_run

        result = not_run(
            task, agent, endpoint=slot.endpoint, repeat=slot.repeat, reason=NOT_RUN_REASON
        )
        return self._keep(result, exporters)

    def _measured(
        self,
        session: Callable[..., SessionResult],
        slot: Slot,
        name: str,
        exporters: Sequence[Exporter],
    ) -> SessionResult:
        """Run ``session(progress=...)`` on the clock, then keep its record, redacted, and
        write its recording when the run records."""
        from pytest_agentspeed.run.lateness import collector_held
        from pytest_agentspeed.run.runner import redacted

        clock = self._clock
        with collector_held():
            clock.start()
            result = session(progress=self.console.progress(name))
            record = replace(result.record, clock=clock.stop())
        given_up = self._reachability.note(slot.endpoint, record)
        if given_up is not None:
            self.console.line(given_up, yellow=True)
        record = redacted(record, self._secrets)
        record_dir = self.settings.record_dir
        if record_dir is not None and result.sent is not None and slot.endpoint in self.endpoints:
            from pytest_agentspeed.run.replaying import record_session

            failed = record_session(record_dir, record, result.sent, self.endpoints[slot.endpoint])
            if failed is not None:
                self.console.line(failed, yellow=True)
        return self._keep(replace(result, record=record, sent=None), exporters)

    @functools.cached_property
    def _clock(self) -> SessionClock:
        """How late this process's clock runs, session by session: the monitor starts with the
        first session (a run without agent tasks never starts a thread) and stops at
        :meth:`close`."""
        from pytest_agentspeed.run.lateness import LatenessMonitor, SessionClock

        if not self.agent.needs_endpoint:
            return SessionClock()
        from pytest_agentspeed.clients.transport import reading

        return SessionClock(LatenessMonitor(marking=reading))

    def _keep(self, result: SessionResult, exporters: Sequence[Exporter]) -> SessionResult:
        self.sessions.append(result.record)
        self._spooled(result.record)
        for exporter in exporters:
            exporter.session_finished(result.record)
        self.hooks.session_finished(result.record)
        return result

    def _spooled(self, record: SessionRecord) -> None:
        """On disk before the item reports: a crash after this loses nothing of the session."""
        if self._spool is None:
            from pytest_agentspeed.run.spool import Spool, spool_path

            self._spool = Spool(
                spool_path(self.settings.rootdir, self.run_id, self.process), self._run_header()
            )
        self._spool.append(record)

    def judge(self, task: Task, slot: Slot, result: SessionResult) -> None:
        """Fail the session when it did not pass (or broke a speed limit).

        :raises SessionFailed: with a message that says why.
        """
        judge(
            task,
            slot,
            result,
            agent=self.agent,
            allow_task_failures=self.settings.allow_task_failures,
        )

    def add_sessions(self, records: Sequence[SessionRecord]) -> None:
        """Sessions another process of the run measured (an xdist worker's)."""
        self.sessions.extend(records)

    # -- the end ------------------------------------------------------------------------------

    def finish(self) -> Finish:
        """Build the run record, compare, and write the outputs; say how the run should end.

        Only the process that decides calls it (not an xdist worker), once every session is
        in :attr:`sessions`. When every output is written, the run's spool files go; after a
        write error they stay, and the message says where.
        """
        from pytest_agentspeed.run.baseline import Stored, read_stored
        from pytest_agentspeed.run.outputs import OutputRequest, write_outputs

        self.sessions.sort(key=lambda s: s.started_at)
        baseline = Stored(None)
        if self.agent.needs_endpoint:
            baseline = read_stored(self.settings.rootdir, self.settings.compare)
        stored, notice = baseline.record, baseline.notice
        run = self.run_record(stored)
        save = self.settings.save
        if not self.agent.needs_endpoint and (save or self.settings.compare):
            # Its sessions measure no model: as a baseline they would make any later
            # comparison meaningless, and comparing them would give a meaningless verdict.
            notice = (
                f"the {self.settings.agent} agent measures no model: no baseline saved or compared"
            )
            save = None
        request = OutputRequest(
            settings=self.settings, stored=stored, save=save, against=self.against
        )
        output_error = write_outputs(self.hooks.exporters(request), run, self.settings.rootdir)
        if output_error is None:
            from pytest_agentspeed.run.spool import discard_run

            if self._spool is not None:
                self._spool.discard()
            discard_run(self.settings.rootdir, self.run_id)
        self.hooks.run_finished(run)
        return Finish(
            run=run,
            stored=stored,
            notice=notice,
            baseline_error=baseline.error,
            output_error=output_error,
            exit_status=exit_status(
                run, self.settings.gate.inconclusive, output_error, baseline.error
            ),
        )

    def run_record(self, stored: RunRecord | None = None) -> RunRecord:
        """Everything measured, with the comparisons (with ``stored`` too, when the agent
        measures a model), as the run file holds it."""
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
        return analysed(run, self.settings.gate, extra=self._against_stored(stored, run))

    def _run_header(self) -> RunRecord:
        """The run's settings and environment, without sessions (also a spool's header)."""
        from pytest_agentspeed.run.header import run_header

        return run_header(self.settings, concurrency=self.concurrency)

    def _against_stored(self, stored: RunRecord | None, run: RunRecord) -> list[Comparison]:
        """Each arm of this run against the stored baseline's arm of the same name, else its
        baseline arm."""
        from pytest_agentspeed.analysis.summary import against_baseline

        if stored is None:
            return []
        return against_baseline(
            stored,
            run,
            self.against,
            self.settings.gate,
            baseline_label=f"the baseline {self.settings.compare!r}",
        )

    @property
    def against(self) -> str:
        """Where the stored baseline came from, as comparisons and table columns name it."""
        return f"baseline {self.settings.compare}"

    def close(self) -> None:
        """Close the clients, stop the simulated endpoint's server if this run started one and
        the clock's monitor, and let go of the spool (kept, if the outputs were not written)."""
        self.pool.close()
        if "_clock" in self.__dict__:
            self._clock.close()
        if self._spool is not None:
            self._spool.close()
