"""Rank statistics for the gate, on the log scale. numpy and scipy are imported here only.

The method is ``research/statistics.md`` sections 5 and 7:

* Hodges-Lehmann shift with its distribution-free confidence interval: on pair differences
  (Walsh averages) when arms are paired, on all pairwise differences when they are not. The
  one-sided p-values (Wilcoxon signed-rank, Mann-Whitney U) and the CI come from one count and
  one null distribution (exact at small sizes, normal with continuity correction beyond), so
  the CI is the exact inversion of the test at the same level: its lower bound is above 0
  exactly when p(greater) < alpha, its upper bound below 0 exactly when p(less) < alpha.
  Ties and zeros count against the alternative tested (conservative).
* Brunner-Munzel and Welch's t on logs as cross-checks (scipy), and Fisher's exact test for
  pass rates.
* Minimum detectable effect and sessions needed, from the z approximation
  ``n = (z_{1-alpha} + z_{power})^2 * V / ln(1 / (1 - effect))^2``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

Alternative = Literal["less", "greater", "two-sided"]
#: Power the gate is sized for.
POWER = 0.80


@dataclass(frozen=True, slots=True)
class Shift:
    """A Hodges-Lehmann location shift on the log scale, with its confidence interval."""

    estimate: float
    low: float
    high: float

    def ratio(self) -> tuple[float, float, float]:
        """The shift as a ratio (estimate, low, high), ``exp`` of each."""
        return math.exp(self.estimate), math.exp(self.low), math.exp(self.high)


def _z(p: float) -> float:
    return float(sps.norm.ppf(p))


#: Up to these sizes the rank statistics' null distributions are computed exactly; beyond, the
#: normal approximation with continuity correction is used (the same one for p and CI).
EXACT_MAX_PAIRS = 300
EXACT_MAX_CELLS = 2500  # m * n, unpaired


@dataclass(frozen=True, slots=True)
class RankNull:
    """The null distribution of a rank statistic with values ``0..top``, symmetric about
    ``top / 2``: the signed-rank statistic (``top = n(n+1)/2``) or Mann-Whitney's U
    (``top = m*n``). Exact (a CDF table) at small sizes, else normal with continuity correction.
    """

    top: int
    cdf_table: np.ndarray | None
    sd: float

    @property
    def exact(self) -> bool:
        return self.cdf_table is not None

    def cdf(self, t: int) -> float:
        """``P(T <= t)`` under the null."""
        if t < 0:
            return 0.0
        if t >= self.top:
            return 1.0
        if self.cdf_table is not None:
            return float(self.cdf_table[t])
        return float(sps.norm.cdf((t + 0.5 - self.top / 2) / self.sd))

    def critical(self, alpha: float) -> int:
        """The largest ``t`` with ``P(T <= t) < alpha``; -1 when even ``t = 0`` is not."""
        if self.cdf_table is not None:
            return int(np.searchsorted(self.cdf_table, alpha, side="left")) - 1
        t = math.floor(self.top / 2 - 0.5 + self.sd * _z(alpha))
        while t + 1 < self.top and self.cdf(t + 1) < alpha:
            t += 1
        while t >= 0 and self.cdf(t) >= alpha:
            t -= 1
        return t

    def size(self, alpha: float) -> float:
        """The test's real one-sided level at ``alpha``: the largest attainable p below it."""
        c = self.critical(alpha)
        return self.cdf(c) if c >= 0 else 0.0


@functools.lru_cache(maxsize=512)
def signed_rank_null(n: int) -> RankNull:
    """Null distribution of Wilcoxon's signed-rank statistic for ``n`` pairs (no ties)."""
    top = n * (n + 1) // 2
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    if n > EXACT_MAX_PAIRS:
        return RankNull(top, None, sd)
    # Each rank i is in the positive sum with probability 1/2: convolve, halving as we go.
    pmf = np.ones(1)
    for i in range(1, n + 1):
        nxt = np.zeros(len(pmf) + i)
        nxt[: len(pmf)] += pmf / 2
        nxt[i:] += pmf / 2
        pmf = nxt
    return RankNull(top, np.cumsum(pmf), sd)


@functools.lru_cache(maxsize=512)
def rank_sum_null(m: int, n: int) -> RankNull:
    """Null distribution of Mann-Whitney's U for arms of ``m`` and ``n`` (no ties)."""
    m, n = min(m, n), max(m, n)  # U's distribution is the same either way round
    top = m * n
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    if m * n > EXACT_MAX_CELLS:
        return RankNull(top, None, sd)
    # counts[i][j](u) = counts[i-1][j](u - j) + counts[i][j-1](u): the largest of i + j values
    # is either one of the i (then it beats all j) or one of the j.
    row = [np.ones(1) for _ in range(n + 1)]
    for i in range(1, m + 1):
        new = [np.ones(1)]
        for j in range(1, n + 1):
            cur = np.zeros(i * j + 1)
            up = row[j]
            cur[j : j + len(up)] += up
            cur[: len(new[j - 1])] += new[j - 1]
            new.append(cur)
        row = new
    counts = row[n]
    return RankNull(top, np.cumsum(counts) / counts.sum(), sd)


