"""How closely the client's marks match what the simulated endpoint actually sent.

Runs the built-in agent on example tasks against the simulator with jitter off, for each
profile and time scale, and joins every turn with the server's schedule log for its request.
Two errors are kept apart, since the second is not the client's:

* client error: the recorded TTFT minus the server's actual time to the first token's write
  (from the request body read), and the recorded stream time (first token to stream end) minus
  the server's actual time from that write to its last; what the client's clock, the loopback
  connection and the SDK's parsing add;
* server lateness: the server's actual first-token and stream times minus the ones it planned;
  what its event loop (and the machine's load) adds to the schedule.

Prints the median, P99 and maximum of each, signed, in milliseconds, over all turns of the
sessions (with fewer than 100 turns a row's P99 is close to its maximum).

    python benchmarks/measurement_precision.py [--sessions N] [--time-scales 1,0.25,0.05]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pytest_agentspeed.agents.builtin import BuiltinAgent
from pytest_agentspeed.analysis.metrics import percentile
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.simulator import MountConfig, ServerConfig
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.tasks import load_task

SUITE = Path(__file__).resolve().parent.parent / "example_suite"
TASKS = ("fix-pagination-off-by-one", "add-json-output-flag", "extract-money-formatting")


@dataclass
class Errors:
    """Signed errors in milliseconds, one value per turn in each list."""

    ttft_client: list[float] = field(default_factory=list)
    ttft_late: list[float] = field(default_factory=list)
    stream_client: list[float] = field(default_factory=list)
    stream_late: list[float] = field(default_factory=list)


def measure(profile: str, time_scale: float, sessions: int) -> Errors:
    """Every turn's client error and server lateness, TTFT and stream time."""
    sim = SimulatorProcess(
        ServerConfig(
            mounts=(MountConfig(key="b", profile=profile, time_scale=time_scale, jitter=False),),
            task_dirs=(str(SUITE),),
        )
    )
    sim.start()
    errors = Errors()
    try:
        client = AnthropicClient(model="sim", base_url=sim.base_url("b"), api_key="sim")
        records = []
        for i in range(sessions):
            task = load_task(SUITE / TASKS[i % len(TASKS)] / "agenttask.toml")
            records.append(run_session(task, BuiltinAgent(), client, endpoint="b", repeat=i).record)
        client.close()
        schedule = {entry["request_id"]: entry for entry in sim.schedule()}
        for record in records:
            for turn in record.turns:
                entry = schedule[turn.attempts[-1].request_id]
                plan, actual = entry["planned"], entry["actual"]
                first, end = turn.marks_s["first_token"], turn.marks_s["stream_end"]
                if first is None or end is None or "first_token_s" not in actual:
                    raise SystemExit(f"turn {turn.index} of {record.id} has no tokens")
                sent_stream = actual["end_s"] - actual["first_token_s"]
                planned_stream = plan["end_s"] - plan["first_token_s"]
                errors.ttft_client.append((turn.phases_s["ttft"] - actual["first_token_s"]) * 1e3)
                errors.ttft_late.append((actual["first_token_s"] - plan["first_token_s"]) * 1e3)
                errors.stream_client.append(((end - first) - sent_stream) * 1e3)
                errors.stream_late.append((sent_stream - planned_stream) * 1e3)
    finally:
        sim.stop()
    return errors


def fmt(values: list[float]) -> str:
    """Median / P99 / maximum."""
    p99 = percentile(values, 99) or 0.0
    return f"{statistics.median(values):5.2f} /{p99:5.2f} /{max(values):5.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--time-scales", default="1,0.25,0.05")
    args = parser.parse_args()
    scales = [float(s) for s in args.time_scales.split(",")]
    print("signed ms, p50 / p99 / max over all turns")
    print("client = recorded by the client - sent by the server; late = sent - planned")
    print(
        f"{'profile':<11} {'scale':>6} {'turns':>5}   {'TTFT client':>19}   {'TTFT late':>19}"
        f"   {'stream client':>19}   {'stream late':>19}"
    )
    for profile in ("standard", "ultraspeed"):
        for scale in scales:
            e = measure(profile, scale, args.sessions)
            print(
                f"{profile:<11} {scale:>6g} {len(e.ttft_client):>5}   {fmt(e.ttft_client):>19}   "
                f"{fmt(e.ttft_late):>19}   {fmt(e.stream_client):>19}   {fmt(e.stream_late):>19}"
            )


if __name__ == "__main__":
    main()
