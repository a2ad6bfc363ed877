"""The analysis a run file carries: the per-arm summary and the in-run comparisons.

One function used wherever a run's sessions are final (end of a pytest run, ``agentspeed
merge``), so every run file is analysed the same way. Plain Python; no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pytest_agentspeed.analysis.clock import clock_summary
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.metrics import summarize_run
from pytest_agentspeed.records import Comparison, RunRecord

#: What the ``against`` of an in-run comparison says.
IN_RUN = "this run"


def summary_value(summary: Mapping[str, Any], *keys: str) -> Any:
    """The value at ``keys`` in an arm's summary (``"throughput_tok_s", "p50"``); ``None``
    where the summary has none (an older run file, an arm without the figure)."""
    value: Any = summary
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def arms(run: RunRecord) -> list[str]:
    """Endpoint names with sessions, in the run's order: the first is the baseline arm."""
    seen = {s.endpoint for s in run.sessions}
    ordered = [e.name for e in run.endpoints if e.name in seen]
    return ordered + sorted(seen.difference(ordered))


def in_run_comparisons(run: RunRecord, gate: GateSettings) -> list[Comparison]:
    """Each candidate arm against the run's baseline arm, paired by slot."""
    names = arms(run)
    if len(names) < 2:
        return []
    # Imported here: compare.py loads scipy (0.7 s of every run's end), which a run of one
    # arm and no baseline never uses.
    from pytest_agentspeed.analysis.compare import compare_runs

    return [
        compare_runs(
            run, run, baseline_arm=names[0], candidate_arm=name, against=IN_RUN, settings=gate
        )
        for name in names[1:]
    ]


def baseline_arm_for(baseline: RunRecord, arm: str) -> str:
    """The arm of a stored baseline that ``arm`` is compared with: the one of the same name,
    else the baseline's first (its baseline arm). The one rule of this pairing: the
    comparisons, the refusal before a run, the table's columns and the report all use it."""
    names = arms(baseline)
    return arm if arm in names else names[0]


def against_baseline(
    baseline: RunRecord,
    run: RunRecord,
    against: str,
    gate: GateSettings,
    *,
    baseline_label: str = "the baseline",
) -> list[Comparison]:
    """Each arm of ``run`` against its arm of a stored ``baseline`` (which has sessions).

    :param against: where the baseline came from, as the comparisons and columns name it.
    :param baseline_label: how a refusal names the baseline (``the baseline 'main'``).
    """
    from pytest_agentspeed.analysis.compare import compare_runs

    return [
        compare_runs(
            baseline,
            run,
            baseline_arm=baseline_arm_for(baseline, name),
            candidate_arm=name,
            against=against,
            settings=gate,
            baseline_label=baseline_label,
        )
        for name in arms(run)
    ]


def analysed(
    run: RunRecord, gate: GateSettings, *, extra: list[Comparison] | None = None
) -> RunRecord:
    """``run`` with its summary and comparisons computed from its sessions.

    :param extra: comparisons made elsewhere (against a stored baseline), appended.
    """
    summary = summary_of(run)
    comparisons = [*in_run_comparisons(run, gate), *(extra or [])]
    return replace(
        run,
        environment=environment_of(run),
        summary=summary,
        comparisons=tuple(comparisons),
    )


def summary_of(run: RunRecord) -> dict[str, Any]:
    """Every arm's summary computed from the run's sessions, with the run's window and
    concurrency (and how late the clock ran, when the sessions say)."""
    summary = summarize_run(
        run.sessions,
        arms(run),
        window_s=float(run.config.get("window_s") or 1800.0),
        concurrency=int(run.environment.get("concurrency") or 1),
    )
    for arm, values in summary.items():
        clock = clock_summary([s for s in run.sessions if s.endpoint == arm])
        if clock is not None:
            values["clock"] = clock
    return summary


def environment_of(run: RunRecord) -> dict[str, Any]:
    """The run's environment with how late the clock ran over all its sessions (``clock``),
    computed from the sessions: each process of the run (an xdist worker, a shard) measured its
    own, and the run is what they add up to. Without measured sessions (an old run file) the
    environment is as it was."""
    environment = {k: v for k, v in run.environment.items() if k != "clock"}
    clock = clock_summary(run.sessions)
    if clock is not None:
        environment["clock"] = clock
    return environment
