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
from scipy import stats as sps

from pytest_agentspeed.analysis import compare as compare_mod
from pytest_agentspeed.analysis import fingerprint as fingerprint_mod
from pytest_agentspeed.analysis import gate as gate_mod
from pytest_agentspeed.analysis import stats
from pytest_agentspeed.analysis.compare import compare_arms, compare_runs
from pytest_agentspeed.analysis.fingerprint import (
    fingerprint_differences,
    fingerprint_refusals,
    metric_definition,
)
from pytest_agentspeed.analysis.gate import METRIC_DEFINITIONS, GateSettings
from pytest_agentspeed.analysis.pvalues import format_p, p_equals
from pytest_agentspeed.records import (
    NOT_COMPARED,
    VERDICTS,
    Comparison,
    RunRecord,
    SessionRecord,
)
from pytest_agentspeed.records import fails as verdict_fails

GATE = GateSettings()


def decide(  # type: ignore[no-untyped-def]
    base: list[SessionRecord],
    cand: list[SessionRecord],
    settings: GateSettings = GATE,
    **kw: object,
):
    """Arm B against arm A of this run."""
    return compare_arms(
        base, cand, baseline="A", candidate="B", against="this run", settings=settings, **kw
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
    line = result.line
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
    assert f", {p_equals(result.p_improved)}, " in result.line
    assert ", p<1e-04, " in result.line


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
    assert result.line.endswith(
        f"[90% CI -], p={format_p(float(smallest))}, n={pairs}/{pairs} paired, MDE - "
        "-> INCONCLUSIVE"
    )


def test_three_pairs_twice_as_fast_no_longer_print_a_ci_that_excludes_one() -> None:
    # The run: ratio 2.00 with a CI excluding 1 beside p = 0.125.
    result = decide(arm("A", [50.0, 50.0, 50.0]), arm("B", [99.0, 100.0, 101.0]))
    assert result.line == (
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
    speed = decide(base, slower, GateSettings(metric="session_wall_s"))
    assert speed.verdict == "FAIL"
    assert speed.ratio == pytest.approx(100 / 126, abs=0.01)
    assert speed.line.startswith("session speed ratio 0.79")

    goodput = decide(base, slower, GateSettings(metric="tasks_per_window"))
    # Same pass rate, 26% longer sessions: 1/1.26 as many tasks per window.
    assert goodput.ratio == pytest.approx(100 / 126, abs=0.01)
    assert goodput.test == "bootstrap_ratio_of_means"
    assert goodput.verdict == "FAIL"


def test_too_few_sessions() -> None:
    result = decide([session("A", 0, 50)], [session("B", 7, 40)])
    assert result.verdict == "INCONCLUSIVE"
    assert result.ratio is None
    assert result.line == "throughput ratio -, n=1/1 -> INCONCLUSIVE"
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
    assert result.line == (
        "not compared: the baseline 'main' ran at time scale 1 and this run at 0.05; "
        "record a new baseline"
    )
    data = result.to_json()
    assert data["verdict"] == "NOT COMPARED"
    assert data["refused"] == list(result.refused)
    assert data["line"] == result.line
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


# -- the verdict rule at its boundaries, on a fixed core (mutation testing, docs/testing.md) ---
#
# ``_ranked`` is replaced by one returning a chosen ratio, CI, p-values and MDE, so that each
# threshold of the rule is met exactly (== alpha, == tolerance, == margin) and every number of
# the reason lines is known.


def _core(**fields: object) -> compare_mod._Core:
    values: dict[str, object] = {"paired": True, "n": (10, 10), "test": "wilcoxon_signed_rank"}
    values |= {"ratio": 1.0, "ci": (0.95, 1.05), "p": 0.5, "p_improved": 0.5, "mde": 0.08}
    values |= {"needed": 30}
    return compare_mod._Core(**(values | fields))  # type: ignore[arg-type]


def decide_core(
    monkeypatch: pytest.MonkeyPatch,
    core: compare_mod._Core,
    settings: GateSettings = GATE,
    base: list[SessionRecord] | None = None,
    cand: list[SessionRecord] | None = None,
) -> Comparison:
    monkeypatch.setattr(compare_mod, "_ranked", lambda *args: core)
    return compare_arms(
        base if base is not None else arm("A", [50.0] * 10),
        cand if cand is not None else arm("B", [50.0] * 10),
        baseline="A",
        candidate="B",
        against="this run",
        settings=settings,
    )


def test_fail_reason_line_has_every_number(monkeypatch: pytest.MonkeyPatch) -> None:
    result = decide_core(monkeypatch, _core(ratio=0.80, ci=(0.70, 0.90), p=0.01, p_improved=0.99))
    assert result.verdict == "FAIL"
    assert result.reasons == ("B is 20% slower than A (CI 10-30%), beyond the 5% tolerance",)
    assert result.line == (
        "throughput ratio 0.80 [90% CI 0.70-0.90], p=0.010, n=10/10 paired, MDE 8.0% -> FAIL"
    )
    assert result.fails("warn")


def test_fail_needs_p_below_alpha_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    result = decide_core(monkeypatch, _core(ratio=0.80, ci=(0.70, 0.90), p=0.05, p_improved=0.99))
    assert result.verdict == "INCONCLUSIVE"
    assert result.reasons == (
        "the CI (0.70-0.90) spans both outcomes (MDE 8.0%); "
        "about 30 sessions per arm would decide it",
    )


def test_fail_needs_a_drop_beyond_the_tolerance_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.95 is exactly 1 - tolerance: not beyond it; the CI rules out the margin, so PASS.
    assert 1 - GATE.tolerance == 0.95
    at = decide_core(monkeypatch, _core(ratio=0.95, ci=(0.92, 0.98), p=0.01, p_improved=0.99))
    assert at.verdict == "PASS"
    assert at.reasons == ("any regression is smaller than the 10% margin (lower bound 0.92)",)
    beyond = decide_core(monkeypatch, _core(ratio=0.94, ci=(0.92, 0.98), p=0.01, p_improved=0.99))
    assert beyond.verdict == "FAIL"
    assert beyond.reasons == ("B is 6% slower than A (CI 2-8%), beyond the 5% tolerance",)


def test_improved_reason_line_and_its_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    up = _core(ratio=1.25, ci=(1.10, 1.40), p=0.99, p_improved=0.001)
    result = decide_core(monkeypatch, up)
    assert result.verdict == "IMPROVED"
    assert result.reasons == ("B is 25% faster than A (CI +10% to +40%); consider a new baseline",)
    assert result.alternative == "greater"
    assert result.p_shown == 0.001
    assert not result.fails("fail")
    # p(faster) exactly alpha, or a gain exactly the tolerance: not IMPROVED (here PASS).
    assert 1 + GATE.tolerance == 1.05
    for core in (replace(up, p_improved=0.05), replace(up, ratio=1.05)):
        assert decide_core(monkeypatch, core).verdict == "PASS"
    assert decide_core(monkeypatch, replace(up, ratio=1.06)).verdict == "IMPROVED"


def test_pass_needs_the_lower_bound_above_the_margin_and_an_mde_within_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert 1 - GATE.margin == 0.9
    ok = _core(ratio=1.0, ci=(0.91, 1.09), mde=0.10)  # MDE exactly the margin is enough
    assert decide_core(monkeypatch, ok).verdict == "PASS"
    at_margin = decide_core(monkeypatch, replace(ok, ci=(0.90, 1.09)))
    assert at_margin.verdict == "INCONCLUSIVE"
    assert at_margin.reasons == (
        "the CI (0.90-1.09) spans both outcomes (MDE 10.0%); "
        "about 30 sessions per arm would decide it",
    )
    blind = decide_core(monkeypatch, replace(ok, mde=0.11, needed=None))
    assert blind.verdict == "INCONCLUSIVE"
    assert blind.reasons == ("the run cannot tell a 10% regression from noise (MDE 11.0%)",)
    no_mde = decide_core(monkeypatch, replace(ok, mde=None, needed=7))
    assert no_mde.verdict == "INCONCLUSIVE"
    assert no_mde.reasons == (
        "the run cannot tell a 10% regression from noise; about 7 sessions per arm would decide it",
    )
    assert no_mde.line.endswith("MDE - -> INCONCLUSIVE")


def test_no_estimate_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    for missing in ("ratio", "ci", "p", "p_improved"):
        result = decide_core(monkeypatch, _core(**{missing: None}))
        assert result.verdict == "INCONCLUSIVE"
        assert result.reasons == ("too few sessions to compare",)
    why = decide_core(monkeypatch, _core(ratio=None, why_not="a reason"))
    assert why.reasons == ("a reason",)


def test_other_settings_show_in_every_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    strict = GateSettings(alpha=0.01, tolerance=0.02, margin=0.25)
    assert strict.ci_level == 0.98
    fail = decide_core(
        monkeypatch, _core(ratio=0.97, ci=(0.95, 0.99), p=0.009, p_improved=0.99), strict
    )
    assert fail.reasons == ("B is 3% slower than A (CI 1-5%), beyond the 2% tolerance",)
    assert fail.line.startswith("throughput ratio 0.97 [98% CI 0.95-0.99], p=0.009, ")
    data = fail.to_json()
    assert (data["alpha"], data["tolerance"], data["margin"]) == (0.01, 0.02, 0.25)
    assert data["ci_level"] == 0.98
    # p = 0.02 decides nothing at alpha 0.01.
    assert decide_core(monkeypatch, _core(ratio=0.5, ci=(0.4, 0.6), p=0.02), strict).verdict == (
        "INCONCLUSIVE"
    )
    passed = decide_core(monkeypatch, _core(ratio=1.0, ci=(0.76, 1.2), mde=0.25), strict)
    assert passed.reasons == ("any regression is smaller than the 25% margin (lower bound 0.76)",)


def test_pass_rate_reason_line(monkeypatch: pytest.MonkeyPatch) -> None:
    cand = arm("B", [50.0] * 20, passed=[i < 8 for i in range(20)])
    result = decide_core(monkeypatch, _core(), base=arm("A", [50.0] * 20), cand=cand)
    p = sps.fisher_exact([[8, 12], [20, 0]], alternative="less").pvalue
    assert result.pass_rate.p == pytest.approx(p)
    assert result.verdict == "FAIL"
    assert result.reasons[-1] == (
        f"pass rate fell from 100% to 40% (Fisher {p_equals(p)}), more than the 10 pp margin"
    )
    assert result.to_json()["pass_rate"] == {
        "passed": [20, 8],
        "sessions": [20, 20],
        "rates": [1.0, 0.4],
        "p": pytest.approx(p),
        "regressed": True,
    }


def test_error_rate_reason_line_has_every_number(monkeypatch: pytest.MonkeyPatch) -> None:
    base = _errored(arm("A", [50.0] * 30), {1})
    cand = _errored(arm("B", [50.0] * 30), set(range(0, 30, 3)))
    result = decide_core(monkeypatch, _core(), base=base, cand=cand)
    p = sps.fisher_exact([[20, 10], [29, 1]], alternative="less").pvalue
    assert result.error_rate.counts == (1, 10)
    assert result.error_rate.p == pytest.approx(p)
    assert result.verdict == "FAIL"
    assert result.reasons[-1] == (
        f"B ended 10 of 30 sessions in endpoint errors, A 1 of 30 (Fisher {p_equals(p)}): "
        "more errors, beyond the 10 pp margin"
    )


def test_more_errors_withdraw_improved_too_but_not_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    cand = _errored(arm("B", [50.0] * 30), {4})
    up = _core(ratio=1.25, ci=(1.10, 1.40), p=0.99, p_improved=0.001)
    result = decide_core(monkeypatch, up, base=arm("A", [50.0] * 30), cand=cand)
    assert result.verdict == "INCONCLUSIVE"
    assert result.reasons[-1] == (
        "B ended 1 of 30 sessions in endpoint errors, A 0 of 30: "
        "no verdict of PASS while it errors more"
    )
    down = _core(ratio=0.8, ci=(0.7, 0.9), p=0.01, p_improved=0.99)
    failed = decide_core(monkeypatch, down, base=arm("A", [50.0] * 30), cand=cand)
    assert failed.verdict == "FAIL"
    assert len(failed.reasons) == 1
    # Fewer errors in the candidate: nothing withdrawn.
    fewer = decide_core(monkeypatch, up, base=_errored(arm("A", [50.0] * 30), {4}))
    assert fewer.verdict == "IMPROVED"


def test_cross_checks_are_computed_in_the_estimates_direction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = [0.0, 0.1, 0.2, 0.35], [0.05, 0.3, 0.4, 0.5]
    for ratio, alt in ((1.2, "greater"), (1.0, "less"), (0.8, "less")):
        result = decide_core(monkeypatch, _core(ratio=ratio, a=a, b=b))
        assert result.alternative == alt
        assert result.brunner_munzel_p == stats.brunner_munzel_p(a, b, alt)  # type: ignore[arg-type]
    assert decide_core(monkeypatch, _core(a=a, b=[])).brunner_munzel_p is None


def test_inconclusive_fails_only_under_the_fail_policy() -> None:
    assert [verdict_fails(v) for v in VERDICTS] == [True, False, False, False]
    assert [verdict_fails(v, "fail") for v in VERDICTS] == [True, False, False, True]
    assert not verdict_fails(NOT_COMPARED, "fail")
    assert gate_mod.INCONCLUSIVE_POLICIES == ("warn", "fail")
    assert GATE.inconclusive == "warn"


def test_comparison_fails_follows_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        "FAIL": _core(ratio=0.8, ci=(0.7, 0.9), p=0.01, p_improved=0.99),
        "PASS": _core(),
        "IMPROVED": _core(ratio=1.25, ci=(1.10, 1.40), p=0.99, p_improved=0.001),
        "INCONCLUSIVE": _core(mde=0.2),
    }
    for verdict, core in cases.items():
        result = decide_core(monkeypatch, core)
        assert result.verdict == verdict
        assert result.fails() == (verdict == "FAIL")
        assert result.fails("warn") == (verdict == "FAIL")
        assert result.fails("fail") == (verdict in ("FAIL", "INCONCLUSIVE"))


def test_the_whole_json_of_a_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    welch = {"ratio": 0.8, "low": 0.7, "high": 0.9, "p": 0.01}
    core = _core(
        paired=False,
        n=(10, 9),
        test="mann_whitney_u",
        ratio=0.8,
        ci=(0.7, 0.9),
        p=0.01,
        p_improved=0.99,
        mde=0.08,
        needed=12,
        welch=welch,
    )
    data = decide_core(monkeypatch, core).to_json()
    line = "throughput ratio 0.80 [90% CI 0.70-0.90], p=0.010, n=10/9 unpaired, MDE 8.0% -> FAIL"
    assert data == {
        "metric": "throughput_tok_s",
        "baseline": "A",
        "candidate": "B",
        "against": "this run",
        "estimator": "hodges_lehmann_log",
        "paired": False,
        "n": [10, 9],
        "ratio": 0.8,
        "ci": [0.7, 0.9],
        "ci_level": pytest.approx(0.9),
        "test": "mann_whitney_u",
        "alternative": "less",
        "p_shown": 0.01,
        "p": 0.01,
        "p_improved": 0.99,
        "brunner_munzel_p": None,
        "welch_log": welch,
        "mde": 0.08,
        "sessions_needed": 12,
        "pass_rate": {
            "passed": [10, 10],
            "sessions": [10, 10],
            "rates": [1.0, 1.0],
            "p": 1.0,
            "regressed": False,
        },
        "error_rate": {
            "errors": [0, 0],
            "sessions": [10, 10],
            "rates": [0.0, 0.0],
            "p": 1.0,
            "regressed": False,
        },
        "tolerance": 0.05,
        "margin": 0.1,
        "alpha": 0.05,
        "verdict": "FAIL",
        "reasons": ["B is 20% slower than A (CI 10-30%), beyond the 5% tolerance"],
        "warnings": [],
        "refused": [],
        "line": line,
    }
    infinite = decide_core(monkeypatch, replace(core, ci=(0.7, math.inf), mde=math.nan))
    assert infinite.to_json()["ci"] == [0.7, None]
    assert infinite.to_json()["mde"] is None


def test_a_metric_without_a_label_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    result = decide_core(monkeypatch, _core(), GateSettings(metric="custom"))
    assert result.line.startswith("custom ratio 1.00 [90% CI 0.95-1.05], p=0.500, ")
    no_ratio = decide_core(monkeypatch, _core(ratio=None), GateSettings(metric="custom"))
    assert no_ratio.line == "custom ratio -, n=10/10 -> INCONCLUSIVE"
    assert no_ratio.to_json()["estimator"] == "hodges_lehmann_log"
    assert compare_mod.LABELS == {
        "throughput_tok_s": "throughput ratio",
        "session_wall_s": "session speed ratio",
        "tasks_per_window": "tasks per window ratio",
    }


# -- rate checks -------------------------------------------------------------------------------


def test_rate_check_thresholds_are_strict() -> None:
    # 40 of 40 against 30 of 40: a drop of exactly 25 pp.
    base, cand = [True] * 40, [True] * 30 + [False] * 10
    p = stats.fisher_less_p(30, 40, 40, 40)
    assert p < 0.001
    check = compare_mod._rate_check
    assert not check("passed", base, cand, GateSettings(margin=0.25)).regressed
    assert check("passed", base, cand, GateSettings(margin=0.2499)).regressed
    assert not check("passed", base, cand, GateSettings(alpha=p, margin=0.1)).regressed
    assert check("passed", base, cand, GateSettings(alpha=p * 1.001, margin=0.1)).regressed
    # Errors: the same counts read as errors are the candidate's 10 errors against none.
    errors = check("errors", [False] * 40, [False] * 30 + [True] * 10, GateSettings(margin=0.2))
    assert (errors.counts, errors.sessions, errors.p) == ((0, 10), (40, 40), p)
    assert errors.regressed
    assert errors.worse
    assert errors.rates == (0.0, 0.25)


def test_rate_check_directions_and_empty_arms() -> None:
    check = compare_mod._rate_check
    fewer_errors = check("errors", [True, True, False], [False, False, False], GATE)
    assert not fewer_errors.worse
    assert fewer_errors.p == 1.0
    more_passes = check("passed", [True, False], [True, True], GATE)
    assert not more_passes.worse
    assert check("passed", [True, True], [True, False], GATE).worse
    assert not check("passed", [True], [True], GATE).worse
    empty = check("passed", [], [True], GATE)
    assert empty.rates == (None, 1.0)
    assert not empty.worse
    assert not empty.regressed
    assert math.isnan(empty.p)
    assert empty.to_json() == {
        "passed": [0, 1],
        "sessions": [0, 1],
        "rates": [None, 1.0],
        "p": None,
        "regressed": False,
    }
    assert check("errors", [True], [], GATE).rates == (1.0, None)


# -- the per-session values ranked -------------------------------------------------------------


def test_metric_values_are_exact() -> None:
    s = session("A", 0, 50.0, wall=4.0)
    assert compare_mod.metric_value(s, "throughput_tok_s") == 50.0
    # Session speed: the reciprocal of the wall time, so higher is better like throughput.
    assert compare_mod.metric_value(s, "session_wall_s") == 0.25
    assert compare_mod.metric_value(replace(s, turns=()), "session_wall_s") is None
    assert compare_mod.metric_value(replace(s, wall_s=0.0), "session_wall_s") is None
    assert compare_mod.metric_value(replace(s, wall_s=-1.0), "session_wall_s") is None
    assert compare_mod.metric_value(session("A", 0, 0.0), "throughput_tok_s") is None
    with pytest.raises(ValueError, match=r"^tasks_per_window is not a per-session metric$"):
        compare_mod.metric_value(s, "tasks_per_window")


def test_session_speed_ratio_is_baseline_time_over_candidate_time() -> None:
    base = [session("A", i, 50.0, wall=100.0 + i) for i in range(8)]
    cand = [session("B", i, 50.0, wall=(100.0 + i) * 1.25) for i in range(8)]
    result = decide(base, cand, GateSettings(metric="session_wall_s"))
    # Every pair 25% longer: every log difference is log(1 / 1.25), and so is the estimate.
    assert result.ratio == pytest.approx(0.8, rel=1e-12)
    assert result.ci == pytest.approx((0.8, 0.8), rel=1e-12)
    assert result.p == 1 / 256
    assert result.reasons == ("B is 20% slower than A (CI 20-20%), beyond the 5% tolerance",)


# -- the rank comparison's design, sizes and advice --------------------------------------------


def test_paired_core_numbers_from_independent_formulas() -> None:
    d = [0.05, -0.02, 0.08, 0.01, -0.04, 0.03, 0.06, -0.01]
    base = [session("A", i, 50.0, wall=1000.0) for i in range(8)]
    cand = [session("B", i, 50.0 * math.exp(x), wall=1000.0) for i, x in enumerate(d)]
    result = compare_arms(base, cand, baseline="A", candidate="B", against="x", settings=GATE)
    logs = np.log([s.throughput_tok_s for s in cand]) - np.log(50.0)  # type: ignore[arg-type]
    assert result.paired
    assert result.n == (8, 8)
    ref = sps.wilcoxon(logs, alternative="less", method="exact")
    assert result.p == pytest.approx(ref.pvalue, rel=1e-12)
    se = float(np.std(logs, ddof=1)) / math.sqrt(8)
    # 8 pairs: the exact test's level at 0.05 is P(T <= 5) = 10/256.
    assert stats.signed_rank_null(8).size(0.05) == 10 / 256
    assert result.mde == pytest.approx(
        1 - math.exp(-(sps.norm.ppf(1 - 10 / 256) + sps.norm.ppf(0.8)) * se), rel=1e-9
    )
    var = float(np.var(logs, ddof=1))
    z = sps.norm.ppf(0.95) + sps.norm.ppf(0.80)
    assert result.sessions_needed == max(5, math.ceil(z**2 * var / math.log(1 / 0.9) ** 2))
    assert result.welch is not None
    assert result.welch["ratio"] == pytest.approx(math.exp(float(np.mean(logs))), rel=1e-9)


def test_unpaired_core_numbers_from_independent_formulas() -> None:
    a = [50.0, 52.0, 47.0, 55.0, 49.0]
    b = [45.0, 44.0, 48.0, 41.0, 46.0, 43.0]
    base = [session("A", i, v, wall=1000.0) for i, v in enumerate(a)]
    cand = [session("B", i + 50, v, wall=1000.0) for i, v in enumerate(b)]
    result = compare_arms(base, cand, baseline="A", candidate="B", against="x", settings=GATE)
    la, lb = np.log(a), np.log(b)
    assert not result.paired
    assert result.n == (5, 6)
    ref = sps.mannwhitneyu(lb, la, alternative="less", method="exact")
    assert result.p == pytest.approx(ref.pvalue, rel=1e-12)
    va, vb = float(np.var(la, ddof=1)), float(np.var(lb, ddof=1))
    se = math.sqrt(va / 5 + vb / 6)
    size = stats.rank_sum_null(5, 6).size(0.05)
    z = sps.norm.ppf(1 - size) + sps.norm.ppf(0.8)
    assert result.mde == pytest.approx(1 - math.exp(-z * se), rel=1e-9)
    z05 = sps.norm.ppf(0.95) + sps.norm.ppf(0.80)
    needed = math.ceil(z05**2 * (va + vb) / math.log(1 / 0.9) ** 2)
    assert result.sessions_needed == max(needed, 4)
    ci = sps.ttest_ind(lb, la, equal_var=False).confidence_interval(0.90)
    assert result.welch == pytest.approx(
        {
            "ratio": math.exp(lb.mean() - la.mean()),
            "low": math.exp(ci.low),
            "high": math.exp(ci.high),
            "p": sps.ttest_ind(lb, la, equal_var=False, alternative="less").pvalue,
        },
        rel=1e-9,
    )


def test_two_common_slots_are_enough_to_pair() -> None:
    base = [session("A", i, 50.0) for i in range(2)] + [session("A", 7, 50.0)]
    cand = [session("B", i, 60.0) for i in range(2)] + [session("B", 9, 60.0)]
    two = decide(base, cand)
    assert two.paired
    assert two.n == (2, 2)
    assert two.warnings == ("2 session(s) without a partner in the other arm left out",)
    one = decide(base[:1] + base[2:], cand[:1] + cand[2:])
    assert not one.paired
    assert one.n == (2, 2)
    assert one.warnings == ()
    assert one.reasons == (
        "2 and 2 sessions cannot decide at alpha 0.05 (the smallest possible p is 0.167); "
        "at least 4 sessions per arm are needed",
    )
    assert decide(base[:1], cand).reasons == ("too few sessions to compare (1 and 3)",)


def test_undecidable_advice_names_the_sessions_to_detect_the_margin() -> None:
    values = [50.0, 80.0, 30.0]
    result = decide(arm("A", [50.0] * 3), arm("B", values))
    d = np.log(np.array(values) / 50.0)
    z = sps.norm.ppf(0.95) + sps.norm.ppf(0.80)
    needed = math.ceil(z**2 * float(np.var(d, ddof=1)) / math.log(1 / 0.9) ** 2)
    assert needed > 5
    assert result.sessions_needed == needed
    assert result.reasons == (
        "3 pairs cannot decide at alpha 0.05 (the smallest possible p is 0.125); at least 5 "
        f"pairs per arm are needed; about {needed} per arm would detect a 10% regression",
    )


# -- tasks per window: the bootstrap, step by step ---------------------------------------------


def _bootstrap_reference(
    a: list[tuple[float, float]], b: list[tuple[float, float]], scale: float, alpha: float
) -> dict[str, float]:
    """The procedure of docs/statistics.md, written out: resample each arm's sessions whole
    (seeds from the arm sizes), tasks per window = mean passes / mean wall, CI from the
    alpha and 1 - alpha quantiles of the log ratio, p = (count + 1) / (resamples + 1)."""
    seed = len(a) * 7919 + len(b)
    reps = []
    for rows, s in ((np.array(a), seed), (np.array(b), seed + 1)):
        rng = np.random.default_rng(s)
        out = []
        for _ in range(4000):
            pick = rows[rng.integers(0, len(rows), len(rows))]
            out.append(pick[:, 0].mean() / pick[:, 1].mean())
        reps.append(np.array(out))
    with np.errstate(divide="ignore"):
        logs = np.log(reps[1] * scale) - np.log(reps[0])
    logs = logs[np.isfinite(logs)]
    se = float(np.std(logs, ddof=1))
    effect = math.log(1 / 0.9)
    z = sps.norm.ppf(1 - alpha) + sps.norm.ppf(0.8)
    return {
        "low": math.exp(np.quantile(logs, alpha)),
        "high": math.exp(np.quantile(logs, 1 - alpha)),
        "p": (np.sum(logs >= 0) + 1) / (len(logs) + 1),
        "p_improved": (np.sum(logs <= 0) + 1) / (len(logs) + 1),
        "mde": 1 - math.exp(-z * se),
        "needed": max(4, math.ceil(min(len(a), len(b)) * (z * se / effect) ** 2)),
    }


@pytest.mark.parametrize(("alpha", "scale"), [(0.05, 1.0), (0.10, 2.0)])
def test_tasks_per_window_bootstrap_matches_the_procedure(alpha: float, scale: float) -> None:
    rng = np.random.default_rng(5)
    walls_a, walls_b = rng.uniform(80, 120, 10), rng.uniform(90, 140, 12)
    pass_a = [i % 4 != 0 for i in range(10)]
    pass_b = [i % 3 != 0 for i in range(12)]
    base = [
        session("A", i, 50.0, wall=float(w), passed=p)
        for i, (w, p) in enumerate(zip(walls_a, pass_a, strict=True))
    ]
    cand = [
        session("B", i, 50.0, wall=float(w), passed=p)
        for i, (w, p) in enumerate(zip(walls_b, pass_b, strict=True))
    ]
    result = compare_arms(
        base,
        cand,
        baseline="A",
        candidate="B",
        against="x",
        settings=GateSettings(metric="tasks_per_window", alpha=alpha),
        concurrency=(1, int(scale)),
    )
    a = [(1.0 if p else 0.0, float(w)) for w, p in zip(walls_a, pass_a, strict=True)]
    b = [(1.0 if p else 0.0, float(w)) for w, p in zip(walls_b, pass_b, strict=True)]
    ref = _bootstrap_reference(a, b, scale, alpha)
    goodput_a = np.mean(pass_a) / np.mean(walls_a)
    goodput_b = np.mean(pass_b) / np.mean(walls_b)
    assert result.ratio == pytest.approx(goodput_b / goodput_a * scale, rel=1e-12)
    assert result.ci == pytest.approx((ref["low"], ref["high"]), rel=1e-12)
    assert result.p == pytest.approx(ref["p"], rel=1e-12)
    assert result.p_improved == pytest.approx(ref["p_improved"], rel=1e-12)
    assert result.mde == pytest.approx(ref["mde"], rel=1e-12)
    assert result.sessions_needed == ref["needed"]
    assert result.n == (10, 12)
    assert not result.paired
    assert result.to_json()["estimator"] == "bootstrap"


def test_tasks_per_window_edge_cases() -> None:
    goodput = GateSettings(metric="tasks_per_window")

    def run(base: list[SessionRecord], cand: list[SessionRecord]) -> Comparison:
        return compare_arms(base, cand, baseline="A", candidate="B", against="x", settings=goodput)

    three = run(arm("A", [50.0] * 3), arm("B", [50.0] * 3))
    assert three.reasons == (
        "3 and 3 sessions cannot decide at alpha 0.05 (the smallest possible p is 0.05); "
        "at least 4 sessions per arm are needed",
    )
    assert three.ratio is None
    short = run(arm("A", [50.0] * 5), arm("B", [50.0]))
    assert short.reasons == ("too few sessions to compare (5 and 1)",)
    # Sessions without turns or time are left out of the count.
    empty = [replace(s, turns=()) for s in arm("B", [50.0] * 5)]
    assert run(arm("A", [50.0] * 5), empty).n == (5, 0)
    no_time = [replace(s, wall_s=0.0) for s in arm("B", [50.0] * 5)]
    assert run(arm("A", [50.0] * 5), no_time).n == (5, 0)
    none_passed = arm("A", [50.0] * 5, passed=[False] * 5)
    assert run(none_passed, arm("B", [50.0] * 5)).reasons == (
        "the baseline passed no task; tasks per window cannot be compared",
    )
    zero = run(arm("A", [50.0] * 5), arm("B", [50.0] * 5, passed=[False] * 5))
    assert (zero.ratio, zero.ci, zero.p, zero.p_improved) == (0.0, (0.0, 0.0), 0.0, 1.0)
    assert zero.verdict == "FAIL"
    assert zero.reasons[0] == "B is 100% slower than A (CI 100-100%), beyond the 5% tolerance"


# -- runs, fingerprints, refusals --------------------------------------------------------------


def test_compare_runs_takes_each_runs_concurrency() -> None:
    base = replace(_run(arm("A", [50.0] * 6)), environment={"concurrency": 2})
    cand = replace(_run(arm("A", [50.0] * 6)), environment={})
    result = compare_runs(
        base,
        cand,
        baseline_arm="A",
        candidate_arm="A",
        against="x",
        settings=GateSettings(metric="tasks_per_window"),
    )
    # Two sessions at a time against one (unknown reads as one): half the tasks per window.
    assert result.ratio == pytest.approx(0.5, rel=1e-12)
    assert result.ci == pytest.approx((0.5, 0.5), rel=1e-12)
    assert result.warnings == ("baseline fingerprint: concurrency differs: 2 vs None",)


def test_compare_runs_within_one_run_checks_no_fingerprint() -> None:
    run = _run(arm("A", [50.0] * 6) + [session("B", i, 60.0) for i in range(3)])
    result = compare_runs(
        run, run, baseline_arm="A", candidate_arm="B", against="this run", settings=GATE
    )
    assert result.refused == ()
    assert result.warnings == ("3 session(s) without a partner in the other arm left out",)
    assert result.against == "this run"
    assert (result.baseline, result.candidate) == ("A", "B")


def test_fingerprint_of_an_arm() -> None:
    run = _run(
        [*arm("A", [50.0] * 7), session("B", 9, 50.0)],
        metric_definitions={"throughput_tok_s": 1},
    )
    assert fingerprint_mod.fingerprint(run, "A") == {
        "tasks": ["t0", "t1", "t2", "t3", "t4"],
        "agent": "builtin",
        "concurrency": 1,
        "time_scale": 0.05,
        "repeat": 1,
        "metric_definitions": {"throughput_tok_s": 1},
    }
    assert fingerprint_mod.fingerprint(run, "B")["tasks"] == ["t4"]


def test_refusal_lists_at_most_five_tasks_per_side() -> None:
    five, seven = [f"a{i}" for i in range(5)], [f"b{i}" for i in range(7)]
    assert fingerprint_refusals({"tasks": five}, {"tasks": seven}, metric="throughput_tok_s") == [
        "the baseline and this run have no task in common "
        "(a0, a1, a2, a3, a4; b0, b1, b2, b3, b4 and 2 more)"
    ]
    # An empty task list (an old or empty run) refuses nothing.
    assert fingerprint_refusals({"tasks": []}, {"tasks": seven}, metric="throughput_tok_s") == []
    assert fingerprint_refusals({"tasks": five}, {}, metric="throughput_tok_s") == []
    assert fingerprint_refusals({"agent": "x"}, {"agent": None}, metric="throughput_tok_s") == []


def test_fingerprint_differences_one_sided_task_sets() -> None:
    base = {"tasks": ["a", "b"], "agent": "builtin", "concurrency": 1, "repeat": 1}
    assert fingerprint_differences(base, dict(base, tasks=["a"])) == [
        "task set differs (only in the baseline: b)"
    ]
    assert fingerprint_differences(base, dict(base, tasks=["a", "b", "c"])) == [
        "task set differs (only in the candidate: c)"
    ]
    # Two known, different agents are a refusal, not a warning.
    assert fingerprint_differences(base, dict(base, agent="oracle")) == []


def test_a_refused_comparison_in_full() -> None:
    base = _run(arm("A", [50.0] * 4, passed=[True, False, True, True]), time_scale=1.0)
    cand = _run(_errored(arm("A", [50.0] * 3), {0}))
    result = compare_runs(
        base, cand, baseline_arm="A", candidate_arm="A", against="baseline main", settings=GATE
    )
    data = result.to_json()
    assert data == {
        "metric": "throughput_tok_s",
        "baseline": "A",
        "candidate": "A",
        "against": "baseline main",
        "estimator": "hodges_lehmann_log",
        "paired": False,
        "n": [4, 3],
        "ratio": None,
        "ci": None,
        "ci_level": pytest.approx(0.9),
        "test": "none",
        "alternative": "less",
        "p_shown": None,
        "p": None,
        "p_improved": None,
        "brunner_munzel_p": None,
        "welch_log": None,
        "mde": None,
        "sessions_needed": None,
        "pass_rate": {
            "passed": [3, 2],
            "sessions": [4, 3],
            "rates": [0.75, pytest.approx(2 / 3)],
            "p": None,
            "regressed": False,
        },
        "error_rate": {
            "errors": [0, 1],
            "sessions": [4, 3],
            "rates": [0.0, pytest.approx(1 / 3)],
            "p": None,
            "regressed": False,
        },
        "tolerance": 0.05,
        "margin": 0.1,
        "alpha": 0.05,
        "verdict": "NOT COMPARED",
        "reasons": [],
        "warnings": ["baseline fingerprint: task set differs (only in the baseline: t3)"],
        "refused": ["the baseline ran at time scale 1 and this run at 0.05"],
        "line": "not compared: the baseline ran at time scale 1 and this run at 0.05; "
        "record a new baseline",
    }


def test_every_number_of_the_reason_lines_at_other_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # Values where a percentage scaled by 101 instead of 100 would round differently.
    up = decide_core(monkeypatch, _core(ratio=1.90, ci=(1.70, 2.10), p=0.99, p_improved=0.001))
    assert up.reasons == ("B is 90% faster than A (CI +70% to +110%); consider a new baseline",)
    base = arm("A", [50.0] * 20)
    fell = decide_core(
        monkeypatch,
        _core(),
        base=base,
        cand=arm("B", [50.0] * 20, passed=[i < 11 for i in range(20)]),
    )
    assert fell.reasons[-1].startswith("pass rate fell from 100% to 55% (Fisher p=")
    none = decide_core(
        monkeypatch, _core(), base=base, cand=arm("B", [50.0] * 20, passed=[False] * 20)
    )
    assert none.reasons[-1].startswith("pass rate fell from 100% to 0% (Fisher p<1e-04), ")
    # Arms of other sizes: each count is its own arm's.
    errors = decide_core(
        monkeypatch,
        _core(),
        base=arm("A", [50.0] * 20),
        cand=_errored(arm("B", [50.0] * 30), set(range(12))),
    )
    assert errors.reasons[-1].startswith(
        "B ended 12 of 30 sessions in endpoint errors, A 0 of 20 ("
    )
    no_ratio = decide_core(monkeypatch, _core(ratio=None, n=(10, 9)))
    assert no_ratio.line == "throughput ratio -, n=10/9 -> INCONCLUSIVE"


def test_a_pass_rate_drop_is_measured_on_each_arms_own_size() -> None:
    # 20 of 20 against 18 of 30: a 40 pp drop.
    check = compare_mod._rate_check("passed", [True] * 20, [True] * 18 + [False] * 12, GATE)
    assert check.regressed
    assert check.rates == (1.0, 0.6)


def test_session_speed_of_sessions_shorter_than_a_second() -> None:
    assert compare_mod.metric_value(session("A", 0, 50.0, wall=0.5), "session_wall_s") == 2.0


def test_unpaired_arms_of_other_sizes_name_both() -> None:
    result = decide(
        [session("A", i, 50.0) for i in range(2)], [session("B", i + 10, 60.0) for i in range(3)]
    )
    assert result.paired is False
    assert result.to_json()["paired"] is False
    assert result.reasons == (
        "2 and 3 sessions cannot decide at alpha 0.05 (the smallest possible p is 0.1); "
        "at least 4 sessions per arm are needed",
    )


def test_unpaired_advice_adds_both_arms_variances() -> None:
    a = [50.0, 70.0, 35.0, 60.0, 45.0]
    b = [40.0, 30.0, 55.0, 25.0, 45.0, 35.0]
    base = [session("A", i, v, wall=1000.0) for i, v in enumerate(a)]
    cand = [session("B", i + 50, v, wall=1000.0) for i, v in enumerate(b)]
    result = compare_arms(base, cand, baseline="A", candidate="B", against="x", settings=GATE)
    va, vb = float(np.var(np.log(a), ddof=1)), float(np.var(np.log(b), ddof=1))
    z = sps.norm.ppf(0.95) + sps.norm.ppf(0.80)
    needed = math.ceil(z**2 * (va + vb) / math.log(1 / 0.9) ** 2)
    assert needed > 4
    assert result.sessions_needed == needed


def test_tasks_per_window_arm_sizes_and_which_sessions_count() -> None:
    goodput = GateSettings(metric="tasks_per_window")

    def run(base: list[SessionRecord], cand: list[SessionRecord]) -> Comparison:
        return compare_arms(base, cand, baseline="A", candidate="B", against="x", settings=goodput)

    # Two sessions against five can decide (1 / C(7, 2) = 0.048): not "too few".
    for sizes in ((2, 5), (5, 2)):
        result = run(arm("A", [50.0] * sizes[0]), arm("B", [50.0] * sizes[1]))
        assert result.n == sizes
        assert result.ratio == pytest.approx(1.0, rel=1e-12)
        assert result.paired is False
        assert result.to_json()["paired"] is False
    # Identical arms: every resampled log ratio is exactly 0, which counts in both tails.
    same = run(arm("A", [50.0] * 5), arm("B", [50.0] * 5))
    assert (same.p, same.p_improved) == (1.0, 1.0)
    # Sessions without turns, without time, or shorter than a second, in either arm.
    odd = [
        replace(session("X", 90, 50.0), turns=()),
        replace(session("X", 91, 50.0), wall_s=0.0),
        session("X", 92, 50.0, wall=0.5),
    ]
    base = arm("A", [50.0] * 5) + [replace(s, endpoint="A") for s in odd]
    cand = arm("B", [50.0] * 5) + [replace(s, endpoint="B") for s in odd]
    assert run(base, cand).n == (6, 6)


def test_compare_runs_reads_an_unknown_baseline_concurrency_as_one() -> None:
    base = replace(_run(arm("A", [50.0] * 6)), environment={})
    cand = replace(_run(arm("A", [50.0] * 6)), environment={"concurrency": 2})
    result = compare_runs(
        base,
        cand,
        baseline_arm="A",
        candidate_arm="A",
        against="x",
        settings=GateSettings(metric="tasks_per_window"),
    )
    assert result.ratio == pytest.approx(2.0, rel=1e-12)


def test_refusals_and_differences_name_every_part() -> None:
    base = _run(
        _errored(arm("A", [50.0] * 4), {2}),
        time_scale=1.0,
        agent="builtin",
        metric_definitions={"session_wall_s": 2},
    )
    cand = _run(arm("A", [50.0] * 4), agent="oracle")
    result = compare_runs(
        base,
        cand,
        baseline_arm="A",
        candidate_arm="A",
        against="x",
        settings=GateSettings(metric="session_wall_s"),
    )
    assert result.line == (
        "not compared: the baseline ran at time scale 1 and this run at 0.05; the baseline ran "
        "the builtin agent and this run the oracle agent; the baseline measured session_wall_s "
        "by definition 2 and this run by definition 1; record a new baseline"
    )
    assert result.error_rate.counts == (1, 0)
    base_fp = {"tasks": ["a"], "agent": "builtin", "concurrency": 1, "repeat": 1}
    assert fingerprint_differences(base_fp, dict(base_fp, tasks=["a", "b", "c"], agent=None)) == [
        "task set differs (only in the candidate: b, c)",
        "agent differs: builtin vs None",
    ]


def test_brunner_munzel_cross_check_is_on_the_analysed_logs() -> None:
    a, b = paired_arms(0.9, 0.1, 12)
    paired = decide(arm("A", a), arm("B", b))
    la = [math.log(s.throughput_tok_s or 0) for s in arm("A", a)]
    lb = [math.log(s.throughput_tok_s or 0) for s in arm("B", b)]
    expected = stats.brunner_munzel_p(la, lb, paired.alternative)
    assert paired.brunner_munzel_p == pytest.approx(expected, rel=1e-12)
    assert paired.to_json()["brunner_munzel_p"] == pytest.approx(expected, rel=1e-12)
    cand = [replace(s, slot=f"other/{i}") for i, s in enumerate(arm("B", b))]
    unpaired = decide(arm("A", a), cand)
    assert not unpaired.paired
    expected = stats.brunner_munzel_p(la, lb, unpaired.alternative)
    assert unpaired.brunner_munzel_p == pytest.approx(expected, rel=1e-12)


def test_refusals_use_the_candidate_label() -> None:
    a, b = paired_arms(1.0, 0.05, 6)
    result = compare_runs(
        _run(arm("A", a), time_scale=1.0),
        _run(arm("A", b)),
        baseline_arm="A",
        candidate_arm="A",
        against="x",
        settings=GATE,
        candidate_label="the candidate",
    )
    assert result.refused == ("the baseline ran at time scale 1 and the candidate at 0.05",)


def test_tasks_per_window_resamples_without_a_pass_are_left_out() -> None:
    # One pass in five: about a third of the candidate's resamples pass nothing (log 0), left
    # out of the CI and p without a warning (warnings are errors in this suite).
    base = arm("A", [50.0] * 5)
    cand = arm("B", [50.0] * 5, passed=[i == 0 for i in range(5)])
    result = decide(base, cand, GateSettings(metric="tasks_per_window"))
    rows_a, rows_b = [(1.0, 100.0)] * 5, [(1.0, 100.0)] + [(0.0, 100.0)] * 4
    ref = _bootstrap_reference(rows_a, rows_b, 1.0, 0.05)
    assert result.ratio == pytest.approx(0.2, rel=1e-12)
    assert result.ci == pytest.approx((ref["low"], ref["high"]), rel=1e-12)
    assert result.p == pytest.approx(ref["p"], rel=1e-12)