def smallest_p_paired(n: int) -> float:
    """The smallest one-sided p the signed-rank test can give with ``n`` pairs: ``1 / 2^n``."""
    return signed_rank_null(n).cdf(0)


def smallest_p_unpaired(m: int, n: int) -> float:
    """The smallest one-sided p Mann-Whitney's U can give: ``1 / C(m + n, m)``."""
    return rank_sum_null(m, n).cdf(0)


def min_pairs(alpha: float) -> int:
    """The fewest pairs whose signed-rank test can reach ``p < alpha``."""
    n = 1
    while smallest_p_paired(n) >= alpha:
        n += 1
    return n


def min_per_arm(alpha: float) -> int:
    """The fewest sessions per arm (equal arms) whose U test can reach ``p < alpha``."""
    n = 1
    while smallest_p_unpaired(n, n) >= alpha:
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class RankTest:
    """A Hodges-Lehmann shift on the log scale, its CI, and the one-sided p-values of the rank
    test the CI inverts: ``low > 0`` exactly when ``p_greater < alpha``, ``high < 0`` exactly
    when ``p_less < alpha``. A bound is infinite when no p can go below ``alpha``."""

    shift: Shift
    p_less: float
    p_greater: float
    null: RankNull
    alpha: float

    @property
    def decidable(self) -> bool:
        """Whether any data of this size could reach ``p < alpha``."""
        return self.null.critical(self.alpha) >= 0


def _invert(values: np.ndarray, null: RankNull, alpha: float) -> RankTest:
    """Estimate, CI and p-values from the sorted Walsh averages or pairwise differences.

    The statistic is the count of ``values`` above the tested shift (Tukey's form of the
    signed-rank and U statistics). A value equal to the shift (a zero, a tie) counts against
    the alternative tested: the p-values are then conservative (never smaller than with any
    way of breaking the tie) and stay the exact inversion of the CI.
    """
    top = len(values)
    c = null.critical(alpha)
    low = float(values[c]) if c >= 0 else -math.inf
    high = float(values[top - 1 - c]) if c >= 0 else math.inf
    at_most = int(np.searchsorted(values, 0.0, side="right"))  # values <= 0
    at_least = top - int(np.searchsorted(values, 0.0, side="left"))  # values >= 0
    return RankTest(
        shift=Shift(float(np.median(values)), low, high),
        p_less=null.cdf(at_least),
        p_greater=null.cdf(at_most),
        null=null,
        alpha=alpha,
    )


def _alpha(conf: float) -> float:
    # 1 - 2 * 0.05 is 0.9 and (1 - 0.9) / 2 is 0.04999999999999999: round the float noise off.
    return round((1 - conf) / 2, 12)


