"""Fingerprints of runs: what must match for two arms' numbers to be comparable (DESIGN
section 8), the differences that refuse a stored baseline and those that only weaken the
comparison, and the record of a refused one. Pure functions over run records; no pytest,
no numpy (the plugin checks a stored baseline with them before any session runs)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_agentspeed.analysis.gate import GateSettings, estimator
from pytest_agentspeed.records import (
    NOT_COMPARED,
    Comparison,
    RateCheck,
    RunRecord,
    SessionRecord,
)


def fingerprint(run: RunRecord, arm: str) -> dict[str, Any]:
    """What must match for two arms' numbers to be comparable (DESIGN section 8)."""
    sessions = [s for s in run.sessions if s.endpoint == arm]
    return {
        "tasks": sorted({s.task for s in sessions}),
        "agent": run.config.get("agent"),
        "concurrency": run.environment.get("concurrency"),
        "time_scale": run.config.get("time_scale"),
        "repeat": run.config.get("repeat"),
        "metric_definitions": run.config.get("metric_definitions"),
    }


def metric_definition(fp: Mapping[str, Any], metric: str) -> int:
    """The version of ``metric``'s definition a fingerprint was recorded under; 1 when the run
    file predates the field (see :data:`~pytest_agentspeed.analysis.gate.METRIC_DEFINITIONS`)."""
    recorded = fp.get("metric_definitions")
    version = recorded.get(metric) if isinstance(recorded, Mapping) else None
    return version if isinstance(version, int) else 1


def _time_scale(value: Any) -> float:
    # None: no simulated endpoint, delays as the real endpoint makes them (scale 1).
    return 1.0 if value is None else float(value)


def _names(tasks: Sequence[str], most: int = 5) -> str:
    shown = ", ".join(tasks[:most])
    return shown + (f" and {len(tasks) - most} more" if len(tasks) > most else "")


def fingerprint_refusals(
    base: Mapping[str, Any],
    cand: Mapping[str, Any],
    *,
    metric: str,
    baseline_label: str = "the baseline",
    candidate_label: str = "this run",
) -> list[str]:
    """Each difference that makes a comparison meaningless, in words; empty when comparable.

    Refused: another time scale (every duration is scaled), another agent (other sessions),
    no task in common (nothing measures the same work), another definition of the gate
    metric. Unknown values (``None`` in an old run file) refuse nothing.
    """
    out = []
    scales = _time_scale(base.get("time_scale")), _time_scale(cand.get("time_scale"))
    if scales[0] != scales[1]:
        out.append(
            f"{baseline_label} ran at time scale {scales[0]:g} and {candidate_label} at "
            f"{scales[1]:g}"
        )
    agents = base.get("agent"), cand.get("agent")
    if None not in agents and agents[0] != agents[1]:
        out.append(
            f"{baseline_label} ran the {agents[0]} agent and {candidate_label} the {agents[1]} "
            "agent"
        )
    tasks = list(base.get("tasks") or ()), list(cand.get("tasks") or ())
    if tasks[0] and tasks[1] and not set(tasks[0]) & set(tasks[1]):
        out.append(
            f"{baseline_label} and {candidate_label} have no task in common "
            f"({_names(tasks[0])}; {_names(tasks[1])})"
        )
    versions = metric_definition(base, metric), metric_definition(cand, metric)
    if versions[0] != versions[1]:
        out.append(
            f"{baseline_label} measured {metric} by definition {versions[0]} and "
            f"{candidate_label} by definition {versions[1]}"
        )
    return out


def fingerprint_differences(base: Mapping[str, Any], cand: Mapping[str, Any]) -> list[str]:
    """Each difference that weakens a comparison without making it meaningless, named, for a
    warning: a partly different task set (only common slots pair), concurrency, repeat count,
    an agent one run does not record. What :func:`fingerprint_refusals` refuses is not here."""
    out = []
    common = set(base["tasks"]) & set(cand["tasks"])
    if base["tasks"] != cand["tasks"] and common:
        only_base = sorted(set(base["tasks"]) - set(cand["tasks"]))
        only_cand = sorted(set(cand["tasks"]) - set(base["tasks"]))
        parts = []
        if only_base:
            parts.append(f"only in the baseline: {', '.join(only_base)}")
        if only_cand:
            parts.append(f"only in the candidate: {', '.join(only_cand)}")
        out.append("task set differs (" + "; ".join(parts) + ")")
    if base.get("agent") != cand.get("agent") and None in (base.get("agent"), cand.get("agent")):
        out.append(f"agent differs: {base.get('agent')} vs {cand.get('agent')}")
    for key in ("concurrency", "repeat"):
        if base.get(key) != cand.get(key):
            out.append(f"{key.replace('_', ' ')} differs: {base.get(key)} vs {cand.get(key)}")
    return out


def refused_line(refused: Sequence[str]) -> str:
    """The report line of a refused baseline: why, instead of numbers."""
    return f"not compared: {'; '.join(refused)}; record a new baseline"


def not_compared(
    base: Sequence[SessionRecord],
    cand: Sequence[SessionRecord],
    *,
    baseline: str,
    candidate: str,
    against: str,
    settings: GateSettings,
    refused: Sequence[str],
    warnings: Sequence[str] = (),
) -> Comparison:
    """A refused comparison: no statistic, no verdict, the reasons in ``refused``."""
    return Comparison(
        metric=settings.metric,
        baseline=baseline,
        candidate=candidate,
        against=against,
        estimator=estimator(settings.metric),
        paired=False,
        n=(len(base), len(cand)),
        ratio=None,
        ci=None,
        ci_level=settings.ci_level,
        test="none",
        p=None,
        p_improved=None,
        brunner_munzel_p=None,
        welch=None,
        mde=None,
        sessions_needed=None,
        pass_rate=RateCheck(
            what="passed",
            counts=(sum(s.passed for s in base), sum(s.passed for s in cand)),
            sessions=(len(base), len(cand)),
            p=math.nan,
            regressed=False,
        ),
        error_rate=RateCheck(
            what="errors",
            counts=(
                sum(s.outcome == "error" for s in base),
                sum(s.outcome == "error" for s in cand),
            ),
            sessions=(len(base), len(cand)),
            p=math.nan,
            regressed=False,
        ),
        tolerance=settings.tolerance,
        margin=settings.margin,
        alpha=settings.alpha,
        verdict=NOT_COMPARED,
        line=refused_line(refused),
        warnings=tuple(warnings),
        refused=tuple(refused),
    )
