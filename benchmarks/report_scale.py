"""How long the HTML report takes to build, and how big it gets, for a large run.

Builds two synthetic runs of two arms with 500 sessions each, 20 turns per session (random but
seeded phases, usage and tool calls), analyses each as a pytest run would (summary and
comparison), then renders its report several times:

* ``plain``: every turn served at the first attempt, no reasoning;
* ``mixed``: every turn also reasons first (a ``reasoning`` phase and thinking tokens), one
  turn in ten is retried once after a 529 (a failed attempt and a ``retry_wait`` phase), and
  one session in 30 ends as ``error`` on a turn whose three attempts all failed.

Prints, for each, the median build time and the file size, and exits 1 when a report is larger
than ``--max-bytes-per-turn`` (default 250) bytes per turn of the run: the waterfalls are one
SVG path per phase, so the size grows with the number of turns, and 1,000 sessions of 20 turns
measured 162 (plain) and 187 (mixed) bytes per turn when the bound was set.

    python benchmarks/report_scale.py [--sessions 1000] [--turns 20] [--runs 3]
        [--max-bytes-per-turn 250]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.outputs.html_report import render_report
from pytest_agentspeed.records import (
    AttemptRecord,
    EndpointRecord,
    Outcome,
    RunRecord,
    SessionRecord,
    ToolCallRecord,
    TurnRecord,
    Usage,
)
from pytest_agentspeed.timing import MARKS, PHASES

TOOLS = ("list_files", "read_file", "edit_file", "write_file", "run_command")


#: Attempts of a retried turn and of a turn that ended its session in an error.
RETRIED = (
    AttemptRecord(
        started_s=0.0,
        sent_s=0.001,
        headers_s=0.2,
        status=529,
        request_id=None,
        error="overloaded_error",
    ),
    AttemptRecord(
        started_s=1.2,
        sent_s=1.201,
        headers_s=1.4,
        status=200,
        request_id="req_retry",
        error=None,
    ),
)
FAILED = tuple(
    AttemptRecord(
        started_s=float(k),
        sent_s=k + 0.001,
        headers_s=k + 0.2,
        status=529,
        request_id=None,
        error="overloaded_error",
    )
    for k in range(3)
)


def synthetic_run(sessions: int, turns: int, *, mixed: bool = False, seed: int = 1) -> RunRecord:
    """Two arms' sessions; with ``mixed``, reasoning on every turn, retries and errors."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(sessions):
        arm = ("standard", "ultraspeed")[i % 2]
        slot = i // 2
        fast = arm == "ultraspeed"
        errored = mixed and i % 30 == 29
        turn_records = []
        for t in range(turns):
            out = int(rng.lognormal(np.log(300), 0.6))
            phases = dict.fromkeys(PHASES, 0.0)
            phases["ttft"] = float(rng.lognormal(np.log(2.7 if fast else 3.3), 0.3))
            phases["generation"] = out / float(rng.lognormal(np.log(900 if fast else 130), 0.2))
            phases["tool"] = float(rng.lognormal(np.log(0.6), 0.8))
            phases["overhead"] = 0.002
            attempts: tuple[AttemptRecord, ...] = (
                AttemptRecord(
                    started_s=0.0,
                    sent_s=0.001,
                    headers_s=0.2,
                    status=200,
                    request_id=f"req_{i}_{t}",
                    error=None,
                ),
            )
            thinking = None
            error = None
            if mixed:
                thinking = int(rng.lognormal(np.log(200), 0.6))
                phases["reasoning"] = thinking / (900 if fast else 130)
                if rng.random() < 0.1:
                    attempts = RETRIED
                    phases["retry_wait"] = 1.2
            last = t == turns - 1
            if errored and last:
                # No first token was ever seen: the whole turn is retry_wait (timing.md).
                phases = dict.fromkeys(PHASES, 0.0)
                phases["retry_wait"] = 3.5
                attempts, out, thinking = FAILED, 0, None
                error = "endpoint error: 529 overloaded_error after 3 attempts"
            wall = sum(phases.values())
            cached = t > 0
            turn_records.append(
                TurnRecord(
                    index=t,
                    wall_s=wall,
                    marks_s=dict.fromkeys(MARKS, None),
                    phases_s=phases,
                    usage=Usage(
                        input_tokens=500,
                        cache_read_tokens=20_000 + 2_000 * t if cached else 0,
                        output_tokens=out + (thinking or 0),
                        thinking_tokens=thinking,
                    ),
                    usage_raw={"output_tokens": out + (thinking or 0)},
                    stop_reason=None if error else "tool_use" if not last else "end_turn",
                    streamed=True,
                    attempts=attempts,
                    tool_calls=()
                    if error
                    else (
                        ToolCallRecord(
                            name=TOOLS[t % len(TOOLS)],
                            start_s=wall - phases["tool"],
                            wall_s=phases["tool"],
                            ok=True,
                        ),
                    ),
                    error=error,
                )
            )
        outcome: Outcome = "error" if errored else "passed" if rng.random() < 0.9 else "failed"
        records.append(
            SessionRecord(
                id=f"task{slot % 50}[{arm}-r{slot // 50}]",
                task=f"task{slot % 50}",
                endpoint=arm,
                repeat=slot // 50,
                slot=f"task{slot % 50}/r{slot // 50}",
                outcome=outcome,
                error=turn_records[-1].error,
                wall_s=sum(t.wall_s for t in turn_records),
                setup_s=0.01,
                check_s=0.0 if errored else 0.4,
                check_exit_code=None if errored else 0,
                usage=sum((t.usage for t in turn_records), Usage()),
                phases_s={p: sum(t.phases_s[p] for t in turn_records) for p in PHASES},
                turns=tuple(turn_records),
                started_at=float(i),
            )
        )
    run = RunRecord(
        created_at="2026-11-29T00:00:00+00:00",
        agentspeed_version="benchmark",
        environment={"concurrency": 4},
        config={
            "window_s": 1800.0,
            "repeat": sessions // 100,
            "time_scale": None,
            "agent": "builtin",
        },
        endpoints=tuple(
            EndpointRecord(name=n, api="anthropic", model=n, base_url=None, profile=n)
            for n in ("standard", "ultraspeed")
        ),
        sessions=tuple(records),
    )
    return analysed(run, GateSettings())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-bytes-per-turn", type=float, default=250.0)
    args = parser.parse_args()
    too_big = False
    for mixed in (False, True):
        started = time.perf_counter()
        run = synthetic_run(args.sessions, args.turns, mixed=mixed)
        prepared = time.perf_counter() - started
        times, size = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            html = render_report(run)
            times.append(time.perf_counter() - started)
            size = len(html.encode())
        per_turn = size / sum(len(s.turns) for s in run.sessions)
        too_big |= per_turn > args.max_bytes_per_turn
        print(
            f"{'mixed' if mixed else 'plain'}: {args.sessions} sessions x {args.turns} turns: "
            f"build {statistics.median(times):.2f} s (median of {args.runs}; "
            f"min {min(times):.2f}, max {max(times):.2f}), size {size / 1e6:.2f} MB "
            f"({per_turn:.0f} bytes per turn, bound {args.max_bytes_per_turn:g})"
        )
        print(
            f"  (making and analysing the synthetic run, not part of the build: {prepared:.2f} s)"
        )
    if too_big:
        sys.exit(1)


if __name__ == "__main__":
    main()
