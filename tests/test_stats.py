"""The gate's statistics against hand-computed values, scipy, and the tables of statistics.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pytest_agentspeed.analysis import stats


def test_paired_hodges_lehmann_by_hand() -> None:
    # d = 0..9: the 55 Walsh averages are s/2 for s = i + j (counts 1 1 2 2 3 3 ... by s).
    # Exact signed-rank null for n = 10: P(T <= 10) = 43/1024 = 0.042 < 0.05 <= P(T <= 11)
    # = 0.053, so k = 10 (0-based): the 11th Walsh average, s = 5 -> 2.5; median 4.5.
    shift = stats.hl_paired(list(range(10)), 0.90)
    assert (shift.estimate, shift.low, shift.high) == (4.5, 2.5, 6.5)
    assert stats.signed_rank_null(10).cdf(10) == 43 / 1024
    # n = 3: P(T <= 0) = 1/8 >= 0.05: no p can reach alpha, the CI has no finite bound.
    small = stats.hl_paired([1.0, 2.0, 4.0], 0.90)
    assert (small.estimate, small.low, small.high) == (2.25, -math.inf, math.inf)


def test_unpaired_hodges_lehmann_by_hand() -> None:
    # b - a over a = 0,1,2 and b = 2..5: 0 1 1 2 2 2 3 3 3 4 4 5; median 2.5.
    # Exact U null for 3 and 4: P(U <= 0) = 1/35 < 0.05 <= P(U <= 1) = 2/35, so k = 0.
    shift = stats.hl_unpaired([0.0, 1.0, 2.0], [2.0, 3.0, 4.0, 5.0], 0.90)
    assert (shift.estimate, shift.low, shift.high) == (2.5, 0.0, 5.0)
    assert shift.ratio() == pytest.approx((math.exp(2.5), 1.0, math.exp(5.0)))
    assert stats.rank_sum_null(3, 4).cdf(1) == pytest.approx(2 / 35)


def test_exact_null_distributions_match_scipy() -> None:
    rng = np.random.default_rng(11)
    for n in (1, 2, 5, 12, 25):
        d = rng.normal(0.05, 0.2, n)
        for alt in ("less", "greater"):
            assert stats.wilcoxon_p(d, alt) == pytest.approx(
                sps.wilcoxon(d, alternative=alt, method="exact").pvalue, rel=1e-12
            )
    for m, n in ((2, 3), (5, 5), (9, 11), (30, 40)):
        a, b = rng.normal(0, 1, m), rng.normal(0.3, 1, n)
        for alt in ("less", "greater"):
            assert stats.mannwhitney_p(a, b, alt) == pytest.approx(
                sps.mannwhitneyu(b, a, alternative=alt, method="exact").pvalue, rel=1e-9
            )


def test_smallest_p_and_minimum_sizes() -> None:
    assert [stats.smallest_p_paired(n) for n in (2, 4, 5)] == [0.25, 0.0625, 0.03125]
    assert stats.smallest_p_unpaired(3, 3) == pytest.approx(1 / 20)
    assert stats.smallest_p_unpaired(4, 4) == pytest.approx(1 / 70)
    # p < alpha is strict: 3 against 3 reaches 0.05 exactly, which does not decide at 0.05.
    assert stats.min_pairs(0.05) == 5
    assert stats.min_per_arm(0.05) == 4
    assert stats.min_pairs(0.01) == 7
    assert stats.min_per_arm(0.01) == 5


def _samples(rng: np.random.Generator, n: int, *, discrete: bool) -> np.ndarray:
    """Log differences, rounded onto a coarse grid when ``discrete`` (ties and zeros)."""
    values = rng.normal(rng.choice([-0.3, 0.0, 0.3]), 0.3, n)
    return np.round(values * 10) / 10 if discrete else values


@pytest.mark.parametrize("alpha", [0.05, 0.025, 0.10])
def test_ci_is_the_exact_inversion_of_the_test(alpha: float) -> None:
    """lower bound > 0 exactly when p(greater) < alpha, upper bound < 0 exactly when
    p(less) < alpha: over random samples with and without ties and zeros, small and large
    (the normal approximation beyond the exact sizes)."""
    rng = np.random.default_rng(2026)
    checked = {"low": 0, "high": 0}
    for trial in range(600):
        discrete = trial % 2 == 0
        n = int(rng.choice([2, 3, 4, 5, 6, 8, 12, 20, 40, 320]))
        d = _samples(rng, n, discrete=discrete)
        test = stats.signed_rank(d, alpha)
        assert (test.shift.low > 0) == (test.p_greater < alpha), (d, test)
        assert (test.shift.high < 0) == (test.p_less < alpha), (d, test)
        checked["low"] += test.shift.low > 0
        checked["high"] += test.shift.high < 0
        m = int(rng.choice([2, 3, 4, 6, 9, 15, 60]))
        a = _samples(rng, m, discrete=discrete)
        b = _samples(rng, n if n < 100 else 45, discrete=discrete)
        test = stats.rank_sum(a, b, alpha)
        assert (test.shift.low > 0) == (test.p_greater < alpha), (a, b, test)
        assert (test.shift.high < 0) == (test.p_less < alpha), (a, b, test)
        checked["low"] += test.shift.low > 0
        checked["high"] += test.shift.high < 0
    # Both directions were actually decided many times, not vacuously equal.
    assert checked["low"] > 50
    assert checked["high"] > 50


def test_too_small_to_decide_means_unbounded_ci_and_no_small_p() -> None:
    # Three pairs all far faster: the largest possible evidence, yet p = 1/8 and no bound.
    test = stats.signed_rank([0.7, 0.69, 0.71], 0.05)
    assert not test.decidable
    assert test.p_greater == 0.125
    assert (test.shift.low, test.shift.high) == (-math.inf, math.inf)
    five = stats.signed_rank([0.7, 0.69, 0.71, 0.68, 0.72], 0.05)
    assert five.decidable
    assert five.p_greater == 1 / 32
    assert five.shift.low == 0.68
    assert five.null.size(0.05) == 1 / 32


def test_ties_at_zero_count_against_the_alternative() -> None:
    # One zero difference among otherwise positive ones: the zero's Walsh average (0) counts
    # as "not greater", so p is that of the worst way of breaking the tie, never smaller.
    d = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    test = stats.signed_rank(d, 0.05)
    worst = stats.signed_rank([-1e-9, 0.1, 0.2, 0.3, 0.4, 0.5], 0.05).p_greater
    best = stats.signed_rank([1e-9, 0.1, 0.2, 0.3, 0.4, 0.5], 0.05).p_greater
    assert test.p_greater == worst == 2 / 64
    assert best == 1 / 64


def test_hodges_lehmann_ci_covers_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(400):
        a, b = rng.normal(0, 0.2, 20), rng.normal(0.1, 0.2, 20)
        shift = stats.hl_unpaired(a, b, 0.90)
        hits += shift.low <= 0.1 <= shift.high
    assert 0.85 <= hits / 400 <= 0.96


def test_p_values_agree_with_scipy() -> None:
    rng = np.random.default_rng(3)
    a = rng.lognormal(3.9, 0.19, 20)
    b = rng.lognormal(3.8, 0.25, 18)
    la, lb = np.log(a), np.log(b)
    d = lb[:15] - la[:15]
    assert stats.wilcoxon_p(d, "less") == pytest.approx(
        sps.wilcoxon(d, alternative="less").pvalue, rel=1e-12
    )
    assert stats.wilcoxon_p(d, "greater") == pytest.approx(
        sps.wilcoxon(d, alternative="greater").pvalue, rel=1e-12
    )
    # 20 x 18 is within the exact sizes here; scipy's default is its normal approximation.
    assert stats.mannwhitney_p(la, lb, "less") == pytest.approx(
        sps.mannwhitneyu(lb, la, alternative="less", method="exact").pvalue, rel=1e-9
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
    with pytest.raises(ValueError, match=r"^no pairs$"):
        stats.hl_paired([], 0.9)
    with pytest.raises(ValueError, match=r"^an arm has no sessions$"):
        stats.hl_unpaired([], [1.0], 0.9)
    assert stats.welch_log([1.0], [1.0, 2.0], 0.9) is None
    assert stats.welch_log([1.0, 1.0], [2.0, 2.0], 0.9) is None
    assert math.isnan(stats.brunner_munzel_p([1.0], [2.0, 3.0], "less"))


def test_brunner_munzel_is_undefined_without_overlap_and_bounded_near_it() -> None:
    a = list(np.log(np.linspace(10, 12, 9)))
    # No overlap: every placement variance is zero; scipy has no degrees of freedom.
    assert math.isnan(stats.brunner_munzel_p(a, list(np.log(np.linspace(20, 24, 9))), "greater"))
    # One overlapping value: scipy's t approximation says ~1e-12; no rank statistic of
    # 9 against 9 can go below 1 / C(18, 9).
    near = list(np.log(np.linspace(11.9, 24, 9)))
    raw = sps.brunnermunzel(near, a, alternative="greater").pvalue
    assert raw < 1e-9
    assert stats.brunner_munzel_p(a, near, "greater") == 1 / math.comb(18, 9)


# -- exact values and boundaries (mutation testing, docs/testing.md) ----------------------------


def test_null_distributions_switch_to_the_normal_beyond_the_exact_sizes() -> None:
    assert stats.EXACT_MAX_PAIRS == 300
    assert stats.EXACT_MAX_CELLS == 2500
    assert stats.signed_rank_null(300).exact
    assert not stats.signed_rank_null(301).exact
    assert stats.rank_sum_null(50, 50).exact
    assert not stats.rank_sum_null(50, 51).exact
    assert not stats.rank_sum_null(51, 50).exact


@pytest.mark.parametrize("n", [301, 500])
def test_signed_rank_normal_approximation_by_formula(n: int) -> None:
    null = stats.signed_rank_null(n)
    top = n * (n + 1) // 2
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    assert (null.top, null.sd) == (top, sd)
    assert null.cdf(-1) == 0.0
    assert null.cdf(top) == 1.0
    for t in (0, top // 3, top // 2, top - 1):
        assert null.cdf(t) == sps.norm.cdf((t + 0.5 - top / 2) / sd)


@pytest.mark.parametrize(("m", "n"), [(51, 50), (40, 90)])
def test_rank_sum_normal_approximation_by_formula(m: int, n: int) -> None:
    null = stats.rank_sum_null(m, n)
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    assert (null.top, null.sd) == (m * n, sd)
    t = m * n // 2 - 37
    assert null.cdf(t) == sps.norm.cdf((t + 0.5 - m * n / 2) / sd)


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.1, 0.3])
def test_critical_value_is_the_largest_below_alpha(alpha: float) -> None:
    """Exact: by brute force over every t. Normal: P(T <= c) < alpha <= P(T <= c + 1), which
    for a rising CDF is the same."""
    for null in (stats.signed_rank_null(12), stats.rank_sum_null(6, 9)):
        below = [t for t in range(-1, null.top + 1) if null.cdf(t) < alpha]
        assert null.critical(alpha) == max(below)
        assert null.size(alpha) == null.cdf(max(below))
    for null in (stats.signed_rank_null(330), stats.rank_sum_null(45, 70)):
        c = null.critical(alpha)
        assert null.cdf(c) < alpha <= null.cdf(c + 1)
        assert null.size(alpha) == null.cdf(c)


def test_critical_value_at_an_attainable_p_is_strictly_below() -> None:
    # n = 10: P(T <= 10) = 43/1024 exactly; at alpha = 43/1024 the critical value is 9.
    null = stats.signed_rank_null(10)
    assert null.critical(43 / 1024) == 9
    assert null.critical(43 / 1024 + 1e-12) == 10
    assert null.size(43 / 1024) == null.cdf(9)
    # Nothing attainable below alpha: -1, and a size of 0.
    assert stats.signed_rank_null(3).critical(0.05) == -1
    assert stats.signed_rank_null(3).size(0.05) == 0.0
    assert stats.signed_rank_null(3).critical(0.125 + 1e-12) == 0
    assert stats.signed_rank_null(3).size(0.2) == 0.125


def test_normal_critical_value_when_the_first_guess_is_off() -> None:
    # Far tails: the z start is refined by the two loops up and down.
    null = stats.signed_rank_null(400)
    for alpha in (1e-9, 0.5, 0.999999):
        c = null.critical(alpha)
        assert null.cdf(c) < alpha <= null.cdf(c + 1)


def test_smallest_possible_p_values() -> None:
    assert stats.smallest_p_paired(1) == 0.5
    assert stats.smallest_p_paired(8) == 1 / 256
    assert stats.smallest_p_unpaired(2, 5) == pytest.approx(1 / 21, rel=1e-12)
    assert stats.smallest_p_unpaired(5, 2) == pytest.approx(1 / 21, rel=1e-12)
    # p < alpha is strict at every boundary: reaching alpha exactly is not enough.
    assert stats.min_pairs(0.25) == 3
    assert stats.min_pairs(0.2500001) == 2
    assert stats.min_pairs(0.6) == 1
    assert stats.min_per_arm(0.5) == 2
    assert stats.min_per_arm(1 / 6 + 1e-9) == 2
    assert stats.min_per_arm(1 / 6) == 3
    assert stats.min_per_arm(1 / 20) == 4
    assert stats.min_per_arm(0.1) == 3


def test_rank_tests_of_each_size_by_hand() -> None:
    # Two pairs, both positive: Walsh averages 1, 1.5, 2; P(T <= 0) = 1/4.
    two = stats.signed_rank([1.0, 2.0], 0.3)
    assert (two.shift.estimate, two.shift.low, two.shift.high) == (1.5, 1.0, 2.0)
    assert (two.p_greater, two.p_less) == (0.25, 1.0)
    assert two.decidable
    assert not stats.signed_rank([1.0, 2.0], 0.25).decidable
    # b - a for a = 0, 1 and b = 3: 3 and 2. U's null for 2 and 1: P(U <= 0) = 1/3.
    rs = stats.rank_sum([0.0, 1.0], [3.0], 0.5)
    assert (rs.shift.estimate, rs.shift.low, rs.shift.high) == (2.5, 2.0, 3.0)
    assert (rs.p_greater, rs.p_less) == (pytest.approx(1 / 3), 1.0)
    with pytest.raises(ValueError, match="an arm has no sessions"):
        stats.rank_sum([1.0], [], 0.05)
    assert stats.wilcoxon_p([], "greater") == 1.0


def test_alpha_from_a_two_sided_level() -> None:
    assert stats._alpha(0.90) == 0.05
    assert stats._alpha(1 - 2 * 0.05) == 0.05
    assert stats._alpha(0.95) == 0.025
    assert stats.hl_paired(list(range(10)), 0.95) == stats.signed_rank(list(range(10)), 0.025).shift


def test_welch_matches_scipys_own_interval_and_degrees_of_freedom() -> None:
    rng = np.random.default_rng(9)
    for m, n, conf in ((5, 12, 0.90), (20, 7, 0.95), (3, 3, 0.80)):
        a, b = rng.normal(0.0, 0.1, m), rng.normal(0.05, 0.3, n)
        welch = stats.welch_log(a, b, conf)
        assert welch is not None
        res = sps.ttest_ind(b, a, equal_var=False)
        ci = res.confidence_interval(conf)
        assert welch.low == pytest.approx(math.exp(ci.low), rel=1e-12)
        assert welch.high == pytest.approx(math.exp(ci.high), rel=1e-12)
        assert welch.ratio == pytest.approx(math.exp(b.mean() - a.mean()), rel=1e-12)
        assert welch.p_less == sps.ttest_ind(b, a, equal_var=False, alternative="less").pvalue
    # Two values per arm is enough; one is not.
    assert stats.welch_log([0.0, 0.1], [0.2, 0.3], 0.9) is not None
    assert stats.welch_log([0.0, 0.1], [0.2], 0.9) is None


def test_fisher_is_one_sided_on_the_candidates_pass_rate() -> None:
    for passed_b, n_b, passed_a, n_a in ((3, 10, 7, 12), (9, 9, 1, 4), (0, 5, 5, 5)):
        table = [[passed_b, n_b - passed_b], [passed_a, n_a - passed_a]]
        assert stats.fisher_less_p(passed_b, n_b, passed_a, n_a) == pytest.approx(
            sps.fisher_exact(table, alternative="less").pvalue, rel=1e-12
        )
    # All 5 failures in the candidate's 5 of 10: 1 / C(10, 5).
    assert stats.fisher_less_p(0, 5, 5, 5) == pytest.approx(1 / 252)


def test_brunner_munzel_small_arms_and_direction() -> None:
    a, b = [0.0, 0.3, 0.1], [0.2, 0.5, 0.4, 0.05]
    for alt in ("less", "greater", "two-sided"):
        expected = sps.brunnermunzel(b, a, alternative=alt).pvalue
        assert stats.brunner_munzel_p(a, b, alt) == pytest.approx(expected, rel=1e-12)  # type: ignore[arg-type]
    assert not math.isnan(stats.brunner_munzel_p([0.0, 0.2], [0.1, 0.3], "less"))
    assert math.isnan(stats.brunner_munzel_p([0.0, 0.2], [0.1], "less"))
    # The floor: 1 / C(m + n, m), here 1 / C(4, 2) = 1/6 at 2 against 2.
    assert stats.brunner_munzel_p([0.0, 0.2], [0.1, 0.3], "greater") >= 1 / 6


def test_power_and_sizes_by_formula() -> None:
    z = sps.norm.ppf(0.95) + sps.norm.ppf(0.9)
    assert stats.z_sum(0.05, 0.9) == z
    assert stats.z_sum(0.05) == sps.norm.ppf(0.95) + sps.norm.ppf(0.8)
    assert stats.POWER == 0.80
    assert stats.mde(0.1, alpha=0.05, power=0.9) == 1 - math.exp(-z * 0.1)
    effect = math.log(1 / 0.9)
    assert stats.sessions_needed(0.04, 0.1, alpha=0.05, power=0.9) == math.ceil(
        z**2 * 0.04 / effect**2
    )
    # Never fewer than two sessions per arm.
    assert stats.sessions_needed(1e-6, 0.5, alpha=0.05) == 2
    assert stats.sessions_needed(0.0045, 0.1, alpha=0.05) == 3


def test_bootstrap_resamples_rows_whole_and_drops_non_finite() -> None:
    samples = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]])

    def ratio(rows: np.ndarray) -> float:
        with np.errstate(divide="ignore"):
            return float(rows[:, 0].sum() / rows[:, 1].sum())

    out = stats.bootstrap_log_ratio(ratio, samples, resamples=200, seed=3)
    rng = np.random.default_rng(3)
    expected = []
    for _ in range(200):
        value = ratio(samples[rng.integers(0, 3, 3)])
        if math.isfinite(value):
            expected.append(value)
    assert 0 < len(expected) < 200  # some resamples are all third rows: 5 / 0
    assert out.tolist() == expected


@pytest.mark.parametrize("null", [stats.signed_rank_null(400), stats.rank_sum_null(45, 70)])
def test_normal_critical_value_at_and_just_above_attainable_levels(null: stats.RankNull) -> None:
    """At alpha = P(T <= t) exactly the critical value is t - 1, just above it t: where the
    z start lands on t or next to it, the loops after it step up or down."""
    mid = null.top // 2
    for t in range(mid - 3 * int(null.sd), mid + 1, max(1, int(null.sd) // 20)):
        at = null.cdf(t)
        assert null.critical(at) == t - 1
        assert null.critical(float(np.nextafter(at, 1.0))) == t
    assert null.critical(null.cdf(0)) == -1


def test_one_session_per_arm_is_enough_for_a_lax_alpha() -> None:
    assert stats.min_per_arm(0.6) == 1
    assert stats.min_pairs(0.6) == 1
