"""The outputs a run's settings ask for: which exporters, in which order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_agentspeed.outputs.exporters import Exporter, HtmlReport, MarkdownSummary, RunFile
from pytest_agentspeed.runfile import baseline_path

if TYPE_CHECKING:
    from pytest_agentspeed.records import RunRecord
    from pytest_agentspeed.settings import Settings


def exporters_for(
    settings: Settings, stored: RunRecord | None, *, save: str | None, against: str
) -> list[Exporter]:
    """The outputs ``settings`` ask for, in the order they are written.

    :param stored: the stored baseline the run was compared with (its columns are shown).
    :param save: the baseline name to save the run as, if it is saved.
    :param against: where the stored baseline came from, as the outputs name it.
    """
    s = settings
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
