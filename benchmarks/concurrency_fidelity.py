"""How well marks keep time when K sessions run at once: the client against the server's sends.

For each K (``pytest -n K``, the way teams run sessions side by side) and each time scale,
runs ``2 x K`` sessions of two scripted tasks on one simulated ``ultraspeed`` endpoint without
jitter, in a simulator process this script starts (so that its schedule log can be read after
the run), and joins every turn of the run file with the server's log entry for its request:

* **client late**: the recorded TTFT minus the server's actual time to the first token's
  write (both from the request: the client's from the body sent, the server's from the body
  read), ms. What the client's process adds to a mark: waiting for a core, for the GIL, for
  its own parsing; plus loopback delivery, a few tens of microseconds;
* **sim late**: the server's actual send time of each write minus its planned one (every write
  when the log has them, else the first token's and the last), ms: what the simulator's event
  loop, sharing the same cores, adds to its own schedule;
* **decode err**: the recorded decode rate of each turn of 16 tokens or more against the rate
  the server actually sent at (first token's write to the last write), signed median and P99
  of the absolute error, %;
* **monitor**: the run's own figure, the P99 of its processes' clock lateness
  (``docs/timing.md``, "When the clock is late"), the worst session's; and the sessions the
  run flagged as late;
* **CPU**: the machine's busy share over the run (all cores) and its 1-minute load average at
  the end; **wall**: the pytest run's wall time, start-up of K workers included.

Prints one table, each latency as P50 / P99 / max over all turns (or writes). With few turns,
a P99 is close to the maximum. The machine is what it is: on a shared machine the figures
include whatever else runs; the header line says how busy it was before the first run.

    python benchmarks/concurrency_fidelity.py [--workers 1,4,8,16] [--time-scales 1,0.05]
        [--per-worker 2] [--answer-words 400]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_agentspeed.analysis.metrics import decode_rate, percentile
from pytest_agentspeed.records import RunRecord
from pytest_agentspeed.run.lateness import busy_share, cpu_times, load_average
from pytest_agentspeed.runfile import read_run_file
from pytest_agentspeed.simulator import MountConfig, ServerConfig
from pytest_agentspeed.simulator.process import SimulatorProcess

PROFILE = "ultraspeed"
TASKS = ("alpha", "beta")
CHECK = (
    'python -c \\"import pathlib, sys; '
    "sys.exit(0 if pathlib.Path('greeting.txt').read_text() == 'hello world\\\\n' else 1)\\\""
)


@dataclass
class Figures:
    """One run's errors, signed, one value per turn (per write for ``sim_late_ms``)."""

    sessions: int = 0
    client_late_ms: list[float] = field(default_factory=list)
    sim_late_ms: list[float] = field(default_factory=list)
    #: Recorded decode rate over the rate the server sent at, minus 1, percent.
    decode_err_pct: list[float] = field(default_factory=list)
    #: The worst session's clock lateness P99 (the run's own monitor), ms.
    monitor_p99_ms: float | None = None
    late_sessions: int = 0


def figures(run: RunRecord, schedule: Sequence[dict[str, Any]]) -> Figures:
    """Join every turn of ``run`` with the schedule log entry of its final attempt's request."""
    entries = {entry["request_id"]: entry for entry in schedule}
    out = Figures(sessions=len(run.sessions))
    for session in run.sessions:
        for turn in session.turns:
            entry = entries.get(turn.attempts[-1].request_id) if turn.attempts else None
            if entry is None or turn.error is not None:
                continue
            actual = entry["actual"]
            if "first_token_s" not in actual or turn.marks_s.get("first_token") is None:
                continue
            out.client_late_ms.append((turn.phases_s["ttft"] - actual["first_token_s"]) * 1e3)
            out.sim_late_ms += server_lateness_ms(entry)
            sent_s = actual["end_s"] - actual["first_token_s"]
            # Turns too short to say anything about decode speed have no rate.
            recorded = decode_rate(turn)
            if recorded is not None and sent_s > 0:
                sent_rate = turn.usage.output_tokens / sent_s
                out.decode_err_pct.append((recorded / sent_rate - 1) * 100)
    clock = run.environment.get("clock")
    if isinstance(clock, dict):
        out.monitor_p99_ms = clock.get("late_p99_ms")
        out.late_sessions = int(clock.get("late_sessions") or 0)
    return out


def server_lateness_ms(entry: dict[str, Any]) -> list[float]:
    """How late the server sent, ms: every write's (``writes``: planned and sent times, the
    per-write log), else the first token's and the last write's."""
    writes = entry.get("writes")
    if writes:
        return [
            (sent - planned) * 1e3
            for planned, sent in zip(writes["planned_s"], writes["sent_s"], strict=False)
        ]
    plan, actual = entry["planned"], entry["actual"]
    return [
        (actual["first_token_s"] - plan["first_token_s"]) * 1e3,
        (actual["end_s"] - plan["end_s"]) * 1e3,
    ]


