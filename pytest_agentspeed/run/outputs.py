"""The outputs of a run: the exporters its settings ask for, in order, and what else hears of
its sessions and its end (:class:`RunHooks`: in a pytest run, the plugins' hooks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pytest_agentspeed.outputs.benchmark_json import BenchmarkJson
from pytest_agentspeed.outputs.exporters import (
    Exporter,
    HtmlReport,
    MarkdownSummary,
    RunFile,
    run_finished,
)
from pytest_agentspeed.runfile import baseline_path

if TYPE_CHECKING:
    from pytest_agentspeed.records import RunRecord, SessionRecord
    from pytest_agentspeed.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRequest:
    """What a run's exporters are made for (the ``pytest_agentspeed_exporters`` hook's
    ``request``)."""

    settings: Settings
    #: The stored baseline the run was compared with, if any.
    stored: RunRecord | None
    #: The baseline name the run is saved as (``--agentspeed-save``), if it is.
    save: str | None
    #: Where the stored baseline came from, as the outputs name it (``baseline main``).
    against: str


class RunHooks(Protocol):
    """What a :class:`~pytest_agentspeed.run.bench.Bench` tells beyond its own outputs: in a
    pytest run, the ``pytest_agentspeed_*`` hooks (:mod:`pytest_agentspeed.edge.hookspecs`)."""

    def exporters(self, request: OutputRequest) -> Sequence[Exporter]:
        """The exporters to hand the finished run to, in the order they are written."""
        ...

    def session_finished(self, record: SessionRecord) -> None:
        """A session ended and is kept."""
        ...

    def run_finished(self, run: RunRecord) -> None:
        """The run ended; its outputs are written (or failed to be)."""
        ...


class BuiltinOutputs:
    """The package's own exporters and nobody else to tell: a bench outside pytest."""

    def exporters(self, request: OutputRequest) -> Sequence[Exporter]:
        return builtin_exporters(request)

    def session_finished(self, record: SessionRecord) -> None:
        """Nobody to tell."""

    def run_finished(self, run: RunRecord) -> None:
        """Nobody to tell."""


def builtin_exporters(request: OutputRequest) -> list[Exporter]:
    """The package's exporters of a run: the outputs its settings ask for, in the order they
    are written (the run file first, the OpenTelemetry collector last)."""
    s = request.settings
    stored, save, against = request.stored, request.save, request.against
    metric = s.gate.metric
    out: list[Exporter] = []
    if s.json_path is not None:
        out.append(RunFile(s.json_path))
    if save is not None:
        out.append(RunFile(baseline_path(s.rootdir, save)))
    if s.markdown_path is not None:
        out.append(MarkdownSummary(s.markdown_path, stored=stored, against=against, metric=metric))
    if s.html_path is not None:
        out.append(HtmlReport(s.html_path, stored=stored, against=against, gate=s.gate))
    if s.benchmark_json is not None:
        out.append(
            BenchmarkJson(s.benchmark_json, format=s.benchmark_format, ci_level=s.gate.ci_level)
        )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        out.append(
            MarkdownSummary(
                step_summary, stored=stored, against=against, metric=metric, append=True
            )
        )
    if s.otel:
        from pytest_agentspeed.outputs.otel import OtelExporter

        # Last: a collector that is down must not keep the files above from being written.
        out.append(OtelExporter(instructions=lambda: task_instructions(s.rootdir)))
    return out


def write_outputs(exporters: Sequence[Exporter], run: RunRecord, rootdir: Path) -> str | None:
    """Hand the finished run to ``exporters`` in order; ``None`` when all of them wrote, else
    the message for the first that could not (the ones after it are not tried)."""
    from pytest_agentspeed.run.spool import SPOOL_DIR

    failure = run_finished(exporters, run)
    if failure is None:
        return None
    # The sessions stay in the spool: nothing measured is lost to a bad output path.
    error = failure.error
    return (
        f"cannot write {failure.target}: {error.strerror or error}; the run's sessions "
        f"are kept in {rootdir / SPOOL_DIR} (agentspeed merge reads them)"
    )


#: Directories never searched for task files (environments, caches, version control).
_NOT_TASKS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})


def task_instructions(root: Path) -> dict[str, str]:
    """The instruction of every task defined by a task file under ``root``, by task id: the
    content an OpenTelemetry export includes when the user opts in. Read when the run ends,
    from the files, because under xdist the process that ends the run collected no task.
    Hidden directories and environments are skipped; a file that does not load is too (it
    failed collection already); tasks defined in Python are not found."""
    from pytest_agentspeed.errors import AgentSpeedError
    from pytest_agentspeed.tasks import TASK_FILE, load_task

    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _NOT_TASKS]
        if TASK_FILE in files:
            try:
                task = load_task(Path(folder) / TASK_FILE)
            except AgentSpeedError:
                continue
            found.setdefault(task.id, task.instruction)
    return found
