"""Sessions per arm for 80% power: a live closed-loop A/B against a replay A/B.

The candidate is the simulated ``standard`` endpoint made 10% slower (``speed=0.9``: every
model-side delay divided by 0.9); the baseline is ``standard`` itself. Three seeded pytest
runs of the example suite, each in its own process, with the built-in agent:

1. **record**: one live session per task on ``sim:standard?paths=varied`` with
   ``--agentspeed-record`` (``paths=varied``: the simulated model takes its own path through
   the task in every session, as a real model does);
2. **live A/B**: ``--agentspeed-repeat R`` sessions per task on each arm, both with
   ``paths=varied``: every session takes its own path, tools run for real;
3. **replay A/B**: the recordings of run 1 replayed ``R`` times on each arm, gaps as recorded;
4. **A/A on replays**: ``--aa-runs`` seeded runs with ``standard`` on both arms (other seeds),
   3 repeats each, delays x``--aa-time-scale``, gaps as ``--aa-gaps`` says; a FAIL there
   is a false alarm.

Power is then estimated from the measured pairs by resampling: for each n, ``--trials``
draws of n pairs (with replacement, seeded) go through the package's own gate
(``compare.compare_arms``, default settings: alpha 0.05 one-sided, tolerance 5%); the power at
n is the share of draws in which the gate's test finds the candidate slower (p < alpha), and
the share it FAILs (p < alpha and a ratio beyond the tolerance). The sessions needed are the
smallest n with 80%. Printed: the measured ratios, the spread of the pairs' log ratios, the
power curve and n80 of each design, and their ratio.

    python benchmarks/replay_power.py [--repeat 8] [--time-scale 0.25] [--trials 400]
        [--max-n 120] [--aa-runs 20] [--aa-time-scale 0.1]
        [--aa-gaps recorded|none] [--aa-only] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pytest_agentspeed.analysis.compare import compare_arms
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.records import RunRecord, SessionRecord
from pytest_agentspeed.runfile import read_run_file

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "example_suite"
BASE = "sim:standard?seed=7"
SLOWER = "sim:standard?seed=7&speed=0.9"
VARIED = "&paths=varied"
#: Simulated delays x this (the example suite's own 0.05 would leave the model a sliver of
#: each session, and a 10% slower endpoint almost nothing to show); set from --time-scale.
TIME_SCALE = [0.25]


def pytest_run(args: list[str], json_path: Path, time_scale: float | None = None) -> RunRecord:
    """Run pytest in a process of its own; its run file."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    command += ["--agentspeed-allow-task-failures", f"--agentspeed-json={json_path}"]
    command += [f"--agentspeed-time-scale={time_scale or TIME_SCALE[0]}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    print(
        f"  {' '.join(args[:6])} ... exit {done.returncode}, {time.perf_counter() - started:.0f} s"
    )
    if done.returncode not in (0, 1):
        sys.exit(f"pytest failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return read_run_file(json_path)


def pairs_of(run: RunRecord) -> tuple[list[SessionRecord], list[SessionRecord]]:
    """The baseline's and the candidate's sessions, paired by slot, in one order."""
    base_name, cand_name = (e.name for e in run.endpoints)
    by_slot: dict[str, dict[str, SessionRecord]] = {}
    for s in run.sessions:
        by_slot.setdefault(s.slot, {})[s.endpoint] = s
    both = [v for v in by_slot.values() if base_name in v and cand_name in v]
    both = [v for v in both if v[base_name].throughput_tok_s and v[cand_name].throughput_tok_s]
    return [v[base_name] for v in both], [v[cand_name] for v in both]


def log_ratios(base: list[SessionRecord], cand: list[SessionRecord]) -> list[float]:
    return [
        math.log((c.throughput_tok_s or 0.0) / (b.throughput_tok_s or 1.0))
        for b, c in zip(base, cand, strict=True)
    ]


def power(
    base: list[SessionRecord], cand: list[SessionRecord], n: int, trials: int, seed: int
) -> tuple[float, float]:
    """Shares of ``trials`` draws of n pairs in which the gate's test finds the candidate
    slower, and in which the gate FAILs."""
    rng = np.random.default_rng(seed)
    settings = GateSettings()
    slower = fails = 0
    for trial in range(trials):
        picks = rng.integers(0, len(base), size=n)
        # Drawn with replacement: each draw is a slot of its own, so pairs stay pairs.
        b = [_as_slot(base[i], k, trial) for k, i in enumerate(picks)]
        c = [_as_slot(cand[i], k, trial) for k, i in enumerate(picks)]
        result = compare_arms(
            b, c, baseline="base", candidate="cand", against="this run", settings=settings
        )
        slower += result.p is not None and result.p < settings.alpha
        fails += result.verdict == "FAIL"
    return slower / trials, fails / trials


def _as_slot(session: SessionRecord, k: int, trial: int) -> SessionRecord:
    from dataclasses import replace

    return replace(session, slot=f"draw{trial}-{k}", task=f"draw{k}")


def n80(base: list[SessionRecord], cand: list[SessionRecord], args: argparse.Namespace) -> None:
    """Print the power curve and the smallest n with 80% power."""
    found_test = found_fail = None
    n = 4
    while n <= args.max_n:
        p_test, p_fail = power(base, cand, n, args.trials, seed=n)
        print(f"    n={n:4d}  power(test) {p_test:5.2f}  power(FAIL) {p_fail:5.2f}")
        if found_test is None and p_test >= 0.8:
            found_test = n
        if found_fail is None and p_fail >= 0.8:
            found_fail = n
        if found_test is not None and found_fail is not None:
            break
        n = n + 2 if n < 20 else n + 4 if n < 60 else n + 10
    print(
        f"  sessions per arm for 80% power: test {found_test or f'>{args.max_n}'}, "
        f"FAIL {found_fail or f'>{args.max_n}'}"
    )
    args.found.append((found_test, found_fail))


def aa_batch(recordings: Path, work: Path, runs: int, time_scale: float, gaps: str) -> None:
    """A/A on replays: the same endpoint on both arms, other seeds, ``runs`` times (3 repeats
    of each recording per run; delays x``time_scale``, the gaps ``recorded`` or ``none``:
    without them the endpoint's own noise is all a session's, the harsher test);
    how often each verdict came."""
    print(f"\nA/A replays, {runs} seeded runs:")
    verdicts: dict[str, int] = {}
    for k in range(runs):
        run = pytest_run(
            [
                f"--agentspeed-replay={recordings}",
                f"--agentspeed-endpoint=sim:standard?seed={100 + 2 * k}",
                f"--agentspeed-endpoint=sim:standard?seed={101 + 2 * k}",
                "--agentspeed-repeat=3",
                f"--agentspeed-replay-gaps={gaps}",
            ],
            work / f"aa{k}.json",
            time_scale=time_scale,
        )
        (comparison,) = run.comparisons
        verdicts[comparison.verdict] = verdicts.get(comparison.verdict, 0) + 1
        print(f"    {comparison.line}")
    print(f"  A/A verdicts: {verdicts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--time-scale", type=float, default=0.25)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--max-n", type=int, default=120)
    parser.add_argument("--keep", type=Path, default=None, help="keep the run files here")
    parser.add_argument("--aa-runs", type=int, default=20, help="seeded A/A replay runs")
    parser.add_argument("--aa-time-scale", type=float, default=0.1)
    parser.add_argument("--aa-gaps", choices=("recorded", "none"), default="recorded")
    parser.add_argument("--aa-only", action="store_true", help="only the A/A batch (--keep)")
    args = parser.parse_args()
    args.found = []
    TIME_SCALE[0] = args.time_scale
    work = args.keep or Path(tempfile.mkdtemp(prefix="agentspeed-power-"))
    work.mkdir(parents=True, exist_ok=True)
    recordings = work / "recordings"
    print(f"runs in {work}")
    if (work / "record.json").exists():
        print(f"  the recordings of an earlier run in {recordings}")
    else:
        pytest_run(
            [
                str(SUITE),
                f"--agentspeed-endpoint={BASE}{VARIED}",
                f"--agentspeed-record={recordings}",
                "--agentspeed-repeat=1",
            ],
            work / "record.json",
        )
    if args.aa_only:
        aa_batch(recordings, work, args.aa_runs, args.aa_time_scale, args.aa_gaps)
        return
    live = pytest_run(
        [
            str(SUITE),
            f"--agentspeed-endpoint={BASE}{VARIED}",
            f"--agentspeed-endpoint={SLOWER}{VARIED}",
            f"--agentspeed-repeat={args.repeat}",
        ],
        work / "live.json",
    )
    replay = pytest_run(
        [
            f"--agentspeed-replay={recordings}",
            f"--agentspeed-endpoint={BASE}",
            f"--agentspeed-endpoint={SLOWER}",
            f"--agentspeed-repeat={args.repeat}",
        ],
        work / "replay.json",
    )
    for label, run in (("live closed-loop A/B", live), ("replay A/B", replay)):
        base, cand = pairs_of(run)
        d = log_ratios(base, cand)
        print(
            f"\n{label}: {len(d)} pairs; median ratio {math.exp(statistics.median(d)):.3f}; "
            f"sd of the log ratio {statistics.stdev(d):.3f}; "
            f"turns per session {statistics.mean(len(s.turns) for s in base + cand):.1f}"
            f" (sd {statistics.stdev(len(s.turns) for s in base + cand):.2f})"
        )
        print(f"  the run's own verdict: {run.comparisons[0].line}")
        n80(base, cand, args)
    aa_batch(recordings, work, args.aa_runs, args.aa_time_scale, args.aa_gaps)
    (live_test, live_fail), (replay_test, replay_fail) = args.found
    if live_test and replay_test:
        print(f"\nreplay needs {replay_test / live_test:.2f} of the live sessions (test)")
    if live_fail and replay_fail:
        print(f"replay needs {replay_fail / live_fail:.2f} of the live sessions (FAIL)")


if __name__ == "__main__":
    main()
