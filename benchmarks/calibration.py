"""The simulator's profiles against the article's session figures.

Runs an article-shaped workload (``research/latency-model.md`` section 6) through the real
Anthropic-wire client and the real simulated endpoint, for each profile, and prints per
profile: median session throughput (output tokens over session wall time), mean session time,
and the client-measured TTFT P50/P90, all in unscaled seconds (measured / time scale).

The workload, per session: a 20k-token system prompt (cached, as an agent's is), then 60
turns. Each turn's output is drawn lognormal with CV 0.6, the 60 draws scaled to average 397
tokens (the same trajectory for every session and profile), and is served as
a ``write_file`` tool call (code, so the speculative profiles accept at their code rate); the
last turn is a closing text. Between turns the driver waits the turn's tool time (lognormal,
p50 0.55 s and p90 2.0 s, mean 0.9 s, times the time scale) and returns a tool result of
lognormal size (mean 1,600 tokens, CV 0.6), so the context grows by about 2k tokens per turn
and reaches ~140k; a cache breakpoint on the newest block keeps everything before it cached.

The article: standard 51 tok/s median and 7.7 min mean; UltraSpeed 95 tok/s and 4.8 min, so
the ultraspeed/standard ratios are 1.86 (median throughput) and 0.63 (mean session time). The
script exits 1 when either ratio is outside 1.86 +/- 0.25 or 0.63 +/- 0.08.

Every HTTP exchange and SSE parse of the client takes real, unscaled time; the ``overhead``
column is how much of the measured session time the server's schedule and the tool waits do
not account for, so a time scale too small for the machine shows up there.

    python benchmarks/calibration.py [--sessions N] [--time-scale F] [--workers 4] [--profiles ...]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_agentspeed.clients import TurnRequest
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.metrics import percentile
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.simulator.profiles import PROFILES
from pytest_agentspeed.simulator.server import MountConfig, ServerConfig
from pytest_agentspeed.simulator.tokens import count_tokens
from pytest_agentspeed.timing import EventLog, reduce_turn

TURNS = 60
MEAN_OUTPUT, OUTPUT_CV = 397, 0.6
MEAN_TOOL_RESULT, TOOL_RESULT_CV = 1_600, 0.6
TOOL_S = (0.55, 2.0)  # p50, p90: mean 0.9 s
SYSTEM_TOKENS = 20_000
INSTRUCTION = "Calibration workload: refactor the billing module (article-shaped session)."
ARTICLE = {"standard": (51.0, 7.7), "ultraspeed": (95.0, 4.8)}
_EPHEMERAL = {"type": "ephemeral"}


def mean_lognormal(rng: random.Random, mean: float, cv: float) -> int:
    """A lognormal draw with the given mean and coefficient of variation, at least 1."""
    sigma = math.sqrt(math.log(1 + cv * cv))
    return max(1, int(mean * math.exp(sigma * rng.gauss(0, 1) - sigma * sigma / 2)))


def code_of(tokens: int, rng: random.Random) -> str:
    """Python-looking source of about ``tokens`` tokens (as the simulator counts them)."""
    names = ["total", "item", "price", "invoice", "amount", "rate", "line", "customer"]
    lines: list[str] = []
    used = 0
    while used < tokens:
        a, b = rng.sample(names, 2)
        line = f"    {a}_{rng.randrange(100)} = compute_{b}({a}, {b}={rng.randrange(1000)})\n"
        lines.append(line)
        used += count_tokens(line) + 1  # + the escaped newline in the tool call's JSON
    return "".join(lines)


def output_sizes(seed: int) -> list[int]:
    """The 60 turns' output tokens: lognormal with CV 0.6, scaled so their mean is 397 (the
    article's figure) rather than whatever 60 draws happen to average."""
    rng = random.Random(f"sizes|{seed}")
    draws = [mean_lognormal(rng, MEAN_OUTPUT, OUTPUT_CV) for _ in range(TURNS)]
    scale = MEAN_OUTPUT * TURNS / sum(draws)
    return [max(1, round(d * scale)) for d in draws]


