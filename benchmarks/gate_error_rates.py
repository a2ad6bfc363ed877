"""How often the gate is wrong, next to a naive "median dropped more than 10%" rule.

Simulates seeded synthetic runs: each session's log throughput is normal with sigma_log 0.19
(the spread of the article's standard arm), n sessions per arm. Paired runs share a per-slot
effect between the arms (within-pair correlation rho, as interleaved A/B runs of the same tasks
do); unpaired runs draw the arms independently. Every replication goes through the package's
own gate (``compare.compare_arms`` on session records), with its defaults: alpha 0.05
one-sided, tolerance 5%, margin 10%.

Prints, per design and true ratio: the naive rule's FAIL rate, and the gate's FAIL, PASS,
IMPROVED and INCONCLUSIVE rates. With no change a FAIL is a false alarm; with a true 15% or 20%
regression the FAIL rate is the power.

    python benchmarks/gate_error_rates.py [--reps 2000] [--n 20] [--sigma 0.19] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np

from pytest_agentspeed.compare import GateSettings, compare_arms
from pytest_agentspeed.records import SessionRecord, TurnRecord, Usage

TRUE_RATIOS = (1.00, 0.85, 0.80)
#: Within-pair correlation of paired sessions (shared task and endpoint state).
RHO = 0.5
WALL_S = 100.0


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


def sessions(arm: str, throughputs: np.ndarray, *, slots: str = "t") -> list[SessionRecord]:
    """Session records with the given throughputs; slots named ``<slots><i>/r0``."""
    out = []
    for i, value in enumerate(throughputs):
        tokens = round(float(value) * WALL_S)
        out.append(
            SessionRecord(
                id=f"s{i}[{arm}]",
                task=f"{slots}{i}",
                endpoint=arm,
                repeat=0,
                slot=f"{slots}{i}/r0",
                outcome="passed",
                error=None,
                wall_s=WALL_S,
                setup_s=0.0,
                check_s=0.0,
                check_exit_code=0,
                usage=Usage(output_tokens=tokens),
                phases_s={},
                turns=(TURN,),
            )
        )
    return out


def simulate(
    *, paired: bool, ratio: float, n: int, sigma: float, reps: int, seed: int
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    gate = GateSettings()
    counts = dict.fromkeys(("naive", "FAIL", "PASS", "IMPROVED", "INCONCLUSIVE"), 0)
    for _ in range(reps):
        if paired:
            shared = rng.normal(0, sigma * math.sqrt(RHO), n)
            own = sigma * math.sqrt(1 - RHO)
            a = 50 * np.exp(shared + rng.normal(0, own, n))
            b = 50 * ratio * np.exp(shared + rng.normal(0, own, n))
            base, cand = sessions("A", a), sessions("B", b)
        else:
            a = 50 * np.exp(rng.normal(0, sigma, n))
            b = 50 * ratio * np.exp(rng.normal(0, sigma, n))
            # Different slots: nothing to pair, as with a baseline from another task set.
            base, cand = sessions("A", a), sessions("B", b, slots="u")
        counts["naive"] += statistics.median(b) / statistics.median(a) < 0.90
        verdict = compare_arms(
            base, cand, baseline="A", candidate="B", against="sim", settings=gate
        ).verdict
        counts[verdict] += 1
    return {k: v / reps for k, v in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--n", type=int, default=20, help="sessions per arm")
    parser.add_argument("--sigma", type=float, default=0.19, help="sigma of log throughput")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print the rates as JSON")
    args = parser.parse_args()

    started = time.perf_counter()
    rows = []
    for design_index, paired in enumerate((True, False)):
        for ratio_index, ratio in enumerate(TRUE_RATIOS):
            rates = simulate(
                paired=paired,
                ratio=ratio,
                n=args.n,
                sigma=args.sigma,
                reps=args.reps,
                seed=args.seed + 10 * design_index + ratio_index,
            )
            rows.append({"design": "paired" if paired else "unpaired", "ratio": ratio, **rates})
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"sigma_log {args.sigma}, n = {args.n} per arm, {args.reps} runs per row, "
        f"paired rho {RHO}, seed {args.seed}"
    )
    print(
        f"{'design':<9} {'true ratio':>10}   {'naive FAIL':>10}   {'gate FAIL':>9} "
        f"{'PASS':>6} {'IMPROVED':>8} {'INCONCL.':>8}"
    )
    for r in rows:
        print(
            f"{r['design']:<9} {r['ratio']:>10.2f}   {r['naive']:>10.1%}   {r['FAIL']:>9.1%} "
            f"{r['PASS']:>6.1%} {r['IMPROVED']:>8.1%} {r['INCONCLUSIVE']:>8.1%}"
        )
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
