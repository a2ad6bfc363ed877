"""How closely the client's marks match what the simulated endpoint actually planned.

Runs the built-in agent on example tasks against the simulator with jitter off, for each
profile and time scale, and compares every turn's recorded TTFT and stream time (first token
to stream end) with the server's planned schedule for that request. Prints the median, P90 and
maximum absolute error over all turns of several sessions.

    python benchmarks/measurement_precision.py [--sessions N] [--time-scales 1,0.25,0.05]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from pytest_agentspeed.agents import BuiltinAgent
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.metrics import percentile
from pytest_agentspeed.runner import run_session
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.simulator.server import MountConfig, ServerConfig
from pytest_agentspeed.tasks import load_task

SUITE = Path(__file__).resolve().parent.parent / "example_suite"
TASKS = ("fix-pagination-off-by-one", "add-json-output-flag", "extract-money-formatting")


def measure(profile: str, time_scale: float, sessions: int) -> tuple[list[float], list[float]]:
    """Absolute TTFT and stream-time errors (ms) of every turn."""
    sim = SimulatorProcess(
        ServerConfig(
            mounts=(MountConfig(key="b", profile=profile, time_scale=time_scale, jitter=False),),
            task_dirs=(str(SUITE),),
        )
    )
    sim.start()
    ttft_err: list[float] = []
    stream_err: list[float] = []
    try:
        client = AnthropicClient(model="sim", base_url=sim.base_url("b"), api_key="sim")
        records = []
        for i in range(sessions):
            task = load_task(SUITE / TASKS[i % len(TASKS)] / "agenttask.toml")
            records.append(run_session(task, BuiltinAgent(), client, endpoint="b", repeat=i).record)
        client.close()
        schedule = {entry["request_id"]: entry["planned"] for entry in sim.schedule()}
        for record in records:
            for turn in record.turns:
                plan = schedule[turn.attempts[-1].request_id]
                first, end = turn.marks_s["first_token"], turn.marks_s["stream_end"]
                if first is None or end is None:
                    raise SystemExit(f"turn {turn.index} of {record.id} has no tokens")
                ttft_err.append(abs(turn.phases_s["ttft"] - plan["first_token_s"]) * 1e3)
                planned_stream = plan["end_s"] - plan["first_token_s"]
                stream_err.append(abs((end - first) - planned_stream) * 1e3)
    finally:
        sim.stop()
    return ttft_err, stream_err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--time-scales", default="1,0.25,0.05")
    args = parser.parse_args()
    scales = [float(s) for s in args.time_scales.split(",")]
    print(
        f"{'profile':<11} {'scale':>6} {'turns':>5}   TTFT error ms (p50/p90/max)   "
        "stream error ms (p50/p90/max)"
    )
    for profile in ("standard", "ultraspeed"):
        for scale in scales:
            ttft, stream = measure(profile, scale, args.sessions)

            def fmt(values: list[float]) -> str:
                p90 = percentile(values, 90) or 0.0
                return f"{statistics.median(values):5.2f} /{p90:5.2f} /{max(values):5.2f}"

            print(f"{profile:<11} {scale:>6g} {len(ttft):>5}   {fmt(ttft):>27}   {fmt(stream):>29}")


if __name__ == "__main__":
    main()