def write_task(root: Path, seed: int) -> None:
    """A task whose trajectory is the workload's 60 turns of drawn output sizes."""
    rng = random.Random(seed)
    sizes = output_sizes(seed)
    turns = []
    for i in range(TURNS - 1):
        # 10 tokens of the turn are its text and the tool call's JSON keys.
        content = code_of(max(1, sizes[i] - 10), rng)
        # JSON string literals are valid TOML basic strings.
        tool = f"{{ path = {json.dumps(f'billing/part_{i}.py')}, content = {json.dumps(content)} }}"
        turns.append(
            f'[[turn]]\ntext = "Writing part {i}."\n'
            f'[[turn.tool]]\nname = "write_file"\ninput = {tool}\n'
        )
    words = " ".join("done" for _ in range(sizes[-1]))
    turns.append(f'[[turn]]\ntext = "{words}"\n')
    task = root / "calibration"
    (task / "workspace").mkdir(parents=True)
    (task / "workspace" / "README.md").write_text("billing\n")
    (task / "agenttask.toml").write_text(
        textwrap.dedent(
            f"""\
            instruction = "{INSTRUCTION}"
            [check]
            command = "true"
            """
        )
    )
    (task / "trajectory.toml").write_text("\n".join(turns))


@dataclass(frozen=True)
class SessionResult:
    profile: str
    session_id: str
    output_tokens: int
    wall_s: float
    ttfts_s: list[float]
    request_ids: list[str]
    tool_s: float


def run_session(
    base_url: str, profile: str, session_id: str, seed: int, time_scale: float
) -> SessionResult:
    """One session of the workload: the agent loop with drawn tool times and result sizes."""
    rng = random.Random(f"{seed}|{session_id}")
    client = AnthropicClient(model="sim", base_url=base_url, api_key="sim")
    system = [{"type": "text", "text": " word" * SYSTEM_TOKENS, "cache_control": _EPHEMERAL}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": INSTRUCTION}]}
    ]
    sigma = math.log(TOOL_S[1] / TOOL_S[0]) / 1.2815515655446004
    output = 0
    ttfts, request_ids = [], []
    tool_total = 0.0
    start = time.perf_counter()
    try:
        for _ in range(TURNS):
            marked = [dict(m) for m in messages]
            marked[-1]["content"] = [*marked[-1]["content"][:-1], {**marked[-1]["content"][-1]}]
            marked[-1]["content"][-1]["cache_control"] = _EPHEMERAL
            log = EventLog()
            log.add("turn_start")
            response = client.complete(
                TurnRequest(
                    system=system,
                    messages=marked,
                    tools=[],
                    max_tokens=8_192,
                    session_id=session_id,
                ),
                log,
            )
            log.add("turn_end")
            timing = reduce_turn(log.events)
            ttfts.append(timing.phases_s["ttft"] / time_scale)
            request_ids.append(str(timing.attempts[-1].request_id))
            output += response.usage.output_tokens
            if not response.tool_calls:
                break
            # The tools' time: what this workload spends outside the model, scaled.
            tool_s = TOOL_S[0] * math.exp(sigma * rng.gauss(0, 1)) * time_scale
            time.sleep(tool_s)
            tool_total += tool_s
            result = " ok" * mean_lognormal(rng, MEAN_TOOL_RESULT, TOOL_RESULT_CV)
            messages.append({"role": "assistant", "content": response.content})
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": call.id, "content": result}
                        for call in response.tool_calls
                    ],
                }
            )
    finally:
        client.close()
    wall = time.perf_counter() - start
    return SessionResult(profile, session_id, output, wall, ttfts, request_ids, tool_total)


def worker(jobs: list[tuple[str, str, str, float]], seed: int) -> list[SessionResult]:
    return [run_session(url, p, sid, seed, scale) for url, p, sid, scale in jobs]


