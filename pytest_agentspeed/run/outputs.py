"""The outputs a run's settings ask for: which exporters, in which order."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pytest_agentspeed.outputs.benchmark_json import BenchmarkJson
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
    return out
