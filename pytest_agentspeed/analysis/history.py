"""A gate metric's history over saved run files: one trend per endpoint, and the gate's
verdict on every step between consecutive runs (``agentspeed report --history DIR``).

Each point is an arm's estimate of the gate metric as its run's summary states it (the row
the summary table leads with: session throughput P50, mean session time, or tasks per
window), with a CI at the gate's level computed from the arm's sessions. Each step compares
the earlier run's arm with the later run's arm of the same name exactly as ``agentspeed
compare`` does (:func:`~pytest_agentspeed.analysis.compare.compare_runs`: paired by slot when
the runs share at least two, refused as ``NOT COMPARED`` when their fingerprints differ), so a
step marked FAIL is one the gate would FAIL. Plain Python; no pytest.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pytest_agentspeed.analysis import metrics, stats
from pytest_agentspeed.analysis.compare import BOOTSTRAP_RESAMPLES, compare_runs
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import arms, summary_of, summary_value
from pytest_agentspeed.errors import AgentSpeedError, RunFileError
from pytest_agentspeed.records import Comparison, RunRecord, SessionRecord
from pytest_agentspeed.runfile import read_run_file

#: Where each gate metric's estimate is in an arm's summary: the summary table's leading row.
#: A dotted path of keys.
SUMMARY_ESTIMATE = {
    "throughput_tok_s": "throughput_tok_s.p50",
    "session_wall_s": "session_wall_s.mean",
    "tasks_per_window": "tasks_per_window",
}
#: What each estimate is, with its unit, for the chart's axis and the table's heading.
ESTIMATE_LABELS = {
    "throughput_tok_s": "session throughput P50 (tok/s)",
    "session_wall_s": "mean session time (s)",
    "tasks_per_window": "tasks per window",
}


@dataclass(frozen=True, slots=True)
class SavedRun:
    """A run file of the history, with the name it is shown under and its time."""

    label: str
    path: Path
    run: RunRecord
    #: The run's ``created_at``, parsed (a time without a zone is taken as UTC).
    time: datetime


@dataclass(frozen=True, slots=True)
class Point:
    """An endpoint's gate metric in one run."""

    run: str
    created_at: str
    sessions: int
    #: The summary's estimate; ``None`` when the arm has none (no session with the metric).
    value: float | None
    #: Its CI at the gate's level; ``None`` when too few sessions bound it.
    ci: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Trend:
    """One endpoint over the runs that have it, oldest first; ``steps[i]`` compares
    ``points[i]`` (the baseline) with ``points[i + 1]`` (the candidate)."""

    endpoint: str
    points: tuple[Point, ...]
    steps: tuple[Comparison, ...]

    @property
    def fails(self) -> int:
        """How many steps the gate calls FAIL."""
        return sum(1 for step in self.steps if step.verdict == "FAIL")


@dataclass(frozen=True, slots=True)
class History:
    """Every endpoint's trend of the gate metric over the runs, oldest first."""

    metric: str
    ci_level: float
    runs: tuple[SavedRun, ...]
    trends: tuple[Trend, ...]


def read_history(
    directory: Path, current: Path, run: RunRecord
) -> tuple[list[SavedRun], list[str]]:
    """The run files of ``directory`` and ``current`` (read already as ``run``), oldest
    first, and a note per ``*.json`` file skipped as not a run file.

    A JSON file without an ``agentspeed.run`` schema (another tool's output kept next to the
    run files) is skipped with a note; a file that should be a run file and cannot be read
    (corrupt, cut short, a newer schema) is an error: leaving it out would hide a point, and
    perhaps the very step the history is for.

    :raises AgentSpeedError: when ``directory`` is missing or holds no run file.
    :raises RunFileError: for a run file that cannot be read; the message names it.
    """
    if not directory.exists():
        raise AgentSpeedError(f"--history {directory}: no such directory")
    if not directory.is_dir():
        raise AgentSpeedError(f"--history {directory}: not a directory")
    notes: list[str] = []
    found: list[tuple[Path, RunRecord]] = []
    here = current.resolve()
    for path in sorted(directory.glob("*.json")):
        if path.resolve() == here:
            continue
        try:
            found.append((path, read_run_file(path)))
        except RunFileError as exc:
            if not _foreign_json(path):
                raise
            notes.append(f"skipped {exc}")
    if not found:
        raise AgentSpeedError(f"--history {directory}: no run files (*.json) in it")
    # A copy of RUN.json saved under another name is the same point, not a second one.
    found = [(p, r) for p, r in found if r != run]
    found.append((current, run))
    names = [p.name for p, _ in found]
    saved = [
        SavedRun(
            label=p.name if names.count(p.name) == 1 else str(p), path=p, run=r, time=_time(p, r)
        )
        for p, r in found
    ]
    return sorted(saved, key=lambda s: (s.time, s.label)), notes


