"""The gate's verdicts on constructed arms, and the comparison's report line and JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from factories import arm, paired_arms, session

from pytest_agentspeed import stats
from pytest_agentspeed.compare import (
    METRIC_DEFINITIONS,
    NOT_COMPARED,
    GateSettings,
    compare_arms,
    compare_runs,
    fingerprint_differences,
    fingerprint_refusals,
    metric_definition,
)
from pytest_agentspeed.records import RunRecord, SessionRecord
from pytest_agentspeed.terminal import format_p, p_equals

GATE = GateSettings()


def decide(base: list[SessionRecord], cand: list[SessionRecord], **kw: object):  # type: ignore[no-untyped-def]
    return compare_arms(
        base, cand, baseline="A", candidate="B", against="this run", settings=GATE, **kw
    )  # type: ignore[arg-type]


def test_a_clear_regression_fails_with_the_design_line() -> None:
    a, b = paired_arms(0.80, 0.10, 20)
    result = decide(arm("A", a), arm("B", b))
    assert result.verdict == "FAIL"
    assert result.paired
    assert result.n == (20, 20)
    assert result.test == "wilcoxon_signed_rank"
    assert result.ratio == pytest.approx(0.80, abs=0.05)
    assert result.ci is not None
    assert result.ci[0] < result.ratio < result.ci[1] < 0.95
    assert result.p is not None
    assert result.p < 0.001
    line = result.line()
    assert line.startswith(f"throughput ratio {result.ratio:.2f} [90% CI ")
    assert line.endswith(" n=20/20 paired, MDE " + f"{result.mde * 100:.1f}% -> FAIL")  # type: ignore[operator]
    assert "slower than A" in result.reasons[0]


def test_no_change_with_enough_sessions_passes() -> None:
    a, b = paired_arms(1.0, 0.05, 30)
    result = decide(arm("A", a), arm("B", b))
    assert result.verdict == "PASS"
    assert result.ci is not None
    assert result.ci[0] > 0.90
    assert result.mde is not None
    assert result.mde < 0.10


def test_a_clear_improvement_is_reported_and_does_not_fail() -> None:
    a, b = paired_arms(1.4, 0.10, 20)
    result = decide(arm("A", a), arm("B", b))
    assert result.verdict == "IMPROVED"
    assert not result.fails()
    assert "consider a new baseline" in result.reasons[0]
    # The line shows the p-value of the test in the estimate's direction (faster here).
    assert result.alternative == "greater"
    assert result.p_improved is not None
    assert result.p_improved < 0.001
    assert f", {p_equals(result.p_improved)}, " in result.line()
    assert ", p<1e-04, " in result.line()


def test_a_noisy_small_run_is_inconclusive_and_says_what_would_decide_it() -> None:
    base = np.full(6, 50.0)
    cand = base * np.array([0.8, 1.1, 0.95, 1.05, 0.9, 1.0])
    result = decide(arm("A", base), arm("B", cand))
    assert result.verdict == "INCONCLUSIVE"
    assert not result.fails("warn")
    assert result.fails("fail")
    assert result.sessions_needed is not None
    assert result.sessions_needed > 6
    assert f"about {result.sessions_needed} sessions per arm" in result.reasons[0]


def test_pass_is_refused_when_the_run_could_not_see_a_regression_of_the_margin() -> None:
    # Ten pairs, nine within 3% and one far faster: the rank CI's lower bound (1.00) is well
    # above 0.90 and p(faster) = 0.097 is not significant, so only the MDE guard (the outlier
    # makes the spread, and the MDE, large) stands between this run and a PASS.
    d = [0.0, 0.01, -0.01, 0.02, -0.02, 0.03, 0.01, 0.0, 0.02, 0.9]
    result = decide(arm("A", [50.0] * 10), arm("B", [50 * math.exp(x) for x in d]))
    assert result.ci is not None
    assert result.ci[0] > 0.90
    assert result.p_improved is not None
    assert result.p_improved > 0.05
    assert result.mde == pytest.approx(0.205, abs=0.001)
    assert result.verdict == "INCONCLUSIVE"
    assert result.reasons == (
        "the run cannot tell a 10% regression from noise (MDE 20.5%); "
        "about 45 sessions per arm would decide it",
    )


@pytest.mark.parametrize(
    ("pairs", "smallest"),
    [(2, "0.25"), (3, "0.125"), (4, "0.0625")],
)
def test_pairs_too_few_to_ever_decide_say_so(pairs: int, smallest: str) -> None:
    # Every pair twice as fast: as strong as evidence gets, and still no verdict, no CI, no
    # MDE, and never advice below the 5 pairs that can reach p < 0.05.
    result = decide(arm("A", [50.0] * pairs), arm("B", [100.0 + i for i in range(pairs)]))
    assert result.verdict == "INCONCLUSIVE"
    assert result.ci is None
    assert result.mde is None
    assert result.p_improved == pytest.approx(float(smallest))
    assert result.sessions_needed is not None
    assert result.sessions_needed >= 5
    assert result.reasons[0].startswith(
        f"{pairs} pairs cannot decide at alpha 0.05 (the smallest possible p is {smallest}); "
        "at least 5 pairs per arm are needed"
    )
    assert result.line().endswith(
        f"[90% CI -], p={format_p(float(smallest))}, n={pairs}/{pairs} paired, MDE - "
        "-> INCONCLUSIVE"
    )


def test_three_pairs_twice_as_fast_no_longer_print_a_ci_that_excludes_one() -> None:
    # The run: ratio 2.00 with a CI excluding 1 beside p = 0.125.
    result = decide(arm("A", [50.0, 50.0, 50.0]), arm("B", [99.0, 100.0, 101.0]))
    assert result.line() == (
        "throughput ratio 2.00 [90% CI -], p=0.125, n=3/3 paired, MDE - -> INCONCLUSIVE"
    )


def test_unpaired_arms_too_small_to_decide() -> None:
    # 3 against 3 without common slots: the smallest p is 1/20 = 0.05, not below alpha.
    base = [session("A", i, 50.0) for i in range(3)]
    cand = [session("B", i + 10, 100.0) for i in range(3)]
    result = decide(base, cand)
    assert not result.paired
    assert result.ci is None
    assert result.mde is None
    assert result.reasons[0].startswith(
        "3 and 3 sessions cannot decide at alpha 0.05 (the smallest possible p is 0.05); "
        "at least 4 sessions per arm are needed"
    )
    assert result.sessions_needed is not None
    assert result.sessions_needed >= 4


def test_five_pairs_mde_uses_the_exact_tests_real_level() -> None:
    # With 5 pairs the exact test's level is 1/32, not 0.05: the MDE is sized for that.
    d = [0.01, -0.02, 0.03, 0.0, -0.01]
    result = decide(arm("A", [50.0] * 5), arm("B", [50 * math.exp(x) for x in d]))
    # (Token counts are whole numbers: the recorded differences are d up to rounding.)
    se = float(np.std(d, ddof=1)) / math.sqrt(5)
    assert result.mde == pytest.approx(stats.mde(se, alpha=1 / 32), rel=2e-3)
    assert result.mde > stats.mde(se, alpha=0.05)


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.5, "0.500"), (0.0012, "0.001"), (0.00042, "4e-04"), (1e-4, "1e-04"), (9.9e-5, "<1e-04")],
)
def test_format_p_bounds_tiny_values(p: float, text: str) -> None:
    assert format_p(p) == text
    assert format_p(0.0) == "<1e-04"
    assert p_equals(0.0) == "p<1e-04"
    assert p_equals(0.0, spaced=True) == "p < 1e-04"
    assert p_equals(0.25, spaced=True) == "p = 0.250"
    assert format_p(None) == format_p(math.nan) == "-"


def test_faster_but_solving_fewer_tasks_fails_on_pass_rate() -> None:
    a, b = paired_arms(1.3, 0.10, 20)
    base = arm("A", a)
    cand = arm("B", b, passed=[i < 8 for i in range(20)])
    result = decide(base, cand)
    assert result.verdict == "FAIL"
    assert result.pass_rate.counts == (20, 8)
    assert result.pass_rate.regressed
    assert any("pass rate fell from 100% to 40%" in r for r in result.reasons)
    # The throughput part alone would have been an improvement.
    assert result.ratio is not None
    assert result.ratio > 1.2


def test_a_small_pass_rate_dip_within_the_margin_does_not_fail() -> None:
    a, b = paired_arms(1.0, 0.05, 30)
    cand = arm("B", b, passed=[i != 3 for i in range(30)])
    result = decide(arm("A", a), cand)
    assert not result.pass_rate.regressed
    assert result.verdict == "PASS"


def _errored(sessions: list[SessionRecord], which: set[int]) -> list[SessionRecord]:
    return [
        replace(s, outcome="error", error="overloaded_error: Overloaded") if i in which else s
        for i, s in enumerate(sessions)
    ]


def test_a_candidate_that_errors_more_cannot_pass() -> None:
    a, b = paired_arms(1.0, 0.05, 30)
    clean = decide(arm("A", a), arm("B", b))
    assert clean.verdict == "PASS"
    assert clean.error_rate.counts == (0, 0)
    # Two errored sessions more: not significant, but the PASS is withdrawn.
    result = decide(arm("A", a), _errored(arm("B", b), {3, 17}))
    assert result.error_rate.counts == (0, 2)
    assert not result.error_rate.regressed
    assert result.verdict == "INCONCLUSIVE"
    assert result.reasons[-1] == (
        "B ended 2 of 30 sessions in endpoint errors, A 0 of 30: "
        "no verdict of PASS while it errors more"
    )
    # As many errors in both arms: the verdict stands.
    same = decide(_errored(arm("A", a), {3, 17}), _errored(arm("B", b), {5, 9}))
    assert same.verdict == "PASS"


def test_significantly_more_errors_fail() -> None:
    a, b = paired_arms(1.3, 0.05, 30)
    result = decide(arm("A", a), _errored(arm("B", b), set(range(0, 30, 3))))
    assert result.error_rate.counts == (0, 10)
    # Fisher, one-sided: all 10 errors falling in the candidate's 30 of the 60 sessions.
    assert result.error_rate.p == pytest.approx(math.comb(30, 10) / math.comb(60, 10))
    assert result.error_rate.regressed
    assert result.verdict == "FAIL"
    assert result.reasons[-1].startswith(
        "B ended 10 of 30 sessions in endpoint errors, A 0 of 30 (Fisher p="
    )
    assert result.to_json()["error_rate"] == {
        "errors": [0, 10],
        "sessions": [30, 30],
        "rates": [0.0, 1 / 3],
        "p": result.error_rate.p,
        "regressed": True,
    }


def test_arms_without_common_slots_are_compared_unpaired() -> None:
    rng = np.random.default_rng(11)
    base = arm("A", np.exp(rng.normal(np.log(50), 0.1, 15)))
    cand = [
        session("B", i + 100, float(v))
        for i, v in enumerate(np.exp(rng.normal(np.log(40), 0.1, 15)))
    ]
    result = decide(base, cand)
    assert not result.paired
    assert result.test == "mann_whitney_u"
    assert result.n == (15, 15)
    assert result.verdict == "FAIL"


def test_unmatched_sessions_are_left_out_of_a_paired_comparison_with_a_warning() -> None:
    a, b = paired_arms(1.0, 0.05, 12)
    result = decide(arm("A", a), arm("B", b[:10]))
    assert result.paired
    assert result.n == (10, 10)
    assert result.warnings == ("2 session(s) without a partner in the other arm left out",)


def test_session_speed_and_tasks_per_window_metrics() -> None:
    walls_a = np.full(20, 100.0)
    base = [session("A", i, 50, wall=float(w)) for i, w in enumerate(walls_a)]
    slower = [session("B", i, 50, wall=125.0 + i % 3) for i in range(20)]
    speed = compare_arms(
        base,
        slower,
        baseline="A",
        candidate="B",
        against="x",
        settings=GateSettings(metric="session_wall_s"),
    )
    assert speed.verdict == "FAIL"
    assert speed.ratio == pytest.approx(100 / 126, abs=0.01)
    assert speed.line().startswith("session speed ratio 0.79")

    goodput = compare_arms(
        base,
        slower,
        baseline="A",
        candidate="B",
        against="x",
        settings=GateSettings(metric="tasks_per_window"),
    )
    # Same pass rate, 26% longer sessions: 1/1.26 as many tasks per window.
    assert goodput.ratio == pytest.approx(100 / 126, abs=0.01)
    assert goodput.test == "bootstrap_ratio_of_means"
    assert goodput.verdict == "FAIL"


def test_too_few_sessions() -> None:
    result = decide([session("A", 0, 50)], [session("B", 7, 40)])
    assert result.verdict == "INCONCLUSIVE"
    assert result.ratio is None
    assert result.line() == "throughput ratio -, n=1/1 -> INCONCLUSIVE"
    assert result.reasons == ("too few sessions to compare (1 and 1)",)


def test_json_form_is_plain_and_finite() -> None:
    a, b = paired_arms(0.8, 0.1, 10)
    data = decide(arm("A", a), arm("B", b)).to_json()
    assert data["verdict"] == "FAIL"
    assert data["estimator"] == "hodges_lehmann_log"
    assert data["ci_level"] == pytest.approx(0.90)
    assert data["line"].endswith("-> FAIL")
    for key in ("ratio", "p", "mde", "p_improved"):
        assert math.isfinite(data[key])


def test_fingerprint_differences_are_named() -> None:
    base = {
        "tasks": ["a", "b"],
        "agent": "builtin",
        "concurrency": 1,
        "time_scale": 0.05,
        "repeat": 3,
    }
    cand = dict(base, tasks=["b", "c"], concurrency=2, repeat=1)
    assert fingerprint_differences(base, cand) == [
        "task set differs (only in the baseline: a; only in the candidate: c)",
        "concurrency differs: 1 vs 2",
        "repeat differs: 3 vs 1",
    ]
    assert fingerprint_differences(base, dict(base)) == []
    # Weakening only: none of these refuses.
    assert fingerprint_refusals(base, cand, metric="throughput_tok_s") == []


def test_fingerprint_refusals_are_named() -> None:
    base = {
        "tasks": ["a", "b"],
        "agent": "builtin",
        "concurrency": 1,
        "time_scale": 1.0,
        "repeat": 3,
    }
    cand = dict(
        base,
        tasks=["c"],
        agent="oracle",
        time_scale=0.05,
        metric_definitions={"throughput_tok_s": 2},
    )
    assert fingerprint_refusals(
        base, cand, metric="throughput_tok_s", baseline_label="the baseline 'main'"
    ) == [
        "the baseline 'main' ran at time scale 1 and this run at 0.05",
        "the baseline 'main' ran the builtin agent and this run the oracle agent",
        "the baseline 'main' and this run have no task in common (a, b; c)",
        "the baseline 'main' measured throughput_tok_s by definition 1 and this run by "
        "definition 2",
    ]
    # Only the gate metric's definition matters.
    assert (
        fingerprint_refusals(
            base, dict(base, metric_definitions={"session_wall_s": 2}), metric="throughput_tok_s"
        )
        == []
    )
    # A run without simulated endpoints (time scale None) runs in real time: scale 1.
    assert fingerprint_refusals(base, dict(base, time_scale=None), metric="throughput_tok_s") == []
    # Disjoint task sets refuse; they are not also warned about.
    assert fingerprint_differences(base, dict(base, tasks=["c"])) == []
    # An old run file: no metric_definitions at all reads as version 1 of every metric.
    assert metric_definition({}, "throughput_tok_s") == 1
    assert metric_definition({"metric_definitions": {}}, "tasks_per_window") == 1
    assert metric_definition({"metric_definitions": METRIC_DEFINITIONS}, "session_wall_s") == 1
    # An unknown agent (None) refuses nothing but is warned about.
    assert fingerprint_refusals(dict(base, agent=None), base, metric="throughput_tok_s") == []
    assert fingerprint_differences(dict(base, agent=None), base) == [
        "agent differs: None vs builtin"
    ]


def _run(sessions: list[SessionRecord], **config: object) -> RunRecord:
    return RunRecord(
        created_at="2026-01-01T00:00:00+00:00",
        agentspeed_version="0",
        environment={"concurrency": 1},
        config={"window_s": 1800, "repeat": 1, "time_scale": 0.05, "agent": "builtin", **config},
        endpoints=(),
        sessions=tuple(sessions),
    )


def test_compare_runs_refuses_another_time_scale_with_no_verdict() -> None:
    a, b = paired_arms(0.68, 0.05, 10)
    base = _run(arm("A", a), time_scale=1.0)
    cand = _run(arm("A", b), time_scale=0.05)
    result = compare_runs(
        base,
        cand,
        baseline_arm="A",
        candidate_arm="A",
        against="baseline main",
        settings=GATE,
        baseline_label="the baseline 'main'",
    )
    assert result.verdict == NOT_COMPARED
    assert not result.fails("fail")
    assert result.ratio is None
    assert result.p is None
    assert result.refused == ("the baseline 'main' ran at time scale 1 and this run at 0.05",)
    assert result.line() == (
        "not compared: the baseline 'main' ran at time scale 1 and this run at 0.05; "
        "record a new baseline"
    )
    data = result.to_json()
    assert data["verdict"] == "NOT COMPARED"
    assert data["refused"] == list(result.refused)
    assert data["line"] == result.line()
    # The same slowdown at the same time scale is a verdict.
    same = compare_runs(
        _run(arm("A", a)), cand, baseline_arm="A", candidate_arm="A", against="x", settings=GATE
    )
    assert same.verdict == "FAIL"
    assert same.refused == ()


def test_compare_runs_partial_task_overlap_warns_and_pairs_the_common_slots() -> None:
    a, b = paired_arms(0.70, 0.05, 10)
    base = _run(arm("A", a))
    # The candidate ran tasks t0..t2 only (slots 0-2 and 5-7).
    cand = _run([s for s in arm("A", b) if s.task in ("t0", "t1", "t2")])
    result = compare_runs(
        base, cand, baseline_arm="A", candidate_arm="A", against="x", settings=GATE
    )
    assert result.verdict == "FAIL"
    assert result.paired
    assert result.n == (6, 6)
    assert "baseline fingerprint: task set differs (only in the baseline: t3, t4)" in (
        result.warnings
    )
    assert "4 session(s) without a partner in the other arm left out" in result.warnings


def test_gate_error_rates_smaller_seeded_run() -> None:
    """The benchmark's check on 300 seeded runs per row: false FAIL near alpha, high power,
    a row for a true drop inside the tolerance, and each rate's Monte Carlo standard error."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gate_error_rates.py"
    result = subprocess.run(
        [sys.executable, str(script), "--reps", "300", "--metrics", "throughput_tok_s", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = {(r["design"], r["ratio"]): r for r in json.loads(result.stdout)}
    assert sorted(rows) == [
        (design, ratio) for design in ("paired", "unpaired") for ratio in (0.8, 0.85, 0.97, 1.0)
    ]
    for design in ("paired", "unpaired"):
        assert rows[(design, 1.0)]["FAIL"] <= 0.08
        assert rows[(design, 0.8)]["FAIL"] >= 0.90
    assert rows[("paired", 0.8)]["FAIL"] >= 0.80
    assert rows[("paired", 0.85)]["FAIL"] > rows[("unpaired", 0.85)]["FAIL"]
    for row in rows.values():
        assert row["metric"] == "throughput_tok_s"
        for outcome in ("naive", "FAIL", "PASS", "IMPROVED", "INCONCLUSIVE"):
            p = row[outcome]
            assert row["se"][outcome] == pytest.approx(math.sqrt(p * (1 - p) / 300))
