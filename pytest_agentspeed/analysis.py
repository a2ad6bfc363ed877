"""The analysis a run file carries: the per-arm summary and the in-run comparisons.

One function used wherever a run's sessions are final (end of a pytest run, ``agentspeed
merge``), so every run file is analysed the same way. Plain Python; no pytest.
"""

from __future__ import annotations

from dataclasses import replace

from pytest_agentspeed.compare import Comparison, GateSettings, compare_runs
from pytest_agentspeed.metrics import summarize_run
from pytest_agentspeed.records import RunRecord


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
            run, run, baseline_arm=names[0], candidate_arm=name, against="this run", settings=gate
        )
        for name in names[1:]
    ]


def analysed(
    run: RunRecord, gate: GateSettings, *, extra: list[Comparison] | None = None
) -> RunRecord:
    """``run`` with its summary and comparisons computed from its sessions.

    :param extra: comparisons made elsewhere (against a stored baseline), appended.
    """
    summary = summarize_run(
        run.sessions,
        arms(run),
        window_s=float(run.config.get("window_s") or 1800.0),
        concurrency=int(run.environment.get("concurrency") or 1),
    )
    comparisons = [*in_run_comparisons(run, gate), *(extra or [])]
    return replace(run, summary=summary, comparisons=tuple(c.to_json() for c in comparisons))