def _foreign_json(path: Path) -> bool:
    """Whether ``path`` is JSON that does not claim to be a run file (no run schema)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    schema = data.get("schema") if isinstance(data, dict) else None
    return not (isinstance(schema, str) and schema.startswith("agentspeed.run/"))


def _time(path: Path, run: RunRecord) -> datetime:
    try:
        time = datetime.fromisoformat(run.created_at)
    except ValueError:
        raise RunFileError(
            f"{path}: created_at {run.created_at!r} is not an ISO 8601 time"
        ) from None
    return time if time.tzinfo is not None else time.replace(tzinfo=UTC)


def history_of(runs: Sequence[SavedRun], gate: GateSettings) -> History:
    """Each endpoint's trend over ``runs`` (oldest first): the endpoints of the latest run
    first, in its order, then those only earlier runs have."""
    endpoints: list[str] = []
    for saved in reversed(runs):
        endpoints += [name for name in arms(saved.run) if name not in endpoints]
    # Each run's summary once, whatever number of endpoints it has.
    summarised = [(saved, summary_of(saved.run)) for saved in runs]
    trends = []
    for endpoint in endpoints:
        having = [saved for saved, summary in summarised if endpoint in summary]
        points = tuple(
            _point(saved, endpoint, gate, summary[endpoint])
            for saved, summary in summarised
            if endpoint in summary
        )
        steps = tuple(
            compare_runs(
                before.run,
                after.run,
                baseline_arm=endpoint,
                candidate_arm=endpoint,
                against=before.label,
                settings=gate,
                baseline_label=f"the earlier run {before.label}",
                candidate_label=f"the later run {after.label}",
            )
            for before, after in itertools.pairwise(having)
        )
        trends.append(Trend(endpoint=endpoint, points=points, steps=steps))
    return History(
        metric=gate.metric, ci_level=gate.ci_level, runs=tuple(runs), trends=tuple(trends)
    )


def _point(saved: SavedRun, endpoint: str, gate: GateSettings, summary: dict[str, Any]) -> Point:
    run = saved.run
    sessions = [s for s in run.sessions if s.endpoint == endpoint]
    value = summary_estimate(summary, gate.metric)
    return Point(
        run=saved.label,
        created_at=run.created_at,
        sessions=len(sessions),
        value=value,
        ci=None if value is None else estimate_ci(run, sessions, gate),
    )


def summary_estimate(summary: dict[str, Any], metric: str) -> float | None:
    """The gate metric's estimate in an arm's summary (:data:`SUMMARY_ESTIMATE`)."""
    value = summary_value(summary, *SUMMARY_ESTIMATE[metric].split("."))
    return float(value) if isinstance(value, int | float) else None


def estimate_ci(
    run: RunRecord, sessions: Sequence[SessionRecord], gate: GateSettings
) -> tuple[float, float] | None:
    """The CI of an arm's summary estimate at the gate's level (one-sided ``1 - alpha``
    bounds, like the comparisons' CIs).

    The P50 of session throughput gets the distribution-free CI of a median (the order
    statistics the sign test inverts); a mean session time and tasks per window, which are
    means, the percentile bootstrap over sessions with the gate's resample count, seeded by
    the sessions' count so that a report is the same every time it is made.
    """
    if gate.metric == "throughput_tok_s":
        # The very values whose P50 the summary states (metrics.summarize_arm).
        return metrics.median_ci(metrics.session_throughputs(sessions), gate.ci_level)
    if sum(1 for s in sessions if s.turns) < 2:
        return None
    # Rows as the summary counts them: the pass rate over every session, the mean time over
    # the sessions that had a turn.
    rows = np.array([[float(s.passed), s.wall_s, float(bool(s.turns))] for s in sessions])
    scale = (
        float(run.config.get("window_s") or 1800.0) * int(run.environment.get("concurrency") or 1)
        if gate.metric == "tasks_per_window"
        else None
    )

    def statistic(r: np.ndarray) -> float:
        timed = r[:, 2] == 1
        if not timed.any():
            return math.nan  # dropped by the bootstrap
        mean_wall = float(r[timed, 1].mean())
        # Little's law as the summary has it: window x concurrency / mean time x pass rate.
        return mean_wall if scale is None else scale / mean_wall * float(r[:, 0].mean())

    reps = stats.bootstrap_log_ratio(
        statistic, rows, resamples=BOOTSTRAP_RESAMPLES, seed=len(sessions)
    )
    if len(reps) < 100:
        return None
    low, high = np.quantile(reps, [gate.alpha, 1 - gate.alpha])
    return (float(low), float(high)) if math.isfinite(low) and math.isfinite(high) else None