#: Time scale and sessions per profile. The article's two profiles get many sessions, since
#: UltraSpeed's mean session time depends on how many land on its degraded lane (15%);
#: small-fast's turns are short enough that at 0.05 the client's and server's unscaled
#: per-request work (a few ms on a 140k-token context) would be a fifth of each turn.
PLAN = {"standard": (0.05, 40), "ultraspeed": (0.05, 40), "frontier": (0.05, 12)}
PLAN_OTHER = (0.25, 12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, help="sessions per profile (default: 40 or 12)")
    parser.add_argument(
        "--time-scale", type=float, help="for every profile (default: 0.05 or 0.25)"
    )
    parser.add_argument("--workers", type=int, default=4, help="client processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    args = parser.parse_args()
    profiles = args.profiles.split(",")
    plan = {
        p: (
            args.time_scale or PLAN.get(p, PLAN_OTHER)[0],
            args.sessions or PLAN.get(p, PLAN_OTHER)[1],
        )
        for p in profiles
    }

    with tempfile.TemporaryDirectory() as tmp:
        write_task(Path(tmp), args.seed)
        # One mount per (profile, worker): sessions of one worker run one after another, so
        # no session shares its endpoint with another in flight (the load factor stays 1).
        mounts = tuple(
            MountConfig(key=f"{p}-{w}", profile=p, time_scale=plan[p][0], seed=args.seed)
            for p in profiles
            for w in range(args.workers)
        )
        sim = SimulatorProcess(ServerConfig(mounts=mounts, task_dirs=(tmp,)))
        sim.start()
        try:
            jobs: list[list[tuple[str, str, str, float]]] = [[] for _ in range(args.workers)]
            for p, (scale, sessions) in plan.items():
                for i in range(sessions):
                    w = (i + profiles.index(p)) % args.workers  # each worker gets every profile
                    jobs[w].append((sim.base_url(f"{p}-{w}"), p, f"{p}-session-{i}", scale))
            began = time.perf_counter()
            with ProcessPoolExecutor(args.workers) as pool:
                futures = [pool.submit(worker, j, args.seed) for j in jobs]
                results = [r for f in futures for r in f.result()]
            elapsed = time.perf_counter() - began
            schedule = sim.schedule()
            planned = {e["request_id"]: e["planned"]["end_s"] for e in schedule}
            degraded = {e["session"] for e in schedule if e["degraded"]}
        finally:
            sim.stop()

    print(
        f"{args.workers} client processes, {elapsed:.0f} s of wall time; "
        "figures unscaled (measured / time scale)"
    )
    print(
        f"{'profile':<11} {'scale':>5} {'sessions':>8} {'tok/s p50':>9} {'(p10-p90)':>11} "
        f"{'mean min':>8} {'out/turn':>8} {'TTFT p50':>8} {'p90':>6} {'overhead':>8} "
        f"{'degraded':>8}"
    )
    medians: dict[str, float] = {}
    means: dict[str, float] = {}
    for p, (scale, sessions) in plan.items():
        mine = [r for r in results if r.profile == p]
        speeds = [r.output_tokens / r.wall_s * scale for r in mine]
        minutes = [r.wall_s / scale / 60 for r in mine]
        ttfts = [t for r in mine for t in r.ttfts_s]
        accounted = sum(sum(planned[i] for i in r.request_ids) + r.tool_s for r in mine)
        overhead = 1 - accounted / sum(r.wall_s for r in mine)
        turns = sum(len(r.request_ids) for r in mine)
        medians[p], means[p] = statistics.median(speeds), statistics.fmean(minutes)
        spread = f"({percentile(speeds, 10):.0f}-{percentile(speeds, 90):.0f})"
        print(
            f"{p:<11} {scale:>5g} {sessions:>8} {medians[p]:>9.1f} {spread:>11} "
            f"{means[p]:>8.2f} {sum(r.output_tokens for r in mine) / turns:>8.0f} "
            f"{percentile(ttfts, 50):>7.2f}s {percentile(ttfts, 90):>5.2f}s {overhead:>7.1%} "
            f"{sum(1 for r in mine if r.session_id in degraded):>8}"
        )
    if "standard" in medians and "ultraspeed" in medians:
        speed = medians["ultraspeed"] / medians["standard"]
        length = means["ultraspeed"] / means["standard"]
        ok_speed = abs(speed - 1.86) <= 0.25
        ok_length = abs(length - 0.63) <= 0.08
        print(
            f"ultraspeed/standard: median throughput x{speed:.2f} "
            f"(article 95/51 = 1.86 +/- 0.25: {'within' if ok_speed else 'OUTSIDE'}), "
            f"mean session time x{length:.2f} "
            f"(article 4.8/7.7 = 0.63 +/- 0.08: {'within' if ok_length else 'OUTSIDE'})"
        )
        if not (ok_speed and ok_length):
            sys.exit(1)


if __name__ == "__main__":
    main()
