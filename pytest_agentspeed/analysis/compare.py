"""Comparing a candidate arm with a baseline arm, and the gate's verdict.

Pure functions over session records; no pytest. The statistics are in
:mod:`pytest_agentspeed.analysis.stats`; the method and its defaults are ``research/statistics.md``
sections 5-7, in plain words in ``docs/statistics.md``:

* the primary metric is compared on the log scale, paired by slot when the arms share slots
  (Hodges-Lehmann on pair differences + Wilcoxon signed-rank), else as independent arms
  (Hodges-Lehmann + Mann-Whitney U); Brunner-Munzel and Welch's t on logs are reported as
  cross-checks and never decide;
* **FAIL** when the candidate is significantly slower (one-sided p < alpha) by more than the
  tolerance, or solves significantly fewer tasks (Fisher's exact test) by more than the margin;
  **IMPROVED** when significantly faster by more than the tolerance; **PASS** when the CI's
  lower bound shows any regression is smaller than the margin, and the run could have seen one
  that size; otherwise **INCONCLUSIVE**, with what would be needed to decide (or, below the
  fewest sessions whose exact test can reach alpha at all, exactly that);
* when the measuring clock ran late in too many sessions (:mod:`.clock`), the verdict
  stands and its line says the measurement was compromised, and how;
* a baseline from another run recorded under conditions that make the comparison meaningless
  (:func:`~pytest_agentspeed.analysis.fingerprint.fingerprint_refusals`) gets
  no verdict: ``NOT COMPARED``, and the reasons.

Ratios are "higher is better" for every metric: throughput, session *speed* (baseline time
over candidate time) and tasks per window. The result is a
:class:`~pytest_agentspeed.records.Comparison`, which the run file holds; its report line is
written here, once, when the comparison is made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pytest_agentspeed.analysis import stats
from pytest_agentspeed.analysis.clock import with_compromise
from pytest_agentspeed.analysis.fingerprint import (
    fingerprint,
    fingerprint_differences,
    fingerprint_refusals,
    not_compared,
)
from pytest_agentspeed.analysis.gate import GateSettings, estimator
from pytest_agentspeed.analysis.pvalues import p_equals
from pytest_agentspeed.analysis.turn_pairs import turn_pairs
from pytest_agentspeed.records import (
    Comparison,
    RateCheck,
    RunRecord,
    SessionRecord,
    Verdict,
    direction,
    finite_or_none,
    p_in_direction,
)

#: Exit status of a pytest run and of ``agentspeed compare`` when a baseline was refused and
#: no comparison FAILed; pytest itself uses 0-5 (docs/errors.md).
NOT_COMPARED_EXIT = 6
#: How the report line names each gate metric's ratio.
LABELS = {
    "throughput_tok_s": "throughput ratio",
    "session_wall_s": "session speed ratio",
    "tasks_per_window": "tasks per window ratio",
}
#: Bootstrap resamples for tasks per window (a ratio of means has no rank test).
BOOTSTRAP_RESAMPLES = 4000


def report_line(
    *,
    metric: str,
    ratio: float | None,
    ci: tuple[float, float] | None,
    ci_level: float,
    p: float | None,
    p_improved: float | None,
    n: tuple[int, int],
    paired: bool,
    mde: float | None,
    verdict: str,
    design: str | None = None,
) -> str:
    """A comparison's report line, always the same shape (DESIGN section 8, replays' design)."""
    label = LABELS.get(metric, f"{metric} ratio")
    if ratio is None:
        return f"{label} -, n={n[0]}/{n[1]} -> {verdict}"
    design = design or ("paired" if paired else "unpaired")
    shown_mde = "-" if mde is None else f"{mde * 100:.1f}%"
    # No CI when the run is too small for any p to reach alpha: its bounds are infinite.
    shown_ci = "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}"
    return (
        f"{label} {ratio:.2f} [{ci_level * 100:.0f}% CI {shown_ci}], "
        f"{p_equals(p_in_direction(ratio, p, p_improved))}, "
        f"n={n[0]}/{n[1]} {design}, MDE {shown_mde} -> {verdict}"
    )


def compare_arms(
    base: Sequence[SessionRecord],
    cand: Sequence[SessionRecord],
    *,
    baseline: str,
    candidate: str,
    against: str,
    settings: GateSettings,
    concurrency: tuple[int, int] = (1, 1),
    warnings: Sequence[str] = (),
) -> Comparison:
    """Compare two arms' sessions and decide.

    :param concurrency: sessions that ran in parallel in each arm (for tasks per window).
    :param warnings: carried into the result (e.g. fingerprint differences).
    """
    notes = list(warnings)
    pass_rate = _pass_rate(base, cand, settings)
    error_rate = _error_rate(base, cand, settings)
    if settings.metric == "tasks_per_window":
        core = _goodput(base, cand, settings, concurrency)
    else:
        core = _ranked(base, cand, settings, notes)
    reasons: list[str] = []
    verdict: Verdict = "INCONCLUSIVE"
    ratio, ci, p, p_up = core.ratio, core.ci, core.p, core.p_improved
    if ratio is None or ci is None or p is None or p_up is None:
        reasons.append(core.why_not or "too few sessions to compare")
    elif p < settings.alpha and ratio < 1 - settings.tolerance:
        verdict = "FAIL"
        reasons.append(
            f"{candidate} is {(1 - ratio) * 100:.0f}% slower than {baseline} "
            f"(CI {(1 - ci[1]) * 100:.0f}-{(1 - ci[0]) * 100:.0f}%), beyond the "
            f"{settings.tolerance * 100:g}% tolerance"
        )
    elif p_up < settings.alpha and ratio > 1 + settings.tolerance:
        verdict = "IMPROVED"
        reasons.append(
            f"{candidate} is {(ratio - 1) * 100:.0f}% faster than {baseline} "
            f"(CI {(ci[0] - 1) * 100:+.0f}% to {(ci[1] - 1) * 100:+.0f}%); consider a new baseline"
        )
    elif ci[0] > 1 - settings.margin and core.mde is not None and core.mde <= settings.margin:
        verdict = "PASS"
        reasons.append(
            f"any regression is smaller than the {settings.margin * 100:g}% margin "
            f"(lower bound {ci[0]:.2f})"
        )
    else:
        detail = (
            f"the run cannot tell a {settings.margin * 100:g}% regression from noise"
            if core.mde is None or core.mde > settings.margin
            else f"the CI ({ci[0]:.2f}-{ci[1]:.2f}) spans both outcomes"
        )
        if core.mde is not None:
            detail += f" (MDE {core.mde * 100:.1f}%)"
        if core.needed is not None:
            detail += f"; about {core.needed} sessions per arm would decide it"
        reasons.append(detail)
    if pass_rate.regressed:
        rate_b, rate_a = pass_rate.rates[1], pass_rate.rates[0]
        verdict = "FAIL"
        reasons.append(
            f"pass rate fell from {(rate_a or 0) * 100:.0f}% to {(rate_b or 0) * 100:.0f}% "
            f"(Fisher {p_equals(pass_rate.p)}), more than the {settings.margin * 100:g} pp margin"
        )
    errors_b, errors_a = error_rate.counts[1], error_rate.counts[0]
    error_words = (
        f"{candidate} ended {errors_b} of {error_rate.sessions[1]} sessions in endpoint errors, "
        f"{baseline} {errors_a} of {error_rate.sessions[0]}"
    )
    if error_rate.regressed:
        verdict = "FAIL"
        reasons.append(
            f"{error_words} (Fisher {p_equals(error_rate.p)}): more errors, beyond the "
            f"{settings.margin * 100:g} pp margin"
        )
    elif error_rate.worse and verdict in ("PASS", "IMPROVED"):
        # Not significant, but a candidate that errors more must not pass on speed alone.
        verdict = "INCONCLUSIVE"
        reasons.append(f"{error_words}: no verdict of PASS while it errors more")
    bm = stats.brunner_munzel_p(core.a, core.b, direction(ratio)) if core.a and core.b else None
    pairs = turn_pairs(base, cand, ci_level=settings.ci_level, paired=core.paired)
    line = report_line(
        metric=settings.metric,
        ratio=ratio,
        ci=ci,
        ci_level=settings.ci_level,
        p=p,
        p_improved=p_up,
        n=core.n,
        paired=core.paired,
        mde=core.mde,
        verdict=verdict,
        design=None if pairs is None else pairs.design,
    )
    line, late = with_compromise(line, [*base, *cand])
    notes += late
    return Comparison(
        metric=settings.metric,
        baseline=baseline,
        candidate=candidate,
        against=against,
        estimator=estimator(settings.metric),
        paired=core.paired,
        n=core.n,
        ratio=ratio,
        ci=ci,
        ci_level=settings.ci_level,
        test=core.test,
        # The record holds what the run file can: an undefined statistic (Brunner-Munzel when
        # the arms do not overlap) is None, in memory as after a round trip.
        p=finite_or_none(p),
        p_improved=finite_or_none(p_up),
        brunner_munzel_p=finite_or_none(bm),
        welch=core.welch,
        mde=finite_or_none(core.mde),
        sessions_needed=core.needed,
        pass_rate=pass_rate,
        error_rate=error_rate,
        tolerance=settings.tolerance,
        margin=settings.margin,
        alpha=settings.alpha,
        verdict=verdict,
        line=line,
        reasons=tuple(reasons),
        warnings=tuple(notes),
        turn_pairs=pairs,
    )


@dataclass(slots=True)
class _Core:
    paired: bool
    n: tuple[int, int]
    test: str
    ratio: float | None = None
    ci: tuple[float, float] | None = None
    p: float | None = None
    p_improved: float | None = None
    mde: float | None = None
    needed: int | None = None
    welch: dict[str, float] | None = None
    #: The log values analysed (for the cross-checks).
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    why_not: str | None = None


def metric_value(session: SessionRecord, metric: str) -> float | None:
    """The per-session value the gate ranks (higher is better), or ``None``."""
    if metric == "throughput_tok_s":
        value = session.throughput_tok_s
    elif metric == "session_wall_s":
        value = 1 / session.wall_s if session.turns and session.wall_s > 0 else None
    else:
        raise ValueError(f"{metric} is not a per-session metric")
    return value if value is not None and value > 0 else None


def _ranked(
    base: Sequence[SessionRecord],
    cand: Sequence[SessionRecord],
    settings: GateSettings,
    notes: list[str],
) -> _Core:
    a_by_slot = _by_slot(base, settings.metric)
    b_by_slot = _by_slot(cand, settings.metric)
    common = [slot for slot in a_by_slot if slot in b_by_slot]
    level = settings.ci_level
    if len(common) >= 2:
        dropped = len(a_by_slot) + len(b_by_slot) - 2 * len(common)
        if dropped:
            notes.append(f"{dropped} session(s) without a partner in the other arm left out")
        a = [math.log(a_by_slot[s]) for s in common]
        b = [math.log(b_by_slot[s]) for s in common]
        d = [y - x for x, y in zip(a, b, strict=True)]
        core = _Core(paired=True, n=(len(d), len(d)), test="wilcoxon_signed_rank", a=a, b=b)
        test = stats.signed_rank(d, settings.alpha)
        variance = _var(d)
        se = math.sqrt(variance / len(d))
        fewest = stats.min_pairs(settings.alpha)
    else:
        a = [math.log(v) for v in a_by_slot.values()]
        b = [math.log(v) for v in b_by_slot.values()]
        core = _Core(paired=False, n=(len(a), len(b)), test="mann_whitney_u", a=a, b=b)
        if len(a) < 2 or len(b) < 2:
            core.why_not = f"too few sessions to compare ({len(a)} and {len(b)})"
            return core
        test = stats.rank_sum(a, b, settings.alpha)
        va, vb = _var(a), _var(b)
        variance, se = va + vb, math.sqrt(va / len(a) + vb / len(b))
        fewest = stats.min_per_arm(settings.alpha)
    core.ratio, low, high = test.shift.ratio()
    core.p, core.p_improved = test.p_less, test.p_greater
    # Never advise fewer sessions than the least that can reach p < alpha at all.
    core.needed = max(
        stats.sessions_needed(variance, settings.margin, alpha=settings.alpha), fewest
    )
    if test.decidable:
        core.ci = (low, high)
        # The exact test's real level (e.g. 1/32 for 5 pairs) sets what it can detect.
        core.mde = stats.mde(se, alpha=test.null.size(settings.alpha))
    else:
        core.why_not = _undecidable(core.paired, core.n, test.null.cdf(0), fewest, settings)
        if core.needed > fewest:
            core.why_not += (
                f"; about {core.needed} per arm would detect a "
                f"{settings.margin * 100:g}% regression"
            )
    welch = stats.welch_log(a, b, level)
    if welch is not None:
        core.welch = {"ratio": welch.ratio, "low": welch.low, "high": welch.high, "p": welch.p_less}
    return core


def _undecidable(
    paired: bool, n: tuple[int, int], smallest_p: float, fewest: int, settings: GateSettings
) -> str:
    """Why a run this small gives no verdict, whatever its data."""
    unit = "pairs" if paired else "sessions"
    size = str(n[0]) if paired else f"{n[0]} and {n[1]}"
    return (
        f"{size} {unit} cannot decide at alpha {settings.alpha:g} (the smallest possible p is "
        f"{smallest_p:.3g}); at least {fewest} {unit} per arm are needed"
    )


def _goodput(
    base: Sequence[SessionRecord],
    cand: Sequence[SessionRecord],
    settings: GateSettings,
    concurrency: tuple[int, int],
) -> _Core:
    """Tasks per window by Little's law; the ratio's CI and p come from a bootstrap."""
    a = [(1.0 if s.passed else 0.0, s.wall_s) for s in base if s.turns and s.wall_s > 0]
    b = [(1.0 if s.passed else 0.0, s.wall_s) for s in cand if s.turns and s.wall_s > 0]
    core = _Core(paired=False, n=(len(a), len(b)), test="bootstrap_ratio_of_means")
    if len(a) < 2 or len(b) < 2:
        core.why_not = f"too few sessions to compare ({len(a)} and {len(b)})"
        return core
    scale = concurrency[1] / concurrency[0]
    fewest = stats.min_per_arm(settings.alpha)
    smallest_p = stats.smallest_p_unpaired(len(a), len(b))
    if smallest_p >= settings.alpha:
        # As for the rank tests: no resampling of so few sessions can tell arms apart at alpha.
        core.why_not = _undecidable(False, core.n, smallest_p, fewest, settings)
        return core

    def goodput(rows: np.ndarray) -> float:
        return float(rows[:, 0].mean() / rows[:, 1].mean())

    base_rows, cand_rows = np.array(a), np.array(b)
    if goodput(base_rows) == 0:
        core.why_not = "the baseline passed no task; tasks per window cannot be compared"
        return core
    ratio = goodput(cand_rows) / goodput(base_rows) * scale
    if ratio == 0:
        core.ratio, core.ci, core.p, core.p_improved = 0.0, (0.0, 0.0), 0.0, 1.0
        return core
    seed = len(a) * 7919 + len(b)
    reps_a = stats.bootstrap_log_ratio(goodput, base_rows, resamples=BOOTSTRAP_RESAMPLES, seed=seed)
    reps_b = stats.bootstrap_log_ratio(
        goodput, cand_rows, resamples=BOOTSTRAP_RESAMPLES, seed=seed + 1
    )
    k = min(len(reps_a), len(reps_b))
    with np.errstate(divide="ignore"):
        logs = np.log(reps_b[:k] * scale) - np.log(reps_a[:k])
    logs = logs[np.isfinite(logs)]
    if len(logs) < 100:
        core.why_not = "too few usable bootstrap resamples"
        return core
    tail = (1 - settings.ci_level) / 2
    low, high = np.quantile(logs, [tail, 1 - tail])
    core.ratio = ratio
    core.ci = (math.exp(low), math.exp(high))
    # (count + 1) / (resamples + 1): a bootstrap cannot show a p below one in its resamples.
    core.p = float((np.sum(logs >= 0) + 1) / (len(logs) + 1))
    core.p_improved = float((np.sum(logs <= 0) + 1) / (len(logs) + 1))
    se = float(np.std(logs, ddof=1))
    core.mde = stats.mde(se, alpha=settings.alpha)
    effect = math.log(1 / (1 - settings.margin))
    n_now = min(len(a), len(b))
    core.needed = max(fewest, math.ceil(n_now * (stats.z_sum(settings.alpha) * se / effect) ** 2))
    return core


def _pass_rate(
    base: Sequence[SessionRecord], cand: Sequence[SessionRecord], settings: GateSettings
) -> RateCheck:
    return _rate_check("passed", [s.passed for s in base], [s.passed for s in cand], settings)


def _error_rate(
    base: Sequence[SessionRecord], cand: Sequence[SessionRecord], settings: GateSettings
) -> RateCheck:
    return _rate_check(
        "errors",
        [s.outcome == "error" for s in base],
        [s.outcome == "error" for s in cand],
        settings,
    )


def _rate_check(
    what: Literal["passed", "errors"],
    base: Sequence[bool],
    cand: Sequence[bool],
    settings: GateSettings,
) -> RateCheck:
    """Fisher's exact test that the candidate is worse; regressed when it is, significantly,
    by more than the margin."""
    counts = (sum(base), sum(cand))
    sessions = (len(base), len(cand))
    if not sessions[0] or not sessions[1]:
        return RateCheck(what=what, counts=counts, sessions=sessions, p=math.nan, regressed=False)
    # More errors is fewer error-free sessions: one test, "fewer good sessions", for both.
    good = counts if what == "passed" else (sessions[0] - counts[0], sessions[1] - counts[1])
    p = stats.fisher_less_p(good[1], sessions[1], good[0], sessions[0])
    drop = good[0] / sessions[0] - good[1] / sessions[1]
    return RateCheck(
        what=what,
        counts=counts,
        sessions=sessions,
        p=p,
        regressed=p < settings.alpha and drop > settings.margin,
    )


def _by_slot(sessions: Sequence[SessionRecord], metric: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in sessions:
        value = metric_value(s, metric)
        if value is not None:
            out[s.slot] = value
    return out


def _var(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def compare_runs(
    base_run: RunRecord,
    cand_run: RunRecord,
    *,
    baseline_arm: str,
    candidate_arm: str,
    against: str,
    settings: GateSettings,
    baseline_label: str = "the baseline",
    candidate_label: str = "this run",
) -> Comparison:
    """Compare an arm of one run with an arm of another (or the same) run.

    A baseline from another run whose fingerprint makes the comparison meaningless is refused:
    the result's verdict is ``NOT COMPARED`` and its ``refused`` says why, in sentences that
    start with ``baseline_label`` and ``candidate_label``.
    """
    refusals: list[str] = []
    differences: list[str] = []
    if base_run is not cand_run:
        base_fp = fingerprint(base_run, baseline_arm)
        cand_fp = fingerprint(cand_run, candidate_arm)
        refusals = fingerprint_refusals(
            base_fp,
            cand_fp,
            metric=settings.metric,
            baseline_label=baseline_label,
            candidate_label=candidate_label,
        )
        differences = fingerprint_differences(base_fp, cand_fp)
    base = [s for s in base_run.sessions if s.endpoint == baseline_arm]
    cand = [s for s in cand_run.sessions if s.endpoint == candidate_arm]
    warnings = [f"baseline fingerprint: {d}" for d in differences]
    if refusals:
        return not_compared(
            base,
            cand,
            baseline=baseline_arm,
            candidate=candidate_arm,
            against=against,
            settings=settings,
            refused=refusals,
            warnings=warnings,
        )
    return compare_arms(
        base,
        cand,
        baseline=baseline_arm,
        candidate=candidate_arm,
        against=against,
        settings=settings,
        concurrency=(
            int(base_run.environment.get("concurrency") or 1),
            int(cand_run.environment.get("concurrency") or 1),
        ),
        warnings=warnings,
    )
