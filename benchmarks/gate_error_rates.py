"""How often the gate is wrong, next to a naive "median dropped more than 10%" rule.

Simulates seeded synthetic runs: each session's log throughput is normal with sigma_log 0.19
(the spread of the article's standard arm), n sessions per arm, and its task's size (output
tokens) is lognormal with sigma_log 0.3; the session's wall time is size over throughput.
Paired runs run the same tasks in both arms and share a per-slot throughput effect between
them (within-pair correlation rho, as interleaved A/B runs of the same tasks do); unpaired runs
draw the arms independently, tasks included. Every replication goes through the package's own
gate (``compare.compare_arms`` on session records, all sessions passing), with its defaults:
alpha 0.05 one-sided, tolerance 5%, margin 10%, once per gate metric: throughput, session
speed (baseline over candidate wall time) and tasks per window. The true ratio applies to
throughput, so it is also the true ratio of the other two metrics.

Prints, per metric, design and true ratio: the naive rule's FAIL rate (on the same metric),
and the gate's FAIL, PASS, IMPROVED and INCONCLUSIVE rates, each with its Monte Carlo standard
error sqrt(p (1 - p) / runs). With no change, or a true drop inside the tolerance (0.97), a
FAIL is a false alarm; with a true 15% or 20% regression the FAIL rate is the power.

    python benchmarks/gate_error_rates.py [--reps 2000] [--n 20] [--sigma 0.19]
        [--task-sigma 0.3] [--metrics throughput_tok_s,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import numpy as np

from pytest_agentspeed.analysis.compare import compare_arms
from pytest_agentspeed.analysis.gate import GATE_METRICS, GateSettings
from pytest_agentspeed.records import SessionRecord, TurnRecord, Usage

#: 0.97 is a true drop inside the 5% tolerance: a FAIL there is a false alarm.
TRUE_RATIOS = (1.00, 0.97, 0.85, 0.80)
OUTCOMES = ("naive", "FAIL", "PASS", "IMPROVED", "INCONCLUSIVE")
#: Within-pair correlation of paired sessions (shared task and endpoint state).
RHO = 0.5
WALL_S = 100.0
#: Output tokens of a session of median size.
TOKENS = 5_000


#: The gate reads a session's slot, outcome, output tokens and wall time; one stand-in turn
#: (shared, records are frozen) marks that the session ran.
TURN = TurnRecord(
    index=0,
    wall_s=WALL_S,
    marks_s={},
    phases_s={},
    usage=Usage(),
    usage_raw={},
    stop_reason="end_turn",
    streamed=True,
    attempts=(),
    tool_calls=(),
)


def sessions(
    arm: str, throughputs: np.ndarray, sizes: np.ndarray, *, slots: str = "t"
) -> list[SessionRecord]:
    """Session records with the given throughputs and sizes (output tokens); slots named
    ``<slots><i>/r0``."""
    out = []
    for i, (value, size) in enumerate(zip(throughputs, sizes, strict=True)):
        tokens = max(1, round(float(size)))
        out.append(
            SessionRecord(
                id=f"s{i}[{arm}]",
                task=f"{slots}{i}",
                endpoint=arm,
                repeat=0,
                slot=f"{slots}{i}/r0",
                outcome="passed",
                error=None,
                wall_s=tokens / float(value),
                setup_s=0.0,
                check_s=0.0,
                check_exit_code=0,
                usage=Usage(output_tokens=tokens),
                phases_s={},
                turns=(TURN,),
            )
        )
    return out


def naive_ratio(base: list[SessionRecord], cand: list[SessionRecord], metric: str) -> float:
    """The candidate's median over the baseline's (higher is better); for tasks per window,
    the ratio of passes over mean session time."""
    if metric == "tasks_per_window":
        return statistics.fmean(s.wall_s for s in base) / statistics.fmean(s.wall_s for s in cand)

    def median(arm: list[SessionRecord]) -> float:
        # Higher is better, as the gate ranks them: throughput, or speed (1 / wall time).
        if metric == "throughput_tok_s":
            return statistics.median(s.usage.output_tokens / s.wall_s for s in arm)
        return statistics.median(1 / s.wall_s for s in arm)

    return median(cand) / median(base)


def simulate(
    *,
    metric: str,
    paired: bool,
    ratio: float,
    n: int,
    sigma: float,
    task_sigma: float,
    reps: int,
    seed: int,
) -> dict[str, float]:
    """Each outcome's rate over ``reps`` replications."""
    rng = np.random.default_rng(seed)
    gate = GateSettings(metric=metric)
    counts = dict.fromkeys(OUTCOMES, 0)
    for _ in range(reps):
        if paired:
            shared = rng.normal(0, sigma * math.sqrt(RHO), n)
            own = sigma * math.sqrt(1 - RHO)
            a = 50 * np.exp(shared + rng.normal(0, own, n))
            b = 50 * ratio * np.exp(shared + rng.normal(0, own, n))
            size = TOKENS * np.exp(rng.normal(0, task_sigma, n))
            base, cand = sessions("A", a, size), sessions("B", b, size)
        else:
            a = 50 * np.exp(rng.normal(0, sigma, n))
            b = 50 * ratio * np.exp(rng.normal(0, sigma, n))
            size_a = TOKENS * np.exp(rng.normal(0, task_sigma, n))
            size_b = TOKENS * np.exp(rng.normal(0, task_sigma, n))
            # Different slots: nothing to pair, as with a baseline from another task set.
            base, cand = sessions("A", a, size_a), sessions("B", b, size_b, slots="u")
        counts["naive"] += naive_ratio(base, cand, metric) < 0.90
        verdict = compare_arms(
            base, cand, baseline="A", candidate="B", against="sim", settings=gate
        ).verdict
        counts[verdict] += 1
    return {k: v / reps for k, v in counts.items()}


