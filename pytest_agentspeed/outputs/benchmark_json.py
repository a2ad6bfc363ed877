"""Benchmark-history files: each arm's figures for the tools teams keep history in.

``--agentspeed-benchmark-json PATH`` writes, for every arm (endpoint) of the run, four figures
with their confidence intervals, in one of two formats (``--agentspeed-benchmark-format``):

* ``github-action-benchmark``: the action's custom format, a JSON array of
  ``{name, unit, value, range, extra}`` (its ``BenchmarkResult``, read by
  ``extractCustomBenchmarkResult`` in github-action-benchmark's ``src/extract.ts``). The action
  reads one direction per file (``tool: customBiggerIsBetter`` or ``customSmallerIsBetter``), so
  ``PATH`` holds the bigger-is-better figures (session throughput, tasks per window) and a
  sibling, :func:`smaller_path` (``PATH`` with ``.smaller`` before its suffix), the
  smaller-is-better ones (session time, TTFT).
* ``bencher``: the Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format),
  ``{benchmark: {measure: {value, lower_value, upper_value}}}`` in ``PATH`` alone: one
  benchmark per arm, one measure per figure, the CI as the lower and upper values.

The values are the run file's own (its ``summary``); the intervals are the distribution-free
intervals of the median (:func:`~pytest_agentspeed.analysis.metrics.median_ci`) at the gate's
CI level, from the same sessions (TTFT: the same turns). Tasks per window is a ratio of means
and has no per-arm interval. ``docs/ci.md`` shows the workflows that read these files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_agentspeed.analysis.metrics import (
    median_ci,
    session_throughputs,
    session_walls,
    turn_ttfts,
)
from pytest_agentspeed.analysis.summary import IN_RUN, arms, summary_value
from pytest_agentspeed.records import JSON, RunRecord, SessionRecord
from pytest_agentspeed.runfile import write_json_atomic


@dataclass(frozen=True, slots=True)
class Measure:
    """One figure the history files carry for each arm."""

    #: Bencher's measure slug.
    slug: str
    #: How github-action-benchmark's chart names it (the arm follows in brackets).
    label: str
    unit: str
    bigger_is_better: bool
    #: Where the run file's summary of an arm holds the value (dotted keys).
    summary_key: str
    #: The samples the value is the median of, for its interval; ``None``: no interval.
    samples: Callable[[Sequence[SessionRecord]], list[float]] | None
    #: What one sample is, as ``extra`` counts them.
    per: str = "sessions"


MEASURES = (
    Measure(
        "session-throughput",
        "session throughput P50",
        "tok/s",
        True,
        "throughput_tok_s.p50",
        session_throughputs,
    ),
    Measure("tasks-per-window", "tasks per window", "tasks", True, "tasks_per_window", None),
    Measure(
        "session-time",
        "median session time",
        "s",
        False,
        "session_wall_s.median",
        session_walls,
    ),
    Measure("ttft", "TTFT P50", "s", False, "ttft_s.p50", turn_ttfts, per="turns"),
)


@dataclass(frozen=True, slots=True)
class Figure:
    """One arm's value on one measure, with its confidence interval when it has one."""

    arm: str
    measure: Measure
    value: float
    ci: tuple[float, float] | None
    #: Samples the value was computed from (sessions; turns for TTFT).
    n: int


def figures(run: RunRecord, *, ci_level: float) -> list[Figure]:
    """Every arm's figures, arm by arm in the run's order; a figure the run does not have (no
    finished session, every session errored) is left out."""
    out: list[Figure] = []
    for arm in arms(run):
        summary = run.summary.get(arm, {})
        sessions = [s for s in run.sessions if s.endpoint == arm]
        for measure in MEASURES:
            value = summary_value(summary, *measure.summary_key.split("."))
            if not isinstance(value, int | float) or not math.isfinite(value):
                continue
            if measure.samples is None:
                out.append(Figure(arm, measure, float(value), None, len(sessions)))
                continue
            samples = measure.samples(sessions)
            out.append(
                Figure(arm, measure, float(value), median_ci(samples, ci_level), len(samples))
            )
    return out


def smaller_path(path: Path) -> Path:
    """Where the smaller-is-better figures of ``path`` go: ``bench.json`` ->
    ``bench.smaller.json`` (``bench`` -> ``bench.smaller``)."""
    return path.with_name(f"{path.stem}.smaller{path.suffix}")


def gate_lines(run: RunRecord, arm: str) -> list[str]:
    """What the gate said of ``arm``: each comparison in which it is the candidate (its
    report line), or that it is the run's baseline arm."""
    lines = [
        f"gate vs {c.baseline} ({c.against}): {c.line}"
        for c in run.comparisons
        if c.candidate == arm
    ]
    if any(c.baseline == arm and c.against == IN_RUN for c in run.comparisons):
        lines.append("the baseline arm of this run")
    return lines


def github_action_benchmark(
    run: RunRecord, found: Sequence[Figure], *, ci_level: float
) -> tuple[list[JSON], list[JSON]]:
    """github-action-benchmark's custom entries: (bigger-is-better, smaller-is-better).

    ``range`` is the interval as the chart's tooltip shows it (``90% CI 48.1-53``); ``extra``
    (also shown in the tooltip) says how many samples, what the gate said and which run.
    """
    bigger: list[JSON] = []
    smaller: list[JSON] = []
    for figure in found:
        m = figure.measure
        entry: JSON = {"name": f"{m.label} [{figure.arm}]", "unit": m.unit, "value": figure.value}
        if figure.ci is not None:
            lo, hi = figure.ci
            entry["range"] = f"{ci_level * 100:.0f}% CI {lo:.4g}-{hi:.4g}"
        extra = [
            f"n={figure.n} {m.per}",
            *gate_lines(run, figure.arm),
            f"run {run.created_at}, pytest-agentspeed {run.agentspeed_version}",
        ]
        entry["extra"] = "\n".join(extra)
        (bigger if m.bigger_is_better else smaller).append(entry)
    return bigger, smaller


def bencher_metric_format(found: Sequence[Figure]) -> JSON:
    """The Bencher Metric Format: ``{arm: {measure slug: {value, lower_value, upper_value}}}``."""
    out: JSON = {}
    for figure in found:
        metric: JSON = {"value": figure.value}
        if figure.ci is not None:
            metric["lower_value"], metric["upper_value"] = figure.ci
        out.setdefault(figure.arm, {})[figure.measure.slug] = metric
    return out


class BenchmarkJson:
    """The run's figures for a benchmark-history tool (``--agentspeed-benchmark-json``).

    :param format: one of :data:`~pytest_agentspeed.settings.BENCHMARK_FORMATS`.
    :param ci_level: the gate's two-sided CI level (its intervals are at the same level).
    """

    def __init__(self, path: Path, *, format: str, ci_level: float) -> None:
        self.path = path
        #: The file being written: after a failure, the one that could not be (the error
        #: line names it).
        self.target = path
        self.format = format
        self.ci_level = ci_level

    def session_finished(self, record: SessionRecord) -> None:
        """Nothing: the figures are of the whole run."""

    def run_finished(self, run: RunRecord) -> None:
        found = figures(run, ci_level=self.ci_level)
        if self.format == "bencher":
            write_json_atomic(self.path, bencher_metric_format(found))
            return
        bigger, smaller = github_action_benchmark(run, found, ci_level=self.ci_level)
        for path, entries in ((self.path, bigger), (smaller_path(self.path), smaller)):
            self.target = path
            write_json_atomic(path, entries)
        self.target = self.path