def signed_rank(d: Sequence[float], alpha: float) -> RankTest:
    """One-sample Hodges-Lehmann shift of the pair differences ``d`` with the Wilcoxon
    signed-rank test and the CI that inverts it (one-sided ``1 - alpha`` bounds)."""
    x = np.asarray(d, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no pairs")
    i, j = np.triu_indices(n)
    return _invert(np.sort((x[i] + x[j]) / 2), signed_rank_null(n), alpha)


def rank_sum(a: Sequence[float], b: Sequence[float], alpha: float) -> RankTest:
    """Two-sample Hodges-Lehmann shift ``b - a`` with the Mann-Whitney U test and the CI that
    inverts it (one-sided ``1 - alpha`` bounds)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) == 0 or len(y) == 0:
        raise ValueError("an arm has no sessions")
    return _invert(np.sort(np.subtract.outer(y, x).ravel()), rank_sum_null(len(x), len(y)), alpha)


def hl_paired(d: Sequence[float], conf: float) -> Shift:
    """One-sample Hodges-Lehmann estimate of the center of ``d`` and its CI.

    :param d: paired differences (candidate minus baseline, log scale).
    :param conf: two-sided confidence level, e.g. 0.90.
    """
    return signed_rank(d, _alpha(conf)).shift


def hl_unpaired(a: Sequence[float], b: Sequence[float], conf: float) -> Shift:
    """Two-sample Hodges-Lehmann estimate of the shift ``b - a`` and its CI.

    :param a: baseline values (log scale).
    :param b: candidate values (log scale).
    :param conf: two-sided confidence level.
    """
    return rank_sum(a, b, _alpha(conf)).shift


def wilcoxon_p(d: Sequence[float], alternative: Literal["less", "greater"]) -> float:
    """One-sided Wilcoxon signed-rank p-value of the differences ``d`` (see :func:`signed_rank`;
    without zeros and ties, scipy's exact value)."""
    if len(d) == 0:
        return 1.0
    test = signed_rank(d, 0.05)
    return test.p_less if alternative == "less" else test.p_greater


def mannwhitney_p(
    a: Sequence[float], b: Sequence[float], alternative: Literal["less", "greater"]
) -> float:
    """One-sided Mann-Whitney U p-value for ``b`` against ``a`` (``less``: ``b`` tends to be
    smaller); see :func:`rank_sum`."""
    test = rank_sum(a, b, 0.05)
    return test.p_less if alternative == "less" else test.p_greater


def brunner_munzel_p(a: Sequence[float], b: Sequence[float], alternative: Alternative) -> float:
    """Brunner-Munzel p-value for ``b`` against ``a``; no equal-shape assumption.

    ``nan`` when it is undefined: fewer than two values in an arm, or an arm whose placements
    do not vary (e.g. the arms do not overlap at all), where the statistic's variance estimate
    is zero and scipy's t approximation has no degrees of freedom. Otherwise never below
    ``1 / C(m + n, m)``, the smallest p any rank statistic of these arm sizes can honestly
    give: near complete separation the variance estimate collapses and scipy's t
    approximation returns values like 3e-15 at 9 against 9.
    """
    if len(a) < 2 or len(b) < 2:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            p = float(sps.brunnermunzel(b, a, alternative=alternative).pvalue)
        except (ValueError, ZeroDivisionError):
            return math.nan
    if not math.isfinite(p):
        return math.nan
    return max(p, 1 / math.comb(len(a) + len(b), len(a)))


@dataclass(frozen=True, slots=True)
class Welch:
    """Ratio of geometric means with Welch's t interval and one-sided p (candidate smaller)."""

    ratio: float
    low: float
    high: float
    p_less: float


def welch_log(a: Sequence[float], b: Sequence[float], conf: float) -> Welch | None:
    """Welch's t on logs: ``None`` when an arm has fewer than two values or no spread."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return None
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    if se == 0:
        return None
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    delta = float(y.mean() - x.mean())
    t = float(sps.t.ppf(1 - (1 - conf) / 2, df))
    with warnings.catch_warnings():
        # scipy warns about precision when an arm's values are (nearly) all equal, which a
        # deterministic simulator produces; the result is still the right one.
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(sps.ttest_ind(y, x, equal_var=False, alternative="less").pvalue)
    return Welch(math.exp(delta), math.exp(delta - t * se), math.exp(delta + t * se), p)


def fisher_less_p(passed_b: int, n_b: int, passed_a: int, n_a: int) -> float:
    """Fisher's exact test, one-sided: the candidate's pass rate is lower than the baseline's."""
    table = np.array([[passed_b, n_b - passed_b], [passed_a, n_a - passed_a]])
    return float(sps.fisher_exact(table, alternative="less").pvalue)


def z_sum(alpha: float, power: float = POWER) -> float:
    """``z_{1-alpha} + z_{power}``: one-sided test at ``alpha`` with the given power."""
    return _z(1 - alpha) + _z(power)


def mde(se: float, *, alpha: float, power: float = POWER) -> float:
    """Smallest regression (a fraction) a run with this standard error detects at ``power``.

    :param se: standard error of the log-ratio estimate: ``sigma_d / sqrt(n)`` for pairs,
        ``sqrt(sigma_a^2 / m + sigma_b^2 / n)`` for independent arms.
    """
    return 1 - math.exp(-z_sum(alpha, power) * se)


def sessions_needed(
    variance: float, regression: float, *, alpha: float, power: float = POWER
) -> int:
    """Sessions per arm needed to detect a true ``regression`` (fraction) at ``power``.

    :param variance: of one pair's log difference (paired), or ``sigma_a^2 + sigma_b^2``
        (independent arms); ``statistics.md`` section 7.
    """
    effect = math.log(1 / (1 - regression))
    return max(2, math.ceil(z_sum(alpha, power) ** 2 * variance / effect**2))


def bootstrap_log_ratio(
    statistic: Callable[[np.ndarray], float],
    samples: np.ndarray,
    *,
    resamples: int,
    seed: int,
) -> np.ndarray:
    """Bootstrap replicates of ``statistic`` over rows of ``samples`` (rows resampled whole).

    Rows are sessions (or slot pairs); replicates that are not finite are dropped.
    """
    rng = np.random.default_rng(seed)
    n = len(samples)
    out = np.empty(resamples)
    for r in range(resamples):
        out[r] = statistic(samples[rng.integers(0, n, n)])
    return out[np.isfinite(out)]
