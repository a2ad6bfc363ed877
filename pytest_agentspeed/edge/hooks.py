"""The pytest hooks of one run, registered as an object plugin; the run itself is a
:class:`~pytest_agentspeed.run.bench.Bench`.

They stay inert until an agent task is collected: no server, no output, no files (task checks
often run pytest themselves, and those runs must not notice the plugin). Once tasks are
collected they order items by slot, refuse a stored baseline that cannot be compared before
anything runs, and at the end have the bench write the outputs, print the table and the
verdicts, and set the exit status.

What only a run with tasks needs (agents, runner, metrics, outputs, the HTTP stack) is
imported where it is first used, not here: every pytest run in the environment imports this
module, including the ones a check starts in every session, and those are measured.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from pytest_agentspeed.edge.collect import (
    SLOT_KEY,
    Recordings,
    ReplayItem,
    TaskFile,
    TaskItem,
    inside_task_dir,
    order_items,
)
from pytest_agentspeed.edge.console import write_summary, write_verdicts
from pytest_agentspeed.edge.xdist import is_xdist_worker
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.tasks import TASK_FILE

if TYPE_CHECKING:
    from pytest_agentspeed.run.bench import Bench, Finish
    from pytest_agentspeed.run.slots import Slot


class AgentSpeedHooks:
    """The hooks that drive the run's :class:`~pytest_agentspeed.run.bench.Bench`."""

    def __init__(self, config: pytest.Config, bench: Bench) -> None:
        self.config = config
        self.bench = bench
        #: How the run ended, once the bench has finished it (this process decides).
        self.finish: Finish | None = None
        self._ignore_cache: dict[Path, bool] = {}

    # -- collection -------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        if inside_task_dir(collection_path, self._ignore_cache):
            return True
        if self.bench.recordings and config.args_source != pytest.Config.ArgsSource.ARGS:
            # `pytest --agentspeed-replay DIR` with no test paths: the replays are the run.
            return True
        return None

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.File | None:
        if file_path.name != TASK_FILE or self.bench.recordings:
            # A replay run replays its recordings and runs no task live.
            return None
        return TaskFile.from_parent(parent, path=file_path)

    @pytest.hookimpl(tryfirst=True, specname="pytest_collection_modifyitems")
    def pytest_collection_modifyitems_replays(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """A replay run's items, collected (and counted, selected with ``-k``, ordered) like
        any other: first, so that every other plugin's hook sees them."""
        if not self.bench.recordings:
            return
        path = self.bench.settings.replay_path
        assert path is not None
        live = [item for item in items if "_agentspeed_slot" in _params(item)]
        if live:
            # Live sessions and replays in one comparison would pair unlike sessions.
            config.hook.pytest_deselected(items=live)
            items[:] = [item for item in items if SLOT_KEY not in item.stash]
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(
                    f"agentspeed: a replay run runs no session live: {len(live)} tests that "
                    f"use the agentspeed fixture deselected",
                    yellow=True,
                )
        items.extend(session.genitems(Recordings.from_parent(session, path=path)))

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "agentspeed" in metafunc.fixturenames:
            run_slots = self.bench.slots
            metafunc.parametrize("_agentspeed_slot", run_slots, ids=[s.label for s in run_slots])

    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        for item in items:
            params = _params(item)
            if "_agentspeed_slot" in params:
                slot = cast("Slot", params["_agentspeed_slot"])
                item.stash[SLOT_KEY] = (item.nodeid.split("[")[0], slot)
        if not any(SLOT_KEY in item.stash for item in items):
            return
        order_items(items)
        agent_items = [item for item in items if SLOT_KEY in item.stash]
        task_items = [item for item in agent_items if isinstance(item, TaskItem | ReplayItem)]
        # Fixture tests name their tasks only when they run: then the task set is checked
        # after the run.
        planned = (
            [(_task_id(item), item.slot.endpoint) for item in task_items]
            if len(task_items) == len(agent_items)
            else None
        )
        try:
            refused = self.bench.early_refusal(planned)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        if refused is not None:
            # Nothing is measured: the reason is the last line printed, and the run exits with
            # NOT_COMPARED_EXIT.
            config.hook.pytest_deselected(items=agent_items)
            items[:] = [item for item in items if SLOT_KEY not in item.stash]
        try:
            self.bench.check_before_run()
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None

    def pytest_report_collectionfinish(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> list[str]:
        count = sum(1 for item in items if SLOT_KEY in item.stash)
        return [self.bench.header_line(count)] if count else []

    # -- the run ----------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Recover the sessions of an earlier run that was killed before it wrote its files."""
        if is_xdist_worker(self.config):
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        for line in self.bench.recover_spools():
            if reporter is not None:
                reporter.write_line(line, yellow=True)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        bench = self.bench
        if is_xdist_worker(self.config):
            # Workers measure, the controller decides: hand the records over, write nothing.
            # The spool stays (and locked) until the run closes (pytest_unconfigure): the
            # controller deletes it once the run's outputs are written.
            self.config.workeroutput["agentspeed"] = json.dumps(  # type: ignore[attr-defined]
                [s.to_json() for s in bench.sessions]
            )
            if bench.refused is not None:
                self.config.workeroutput["agentspeed_refused"] = bench.refused  # type: ignore[attr-defined]
            return
        if bench.refused is not None and session.exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            from pytest_agentspeed.analysis.compare import NOT_COMPARED_EXIT

            session.exitstatus = NOT_COMPARED_EXIT
        if not bench.sessions:
            return
        finish = self.finish = bench.finish()
        if finish.exit_status is not None and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = _exit_code(finish.exit_status)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.finish is not None:
            write_summary(terminalreporter, self.bench, self.finish)

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_terminal_summary")
    def pytest_terminal_summary_verdicts(
        self, terminalreporter: pytest.TerminalReporter
    ) -> Generator[None]:
        """Print the verdict lines after everything else, failures' summary included.

        CI logs are read from the bottom; only pytest's final count line comes after these.
        """
        result = yield
        write_verdicts(terminalreporter, self.bench.refused, self.finish)
        return result

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.bench.close()


def _params(item: pytest.Item) -> dict[str, object]:
    """A parametrized test's parameters (none for other items)."""
    callspec = getattr(item, "callspec", None)
    return {} if callspec is None else dict(callspec.params)


def _task_id(item: TaskItem | ReplayItem) -> str:
    """The task an item's session is recorded under: a replay's is its recording's name."""
    return item.task.id if isinstance(item, TaskItem) else item.recording.name


def _exit_code(status: int) -> int:
    """pytest's own exit code where there is one (the run's 6, not compared, is ours)."""
    try:
        return pytest.ExitCode(status)
    except ValueError:
        return status
