"""Session and run records built by hand, for tests of what is computed from them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pytest_agentspeed.records import EndpointRecord, RunRecord, SessionRecord, TurnRecord, Usage
from pytest_agentspeed.timing import MARKS, PHASES

TASKS = 5


def session(
    arm: str, slot: int, throughput: float, *, passed: bool = True, wall: float = 100.0
) -> SessionRecord:
    """A one-turn session with the given throughput (output tokens / wall time).

    Slot ``i`` is task ``t{i % 5}``, repeat ``i // 5``.
    """
    tokens = round(throughput * wall)
    phases = dict.fromkeys(PHASES, 0.0) | {"generation": wall}
    turn = TurnRecord(
        index=0,
        wall_s=wall,
        marks_s=dict.fromkeys(MARKS, None),
        phases_s=phases,
        usage=Usage(output_tokens=tokens),
        usage_raw={},
        stop_reason="end_turn",
        streamed=True,
        attempts=(),
        tool_calls=(),
    )
    task, repeat = f"t{slot % TASKS}", slot // TASKS
    return SessionRecord(
        id=f"{task}[{arm}-r{repeat}]",
        task=task,
        endpoint=arm,
        repeat=repeat,
        slot=f"{task}/r{repeat}",
        outcome="passed" if passed else "failed",
        error=None,
        wall_s=wall,
        setup_s=0.0,
        check_s=0.0,
        check_exit_code=0 if passed else 1,
        usage=Usage(output_tokens=tokens),
        phases_s=phases,
        turns=(turn,),
        started_at=float(slot),
    )


def arm(
    name: str, values: Sequence[float], *, passed: Sequence[bool] | None = None
) -> list[SessionRecord]:
    flags = passed if passed is not None else [True] * len(values)
    return [
        session(name, i, float(v), passed=p)
        for i, (v, p) in enumerate(zip(values, flags, strict=True))
    ]


def paired_arms(ratio: float, sigma: float, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Throughputs with a per-slot (task) effect shared by both arms, like real A/B runs."""
    rng = np.random.default_rng(seed)
    slot_effect = rng.normal(0, 0.4, n)
    base = np.exp(np.log(50) + slot_effect + rng.normal(0, sigma, n))
    cand = np.exp(np.log(50 * ratio) + slot_effect + rng.normal(0, sigma, n))
    return base, cand


def run_record(
    sessions: Sequence[SessionRecord], *, time_scale: float | None = 0.05, concurrency: int = 1
) -> RunRecord:
    names = list(dict.fromkeys(s.endpoint for s in sessions))
    return RunRecord(
        created_at="2026-11-29T00:00:00+00:00",
        agentspeed_version="0.1.0",
        environment={"concurrency": concurrency},
        config={"window_s": 1800.0, "repeat": 1, "time_scale": time_scale, "agent": "builtin"},
        endpoints=tuple(
            EndpointRecord(name=n, api="anthropic", model="m", base_url=None) for n in names
        ),
        sessions=tuple(sessions),
    )