def standard_errors(rates: dict[str, float], reps: int) -> dict[str, float]:
    """The Monte Carlo standard error of each rate: sqrt(p (1 - p) / reps)."""
    return {k: math.sqrt(p * (1 - p) / reps) for k, p in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--n", type=int, default=20, help="sessions per arm")
    parser.add_argument("--sigma", type=float, default=0.19, help="sigma of log throughput")
    parser.add_argument(
        "--task-sigma", type=float, default=0.3, help="sigma of log task size (output tokens)"
    )
    parser.add_argument("--metrics", default=",".join(GATE_METRICS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print the rates as JSON")
    args = parser.parse_args()
    metrics = args.metrics.split(",")
    for metric in metrics:
        if metric not in GATE_METRICS:
            parser.error(f"unknown metric {metric!r}; expected one of {', '.join(GATE_METRICS)}")

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        for design_index, paired in enumerate((True, False)):
            for ratio_index, ratio in enumerate(TRUE_RATIOS):
                rates = simulate(
                    metric=metric,
                    paired=paired,
                    ratio=ratio,
                    n=args.n,
                    sigma=args.sigma,
                    task_sigma=args.task_sigma,
                    reps=args.reps,
                    # The same draws for every metric: the rows differ by the gate alone.
                    seed=args.seed + 10 * design_index + ratio_index,
                )
                rows.append(
                    {
                        "metric": metric,
                        "design": "paired" if paired else "unpaired",
                        "ratio": ratio,
                        **rates,
                        "se": standard_errors(rates, args.reps),
                    }
                )
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"sigma_log {args.sigma}, task sigma_log {args.task_sigma}, n = {args.n} per arm, "
        f"{args.reps} runs per row, paired rho {RHO}, seed {args.seed}; "
        "rate +/- Monte Carlo standard error, in %"
    )
    print(
        f"{'metric':<17} {'design':<9} {'ratio':>5}   {'naive FAIL':>10}   {'gate FAIL':>10} "
        f"{'PASS':>10} {'IMPROVED':>10} {'INCONCL.':>10}"
    )
    for r in rows:

        def cell(key: str, r: dict[str, Any] = r) -> str:
            rate, se = r[key], r["se"][key]
            return f"{rate * 100:.1f}+/-{se * 100:.1f}"

        print(
            f"{r['metric']:<17} {r['design']:<9} {r['ratio']:>5.2f}   {cell('naive'):>10}   "
            f"{cell('FAIL'):>10} {cell('PASS'):>10} {cell('IMPROVED'):>10} "
            f"{cell('INCONCLUSIVE'):>10}"
        )
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
