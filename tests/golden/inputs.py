"""The factory-made run the exporters' golden files were written from.

The golden files were written by the code of commit 542271d, the pytest session's own writes,
before the run core and the exporters were split out of it (they came in f25fa06).
``tests/test_bench.py`` builds the same run, has the exporters write it, and compares the
bytes."""

from __future__ import annotations

from dataclasses import replace

from factories import arm, paired_arms, run_record

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.records import RunRecord

GATE = GateSettings()
BASELINE_NAME = "main"


def _varied(run: RunRecord) -> RunRecord:
    """Two turns per session with TTFT, generation and tool time, so every chart has data."""
    sessions = []
    for s in run.sessions:
        (turn,) = s.turns
        wall = turn.wall_s / 2
        phases = dict(turn.phases_s) | {
            "ttft": wall * 0.1,
            "generation": wall * 0.6,
            "tool": wall * 0.3,
        }
        marks = dict(turn.marks_s) | {"request_sent": 0.001, "first_token": wall * 0.1}
        one = replace(turn, wall_s=wall, phases_s=phases, marks_s=marks)
        turns = (one, replace(one, index=1))
        sessions.append(replace(s, turns=turns, phases_s={k: v * 2 for k, v in phases.items()}))
    return replace(run, sessions=tuple(sessions))


def inputs() -> tuple[RunRecord, RunRecord]:
    """(the run, with its in-run and stored-baseline comparisons; the stored baseline)."""
    from pytest_agentspeed.analysis.summary import against_baseline, analysed

    base, cand = paired_arms(0.85, 0.1, 10, seed=3)
    old, _ = paired_arms(1.0, 0.1, 10, seed=4)
    stored = analysed(_varied(run_record(arm("a", old))), GATE)
    run = _varied(run_record(arm("a", base) + arm("b", cand)))
    extra = against_baseline(
        stored, run, f"baseline {BASELINE_NAME}", GATE, baseline_label="the baseline 'main'"
    )
    return analysed(run, GATE, extra=extra), stored
