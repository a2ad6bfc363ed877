"""Rank statistics for the gate, on the log scale. numpy and scipy are imported here only.

The method is ``research/statistics.md`` sections 5 and 7:

* Hodges-Lehmann shift with its distribution-free confidence interval: on pair differences
  (Walsh averages, inverting the Wilcoxon signed-rank statistic) when arms are paired, on all
  pairwise differences (inverting Mann-Whitney U) when they are not. The CI's order statistic
  ``k`` uses the normal approximation of the rank statistic, rounded down (conservative), as
  the reference implementation does.
* The matching one-sided tests, computed by ``scipy.stats`` (Wilcoxon signed-rank,
  Mann-Whitney U), plus Brunner-Munzel and Welch's t on logs as cross-checks, and Fisher's
  exact test for pass rates.
* Minimum detectable effect and sessions needed, from the z approximation
  ``n = (z_{1-alpha} + z_{power})^2 * V / ln(1 / (1 - effect))^2``.
"""

from __future__ import annotations

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


def hl_paired(d: Sequence[float], conf: float) -> Shift:
    """One-sample Hodges-Lehmann estimate of the center of ``d`` and its CI.

    :param d: paired differences (candidate minus baseline, log scale).
    :param conf: two-sided confidence level, e.g. 0.90.
    """
    x = np.asarray(d, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no pairs")
    i, j = np.triu_indices(n)
    walsh = np.sort((x[i] + x[j]) / 2)
    m = len(walsh)
    z = _z(1 - (1 - conf) / 2)
    k = max(math.floor(m / 2 - z * math.sqrt(n * (n + 1) * (2 * n + 1) / 24)), 0)
    return Shift(float(np.median(walsh)), float(walsh[k]), float(walsh[m - k - 1]))


def hl_unpaired(a: Sequence[float], b: Sequence[float], conf: float) -> Shift:
    """Two-sample Hodges-Lehmann estimate of the shift ``b - a`` and its CI.

    :param a: baseline values (log scale).
    :param b: candidate values (log scale).
    :param conf: two-sided confidence level.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("an arm has no sessions")
    diffs = np.sort(np.subtract.outer(y, x).ravel())
    total = m * n
    z = _z(1 - (1 - conf) / 2)
    k = max(math.floor(total / 2 - z * math.sqrt(m * n * (m + n + 1) / 12)), 0)
    return Shift(float(np.median(diffs)), float(diffs[k]), float(diffs[total - k - 1]))


def wilcoxon_p(d: Sequence[float], alternative: Alternative) -> float:
    """Wilcoxon signed-rank p-value of the differences ``d`` (``scipy.stats.wilcoxon``)."""
    x = np.asarray(d, dtype=float)
    if len(x) == 0 or not np.any(x != 0):
        return 1.0  # no evidence either way (scipy returns nan here)
    return float(sps.wilcoxon(x, alternative=alternative).pvalue)


def mannwhitney_p(a: Sequence[float], b: Sequence[float], alternative: Alternative) -> float:
    """Mann-Whitney U p-value for ``b`` against ``a`` (``less``: ``b`` tends to be smaller)."""
    return float(sps.mannwhitneyu(b, a, alternative=alternative).pvalue)


def brunner_munzel_p(a: Sequence[float], b: Sequence[float], alternative: Alternative) -> float:
    """Brunner-Munzel p-value for ``b`` against ``a``; no equal-shape assumption.

    ``nan`` when it is undefined (fewer than two values in an arm, or no variation at all).
    """
    if len(a) < 2 or len(b) < 2:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            p = sps.brunnermunzel(b, a, alternative=alternative).pvalue
        except (ValueError, ZeroDivisionError):
            return math.nan
    return float(p)


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
