"""The gate's statistics against hand-computed values, scipy, and the tables of statistics.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pytest_agentspeed import stats


def test_paired_hodges_lehmann_by_hand() -> None:
    # d = 0..9: the 55 Walsh averages are s/2 for s = i + j; 0-based k = 11 is 2.5 (s = 5).
    # k = floor(55/2 - 1.6449 * sqrt(10*11*21/24)) = floor(11.36) = 11, median 4.5.
    shift = stats.hl_paired(list(range(10)), 0.90)
    assert (shift.estimate, shift.low, shift.high) == (4.5, 2.5, 6.5)
    # n = 3: Walsh averages 1, 1.5, 2, 2.5, 3, 4; k = floor(3 - 1.6449 * sqrt(3.5)) < 0 -> 0.
    small = stats.hl_paired([1.0, 2.0, 4.0], 0.90)
    assert (small.estimate, small.low, small.high) == (2.25, 1.0, 4.0)


def test_unpaired_hodges_lehmann_by_hand() -> None:
    # b - a over a = 0,1,2 and b = 2..5: 0 1 1 2 2 2 3 3 3 4 4 5; median 2.5;
    # k = floor(6 - 1.6449 * sqrt(3*4*8/12)) = floor(1.35) = 1 -> D(1) = 1, D(10) = 4.
    shift = stats.hl_unpaired([0.0, 1.0, 2.0], [2.0, 3.0, 4.0, 5.0], 0.90)
    assert (shift.estimate, shift.low, shift.high) == (2.5, 1.0, 4.0)
    assert shift.ratio() == pytest.approx((math.exp(2.5), math.e, math.exp(4.0)))


def test_hodges_lehmann_ci_covers_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(400):
        a, b = rng.normal(0, 0.2, 20), rng.normal(0.1, 0.2, 20)
        shift = stats.hl_unpaired(a, b, 0.90)
        hits += shift.low <= 0.1 <= shift.high
    assert 0.85 <= hits / 400 <= 0.96


def test_p_values_are_scipys() -> None:
    rng = np.random.default_rng(3)
    a = rng.lognormal(3.9, 0.19, 20)
    b = rng.lognormal(3.8, 0.25, 18)
    la, lb = np.log(a), np.log(b)
    d = lb[:15] - la[:15]
    assert stats.wilcoxon_p(d, "less") == sps.wilcoxon(d, alternative="less").pvalue
    assert stats.wilcoxon_p(d, "greater") == sps.wilcoxon(d, alternative="greater").pvalue
    assert (
        stats.mannwhitney_p(la, lb, "less") == sps.mannwhitneyu(lb, la, alternative="less").pvalue
    )
    assert (
        stats.brunner_munzel_p(la, lb, "less")
        == sps.brunnermunzel(lb, la, alternative="less").pvalue
    )
    welch = stats.welch_log(la, lb, 0.90)
    assert welch is not None
    assert welch.p_less == sps.ttest_ind(lb, la, equal_var=False, alternative="less").pvalue
    assert welch.ratio == pytest.approx(math.exp(lb.mean() - la.mean()))
    assert (
        stats.fisher_less_p(5, 20, 18, 20)
        == sps.fisher_exact([[5, 15], [18, 2]], alternative="less").pvalue
    )


def test_direction_of_the_tests() -> None:
    slow = [math.log(v) for v in (40, 42, 41, 39, 43, 40, 41, 42, 40, 39)]
    fast = [v + 0.3 for v in slow]
    d = [c - b for b, c in zip(fast, slow, strict=True)]  # baseline fast, candidate slow
    assert stats.wilcoxon_p(d, "less") < 0.01
    assert stats.wilcoxon_p(d, "greater") > 0.99
    assert stats.mannwhitney_p(fast, slow, "less") < 0.01
    assert stats.wilcoxon_p([0.0, 0.0], "less") == 1.0


@pytest.mark.parametrize(
    ("n", "sigma", "expected"),
    # statistics.md section 7, minimum detectable regression for n per arm
    [
        (10, 0.19, 0.190),
        (20, 0.19, 0.139),
        (44, 0.19, 0.096),
        (100, 0.19, 0.065),
        (10, 0.49, 0.420),
        (30, 0.30, 0.175),
        (60, 0.10, 0.044),
    ],
)
def test_mde_matches_the_table(n: int, sigma: float, expected: float) -> None:
    se = sigma * math.sqrt(2 / n)  # two independent arms with equal spread
    assert stats.mde(se, alpha=0.05) == pytest.approx(expected, abs=0.0006)


@pytest.mark.parametrize(
    ("sigma", "regression", "expected"),
    # statistics.md section 7, sessions per arm for 80% power
    [
        (0.19, 0.10, 41),
        (0.49, 0.10, 268),
        (0.30, 0.10, 101),
        (0.10, 0.05, 47),
        (0.19, 0.20, 9),
        (0.15, 0.15, 11),
    ],
)
def test_sessions_needed_match_the_table(sigma: float, regression: float, expected: int) -> None:
    assert stats.sessions_needed(2 * sigma**2, regression, alpha=0.05) == expected


def test_degenerate_inputs() -> None:
    with pytest.raises(ValueError, match="no pairs"):
        stats.hl_paired([], 0.9)
    with pytest.raises(ValueError, match="no sessions"):
        stats.hl_unpaired([], [1.0], 0.9)
    assert stats.welch_log([1.0], [1.0, 2.0], 0.9) is None
    assert stats.welch_log([1.0, 1.0], [2.0, 2.0], 0.9) is None
    assert math.isnan(stats.brunner_munzel_p([1.0], [2.0, 3.0], "less"))
