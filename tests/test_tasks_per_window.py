"""The tasks-per-window comparison: its bootstrap's one-sided p-values point the right way, and
the arms' concurrency scales the ratio and its CI (Little's law: twice the sessions in
parallel, twice the tasks per window at the same session time).

With every session of an arm alike, every bootstrap resample gives the same tasks per window,
so the ratio, the CI and the p-values are exact.
"""

from __future__ import annotations

import pytest
from factories import session

from pytest_agentspeed.analysis.compare import BOOTSTRAP_RESAMPLES, compare_arms
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.records import Comparison, SessionRecord

N = 12
GOODPUT = GateSettings(metric="tasks_per_window")


def alike(arm: str, wall: float) -> list[SessionRecord]:
    return [session(arm, i, 50.0, wall=wall) for i in range(N)]


def goodput(
    base: list[SessionRecord], cand: list[SessionRecord], concurrency: tuple[int, int] = (1, 1)
) -> Comparison:
    return compare_arms(
        base,
        cand,
        baseline="A",
        candidate="B",
        against="this run",
        settings=GOODPUT,
        concurrency=concurrency,
    )


def test_sessions_twice_as_long_are_half_the_tasks_and_significantly_worse() -> None:
    result = goodput(alike("A", 100.0), alike("B", 200.0))
    assert result.test == "bootstrap_ratio_of_means"
    assert result.ratio == 0.5
    assert result.ci == pytest.approx((0.5, 0.5))
    # No resample shows the candidate as good: p (worse) is the bootstrap's floor, one in
    # resamples + 1 (a bootstrap p is never 0), and p (better) is 1.
    assert (result.p, result.p_improved) == (1 / (BOOTSTRAP_RESAMPLES + 1), 1.0)
    assert result.verdict == "FAIL"


def test_sessions_half_as_long_are_twice_the_tasks_and_significantly_better() -> None:
    result = goodput(alike("A", 200.0), alike("B", 100.0))
    assert result.ratio == 2.0
    assert result.ci == pytest.approx((2.0, 2.0))
    assert (result.p, result.p_improved) == (1.0, 1 / (BOOTSTRAP_RESAMPLES + 1))
    assert result.verdict == "IMPROVED"


@pytest.mark.parametrize(
    ("concurrency", "ratio", "verdict"),
    [((1, 4), 2.0, "IMPROVED"), ((4, 1), 0.125, "FAIL"), ((2, 4), 1.0, "PASS")],
)
def test_concurrency_scales_tasks_per_window(
    concurrency: tuple[int, int], ratio: float, verdict: str
) -> None:
    """The candidate's sessions take twice as long; run four at a time against one, it still
    finishes twice the tasks per window (and an eighth when the baseline ran four)."""
    result = goodput(alike("A", 100.0), alike("B", 200.0), concurrency=concurrency)
    assert result.ratio == ratio
    assert result.ci == pytest.approx((ratio, ratio))
    assert result.verdict == verdict


def test_a_noisy_regression_is_told_apart_in_the_right_direction() -> None:
    """Varied session times, the candidate's 12% longer: the resamples mostly show it worse,
    so its p (worse) is small and its p (better) large; the same on every run (seeded)."""
    walls = [80.0, 90.0, 100.0, 110.0, 120.0, 95.0, 105.0, 85.0, 115.0, 100.0, 90.0, 110.0]
    base = [session("A", i, 50.0, wall=w) for i, w in enumerate(walls)]
    cand = [session("B", i, 50.0, wall=w * 1.12) for i, w in enumerate(walls)]
    result = goodput(base, cand)
    assert result.ratio == pytest.approx(1 / 1.12)
    assert result.ci is not None
    assert result.ci[0] < 1 / 1.12 < result.ci[1] < 1.0
    assert result.p is not None
    assert result.p_improved is not None
    assert 0 < result.p < GOODPUT.alpha
    assert result.p_improved > 1 - GOODPUT.alpha
    assert result.verdict == "FAIL"
    assert goodput(base, cand).to_json() == result.to_json()