def write_tasks(root: Path, answer_words: int) -> None:
    """Two scripted tasks: write the fix, read it back, answer at length (three turns). Their tools
    are file writes and reads, so the machine's load is the sessions' and the simulator's."""
    for name in TASKS:
        task = root / name
        (task / "workspace").mkdir(parents=True)
        (task / "workspace" / "greeting.txt").write_text("helo wrld\n")
        (task / "agenttask.toml").write_text(
            textwrap.dedent(
                f"""
                instruction = "Task {name}: fix the typos in greeting.txt."
                [check]
                command = "{CHECK}"
                timeout_s = 30
                [limits]
                max_turns = 12
                timeout_s = 600
                max_tokens = 4096
                """
            )
        )
        read = '[[turn.tool]]\nname = "read_file"\ninput = { path = "greeting.txt" }\n'
        (task / "trajectory.toml").write_text(
            textwrap.dedent(
                f"""
                [[turn]]
                text = "{" Writing the greeting." * 20}"
                [[turn.tool]]
                name = "write_file"
                input = {{ path = "greeting.txt", content = "hello world\\n" }}
                """
            )
            + f'\n[[turn]]\ntext = "{" Checking it." * 30}"\n{read}'
            + f'\n[[turn]]\ntext = "{" word" * answer_words}"\n'
        )


@dataclass
class Row:
    workers: int
    time_scale: float
    figures: Figures
    cpu_busy: float | None
    load_1m: float | None
    wall_s: float


def run_once(root: Path, workers: int, time_scale: float, per_worker: int) -> Row:
    """``pytest -n workers`` on the tasks in ``root`` against a fresh simulator."""
    sim = SimulatorProcess(
        ServerConfig(
            mounts=(MountConfig(key="u", profile=PROFILE, time_scale=time_scale, jitter=False),),
            task_dirs=(str(root),),
        )
    )
    sim.start()
    out = root / f"run-{workers}-{time_scale:g}.json"
    repeat = max(1, per_worker * workers // len(TASKS))
    try:
        cpu_before = cpu_times()
        start = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(root),
                f"-n{workers}",
                f"--agentspeed-endpoint=anthropic:{PROFILE}@{sim.base_url('u')}",
                f"--agentspeed-repeat={repeat}",
                f"--agentspeed-json={out}",
                "-p",
                "no:cacheprovider",
                "-q",
            ],
            cwd=root,
            env=os.environ | {"ANTHROPIC_API_KEY": "sim"},
            capture_output=True,
            text=True,
            check=False,
        )
        wall_s = time.perf_counter() - start
        cpu = busy_share(cpu_before, cpu_times())
        load = load_average()
        if result.returncode != 0:
            raise SystemExit(f"pytest -n {workers} failed:\n{result.stdout[-3000:]}")
        schedule = sim.schedule()
    finally:
        sim.stop()
    return Row(workers, time_scale, figures(read_run_file(out), schedule), cpu, load, wall_s)


def fmt(values: Sequence[float]) -> str:
    """P50 / P99 / max, or ``-``."""
    if not values:
        return "-"
    p50, p99 = percentile(values, 50) or 0.0, percentile(values, 99) or 0.0
    return f"{p50:.1f} / {p99:.1f} / {max(values):.1f}"


def decode_fmt(values: Sequence[float]) -> str:
    """Signed median and P99 of the absolute error, percent."""
    if not values:
        return "-"
    p50 = percentile(values, 50) or 0.0
    p99 = percentile([abs(v) for v in values], 99) or 0.0
    return f"{p50:+.1f} / {p99:.1f}"


def line(row: Row) -> str:
    f = row.figures
    monitor = "-" if f.monitor_p99_ms is None else f"{f.monitor_p99_ms:.1f} ({f.late_sessions})"
    cpu = "-" if row.cpu_busy is None else f"{row.cpu_busy * 100:.0f}%"
    load = "-" if row.load_1m is None else f"{row.load_1m:.1f}"
    return (
        f"{row.workers:>3} {row.time_scale:>5g} {f.sessions:>4} {len(f.client_late_ms):>5}  "
        f"{fmt(f.client_late_ms):>20}  {fmt(f.sim_late_ms):>20}  {decode_fmt(f.decode_err_pct):>13}"
        f"  {monitor:>10}  {cpu:>4} {load:>5}  {row.wall_s:>6.1f}"
    )


HEADER = (
    f"{'K':>3} {'scale':>5} {'sess':>4} {'turns':>5}  {'client late ms':>20}  "
    f"{'sim late ms':>20}  {'decode err %':>13}  {'monitor ms':>10}  {'CPU':>4} {'load':>5}  "
    f"{'wall s':>6}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,4,8,16")
    parser.add_argument("--time-scales", default="1,0.05")
    parser.add_argument("--per-worker", type=int, default=2, help="sessions per worker")
    parser.add_argument("--answer-words", type=int, default=400)
    args = parser.parse_args()
    workers = [int(k) for k in args.workers.split(",")]
    scales = [float(s) for s in args.time_scales.split(",")]
    print(
        f"{PROFILE} without jitter; {args.per_worker} sessions per worker; {os.cpu_count()} CPUs, "
        f"load average {load_average()} before the first run"
    )
    print("client late = recorded TTFT - server's first-token send; sim late = sent - planned")
    print("P50 / P99 / max over turns (sim: over writes); decode err: median / P99 of |err|")
    print("monitor: the run's own clock lateness, worst session's P99 (sessions flagged late)")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="agentspeed-fidelity-") as tmp:
        root = Path(tmp)
        write_tasks(root, args.answer_words)
        for scale in scales:
            for k in workers:
                print(line(run_once(root, k, scale, args.per_worker)), flush=True)


if __name__ == "__main__":
    main()
