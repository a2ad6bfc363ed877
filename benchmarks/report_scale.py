"""How long the HTML report takes to build, and how big it gets, for a large run.

Builds a synthetic run of two arms with 500 sessions each, 20 turns per session (random but
seeded phases, usage and tool calls), analyses it as a pytest run would (summary and
comparison), then renders the report several times. Prints the median build time and the file
size.

    python benchmarks/report_scale.py [--sessions 1000] [--turns 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pytest_agentspeed.analysis import analysed
from pytest_agentspeed.compare import GateSettings
from pytest_agentspeed.html_report import render_report
from pytest_agentspeed.records import (
    AttemptRecord,
    EndpointRecord,
    RunRecord,
    SessionRecord,
    ToolCallRecord,
    TurnRecord,
    Usage,
)
from pytest_agentspeed.timing import MARKS, PHASES

TOOLS = ("list_files", "read_file", "edit_file", "write_file", "run_command")


def synthetic_run(sessions: int, turns: int, seed: int = 1) -> RunRecord:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(sessions):
        arm = ("standard", "ultraspeed")[i % 2]
        slot = i // 2
        fast = arm == "ultraspeed"
        turn_records = []
        for t in range(turns):
            out = int(rng.lognormal(np.log(300), 0.6))
            phases = dict.fromkeys(PHASES, 0.0)
            phases["ttft"] = float(rng.lognormal(np.log(2.7 if fast else 3.3), 0.3))
            phases["generation"] = out / float(rng.lognormal(np.log(900 if fast else 130), 0.2))
            phases["tool"] = float(rng.lognormal(np.log(0.6), 0.8))
            phases["overhead"] = 0.002
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
                        output_tokens=out,
                    ),
                    usage_raw={"output_tokens": out},
                    stop_reason="tool_use" if t < turns - 1 else "end_turn",
                    streamed=True,
                    attempts=(
                        AttemptRecord(
                            started_s=0.0,
                            sent_s=0.001,
                            headers_s=0.2,
                            status=200,
                            request_id=f"req_{i}_{t}",
                            error=None,
                        ),
                    ),
                    tool_calls=(
                        ToolCallRecord(
                            name=TOOLS[t % len(TOOLS)],
                            start_s=wall - phases["tool"],
                            wall_s=phases["tool"],
                            ok=True,
                        ),
                    ),
                )
            )
        records.append(
            SessionRecord(
                id=f"task{slot % 50}[{arm}-r{slot // 50}]",
                task=f"task{slot % 50}",
                endpoint=arm,
                repeat=slot // 50,
                slot=f"task{slot % 50}/r{slot // 50}",
                outcome="passed" if rng.random() < 0.9 else "failed",
                error=None,
                wall_s=sum(t.wall_s for t in turn_records),
                setup_s=0.01,
                check_s=0.4,
                check_exit_code=0,
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
    args = parser.parse_args()
    started = time.perf_counter()
    run = synthetic_run(args.sessions, args.turns)
    prepared = time.perf_counter() - started
    times, size = [], 0
    for _ in range(args.runs):
        started = time.perf_counter()
        html = render_report(run)
        times.append(time.perf_counter() - started)
        size = len(html.encode())
    print(
        f"{args.sessions} sessions x {args.turns} turns: build {statistics.median(times):.2f} s "
        f"(median of {args.runs}; min {min(times):.2f}, max {max(times):.2f}), "
        f"size {size / 1e6:.2f} MB"
    )
    print(f"(making and analysing the synthetic run, not part of the build: {prepared:.2f} s)")


if __name__ == "__main__":
    main()
