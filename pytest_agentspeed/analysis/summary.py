"""The analysis a run file carries: the per-arm summary and the in-run comparisons.

One function used wherever a run's sessions are final (end of a pytest run, ``agentspeed
merge``), so every run file is analysed the same way. Plain Python; no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pytest_agentspeed.analysis.compare import Comparison, GateSettings, compare_runs
from pytest_agentspeed.analysis.metrics import summarize_run
from pytest_agentspeed.outputs.terminal import Table
from pytest_agentspeed.records import RunRecord

#: What the ``against`` of an in-run comparison says.
IN_RUN = "this run"


def arms(run: RunRecord) -> list[str]:
    """Endpoint names with sessions, in the run's order: the first is the baseline arm."""
    seen = {s.endpoint for s in run.sessions}
    ordered = [e.name for e in run.endpoints if e.name in seen]
    return ordered + sorted(seen.difference(ordered))


def in_run_comparisons(run: RunRecord, gate: GateSettings) -> list[Comparison]:
    """Each candidate arm against the run's baseline arm, paired by slot."""
    names = arms(run)
    return [
        compare_runs(
            run, run, baseline_arm=names[0], candidate_arm=name, against=IN_RUN, settings=gate
        )
        for name in names[1:]
    ]


def baseline_arm_for(baseline: RunRecord, arm: str) -> str:
    """The arm of a stored baseline that ``arm`` is compared with: the one of the same name,
    else the baseline's first (its baseline arm)."""
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
    return replace(run, summary=summary, comparisons=tuple(c.to_json() for c in comparisons))


def summary_of(run: RunRecord) -> dict[str, Any]:
    """Every arm's summary computed from the run's sessions, with the run's window and
    concurrency."""
    return summarize_run(
        run.sessions,
        arms(run),
        window_s=float(run.config.get("window_s") or 1800.0),
        concurrency=int(run.environment.get("concurrency") or 1),
    )


def table_of(
    run: RunRecord,
    baseline: RunRecord | None = None,
    against: str = "baseline",
    *,
    metric: str | None = None,
) -> Table:
    """The summary table's columns, which the terminal, markdown and HTML outputs all format.

    A column per arm of ``run`` and a difference to its baseline arm, as in an in-run A/B.
    With a stored ``baseline``, its arms that the run's arms are compared with come first,
    labelled ``ARM (AGAINST)``, and each arm of the run gets a difference to its one.

    :param against: where the baseline came from (``baseline main``, ``baseline main.json``).
    :param metric: the gate's metric, whose row leads; default: the run's comparisons' metric.
    """
    names = arms(run)
    summary = dict(_summaries(run))
    columns: list[str] = list(names)
    pairs = [(names[0], name) for name in names[1:]]
    if baseline is not None and arms(baseline):
        stored = _summaries(baseline)
        labels: dict[str, str] = {}
        for name in names:
            base_arm = baseline_arm_for(baseline, name)
            labels.setdefault(base_arm, baseline_label(base_arm, against))
        columns = [*labels.values(), *names]
        summary = {labels[b]: stored.get(b, {}) for b in labels} | summary
        pairs = [(labels[baseline_arm_for(baseline, name)], name) for name in names] + pairs
    chosen = metric or next((c["metric"] for c in run.comparisons), None) or GateSettings().metric
    return Table(summary=summary, columns=columns, pairs=pairs, metric=chosen)


def baseline_label(arm: str, against: str) -> str:
    """The column of a stored baseline's arm: ``ARM (baseline main)``."""
    return f"{arm} ({against})"


def _summaries(run: RunRecord) -> Mapping[str, Mapping[str, Any]]:
    """The run's stored summary; recomputed for files written before a summary field
    existed (the seconds per session by phase), so old run files show every row."""
    stored = run.summary
    if all("phase_s_per_session" in stored.get(name, {}) for name in arms(run)):
        return stored
    return summary_of(run)
